import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { everBillable, openSegment } from './billing-segments';
import { ClusterState, OperationState } from '../model';
import type { Operation } from '../generated/prisma/client';

/**
 * A tenant's operations: what the API reads and cancels. Every read takes the tenant as a
 * required argument, but findForOperator, which says why it does not.
 */
export class TenantOperationRepository {
  constructor(private readonly db: Db) {}

  findForTenant(tenantId: string, id: string): Promise<Operation | null> {
    return this.db.operation.findFirst({ where: { id, tenantId } });
  }

  /**
   * Any tenant's operation, for a route only an operator may take that way (Platform.SRE of the
   * operator tenant collecting a token's secret, POST /v1/operations/{id}/token): the caller
   * decides that the principal is an operator before it reads.
   */
  findForOperator(id: string): Promise<Operation | null> {
    return this.db.operation.findUnique({ where: { id } });
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
      // A queued operation holds no lock; should one ever (an older claim's race), it ends with the operation.
      await tx.cluster.updateMany({ where: { id: op.clusterId, lockedByOperationId: op.id }, data: { lockedByOperationId: null } });
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
      } else if (op.kind === 'revoke-token') {
        // The token stays as it was (a secret waiting to be collected was deleted with the request: it is not handed out).
        await tx.issuedToken.updateMany({ where: { revokeOperationId: op.id, state: 'Revoking' }, data: { state: 'Active', revokeOperationId: null } });
      }
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: op.tenantId, clusterId: op.clusterId, operationId: op.id, actor, action: 'operation.canceled', details: { kind: op.kind } } });
      return true;
    });
  }
}
