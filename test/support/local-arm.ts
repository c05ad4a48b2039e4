/**
 * A local Azure Resource Manager for the Azure target's tests: the routes the
 * real SDKs call (@azure/arm-resources deployments, @azure/arm-compute scale
 * sets and their VMs, @azure/arm-network scale-set NICs), with ARM's
 * long-running-operation protocol (Azure-AsyncOperation and Location polling
 * with Retry-After), 429 throttling and ARM's error bodies, behind the Entra ID
 * token endpoint of fake-arm.ts. A deployment of infra/arm/cluster.json makes
 * a scale set whose instances are realised as Linux VMs on this host
 * (local-vm.ts): each boots by running the user data the deployment's custom
 * data delivers, as cloud-init would (validated by `cloud-init schema`), in a
 * mount namespace of its own, with the Consul package served here; Consul
 * runs from what that script installed, on the instance's private address.
 *
 * Networks are as isolated as Azure's: each VNet is a network namespace
 * (local-network.ts), so clusters' address spaces may overlap, and the host,
 * which plays the control plane's network (LOCAL_VNET_RANGE, local to it),
 * reaches an instance only the way the template provides: the cluster's
 * Private Link service (on its internal load balancer, one inbound NAT port
 * per instance and rule), through a private endpoint the control plane makes
 * in its own subnet (`controlPlaneNetwork`). The endpoint's address answers on
 * the NAT rules' frontend ports, for an approved connection only.
 *
 *   const arm = await startLocalArm({ consulPackage: (version) => debPath });
 *   arm.packageFor(version) // { url, sha256 } to give the target
 *   arm.holdDeployments(); arm.releaseDeployments(); arm.failNextDeployment({ code, message }); arm.throttleNext(n, s);
 *   arm.deployments(); arm.instances(rg, vmss); arm.counters; arm.requests
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { subnetPlan } from '../../libs/provisioner/src';
import { availabilityZones } from '../../libs/core/src';
import { localDir } from '../../infra/local/issuer';
import { ArmPreflight } from './arm-preflight';
import { evaluateDeployment, type EvaluatedResource } from './arm-template';
import { admittedFromPeer, peeringState, refusePeering, securityRuleOf, type PeeringRecord, type SecurityRule, type VnetRecord } from './arm-network';
import { LocalNetwork } from './local-network';
import { VAULT_RESOURCE, claimsOf, startFakeArm, type FakeArm } from './fake-arm';
import { readBody } from './fake-metering';
import { LocalVm } from './local-vm';

/** The control plane's network in the local cloud (its private endpoints' addresses), local to this host. */
export const LOCAL_VNET_RANGE = '10.247.0.0/16';

export interface LocalArmOptions {
  /** The Debian package (.deb) of a Consul version, which the instances download from here. */
  consulPackage(version: string): string;
  /** How long a VM action takes at least, ms (default 300): Azure answers 202 and works on. */
  vmActionMs?: number;
  /** Retry-After of ARM's polling answers, seconds (default 0). */
  retryAfterSeconds?: number;
  /**
   * The blob service that every deployed storage account answers with (its
   * primaryEndpoints.blob and listKeys): Azurite's account in the tests.
   */
  blobService?: { endpoint: string; accountKey: string };
}

export interface DeploymentRecord {
  name: string;
  resourceGroup: string;
  mode: string;
  template: Record<string, unknown>;
  /** As sent, secure ones included (ARM never echoes those). */
  parameters: Record<string, { value: unknown }>;
  state: 'Accepted' | 'Running' | 'Succeeded' | 'Failed';
  error?: NestedArmError;
  outputs?: Record<string, { type: string; value: unknown }>;
}

export interface InstanceView {
  instanceId: string;
  privateIp: string;
  running: boolean;
  /** The main pids of its systemd units. */
  pids: number[];
  latestModelApplied: boolean;
  /** The Consul version of the model it booted from. */
  consulVersion: string;
  /** Its last boot: running, done, or failed (cloud-init's runcmd exited non-zero). */
  boot: 'off' | 'booting' | 'booted' | 'failed';
  /** Its folder: boot.log (cloud-init), journal.log (its units). */
  dir: string;
}

type VmAction = 'reimage' | 'manualupgrade' | 'poweroff' | 'start' | 'restart' | 'delete' | 'runCommand';

export interface LocalArm extends Omit<FakeArm, 'counters'> {
  readonly counters: FakeArm['counters'] & {
    /** PUTs per deployment name. */
    puts: Record<string, number>;
    statusPolls: number;
    /** listKeys of a storage account (the snapshot store's key). */
    listKeys: number;
    /** Vault secrets written (a new version each) and read. */
    secretWrites: number;
    secretReads: number;
    throttled: number;
    /** Instance ids per VM action, in order. */
    vmActions: Record<VmAction, string[]>;
  };
  /** Every ARM request: "METHOD /path" (no query). */
  readonly requests: string[];
  holdDeployments(): void;
  releaseDeployments(): void;
  /** The next deployment fails while it runs, its error nested as ARM nests it (DeploymentFailed → ResourceDeploymentFailure → this root cause). */
  failNextDeployment(error: { code: string; message: string }): void;
  /** The next deployment PUT is answered at once with this status and error body (what ARM's preflight answers). */
  refuseNextPut(status: number, error: NestedArmError): void;
  throttleNext(n: number, retryAfterSeconds: number): void;
  deployments(): DeploymentRecord[];
  instances(resourceGroup: string, scaleSet: string): InstanceView[];
  /** Instance processes alive (their namespaces' and their units'). */
  runningProcesses(): number;
  /** Azure's checks at deployment PUT: resource groups, the principal's role on them, template and provider preflight (arm-preflight.ts). */
  readonly preflight: ArmPreflight;
  /** What the instances download a Consul version from, and its SHA-256. */
  packageFor(version: string): { url: string; sha256: string };
  /** From now on the package of `version` is served with other bytes (its URL and the hash given out stay). */
  tamperPackage(version: string): void;
  /** Waits until the instance's boot ended; its outcome. */
  whenBooted(resourceGroup: string, scaleSet: string, instanceId: string): Promise<InstanceView['boot']>;
  /** The private endpoints made (in CONTROL_PLANE_SUBNET_ID): their address and connection status. */
  privateEndpoints(): { name: string; ip: string; status: string; linkServiceId: string }[];
  /** The Private Link services deployed, with the private endpoints connected to each. */
  linkServices(): { id: string; natIp: string; visibility: string[]; autoApproval: string[]; connections: number }[];
  /** Every Run Command script sent, in order. */
  runCommandScripts(): string[];
  /** The public IP addresses and load balancers of a resource group (deployed, not yet deleted), with a public IP's address. */
  publicResources(resourceGroup: string): { type: 'publicIPAddresses' | 'loadBalancers'; name: string; ipAddress?: string }[];
  /** The security rules of a resource group's network security groups, as last deployed. */
  securityRules(resourceGroup: string): SecurityRule[];
  /** The peerings of the VNets deployed, with their state as ARM answers it. */
  peerings(): { vnetId: string; name: string; remoteId: string; state: string }[];
  /** The pairs of VNets wired together now (their peerings Connected), by resource group. */
  peeredGroups(): Array<[string, string]>;
  /** The vault roles a managed application's deployment grants in its managed resource group (putApplication does it too). */
  grantVaultRoles(subscription: string, resourceGroup: string, clusterName: string): void;
  /** The latest value of a vault secret, by vault name (what a reader with the role would get). */
  vaultSecret(vaultName: string, secretName: string): string | undefined;
  /** The network namespace of a resource group's VNet (for `nsenter --net=`): where a machine of the customer's network would be. */
  netnsOf(resourceGroup: string): string;
  /** Where the control plane reaches an instance's port: its private endpoint's address and the NAT rule's frontend port (as the target finds it). */
  routeTo(resourceGroup: string, privateIp: string, backendPort: number): { host: string; port: number };
}


export interface NestedArmError {
  code: string;
  message: string;
  target?: string;
  details?: NestedArmError[];
}

/**
 * A deployment's error as ARM reports it: the top error says at least one resource failed, each
 * failed resource has a ResourceDeploymentFailure naming it, and the resource provider's own
 * error (the root cause) is nested below it
 * (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/find-error-code#deployment-errors).
 */
function deploymentFailure(resourceId: string, root: { code: string; message: string }): NestedArmError {
  return {
    code: 'DeploymentFailed', message: DEPLOYMENT_FAILED,
    details: [{ code: 'ResourceDeploymentFailure', target: resourceId, message: "The resource write operation failed to complete successfully, because it reached terminal provisioning state 'Failed'.", details: [root] }],
  };
}

interface Model {
  capacity: number;
  customData: string;
  consulVersion: string;
  vnetCidr: string;
  generation: number;
}

interface Instance {
  instanceId: string;
  privateIp: string;
  generation: number;
  consulVersion: string;
  vm: LocalVm;
  /** The user data it booted from (its OS disk's). */
  userData: string;
  /** A Run Command running on it: Azure runs one at a time per VM. */
  runCommandBusy: boolean;
  /** Its place in the inbound NAT rules' port ranges (frontend port = range start + slot), kept for its life. */
  natSlot: number;
  /**
   * Its power and model actions, one after the other: Azure's compute provider runs the
   * operations on one VM in turn (a second restart sent while one runs starts once it ended),
   * so two never interleave their power-off and power-on.
   */
  actions?: Promise<unknown>;
}

interface ScaleSet {
  subscription: string;
  resourceGroup: string;
  name: string;
  /** Its VNet (local-network.ts key). */
  vnetKey: string;
  /** Its user-assigned identities (resource ids, lower case): what its VMs' metadata service hands tokens for. */
  identities: string[];
  model: Model;
  instances: Map<string, Instance>;
  nextId: number;
}

/** An inbound NAT rule V2 on a backend pool: each member gets a frontend port of the range (https://learn.microsoft.com/azure/load-balancer/inbound-nat-rules). */
interface NatRule {
  name: string;
  start: number;
  end: number;
  backendPort: number;
}

/** A Private Link service on a cluster's internal load balancer (https://learn.microsoft.com/azure/private-link/private-link-service-overview). */
interface LinkService {
  id: string;
  subscription: string;
  resourceGroup: string;
  loadBalancer: string;
  vnetKey: string;
  /** The NAT address: the source of its traffic inside the VNet. */
  natIp: string;
  visibility: string[];
  autoApproval: string[];
  rules: NatRule[];
  /** Private endpoints connected (their ids, lower case). */
  connections: Set<string>;
}

/** A private endpoint the control plane made in its own subnet, connected to a Private Link service. */
interface PrivateEndpoint {
  id: string;
  name: string;
  subscription: string;
  resourceGroup: string;
  location: string;
  subnetId: string;
  linkServiceId: string;
  connectionName: string;
  nicName: string;
  ip: string;
  status: 'Approved' | 'Pending';
  provisioningState: 'Updating' | 'Succeeded' | 'Deleting';
  listeners: net.Server[];
  /** Its connections open now: they end with it, as a deleted endpoint's do. */
  connections: Set<net.Socket>;
}

