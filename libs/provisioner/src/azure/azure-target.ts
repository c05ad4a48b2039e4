import { createHash } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { ResourceManagementClient, Deployment, DeploymentExtended } from '@azure/arm-resources';
import type { ComputeManagementClient, VirtualMachineScaleSetVM } from '@azure/arm-compute';
import type { NetworkManagementClient, PrivateEndpoint } from '@azure/arm-network';
import type { StorageManagementClient, StorageAccount } from '@azure/arm-storage';
import type { ClusterSecrets, ClusterSpec } from '../cluster-spec';
import { validateSpec } from '../consul/consul-api';
import { ClusterLayout } from '../local/cluster-layout';
import { serverFiles } from '../server-files';
import { BlobSnapshotStore, type SnapshotStore } from '../snapshots/blob-store';
import { READY, TargetRefusedError, type ObservedServer, type Progress, type PublicEndpointSpec, type ServerRoutes, type Target } from '../target';
import { armErrorOf, describeArmError, isRefusal, refusal } from './arm-errors';
import { loadSdk } from '../lazy-sdk';
import type { SecretClient } from '@azure/keyvault-secrets';
import { AZURE_CLUSTERS_DIR, clusterCustomData, serverSecretName, serverSecretValue, type ConsulPackage } from './cloud-init';
import { BOOT_STATUS_LINE, FETCH_SECRETS_LINE, RELOAD_LINE, parseRunCommandOutput, runCommandScript, writeFileLine } from './run-command';

/**
 * The `azure` target: a cluster's servers are the instances of one VM scale
 * set in the cluster's managed resource group, made by an ARM deployment of
 * infra/arm/cluster.json whose custom data (cloud-init) writes every
 * server's files with `serverFiles`, the code the local target writes them
 * with.
 *
 * - Infrastructure and servers are one deployment (`writeServerConfig`): the
 *   scale set's custom data carries the servers' config, so it waits for the
 *   cluster's secrets. Its name is made of the operation's id and a hash of
 *   its parameters: a retried step finds its deployment. The SDK poller's
 *   state is saved on the operation (`DeploymentJournal`), so a worker that
 *   restarts resumes polling the same deployment and never PUTs it again.
 *   A deployment that fails raises `DeploymentFailedError` with ARM's code
 *   and message. Throttling (429) waits its Retry-After inside the SDK's
 *   pipeline.
 * - A change of a running server's config (certificates, retry_join) is put
 *   on the instance by Run Command (files written atomically, no restart),
 *   and the scale-set model holds it for instances made or reimaged later.
 * - Server-by-server steps act on one instance (manual upgrade policy: the
 *   worker picks the order): a restart onto the current model is a manual
 *   upgrade and a reimage of that instance (its OS disk anew from the model,
 *   cloud-init again; Consul's data is on the data disk and stays), a stop is
 *   a power-off, a removal deletes the instance.
 * - The worker and the API reach the servers only through the cluster's
 *   Private Link service (on its internal load balancer, with one inbound NAT
 *   rule V2 per port: each instance a frontend port of its own), by one
 *   private endpoint per cluster that the worker makes in the control plane's
 *   own subnet (`managementSubnetId`). Customers' address spaces overlap each
 *   other's: nothing is peered with the control plane, and no server address is
 *   ever dialled by it.
 * - A federation's secondary peers its VNet with every other member's (its
 *   template's `federationPeers`), and each member peers back by a deployment
 *   of its own in that member's group (`ensurePeerings`), so that the members'
 *   servers reach each other's RPC and WAN gossip ports; deleting the secondary
 *   deletes the members' peerings to it.
 * - Deleting deploys an empty template in Complete mode: every resource of
 *   the managed resource group goes, the group stays (Azure owns it); the
 *   private endpoint goes first (Azure keeps a Private Link service that
 *   still has connections).
 */

/** Where a cluster lives in Azure, from its row. */
export interface AzurePlacement {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** The template's `clusterName`: prefixes every resource (the scale set is `<name>-servers`). */
  clusterName: string;
  vnetCidr: string;
  externalEndpoint: boolean;
  /** The public endpoint's allowlist (its CIDRs, checked by the API's contract): the NSG admits these to the public load balancer. */
  allowlist?: readonly { cidr: string }[];
  /** The availability zones of the region (the catalog's table): none where it has none. */
  zones: readonly string[];
  /** The server addresses the cluster's rows hold, by index (what maps an instance's private IP to its server). */
  addresses: ReadonlyMap<number, string>;
  /**
   * A federation's secondary: the members its VNet peers with (its primary and the primary's
   * other live secondaries: Consul's WAN pool is a full mesh, and peering is not transitive).
   * Absent for a primary and a cluster on its own.
   */
  peers?: readonly AzurePeer[];
}

/** Another member of a secondary's federation, where its VNet is. */
export interface AzurePeer {
  clusterId: string;
  subscriptionId: string;
  resourceGroup: string;
  /** Its template's `clusterName` (its VNet is `<clusterName>-vnet`). */
  clusterName: string;
  vnetCidr: string;
}

/**
 * The poller states of the deployments of the operation that changes a cluster
 * now (the one holding its lock), saved on that operation.
 */
export interface DeploymentJournal {
  current(clusterId: string): Promise<{ operationId: string; states: Readonly<Record<string, string>> }>;
  save(clusterId: string, operationId: string, deploymentName: string, state: string): Promise<void>;
}

