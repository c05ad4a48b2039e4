import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';

export interface AuditInput {
  tenantId: string;
  clusterId?: string;
  operationId?: string;
  actor: string;
  action: string;
  details?: Record<string, unknown>;
}

/** Every state change is an audit event. Details never hold secrets. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async record(e: AuditInput): Promise<void> {
    await this.db.auditEvent.create({ data: { id: randomUUID(), ...e, details: (e.details ?? {}) as object } });
  }

  listForCluster(tenantId: string, clusterId: string) {
    return this.db.auditEvent.findMany({ where: { tenantId, clusterId }, orderBy: { seq: 'asc' } });
  }
}
