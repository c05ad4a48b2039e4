/** The shapes the API answers with (apps/api/src/clusters/views.ts and friends), as the CLI reads them. */

export interface OperationStepView {
  name: string;
  state: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  detail?: string;
}

export interface OperationView {
  id: string;
  kind: string;
  state: string;
  progress: number;
  clusterId: string;
  currentStep: string | null;
  steps: OperationStepView[];
  attempts: number;
  error?: { code: string; message: string };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ClusterView {
  id: string;
  name: string;
  state: string;
  stateReason: string | null;
  tier: string;
  servers: number;
  consulVersion: string;
  region: string;
  datacenter: string;
  subscriptionId: string;
  resourceGroup: string;
  managedResourceGroup: string | null;
  publicEndpoint: boolean;
  endpoints: { https: string | null; ui: string | null };
  serverAddresses: string[];
  createdAt: string;
  runningSince: string | null;
  snapshotPolicy?: { intervalHours: number; retention: number };
  upgradePolicy?: { mode: string; window: { dayOfWeek: number; startHourUtc: number; hours: number } | null };
  health?: { status: string; reason: string | null; checkedAt: string | null };
}

export interface SnapshotView {
  id: string;
  clusterId: string;
  name: string;
  kind: string;
  state: string;
  size: number | null;
  sha256: string | null;
  consulIndex: string | null;
  createdAt: string;
}

export interface ClientConfigView {
  datacenter: string;
  caPem: string;
  encrypt: string;
  retryJoin: string[];
  httpsAddress: string;
  autoEncrypt: boolean;
  consulConfig: Record<string, unknown>;
}

export interface IssuedTokenView {
  accessorId: string;
  secretId: string;
}

export interface WaveView {
  id: string;
  action: string;
  state: string;
  total: number;
  succeeded: number;
  failed: number;
  clusters: { clusterId: string; state: string; operationId: string | null }[];
}

/** A 202: the operation that does the work, sometimes with the resource it works on. */
export interface Accepted {
  operation: OperationView;
}
