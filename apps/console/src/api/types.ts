// The API's answers, typed from the API's own view functions (type-only imports: nothing of the
// server is bundled). A change to a view breaks the console's type check, not its users.
import type { clusterView, operationView } from '../../../api/src/clusters/views';
import type { snapshotView } from '../../../api/src/snapshots/snapshots.service';
import type { waveView } from '../../../api/src/admin/waves.service';
import type { CatalogController } from '../../../api/src/catalog/catalog.controller';
import type { OperationError, OperationStep } from '../../../../libs/core/src/model';
import type { UpgradePolicy } from '../../../../libs/core/src/persistence/upgrade-schedule.repository';

// The upgrade window is a JSON column; the API writes it only as parseUpgradePolicy validated it.
export type Cluster = Omit<ReturnType<typeof clusterView>, 'upgradePolicy'> & { upgradePolicy: UpgradePolicy };
export type FleetCluster = Cluster & { tenantId: string };
export type Operation = Omit<ReturnType<typeof operationView>, 'steps' | 'error'> & { steps: OperationStep[] | null; error?: OperationError };
export type Snapshot = ReturnType<typeof snapshotView>;
export type Wave = ReturnType<typeof waveView>;
export type Region = ReturnType<CatalogController['regions']>['regions'][number];
export type Version = ReturnType<CatalogController['versions']>['versions'][number];
export type TierCatalog = ReturnType<CatalogController['tiers']>;
export type Tier = TierCatalog['tiers'][number];
export type { OperationStep };

export interface AuditEvent {
  id: string;
  action: string;
  actor: string;
  operationId: string | null;
  details: unknown;
  createdAt: string;
}

/** GET /auth/session (the backend's session contract). */
export interface Session {
  user: { tenantId: string; userId: string; name: string; roles: string[] };
  csrfToken: string;
  expiresAt: string;
  operator: boolean;
}

export interface ClientConfig {
  datacenter: string;
  caPem: string;
  encrypt?: string;
  encryptOmitted?: string;
  retryJoin: string[];
  httpsAddress: string;
  consulConfig: Record<string, unknown>;
}

export interface CreatedToken {
  accessorId: string;
  secretId: string;
}

/** POST /tokens when the token was not made within the API's wait: its secret is collected (POST `collect`) once the operation has Succeeded. */
export interface PendingToken {
  operation: Operation;
  collect: string;
}

export const ACTIVE_CLUSTER_STATES: ReadonlySet<string> = new Set(['Creating', 'Updating', 'Deleting']);
export const ENDED_OPERATION_STATES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Canceled']);