export interface AzureTargetOptions {
  credential: TokenCredential;
  /** ARM's endpoint (https://management.azure.com, or a sovereign cloud's, or a local ARM server in tests). */
  armEndpoint: string;
  placement(clusterId: string): Promise<AzurePlacement>;
  journal: DeploymentJournal;
  /** The operator's break-glass SSH public key, on every VM's admin user (Azure wants one with password login disabled). */
  adminSshPublicKey: string;
  /** The control plane's subnet for the clusters' private endpoints (AZURE_MANAGEMENT_SUBNET_ID), a resource id. */
  managementSubnetId: string;
  /** infra/arm/cluster.json, parsed. */
  template: Record<string, unknown>;
  /** The Debian package a Consul version is installed from on the VMs. */
  consulPackage(version: string): ConsulPackage;
  /** What `serverBinary` answers for a version (the worker compares it with its catalog). */
  binaryFor(version: string): string;
  /** Root of the server folders on the VMs (default AZURE_CLUSTERS_DIR). */
  vmClustersDir?: string;
  /** How soon to ask again about a running deployment or instance action. Default 5 s. */
  pollIntervalMs?: number;
}

/** ARM said the deployment failed: the root cause's code and message, for the operation's error. Retrying it cannot help: permanent. */
export class DeploymentFailedError extends TargetRefusedError {
  constructor(readonly deploymentName: string, readonly armCode: string, readonly armMessage: string) {
    super(armCode, `ARM deployment ${deploymentName} failed: ${armCode}: ${armMessage}`);
  }
}

/** An instance's boot script failed (its status file says at which step): the server will not come up on this model. */
export class InstanceBootFailedError extends Error {
  constructor(readonly instanceId: string, readonly scaleSet: string, readonly outcome: string) {
    super(`instance ${instanceId} of scale set ${scaleSet} failed to boot: ${outcome} (its cloud-init output: /var/log/cloud-init-output.log)`);
  }
}

