import { randomUUID } from 'node:crypto';
import { ClusterRepository } from './persistence/cluster.repository';
import { SnapshotRepository } from './persistence/snapshot.repository';
import { OperationKind, SnapshotKind } from './model';
import type { Cluster, Operation } from './generated/prisma/client';

/** The actions a maintenance wave can run on each cluster. */
export const WAVE_ACTIONS = ['snapshot', 'upgrade', 'rotate-gossip-key', 'rotate-certificates', 'repair'] as const;
export type WaveAction = (typeof WAVE_ACTIONS)[number];

/** Requests one action on a cluster as an operation, the same rows the customer-facing routes write. */
export async function requestClusterAction(
  clusters: ClusterRepository,
  snapshots: SnapshotRepository,
  cluster: Cluster,
  action: WaveAction,
  params: Record<string, unknown>,
  actor: string,
): Promise<Operation> {
  switch (action) {
    case 'snapshot':
      return (await snapshots.requestWithOperation(cluster, actor, { kind: OperationKind.Snapshot, action: 'snapshot.requested' }, { name: String(params.name ?? 'maintenance'), kind: SnapshotKind.Manual })).operation;
    case 'upgrade':
      return clusters.addOperation(cluster, OperationKind.Upgrade, actor, 'cluster.upgrade.requested', {
        toVersion: params.consulVersion, fromVersion: cluster.consulVersion, preUpgradeSnapshotId: randomUUID(),
      });
    case 'rotate-gossip-key':
      return clusters.addOperation(cluster, OperationKind.RotateGossipKey, actor, 'cluster.rotate.requested', { what: 'gossip-key' });
    case 'rotate-certificates':
      return clusters.addOperation(cluster, OperationKind.RotateCertificates, actor, 'cluster.rotate.requested', { what: 'certificates' });
    case 'repair':
      return clusters.addOperation(cluster, OperationKind.Repair, actor, 'cluster.repair.requested', { down: [] });
  }
}
