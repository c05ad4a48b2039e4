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
  /** The gossip key: Clusters.ReadWrite only. */
  encrypt?: string;
  /** Instead of `encrypt` for Clusters.Read: why it is left out and how to get it. */
  encryptOmitted?: string;
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

/** One cluster's usage of one billing dimension (apps/api/src/billing/billing.service.ts). Amounts are decimal text. */
export interface UsageLineView {
  clusterId: string;
  clusterName: string;
  subscriptionId: string;
  resourceGroup: string;
  dimension: string;
  minutes: number;
  hours: string;
  unitPrice: string;
  amount: string;
}

export interface UsageView {
  from: string;
  to: string;
  currency: string;
  lines: UsageLineView[];
  total: string;
}

/** SRE: every subscription's invoice for a month, each as the CSV a customer gets. */
export interface MonthInvoicesView {
  month: string;
  currency: string;
  invoices: { subscriptionId: string; lines: number; total: string; csv: string }[];
}

/** One (resource, dimension, UTC day) group on our side and the marketplace's; quantities in hours. */
export interface ReconciliationEntryView {
  resourceId: string;
  dimension: string;
  day: string;
  ours: number;
  theirs: number;
}

export interface ReconciliationView {
  from: string;
  to: string;
  compared: { ours: number; theirs: number };
  matched: number;
  missing: ReconciliationEntryView[];
  extra: ReconciliationEntryView[];
  mismatched: ReconciliationEntryView[];
  /** Our records not billed through the marketplace, by export state. */
  unbilled: Record<string, number>;
}