/** A VNet a deployment made: its namespace's key (local-network.ts), its subnet's NSG, its peerings (by name). */
interface LocalVnet extends VnetRecord {
  subscription: string;
  resourceGroup: string;
  key: string;
  nsgId?: string;
  peerings: Map<string, PeeringRecord & { everConnected?: boolean }>;
}

/** One version of a vault secret. */
interface VaultSecret {
  value: string;
  version: string;
  contentType?: string;
  tags?: Record<string, string>;
  created: number;
}

/** A cluster's Key Vault: its secrets, every version kept. */
interface Vault {
  name: string;
  subscription: string;
  resourceGroup: string;
  secrets: Map<string, VaultSecret[]>;
}

type VaultRole = 'Key Vault Secrets Officer' | 'Key Vault Secrets User';

/** The control plane's network in the local cloud: its private endpoints are made in this subnet. */
export const CONTROL_PLANE_SUBSCRIPTION = 'c0a7f1e2-0000-4000-8000-00000000c0de';
export const CONTROL_PLANE_SUBNET_ID = `/subscriptions/${CONTROL_PLANE_SUBSCRIPTION}/resourceGroups/rg-control-plane/providers/Microsoft.Network/virtualNetworks/vnet-control-plane/subnets/endpoints`;

const TIER_CAPACITY: Record<string, number> = { development: 1, standard: 3, plus: 5 };
const DEPLOYMENT_FAILED = 'At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
  res.end(text);
}

const armError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) => send(res, status, { error: { code, message } }, headers);

/**
 * The instances' processes of every local ARM server of this checkout, so that
 * a run cut off (a test timeout, a killed runner) leaves none behind for the
 * next: the next start ends those still alive that are in a mount namespace
 * other than ours (an instance's), as stop.sh ends the local target's agents.
 */
const PID_DIR = process.env.LOCAL_DIR ?? os.tmpdir();
/** One file per test process that runs a local ARM: runs side by side (the runner's concurrency) never sweep each other's. */
const PID_FILE = path.join(PID_DIR, `local-arm.${process.pid}.pids`);

function sweepStrayInstances(): void {
  let files: string[];
  try {
    files = fs.readdirSync(PID_DIR).filter((f) => /^local-arm\.(\d+\.)?pids$/.test(f));
  } catch {
    return;
  }
  const ours = fs.readlinkSync('/proc/self/ns/mnt');
  for (const file of files) {
    const owner = Number(file.split('.')[1]);
    // A run still alive keeps its instances.
    if (owner && owner !== process.pid && fs.existsSync(`/proc/${owner}`)) continue;
    let pids: string[];
    try {
      pids = fs.readFileSync(path.join(PID_DIR, file), 'utf8').split('\n').filter(Boolean);
    } catch {
      continue;
    }
    for (const pid of pids) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        const theirs = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
        const holder = path.basename(argv[0]) === 'unshare' && argv.includes('--mount');
        if (holder || theirs !== ours) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    fs.rmSync(path.join(PID_DIR, file), { force: true });
  }
}

