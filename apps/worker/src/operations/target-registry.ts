import fs from 'node:fs';
import path from 'node:path';
import { ClusterState, DEFAULT_VNET_CIDR, availabilityZones, azureConsulPackages, azureCredential, type Cluster, type ClusterRepository, type Config } from '../../../../libs/core/src';
import { AzureTarget, LocalTarget, type AzurePeer, type AzurePlacement, type Target, type TargetKind } from '../../../../libs/provisioner/src';
import { PermanentError } from './flows/flow';

/**
 * Which implementation runs a cluster's servers, by the cluster row's
 * `target` column. Each target is made once, on first use. `azure` is
 * available when AZURE_CONSUL_PACKAGES says what the VMs install; a worker
 * configured to default to a target it cannot run does not start.
 */
export class TargetRegistry {
  private readonly made = new Map<TargetKind, Target>();
  private readonly factories: Partial<Record<TargetKind, () => Target>>;

  constructor(config: Config, binaryFor: (version: string) => string, clusters: ClusterRepository) {
    this.factories = {
      local: () => new LocalTarget({ clustersDir: path.join(config.LOCAL_DIR, 'clusters'), consulBinary: binaryFor }),
    };
    const packages = azureConsulPackages(config.AZURE_CONSUL_PACKAGES);
    if (Object.keys(packages).length > 0) {
      this.factories.azure = () => new AzureTarget({
        credential: azureCredential(config),
        armEndpoint: config.ARM_ENDPOINT,
        adminSshPublicKey: config.AZURE_ADMIN_SSH_PUBLIC_KEY ?? '',
        managementSubnetId: config.AZURE_MANAGEMENT_SUBNET_ID ?? '',
        template: JSON.parse(fs.readFileSync(path.join(config.repoRoot, 'infra', 'arm', 'cluster.json'), 'utf8')) as Record<string, unknown>,
        consulPackage: (version) => {
          const p = packages[version];
          if (!p) throw new PermanentError('no_consul_package', `AZURE_CONSUL_PACKAGES has no package for Consul ${version}`);
          return { version, ...p };
        },
        binaryFor,
        vmClustersDir: config.AZURE_VM_CLUSTERS_DIR,
        pollIntervalMs: config.AZURE_POLL_INTERVAL_MS,
        placement: (clusterId) => azurePlacement(clusters, clusterId),
        journal: {
          current: async (clusterId) => {
            const held = await clusters.lockingOperationTargetState(clusterId);
            if (!held) throw new Error(`cluster ${clusterId} is held by no operation: an ARM deployment belongs to the operation that changes the cluster`);
            return held;
          },
          save: (_clusterId, operationId, name, state) => clusters.saveOperationTargetState(operationId, name, state),
        },
      });
    }
    if (!this.factories[config.defaultTarget]) {
      throw new Error(`CLUSTER_TARGET: the default target '${config.defaultTarget}' is not available in this worker (known: ${Object.keys(this.factories).join(', ')}; azure needs AZURE_CONSUL_PACKAGES)`);
    }
  }

  get(kind: string): Target {
    const known = kind as TargetKind;
    const cached = this.made.get(known);
    if (cached) return cached;
    const factory = this.factories[known];
    if (!factory) throw new PermanentError('unknown_target', `the cluster's target '${kind}' is not available in this worker`);
    const target = factory();
    this.made.set(known, target);
    return target;
  }

  close(): void {
    for (const t of this.made.values()) t.close();
  }
}

/**
 * Where an Azure cluster lives: its managed resource group (from its managed application, else the
 * row's subscription and group). A secondary's also names the members its VNet peers with: its
 * primary and the primary's other secondaries that are not being deleted.
 */
export async function azurePlacement(clusters: ClusterRepository, clusterId: string): Promise<AzurePlacement> {
  const c = await clusters.get(clusterId);
  if (!c) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
  const peers = c.primaryClusterId ? await federationPeers(clusters, c.id, c.primaryClusterId) : undefined;
  return {
    ...whereIs(c),
    location: c.region,
    externalEndpoint: c.publicEndpoint,
    allowlist: Array.isArray(c.ipAllowlist) ? (c.ipAllowlist as { cidr: string }[]) : [],
    zones: availabilityZones(c.region),
    addresses: new Map(c.servers.map((s) => [s.index, s.address])),
    ...(peers ? { peers } : {}),
  };
}

function whereIs(c: Cluster): AzurePeer {
  const m = c.managedResourceGroupId ? /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)$/i.exec(c.managedResourceGroupId) : null;
  return { clusterId: c.id, subscriptionId: m?.[1] ?? c.subscriptionId, resourceGroup: m?.[2] ?? c.managedResourceGroup, clusterName: c.name, vnetCidr: c.vnetCidr ?? DEFAULT_VNET_CIDR };
}

async function federationPeers(clusters: ClusterRepository, clusterId: string, primaryId: string): Promise<AzurePeer[]> {
  const primary = await clusters.get(primaryId);
  const siblings = (await clusters.liveSecondaries(primaryId)).filter((s) => s.id !== clusterId && s.state !== ClusterState.Deleting);
  return [...(primary && primary.state !== ClusterState.Deleted ? [primary] : []), ...siblings].map(whereIs);
}
