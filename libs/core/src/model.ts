/** The domain's states and kinds, as stored on rows and shown by the API. */

export const ClusterState = {
  Creating: 'Creating',
  Running: 'Running',
  Updating: 'Updating',
  Deleting: 'Deleting',
  Deleted: 'Deleted',
  Failed: 'Failed',
} as const;
export type ClusterState = (typeof ClusterState)[keyof typeof ClusterState];

export const OperationState = {
  Queued: 'Queued',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Canceled: 'Canceled',
} as const;
export type OperationState = (typeof OperationState)[keyof typeof OperationState];
export const TERMINAL_OPERATION_STATES: ReadonlySet<string> = new Set([OperationState.Succeeded, OperationState.Failed, OperationState.Canceled]);

export const OperationKind = {
  Create: 'create',
  Delete: 'delete',
  CreateToken: 'create-token',
  RevokeToken: 'revoke-token',
  Snapshot: 'snapshot',
  Restore: 'restore',
  DeleteSnapshot: 'delete-snapshot',
  Scale: 'scale',
  Repair: 'repair',
  RotateGossipKey: 'rotate-gossip-key',
  RotateCertificates: 'rotate-certificates',
  RotateManagementToken: 'rotate-management-token',
  RotateCa: 'rotate-ca',
  Upgrade: 'upgrade',
  UpdateEndpoint: 'update-endpoint',
} as const;
export type OperationKind = (typeof OperationKind)[keyof typeof OperationKind];

/**
 * Operations that change a cluster take its lock; others (issuing a token) run beside them.
 * Revoking a token takes the lock: ordered with restores, a revoked token never comes back
 * from a snapshot restored after it (the restore deletes it again, see RestoreFlow).
 */
export function isMutating(kind: OperationKind): boolean {
  return kind !== OperationKind.CreateToken && kind !== OperationKind.DeleteSnapshot;
}

/** An issued token's life (IssuedToken.state). */
export const IssuedTokenState = { Creating: 'Creating', Active: 'Active', Revoking: 'Revoking', Revoked: 'Revoked' } as const;
export type IssuedTokenState = (typeof IssuedTokenState)[keyof typeof IssuedTokenState];

/** Why a token was revoked. */
export const TokenRevokeReason = { Requested: 'requested', Uncollected: 'uncollected', CreateFailed: 'create-failed', ClusterDeleted: 'cluster-deleted' } as const;
export type TokenRevokeReason = (typeof TokenRevokeReason)[keyof typeof TokenRevokeReason];

export const SnapshotKind = { Scheduled: 'scheduled', Manual: 'manual', PreUpgrade: 'pre-upgrade', PreRestore: 'pre-restore' } as const;
export type SnapshotKind = (typeof SnapshotKind)[keyof typeof SnapshotKind];

export const SnapshotState = { Pending: 'Pending', Available: 'Available', Failed: 'Failed', Deleting: 'Deleting', Deleted: 'Deleted' } as const;
export type SnapshotState = (typeof SnapshotState)[keyof typeof SnapshotState];

export interface OperationStep {
  name: string;
  state: 'Running' | 'Succeeded' | 'Failed';
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  detail?: string;
}

export interface OperationError {
  code: string;
  message: string;
}

/** Names of the secrets a cluster holds (sealed in ClusterSecret). */
export const SecretName = {
  Pki: 'pki',
  GossipKey: 'gossip-key',
  ManagementToken: 'management-token',
  NextGossipKey: 'gossip-key-next',
  NextPki: 'pki-next',
  /** The CA roll in progress or the last one: the next CA and its server certificates (see RotateCaFlow). */
  CaRotation: 'ca-rotation',
  /** The management token rotation in progress, or the last one (see planManagementTokenRotation). */
  ManagementTokenRotation: 'management-token-rotation',
  /** A secondary's tokens made in the primary: replication, server agents, and its management token's accessor (see SecondaryAcl). */
  FederationTokens: 'federation-tokens',
  ManagementTokenAccessors: 'management-token-accessors', // every AccessorID its management tokens have had (see ManagementTokenAccessors)
  /** The audit export's container URL with its SAS (see AuditExportRepository); outlives the cluster's other secrets until the export has drained. */
  AuditExportSas: 'audit-export-sas',
  issuedToken: (operationId: string) => `issued-token:${operationId}`,
  /** The SecretID of a user's Consul UI token (see ConsulUiSession). */
  consulUiToken: (uiSessionId: string) => `consul-ui-token:${uiSessionId}`,
} as const;
