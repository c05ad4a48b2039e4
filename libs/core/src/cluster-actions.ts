import { randomUUID } from 'node:crypto';
import { OperationKind, SnapshotKind } from './model';
import type { Cluster } from './generated/prisma/client';

import { crossedPin, type UpgradePin, type WaveAction } from '../../contracts/src';
export { WAVE_ACTIONS, type WaveAction } from '../../contracts/src';

/** What requesting an action writes: the operation's kind and params, the audit action, and for a snapshot its row. */
export interface PlannedAction {
  kind: OperationKind;
  auditAction: string;
  params: Record<string, unknown>;
  snapshot?: { id: string; name: string; kind: SnapshotKind };
}

/** The rows one action on a cluster needs, the same the customer-facing routes write. */
export function planClusterAction(cluster: Pick<Cluster, 'consulVersion'>, action: WaveAction, params: Record<string, unknown>): PlannedAction {
  switch (action) {
    case 'snapshot': {
      const id = randomUUID();
      return { kind: OperationKind.Snapshot, auditAction: 'snapshot.requested', params: { snapshotId: id }, snapshot: { id, name: String(params.name ?? 'maintenance'), kind: SnapshotKind.Manual } };
    }
    case 'upgrade':
      return {
        kind: OperationKind.Upgrade, auditAction: 'cluster.upgrade.requested',
        params: { toVersion: params.consulVersion, fromVersion: cluster.consulVersion, preUpgradeSnapshotId: randomUUID() },
      };
    case 'rotate-gossip-key':
      return { kind: OperationKind.RotateGossipKey, auditAction: 'cluster.rotate.requested', params: { what: 'gossip-key' } };
    case 'rotate-certificates':
      return { kind: OperationKind.RotateCertificates, auditAction: 'cluster.rotate.requested', params: { what: 'certificates' } };
    case 'rotate-management-token':
      return { kind: OperationKind.RotateManagementToken, auditAction: 'cluster.rotate.requested', params: { what: 'management-token' } };
    case 'rotate-ca':
      return { kind: OperationKind.RotateCa, auditAction: 'cluster.rotate.requested', params: { what: 'ca' } };
    case 'repair':
      return { kind: OperationKind.Repair, auditAction: 'cluster.repair.requested', params: { down: [] } };
  }
}

/**
 * Why a wave leaves a cluster alone instead of acting on it, or null: an upgrade wave's version
 * outside the cluster's upgrade pin (`pinned to 1.8.x; the wave's 1.9.0 crosses the pin`).
 */
export function waveSkipReason(cluster: { consulVersion: string; upgradePin: string }, action: WaveAction, params: Record<string, unknown>): string | null {
  if (action !== 'upgrade') return null;
  const to = String(params.consulVersion);
  const range = crossedPin(cluster.upgradePin as UpgradePin, cluster.consulVersion, to);
  return range && `pinned to ${range}; the wave's ${to} crosses the pin`;
}
