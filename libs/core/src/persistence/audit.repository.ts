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

  /**
   * Records an event. An operation's action is recorded once: a hook that runs
   * again after a worker died (the operation resumed elsewhere) writes nothing
   * new (a partial unique index on operationId + action).
   */
  async record(e: AuditInput): Promise<void> {
    await this.db.$executeRaw`
      INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details")
      VALUES (${randomUUID()}::uuid, ${e.tenantId}, ${e.clusterId ?? null}::uuid, ${e.operationId ?? null}::uuid, ${e.actor}, ${e.action}, ${JSON.stringify(e.details ?? {})}::jsonb)
      ON CONFLICT ("operationId", "action") WHERE "operationId" IS NOT NULL DO NOTHING`;
  }

  listForCluster(tenantId: string, clusterId: string) {
    return this.db.auditEvent.findMany({ where: { tenantId, clusterId }, orderBy: { seq: 'asc' } });
  }
}
