import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { insertOperation } from './operation-writer';
import { SnapshotRepository } from './snapshot.repository';
import { recordIdempotentAnswer, type IdempotentAnswer } from './idempotency.repository';
import { SnapshotState, type OperationKind, type SnapshotKind } from '../model';
import type { Cluster, Operation, Snapshot } from '../generated/prisma/client';

const VISIBLE = [SnapshotState.Pending, SnapshotState.Available, SnapshotState.Failed];

/**
 * A tenant's snapshots: what the API reads and asks for. Every read takes the tenant as a
 * required argument; every request takes a cluster (or snapshot) read that way.
 */
export class TenantSnapshotRepository {
  constructor(private readonly db: Db) {}

  /**
   * Records a snapshot to take and the operation that takes it (or, for
   * restore, the operation that restores; the pre-restore snapshot row is
   * created the same way), with the audit event, in one transaction.
   */
  async requestWithOperation(
    cluster: Cluster,
    actor: string,
    op: { kind: OperationKind; action: string; params?: Record<string, unknown> },
    snapshot?: { name: string; kind: SnapshotKind },
    idem?: IdempotentAnswer<{ operation: Operation; snapshot?: Snapshot }>,
  ): Promise<{ operation: Operation; snapshot?: Snapshot }> {
    const operationId = randomUUID();
    const snapshotId = snapshot ? randomUUID() : undefined;
    return this.db.$transaction(async (tx) => {
      const params = { ...(op.params ?? {}), ...(snapshotId ? { snapshotId } : {}) };
      const operation = await insertOperation(tx, { id: operationId, tenantId: cluster.tenantId, clusterId: cluster.id, kind: op.kind, requestedBy: actor, params });
      const row = snapshot
        ? await tx.snapshot.create({
            data: {
              id: snapshotId!, tenantId: cluster.tenantId, clusterId: cluster.id, name: snapshot.name, kind: snapshot.kind,
              state: SnapshotState.Pending, blobKey: SnapshotRepository.blobKey(cluster.id, snapshotId!), operationId,
            },
          })
        : undefined;
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, operationId, actor, action: op.action, details: params } });
      if (idem) await recordIdempotentAnswer(tx, cluster.tenantId, operationId, idem, { operation, snapshot: row });
      return { operation, snapshot: row };
    });
  }

  listForCluster(tenantId: string, clusterId: string): Promise<Snapshot[]> {
    return this.db.snapshot.findMany({ where: { tenantId, clusterId, state: { in: VISIBLE } }, orderBy: { createdAt: 'desc' } });
  }

  findForTenant(tenantId: string, clusterId: string, id: string): Promise<Snapshot | null> {
    return this.db.snapshot.findFirst({ where: { id, tenantId, clusterId, state: { in: VISIBLE } } });
  }

  rename(tenantId: string, id: string, name: string): Promise<Snapshot> {
    return this.db.snapshot.update({ where: { id, tenantId }, data: { name } });
  }

  /** Queues deleting one snapshot's blob; hides the snapshot at once. */
  async requestDelete(cluster: Cluster, snapshot: Snapshot, actor: string, kind: OperationKind): Promise<Operation> {
    const id = randomUUID();
    return this.db.$transaction(async (tx) => {
      await tx.snapshot.update({ where: { id: snapshot.id }, data: { state: SnapshotState.Deleting } });
      const op = await insertOperation(tx, { id, tenantId: cluster.tenantId, clusterId: cluster.id, kind, requestedBy: actor, params: { snapshotId: snapshot.id } });
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, operationId: id, actor, action: 'snapshot.delete.requested', details: { snapshotId: snapshot.id } } });
      return op;
    });
  }
}
