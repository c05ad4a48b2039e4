import type { Db } from './prisma';

export class IdempotencyRepository {
  constructor(private readonly db: Db) {}

  find(tenantId: string, key: string) {
    return this.db.idempotencyRecord.findUnique({ where: { tenantId_key: { tenantId, key } } });
  }
}