export async function startLocalArm(opts: LocalArmOptions): Promise<LocalArm> {
  sweepStrayInstances();
  try {
    execFileSync('ip', ['route', 'replace', 'local', LOCAL_VNET_RANGE, 'dev', 'lo', 'table', 'local'], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`the local ARM server needs ${LOCAL_VNET_RANGE} local to this host (ip route replace local ${LOCAL_VNET_RANGE} dev lo table local; root or CAP_NET_ADMIN): ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? (e as Error).message}`, { cause: e });
  }
  const retryAfter = String(opts.retryAfterSeconds ?? 0);
  const deployments = new Map<string, DeploymentRecord & { subscription: string; opId: string; polls: number; failWith?: { code: string; message: string } }>();
  const scaleSets = new Map<string, ScaleSet>();
  const storageAccounts = new Map<string, { name: string; resourceGroup: string; subscription: string; location: string }>();
  /**
   * VM actions by operation id: running until their work ends, then what
   * their Location answers (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
   */
  const vmOperations = new Map<string, { done: boolean; startTime: string; endTime?: string; result?: unknown; error?: { code: string; message: string } }>();
  /** Each instance's agent route (its systemctl shim calls back), by a secret of that instance. */
  const agents = new Map<string, LocalVm>();
  const vmRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'local-arm-vms-'));
  /** Package bytes by version (read once), and versions served tampered. */
  const packages = new Map<string, Buffer>();
  const tampered = new Set<string>();
  const packageBytes = (version: string) => {
    let b = packages.get(version);
    if (!b) packages.set(version, (b = fs.readFileSync(opts.consulPackage(version))));
    return b;
  };
  // The instances trust what this host's Node trusts for the local ARM (its development CA) on top of Debian's store.
  const caBundle = fs.readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') + '\n' + fs.readFileSync(process.env.NODE_EXTRA_CA_CERTS ?? path.join(localDir(), 'tls', 'ca.pem'), 'utf8');
  const vmActionMs = opts.vmActionMs ?? 300;
  let counters = { puts: {} as Record<string, number>, statusPolls: 0, throttled: 0, listKeys: 0, secretWrites: 0, secretReads: 0, vmActions: { reimage: [], manualupgrade: [], poweroff: [], start: [], restart: [], delete: [], runCommand: [] } as Record<VmAction, string[]> };
  const requests: string[] = [];
  /** Every Run Command script, as sent (what Azure keeps on the VM under /var/lib/waagent). */
  const runCommandScripts: string[] = [];
  let held = false;
  let failNext: { code: string; message: string } | undefined;
  let refuseNext: { status: number; error: NestedArmError } | undefined;
  let throttle = { n: 0, retryAfter: '1' };
  let url = '';
  const preflight = new ArmPreflight({ zonesOf: availabilityZones });
  // The control plane's own group, where it makes its private endpoints: Network Contributor there.
  preflight.putResourceGroup(CONTROL_PLANE_SUBSCRIPTION, 'rg-control-plane', 'westeurope', 'Network Contributor');
  const linkServices = new Map<string, LinkService>();
  const vaults = new Map<string, Vault>();
  /** Data-plane roles on the vaults of each resource group, by principal (`app:<client id>`, `mi:<identity id>`). */
  const vaultRoles = new Map<string, Map<string, VaultRole>>();
  /** The metadata service's vault tokens, by the identity they were issued to. */
  const identityTokens = new Map<string, string>();
  const vaultUriOf = (name: string) => `https://${name}.vault.localhost:${new URL(url).port}/`;
  const endpoints = new Map<string, PrivateEndpoint>();
  /** The VNets deployed (by lower-case id), with their peerings, and the NSGs (by lower-case id). */
  const vnetRecords = new Map<string, LocalVnet>();
  const nsgs = new Map<string, { resourceGroup: string; rules: SecurityRule[] }>();
  /** Public IPs and load balancers by id (lower case): an Incremental deployment makes them, only a DELETE or a Complete one removes them. */
  const publicResources = new Map<string, { id: string; type: 'publicIPAddresses' | 'loadBalancers'; name: string; resourceGroup: string; ipAddress?: string; frontendIps: string[] }>();
  let publicIpCount = 0;
  /** The private endpoints' addresses: this run's block of the control plane's network. */
  const endpointBlock = `10.247.${(process.pid % 250) + 1}`;
  let nextEndpointHost = 4;
  // The VNets (a network namespace each); their way out reaches this server, on the port it is given below.
  const network = await LocalNetwork.start({ dir: path.join(vmRoot, 'net'), armPort: () => Number(new URL(url).port), onProcess: (pid) => fs.appendFileSync(PID_FILE, `${pid}\n`), imds });

  const key = (rg: string, name: string) => `${rg.toLowerCase()}/${name.toLowerCase()}`;

  /** The user data Azure hands the VM: the custom data, base64 decoded (https://learn.microsoft.com/azure/virtual-machines/custom-data). */
  const userDataOf = (customData: string) => Buffer.from(customData, 'base64').toString('utf8');

  /** A new instance: its VM made and powered on; cloud-init runs on after this resolves, as on Azure. */
  async function makeInstance(set: ScaleSet, privateIp: string): Promise<Instance> {
    const instanceId = String(set.nextId++);
    const token = randomBytes(16).toString('hex');
    const vnet = await network.vnet(set.vnetKey, set.model.vnetCidr);
    const vm = new LocalVm({
      dir: path.join(vmRoot, `${set.resourceGroup.toLowerCase()}-${set.name}-${instanceId}`),
      privateIp, netns: vnet.netns, agentUrl: `${url}/_vm/${token}`, caBundle,
      // The local cloud's DNS: the vaults of its resource group at their names (reached through the VNet's way out).
      hosts: [...vaults.values()].filter((v) => v.resourceGroup.toLowerCase() === set.resourceGroup.toLowerCase()).map((v) => `127.0.0.1 ${new URL(vaultUriOf(v.name)).hostname}`), onProcess: (pid) => fs.appendFileSync(PID_FILE, `${pid}\n`),
    });
    agents.set(token, vm);
    const slots = new Set([...set.instances.values()].map((i) => i.natSlot));
    let natSlot = 0;
    while (slots.has(natSlot)) natSlot++;
    const inst: Instance = { instanceId, privateIp, generation: set.model.generation, consulVersion: set.model.consulVersion, vm, userData: userDataOf(set.model.customData), runCommandBusy: false, natSlot };
    set.instances.set(instanceId, inst);
    await vm.powerOn(inst.userData);
    return inst;
  }

  async function removeInstance(set: ScaleSet, inst: Instance): Promise<void> {
    await inst.vm.destroy();
    for (const [t, vm] of agents) if (vm === inst.vm) agents.delete(t);
    set.instances.delete(inst.instanceId);
  }

  /** A reimage: a new OS disk from the instance's model (its custom data and version), the data disk kept. */
  async function reimage(set: ScaleSet, inst: Instance): Promise<void> {
    await inst.vm.reimage();
    const model = inst.generation === set.model.generation ? set.model : undefined;
    if (model) {
      inst.userData = userDataOf(model.customData);
      inst.consulVersion = model.consulVersion;
    }
    await inst.vm.powerOn(inst.userData);
  }

  /** What ARM does for a deployment; throws the reason it fails. */
  async function realise(d: DeploymentRecord & { subscription: string }): Promise<void> {
    const resources = (d.template.resources ?? []) as unknown[];
    if (d.mode === 'Complete' && resources.length === 0) {
      const group = d.resourceGroup.toLowerCase();
      // https://learn.microsoft.com/troubleshoot/azure/azure-kubernetes/create-upgrade-delete/cannot-delete-load-balancer-private-link-service:
      // a Private Link service with private endpoint connections is not deleted, and the deployment fails.
      for (const pls of linkServices.values()) {
        if (pls.resourceGroup.toLowerCase() === group && pls.connections.size > 0) {
          throw Object.assign(new Error(`Private link service ${pls.id} has existing private endpoint connections [${[...pls.connections].join(', ')}]. Private link service with private endpoint connections cannot be deleted.`), { code: 'PrivateLinkServiceWithPrivateEndpointConnectionsCannotBeDeleted' });
        }
      }
      for (const [k, pls] of linkServices) if (pls.resourceGroup.toLowerCase() === group) linkServices.delete(k);
      for (const [k, set] of scaleSets) {
        if (set.resourceGroup.toLowerCase() !== d.resourceGroup.toLowerCase()) continue;
        for (const inst of [...set.instances.values()]) await removeInstance(set, inst);
        scaleSets.delete(k);
      }
      for (const [k, a] of storageAccounts) if (a.resourceGroup.toLowerCase() === d.resourceGroup.toLowerCase()) storageAccounts.delete(k);
      for (const [k, v] of vaults) if (v.resourceGroup.toLowerCase() === group) vaults.delete(k);
      await network.removeGroup(group);
      // Its VNets go, and their peerings with them; the peerings other VNets have with them stay, Disconnected
      // (a Complete deployment deletes a group's resources, not other groups' peerings: Azure/bicep#8520).
      for (const [k, v] of vnetRecords) if (v.resourceGroup.toLowerCase() === group) vnetRecords.delete(k);
      for (const [k, nsg] of nsgs) if (nsg.resourceGroup.toLowerCase() === group) nsgs.delete(k);
      for (const [k, r] of publicResources) if (r.resourceGroup.toLowerCase() === group) publicResources.delete(k);
      syncLinks();
      d.outputs = {};
      return;
    }
    const scope = { subscriptionId: d.subscription, resourceGroup: d.resourceGroup, location: String(d.parameters.location?.value ?? 'westeurope'), tenantId: '00000000-0000-0000-0000-000000000000', deploymentName: d.name, zonesOf: availabilityZones };
    const declared = evaluateDeployment(d.template, d.parameters, scope).resources.filter((r) => r.deployed);
    const isPeering = (r: EvaluatedResource) => r.type.toLowerCase() === 'microsoft.network/virtualnetworks/virtualnetworkpeerings';
    if (declared.length > 0 && declared.every(isPeering)) {
      // A deployment of peerings alone (the reverse peering into another member's group).
      for (const r of declared) putPeering(d.subscription, d.resourceGroup, r);
      syncLinks();
      d.outputs = {};
      return;
    }
    const p = d.parameters;
    const value = (name: string, dflt?: unknown) => (p[name] ? p[name].value : dflt);
    const clusterName = String(value('clusterName'));
    const vnetCidr = String(value('vnetCidr', '172.25.16.0/24'));
    const plan = subnetPlan(vnetCidr, 1);
    d.outputs = {
      privateEndpoint: { type: 'String', value: `https://${plan.internalEndpoint}:8501` },
      scaleSetName: { type: 'String', value: `${clusterName}-servers` },
      keyVaultName: { type: 'String', value: `kv${clusterName.replace(/-/g, '').slice(0, 20)}` },
      storageAccountName: { type: 'String', value: `st${clusterName.replace(/-/g, '').slice(0, 20)}` },
      snapshotContainer: { type: 'String', value: 'consul-snapshots' },
      identityId: { type: 'String', value: `/subscriptions/${d.subscription}/resourceGroups/${d.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${clusterName}-identity` },
    };
    const storageName = String((d.outputs.storageAccountName as { value: string }).value);
    storageAccounts.set(key(d.resourceGroup, storageName), { name: storageName, resourceGroup: d.resourceGroup, subscription: d.subscription, location: String(value('location', 'westeurope')) });
    // The network as the template declares it: its VNet (a namespace of its own) and the Private Link service on the internal load balancer.
    const evaluated = declared;
    for (const v of evaluated.filter((r) => r.type.toLowerCase() === 'microsoft.keyvault/vaults' && typeof r.name === 'string')) {
      const name = String(v.name);
      if (!vaults.has(name.toLowerCase())) vaults.set(name.toLowerCase(), { name, subscription: d.subscription, resourceGroup: d.resourceGroup, secrets: new Map() });
    }
    for (const r of evaluated) putPublicResource(d.subscription, d.resourceGroup, r);
    const scaleSetResource = evaluated.find((r) => r.type.toLowerCase() === 'microsoft.compute/virtualmachinescalesets');
    const identities = Object.keys((scaleSetResource?.identity as { userAssignedIdentities?: Record<string, unknown> } | undefined)?.userAssignedIdentities ?? {}).map((i) => i.toLowerCase());
    const vnetResource = evaluated.find((r) => r.type.toLowerCase() === 'microsoft.network/virtualnetworks');
    const vnetKey = key(d.resourceGroup, String(vnetResource?.name ?? `${clusterName}-vnet`));
    if (vnetResource) {
      await network.vnet(vnetKey, vnetCidr);
      putVnet(d.subscription, d.resourceGroup, vnetKey, vnetResource, evaluated);
      // Its peerings, after it (they depend on it).
      for (const r of evaluated.filter(isPeering)) putPeering(d.subscription, d.resourceGroup, r);
      syncLinks();
    }
    const plsResource = evaluated.find((r) => r.type.toLowerCase() === 'microsoft.network/privatelinkservices');
    if (plsResource) {
      const pls = linkServiceOf(d.subscription, d.resourceGroup, vnetKey, plsResource, evaluated);
      const existing = linkServices.get(pls.id.toLowerCase());
      linkServices.set(pls.id.toLowerCase(), existing ? { ...pls, connections: existing.connections } : pls);
      d.outputs.managementService = { type: 'String', value: pls.id };
    }
    if (value('deployServers', true) !== true) return;
    const capacity = TIER_CAPACITY[String(value('tier', 'standard'))];
    if (!capacity) throw Object.assign(new Error(`tier ${String(value('tier'))} is not one of the allowed values`), { code: 'InvalidTemplate' });
    const k = key(d.resourceGroup, `${clusterName}-servers`);
    let set = scaleSets.get(k);
    const customData = String(value('customData', ''));
    const consulVersion = String(value('consulVersion', '1.8.7'));
    if (!set) {
      set = { subscription: d.subscription, resourceGroup: d.resourceGroup, name: `${clusterName}-servers`, vnetKey, identities, model: { capacity, customData, consulVersion, vnetCidr, generation: 1 }, instances: new Map(), nextId: 0 };
      scaleSets.set(k, set);
    } else if (set.model.customData !== customData || set.model.consulVersion !== consulVersion) {
      set.model = { capacity, customData, consulVersion, vnetCidr, generation: set.model.generation + 1 };
    } else {
      set.model.capacity = capacity;
    }
    // Fewer: the newest instances go. More: new ones on the lowest free addresses, booted on the model.
    const byAge = [...set.instances.values()].sort((a, b) => Number(b.instanceId) - Number(a.instanceId));
    for (const inst of byAge.slice(0, Math.max(0, set.instances.size - capacity))) await removeInstance(set, inst);
    while (set.instances.size < capacity) {
      const used = new Set([...set.instances.values()].map((i) => i.privateIp));
      const free = subnetPlan(vnetCidr, 5).serverAddresses.find((a) => !used.has(a))!;
      await makeInstance(set, free);
    }
  }

  const vnetById = (id: string) => vnetRecords.get(id.toLowerCase());
  const armId = (subscription: string, resourceGroup: string, type: string, name: string) => `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/${type}/${name}`;

  /** A public IP (given an address of the documentation range) or a load balancer with the public IPs of its frontends, as a deployment declares it. */
  function putPublicResource(subscription: string, resourceGroup: string, r: EvaluatedResource): void {
    const kind = r.type.toLowerCase() === 'microsoft.network/publicipaddresses' ? 'publicIPAddresses' : r.type.toLowerCase() === 'microsoft.network/loadbalancers' ? 'loadBalancers' : undefined;
    if (!kind) return;
    const id = armId(subscription, resourceGroup, `Microsoft.Network/${kind}`, String(r.name));
    const o = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
    const frontendIps = ((o(r.properties).frontendIPConfigurations as unknown[] | undefined) ?? [])
      .map((f) => o(o(o(f).properties).publicIPAddress).id).filter((x): x is string => typeof x === 'string').map((x) => x.toLowerCase());
    const existing = publicResources.get(id.toLowerCase());
    publicResources.set(id.toLowerCase(), { id, type: kind, name: String(r.name), resourceGroup, frontendIps, ...(kind === 'publicIPAddresses' ? { ipAddress: existing?.ipAddress ?? `198.51.100.${++publicIpCount}` } : {}) });
  }

  /**
   * A VNet as its deployment declares it, and the NSGs of that deployment. A VNet deployed again keeps
   * the peerings its template does not declare: peerings are child resources, and redeploying the VNet
   * leaves them (Azure/arm-template-whatif#314 and #281: what-if shows them deleted, the deployment keeps them).
   */
  function putVnet(subscription: string, resourceGroup: string, key: string, r: EvaluatedResource, all: EvaluatedResource[]): void {
    const o = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
    for (const nsg of all.filter((x) => x.type.toLowerCase() === 'microsoft.network/networksecuritygroups')) {
      const rules = ((o(nsg.properties).securityRules as unknown[] | undefined) ?? []).map(securityRuleOf);
      nsgs.set(armId(subscription, resourceGroup, 'Microsoft.Network/networkSecurityGroups', String(nsg.name)).toLowerCase(), { resourceGroup, rules });
    }
    const props = o(r.properties);
    const id = armId(subscription, resourceGroup, 'Microsoft.Network/virtualNetworks', String(r.name));
    const subnet = o(((props.subnets as unknown[] | undefined) ?? [])[0]);
    const nsgId = o(o(subnet.properties).networkSecurityGroup).id;
    const existing = vnetById(id);
    vnetRecords.set(id.toLowerCase(), {
      id, subscription, resourceGroup, key, hasGateway: false, nsgId: typeof nsgId === 'string' ? nsgId : undefined,
      addressPrefixes: ((o(props.addressSpace).addressPrefixes as unknown[] | undefined) ?? []).map(String),
      peerings: existing?.peerings ?? new Map(),
    });
  }

  /**
   * A peering resource (`<vnet>/<peering>`) put by a deployment: refused as the network provider
   * refuses it (arm-network.ts refusePeering, the deployment fails with its code), else made or
   * updated; a peering that becomes Connected makes its remote Connected too.
   */
  function putPeering(subscription: string, resourceGroup: string, r: EvaluatedResource): void {
    const o = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
    const [vnetName, name] = String(r.name).split('/');
    const local = vnetById(armId(subscription, resourceGroup, 'Microsoft.Network/virtualNetworks', vnetName));
    // A child of a VNet that does not exist (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-parent-resource).
    if (!local) throw Object.assign(new Error(`Can not perform requested operation on nested resource. Parent resource '${vnetName}' not found.`), { code: 'ParentResourceNotFound' });
    const props = o(r.properties);
    const peering: PeeringRecord = {
      name, remoteId: String(o(props.remoteVirtualNetwork).id ?? ''),
      allowVirtualNetworkAccess: props.allowVirtualNetworkAccess !== false, allowForwardedTraffic: props.allowForwardedTraffic === true,
      allowGatewayTransit: props.allowGatewayTransit === true, useRemoteGateways: props.useRemoteGateways === true,
    };
    const others = { ...local, peerings: new Map([...local.peerings].filter(([n]) => n !== name)) };
    const refused = refusePeering(others, peering, vnetById, (remoteId) => {
      const [, sub, , group] = remoteId.split('/').filter(Boolean);
      return preflight.mayPeer(sub, group);
    });
    if (refused) throw Object.assign(new Error(refused.message), { code: refused.code });
    local.peerings.set(name, { ...peering, everConnected: local.peerings.get(name)?.everConnected });
    const remote = vnetById(peering.remoteId)!;
    if (peeringState(local, peering, vnetById) === 'Connected') {
      local.peerings.get(name)!.everConnected = true;
      for (const back of remote.peerings.values()) if (back.remoteId.toLowerCase() === local.id.toLowerCase()) back.everConnected = true;
    }
  }

  /** What the subnet of a VNet lets in from a peer: its NSG's rules (none: Azure's default rules alone). */
  const rulesOf = (v: { nsgId?: string }) => (v.nsgId ? nsgs.get(v.nsgId.toLowerCase())?.rules ?? [] : []);

  /**
   * Wires every pair of VNets whose peerings are both Connected and allow virtual network access, and
   * unwires the rest: each end admits what its NSG admits from the other, and the replies of the flows
   * it opened (NSG rules are stateful: https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules).
   */
  function syncLinks(): void {
    const wanted = new Map<string, { a: LocalVnet; b: LocalVnet }>();
    for (const a of vnetRecords.values()) {
      for (const p of a.peerings.values()) {
        const b = vnetById(p.remoteId);
        const back = b && [...b.peerings.values()].find((x) => x.remoteId.toLowerCase() === a.id.toLowerCase());
        if (!b || !back || !p.allowVirtualNetworkAccess || !back.allowVirtualNetworkAccess || !network.has(a.key) || !network.has(b.key)) continue;
        const [x, y] = [a, b].sort((m, n) => (m.key < n.key ? -1 : 1));
        wanted.set(`${x.key}|${y.key}`, { a: x, b: y });
      }
    }
    const admission = (self: { nsgId?: string; addressPrefixes: string[] }, peer: { nsgId?: string; addressPrefixes: string[] }) => ({
      dports: admittedFromPeer(rulesOf(self), peer.addressPrefixes, self.addressPrefixes),
      sports: admittedFromPeer(rulesOf(peer), self.addressPrefixes, peer.addressPrefixes),
    });
    for (const id of network.linked()) {
      const w = wanted.get(id);
      const [a, b] = id.split('|');
      if (!w || linkSignature.get(id) !== JSON.stringify([admission(w.a, w.b), admission(w.b, w.a)])) {
        network.unlink(a, b);
        linkSignature.delete(id);
      }
    }
    for (const [id, w] of wanted) {
      if (network.linked().includes(id)) continue;
      const intoA = admission(w.a, w.b);
      const intoB = admission(w.b, w.a);
      network.link(w.a.key, w.b.key, intoA, intoB);
      linkSignature.set(id, JSON.stringify([intoA, intoB]));
    }
  }
  const linkSignature = new Map<string, string>();

  /** A peering as the network provider answers it (VirtualNetworkPeering of azure-rest-api-specs' virtualNetwork.json). */
  function peeringView(v: VnetRecord, p: PeeringRecord & { everConnected?: boolean }) {
    const state = peeringState(v, p, vnetById);
    const remote = vnetById(p.remoteId);
    return {
      id: `${v.id}/virtualNetworkPeerings/${p.name}`, name: p.name, type: 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings', etag: `W/"${randomUUID()}"`,
      properties: {
        provisioningState: 'Succeeded', peeringState: state, ...(state === 'Connected' ? { peeringSyncLevel: 'FullyInSync' } : {}),
        remoteVirtualNetwork: { id: p.remoteId }, ...(remote ? { remoteAddressSpace: { addressPrefixes: remote.addressPrefixes }, remoteVirtualNetworkAddressSpace: { addressPrefixes: remote.addressPrefixes } } : {}),
        allowVirtualNetworkAccess: p.allowVirtualNetworkAccess, allowForwardedTraffic: p.allowForwardedTraffic, allowGatewayTransit: p.allowGatewayTransit, useRemoteGateways: p.useRemoteGateways,
      },
    };
  }

  /** The Private Link service a deployment declares: its frontend's load balancer and that balancer's NAT rules, its NAT address, who may connect. */
  function linkServiceOf(subscription: string, resourceGroup: string, vnetKey: string, r: EvaluatedResource, all: EvaluatedResource[]): LinkService {
    const o = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
    const props = o(r.properties);
    const frontend = String(o((props.loadBalancerFrontendIpConfigurations as unknown[] | undefined)?.[0]).id ?? '');
    const lbName = /\/loadBalancers\/([^/]+)\//i.exec(frontend)?.[1] ?? '';
    const lb = all.find((x) => x.type.toLowerCase() === 'microsoft.network/loadbalancers' && String(x.name).toLowerCase() === lbName.toLowerCase());
    const rules = ((o(lb?.properties).inboundNatRules as unknown[] | undefined) ?? []).map((n) => {
      const p = o(o(n).properties);
      return { name: String(o(n).name), start: Number(p.frontendPortRangeStart), end: Number(p.frontendPortRangeEnd), backendPort: Number(p.backendPort) };
    }).filter((n) => Number.isInteger(n.start) && Number.isInteger(n.end) && n.end >= n.start);
    const nat = o(o((props.ipConfigurations as unknown[] | undefined)?.[0]).properties);
    const subs = (v: unknown) => ((o(v).subscriptions as unknown[] | undefined) ?? []).map((x) => String(x).toLowerCase());
    return {
      id: `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/privateLinkServices/${String(r.name)}`,
      subscription, resourceGroup, loadBalancer: lbName, vnetKey, natIp: String(nat.privateIPAddress ?? ''),
      visibility: subs(props.visibility), autoApproval: subs(props.autoApproval), rules, connections: new Set(),
    };
  }

  /** The instance a NAT rule's frontend port leads to: the pool member holding that slot. */
  function natTarget(pls: LinkService, port: number): { inst: Instance; rule: NatRule } | undefined {
    const rule = pls.rules.find((r) => port >= r.start && port <= r.end);
    const set = [...scaleSets.values()].find((x) => x.resourceGroup.toLowerCase() === pls.resourceGroup.toLowerCase());
    const inst = rule && set ? [...set.instances.values()].find((i) => i.natSlot === port - rule.start) : undefined;
    return inst && rule ? { inst, rule } : undefined;
  }

  /**
   * A private endpoint's address answers on every frontend port of its service's NAT rules:
   * each connection goes, through the service's NAT, to the instance holding that port.
   */
  async function listen(pe: PrivateEndpoint, pls: LinkService): Promise<void> {
    for (const rule of pls.rules) {
      for (let port = rule.start; port <= rule.end; port++) {
        const server = net.createServer((client) => {
          pe.connections.add(client);
          client.on('close', () => pe.connections.delete(client));
          client.on('error', () => undefined);
          const current = linkServices.get(pls.id.toLowerCase());
          const to = current && natTarget(current, port);
          if (!current || !to || !network.has(current.vnetKey)) return client.resetAndDestroy();
          const upstream = network.connectInto(current.vnetKey, to.inst.privateIp, to.rule.backendPort, current.natIp);
          upstream.on('error', () => client.resetAndDestroy());
          client.on('error', () => upstream.destroy());
          client.pipe(upstream).pipe(client);
          client.on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
        });
        await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, pe.ip, resolve));
        pe.listeners.push(server);
      }
    }
  }

  async function unlisten(pe: PrivateEndpoint): Promise<void> {
    const all = pe.listeners.splice(0);
    for (const c of pe.connections) c.destroy();
    await Promise.all(all.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  }

  const publicDeployment = (d: DeploymentRecord & { subscription: string }) => {
    const declared = (d.template.parameters ?? {}) as Record<string, { type?: string }>;
    const parameters = Object.fromEntries(Object.entries(d.parameters).map(([k, v]) => [k, declared[k]?.type?.toLowerCase() === 'securestring' ? { type: 'SecureString' } : { type: declared[k]?.type ?? 'String', value: v.value }]));
    return {
      id: `/subscriptions/${d.subscription}/resourceGroups/${d.resourceGroup}/providers/Microsoft.Resources/deployments/${d.name}`,
      name: d.name, type: 'Microsoft.Resources/deployments',
      properties: {
        provisioningState: d.state, mode: d.mode, parameters, timestamp: new Date().toISOString(), correlationId: randomUUID(),
        ...(d.state === 'Succeeded' ? { outputs: d.outputs ?? {} } : {}),
        ...(d.error ? { error: d.error } : {}),
      },
    };
  };

  function vmView(set: ScaleSet, inst: Instance) {
    return {
      id: `/subscriptions/${set.subscription}/resourceGroups/${set.resourceGroup}/providers/Microsoft.Compute/virtualMachineScaleSets/${set.name}/virtualMachines/${inst.instanceId}`,
      name: `${set.name}_${inst.instanceId}`, instanceId: inst.instanceId, type: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines', location: 'westeurope',
      tags: { consulVersion: inst.consulVersion },
      properties: {
        latestModelApplied: inst.generation === set.model.generation,
        provisioningState: 'Succeeded',
        instanceView: { statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }, { code: inst.vm.running ? 'PowerState/running' : 'PowerState/stopped', level: 'Info' }] },
      },
    };
  }

  /**
   * A VM action: Azure answers 202 with Azure-AsyncOperation (its status:
   * InProgress, then Succeeded or Failed) and Location (202 until done, then
   * the action's result), and does the work after answering
   * (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations;
   * the VMSS VM actions' 202 headers in azure-rest-api-specs,
   * specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/virtualMachineScaleSetVM.json).
   * It takes at least vmActionMs, so a caller that does not poll sees it unfinished.
   */
  function accepted(res: ServerResponse, subscription: string, work: () => Promise<unknown>): void {
    const opId = randomUUID();
    const op: { done: boolean; startTime: string; endTime?: string; result?: unknown; error?: { code: string; message: string } } = { done: false, startTime: new Date().toISOString() };
    vmOperations.set(opId, op);
    const base = `${url}/subscriptions/${subscription}/providers/Microsoft.Compute/locations/westeurope/operations/${opId}`;
    send(res, 202, undefined, { 'azure-asyncoperation': `${base}?api-version=2024-07-01`, location: `${base}?monitor=true&api-version=2024-07-01`, 'retry-after': retryAfter });
    const minimum = new Promise<void>((resolve) => setTimeout(resolve, vmActionMs));
    void Promise.all([work(), minimum]).then(
      ([result]) => Object.assign(op, { done: true, result, endTime: new Date().toISOString() }),
      (e: unknown) => Object.assign(op, { done: true, endTime: new Date().toISOString(), error: { code: (e as { code?: string }).code ?? 'InternalExecutionError', message: (e as Error).message } }),
    );
  }

  /** Linux Run Command keeps the last 4,096 bytes of each stream (https://learn.microsoft.com/azure/virtual-machines/linux/run-command#restrictions). */
  const tail4k = (b: Buffer) => b.subarray(Math.max(0, b.length - 4096)).toString('utf8');

  /**
   * Run Command (RunShellScript) on a Linux VM: the script runs as root in a
   * shell on that instance; the result is one status, ProvisioningState/succeeded,
   * whatever the script's exit code, with "Enable succeeded: \n[stdout]\n...\n[stderr]\n..."
   * (the Linux RunCommand extension's message, e.g.
   * https://learn.microsoft.com/azure/virtual-machines/linux/run-command#azure-cli; Azure/azure-cli#19137).
   */
  async function runCommand(inst: Instance, script: string[]): Promise<unknown> {
    try {
      const r = await inst.vm.shell(script.join('\n'));
      return { value: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded', message: `Enable succeeded: \n[stdout]\n${tail4k(r.stdout)}\n[stderr]\n${tail4k(r.stderr)}` }] };
    } finally {
      inst.runCommandBusy = false;
    }
  }

  const endpointView = (pe: PrivateEndpoint) => ({
    id: pe.id, name: pe.name, type: 'Microsoft.Network/privateEndpoints', location: pe.location,
    properties: {
      provisioningState: pe.provisioningState,
      subnet: { id: pe.subnetId },
      networkInterfaces: [{ id: `/subscriptions/${pe.subscription}/resourceGroups/${pe.resourceGroup}/providers/Microsoft.Network/networkInterfaces/${pe.nicName}` }],
      privateLinkServiceConnections: [{
        id: `${pe.id}/privateLinkServiceConnections/${pe.connectionName}`, name: pe.connectionName,
        properties: {
          provisioningState: 'Succeeded', privateLinkServiceId: pe.linkServiceId,
          privateLinkServiceConnectionState: pe.status === 'Approved' ? { status: 'Approved', description: 'Auto-Approved', actionsRequired: 'None' } : { status: 'Pending', description: 'Awaiting approval', actionsRequired: 'None' },
        },
      }],
      manualPrivateLinkServiceConnections: [],
      customDnsConfigs: [],
    },
  });

  /**
   * Microsoft.Network: a load balancer's NAT port mappings, and the control plane's private
   * endpoints (PUT/GET/DELETE) with their network interfaces, and its VNet.
   */
  async function networkRoutes(req: IncomingMessage, res: ServerResponse, method: string, subscription: string, rg: string, parts: string[], lower: string[]): Promise<boolean> {
    const notFound = (type: string, name: string) => armError(res, 404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
    // POST .../loadBalancers/{lb}/backendAddressPools/{pool}/queryInboundNatRulePortMapping: the frontend port of each NAT rule V2 for one pool member
    // (https://learn.microsoft.com/rest/api/load-balancer/load-balancers/list-inbound-nat-rule-port-mappings).
    if (lower[6] === 'loadbalancers' && lower[8] === 'backendaddresspools' && lower[10] === 'queryinboundnatruleportmapping' && method === 'POST') {
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { ipAddress?: string; ipConfiguration?: { id?: string } };
      const pls = [...linkServices.values()].find((x) => x.resourceGroup.toLowerCase() === rg.toLowerCase() && x.loadBalancer.toLowerCase() === lower[7]);
      const set = [...scaleSets.values()].find((x) => x.resourceGroup.toLowerCase() === rg.toLowerCase());
      if (!pls || !set) return notFound('Microsoft.Network/loadBalancers', parts[7]), true;
      if (!body.ipAddress && !body.ipConfiguration?.id) return armError(res, 400, 'InvalidRequestFormat', 'Either ipAddress or ipConfiguration must be specified.'), true;
      const inst = [...set.instances.values()].find((i) => i.privateIp === body.ipAddress || (body.ipConfiguration?.id ?? '').toLowerCase().includes(`/virtualmachines/${i.instanceId}/`));
      if (!inst) return armError(res, 400, 'InvalidRequestFormat', `No backend address ${body.ipAddress ?? body.ipConfiguration?.id} in pool ${parts[9]}.`), true;
      return send(res, 200, { inboundNatRulePortMappings: pls.rules.map((r) => ({ inboundNatRuleName: r.name, protocol: 'Tcp', frontendPort: r.start + inst.natSlot, backendPort: r.backendPort })) }), true;
    }
    // Public IP addresses and load balancers: get and delete (https://learn.microsoft.com/rest/api/virtual-network/public-ip-addresses,
    // https://learn.microsoft.com/rest/api/load-balancer/load-balancers).
    if ((lower[6] === 'publicipaddresses' || lower[6] === 'loadbalancers') && parts.length === 8 && (method === 'GET' || method === 'DELETE')) {
      const type = lower[6] === 'publicipaddresses' ? 'publicIPAddresses' : 'loadBalancers';
      const id = armId(subscription, rg, `Microsoft.Network/${type}`, parts[7]);
      const found = publicResources.get(id.toLowerCase());
      if (method === 'GET') {
        if (!found) return notFound(`Microsoft.Network/${type}`, parts[7]), true;
        return send(res, 200, { id: found.id, name: found.name, type: `Microsoft.Network/${type}`, location: 'westeurope', properties: { provisioningState: 'Succeeded', ...(found.ipAddress ? { ipAddress: found.ipAddress, publicIPAllocationMethod: 'Static' } : {}) } }), true;
      }
      const refused = preflight.checkWrite(subscription, rg, id, `Microsoft.Network/${type}/delete`);
      if (refused) return send(res, refused.status, { error: refused.error }), true;
      if (!found) return send(res, 204, undefined), true;
      // A public IP still on a load balancer's frontend is not deleted: "you can't delete a public IP address that is associated
      // with a resource" (https://learn.microsoft.com/azure/virtual-network/ip-services/virtual-network-public-ip-address#view-modify-settings-for-or-delete-a-public-ip-address).
      const holder = [...publicResources.values()].find((x) => x.frontendIps.includes(id.toLowerCase()));
      if (holder) return armError(res, 400, 'PublicIPAddressCannotBeDeleted', `Public IP address ${id} can not be deleted since it is still allocated to resource ${holder.id}/frontendIPConfigurations/public. In order to delete the public IP, disassociate/detach the Public IP address from the resource.`), true;
      publicResources.delete(id.toLowerCase());
      return send(res, 200, undefined), true;
    }
    // Virtual network peerings (https://learn.microsoft.com/rest/api/virtual-network/virtual-network-peerings): list, get, delete.
    if (lower[6] === 'virtualnetworks' && lower[8] === 'virtualnetworkpeerings' && (parts.length === 9 || parts.length === 10)) {
      const vnet = vnetById(armId(subscription, rg, 'Microsoft.Network/virtualNetworks', parts[7]));
      if (!vnet) return notFound('Microsoft.Network/virtualNetworks', parts[7]), true;
      if (parts.length === 9 && method === 'GET') return send(res, 200, { value: [...vnet.peerings.values()].map((x) => peeringView(vnet, x)) }), true;
      const peering = [...vnet.peerings.values()].find((x) => x.name.toLowerCase() === lower[9]);
      if (method === 'GET') return peering ? send(res, 200, peeringView(vnet, peering)) : notFound('Microsoft.Network/virtualNetworks/virtualNetworkPeerings', `${parts[7]}/${parts[9]}`), true;
      if (method !== 'DELETE') return false;
      const refused = preflight.checkWrite(subscription, rg, `${vnet.id}/virtualNetworkPeerings/${parts[9]}`, 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete');
      if (refused) return send(res, refused.status, { error: refused.error }), true;
      // 204: "Request successful. Resource does not exist." (VirtualNetworkPeerings_Delete).
      if (!peering) return send(res, 204, undefined), true;
      accepted(res, subscription, async () => {
        vnet.peerings.delete(peering.name);
        syncLinks();
      });
      return true;
    }
    if (lower[6] === 'virtualnetworks' && parts.length === 8 && method === 'GET') {
      const cluster = vnetById(armId(subscription, rg, 'Microsoft.Network/virtualNetworks', parts[7]));
      if (cluster) {
        return send(res, 200, { id: cluster.id, name: parts[7], type: 'Microsoft.Network/virtualNetworks', location: 'westeurope', properties: { provisioningState: 'Succeeded', addressSpace: { addressPrefixes: cluster.addressPrefixes }, virtualNetworkPeerings: [...cluster.peerings.values()].map((x) => peeringView(cluster, x)) } }), true;
      }
      const [vnetId] = CONTROL_PLANE_SUBNET_ID.split('/subnets/');
      if (`/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Network/virtualNetworks/${parts[7]}`.toLowerCase() !== vnetId.toLowerCase()) return notFound('Microsoft.Network/virtualNetworks', parts[7]), true;
      return send(res, 200, { id: vnetId, name: parts[7], type: 'Microsoft.Network/virtualNetworks', location: 'westeurope', properties: { provisioningState: 'Succeeded', addressSpace: { addressPrefixes: [LOCAL_VNET_RANGE] }, subnets: [{ id: CONTROL_PLANE_SUBNET_ID, name: 'endpoints', properties: { addressPrefix: `${endpointBlock}.0/24`, privateEndpointNetworkPolicies: 'Disabled' } }] } }), true;
    }
    if (lower[6] === 'networkinterfaces' && parts.length === 8 && method === 'GET') {
      const pe = [...endpoints.values()].find((e) => e.resourceGroup.toLowerCase() === rg.toLowerCase() && e.nicName.toLowerCase() === lower[7]);
      if (!pe) return notFound('Microsoft.Network/networkInterfaces', parts[7]), true;
      return send(res, 200, {
        id: `/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Network/networkInterfaces/${pe.nicName}`, name: pe.nicName, location: pe.location,
        properties: { provisioningState: 'Succeeded', privateEndpoint: { id: pe.id }, ipConfigurations: [{ name: 'privateEndpointIpConfig', properties: { privateIPAddress: pe.ip, privateIPAllocationMethod: 'Dynamic', primary: true, subnet: { id: pe.subnetId } } }] },
      }), true;
    }
    if (lower[6] !== 'privateendpoints' || parts.length !== 8) return false;
    const id = `/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Network/privateEndpoints/${parts[7]}`;
    const existing = endpoints.get(id.toLowerCase());
    if (method === 'GET') return existing ? send(res, 200, endpointView(existing)) : notFound('Microsoft.Network/privateEndpoints', parts[7]), true;
    if (method === 'DELETE') {
      if (!existing) return send(res, 204, undefined), true;
      existing.provisioningState = 'Deleting';
      accepted(res, subscription, async () => {
        await unlisten(existing);
        linkServices.get(existing.linkServiceId.toLowerCase())?.connections.delete(existing.id.toLowerCase());
        endpoints.delete(existing.id.toLowerCase());
      });
      return true;
    }
    if (method !== 'PUT') return false;
    const refused = preflight.checkWrite(subscription, rg, id, 'Microsoft.Network/privateEndpoints/write');
    if (refused) return send(res, refused.status, { error: refused.error }), true;
    const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { location?: string; properties?: { subnet?: { id?: string }; privateLinkServiceConnections?: { name?: string; properties?: { privateLinkServiceId?: string } }[] } };
    const subnetId = body.properties?.subnet?.id ?? '';
    const connection = body.properties?.privateLinkServiceConnections?.[0];
    const plsId = connection?.properties?.privateLinkServiceId ?? '';
    // A reference to what does not exist: InvalidResourceReference (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
    if (subnetId.toLowerCase() !== CONTROL_PLANE_SUBNET_ID.toLowerCase()) return armError(res, 400, 'InvalidResourceReference', `Resource ${subnetId} referenced by resource ${id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`), true;
    const pls = linkServices.get(plsId.toLowerCase());
    if (!pls || !connection?.name) return armError(res, 400, 'InvalidResourceReference', `Resource ${plsId} referenced by resource ${id} was not found.`), true;
    if (existing && existing.linkServiceId.toLowerCase() !== plsId.toLowerCase()) return armError(res, 400, 'InvalidRequestFormat', `Private endpoint ${id}: its private link service connection cannot be changed.`), true;
    // Visibility and auto-approval, by the endpoint's subscription (https://learn.microsoft.com/azure/private-link/private-link-service-overview#control-service-access):
    // auto-approved: connected at once; only visible: Pending until the provider approves, and only approved connections carry traffic.
    const status = pls.autoApproval.includes(subscription.toLowerCase()) ? 'Approved' : 'Pending';
    const pe: PrivateEndpoint = existing ?? {
      id, name: parts[7], subscription, resourceGroup: rg, location: body.location ?? 'westeurope', subnetId, linkServiceId: pls.id, connectionName: connection.name,
      nicName: `${parts[7]}.nic.${randomUUID()}`, ip: `${endpointBlock}.${nextEndpointHost++}`, status, provisioningState: 'Updating', listeners: [], connections: new Set(),
    };
    endpoints.set(id.toLowerCase(), pe);
    const opId = randomUUID();
    const op: { done: boolean; startTime: string; endTime?: string; result?: unknown; error?: { code: string; message: string } } = { done: false, startTime: new Date().toISOString() };
    vmOperations.set(opId, op);
    send(res, existing ? 200 : 201, endpointView(pe), { 'azure-asyncoperation': `${url}/subscriptions/${subscription}/providers/Microsoft.Network/locations/${pe.location}/operations/${opId}?api-version=2024-05-01`, 'retry-after': retryAfter });
    void (async () => {
      if (!existing && status === 'Approved') {
        pls.connections.add(pe.id.toLowerCase());
        await listen(pe, pls);
      } else if (!existing) {
        pls.connections.add(pe.id.toLowerCase());
      }
      pe.provisioningState = 'Succeeded';
    })().then(
      () => Object.assign(op, { done: true, endTime: new Date().toISOString() }),
      (e: unknown) => Object.assign(op, { done: true, endTime: new Date().toISOString(), error: { code: 'InternalServerError', message: (e as Error).message } }),
    );
    return true;
  }

  /**
   * The cluster's Key Vault data plane (https://<vault>.vault.localhost:<port>/, as
   * https://<vault>.vault.azure.net/ is Azure's): secrets set and read by the REST API
   * (https://learn.microsoft.com/rest/api/keyvault/secrets), behind Key Vault's
   * challenge-based authentication (401 with WWW-Authenticate naming the authority and the
   * resource: https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses)
   * and Azure RBAC (enableRbacAuthorization): reading needs Key Vault Secrets User or
   * Officer, writing Officer (https://learn.microsoft.com/azure/key-vault/general/rbac-guide);
   * Contributor, a management-plane role, reads no secret. Denied: 403 ForbiddenByRbac.
   */
  async function vaultRoutes(req: IncomingMessage, res: ServerResponse, vaultName: string, u: URL): Promise<boolean> {
    const method = req.method ?? 'GET';
    requests.push(`${method} vault:${vaultName}${u.pathname}`);
    const vault = vaults.get(vaultName.toLowerCase());
    const kvError = (status: number, code: string, message: string, inner?: string) => send(res, status, { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } });
    if (!vault) return kvError(404, 'VaultNotFound', `Vault ${vaultName} not found.`), true;
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const principal = bearer ? principalOf(bearer) : undefined;
    if (!principal) {
      res.writeHead(401, { 'www-authenticate': `Bearer authorization="${url}/${arm.tenantId}", resource="${VAULT_RESOURCE}"`, 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } }));
      return true;
    }
    if (!u.searchParams.get('api-version')) return kvError(400, 'BadParameter', 'The request URI contains an invalid parameter: api-version is required.'), true;
    const m = /^\/secrets\/([^/]+)\/?([^/]*)$/.exec(u.pathname);
    if (!m) return kvError(404, 'NotFound', `No route for ${method} ${u.pathname}.`), true;
    const name = m[1];
    // Secret names: 1-127 letters, digits and dashes (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#objects-identifiers-and-versioning).
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) return kvError(400, 'BadParameter', `The secret name '${name}' is invalid.`), true;
    const action = method === 'PUT' ? 'Microsoft.KeyVault/vaults/secrets/setSecret/action' : 'Microsoft.KeyVault/vaults/secrets/getSecret/action';
    const role = vaultRoles.get(vault.resourceGroup.toLowerCase())?.get(principal);
    if (!role || (method === 'PUT' && role !== 'Key Vault Secrets Officer')) {
      return kvError(403, 'Forbidden', `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: ${principal}\r\nAction: '${action}'\r\nResource: '/subscriptions/${vault.subscription}/resourcegroups/${vault.resourceGroup}/providers/microsoft.keyvault/vaults/${vault.name}/secrets/${name}'\r\nAssignment: (not found)\r\nVault: ${vault.name};location=westeurope\r\n`, 'ForbiddenByRbac'), true;
    }
    const uri = vaultUriOf(vault.name);
    const view = (s: VaultSecret) => ({ value: s.value, id: `${uri}secrets/${name}/${s.version}`, ...(s.contentType ? { contentType: s.contentType } : {}), ...(s.tags ? { tags: s.tags } : {}), attributes: { enabled: true, created: s.created, updated: s.created, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 7 } });
    if (method === 'PUT') {
      if (m[2]) return kvError(405, 'MethodNotAllowed', 'A secret version cannot be set.'), true;
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { value?: string; contentType?: string; tags?: Record<string, string> };
      if (typeof body.value !== 'string') return kvError(400, 'BadParameter', 'Property value is required.'), true;
      // A secret value is at most 25 KiB (https://learn.microsoft.com/azure/key-vault/general/service-limits).
      if (Buffer.byteLength(body.value) > 25 * 1024) return kvError(400, 'BadParameter', 'The secret value is too large.'), true;
      const s: VaultSecret = { value: body.value, version: randomBytes(16).toString('hex'), contentType: body.contentType, tags: body.tags, created: Math.floor(Date.now() / 1000) };
      const versions = vault.secrets.get(name) ?? [];
      versions.push(s);
      vault.secrets.set(name, versions);
      counters.secretWrites++;
      return send(res, 200, view(s)), true;
    }
    if (method !== 'GET') return kvError(405, 'MethodNotAllowed', `${method} is not allowed.`), true;
    const versions = vault.secrets.get(name) ?? [];
    const found = m[2] ? versions.find((v) => v.version === m[2]) : versions.at(-1);
    if (!found) return kvError(404, 'SecretNotFound', `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`), true;
    counters.secretReads++;
    return send(res, 200, view(found)), true;
  }

  /** Who a vault request's token names: the control plane's app, or a scale set's managed identity (a token of the metadata service). */
  function principalOf(token: string): string | undefined {
    const identity = identityTokens.get(token);
    if (identity) return `mi:${identity}`;
    const claims = claimsOf(token);
    if (!arm.issued(token) || claims.aud !== VAULT_RESOURCE || (claims.exp ?? 0) < Date.now() / 1000) return undefined;
    return `app:${claims.appid}`;
  }

  /**
   * The instance metadata service of a VNet's VMs: a token for one of the scale set's
   * user-assigned identities (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http):
   * the `Metadata: true` header is required (400 otherwise), and the identity named
   * (`msi_res_id`, `mi_res_id` or none when the VM has one) must be assigned to the VM.
   */
  function imds(vnetKey: string, req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://169.254.169.254');
    const plain = (status: number, body: unknown) => send(res, status, body);
    if (req.headers.metadata !== 'true') return plain(400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
    if (u.pathname !== '/metadata/identity/oauth2/token' || req.method !== 'GET') return plain(404, { error: 'not_found' });
    if (!u.searchParams.get('api-version')) return plain(400, { error: 'invalid_request', error_description: 'Required query variable \'api-version\' is missing' });
    const resource = u.searchParams.get('resource');
    if (!resource) return plain(400, { error: 'invalid_request', error_description: 'Required query variable \'resource\' is missing' });
    const set = [...scaleSets.values()].find((x) => x.vnetKey === vnetKey);
    const assigned = set?.identities ?? [];
    const named = (u.searchParams.get('msi_res_id') ?? u.searchParams.get('mi_res_id'))?.toLowerCase();
    const identity = named ? assigned.find((i) => i === named) : assigned.length === 1 ? assigned[0] : undefined;
    if (!identity) return plain(400, { error: 'invalid_request', error_description: 'Identity not found' });
    const now = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(JSON.stringify({ aud: resource, tid: arm.tenantId, oid: createHash('sha256').update(identity).digest('hex').slice(0, 32), xms_mirid: identity, iat: now, exp: now + 86_400 })).toString('base64url');
    const token = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${claims}.${randomBytes(16).toString('base64url')}`;
    if (resource === VAULT_RESOURCE) identityTokens.set(token, identity);
    plain(200, { access_token: token, refresh_token: '', expires_in: '86399', expires_on: String(now + 86_399), not_before: String(now), resource, token_type: 'Bearer', client_id: createHash('sha256').update(`client:${identity}`).digest('hex').slice(0, 32) });
  }

  async function routes(req: IncomingMessage, res: ServerResponse, u: URL): Promise<boolean> {
    const vaultHost = /^([0-9a-z-]+)\.vault\.localhost(:\d+)?$/i.exec(req.headers.host ?? '');
    if (vaultHost) return vaultRoutes(req, res, vaultHost[1], u);
    const method = req.method ?? 'GET';
    requests.push(`${method} ${u.pathname}`);
    if (throttle.n > 0) {
      throttle.n--;
      counters.throttled++;
      armError(res, 429, 'TooManyRequests', 'The request is being throttled as the limit has been reached for operation type. Please try again after the Retry-After.', { 'retry-after': throttle.retryAfter });
      return true;
    }
    const parts = u.pathname.split('/').filter(Boolean);
    const lower = parts.map((x) => x.toLowerCase());
    // /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/operations/{id}: Azure-AsyncOperation (status) or Location (monitor=true)
    if (lower[2] === 'providers' && lower[4] === 'locations' && lower[6] === 'operations' && method === 'GET') {
      const op = vmOperations.get(parts[7]);
      if (!op) return armError(res, 404, 'NotFound', 'no such operation'), true;
      if (u.searchParams.get('monitor') === 'true') {
        if (!op.done) send(res, 202, undefined, { location: `${url}${u.pathname}${u.search}`, 'retry-after': retryAfter });
        else if (op.error) send(res, 500, { error: op.error });
        else send(res, 200, op.result ?? undefined);
      } else {
        send(res, 200, {
          name: parts[7], startTime: op.startTime, status: !op.done ? 'InProgress' : op.error ? 'Failed' : 'Succeeded',
          ...(op.endTime ? { endTime: op.endTime } : {}), ...(op.error ? { error: op.error } : {}),
        }, op.done ? {} : { 'retry-after': retryAfter });
      }
      return true;
    }
    // The instances' own calls (not ARM): the Consul package they download, their systemctl shim.
    if (lower[0] === '_packages' && method === 'GET') {
      const version = decodeURIComponent(parts[1] ?? '').replace(/^consul_(.+)_amd64\.deb$/, '$1');
      let bytes: Buffer;
      try {
        bytes = packageBytes(version);
      } catch {
        return send(res, 404, { error: { code: 'NotFound', message: 'no such package' } }), true;
      }
      if (tampered.has(version)) bytes = Buffer.concat([bytes, Buffer.from('tampered')]);
      res.writeHead(200, { 'content-type': 'application/vnd.debian.binary-package', 'content-length': bytes.length });
      res.end(bytes);
      return true;
    }
    if (lower[0] === '_vm' && method === 'POST') {
      const vm = agents.get(parts[1]);
      if (!vm || lower[2] !== 'systemctl' || !parts[3] || !parts[4]) return send(res, 404, { error: { code: 'NotFound', message: 'no such instance' } }), true;
      try {
        const out = await vm.systemctl(parts[3], decodeURIComponent(parts[4]));
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end(out), true;
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end(`${(e as Error).message}\n`), true;
      }
    }
    // GET .../resourceGroups/{rg}/resources: the group's resources, here its vaults (https://learn.microsoft.com/rest/api/resources/resources/list-by-resource-group).
    if (lower[0] === 'subscriptions' && lower[2] === 'resourcegroups' && lower[4] === 'resources' && parts.length === 5 && method === 'GET') {
      const filter = u.searchParams.get('$filter');
      const inGroup = [...vaults.values()].filter((v) => v.resourceGroup.toLowerCase() === parts[3].toLowerCase());
      const wanted = !filter || /resourceType eq 'Microsoft\.KeyVault\/vaults'/i.test(filter) ? inGroup : [];
      return send(res, 200, { value: wanted.map((v) => ({ id: `/subscriptions/${v.subscription}/resourceGroups/${v.resourceGroup}/providers/Microsoft.KeyVault/vaults/${v.name}`, name: v.name, type: 'Microsoft.KeyVault/vaults', location: 'westeurope' })) }), true;
    }
    if (lower[0] !== 'subscriptions' || lower[2] !== 'resourcegroups' || lower[4] !== 'providers') return false;
    const [subscription, rg] = [parts[1], parts[3]];
    if (lower[5] === 'microsoft.keyvault' && lower[6] === 'vaults' && parts.length === 8 && method === 'GET') {
      const v = vaults.get(lower[7]);
      if (!v || v.resourceGroup.toLowerCase() !== rg.toLowerCase()) return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${parts[7]}' under resource group '${rg}' was not found.`), true;
      return send(res, 200, { id: `/subscriptions/${v.subscription}/resourceGroups/${v.resourceGroup}/providers/Microsoft.KeyVault/vaults/${v.name}`, name: v.name, type: 'Microsoft.KeyVault/vaults', location: 'westeurope', properties: { vaultUri: vaultUriOf(v.name), tenantId: arm.tenantId, enableRbacAuthorization: true, provisioningState: 'Succeeded', sku: { family: 'A', name: 'standard' } } }), true;
    }
    const provider = lower[5];
    if (provider === 'microsoft.resources' && lower[6] === 'deployments' && parts[7]) {
      const name = parts[7];
      const k = key(rg, name);
      if (lower[8] === 'operationstatuses' && method === 'GET') {
        const d = deployments.get(k);
        if (!d || d.opId !== parts[9]) return armError(res, 404, 'NotFound', 'no such operation'), true;
        counters.statusPolls++;
        d.polls++;
        if (d.state === 'Accepted' || (d.state === 'Running' && !held)) {
          if (held || d.polls < 2) d.state = 'Running';
          else if (d.failWith) {
            d.state = 'Failed';
            d.error = deploymentFailure(`/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/${String(d.parameters.clusterName?.value ?? 'cluster')}-servers`, d.failWith);
          } else {
            try {
              await realise(d);
              d.state = 'Succeeded';
            } catch (e) {
              d.state = 'Failed';
              d.error = { code: 'DeploymentFailed', message: DEPLOYMENT_FAILED, details: [{ code: (e as { code?: string }).code ?? 'ResourceDeploymentFailure', message: (e as Error).message }] };
            }
          }
        }
        const status = (d.state as string) === 'Accepted' ? 'Running' : d.state;
        send(res, 200, { status, ...(d.error ? { error: d.error } : {}) }, d.state === 'Running' ? { 'retry-after': retryAfter } : {});
        return true;
      }
      if (parts.length !== 8) return false;
      if (method === 'PUT') {
        const body = JSON.parse((await readBody(req)).toString('utf8')) as { properties?: { mode?: string; template?: Record<string, unknown>; parameters?: Record<string, { value: unknown }> } };
        const props = body.properties;
        if (!props?.template || !props.mode) return armError(res, 400, 'InvalidRequestContent', 'The request content was invalid: properties.template and properties.mode are required.'), true;
        if (refuseNext) {
          const { status, error } = refuseNext;
          refuseNext = undefined;
          return send(res, status, { error }), true;
        }
        const active = deployments.get(k)?.state;
        const refused = preflight.checkDeploymentPut({ subscription, resourceGroup: rg, name, properties: props, running: active === 'Accepted' || active === 'Running' });
        if (refused) return send(res, refused.status, { error: refused.error }), true;
        const existed = deployments.has(k);
        const d = { name, resourceGroup: rg, subscription, mode: props.mode, template: props.template, parameters: props.parameters ?? {}, state: 'Accepted' as DeploymentRecord['state'], opId: randomUUID(), polls: 0, failWith: failNext };
        failNext = undefined;
        deployments.set(k, d);
        counters.puts[name] = (counters.puts[name] ?? 0) + 1;
        send(res, existed ? 200 : 201, publicDeployment(d), {
          'azure-asyncoperation': `${url}/subscriptions/${subscription}/resourcegroups/${rg}/providers/Microsoft.Resources/deployments/${name}/operationStatuses/${d.opId}?api-version=2025-03-01`,
          'retry-after': retryAfter,
        });
        return true;
      }
      if (method === 'GET') {
        const d = deployments.get(k);
        if (!d) armError(res, 404, 'DeploymentNotFound', `Deployment '${name}' could not be found.`);
        else send(res, 200, publicDeployment(d));
        return true;
      }
      if (method === 'DELETE') {
        deployments.delete(k);
        accepted(res, subscription, async () => undefined);
        return true;
      }
      return false;
    }
    if (provider === 'microsoft.network') {
      const handled = await networkRoutes(req, res, method, subscription, rg, parts, lower);
      if (handled) return true;
    }
    if (provider === 'microsoft.storage' && lower[6] === 'storageaccounts') {
      const inGroup = [...storageAccounts.values()].filter((a) => a.resourceGroup.toLowerCase() === rg.toLowerCase());
      const shape = (a: (typeof inGroup)[number]) => ({
        id: `/subscriptions/${a.subscription}/resourceGroups/${a.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${a.name}`,
        name: a.name, type: 'Microsoft.Storage/storageAccounts', location: a.location, kind: 'StorageV2', sku: { name: 'Standard_ZRS', tier: 'Standard' },
        properties: { provisioningState: 'Succeeded', primaryEndpoints: opts.blobService ? { blob: opts.blobService.endpoint } : {} },
      });
      if (parts.length === 7 && method === 'GET') return send(res, 200, { value: inGroup.map(shape) }), true;
      const account = parts[7] ? storageAccounts.get(key(rg, parts[7])) : undefined;
      if (parts.length === 9 && lower[8] === 'listkeys' && method === 'POST') {
        if (!account) return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.Storage/storageAccounts/${parts[7]}' under resource group '${rg}' was not found.`), true;
        counters.listKeys++;
        return send(res, 200, { keys: opts.blobService ? [{ keyName: 'key1', value: opts.blobService.accountKey, permissions: 'FULL' }] : [] }), true;
      }
      return false;
    }
    if (provider === 'microsoft.compute' && lower[6] === 'virtualmachinescalesets' && parts[7]) {
      const set = scaleSets.get(key(rg, parts[7]));
      if (!set) return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachineScaleSets/${parts[7]}' under resource group '${rg}' was not found.`), true;
      const tail = lower.slice(8);
      if (tail.length === 0 && method === 'GET') {
        send(res, 200, { id: `/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/${set.name}`, name: set.name, type: 'Microsoft.Compute/virtualMachineScaleSets', location: 'westeurope', tags: { consulVersion: set.model.consulVersion }, sku: { name: 'Standard_D2s_v5', tier: 'Standard', capacity: set.model.capacity }, properties: { upgradePolicy: { mode: 'Manual' }, provisioningState: 'Succeeded' } });
        return true;
      }
      if (tail[0] === 'networkinterfaces' && tail.length === 1 && method === 'GET') {
        send(res, 200, {
          value: [...set.instances.values()].map((inst) => ({
            id: `/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/${set.name}/virtualMachines/${inst.instanceId}/networkInterfaces/nic`,
            name: 'nic',
            properties: { primary: true, virtualMachine: { id: vmView(set, inst).id }, ipConfigurations: [{ name: 'ipconfig', properties: { primary: true, privateIPAddress: inst.privateIp, privateIPAllocationMethod: 'Dynamic' } }] },
          })),
        });
        return true;
      }
      if (tail[0] === 'manualupgrade' && method === 'POST') {
        const ids = ((JSON.parse((await readBody(req)).toString('utf8') || '{}') as { instanceIds?: string[] }).instanceIds) ?? [];
        for (const id of ids) {
          const inst = set.instances.get(id);
          if (!inst) return armError(res, 404, 'NotFound', `instance ${id} not found`), true;
          counters.vmActions.manualupgrade.push(id);
        }
        accepted(res, subscription, async () => {
          for (const id of ids) set.instances.get(id)!.generation = set.model.generation;
        });
        return true;
      }
      if (tail[0] === 'virtualmachines') {
        if (tail.length === 1 && method === 'GET') {
          send(res, 200, { value: [...set.instances.values()].sort((a, b) => Number(a.instanceId) - Number(b.instanceId)).map((i) => vmView(set, i)) });
          return true;
        }
        const inst = set.instances.get(parts[9]);
        if (!inst) return armError(res, 404, 'ResourceNotFound', `The Resource 'virtualMachines/${parts[9]}' was not found.`), true;
        const action = tail[2];
        if (tail.length === 2 && method === 'GET') return send(res, 200, vmView(set, inst)), true;
        if (tail.length === 2 && method === 'DELETE') {
          counters.vmActions.delete.push(inst.instanceId);
          accepted(res, subscription, async () => {
            await removeInstance(set, inst);
            set.model.capacity = set.instances.size;
          });
          return true;
        }
        if (method !== 'POST' || tail.length !== 3) return false;
        let work: () => Promise<unknown>;
        if (action === 'reimage') {
          counters.vmActions.reimage.push(inst.instanceId);
          work = () => reimage(set, inst);
        } else if (action === 'poweroff') {
          counters.vmActions.poweroff.push(inst.instanceId);
          work = () => inst.vm.powerOff();
        } else if (action === 'start') {
          counters.vmActions.start.push(inst.instanceId);
          work = () => inst.vm.powerOn(inst.userData);
        } else if (action === 'restart') {
          counters.vmActions.restart.push(inst.instanceId);
          work = async () => {
            await inst.vm.powerOff();
            await inst.vm.powerOn(inst.userData);
          };
        } else if (action === 'runcommand') {
          const body = JSON.parse((await readBody(req)).toString('utf8')) as { commandId?: string; script?: string[] };
          if (body.commandId !== 'RunShellScript') return armError(res, 400, 'InvalidParameter', 'commandId must be RunShellScript'), true;
          // One Run Command at a time per VM: https://learn.microsoft.com/azure/virtual-machines/linux/run-command#restrictions
          // ("Only one script can run at a time"); Azure answers 409 Conflict (Azure/azure-cli#32305).
          if (inst.runCommandBusy) return armError(res, 409, 'Conflict', 'Run command extension execution is in progress. Please wait for completion before invoking a run command.'), true;
          counters.vmActions.runCommand.push(inst.instanceId);
          runCommandScripts.push((body.script ?? []).join('\n'));
          inst.runCommandBusy = true;
          work = () => runCommand(inst, body.script ?? []);
        } else {
          return false;
        }
        if (action !== 'runcommand') {
          const own = work;
          work = () => (inst.actions = (inst.actions ?? Promise.resolve()).catch(() => undefined).then(own));
        }
        accepted(res, subscription, work);
        return true;
      }
    }
    return false;
  }

  // A runner that exits (--test-force-exit) takes the instances with it.
  const killAll = () => {
    for (const pid of fs.existsSync(PID_FILE) ? fs.readFileSync(PID_FILE, 'utf8').split('\n').filter(Boolean) : []) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/ns/mnt`) !== fs.readlinkSync('/proc/self/ns/mnt') || fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('unshare\0')) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('exit', killAll);
  const arm = await startFakeArm({ routes });
  url = arm.url;
  preflight.setPrincipal(arm.clientId);
  // One counters object: the token and application counts and these, all live.
  counters = Object.assign(arm.counters, counters);
  const close = arm.close.bind(arm);
  const { putApplication } = arm;
  const baseEnv = arm.env.bind(arm);
  /**
   * What a managed application's deployment grants on its vault: the offer's authorization gives the
   * control plane Key Vault Secrets Officer on the managed resource group, and mainTemplate assigns the
   * cluster's identity Key Vault Secrets User (README, "Running against a real subscription").
   */
  function grantVaultRoles(subscription: string, resourceGroup: string, clusterName: string): void {
    const roles = new Map<string, VaultRole>([
      [`app:${arm.clientId}`, 'Key Vault Secrets Officer'],
      [`mi:/subscriptions/${subscription}/resourcegroups/${resourceGroup}/providers/microsoft.managedidentity/userassignedidentities/${clusterName}-identity`.toLowerCase(), 'Key Vault Secrets User'],
    ]);
    vaultRoles.set(resourceGroup.toLowerCase(), roles);
  }
  const local: LocalArm = Object.assign(arm, {
    requests,
    // The worker makes each cluster's private endpoint in the control plane's subnet.
    env: () => ({ ...baseEnv(), AZURE_MANAGEMENT_SUBNET_ID: CONTROL_PLANE_SUBNET_ID }),
    preflight,
    // Azure makes an application's managed resource group with it and deletes it with it
    // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/overview#managed-resource-group).
    putApplication(a: Parameters<FakeArm['putApplication']>[0]) {
      const [, sub, , group] = a.managedResourceGroupId.split('/').filter(Boolean);
      if (!preflight.resourceGroupExists(sub, group)) preflight.putResourceGroup(sub, group, a.location);
      grantVaultRoles(sub, group, String(a.parameters.clusterName));
      putApplication(a);
    },
    grantVaultRoles,
    holdDeployments: () => void (held = true),
    releaseDeployments: () => void (held = false),
    failNextDeployment: (error: { code: string; message: string }) => void (failNext = error),
    refuseNextPut: (status: number, error: NestedArmError) => void (refuseNext = { status, error }),
    throttleNext: (n: number, retryAfterSeconds: number) => void (throttle = { n, retryAfter: String(retryAfterSeconds) }),
    deployments: () => [...deployments.values()].map(({ name, resourceGroup, mode, template, parameters, state, error, outputs }) => ({ name, resourceGroup, mode, template, parameters, state, error, outputs })),
    instances: (resourceGroup: string, scaleSet: string) =>
      [...(scaleSets.get(key(resourceGroup, scaleSet))?.instances.values() ?? [])]
        .sort((a, b) => Number(a.instanceId) - Number(b.instanceId))
        .map((i) => ({
          instanceId: i.instanceId, privateIp: i.privateIp, running: i.vm.running, pids: i.vm.unitPids(), boot: i.vm.state, dir: i.vm.dir,
          latestModelApplied: i.generation === scaleSets.get(key(resourceGroup, scaleSet))!.model.generation, consulVersion: i.consulVersion,
        })),
    runningProcesses: () => [...scaleSets.values()].reduce((n, set) => n + [...set.instances.values()].reduce((m, i) => m + (i.vm.running ? 1 : 0) + i.vm.unitPids().length, 0), 0),
    packageFor: (version: string) => ({ url: `${url}/_packages/consul_${encodeURIComponent(version)}_amd64.deb`, sha256: createHash('sha256').update(packageBytes(version)).digest('hex') }),
    tamperPackage: (version: string) => void tampered.add(version),
    whenBooted: async (resourceGroup: string, scaleSet: string, instanceId: string) => {
      const inst = scaleSets.get(key(resourceGroup, scaleSet))?.instances.get(instanceId);
      if (!inst) throw new Error(`no instance ${instanceId} in ${scaleSet}`);
      return inst.vm.whenBooted();
    },
    privateEndpoints: () => [...endpoints.values()].map((e) => ({ name: e.name, ip: e.ip, status: e.status, linkServiceId: e.linkServiceId })),
    linkServices: () => [...linkServices.values()].map((l) => ({ id: l.id, natIp: l.natIp, visibility: l.visibility, autoApproval: l.autoApproval, connections: l.connections.size })),
    runCommandScripts: () => [...runCommandScripts],
    publicResources: (resourceGroup: string) => [...publicResources.values()].filter((r) => r.resourceGroup.toLowerCase() === resourceGroup.toLowerCase())
      .map(({ type, name, ipAddress }) => ({ type, name, ...(ipAddress ? { ipAddress } : {}) })),
    securityRules: (resourceGroup: string) => [...nsgs.values()].filter((n) => n.resourceGroup.toLowerCase() === resourceGroup.toLowerCase()).flatMap((n) => n.rules),
    peerings: () => [...vnetRecords.values()].flatMap((v) => [...v.peerings.values()].map((x) => ({ vnetId: v.id, name: x.name, remoteId: x.remoteId, state: peeringState(v, x, vnetById) }))),
    peeredGroups: () => network.linked().map((id) => id.split('|').map((k) => k.split('/')[0]) as [string, string]),
    vaultSecret: (vaultName: string, secretName: string) => vaults.get(vaultName.toLowerCase())?.secrets.get(secretName)?.at(-1)?.value,
    netnsOf(resourceGroup: string) {
      const set = [...scaleSets.values()].find((x) => x.resourceGroup.toLowerCase() === resourceGroup.toLowerCase());
      if (!set || !network.has(set.vnetKey)) throw new Error(`no VNet with instances in ${resourceGroup}`);
      return network.netnsOf(set.vnetKey);
    },
    routeTo(resourceGroup: string, privateIp: string, backendPort: number) {
      const pls = [...linkServices.values()].find((x) => x.resourceGroup.toLowerCase() === resourceGroup.toLowerCase());
      const pe = pls && [...endpoints.values()].find((e) => e.linkServiceId.toLowerCase() === pls.id.toLowerCase() && e.status === 'Approved');
      const set = [...scaleSets.values()].find((x) => x.resourceGroup.toLowerCase() === resourceGroup.toLowerCase());
      const inst = set && [...set.instances.values()].find((i) => i.privateIp === privateIp);
      const rule = pls?.rules.find((r) => r.backendPort === backendPort);
      if (!pe || !inst || !rule) throw new Error(`no route to ${privateIp}:${backendPort} in ${resourceGroup}`);
      return { host: pe.ip, port: rule.start + inst.natSlot };
    },
    async close() {
      for (const e of endpoints.values()) await unlisten(e);
      for (const set of scaleSets.values()) for (const i of set.instances.values()) await i.vm.powerOff();
      await network.close();
      process.off('exit', killAll);
      fs.rmSync(vmRoot, { recursive: true, force: true });
      await close();
    },
  }) as unknown as LocalArm;
  return local;
}
