import { Prisma, type Operation } from '../generated/prisma/client';
import { OperationState, isMutating, type OperationKind } from '../model';

/**
 * The one writer of operation rows. Whoever asks for work (the API, a scheduler, a wave, the
 * health monitor) writes its operation through here, inside its own transaction or statement,
 * so that the operation commits with what goes with it (the cluster, the snapshot, the audit
 * event) or not at all. A new operation is Queued; every column not named here has its default.
 */
export type NewOperation = Pick<Prisma.OperationUncheckedCreateInput, 'id' | 'tenantId' | 'clusterId' | 'requestedBy' | 'params'> & { kind: OperationKind };

/** Writes the operation in the caller's transaction; whether it is mutating follows from its kind. */
export function insertOperation(tx: Prisma.TransactionClient, op: NewOperation): Promise<Operation> {
  return tx.operation.create({ data: { ...op, mutating: isMutating(op.kind), state: OperationState.Queued } });
}

const QUEUED = Prisma.raw(`'${OperationState.Queued}'`);

/** A value of the statement: a parameter, or SQL (a cast parameter, a column of the rows it writes from). */
type SqlValue = Prisma.Sql | string | boolean | Date;

/** The values of the operations a statement writes. */
export interface OperationValues {
  id: SqlValue;
  tenantId: SqlValue;
  clusterId: SqlValue;
  kind: SqlValue;
  mutating: SqlValue;
  requestedBy: SqlValue;
  params: SqlValue;
  /** createdAt and updatedAt. */
  at: SqlValue;
}

/**
 * The INSERT of operations as one member (a CTE) of the caller's statement, for the writes that are
 * one round trip on a hot path (a cluster's create, a wave's items): one row per row of `from`
 * (a FROM clause; empty for one row of parameters), `returning` what the statement reads back.
 */
export function operationInsert(values: OperationValues, from: Prisma.Sql, returning: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`INSERT INTO "Operation" ("id", "tenantId", "clusterId", "kind", "mutating", "state", "requestedBy", "params", "createdAt", "updatedAt")
        SELECT ${values.id}, ${values.tenantId}, ${values.clusterId}, ${values.kind}, ${values.mutating}, ${QUEUED}, ${values.requestedBy}, ${values.params}, ${values.at}, ${values.at}
        ${from}
        RETURNING ${returning}`;
}

/**
 * operationInsert for a statement written with positional parameters (sqlQuery): every value an
 * expression of the caller's ($n or a column), so the fragment is plain text.
 */
export function operationInsertText(values: Record<keyof OperationValues, string>, from: string, returning: string): string {
  const raw = (s: string) => Prisma.raw(s);
  const sql = operationInsert({
    id: raw(values.id), tenantId: raw(values.tenantId), clusterId: raw(values.clusterId), kind: raw(values.kind), mutating: raw(values.mutating),
    requestedBy: raw(values.requestedBy), params: raw(values.params), at: raw(values.at),
  }, raw(from), raw(returning));
  if (sql.values.length > 0) throw new Error('operationInsertText takes SQL expressions, not values');
  return sql.text;
}
