import type { Prisma } from '../generated/prisma/client';
import type { Db } from './prisma';

/**
 * What an Idempotency-Key keeps of a request that queued an operation: written in the transaction
 * that writes the operation (so a request either left both or neither), answered again as a 202
 * with the same body and `Location: /v1/operations/{id}` to a retry with the same key. A second
 * request racing with the same key fails on the record's primary key and replays it.
 */
export interface IdempotentAnswer<Row> {
  key: string;
  /** The request's route, path and body, hashed: the same key with another request is refused. */
  requestHash: string;
  body: (row: Row) => unknown;
}

export class IdempotencyRepository {
  constructor(private readonly db: Db) {}

  find(tenantId: string, key: string) {
    return this.db.idempotencyRecord.findUnique({ where: { tenantId_key: { tenantId, key } } });
  }
}

/** Writes the record of an operation's answer within the caller's transaction. */
export async function recordIdempotentAnswer<Row>(tx: Prisma.TransactionClient, tenantId: string, operationId: string, idem: IdempotentAnswer<Row>, row: Row): Promise<void> {
  await tx.idempotencyRecord.create({
    data: { tenantId, key: idem.key, requestHash: idem.requestHash, statusCode: 202, location: `/v1/operations/${operationId}`, body: idem.body(row) as Prisma.InputJsonValue },
  });
}
