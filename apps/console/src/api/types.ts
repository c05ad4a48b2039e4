// The API's answers, as its route contracts (libs/contracts) declare them: the same schemas the
// API's answers are checked against in the tests. A change to a contract breaks the console's
// type check, not its users.
import type {
  AuditEventView, AuditExportView, ClientConfig, ClusterView, FederationMemberView, FederationTokenView, FederationView, FleetClusterView, OperationStep, OperationView, PendingTokenView, RegionView, SessionView, SnapshotView,
  TierCatalogView, TierView, TokenSecretView, VersionView, WaveView,
} from '../../../../libs/contracts/src';

export type Cluster = ClusterView;
export type FleetCluster = FleetClusterView;
export type Operation = OperationView;
export type Snapshot = SnapshotView;
export type Wave = WaveView;
export type Region = RegionView;
export type Version = VersionView;
export type TierCatalog = TierCatalogView;
export type Tier = TierView;
export type AuditEvent = AuditEventView;
/** GET /audit-export: the container (never the SAS) and how far the export has got. */
export type AuditExport = AuditExportView;
export type Session = SessionView;
export type CreatedToken = TokenSecretView;
/** POST /tokens when the token was not made within the API's wait: its secret is collected (POST `collect`) once the operation has Succeeded. */
export type PendingToken = PendingTokenView;
/** GET /federation: the cluster's role (primary, secondary, none), the federation's state and its members. */
export type Federation = FederationView;
export type FederationMember = FederationMemberView;
/** POST /federation-token: a single-use token (shown once) a new cluster joins this one's federation with. */
export type FederationToken = FederationTokenView;
export type { ClientConfig, OperationStep };

export const ACTIVE_CLUSTER_STATES: ReadonlySet<string> = new Set<Cluster['state']>(['Creating', 'Updating', 'Deleting']);
export const ENDED_OPERATION_STATES: ReadonlySet<string> = new Set<Operation['state']>(['Succeeded', 'Failed', 'Canceled']);
/** GET /v1/clusters/{id}/kubernetes: the Consul Helm chart's values and, with X-Consul-Token, the Secret they read. */
export type { KubernetesConfigView as KubernetesConfig } from '../../../../libs/contracts/src';
