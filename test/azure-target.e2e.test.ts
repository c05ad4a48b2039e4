import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { AZURE_CLUSTERS_DIR, SNAPSHOT_CONTAINER, decodeCustomData } from '../libs/provisioner/src';
import { consul, servedFingerprint } from './support/consul-cli';
import { endAzureRun, operationEnd, spawnAzureWorker } from './support/azure-e2e';
import { startLocalArm, type LocalArm } from './support/local-arm';
import { sshPublicKey } from './support/ssh-key';
import { exited } from './support/worker-process';
import { SUBSCRIPTION, WRITE, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'a2a2a2a2-0000-4000-8000-0000000000a2';
const CUSTOMER_TENANT = 'c2c2c2c2-0000-4000-8000-0000000000c2';
const SECRET = randomBytes(32).toString('base64url');
const TEMPLATE = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'infra', 'arm', 'cluster.json'), 'utf8'));
/**
 * Every cluster has the default address space, as customers' clusters do: their VNets overlap
 * (each a network namespace of the local ARM), and the control plane reaches each through the
 * cluster's Private Link service alone.
 */
const VNET = '172.25.16.0/24';
const ADDRESSES = ['172.25.16.5', '172.25.16.6', '172.25.16.7', '172.25.16.8', '172.25.16.9'];

