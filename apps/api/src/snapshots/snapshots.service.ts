import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  TenantClusterRepository, ClusterState, ConflictError, NotFoundError, OperationKind, SnapshotKind, TenantSnapshotRepository, SnapshotState,
  IdempotencyRepository, type Config, type Operation, type Snapshot, isUuid
} from '../../../../libs/core/src';
import { ROUTES, type OperationView, type SnapshotView } from '../../../../libs/contracts/src';
import type { Principal } from '../auth/principal';
import { operationView } from '../clusters/views';
import { OperationDispatcher } from '../operation.dispatcher';
import { CONFIG } from '../tokens';
import { idempotentRequest, requestHash } from '../idempotent-request';

export function snapshotView(s: Snapshot): SnapshotView {
  return {
    id: s.id,
    clusterId: s.clusterId,
    name: s.name,
    kind: s.kind,
    state: s.state,
    size: s.size === null ? null : Number(s.size),
    sha256: s.sha256,
    consulIndex: s.consulIndex === null ? null : s.consulIndex.toString(),
    createdAt: s.createdAt.toISOString(),
  };
}

@Injectable()
export class SnapshotsService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly dispatcher: OperationDispatcher,
    private readonly clusters: TenantClusterRepository,
    private readonly snapshots: TenantSnapshotRepository,
    private readonly idempotency: IdempotencyRepository,
  ) {}

  async create(caller: Principal, clusterId: string, requestedName: string | undefined, idempotencyKey?: string): Promise<{ snapshot: SnapshotView; operation: OperationView }> {
    const hash = requestHash(ROUTES.takeSnapshot.id, clusterId, { name: requestedName });
    return idempotentRequest(this.idempotency, caller.tenantId, idempotencyKey, hash, ROUTES.takeSnapshot.answers[202], async () => {
      const cluster = await this.runningCluster(caller, clusterId);
      const name = requestedName ?? `manual ${new Date().toISOString()}`;
      const view = (r: { operation: Operation; snapshot?: Snapshot }) => ({ snapshot: snapshotView(r.snapshot!), operation: operationView(r.operation) });
      const taken = await this.snapshots.requestWithOperation(
        cluster, caller.userId, { kind: OperationKind.Snapshot, action: 'snapshot.requested' }, { name, kind: SnapshotKind.Manual },
        idempotencyKey ? { key: idempotencyKey, requestHash: hash, body: view } : undefined,
      );
      await this.dispatcher.dispatch(taken.operation.id);
      return view(taken);
    });
  }

  async list(caller: Principal, clusterId: string) {
    await this.cluster(caller, clusterId);
    return { snapshots: (await this.snapshots.listForCluster(caller.tenantId, clusterId)).map(snapshotView) };
  }

  async rename(caller: Principal, clusterId: string, snapshotId: string, name: string): Promise<SnapshotView> {
    await this.cluster(caller, clusterId);
    const s = await this.snapshot(caller, clusterId, snapshotId);
    return snapshotView(await this.snapshots.rename(caller.tenantId, s.id, name));
  }

  async delete(caller: Principal, clusterId: string, snapshotId: string): Promise<OperationView> {
    const cluster = await this.cluster(caller, clusterId);
    const s = await this.snapshot(caller, clusterId, snapshotId);
    if (s.state === SnapshotState.Pending) throw new ConflictError('snapshot_in_progress', 'the snapshot is still being taken; delete it once it is Available');
    const op = await this.snapshots.requestDelete(cluster, s, caller.userId, OperationKind.DeleteSnapshot);
    await this.dispatcher.dispatch(op.id);
    return operationView(op);
  }

  async restore(caller: Principal, clusterId: string, snapshotId: string, takeSnapshot: boolean): Promise<OperationView> {
    const cluster = await this.cluster(caller, clusterId);
    const s = await this.snapshot(caller, clusterId, snapshotId);
    if (cluster.state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; restore needs it Running`);
    if (s.state !== SnapshotState.Available) throw new ConflictError('snapshot_not_available', `the snapshot is ${s.state}; only an Available snapshot can be restored`);
    const params: Record<string, unknown> = { snapshotId: s.id };
    if (takeSnapshot) params.preRestoreSnapshotId = randomUUID();
    const { operation } = await this.snapshots.requestWithOperation(cluster, caller.userId, { kind: OperationKind.Restore, action: 'cluster.restore.requested', params });
    await this.dispatcher.dispatch(operation.id);
    return operationView(operation);
  }

  private async cluster(caller: Principal, id: string) {
    const cluster = isUuid(id) ? await this.clusters.findForTenant(caller.tenantId, id) : null;
    if (!cluster || cluster.state === ClusterState.Deleted) throw new NotFoundError('cluster_not_found', `no cluster ${id}`);
    return cluster;
  }

  private async runningCluster(caller: Principal, id: string) {
    const cluster = await this.cluster(caller, id);
    if (cluster.state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; snapshots need it Running`);
    return cluster;
  }

  private async snapshot(caller: Principal, clusterId: string, id: string) {
    const s = isUuid(id) ? await this.snapshots.findForTenant(caller.tenantId, clusterId, id) : null;
    if (!s) throw new NotFoundError('snapshot_not_found', `no snapshot ${id} of cluster ${clusterId}`);
    return s;
  }
}
