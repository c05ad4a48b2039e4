/**
 * A local Azure Resource Manager for the Azure target's tests: the routes the
 * real SDKs call (@azure/arm-resources deployments, @azure/arm-compute scale
 * sets and their VMs, @azure/arm-network scale-set NICs), with ARM's
 * long-running-operation protocol (Azure-AsyncOperation and Location polling
 * with Retry-After), 429 throttling and ARM's error bodies, behind the Entra ID
 * token endpoint of fake-arm.ts. A deployment of infra/arm/cluster.json makes
 * a scale set whose instances are realised as real Consul servers: each runs
 * the files the deployment's custom data (cloud-init) writes for the server
 * whose address it holds, on that private address in 10.247.0.0/16, which is
 * made local to this host.
 *
 *   const arm = await startLocalArm({ consulBinary: (version) => path });
 *   arm.holdDeployments(); arm.releaseDeployments(); arm.failNextDeployment({ code, message }); arm.throttleNext(n, s);
 *   arm.deployments(); arm.instances(rg, vmss); arm.counters; arm.requests
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SERVER_TABLE_DIR, decodeCustomData, parseRunCommandLine, subnetPlan } from '../../libs/provisioner/src';
import { availabilityZones } from '../../libs/core/src';
import { ArmPreflight } from './arm-preflight';
import { startFakeArm, type FakeArm } from './fake-arm';
import { readBody } from './fake-metering';

/** The private addresses of the local cloud's VNets. */
export const LOCAL_VNET_RANGE = '10.247.0.0/16';

export interface LocalArmOptions {
  /** The Consul binary a version runs on. */
  consulBinary(version: string): string;
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
  pid?: number;
  latestModelApplied: boolean;
  /** The Consul version its process runs. */
  consulVersion: string;
}

type VmAction = 'reimage' | 'manualupgrade' | 'poweroff' | 'start' | 'restart' | 'delete' | 'runCommand';

export interface LocalArm extends Omit<FakeArm, 'counters'> {
  readonly counters: FakeArm['counters'] & {
    /** PUTs per deployment name. */
    puts: Record<string, number>;
    statusPolls: number;
    /** listKeys of a storage account (the snapshot store's key). */
    listKeys: number;
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
  /** Instance processes alive. */
  runningProcesses(): number;
  /** Azure's checks at deployment PUT: resource groups, the principal's role on them, template and provider preflight (arm-preflight.ts). */
  readonly preflight: ArmPreflight;
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
  proc?: ChildProcess;
  serverDir?: string;
}

interface ScaleSet {
  subscription: string;
  resourceGroup: string;
  name: string;
  model: Model;
  instances: Map<string, Instance>;
  nextId: number;
}

const TIER_CAPACITY: Record<string, number> = { development: 1, standard: 3, plus: 5 };
const DEPLOYMENT_FAILED = 'At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
  res.end(text);
}

const armError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) => send(res, status, { error: { code, message } }, headers);

function alive(p?: ChildProcess): p is ChildProcess {
  return !!p && p.exitCode === null && p.signalCode === null;
}

