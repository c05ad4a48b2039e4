import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { ClusterState, OperationKind, OperationState } from '../model';
import { insertOperation } from './operation-writer';

/** Who requests automatic certificate rotations (the operation's requestedBy and the audit event's actor). */
export const CERT_ROTATION_ACTOR = 'system:cert-rotation';

export interface CertificateRotationPolicy {
  /** Rotate server certificates when the earliest expires within this many ms. */
  serverThresholdMs: number;
  /** Roll the CA when it expires within this many ms (at least serverThresholdMs). */
  caThresholdMs: number;
  /** A rotation queued and failed is queued again after this long. */
  retryAfterMs: number;
}

export interface QueuedCertificateRotation {
  clusterId: string;
  operationId: string;
  kind: typeof OperationKind.RotateCertificates | typeof OperationKind.RotateCa;
  notAfter: Date;
}

const ROTATIONS = [OperationKind.RotateCertificates, OperationKind.RotateCa];

/**
 * Automatic certificate rotation: a Running cluster whose CA expires within
 * the CA threshold gets a CA roll (which also reissues every server
 * certificate); otherwise, one whose earliest server certificate expires
 * within the server threshold gets a certificate rotation. One rotation per
 * cluster at a time. Claiming is one conditional UPDATE of
 * "certRotationQueuedAt" on the row, so several workers ticking at once queue
 * it once (a NOT EXISTS in an UPDATE alone would not see the other worker's
 * new operation under READ COMMITTED).
 */
export class CertificateScheduleRepository {
  constructor(private readonly db: Db) {}

  async claimDue(now: Date, policy: CertificateRotationPolicy, limit = 100): Promise<QueuedCertificateRotation[]> {
    const serverBefore = new Date(now.getTime() + policy.serverThresholdMs);
    const caBefore = new Date(now.getTime() + policy.caThresholdMs);
    const retryBefore = new Date(now.getTime() - policy.retryAfterMs);
    // A secondary's CA is its primary's, rolled with the primary's (for the whole federation): a secondary is due for its server certificates only.
    const candidates = await this.db.$queryRaw<{ id: string; tenantId: string; caNotAfter: Date; serverCertsNotAfter: Date | null; certRotationQueuedAt: Date | null; primaryClusterId: string | null }[]>`
      SELECT c."id", c."tenantId", c."caNotAfter", c."serverCertsNotAfter", c."certRotationQueuedAt", c."primaryClusterId"
      FROM "Cluster" c
      WHERE c."state" = ${ClusterState.Running} AND c."caNotAfter" IS NOT NULL
        AND ((c."caNotAfter" <= ${caBefore} AND c."primaryClusterId" IS NULL) OR c."serverCertsNotAfter" <= ${serverBefore})
        AND (c."certRotationQueuedAt" IS NULL OR c."certRotationQueuedAt" <= ${retryBefore})
        AND NOT EXISTS (
          SELECT 1 FROM "Operation" o
          WHERE o."clusterId" = c."id" AND o."kind" IN (${ROTATIONS[0]}, ${ROTATIONS[1]}) AND o."state" IN (${OperationState.Queued}, ${OperationState.Running}))
      ORDER BY LEAST(c."caNotAfter", c."serverCertsNotAfter") ASC, c."id"
      LIMIT ${limit}`;
    const queued: QueuedCertificateRotation[] = [];
    for (const c of candidates) {
      const ca = c.primaryClusterId === null && c.caNotAfter.getTime() <= caBefore.getTime();
      const kind = ca ? OperationKind.RotateCa : OperationKind.RotateCertificates;
      const notAfter = ca ? c.caNotAfter : c.serverCertsNotAfter!;
      const operationId = randomUUID();
      const params = { what: ca ? 'ca' : 'certificates', automatic: true, notAfter: notAfter.toISOString() };
      const won = await this.db.$transaction(async (tx) => {
        // The row as read: another worker's claim (or a rotation that moved the dates) makes this a no-op.
        const n = await tx.$executeRaw`
          UPDATE "Cluster" SET "certRotationQueuedAt" = ${now}
          WHERE "id" = ${c.id}::uuid AND "state" = ${ClusterState.Running}
            AND "certRotationQueuedAt" IS NOT DISTINCT FROM ${c.certRotationQueuedAt}
            AND "caNotAfter" = ${c.caNotAfter} AND "serverCertsNotAfter" IS NOT DISTINCT FROM ${c.serverCertsNotAfter}`;
        if (n !== 1) return false;
        await insertOperation(tx, { id: operationId, tenantId: c.tenantId, clusterId: c.id, kind, requestedBy: CERT_ROTATION_ACTOR, params });
        await tx.auditEvent.create({
          data: { id: randomUUID(), tenantId: c.tenantId, clusterId: c.id, operationId, actor: CERT_ROTATION_ACTOR, action: 'cluster.rotate.requested', details: params },
        });
        return true;
      });
      if (won) queued.push({ clusterId: c.id, operationId, kind, notAfter });
    }
    return queued;
  }
}