/** Servers by tier (the template's `tier` parameter sets the scale set's capacity). */
const TIER_OF_COUNT: Readonly<Record<number, string>> = { 1: 'development', 3: 'standard', 5: 'plus' };
const EMPTY_TEMPLATE = { $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#', contentVersion: '1.0.0.0', resources: [] };
/**
 * A federation member's peering back to a secondary, deployed into that member's managed resource
 * group (the control plane's Contributor there covers it): the same settings as cluster.json's
 * federationPeerings. Azure connects a peering only once both VNets peer with each other
 * (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering#requirements-and-constraints).
 */
export const PEER_BACK_TEMPLATE = {
  $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
  contentVersion: '1.0.0.0',
  parameters: { vnetName: { type: 'string' }, peeringName: { type: 'string' }, remoteVirtualNetworkId: { type: 'string' } },
  resources: [{
    type: 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings',
    apiVersion: '2023-09-01',
    name: "[concat(parameters('vnetName'), '/', parameters('peeringName'))]",
    properties: {
      remoteVirtualNetwork: { id: "[parameters('remoteVirtualNetworkId')]" },
      allowVirtualNetworkAccess: true, allowForwardedTraffic: false, allowGatewayTransit: false, useRemoteGateways: false,
    },
  }],
};
const SUCCEEDED = 'succeeded';
/**
 * ARM's answers for a resource group that is no more: 404 ResourceGroupNotFound, and 409
 * ResourceGroupBeingDeleted while its deletion runs
 * (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-resource-group-not-found,
 * https://learn.microsoft.com/azure/azure-resource-manager/management/delete-resource-group).
 */
const GROUP_GONE = new Set(['ResourceGroupNotFound', 'ResourceGroupBeingDeleted']);
const TERMINAL = new Set(['Succeeded', 'Failed', 'Canceled']);

interface Instance {
  instanceId: string;
  index?: number;
  address?: string;
  running: boolean;
  latestModelApplied: boolean;
  statuses: string[];
}

interface Clients {
  resources: ResourceManagementClient;
  compute: ComputeManagementClient;
  network: NetworkManagementClient;
  storage: StorageManagementClient;
}

/** cluster.json's inbound NAT rules on the internal load balancer's pool `servers`: the management path's two ports. */
const NAT_RULE_HTTPS = 'management-https';
const NAT_RULE_RPC = 'management-rpc';
const SERVER_POOL = 'servers';
/** Key Vault's management API version, as cluster.json deploys vaults. */
const KEY_VAULT_API_VERSION = '2023-07-01';

/** The parts of a subnet's resource id. */
export function parseSubnetId(id: string): { subscriptionId: string; resourceGroup: string; vnet: string; subnet: string } {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/virtualNetworks\/([^/]+)\/subnets\/([^/]+)$/i.exec(id);
  if (!m) throw new Error(`not a subnet resource id: ${id}`);
  return { subscriptionId: m[1], resourceGroup: m[2], vnet: m[3], subnet: m[4] };
}

/** The blob container cluster.json makes in the cluster's storage account (its `snapshotContainer`). */
export const SNAPSHOT_CONTAINER = 'consul-snapshots';

/**
 * The account a blob endpoint signs for: the first label of its host
 * (https://<account>.blob.core.windows.net/), or, for an IP-style endpoint
 * (an emulator: http://127.0.0.1:10000/<account>/), its first path segment,
 * as @azure/storage-blob reads it.
 */
export function blobEndpointAccount(endpoint: string): string {
  const u = new URL(endpoint);
  const ipStyle = /^\d+\.\d+\.\d+\.\d+$|^\[.*\]$|^localhost$/i.test(u.hostname);
  const account = ipStyle ? u.pathname.split('/').filter(Boolean)[0] : u.hostname.split('.')[0];
  if (!account) throw new Error(`blob endpoint ${endpoint} names no storage account`);
  return account;
}

export class AzureTarget implements Target {
  readonly kind = 'azure' as const;
  private readonly clients = new Map<string, Clients>();
  /** Key Vault clients by vault URI. */
  private readonly vaults = new Map<string, SecretClient>();
  private readonly pollIntervalMs: number;
  private readonly vmLayout: ClusterLayout;
  private readonly management: ReturnType<typeof parseSubnetId>;
  /** The private endpoint address of each cluster (it never changes for the endpoint's life). */
  private readonly endpointIps = new Map<string, string>();
  private managementLocation?: string;

  constructor(private readonly opts: AzureTargetOptions) {
    this.pollIntervalMs = opts.pollIntervalMs ?? 5_000;
    this.vmLayout = new ClusterLayout(opts.vmClustersDir ?? AZURE_CLUSTERS_DIR);
    this.management = parseSubnetId(opts.managementSubnetId);
  }

  async observe(clusterId: string): Promise<readonly ObservedServer[]> {
    const p = await this.opts.placement(clusterId);
    return (await this.instances(p))
      .filter((i): i is Instance & { index: number } => i.running && i.index !== undefined)
      .map((i) => ({ index: i.index, address: i.address }))
      .sort((a, b) => a.index - b.index);
  }

  /** Nothing of its own: the network, storage and identity come with the servers' deployment (its custom data needs the secrets). */
  async ensureInfrastructure(spec: ClusterSpec): Promise<Progress> {
    await this.opts.placement(spec.clusterId);
    return READY;
  }

  /**
   * The cluster's deployment for this spec and secrets (the scale set at the
   * spec's server count, its model carrying every server's files), then each
   * running instance made from an older model gets its files by Run Command.
   */
  async writeServerConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<Progress> {
    validateSpec(spec, secrets);
    const p = await this.opts.placement(spec.clusterId);
    const deployed = await this.deployServers(spec, secrets, p);
    if (deployed.state !== 'ready') return deployed;
    for (const i of await this.instances(p)) {
      if (!i.running || i.latestModelApplied || i.index === undefined || !spec.servers.some((s) => s.index === i.index)) continue;
      await this.pushFiles(p, spec, secrets, i);
    }
    return READY;
  }

  /** The deployment made the instances and they boot on their own; here, those powered off start again. */
  async startServers(spec: ClusterSpec, secrets: ClusterSecrets): Promise<Progress> {
    validateSpec(spec, secrets);
    const p = await this.opts.placement(spec.clusterId);
    const deployed = await this.deployServers(spec, secrets, p);
    if (deployed.state !== 'ready') return deployed;
    const instances = await this.instances(p);
    for (const s of spec.servers) {
      const i = instances.find((x) => x.index === s.index);
      if (!i) throw new Error(`server ${s.index} (${s.address}) of cluster ${spec.clusterId} has no instance in scale set ${scaleSetName(p)}`);
      if (!i.running) await (await this.clientsOf(p)).compute.virtualMachineScaleSetVMs.beginStartAndWait(p.resourceGroup, scaleSetName(p), i.instanceId, this.lro());
    }
    return this.booted(p, instances.filter((i) => spec.servers.some((s) => s.index === i.index)));
  }

  /**
   * Ready once every instance's boot script ended well. Azure reports a VM
   * provisioned and running before cloud-init's runcmd ends, so the worker
   * asks each instance (Run Command) for the outcome its boot script left:
   * pending, ok, or the failed step, which fails the change at once.
   */
  private async booted(p: AzurePlacement, instances: Instance[]): Promise<Progress> {
    for (const i of instances) {
      const outcome = (await this.runCommand(p, i, [BOOT_STATUS_LINE])).trim();
      if (outcome === 'pending') return { state: 'in-progress', detail: `instance ${i.instanceId} of ${scaleSetName(p)} is booting`, retryAfterMs: this.pollIntervalMs };
      if (outcome !== 'ok') throw new InstanceBootFailedError(i.instanceId, scaleSetName(p), outcome);
    }
    return READY;
  }

  /**
   * Server `index` runs the spec's model: left alone when its instance runs the
   * latest model of this spec; else the model is deployed, and the instance
   * takes it (manual upgrade) and is reimaged onto it (a restart from the new
   * custom data and Consul package; the data disk stays).
   */
  async putServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number): Promise<Progress> {
    validateSpec(spec, secrets);
    const p = await this.opts.placement(spec.clusterId);
    const before = (await this.instances(p)).find((i) => i.index === index);
    const deployed = await this.deployServers(spec, secrets, p);
    if (deployed.state !== 'ready') return deployed;
    const i = (await this.instances(p)).find((x) => x.index === index) ?? before;
    if (!i) throw new Error(`server ${index} of cluster ${spec.clusterId} has no instance in scale set ${scaleSetName(p)}`);
    if (i.running && i.latestModelApplied && (await this.modelVersion(p)) === spec.consulVersion) return this.booted(p, [i]);
    const { compute } = await this.clientsOf(p);
    await compute.virtualMachineScaleSets.beginUpdateInstancesAndWait(p.resourceGroup, scaleSetName(p), { instanceIds: [i.instanceId] }, this.lro());
    await compute.virtualMachineScaleSetVMs.beginReimageAndWait(p.resourceGroup, scaleSetName(p), i.instanceId, this.lro());
    return this.booted(p, [i]);
  }

  async reloadServer(clusterId: string, index: number): Promise<Progress> {
    const p = await this.opts.placement(clusterId);
    const i = (await this.instances(p)).find((x) => x.index === index && x.running);
    if (!i) throw new Error(`server ${index} of cluster ${clusterId} is not running`);
    await this.runCommand(p, i, [RELOAD_LINE]);
    return READY;
  }

  async stopServer(clusterId: string, index: number): Promise<Progress> {
    const p = await this.opts.placement(clusterId);
    const i = (await this.instances(p)).find((x) => x.index === index);
    if (!i || !i.running) return READY;
    await (await this.clientsOf(p)).compute.virtualMachineScaleSetVMs.beginPowerOffAndWait(p.resourceGroup, scaleSetName(p), i.instanceId, this.lro());
    return READY;
  }

  /** Deletes the server's instance (its disks go with it); the next deployment has the smaller capacity. */
  async removeServer(clusterId: string, index: number): Promise<Progress> {
    const p = await this.opts.placement(clusterId);
    const i = (await this.instances(p)).find((x) => x.index === index);
    if (!i) return READY;
    await (await this.clientsOf(p)).compute.virtualMachineScaleSetVMs.beginDeleteAndWait(p.resourceGroup, scaleSetName(p), i.instanceId, this.lro());
    return READY;
  }

  /**
   * An empty template in Complete mode: ARM deletes every resource of the managed resource group,
   * not the group. A group Azure is deleting already (the managed application's own delete,
   * which removes the managed resource group with it), or has deleted, holds nothing any more:
   * that counts as deleted.
   */
  async deleteAll(clusterId: string): Promise<Progress> {
    const p = await this.opts.placement(clusterId);
    await this.deleteManagementEndpoint(clusterId);
    await this.removePeerings(clusterId, p);
    try {
      return await this.deploy(clusterId, p, 'delete', 'Complete', EMPTY_TEMPLATE, {});
    } catch (e) {
      if (e instanceof TargetRefusedError && GROUP_GONE.has(e.code)) return { state: 'ready', detail: `the managed resource group ${p.resourceGroup} is gone or being deleted by Azure (${e.code})` };
      throw e;
    }
  }

  /**
   * The public endpoint in place: the servers' deployment again with the endpoint's parameters
   * (the public IP and load balancer, and the NSG's rules admitting exactly the allowlist to it,
   * one per address family). Turned off, the template no longer declares the public load balancer
   * and IP, which an Incremental deployment leaves, so they are deleted here after it.
   */
  async updateEndpoint(spec: ClusterSpec, secrets: ClusterSecrets, endpoint: PublicEndpointSpec | null): Promise<Progress> {
    validateSpec(spec, secrets);
    const p: AzurePlacement = { ...(await this.opts.placement(spec.clusterId)), externalEndpoint: endpoint !== null, allowlist: endpoint?.allowlist ?? [] };
    const deployed = await this.deployServers(spec, secrets, p);
    if (deployed.state !== 'ready' || endpoint) return deployed;
    const { network } = await this.clientsOf(p);
    const gone = (e: { statusCode?: number }) => {
      if (e.statusCode !== 404) throw e;
    };
    // The load balancer first: it holds the public IP.
    await network.loadBalancers.beginDeleteAndWait(p.resourceGroup, `${p.clusterName}-plb`, this.lro()).catch(gone);
    await network.publicIPAddresses.beginDeleteAndWait(p.resourceGroup, `${p.clusterName}-ip`, this.lro()).catch(gone);
    return READY;
  }

  /** The public IP's address while the cluster has one. */
  async publicAddress(clusterId: string): Promise<string | null> {
    const p = await this.opts.placement(clusterId);
    if (!p.externalEndpoint) return null;
    const { network } = await this.clientsOf(p);
    const ip = await network.publicIPAddresses.get(p.resourceGroup, `${p.clusterName}-ip`).catch((e: { statusCode?: number }) => {
      if (e.statusCode === 404) return null;
      throw e;
    });
    return ip?.ipAddress ?? null;
  }

  async serverBinary(clusterId: string, index: number): Promise<string | null> {
    const p = await this.opts.placement(clusterId);
    const i = (await this.instances(p)).find((x) => x.index === index && x.running);
    if (!i) return null;
    // An instance on the latest model runs the model's version; one on an older model runs an older one.
    if (!i.latestModelApplied) return `(an older model of ${scaleSetName(p)})`;
    const version = await this.modelVersion(p);
    return version ? this.opts.binaryFor(version) : null;
  }

  /** The running instances not on the scale set's latest model: they run from an older config (or Consul). */
  async serversOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<number[]> {
    validateSpec(spec, secrets);
    const p = await this.opts.placement(spec.clusterId);
    return (await this.instances(p))
      .filter((i) => i.running && !i.latestModelApplied && i.index !== undefined && spec.servers.some((s) => s.index === i.index))
      .map((i) => i.index!)
      .sort((a, b) => a - b);
  }

  async explainDown(clusterId: string, index: number): Promise<string> {
    const p = await this.opts.placement(clusterId).catch(() => undefined);
    if (!p) return '(no placement)';
    const i = (await this.instances(p).catch(() => [])).find((x) => x.index === index);
    if (!i) return `no instance of scale set ${scaleSetName(p)} holds ${p.addresses.get(index) ?? `server ${index}'s address`}`;
    return `instance ${i.instanceId} of scale set ${scaleSetName(p)} (${i.address ?? 'no address'}): ${i.statuses.join(', ') || 'no status'}`;
  }

  close(): void {
    this.clients.clear();
  }

  /**
   * The template parameters of a spec: its tier's capacity, its version's package, the custom data
   * (public files and where each server's secrets are in `vaultUri`). Without a vault: the
   * infrastructure alone (no scale set), which makes the vault.
   */
  parameters(spec: ClusterSpec, secrets: ClusterSecrets, p: AzurePlacement, vaultUri?: string): Record<string, { value: unknown }> {
    const tier = TIER_OF_COUNT[spec.servers.length];
    if (!tier) throw new Error(`cluster ${spec.clusterId}: a scale set of ${spec.servers.length} servers is no tier (1, 3 or 5)`);
    const vault = vaultUri ? { uri: vaultUri, identityId: identityId(p) } : undefined;
    const customData = vault ? clusterCustomData(spec, secrets, { consul: this.opts.consulPackage(spec.consulVersion), vault, clustersDir: this.vmLayout.clustersDir }) : '';
    return {
      clusterName: { value: p.clusterName },
      location: { value: p.location },
      tier: { value: tier },
      consulVersion: { value: spec.consulVersion },
      vnetCidr: { value: p.vnetCidr },
      externalEndpoint: { value: p.externalEndpoint },
      // A rule per address family: Azure refuses one that mixes them (ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies).
      publicSourcesIpv4: { value: (p.allowlist ?? []).map((e) => e.cidr).filter((c) => !c.includes(':')) },
      publicSourcesIpv6: { value: (p.allowlist ?? []).map((e) => e.cidr).filter((c) => c.includes(':')) },
      zones: { value: [...p.zones] },
      adminSshPublicKey: { value: this.opts.adminSshPublicKey },
      controlPlaneSubscriptionId: { value: this.management.subscriptionId },
      deployServers: { value: vault !== undefined },
      customData: { value: customData },
      federationPeers: { value: (p.peers ?? []).map((peer) => ({ name: peeringName(peer.clusterId), remoteVirtualNetworkId: vnetId(peer) })) },
    };
  }

  /**
   * A secondary's peerings Connected: each member peers back (a deployment into the member's
   * managed resource group, once per operation), then both sides are asked. Azure connects both
   * once both exist (a Disconnected side too, once the side deleted is made again); one still
   * Initiated is asked again later, any other state fails the change.
   */
  private async ensurePeerings(clusterId: string, p: AzurePlacement): Promise<Progress> {
    for (const peer of p.peers ?? []) {
      const back = await this.deploy(clusterId, peer, 'peering', 'Incremental', PEER_BACK_TEMPLATE, {
        vnetName: { value: vnetName(peer) }, peeringName: { value: peeringName(clusterId) }, remoteVirtualNetworkId: { value: vnetId(p) },
      });
      if (back.state !== 'ready') return back;
      for (const [side, where, name] of [['its', p, peeringName(peer.clusterId)], [`${peer.clusterName}'s`, peer, peeringName(clusterId)]] as const) {
        const state = (await (await this.clientsOf(where)).network.virtualNetworkPeerings.get(where.resourceGroup, vnetName(where), name)).peeringState;
        if (state === 'Initiated') return { state: 'in-progress', detail: `${side} peering ${name} is Initiated`, retryAfterMs: this.pollIntervalMs };
        if (state !== 'Connected') {
          throw new TargetRefusedError('peering_not_connected', `cluster ${clusterId}: ${side} peering ${name} (${vnetName(p)} with ${vnetName(peer)}) is ${state ?? 'unknown'}, not Connected, although both VNets peer with each other`);
        }
      }
    }
    return READY;
  }

  /** The other members no longer peer with this cluster's VNet: their peerings to it go (its own go with its VNet). */
  private async removePeerings(clusterId: string, p: AzurePlacement): Promise<void> {
    for (const peer of p.peers ?? []) {
      const { network } = await this.clientsOf(peer);
      await network.virtualNetworkPeerings.beginDeleteAndWait(peer.resourceGroup, vnetName(peer), peeringName(clusterId), this.lro()).catch((e: { statusCode?: number }) => {
        if (e.statusCode !== 404) throw e;
      });
    }
  }

  /**
   * The servers' deployment for this spec: first each server's secrets into the cluster's vault
   * (the managed application's first deployment made it; else an infrastructure deployment
   * does), so that the instances find them when they boot; then the scale set; then the control
   * plane's private endpoint to the cluster's Private Link service.
   */
  private async deployServers(spec: ClusterSpec, secrets: ClusterSecrets, p: AzurePlacement): Promise<Progress> {
    let vaultUri = await this.vaultUri(p);
    if (!vaultUri) {
      const infra = await this.deploy(spec.clusterId, p, 'infrastructure', 'Incremental', this.opts.template, this.parameters(spec, secrets, p));
      if (infra.state !== 'ready') return infra;
      vaultUri = await this.vaultUri(p);
      if (!vaultUri) throw new Error(`the managed resource group ${p.resourceGroup} of cluster ${spec.clusterId} holds no Key Vault after its infrastructure deployment`);
    }
    await this.writeSecrets(spec, secrets, vaultUri);
    const deployed = await this.deploy(spec.clusterId, p, 'servers', 'Incremental', this.opts.template, this.parameters(spec, secrets, p, vaultUri));
    if (deployed.state !== 'ready') return deployed;
    const peered = await this.ensurePeerings(spec.clusterId, p);
    if (peered.state !== 'ready') return peered;
    await this.ensureManagementEndpoint(spec.clusterId, p);
    return deployed;
  }

  /** The URI of the cluster's Key Vault (the one vault of its managed resource group), or undefined while there is none. */
  private async vaultUri(p: AzurePlacement): Promise<string | undefined> {
    const { resources } = await this.clientsOf(p);
    for await (const r of resources.resources.listByResourceGroup(p.resourceGroup, { filter: "resourceType eq 'Microsoft.KeyVault/vaults'" })) {
      if (!r.id) continue;
      const vault = await resources.resources.getById(r.id, KEY_VAULT_API_VERSION);
      const uri = (vault.properties as { vaultUri?: string } | undefined)?.vaultUri;
      if (uri) return uri;
    }
    return undefined;
  }

  /**
   * Each server's secret files as one vault secret, written when its value changed (a new
   * version; the servers read the latest). The control plane's Key Vault Secrets Officer role
   * on the vault comes from the managed application's mainTemplate.
   */
  private async writeSecrets(spec: ClusterSpec, secrets: ClusterSecrets, vaultUri: string): Promise<void> {
    let client = this.vaults.get(vaultUri);
    if (!client) {
      const { SecretClient } = loadSdk<typeof import('@azure/keyvault-secrets')>('@azure/keyvault-secrets');
      this.vaults.set(vaultUri, (client = new SecretClient(vaultUri, this.opts.credential)));
    }
    for (const server of spec.servers) {
      const name = serverSecretName(server.index);
      const value = serverSecretValue(serverFiles(spec, secrets, server.index, this.vmLayout.server(spec.clusterId, server.index)));
      try {
        const current = await client.getSecret(name).catch((e: { statusCode?: number }) => {
          if (e.statusCode === 404) return undefined;
          throw e;
        });
        if (current?.value === value) continue;
        await client.setSecret(name, value, { contentType: 'application/json', tags: { 'managed-consul-cluster': spec.clusterId } });
      } catch (e) {
        // The vault's RBAC refused the control plane: the offer's authorizations lack the data-plane role, which no retry mends.
        if ((e as { statusCode?: number }).statusCode === 403) {
          throw new TargetRefusedError('vault_forbidden', `the control plane may not write the secrets of cluster ${spec.clusterId} into its Key Vault ${vaultUri} (403 ${(e as { code?: string }).code ?? 'Forbidden'}): the managed application offer's authorizations must give its principal Key Vault Secrets Officer on the managed resource group`);
        }
        throw e;
      }
    }
  }

  /** The private endpoint of a cluster, in the control plane's resource group. */
  private endpointName(clusterId: string): string {
    return `consul-${clusterId}`;
  }

  /**
   * The cluster's private endpoint, made once (a PUT that waits for ARM) and
   * approved: the Private Link service approves the control plane's
   * subscription on its own (cluster.json's autoApproval); a connection left
   * Pending means that subscription is not the one the template named, which
   * no retry mends.
   */
  private async ensureManagementEndpoint(clusterId: string, p: AzurePlacement): Promise<void> {
    const { network } = await this.clientsOf(this.management);
    const name = this.endpointName(clusterId);
    let pe = await this.managementEndpoint(clusterId);
    if (pe?.provisioningState !== 'Succeeded') {
      this.managementLocation ??= (await network.virtualNetworks.get(this.management.resourceGroup, this.management.vnet)).location;
      const privateLinkServiceId = `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Network/privateLinkServices/${p.clusterName}-management`;
      try {
        pe = await network.privateEndpoints.beginCreateOrUpdateAndWait(this.management.resourceGroup, name, {
          location: this.managementLocation,
          subnet: { id: this.opts.managementSubnetId },
          privateLinkServiceConnections: [{ name: 'consul-management', privateLinkServiceId }],
          tags: { 'managed-consul/cluster': clusterId },
        }, this.lro());
      } catch (e) {
        if (isRefusal((e as { statusCode?: number }).statusCode)) throw refusal(`private endpoint ${name}`, e);
        throw e;
      }
    }
    const state = pe.privateLinkServiceConnections?.[0]?.privateLinkServiceConnectionState?.status;
    if (state !== 'Approved') {
      throw new TargetRefusedError('private_endpoint_not_approved', `private endpoint ${name}: its connection to the cluster's Private Link service is ${state ?? 'unknown'}, not Approved: the service approves only the subscription of AZURE_MANAGEMENT_SUBNET_ID (${this.management.subscriptionId})`);
    }
  }

  /** The cluster's private endpoint as ARM has it, or undefined when there is none. */
  private async managementEndpoint(clusterId: string): Promise<PrivateEndpoint | undefined> {
    const { network } = await this.clientsOf(this.management);
    return network.privateEndpoints.get(this.management.resourceGroup, this.endpointName(clusterId)).catch((e: { statusCode?: number }) => {
      if (e.statusCode === 404) return undefined;
      throw e;
    });
  }

  private async deleteManagementEndpoint(clusterId: string): Promise<void> {
    const { network } = await this.clientsOf(this.management);
    await network.privateEndpoints.beginDeleteAndWait(this.management.resourceGroup, this.endpointName(clusterId), this.lro()).catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 404) throw e;
    });
    this.endpointIps.delete(clusterId);
  }

  /** The private endpoint's address (from its network interface), or undefined while there is none. */
  private async endpointIp(clusterId: string): Promise<string | undefined> {
    const known = this.endpointIps.get(clusterId);
    if (known) return known;
    const { network } = await this.clientsOf(this.management);
    const pe = await this.managementEndpoint(clusterId);
    const nicId = pe?.provisioningState === 'Succeeded' ? pe.networkInterfaces?.[0]?.id : undefined;
    if (!nicId) return undefined;
    const nic = await network.networkInterfaces.get(this.management.resourceGroup, nicId.split('/').pop()!);
    const ip = nic.ipConfigurations?.[0]?.privateIPAddress;
    if (ip) this.endpointIps.set(clusterId, ip);
    return ip;
  }

  /**
   * Each running server's ports as the control plane reaches them: the
   * private endpoint's address, at the frontend port each NAT rule gives the
   * server's instance (asked of the load balancer by the instance's address).
   */
  async routes(clusterId: string): Promise<ReadonlyMap<string, ServerRoutes>> {
    const p = await this.opts.placement(clusterId);
    const host = await this.endpointIp(clusterId);
    const out = new Map<string, ServerRoutes>();
    if (!host) return out;
    const { network } = await this.clientsOf(p);
    for (const i of await this.instances(p)) {
      if (!i.address) continue;
      const mapping = await network.loadBalancers.beginListInboundNatRulePortMappingsAndWait(p.resourceGroup, `${p.clusterName}-ilb`, SERVER_POOL, { ipAddress: i.address }, this.lro());
      const port = (rule: string) => mapping.inboundNatRulePortMappings?.find((m) => m.inboundNatRuleName === rule)?.frontendPort;
      const https = port(NAT_RULE_HTTPS);
      const rpc = port(NAT_RULE_RPC);
      if (https !== undefined && rpc !== undefined) out.set(i.address, { https: { host, port: https }, rpc: { host, port: rpc } });
    }
    return out;
  }

  /**
   * One deployment of the operation changing the cluster, by a name made of
   * the operation and what is deployed: resumed from the poller state saved
   * on the operation when there is one (no second PUT), else looked up by
   * name (a worker killed between the PUT and the save), else PUT. Asks ARM
   * once per call: in-progress until it is done.
   */
  private async deploy(clusterId: string, p: Pick<AzurePlacement, 'subscriptionId' | 'resourceGroup'>, purpose: string, mode: 'Incremental' | 'Complete', template: Record<string, unknown>, parameters: Record<string, { value: unknown }>): Promise<Progress> {
    const { operationId, states } = await this.opts.journal.current(clusterId);
    const digest = createHash('sha256').update(JSON.stringify({ mode, template, parameters })).digest('hex').slice(0, 12);
    const name = `consul-${purpose}-${operationId.slice(0, 8)}-${digest}`;
    const saved = states[name];
    if (saved === SUCCEEDED) return READY;
    const { resources } = await this.clientsOf(p);
    const body: Deployment = { properties: { mode, template, parameters } };
    const options = { updateIntervalInMs: this.pollIntervalMs };
    if (saved === undefined) {
      const existing = await resources.deployments.get(p.resourceGroup, name).catch((e: { statusCode?: number }) => {
        if (e.statusCode === 404) return undefined;
        throw e;
      });
      const state = existing?.properties?.provisioningState;
      if (state === 'Succeeded') return this.succeeded(clusterId, operationId, name);
      if (state !== undefined && !TERMINAL.has(state)) return this.inProgress(name, state);
      if (state === 'Failed' || state === 'Canceled') throw this.failure(name, existing!);
    }
    let poller;
    try {
      poller = await resources.deployments.beginCreateOrUpdate(p.resourceGroup, name, body, saved === undefined ? options : { ...options, resumeFrom: saved });
      if (saved !== undefined) await poller.poll();
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      // Our own deployment of this name still runs (a PUT raced a resumed poll): ask again later.
      if (status === 409 && armErrorOf(e)?.code === 'DeploymentActive') return this.inProgress(name, 'Running');
      // Preflight (validation, authorization, names, quotas) refused it: the same PUT gets the same answer.
      if (isRefusal(status)) throw refusal(`deployment ${name}`, e);
      throw await this.failedDeployment(resources, p, name, e);
    }
    if (!poller.isDone()) {
      await this.opts.journal.save(clusterId, operationId, name, poller.toString());
      return this.inProgress(name, poller.getOperationState().status);
    }
    const result = poller.getResult();
    if (result?.properties?.provisioningState === 'Failed') throw this.failure(name, result);
    return this.succeeded(clusterId, operationId, name);
  }

  private async succeeded(clusterId: string, operationId: string, name: string): Promise<Progress> {
    await this.opts.journal.save(clusterId, operationId, name, SUCCEEDED);
    return { state: 'ready', detail: `deployment ${name} succeeded` };
  }

  private inProgress(name: string, state: string): Progress {
    return { state: 'in-progress', detail: `deployment ${name}: ${state}`, retryAfterMs: this.pollIntervalMs };
  }

  /** A poller that failed: ARM's own error from the deployment when it has one, else what the SDK said. */
  private async failedDeployment(resources: ResourceManagementClient, p: Pick<AzurePlacement, 'resourceGroup'>, name: string, e: unknown): Promise<Error> {
    const status = (e as { statusCode?: number }).statusCode;
    if (status !== undefined && status !== 200) return e as Error; // the request failed (ARM unreachable, 5xx after retries): retried
    const d = await resources.deployments.get(p.resourceGroup, name).catch(() => undefined);
    if (d?.properties?.provisioningState === 'Failed' || d?.properties?.provisioningState === 'Canceled') return this.failure(name, d);
    return e as Error;
  }

  private failure(name: string, d: DeploymentExtended): DeploymentFailedError {
    const err = d.properties?.error;
    if (!err) return new DeploymentFailedError(name, d.properties?.provisioningState ?? 'Failed', 'ARM gave no error');
    // ARM's top error says "at least one resource failed"; its details, levels deep, say which and why.
    const { code, message } = describeArmError(err);
    return new DeploymentFailedError(name, code, message);
  }

  /** The scale set's instances, each with its private IP and the server that address is. */
  private async instances(p: AzurePlacement): Promise<Instance[]> {
    const { compute, network } = await this.clientsOf(p);
    const vms: VirtualMachineScaleSetVM[] = [];
    try {
      for await (const vm of compute.virtualMachineScaleSetVMs.list(p.resourceGroup, scaleSetName(p), { expand: 'instanceView' })) vms.push(vm);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return []; // no scale set (yet, or any more)
      throw e;
    }
    const ipOfVm = new Map<string, string>();
    for await (const nic of network.networkInterfaces.listVirtualMachineScaleSetNetworkInterfaces(p.resourceGroup, scaleSetName(p))) {
      const vmId = nic.virtualMachine?.id?.toLowerCase();
      const ip = nic.ipConfigurations?.find((c) => c.primary !== false)?.privateIPAddress;
      if (vmId && ip) ipOfVm.set(vmId, ip);
    }
    const indexOf = new Map([...p.addresses].map(([index, address]) => [address, index]));
    return vms.map((vm) => {
      const statuses = (vm.instanceView?.statuses ?? []).map((s) => s.code ?? '').filter(Boolean);
      const address = vm.id ? ipOfVm.get(vm.id.toLowerCase()) : undefined;
      return {
        instanceId: vm.instanceId ?? '',
        address,
        index: address === undefined ? undefined : indexOf.get(address),
        running: statuses.includes('PowerState/running'),
        latestModelApplied: vm.latestModelApplied !== false,
        statuses,
      };
    });
  }

  /** The Consul version of the scale set's model (its `consulVersion` tag, set by the template). */
  private async modelVersion(p: AzurePlacement): Promise<string | undefined> {
    const vmss = await (await this.clientsOf(p)).compute.virtualMachineScaleSets.get(p.resourceGroup, scaleSetName(p));
    return vmss.tags?.consulVersion;
  }

  /**
   * The instance's own server files, written in place (no restart): the instance had them from an
   * older model. Its public files travel in the script; its secret files it fetches again from the
   * vault, where `writeSecrets` put their new values: no secret is in a Run Command script.
   */
  private async pushFiles(p: AzurePlacement, spec: ClusterSpec, secrets: ClusterSecrets, i: Instance & { index?: number }): Promise<void> {
    const paths = this.vmLayout.server(spec.clusterId, i.index!);
    const files = serverFiles(spec, secrets, i.index!, paths);
    await this.runCommand(p, i, [...[files.ca, files.cert].map(writeFileLine), FETCH_SECRETS_LINE]);
  }

  /**
   * Runs one of our scripts on the instance; its stdout. Linux Run Command
   * answers ProvisioningState/succeeded whatever the script's exit code
   * (https://learn.microsoft.com/azure/virtual-machines/linux/run-command), so
   * the script's own last line, its exit status, decides.
   */
  private async runCommand(p: AzurePlacement, i: Instance, lines: string[]): Promise<string> {
    const r = await (await this.clientsOf(p)).compute.virtualMachineScaleSetVMs.beginRunCommandAndWait(
      p.resourceGroup, scaleSetName(p), i.instanceId, { commandId: 'RunShellScript', script: runCommandScript(lines) }, this.lro(),
    );
    const where = `Run Command on instance ${i.instanceId} of ${scaleSetName(p)}`;
    const failed = (r.value ?? []).find((s) => s.code && !/succeeded/i.test(s.code));
    // The script's output names the failing line, never a file's content.
    if (failed) throw new Error(`${where} failed: ${failed.message ?? failed.code}`);
    const out = parseRunCommandOutput((r.value ?? []).map((s) => s.message ?? '').join('\n'));
    const stderr = out.stderr.trim().split('\n').slice(-3).join(' | ').slice(-400);
    if (out.exitCode === undefined) throw new Error(`${where}: the script's exit status is not in its output (cut off, or the script did not run)${stderr ? `: ${stderr}` : ''}`);
    if (out.exitCode !== 0) throw new Error(`${where}: the script exited ${out.exitCode}${stderr ? `: ${stderr}` : ''}`);
    return out.stdout;
  }

  private lro() {
    return { updateIntervalInMs: Math.min(this.pollIntervalMs, 2_000) };
  }

  /**
   * The cluster's snapshots go to the storage account its deployment made in
   * its managed resource group (one per cluster), container
   * SNAPSHOT_CONTAINER, with the account's key from ARM (listKeys, which the
   * publisher's Contributor role on the managed resource group allows; the
   * storage data plane would need a role in the customer's tenant). The key
   * stays inside the store (never logged, never in an error).
   */
  async snapshotStore(clusterId: string): Promise<SnapshotStore | 'gone'> {
    const p = await this.opts.placement(clusterId);
    const { storage } = await this.clientsOf(p);
    const accounts: StorageAccount[] = [];
    for await (const a of storage.storageAccounts.listByResourceGroup(p.resourceGroup)) accounts.push(a);
    if (accounts.length === 0) return 'gone';
    if (accounts.length > 1) throw new Error(`the managed resource group ${p.resourceGroup} of cluster ${clusterId} holds ${accounts.length} storage accounts (${accounts.map((a) => a.name).join(', ')}); its deployment makes one, for the snapshots`);
    const [account] = accounts;
    const endpoint = account.primaryEndpoints?.blob;
    if (!account.name || !endpoint) throw new Error(`storage account ${account.name ?? '?'} of cluster ${clusterId} has no blob endpoint yet`);
    const keys = await storage.storageAccounts.listKeys(p.resourceGroup, account.name);
    const key = keys.keys?.find((k) => k.permissions?.toLowerCase() === 'full' && k.value)?.value;
    if (!key) throw new Error(`storage account ${account.name} of cluster ${clusterId}: ARM listed no key with full permission`);
    const store = new BlobSnapshotStore({
      connectionString: `DefaultEndpointsProtocol=${new URL(endpoint).protocol.replace(':', '')};AccountName=${blobEndpointAccount(endpoint)};AccountKey=${key};BlobEndpoint=${endpoint}`,
      container: SNAPSHOT_CONTAINER,
    });
    // cluster.json makes the container; made here too if missing (idempotent).
    await store.ensureContainer();
    return store;
  }

  private async clientsOf(p: Pick<AzurePlacement, 'subscriptionId'>): Promise<Clients> {
    let c = this.clients.get(p.subscriptionId);
    if (!c) {
      // The SDKs load on first use: the API and a worker that never deploys to Azure do not carry them (about 50 MB of RSS).
      const { ResourceManagementClient } = loadSdk<typeof import('@azure/arm-resources')>('@azure/arm-resources');
      const { ComputeManagementClient } = loadSdk<typeof import('@azure/arm-compute')>('@azure/arm-compute');
      const { NetworkManagementClient } = loadSdk<typeof import('@azure/arm-network')>('@azure/arm-network');
      const { StorageManagementClient } = loadSdk<typeof import('@azure/arm-storage')>('@azure/arm-storage');
      const options = { endpoint: this.opts.armEndpoint, credentialScopes: [`${this.opts.armEndpoint.replace(/\/$/, '')}/.default`] };
      c = {
        resources: new ResourceManagementClient(this.opts.credential, p.subscriptionId, options),
        compute: new ComputeManagementClient(this.opts.credential, p.subscriptionId, options),
        network: new NetworkManagementClient(this.opts.credential, p.subscriptionId, options),
        storage: new StorageManagementClient(this.opts.credential, p.subscriptionId, { endpoint: options.endpoint, credentials: { scopes: options.credentialScopes } }),
      };
      this.clients.set(p.subscriptionId, c);
    }
    return c;
  }
}

/** cluster.json's `vnetName`. */
function vnetName(p: Pick<AzurePlacement, 'clusterName'>): string {
  return `${p.clusterName}-vnet`;
}

function vnetId(p: Pick<AzurePlacement, 'subscriptionId' | 'resourceGroup' | 'clusterName'>): string {
  return `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Network/virtualNetworks/${vnetName(p)}`;
}

/** The peering, in a federation member's VNet, to the VNet of cluster `clusterId` (names are unique within a VNet; cluster ids are). */
export function peeringName(clusterId: string): string {
  return `federation-${clusterId}`;
}

/** The scale set's user-assigned identity (cluster.json's `identityName`): what reads the vault on the VMs. */
function identityId(p: AzurePlacement): string {
  return `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${p.clusterName}-identity`;
}

export function scaleSetName(p: Pick<AzurePlacement, 'clusterName'>): string {
  return `${p.clusterName}-servers`;
}