async function stopProcess(p: ChildProcess | undefined, graceMs = 15_000): Promise<void> {
  if (!alive(p)) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * The instances' processes of every local ARM server of this checkout, so that
 * a run cut off (a test timeout, a killed runner) leaves none behind for the
 * next: the next start ends those still alive, as stop.sh ends the local
 * target's agents.
 */
const PID_FILE = path.join(process.env.LOCAL_DIR ?? os.tmpdir(), 'local-arm.pids');

function sweepStrayInstances(): void {
  let pids: string[];
  try {
    pids = fs.readFileSync(PID_FILE, 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0]) === 'consul' && argv.some((a) => a.startsWith('-config-dir=') && a.includes('/vms/'))) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  fs.rmSync(PID_FILE, { force: true });
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
  /** Finished VM actions, by operation id: what their Location answers. */
  const vmOperations = new Map<string, unknown>();
  let counters = { puts: {} as Record<string, number>, statusPolls: 0, throttled: 0, listKeys: 0, vmActions: { reimage: [], manualupgrade: [], poweroff: [], start: [], restart: [], delete: [], runCommand: [] } as Record<VmAction, string[]> };
  const requests: string[] = [];
  let held = false;
  let failNext: { code: string; message: string } | undefined;
  let refuseNext: { status: number; error: NestedArmError } | undefined;
  let throttle = { n: 0, retryAfter: '1' };
  let url = '';
  const preflight = new ArmPreflight({ zonesOf: availabilityZones });

  const key = (rg: string, name: string) => `${rg.toLowerCase()}/${name.toLowerCase()}`;

  async function boot(set: ScaleSet, inst: Instance): Promise<void> {
    const { files } = decodeCustomData(set.model.customData);
    const table = files.get(`${SERVER_TABLE_DIR}/${inst.privateIp}`);
    if (!table) throw new Error(`the custom data has no server for ${inst.privateIp}`);
    const configDir = table.content.trim();
    const serverDir = path.dirname(configDir);
    for (const [file, f] of files) {
      if (!file.startsWith(`${serverDir}/`)) continue; // a VM holds only its own server
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(file, f.content, { mode: f.mode });
      fs.chmodSync(file, f.mode);
    }
    fs.mkdirSync(path.join(serverDir, 'data'), { recursive: true, mode: 0o700 }); // the data disk: kept across reimages
    const out = fs.openSync(path.join(serverDir, 'consul.log'), 'a');
    inst.proc = spawn(opts.consulBinary(set.model.consulVersion), ['agent', `-config-dir=${configDir}`], { stdio: ['ignore', out, out], env: { PATH: process.env.PATH } });
    inst.proc.on('error', () => undefined);
    if (inst.proc.pid) fs.appendFileSync(PID_FILE, `${inst.proc.pid}\n`);
    fs.closeSync(out);
    inst.serverDir = serverDir;
    inst.generation = set.model.generation;
    inst.consulVersion = set.model.consulVersion;
  }

  async function removeInstance(set: ScaleSet, inst: Instance): Promise<void> {
    await stopProcess(inst.proc);
    if (inst.serverDir) fs.rmSync(inst.serverDir, { recursive: true, force: true });
    set.instances.delete(inst.instanceId);
  }

  /** What ARM does for a deployment; throws the reason it fails. */
  async function realise(d: DeploymentRecord & { subscription: string }): Promise<void> {
    const resources = (d.template.resources ?? []) as unknown[];
    if (d.mode === 'Complete' && resources.length === 0) {
      for (const [k, set] of scaleSets) {
        if (set.resourceGroup.toLowerCase() !== d.resourceGroup.toLowerCase()) continue;
        for (const inst of [...set.instances.values()]) await removeInstance(set, inst);
        scaleSets.delete(k);
      }
      for (const [k, a] of storageAccounts) if (a.resourceGroup.toLowerCase() === d.resourceGroup.toLowerCase()) storageAccounts.delete(k);
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
    if (value('deployServers', true) !== true) return;
    const capacity = TIER_CAPACITY[String(value('tier', 'standard'))];
    if (!capacity) throw Object.assign(new Error(`tier ${String(value('tier'))} is not one of the allowed values`), { code: 'InvalidTemplate' });
    const k = key(d.resourceGroup, `${clusterName}-servers`);
    let set = scaleSets.get(k);
    const customData = String(value('customData', ''));
    const consulVersion = String(value('consulVersion', '1.8.7'));
    if (!set) {
      set = { subscription: d.subscription, resourceGroup: d.resourceGroup, name: `${clusterName}-servers`, model: { capacity, customData, consulVersion, vnetCidr, generation: 1 }, instances: new Map(), nextId: 0 };
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
      const free = subnetPlan(vnetCidr, set.instances.size + 1 + used.size).serverAddresses.find((a) => !used.has(a))!;
      const inst: Instance = { instanceId: String(set.nextId++), privateIp: free, generation: 0, consulVersion };
      set.instances.set(inst.instanceId, inst);
      await boot(set, inst);
    }
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
        instanceView: { statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }, { code: alive(inst.proc) ? 'PowerState/running' : 'PowerState/stopped', level: 'Info' }] },
      },
    };
  }

  /** A VM action done now; its Location answers the result. */
  function accepted(res: ServerResponse, subscription: string, result: unknown): void {
    const opId = randomUUID();
    vmOperations.set(opId, result);
    send(res, 202, undefined, { location: `${url}/subscriptions/${subscription}/providers/Microsoft.Compute/locations/westeurope/operations/${opId}?api-version=2024-07-01&monitor=true`, 'retry-after': retryAfter });
  }

  async function runCommand(set: ScaleSet, inst: Instance, script: string[]): Promise<unknown> {
    const failed = (message: string) => ({ value: [{ code: 'ProvisioningState/failed', level: 'Error', displayStatus: 'Provisioning failed', message }] });
    for (const line of script) {
      let action;
      try {
        action = parseRunCommandLine(line);
      } catch (e) {
        return failed(`Enable failed: ${(e as Error).message}`);
      }
      if (action.kind === 'write') {
        if (!inst.serverDir || !action.path.startsWith(`${inst.serverDir}/`)) return failed(`Enable failed: ${action.path} is not this VM's server's file`);
        const tmp = `${action.path}.new`;
        fs.writeFileSync(tmp, action.content, { mode: action.mode });
        fs.chmodSync(tmp, action.mode);
        fs.renameSync(tmp, action.path);
      } else if (action.kind === 'reload') {
        if (!alive(inst.proc)) return failed('Enable failed: managed-consul.service is not active');
        inst.proc.kill('SIGHUP');
      } else if (action.kind === 'restart') {
        await stopProcess(inst.proc);
        await boot({ ...set, model: { ...set.model, generation: inst.generation, consulVersion: inst.consulVersion } }, inst);
      }
    }
    return { value: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded', message: 'Enable succeeded: \n[stdout]\n\n[stderr]\n' }] };
  }

  async function routes(req: IncomingMessage, res: ServerResponse, u: URL): Promise<boolean> {
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
    // /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/operations/{id}
    if (lower[2] === 'providers' && lower[4] === 'locations' && lower[6] === 'operations' && method === 'GET') {
      const result = vmOperations.get(parts[7]);
      if (result === undefined) armError(res, 404, 'NotFound', 'no such operation');
      else send(res, 200, result ?? undefined);
      return true;
    }
    if (lower[0] !== 'subscriptions' || lower[2] !== 'resourcegroups' || lower[4] !== 'providers') return false;
    const [subscription, rg] = [parts[1], parts[3]];
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
        accepted(res, subscription, null);
        return true;
      }
      return false;
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
          inst.generation = set.model.generation;
        }
        accepted(res, subscription, null);
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
          await removeInstance(set, inst);
          set.model.capacity = set.instances.size;
          accepted(res, subscription, null);
          return true;
        }
        if (method !== 'POST' || tail.length !== 3) return false;
        if (action === 'reimage') {
          counters.vmActions.reimage.push(inst.instanceId);
          await stopProcess(inst.proc);
          await boot(set, inst);
        } else if (action === 'poweroff') {
          counters.vmActions.poweroff.push(inst.instanceId);
          await stopProcess(inst.proc);
        } else if (action === 'start') {
          counters.vmActions.start.push(inst.instanceId);
          if (!alive(inst.proc)) await boot({ ...set, model: { ...set.model, generation: inst.generation, consulVersion: inst.consulVersion } }, inst);
        } else if (action === 'restart') {
          counters.vmActions.restart.push(inst.instanceId);
          await stopProcess(inst.proc);
          await boot({ ...set, model: { ...set.model, generation: inst.generation, consulVersion: inst.consulVersion } }, inst);
        } else if (action === 'runcommand') {
          counters.vmActions.runCommand.push(inst.instanceId);
          const body = JSON.parse((await readBody(req)).toString('utf8')) as { commandId?: string; script?: string[] };
          if (body.commandId !== 'RunShellScript') return armError(res, 400, 'InvalidParameter', 'commandId must be RunShellScript'), true;
          accepted(res, subscription, await runCommand(set, inst, body.script ?? []));
          return true;
        } else {
          return false;
        }
        accepted(res, subscription, null);
        return true;
      }
    }
    return false;
  }

  // A runner that exits (--test-force-exit) takes the instances with it.
  const killAll = () => {
    for (const set of scaleSets.values()) for (const i of set.instances.values()) if (alive(i.proc)) i.proc.kill('SIGKILL');
  };
  process.on('exit', killAll);
  const arm = await startFakeArm({ routes });
  url = arm.url;
  preflight.setPrincipal(arm.clientId);
  // One counters object: the token and application counts and these, all live.
  counters = Object.assign(arm.counters, counters);
  const close = arm.close.bind(arm);
  const { putApplication } = arm;
  const local: LocalArm = Object.assign(arm, {
    requests,
    preflight,
    // Azure makes an application's managed resource group with it and deletes it with it
    // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/overview#managed-resource-group).
    putApplication(a: Parameters<FakeArm['putApplication']>[0]) {
      const [, sub, , group] = a.managedResourceGroupId.split('/').filter(Boolean);
      if (!preflight.resourceGroupExists(sub, group)) preflight.putResourceGroup(sub, group, a.location);
      putApplication(a);
    },
    holdDeployments: () => void (held = true),
    releaseDeployments: () => void (held = false),
    failNextDeployment: (error: { code: string; message: string }) => void (failNext = error),
    refuseNextPut: (status: number, error: NestedArmError) => void (refuseNext = { status, error }),
    throttleNext: (n: number, retryAfterSeconds: number) => void (throttle = { n, retryAfter: String(retryAfterSeconds) }),
    deployments: () => [...deployments.values()].map(({ name, resourceGroup, mode, template, parameters, state, error, outputs }) => ({ name, resourceGroup, mode, template, parameters, state, error, outputs })),
    instances: (resourceGroup: string, scaleSet: string) =>
      [...(scaleSets.get(key(resourceGroup, scaleSet))?.instances.values() ?? [])]
        .sort((a, b) => Number(a.instanceId) - Number(b.instanceId))
        .map((i) => ({ instanceId: i.instanceId, privateIp: i.privateIp, running: alive(i.proc), pid: i.proc?.pid, latestModelApplied: i.generation === scaleSets.get(key(resourceGroup, scaleSet))!.model.generation, consulVersion: i.consulVersion })),
    runningProcesses: () => [...scaleSets.values()].reduce((n, set) => n + [...set.instances.values()].filter((i) => alive(i.proc)).length, 0),
    async close() {
      for (const set of scaleSets.values()) for (const i of set.instances.values()) await stopProcess(i.proc, 5_000);
      process.off('exit', killAll);
      await close();
    },
  }) as unknown as LocalArm;
  return local;
}
