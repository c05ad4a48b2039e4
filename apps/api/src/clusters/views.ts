import type { AllowlistEntry, ClusterView, OperationStep, OperationView } from '../../../../libs/contracts/src';
import type { ClusterServer, ClusterViewColumns, Operation, UpgradePolicy } from '../../../../libs/core/src';

const CONSUL_HTTPS_PORT = 8501;

/** A cluster as the API shows it: from a full row with its servers, or from the hot read's row (findViewForTenant). */
export function clusterView(c: ClusterViewColumns & ({ servers?: ClusterServer[]; serverAddresses?: undefined } | { serverAddresses: string[] })): ClusterView {
  const addresses = c.serverAddresses ?? ('servers' in c ? (c.servers ?? []).map((s) => s.address) : []);
  const first = addresses[0];
  const https = first ? `https://${first}:${CONSUL_HTTPS_PORT}` : null;
  // Shown while the endpoint is on and made (the worker records its address); an IPv6 address in brackets.
  const publicHost = c.publicEndpoint && c.publicAddress ? (c.publicAddress.includes(':') ? `[${c.publicAddress}]` : c.publicAddress) : null;
  return {
    id: c.id,
    name: c.name,
    state: c.state as ClusterView['state'],
    stateReason: c.stateReason,
    tier: c.tier,
    servers: c.serverCount,
    consulVersion: c.consulVersion,
    region: c.region,
    datacenter: c.datacenter,
    subscriptionId: c.subscriptionId,
    resourceGroup: c.resourceGroup,
    managedResourceGroup: c.managedResourceGroup,
    publicEndpoint: c.publicEndpoint,
    ipAllowlist: (Array.isArray(c.ipAllowlist) ? c.ipAllowlist : []) as unknown as AllowlistEntry[],
    deletionProtection: c.deletionProtection,
    target: c.target,
    endpoints: { https, ui: https ? `${https}/ui/` : null, public: publicHost ? `https://${publicHost}:${CONSUL_HTTPS_PORT}` : null },
    serverAddresses: addresses,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
    runningSince: c.runningSince?.toISOString() ?? null,
    snapshotPolicy: { intervalHours: c.snapshotIntervalHours, retention: c.snapshotRetention },
    upgradePolicy: { mode: c.upgradeMode as UpgradePolicy['mode'], window: (c.upgradeWindow ?? null) as UpgradePolicy['window'], pin: c.upgradePin as UpgradePolicy['pin'] },
    // Public expiry dates (null until the worker recorded them): the signing CA's and the earliest server certificate's.
    certificates: { caNotAfter: iso(c.caNotAfter), serverCertificatesNotAfter: iso(c.serverCertsNotAfter) },
    health: { status: c.health, reason: c.healthReason, checkedAt: c.healthCheckedAt?.toISOString() ?? null },
    primaryClusterId: c.primaryClusterId,
  };
}

/** Raw reads may hand timestamps back as strings. */
function iso(d: Date | string | null | undefined): string | null {
  return d == null ? null : new Date(d).toISOString();
}

export function operationView(o: Operation): OperationView {
  return {
    id: o.id,
    kind: o.kind,
    state: o.state as OperationView['state'],
    progress: o.progress,
    clusterId: o.clusterId,
    currentStep: o.currentStep,
    steps: (Array.isArray(o.steps) ? o.steps : []) as OperationStep[],
    attempts: o.attempts,
    ...(o.error ? { error: o.error as OperationView['error'] } : {}),
    createdAt: o.createdAt.toISOString(),
    startedAt: o.startedAt?.toISOString() ?? null,
    finishedAt: o.finishedAt?.toISOString() ?? null,
  };
}
