import type { Db } from './prisma';
import { randomUUID } from 'node:crypto';
import { everBillable, openSegment } from './billing-segments';
import { ClusterState, OperationState, type OperationError, type OperationStep } from '../model';
import { Prisma, type Operation } from '../generated/prisma/client';

/** Operation rows: the truth for every job; the step log and progress live here. */
export class OperationRepository {
  constructor(private readonly db: Db) {}

  findForTenant(tenantId: string, id: string): Promise<Operation | null> {
    return this.db.operation.findFirst({ where: { id, tenantId } });
  }

  get(id: string): Promise<Operation | null> {
    return this.db.operation.findUnique({ where: { id } });
  }

  /** Queued or Running operations: what the reconciler makes sure has a job. */
  listUnfinished(limit = 1000): Promise<Pick<Operation, 'id' | 'state' | 'updatedAt'>[]> {
    return this.db.operation.findMany({
      where: { state: { in: [OperationState.Queued, OperationState.Running] } },
      select: { id: true, state: true, updatedAt: true },
      orderBy: { seq: 'asc' },
      take: limit,
    });
  }

  async start(id: string): Promise<Operation> {
    return this.db.operation.update({
      where: { id },
      data: { state: OperationState.Running, attempts: { increment: 1 }, startedAt: new Date() },
    });
  }

  async saveSteps(id: string, steps: OperationStep[], progress: number, currentStep: string | null): Promise<void> {
    await this.db.operation.update({ where: { id }, data: { steps: steps as unknown as object[], progress, currentStep } });
  }

  /** Ends the operation and frees its cluster's lock in one transaction: nothing sees it ended but still holding the cluster. */
  async succeed(id: string, result?: Record<string, unknown>): Promise<void> {
    await this.db.$transaction([
      this.db.operation.update({
        where: { id },
        data: { state: OperationState.Succeeded, progress: 100, currentStep: null, finishedAt: new Date(), error: Prisma.DbNull, ...(result ? { result: result as object } : {}) },
      }),
      this.db.cluster.updateMany({ where: { lockedByOperationId: id }, data: { lockedByOperationId: null } }),
    ]);
  }

  async fail(id: string, error: OperationError): Promise<void> {
    await this.db.$transaction([
      this.db.operation.update({ where: { id }, data: { state: OperationState.Failed, finishedAt: new Date(), error: error as unknown as object } }),
      this.db.cluster.updateMany({ where: { lockedByOperationId: id }, data: { lockedByOperationId: null } }),
    ]);
  }

  listForCluster(tenantId: string, clusterId: string, limit = 100): Promise<Operation[]> {
    return this.db.operation.findMany({ where: { tenantId, clusterId }, orderBy: { seq: 'desc' }, take: limit });
  }

  /**
   * Cancels an operation that has not started, and undoes what requesting it
   * did to the cluster and snapshot rows, in one transaction. Returns false when
   * it is no longer Queued (a worker took it meanwhile).
   */
  async cancelQueued(op: Operation, actor: string, at: Date = new Date()): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const n = await tx.operation.updateMany({
        where: { id: op.id, state: OperationState.Queued },
        data: { state: OperationState.Canceled, finishedAt: new Date(), error: { code: 'canceled', message: `canceled by ${actor} before it started` } },
      });
      if (n.count !== 1) return false;
      const params = (op.params ?? {}) as { previousState?: string; snapshotId?: string };
      if (op.kind === 'create') {
        await tx.cluster.updateMany({ where: { id: op.clusterId, state: ClusterState.Creating }, data: { state: ClusterState.Failed, stateReason: 'create canceled before it started; delete the cluster' } });
      } else if (op.kind === 'delete' && params.previousState) {
        const back = await tx.cluster.updateMany({ where: { id: op.clusterId, state: ClusterState.Deleting }, data: { state: params.previousState } });
        // Billing stopped when the delete was asked for; the cluster stays, so it is billable again from now.
        if (back.count === 1 && (await everBillable(tx, op.clusterId))) {
          const { tier } = await tx.cluster.findUniqueOrThrow({ where: { id: op.clusterId }, select: { tier: true } });
          await openSegment(tx, op.clusterId, tier, at);
        }
      } else if (op.kind === 'snapshot' && params.snapshotId) {
        await tx.snapshot.updateMany({ where: { id: params.snapshotId, state: 'Pending' }, data: { state: 'Failed' } });
      } else if (op.kind === 'delete-snapshot' && params.snapshotId) {
        await tx.snapshot.updateMany({ where: { id: params.snapshotId, state: 'Deleting' }, data: { state: 'Available' } });
      }
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: op.tenantId, clusterId: op.clusterId, operationId: op.id, actor, action: 'operation.canceled', details: { kind: op.kind } } });
      return true;
    });
  }

  /** Records the last error of an attempt that will be retried, without ending the operation. */
  async noteRetry(id: string, error: OperationError): Promise<void> {
    await this.db.operation.update({ where: { id }, data: { error: { ...error, retrying: true } } });
  }
}