/** Azurite's blob endpoint and account key, from the stack's connection string. */
function azurite(): { endpoint: string; accountKey: string } {
  const parts = new Map(process.env.AZURE_STORAGE_CONNECTION_STRING!.split(';').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { endpoint: `${parts.get('BlobEndpoint')!.replace(/\/$/, '')}/`, accountKey: parts.get('AccountKey')! };
}


// The Azure target against a local server speaking ARM's wire protocol: the real
// @azure/arm-resources, arm-compute, arm-network and identity code runs, and
// each scale-set instance boots by running its user data as cloud-init would, in
// a mount namespace of its own: it downloads and checks the Consul package,
// makes the consul user, mounts its data disk and starts the systemd unit
// whose Consul server listens on a private address of the cluster's VNet,
// made local to this host.
describe('the azure target', { timeout: 600_000 }, () => {
  let s: TestStack;
  let arm: LocalArm;
  let work: string;
  let token: string;
  let worker: ChildProcess;
  const children: ChildProcess[] = [];
  const startWorker = (name: string) => {
    worker = spawnAzureWorker(s, name);
    children.push(worker);
    return worker;
  };

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'azure-'));
    const rolling = path.join(work, 'consul-rolling');
    fs.symlinkSync(process.env.CONSUL_BIN!, rolling);
    const extra = [{ version: '1.8.7-rolling', status: 'AVAILABLE', binary: rolling, reports: '1.8.7' }];
    // The instances install Debian's Consul package (both versions are its 1.8.7), which the local ARM serves them.
    // Every storage account the deployments make answers with Azurite's account (its endpoint and key).
    arm = await startLocalArm({ consulPackage: () => process.env.CONSUL_DEB!, retryAfterSeconds: 0, blobService: azurite() });
    const config = await testConfig({
      CLUSTER_TARGET: 'azure',
      AZURE_ADMIN_SSH_PUBLIC_KEY: sshPublicKey('operator'),
      AZURE_CONSUL_PACKAGES: JSON.stringify({ '1.8.7': arm.packageFor('1.8.7'), '1.8.7-rolling': arm.packageFor('1.8.7-rolling') }),
      AZURE_POLL_INTERVAL_MS: '200',
      EXTRA_CONSUL_VERSIONS: JSON.stringify(extra),
      NOTIFICATION_SECRET: SECRET,
      // The control plane's own snapshot container, apart from the one in each cluster's storage account.
      SNAPSHOT_CONTAINER: 'control-plane-snapshots',
      ...arm.env(),
    });
    s = await startStack({ worker: false, config });
    token = s.token(TENANT, WRITE);
    startWorker('azure-worker-1');
  });
  after(() => endAzureRun(children, s, arm, work));

  const finish = (opId: string, timeoutMs = 180_000) => operationEnd(s, token, opId, timeoutMs);

  /**
   * A cluster on Azure, as one comes to be: the customer's managed application (a service catalog
   * one: no plan, its tier parameter) is deployed, Azure makes its managed resource group and
   * notifies PUT Succeeded; the API answers creating the cluster there, in the test's tenant.
   */
  async function create(name: string, tier = 'standard') {
    const appId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-${name}/providers/Microsoft.Solutions/applications/${name}`;
    const mrg = `mrg-${name}-20261206`;
    arm.putApplication({
      id: appId, location: 'westeurope', managedResourceGroupId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${mrg}`,
      parameters: {
        location: 'westeurope', clusterName: name, datacenter: 'dc1', tier, consulVersion: '1.8.7', externalEndpoint: false, vnetCidr: VNET,
        upgradeMode: 'manual', upgradeWindowDay: 0, upgradeWindowStartHour: 2, upgradeWindowHours: 4, snapshotIntervalHours: 24, snapshotRetention: 7,
      },
      outputs: { tenantId: TENANT },
    });
    const res = await s.request('POST', `/resource?sig=${encodeURIComponent(SECRET)}`, {
      body: { eventType: 'PUT', applicationId: appId, eventTime: new Date().toISOString(), provisioningState: 'Succeeded' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outcome, 'created', JSON.stringify(res.body));
    return { id: res.body.clusterId as string, opId: res.body.operationId as string, mrg };
  }

  /** The consul CLI as the customer runs it: from a machine of the cluster's network, at the address client-config gives. */
  async function cli(c: { id: string; mrg: string }) {
    const cc = (await s.request('GET', `/v1/clusters/${c.id}/client-config`, { token })).body;
    const caFile = path.join(work, `${c.id}.pem`);
    fs.writeFileSync(caFile, cc.caPem);
    const secret = (await s.request('POST', `/v1/clusters/${c.id}/tokens`, { token })).body.secretId as string | undefined;
    return { cc, run: (args: string[], withToken = true) => consul(args, { httpAddr: cc.httpsAddress, caFile, token: withToken ? secret : undefined, netns: arm.netnsOf(c.mrg) }) };
  }

  /** The certificates the servers serve, read the way the control plane reaches them (the cluster's private endpoint). */
  const served = (c: { mrg: string }, cc: { retryJoin: string[]; caPem: string }) => Promise.all(cc.retryJoin.map((a) => servedFingerprint(a, cc.caPem, arm.routeTo(c.mrg, a, 8501))));

  const leaderOf = async (run: (a: string[]) => Promise<{ stdout: string }>) =>
    (await run(['operator', 'raft', 'list-peers'])).stdout.split('\n').find((l) => /\sleader\s/.test(l))!.split(/\s+/)[2].split(':')[0];

  let main: { id: string; mrg: string };

  it('POST /v1/clusters does not make clusters on Azure (no managed resource group would exist for it): 409, nothing written', async () => {
    const clusters = await s.db.cluster.count();
    const res = await s.request('POST', '/v1/clusters', {
      token, body: { name: 'az-api', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-az-api', region: 'westeurope', tier: 'development', vnetCidr: VNET },
    });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'create_through_marketplace');
    assert.match(res.body.error.message, /managed application/);
    assert.equal(await s.db.cluster.count(), clusters);
    assert.equal(arm.deployments().length, 0, 'nothing deployed');
  });

  it('create: one deployment of cluster.json with the cluster\'s parameters; real servers from its custom data; Running; secure from outside', async () => {
    const c = await create('az-main');
    main = c;
    const op = await finish(c.opId);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    // The vault first (the servers' secrets go there before any server boots): an infrastructure deployment, as the
    // local ARM does not run the managed application's own deployment of it; then the servers' one.
    const deployments = arm.deployments().filter((d) => d.resourceGroup.toLowerCase() === c.mrg.toLowerCase());
    assert.deepEqual(deployments.map((d) => d.parameters.deployServers?.value), [false, true], `the infrastructure, then the servers: ${deployments.map((d) => d.name).join(', ')}`);
    const d = deployments[1];
    assert.equal(arm.counters.puts[d.name], 1, 'PUT once');
    assert.equal(d.mode, 'Incremental');
    assert.deepEqual(d.template, TEMPLATE, 'the template is infra/arm/cluster.json');
    const p = d.parameters as Record<string, { value: unknown }>;
    assert.deepEqual(
      [p.clusterName.value, p.tier.value, p.vnetCidr.value, p.consulVersion.value, p.location.value, p.deployServers.value],
      ['az-main', 'standard', VNET, '1.8.7', 'westeurope', true],
    );
    const files = decodeCustomData(String(p.customData.value)).files;
    assert.ok([...files.keys()].some((f) => f.startsWith(`${AZURE_CLUSTERS_DIR}/`)), 'the custom data writes the VM layout (each instance has its own, in its own namespace)');
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: c.id }, include: { servers: { orderBy: { index: 'asc' } } } });
    assert.equal(cluster.target, 'azure');
    assert.equal(cluster.state, 'Running');
    assert.deepEqual(cluster.servers.map((x) => x.address), ADDRESSES.slice(0, 3), 'the addresses Azure gives in the subnet');
    const vms = arm.instances(c.mrg, 'az-main-servers');
    assert.deepEqual(vms.map((v) => [v.privateIp, v.running]), cluster.servers.map((x) => [x.address, true]));
    // The worker made the cluster through its private endpoint alone (the addresses are not routed to from its network):
    // one endpoint in the control plane's subnet, approved, and each server's row says where the API reaches it.
    const endpoints = arm.privateEndpoints().filter((e) => e.linkServiceId.toLowerCase().includes(`/resourcegroups/${c.mrg.toLowerCase()}/`));
    assert.deepEqual(endpoints.map((e) => e.status), ['Approved']);
    assert.deepEqual(cluster.servers.map((x) => x.apiEndpoint), cluster.servers.map((x) => {
      const r = arm.routeTo(c.mrg, x.address, 8501);
      return `${r.host}:${r.port}`;
    }), 'the API reaches each server at its NAT port of the private endpoint');

    const { run } = await cli(c);
    const peers = await run(['operator', 'raft', 'list-peers']);
    assert.equal(peers.code, 0, peers.stderr);
    for (const a of ADDRESSES.slice(0, 3)) assert.match(peers.stdout, new RegExp(`${a.replace(/\./g, '\\.')}:8300\\s+\\S+\\s+true`), `${a} is a voter`);
    const anonymous = await run(['kv', 'put', 'x', '1'], false);
    assert.notEqual(anonymous.code, 0, 'ACLs deny an anonymous write');
    assert.match(anonymous.stderr, /403|Permission denied/i);
    assert.equal((await run(['kv', 'put', 'kept', 'yes'])).code, 0);
  });

  it('a worker killed while the deployment runs: the next one resumes the same deployment (exactly one PUT)', async () => {
    arm.holdDeployments();
    const c = await create('az-crash', 'development');
    const name = (await waitFor('the deployment to be running', async () => arm.deployments().find((d) => d.resourceGroup.toLowerCase() === c.mrg.toLowerCase()), (d) => d?.state === 'Running', 60_000))!.name;
    // The poller's state is on the operation before the worker is killed.
    await waitFor('the poller state on the operation', () => s.db.operation.findUniqueOrThrow({ where: { id: c.opId } }), (o) => typeof (o.targetState as Record<string, unknown>)[name] === 'string', 30_000);
    worker.kill('SIGKILL');
    await exited(worker);
    const polls = arm.counters.statusPolls;
    startWorker('azure-worker-2');
    await waitFor('the new worker to poll the deployment', async () => arm.counters.statusPolls, (n) => n > polls, 60_000);
    arm.releaseDeployments();
    const op = await finish(c.opId);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.equal(arm.counters.puts[name], 1, 'the deployment was PUT exactly once');
    for (const d of arm.deployments().filter((x) => x.resourceGroup.toLowerCase() === c.mrg.toLowerCase())) assert.equal(arm.counters.puts[d.name], 1, `${d.name} was PUT once`);
    assert.equal(arm.instances(c.mrg, 'az-crash-servers').length, 1);
    const del = await s.request('DELETE', `/v1/clusters/${c.id}`, { token });
    assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
  });

  it('a deployment that fails: the operation fails with ARM\'s code and message; nothing runs; the cluster can be deleted', async () => {
    arm.failNextDeployment({ code: 'SkuNotAvailable', message: "The requested VM size 'Standard_D2s_v5' is currently not available in location 'westeurope'." });
    const c = await create('az-fail', 'development');
    const op = await finish(c.opId);
    assert.equal(op.state, 'Failed');
    // The root cause, from under DeploymentFailed → ResourceDeploymentFailure, and at once: a failed deployment is not retried.
    assert.equal(op.error.code, 'SkuNotAvailable', JSON.stringify(op.error));
    assert.match(op.error.message, /SkuNotAvailable: The requested VM size 'Standard_D2s_v5' is currently not available/);
    assert.equal(op.attempts, 1, 'failed on its first attempt');
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: c.id } });
    assert.equal(cluster.state, 'Failed');
    assert.equal(cluster.runningSince, null, 'never Running, never billed');
    assert.equal(await s.db.usageRecord.count({ where: { clusterId: c.id } }), 0);
    assert.deepEqual(arm.instances(c.mrg, 'az-fail-servers'), [], 'no instance was made');
    const deployments = arm.deployments().filter((d) => d.resourceGroup.toLowerCase() === c.mrg.toLowerCase());
    assert.equal(deployments.length, 1, 'the failed step is not retried into a second deployment');
    // The managed resource group is gone already (deleted by Azure): the delete is done.
    arm.refuseNextPut(404, { code: 'ResourceGroupNotFound', message: `Resource group '${c.mrg}' could not be found.` });
    const del = await s.request('DELETE', `/v1/clusters/${c.id}`, { token });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
  });

  it('a deployment ARM refuses at PUT (preflight): the operation fails at once with ARM\'s code and the innermost message; nothing is deployed', async () => {
    const putsBefore = Object.values(arm.counters.puts).reduce((a, b) => a + b, 0);
    arm.refuseNextPut(400, {
      code: 'InvalidTemplateDeployment',
      message: "The template deployment 'consul-servers' is not valid according to the validation procedure. The tracking id is '00000000-0000-0000-0000-000000000000'. See inner errors for details.",
      details: [{
        code: 'PreflightValidationCheckFailed', message: 'Preflight validation failed. Please refer to the details for the specific errors.',
        details: [{ code: 'InvalidParameter', target: 'linuxConfiguration.ssh.publicKeys.keyData', message: "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid." }],
      }],
    });
    const c = await create('az-refused', 'development');
    const op = await finish(c.opId);
    assert.equal(op.state, 'Failed', JSON.stringify(op));
    assert.equal(op.attempts, 1, 'not retried: the same PUT gets the same answer');
    assert.equal(op.error.code, 'InvalidParameter', JSON.stringify(op.error));
    assert.match(op.error.message, /InvalidTemplateDeployment/);
    assert.match(op.error.message, /The value of parameter linuxConfiguration\.ssh\.publicKeys\.keyData is invalid/);
    assert.equal(Object.values(arm.counters.puts).reduce((a, b) => a + b, 0), putsBefore, 'no deployment was accepted');
    assert.deepEqual(arm.instances(c.mrg, 'az-refused-servers'), []);
    // Azure is deleting the managed resource group already (the application's own delete): nothing is left to delete.
    arm.refuseNextPut(409, { code: 'ResourceGroupBeingDeleted', message: `The resource group '${c.mrg}' is in deprovisioning state and cannot perform this operation.` });
    const del = await s.request('DELETE', `/v1/clusters/${c.id}`, { token });
    const deleted = await finish(del.body.operation.id);
    assert.equal(deleted.state, 'Succeeded', JSON.stringify(deleted));
    assert.ok(deleted.steps.some((st: { detail?: string }) => /ResourceGroupBeingDeleted/.test(st.detail ?? '')), JSON.stringify(deleted.steps));
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: c.id } })).state, 'Deleted');
  });

  it('throttled: ARM\'s 429 waits its Retry-After and the operation succeeds (scale to 5 servers)', async () => {
    const throttledBefore = arm.counters.throttled;
    arm.throttleNext(3, 1);
    const res = await s.request('PATCH', `/v1/clusters/${main.id}`, { token, body: { tier: 'plus' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.equal(arm.counters.throttled - throttledBefore, 3, 'three answers were 429');
    const vms = arm.instances(main.mrg, 'az-main-servers');
    assert.deepEqual(vms.map((v) => v.privateIp), ADDRESSES);
    const { run } = await cli(main);
    const peers = await run(['operator', 'raft', 'list-peers']);
    assert.equal(peers.stdout.split('\n').filter((l) => /\strue\s/.test(l) || /\strue$/.test(l.trim())).length, 5, peers.stdout);
  });

  it('a rolling upgrade on the azure target: one instance at a time, followers first, the leader last; data kept', async () => {
    const { cc, run } = await cli(main);
    const leader = await leaderOf(run);
    const before = arm.counters.vmActions.reimage.length;
    const res = await s.request('POST', `/v1/clusters/${main.id}/upgrade`, { token, body: { consulVersion: '1.8.7-rolling' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id, 300_000);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    const reimaged = arm.counters.vmActions.reimage.slice(before);
    const vms = arm.instances(main.mrg, 'az-main-servers');
    const ipOf = new Map(vms.map((v) => [v.instanceId, v.privateIp]));
    assert.equal(reimaged.length, 5, `each instance once: ${reimaged.join(', ')}`);
    assert.equal(new Set(reimaged).size, 5);
    const roll = op.steps.find((x: { name: string }) => x.name === 'roll-servers');
    const [, leftAsLeader] = roll.detail.match(/\(the leader, (\d), last\)/) ?? assert.fail(roll.detail);
    // Leadership may move under the roll (a follower back from its reimage can win an election): the leader of its turn goes last.
    assert.equal(ipOf.get(reimaged[4]), cc.retryJoin[Number(leftAsLeader)], 'the leader last');
    if (cc.retryJoin[Number(leftAsLeader)] !== leader) process.stdout.write(`# leadership moved during the roll: ${leader} → ${cc.retryJoin[Number(leftAsLeader)]}\n`);
    assert.ok(vms.every((v) => v.consulVersion === '1.8.7-rolling' && v.running), JSON.stringify(vms));
    const kept = await run(['kv', 'get', 'kept']);
    assert.equal(kept.stdout.trim(), 'yes', 'the data survived the reimages');
    assert.equal(cc.retryJoin.length, 5);
  });

  it('snapshots go to the cluster\'s own storage account (its key from ARM\'s listKeys), and restore from there', async () => {
    const listKeys = arm.counters.listKeys;
    const snap = await s.request('POST', `/v1/clusters/${main.id}/snapshots`, { token, body: { name: 'in-the-mrg' } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    const op = await finish(snap.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.ok(arm.counters.listKeys > listKeys, 'the store asked ARM for the account key');
    const account = arm.requests.find((r) => /^POST .*\/providers\/Microsoft\.Storage\/storageAccounts\/[^/]+\/listKeys$/i.test(r) && r.toLowerCase().includes(`/resourcegroups/${main.mrg.toLowerCase()}/`));
    assert.ok(account, 'the storage account of the cluster\'s managed resource group');
    const row = await s.db.snapshot.findUniqueOrThrow({ where: { id: snap.body.snapshot.id } });
    const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING!);
    const blob = service.getContainerClient(SNAPSHOT_CONTAINER).getBlobClient(row.blobKey);
    assert.equal(await blob.exists(), true, `the blob is in ${SNAPSHOT_CONTAINER}, the container cluster.json makes`);
    assert.equal(Number((await blob.getProperties()).contentLength), Number(row.size));
    assert.equal(await service.getContainerClient(s.config.SNAPSHOT_CONTAINER).getBlobClient(row.blobKey).exists(), false, 'not in the control plane\'s container');

    const { run } = await cli(main);
    assert.equal((await run(['kv', 'put', 'kept', 'changed'])).code, 0);
    const restore = await s.request('POST', `/v1/clusters/${main.id}/snapshots/${row.id}/restore`, { token, body: { takeSnapshot: false } });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    const done = await finish(restore.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done.error ?? done.steps));
    // A token made after the snapshot is not in the restored state: a fresh one reads.
    const restored = await (await cli(main)).run(['kv', 'get', 'kept']);
    assert.equal(restored.stdout.trim(), 'yes', `restored from the blob in the cluster's account: ${restored.stderr}`);
  });

  it('rotations on the azure target (Run Command on each instance): a new gossip key everywhere, then new server certificates, then a new CA, the cluster serving throughout', async () => {
    const { cc, run } = await cli(main);
    const oldKey = cc.encrypt as string;
    const gossip = await s.request('POST', `/v1/clusters/${main.id}/rotate`, { token, body: { what: 'gossip-key' } });
    assert.equal(gossip.status, 202, JSON.stringify(gossip.body));
    const g = await finish(gossip.body.operation.id, 300_000);
    assert.equal(g.state, 'Succeeded', JSON.stringify(g.error ?? g.steps));
    const newKey = (await s.request('GET', `/v1/clusters/${main.id}/client-config`, { token })).body.encrypt as string;
    assert.notEqual(newKey, oldKey);
    // keyring -list is a gossip query: on a loaded machine a node may answer it late, so ask until all five answer.
    // (Only the exit code is reported on a timeout: the keyring lists gossip keys.)
    let keys = '';
    await waitFor('all five servers to answer the keyring query', () => run(['keyring', '-list']).then((r) => ((keys = r.stdout), r.code)), (code) => code === 0, 30_000);
    assert.ok(!keys.includes(oldKey), 'the old key is gone from every server');
    assert.ok(keys.includes(`${newKey} [5/5]`), 'the new key on all five servers');

    const before = await served(main, cc);
    const certs = await s.request('POST', `/v1/clusters/${main.id}/rotate`, { token, body: { what: 'certificates' } });
    assert.equal(certs.status, 202, JSON.stringify(certs.body));
    const c = await finish(certs.body.operation.id, 300_000);
    assert.equal(c.state, 'Succeeded', JSON.stringify(c.error ?? c.steps));
    const after = await served(main, cc);
    for (let i = 0; i < before.length; i++) assert.notEqual(after[i], before[i], `server ${cc.retryJoin[i]} serves a new certificate from the same CA`);
    // Item 10: the new key and certificates reached the servers through the vault; no Run Command script carried a secret.
    const carried = arm.runCommandScripts().flatMap((script) => [script, ...[...script.matchAll(/printf '%s' '([A-Za-z0-9+/=]+)'/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'))]);
    assert.ok(carried.length > 0, 'the rotations ran Run Command');
    assert.ok(carried.every((t) => !t.includes(oldKey) && !t.includes(newKey) && !t.includes('PRIVATE KEY') && !t.includes('"encrypt"')), 'no gossip key, private key or server config in a Run Command script');
    assert.equal((await run(['kv', 'get', 'kept'])).stdout.trim(), 'yes');

    // The CA: a dual-CA roll, each step checked over the servers' RPC port (the management path's second NAT rule).
    const ca = await s.request('POST', `/v1/clusters/${main.id}/rotate`, { token, body: { what: 'ca' } });
    assert.equal(ca.status, 202, JSON.stringify(ca.body));
    const r = await finish(ca.body.operation.id, 300_000);
    assert.equal(r.state, 'Succeeded', JSON.stringify(r.error ?? r.steps));
    const rolled = await cli(main);
    assert.notEqual(rolled.cc.caPem, cc.caPem, 'client-config serves the new CA');
    const newCa = await served(main, rolled.cc);
    assert.equal(newCa.length, 5, 'every server serves a certificate of the new CA');
    await assert.rejects(served(main, cc), 'no server serves a certificate of the old CA any more');
    assert.equal((await rolled.run(['kv', 'get', 'kept'])).stdout.trim(), 'yes');
  });

  it('the public endpoint in place: PATCH on redeploys the servers\' deployment with the allowlist (the NSG admits exactly it, a rule per family) and the public IP; off removes the rules, the load balancer and the IP', async () => {
    const ALLOWLIST = [{ cidr: '203.0.113.0/24', description: 'office' }, { cidr: '2001:db8::/32', description: 'office v6' }, { cidr: '198.51.100.0/28', description: 'ci' }];
    const publicRules = () => arm.securityRules(main.mrg).filter((r) => r.name.startsWith('consul-https-public')).map((r) => [r.name, r.sourceAddressPrefixes]);
    const publicOnes = () => arm.publicResources(main.mrg).filter((r) => r.name === 'az-main-plb' || r.name === 'az-main-ip');
    assert.deepEqual(publicRules(), [], 'created without the endpoint');
    assert.deepEqual(publicOnes(), []);
    const instancesBefore = arm.instances(main.mrg, 'az-main-servers').map((i) => i.instanceId);

    const on = await s.request('PATCH', `/v1/clusters/${main.id}`, { token, body: { publicEndpoint: true, ipAllowlist: ALLOWLIST } });
    assert.equal(on.status, 202, JSON.stringify(on.body));
    const applied = await finish(on.body.operation.id);
    assert.equal(applied.state, 'Succeeded', JSON.stringify(applied.error ?? applied.steps));
    assert.deepEqual(publicRules(), [['consul-https-public-ipv4', ['203.0.113.0/24', '198.51.100.0/28']], ['consul-https-public-ipv6', ['2001:db8::/32']]]);
    assert.ok(!arm.securityRules(main.mrg).some((r) => r.sourceAddressPrefix === 'Internet'), 'nothing from the Internet at large');
    const ip = publicOnes().find((r) => r.type === 'publicIPAddresses')?.ipAddress;
    assert.ok(ip && publicOnes().some((r) => r.type === 'loadBalancers'), JSON.stringify(arm.publicResources(main.mrg)));
    const servers = arm.deployments().filter((d) => d.resourceGroup === main.mrg && d.parameters.deployServers?.value === true).at(-1)!;
    assert.deepEqual([servers.parameters.externalEndpoint.value, servers.parameters.publicSourcesIpv6.value], [true, ['2001:db8::/32']], 'the same deployment, new parameters');
    assert.equal((await s.request('GET', `/v1/clusters/${main.id}`, { token })).body.endpoints.public, `https://${ip}:8501`);
    assert.deepEqual(arm.instances(main.mrg, 'az-main-servers').map((i) => i.instanceId), instancesBefore, 'in place: no instance made again');

    const off = await s.request('PATCH', `/v1/clusters/${main.id}`, { token, body: { publicEndpoint: false } });
    assert.equal(off.status, 202);
    assert.equal((await finish(off.body.operation.id)).state, 'Succeeded');
    assert.deepEqual(publicRules(), []);
    assert.deepEqual(publicOnes(), [], 'the public load balancer and its IP are deleted (an Incremental deployment leaves them)');
    const view = (await s.request('GET', `/v1/clusters/${main.id}`, { token })).body;
    assert.deepEqual([view.endpoints.public, view.ipAllowlist.length], [null, 3]);
  });

  it('notifications: PUT Succeeded creates the cluster in the managed resource group; a repeat changes nothing; a wrong sig is refused; DELETE deletes it', async () => {
    const sub = 'a2b2c2d2-0000-4000-8000-0000000000b2';
    const appId = `/subscriptions/${sub}/resourceGroups/rg-shop/providers/Microsoft.Solutions/applications/shop`;
    const mrgId = `/subscriptions/${sub}/resourceGroups/mrg-consul-shop-20261202`;
    const app = {
      id: appId, location: 'westeurope', managedResourceGroupId: mrgId,
      parameters: {
        location: 'westeurope', clusterName: 'shop', datacenter: 'dc1', tier: 'development', consulVersion: '1.8.7', externalEndpoint: false,
        vnetCidr: VNET, upgradeMode: 'manual', upgradeWindowDay: 0, upgradeWindowStartHour: 2, upgradeWindowHours: 4, snapshotIntervalHours: 24, snapshotRetention: 7,
      },
      outputs: { tenantId: CUSTOMER_TENANT },
    };
    arm.putApplication(app);
    const notify = (body: unknown, sig = SECRET) => s.request('POST', `/resource?sig=${encodeURIComponent(sig)}`, { body });
    const event = (eventType: string, provisioningState: string) => ({
      eventType, applicationId: appId, eventTime: new Date().toISOString(), provisioningState,
      plan: { publisher: 'contoso', product: 'managed-consul', name: 'development', version: '1.0.0' },
      billingDetails: { resourceUsageId: 'usage-shop-0001' },
    });
    const wrong = await notify(event('PUT', 'Succeeded'), 'not-the-secret-' + 'x'.repeat(32));
    assert.equal(wrong.status, 403);
    assert.equal(await s.db.cluster.count({ where: { managedApplicationId: appId.toLowerCase() } }), 0, 'a wrong sig changes nothing');

    const put = event('PUT', 'Succeeded');
    const res = await notify(put);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outcome, 'created');
    // The customer's tenant owns this cluster, not the test's user: watch the row.
    const op = await waitFor(`operation ${res.body.operationId}`, () => s.db.operation.findUniqueOrThrow({ where: { id: res.body.operationId } }), (o) => ['Succeeded', 'Failed'].includes(o.state), 180_000);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error));
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: res.body.clusterId } });
    assert.deepEqual([cluster.target, cluster.state, cluster.billingResourceId], ['azure', 'Running', 'usage-shop-0001']);
    const vms = arm.instances('mrg-consul-shop-20261202', 'shop-servers');
    assert.deepEqual(vms.map((v) => [v.privateIp, v.running]), [[ADDRESSES[0], true]], 'deployed into the managed resource group, its address the same as the other clusters\' first server');
    const again = await notify(put);
    assert.deepEqual([again.status, again.body.status], [200, 'duplicate']);
    assert.equal(await s.db.operation.count({ where: { clusterId: cluster.id } }), 1, 'a repeated notification queues nothing');

    // A DELETE acts only once ARM shows the application being deleted.
    const early = await notify(event('DELETE', 'Deleting'));
    assert.deepEqual([early.status, early.body.error?.code], [409, 'application_not_deleting']);
    assert.equal(await s.db.operation.count({ where: { clusterId: cluster.id } }), 1, 'a DELETE that ARM does not bear out queues nothing');
    arm.putApplication({ ...app, provisioningState: 'Deleting' });
    const del = await notify(event('DELETE', 'Deleting'));
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const deleted = await waitFor('the cluster to be deleted', () => s.db.cluster.findUniqueOrThrow({ where: { id: cluster.id } }), (c) => ['Deleted', 'Failed'].includes(c.state), 120_000);
    assert.equal(deleted.state, 'Deleted');
    const complete = arm.deployments().filter((d) => d.resourceGroup.toLowerCase() === 'mrg-consul-shop-20261202' && d.mode === 'Complete');
    assert.equal(complete.length, 1, 'one Complete-mode deployment empties the managed resource group');
    assert.equal(arm.privateEndpoints().some((e) => e.linkServiceId.toLowerCase().includes('/resourcegroups/mrg-consul-shop-20261202/')), false, 'its private endpoint went first (Azure keeps a Private Link service that has connections)');
    assert.deepEqual(arm.instances('mrg-consul-shop-20261202', 'shop-servers'), [], 'no instance left');
    assert.ok(!arm.requests.some((r) => /^DELETE \/subscriptions\/[^/]+\/resourcegroups\/[^/]+$/i.test(r)), 'the managed resource group itself is never deleted (Azure owns it)');
  });

  it('delete: the scale set and its servers go; no Consul process is left', async () => {
    const del = await s.request('DELETE', `/v1/clusters/${main.id}`, { token });
    assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
    assert.deepEqual(arm.instances(main.mrg, 'az-main-servers'), []);
    assert.equal(arm.runningProcesses(), 0, 'every instance process stopped');
    // The snapshots went with the storage account: the rows say so, nothing failed on the missing account.
    const left = await s.db.snapshot.findMany({ where: { clusterId: main.id } });
    assert.ok(left.length > 0 && left.every((x) => x.state === 'Deleted'), JSON.stringify(left.map((x) => x.state)));
  });
});
