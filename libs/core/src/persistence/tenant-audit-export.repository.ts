import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import type { AuditExport } from '../generated/prisma/client';
import { ConflictError } from '../errors';
import { ClusterState, SecretName } from '../model';
import type { SecretRepository } from './secret.repository';

/** What a PUT saves: how the export reaches the container. The SAS URL is sealed; the rest is shown. */
export interface AuditExportSettings {
  auth: 'sas' | 'managed-identity';
  /** Without the query. */
  containerUrl: string;
  sasExpiresAt: Date | null;
  /** The full URL with its SAS (auth sas only): sealed as a cluster secret, never a column. */
  sasUrl?: string;
}

/** An export row with how far behind it is. */
export interface AuditExportState {
  row: AuditExport;
  lag: { events: number; oldestAt: Date | null };
}

/** The events of a cluster after an export's cursor: how many and since when. */
export async function exportLag(db: Db, clusterId: string, cursorTxid: bigint, cursorSeq: bigint): Promise<{ events: number; oldestAt: Date | null }> {
  const [r] = await db.$queryRaw<{ events: number; oldestAt: Date | null }[]>`
    SELECT count(*)::int AS "events", min("createdAt") AS "oldestAt" FROM "AuditEvent"
    WHERE "clusterId" = ${clusterId}::uuid AND ("txid", "seq") > (${cursorTxid}, ${cursorSeq})`;
  return r ?? { events: 0, oldestAt: null };
}

/**
 * The API's side of a cluster's audit export (docs/audit-export.md): every read and write takes the
 * tenant. A configuration change is one transaction: the row, the sealed SAS and the audit event
 * (which never holds the SAS).
 */
export class TenantAuditExportRepository {
  constructor(private readonly db: Db, private readonly secrets: SecretRepository) {}

  async find(tenantId: string, clusterId: string): Promise<AuditExportState | null> {
    const row = await this.db.auditExport.findFirst({ where: { tenantId, clusterId } });
    if (!row) return null;
    return { row, lag: await exportLag(this.db, clusterId, row.cursorTxid, row.cursorSeq) };
  }

  /**
   * Turns the export on, or replaces its container or SAS. The cursor stays: a new SAS (or a new
   * container) resumes after the last exported event, with no gap and no repeat; a failing export
   * is tried again at once (and stays `retrying` until that succeeds). Refused on a cluster being
   * deleted.
   */
  async configure(cluster: { id: string; tenantId: string }, s: AuditExportSettings, actor: string): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const [c] = await tx.$queryRaw<{ state: string }[]>`SELECT "state" FROM "Cluster" WHERE "id" = ${cluster.id}::uuid AND "tenantId" = ${cluster.tenantId} FOR UPDATE`;
      if (!c || c.state === ClusterState.Deleting || c.state === ClusterState.Deleted) {
        throw new ConflictError('cluster_deleting', `the cluster is ${c?.state ?? ClusterState.Deleted}; its audit export can no longer be changed`);
      }
      const now = new Date();
      const settings = { enabled: true, auth: s.auth, containerUrl: s.containerUrl, sasExpiresAt: s.sasExpiresAt, configuredAt: now, configuredBy: actor, nextAttemptAt: now };
      await tx.auditExport.upsert({ where: { clusterId: cluster.id }, create: { clusterId: cluster.id, tenantId: cluster.tenantId, ...settings }, update: settings });
      if (s.sasUrl) await this.secrets.replaceIn(tx, cluster.id, SecretName.AuditExportSas, s.sasUrl);
      else await tx.clusterSecret.deleteMany({ where: { clusterId: cluster.id, name: SecretName.AuditExportSas } });
      await tx.auditEvent.create({
        data: {
          id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, actor, action: 'cluster.audit-export.configured',
          details: { auth: s.auth, containerUrl: s.containerUrl, sasExpiresAt: s.sasExpiresAt?.toISOString() ?? null },
        },
      });
    });
  }

  /** Turns the export off and drops the SAS; false when it was not on. */
  async disable(tenantId: string, clusterId: string, actor: string): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ containerUrl: string }[]>`
        UPDATE "AuditExport" SET "enabled" = false, "updatedAt" = now()
        WHERE "clusterId" = ${clusterId}::uuid AND "tenantId" = ${tenantId} AND "enabled" RETURNING "containerUrl"`;
      if (!rows.length) return false;
      await tx.clusterSecret.deleteMany({ where: { clusterId, name: SecretName.AuditExportSas } });
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId, clusterId, actor, action: 'cluster.audit-export.disabled', details: { containerUrl: rows[0].containerUrl } } });
      return true;
    });
  }
}
