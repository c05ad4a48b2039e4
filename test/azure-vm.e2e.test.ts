import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ResourceManagementClient } from '@azure/arm-resources';
import {
  AzureTarget, InstanceBootFailedError, generateClusterPki, poll, generateGossipKey, generateManagementToken, subnetPlan,
  type AzurePlacement, type ClusterSecrets, type ClusterSpec, type Progress,
} from '../libs/provisioner/src';
import { CONTROL_PLANE_SUBNET_ID, startLocalArm, type LocalArm } from './support/local-arm';
import { sshPublicKey } from './support/ssh-key';
import { availabilityZones } from '../libs/core/src';
import { consul, servedFingerprint } from './support/consul-cli';
import { waitFor } from './support/stack';
import './support/local-dns';

const TEMPLATE = JSON.parse(fs.readFileSync(`${__dirname}/../../infra/arm/cluster.json`, 'utf8')) as Record<string, unknown>;
const SUB = 'a3a3a3a3-0000-4000-8000-0000000000a3';

// The compute side of the local ARM as strict as Azure (VM actions, Run Command, the boot
// script really run), and the Azure target reading what Azure really tells it.
describe('azure VMs: actions, Run Command, the boot', { timeout: 300_000 }, () => {
  let arm: LocalArm;
  let compute: ComputeManagementClient;
  let credential: ClientSecretCredential;

  before(async () => {
    arm = await startLocalArm({ consulPackage: () => process.env.CONSUL_DEB!, vmActionMs: 300 });
    // Each test cluster's resource group exists, with the documented role on it.
    arm.preflight.putResourceGroup(SUB, /^rg-vm-/, 'westeurope');
    credential = new ClientSecretCredential(arm.tenantId, arm.clientId, arm.clientSecret, { authorityHost: arm.url, disableInstanceDiscovery: true });
    compute = new ComputeManagementClient(credential, SUB, { endpoint: arm.url, credentialScopes: [`${arm.url}/.default`] });
  });
  after(async () => {
    await arm?.close();
  });

  /** A one-server cluster deployed by the target, in its own resource group and VNet: every one in the default address space, as customers' overlap. */
  async function cluster(name: string, version = '1.8.7', opts: { vaultRoles?: boolean } = {}) {
    // What the managed application's deployment grants on the cluster's vault (the offer's authorization, mainTemplate's assignment).
    if (opts.vaultRoles !== false) arm.grantVaultRoles(SUB, `rg-${name}`, name);
    const vnetCidr = '172.25.16.0/24';
    const [address] = subnetPlan(vnetCidr, 1).serverAddresses;
    const spec: ClusterSpec = { clusterId: randomUUID(), datacenter: 'dc1', consulVersion: version, servers: [{ index: 0, address }] };
    const secrets: ClusterSecrets = { pki: await generateClusterPki({ datacenter: 'dc1', serverAddresses: [address] }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() };
    const placement: AzurePlacement = { subscriptionId: SUB, resourceGroup: `rg-${name}`, location: 'westeurope', clusterName: name, vnetCidr, externalEndpoint: false, zones: availabilityZones('westeurope'), addresses: new Map([[0, address]]) };
    const states: Record<string, string> = {};
    const target = new AzureTarget({
      credential, armEndpoint: arm.url, template: TEMPLATE, pollIntervalMs: 200, adminSshPublicKey: sshPublicKey('operator'), managementSubnetId: CONTROL_PLANE_SUBNET_ID,
      consulPackage: (v) => ({ version: v, ...arm.packageFor(v) }), binaryFor: () => process.env.CONSUL_BIN!,
      placement: async () => placement,
      journal: { current: async () => ({ operationId: '0c0c0c0c-0000-4000-8000-000000000000', states }), save: async (_c, _o, n, st) => void (states[n] = st) },
    });
    /** A target call asked again until it is done, as the worker's ClusterTarget does. */
    const settle = async (call: () => Promise<Progress>): Promise<void> => {
      let intervalMs = 200;
      await poll('the target', async () => {
        const p = await call();
        if (p.state === 'in-progress') intervalMs = p.retryAfterMs;
        return p;
      }, (p) => (p.state === 'ready' ? true : p.detail), { timeoutMs: 120_000, intervalMs: () => intervalMs, failOnError: true });
    };
    await settle(() => target.writeServerConfig(spec, secrets));
    return { spec, secrets, target, placement, settle, rg: placement.resourceGroup, vmss: `${name}-servers`, address };
  }

  let main: Awaited<ReturnType<typeof cluster>>;

  it('the boot script really runs: the package downloaded and checked, the consul user, the data disk mounted, Consul started by its unit as that user', async () => {
    main = await cluster('vm-boot');
    await main.settle(() => main.target.startServers(main.spec, main.secrets));
    const [vm] = arm.instances(main.rg, main.vmss);
    assert.equal(vm.boot, 'booted', fs.readFileSync(`${vm.dir}/boot.log`, 'utf8'));
    assert.equal(vm.pids.length, 1, 'one unit runs');
    const exe = fs.readlinkSync(`/proc/${vm.pids[0]}/exe`);
    assert.match(exe, /\/opt\/managed-consul\/consul\/usr\/bin\/consul$/, 'Consul runs from what the boot script unpacked');
    const uid = fs.readFileSync(`/proc/${vm.pids[0]}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1];
    assert.notEqual(uid, '0', 'as the consul user the script made, not root');
    const mounts = fs.readFileSync(`/proc/${vm.pids[0]}/mounts`, 'utf8');
    assert.match(mounts, new RegExp(`^/dev/loop\\d+ \\S+/server-0/data ext4 `, 'm'), 'the data disk (LUN 0) is mounted on the server\'s data folder');
    // A real server: the management token reads its leader.
    const caFile = `${vm.dir}/ca.pem`;
    fs.writeFileSync(caFile, main.secrets.pki.caCertPem);
    // Reached the one way the control plane may: the cluster's Private Link service, through its private endpoint.
    const route = (await main.target.routes(main.spec.clusterId)).get(main.address);
    assert.ok(route, 'the target knows the server\'s route');
    assert.deepEqual(route.https, arm.routeTo(main.rg, main.address, 8501), 'the private endpoint\'s address, at the NAT port of the instance');
    const peers = await waitFor('a leader', () => consul(['operator', 'raft', 'list-peers'], { httpAddr: `https://${route.https.host}:${route.https.port}`, tlsServerName: 'server.dc1.consul', caFile, token: main.secrets.managementToken }), (r) => /leader/.test(r.stdout), 60_000, 500);
    assert.match(peers.stdout, new RegExp(`${main.address.replace(/\./g, '\\.')}:8300\\s+leader`));
  });

  it('item 10: the secrets reach the server from the cluster\'s Key Vault, read with the scale set\'s identity; none is in the custom data', async () => {
    const d = arm.deployments().find((x) => x.resourceGroup === main.rg && x.parameters.deployServers?.value === true)!;
    const customData = Buffer.from(String(d.parameters.customData.value), 'base64').toString('utf8');
    const cert = main.secrets.pki.servers[0];
    assert.ok(!customData.includes(main.secrets.gossipKey) && !customData.includes(main.secrets.managementToken) && !customData.includes(Buffer.from(cert.keyPem).toString('base64')) && !customData.includes('PRIVATE KEY'), 'no secret in the custom data');
    // The VM's key and config are the vault secret's, written 0600 for the consul user.
    const [vm] = arm.instances(main.rg, main.vmss);
    const keyFile = `${vm.dir}/os/var-lib/managed-consul/clusters/${main.spec.clusterId}/server-0/tls/server-key.pem`;
    assert.ok(fs.readFileSync(keyFile, 'utf8') === cert.keyPem, 'the server\'s key is the one the control plane put in the vault');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const config = JSON.parse(fs.readFileSync(`${vm.dir}/os/var-lib/managed-consul/clusters/${main.spec.clusterId}/server-0/config/server.json`, 'utf8')) as { encrypt: string };
    assert.ok(config.encrypt === main.secrets.gossipKey, 'the gossip key came from the vault');
    assert.ok(arm.counters.secretReads >= 1, 'the instance read its secret from the vault');
    // The metadata service as Azure's: the Metadata header is required, and only the VM's own identity gets a token (its body not printed).
    const imds = async (header: boolean, identity: string) => {
      const id = `/subscriptions/${SUB}/resourceGroups/${main.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${identity}`;
      const url = `http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://vault.localhost')}&msi_res_id=${encodeURIComponent(id)}`;
      const r = await compute.virtualMachineScaleSetVMs.beginRunCommandAndWait(main.rg, main.vmss, '0', {
        commandId: 'RunShellScript', script: [`curl -s -o /dev/null -w '%{http_code}' ${header ? "-H 'Metadata: true' " : ''}'${url}'`],
      }, { updateIntervalInMs: 100 });
      return /\[stdout\]\n(\d{3})/.exec(r.value?.[0]?.message ?? '')?.[1];
    };
    assert.equal(await imds(true, 'vm-boot-identity'), '200', 'the VM\'s identity, with the header');
    assert.equal(await imds(false, 'vm-boot-identity'), '400', 'no Metadata header');
    assert.equal(await imds(true, 'vm-twin-identity'), '400', 'an identity not assigned to the VM');
    // Contributor is no data-plane role: without the vault roles the managed application grants, the control plane may not write the secrets.
    await assert.rejects(cluster('vm-norole', '1.8.7', { vaultRoles: false }), (e: Error & { code?: string }) => e.code === 'vault_forbidden' || /may not write the secrets/.test(e.message));
    assert.deepEqual(arm.instances('rg-vm-norole', 'vm-norole-servers'), [], 'no server deployed without its secrets');
  });

  it('the control plane reaches a server only through its private endpoint: never at its own address, which overlaps another cluster\'s', async () => {
    // A second cluster in the same address space (customers' VNets overlap): its own server, its own route.
    const twin = await cluster('vm-twin');
    await twin.settle(() => twin.target.startServers(twin.spec, twin.secrets));
    assert.equal(twin.address, main.address, 'both clusters gave their server the same private address');
    // Nothing routes the control plane's network to a VNet: whatever answers the address from here (this machine's default route), it is not the server.
    await assert.rejects(servedFingerprint(main.address, main.secrets.pki.caCertPem), 'the server\'s own address does not lead to it from the control plane\'s network');
    const [mainRoute, twinRoute] = [(await main.target.routes(main.spec.clusterId)).get(main.address)!, (await twin.target.routes(twin.spec.clusterId)).get(twin.address)!];
    assert.notEqual(mainRoute.https.host, twinRoute.https.host, 'a private endpoint each');
    // Each route leads to its own cluster: the certificate served chains to that cluster's CA only.
    assert.ok(await servedFingerprint(main.address, main.secrets.pki.caCertPem, mainRoute.https));
    await assert.rejects(servedFingerprint(main.address, main.secrets.pki.caCertPem, twinRoute.https), /certificate/i, 'the twin\'s server is another cluster');
    assert.deepEqual(arm.linkServices().find((l) => l.id.endsWith('/vm-twin-management'))?.autoApproval, [CONTROL_PLANE_SUBNET_ID.split('/')[2]], 'approved for the control plane\'s subscription only');
    // Azure keeps a Private Link service that still has a connection: emptying the group first fails.
    const resources = new ResourceManagementClient(credential, SUB, { endpoint: arm.url, credentialScopes: [`${arm.url}/.default`] });
    await resources.deployments.beginCreateOrUpdateAndWait(twin.rg, 'empty-first', { properties: { mode: 'Complete', template: { $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#', contentVersion: '1.0.0.0', resources: [] } } }, { updateIntervalInMs: 100 }).catch(() => undefined);
    const refused = await resources.deployments.get(twin.rg, 'empty-first');
    assert.equal(refused.properties?.provisioningState, 'Failed');
    assert.match(JSON.stringify(refused.properties?.error), /PrivateLinkServiceWithPrivateEndpointConnectionsCannotBeDeleted/);
    await twin.settle(() => twin.target.deleteAll(twin.spec.clusterId));
    assert.equal(arm.privateEndpoints().some((e) => e.linkServiceId.endsWith('/vm-twin-management')), false, 'the private endpoint went before the cluster\'s resources');
  });

  it('a VM action answers 202 with Azure-AsyncOperation and Location, and is not done at once', async () => {
    const url = `${arm.url}/subscriptions/${SUB}/resourceGroups/${main.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/${main.vmss}/virtualMachines/0/restart?api-version=2024-07-01`;
    const token = (await credential.getToken(`${arm.url}/.default`))!.token;
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 202);
    const status = res.headers.get('azure-asyncoperation');
    const location = res.headers.get('location');
    assert.ok(status && location, 'both headers');
    const first = (await (await fetch(status, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string };
    assert.equal(first.status, 'InProgress');
    assert.equal((await fetch(location, { headers: { authorization: `Bearer ${token}` } })).status, 202, 'Location answers 202 while it runs');
    await compute.virtualMachineScaleSetVMs.beginRestartAndWait(main.rg, main.vmss, '0', { updateIntervalInMs: 100 });
    await main.settle(() => main.target.startServers(main.spec, main.secrets));
    assert.equal(await arm.whenBooted(main.rg, main.vmss, '0'), 'booted');
    // The reboot starts the enabled unit (in the background, as systemd would after the VM is up).
    await waitFor('the enabled unit to run again after the reboot', async () => arm.instances(main.rg, main.vmss)[0].pids.length, (n) => n === 1, 30_000);
  });

  it('Run Command: a shell on that instance, succeeded whatever the exit code, the last 4 KiB of output, one at a time (409 Conflict)', async () => {
    const run = (script: string[]) => compute.virtualMachineScaleSetVMs.beginRunCommandAndWait(main.rg, main.vmss, '0', { commandId: 'RunShellScript', script }, { updateIntervalInMs: 100 });
    const r = await run(['hostname -I', 'id -u consul', 'head -c 10000 /dev/zero | tr "\\0" x', 'exit 3']);
    assert.equal(r.value?.length, 1);
    assert.equal(r.value![0].code, 'ProvisioningState/succeeded', 'Linux Run Command: succeeded, exit 3 or not');
    const m = /^Enable succeeded: \n\[stdout\]\n([^]*)\n\[stderr\]\n([^]*)$/.exec(r.value![0].message!)!;
    assert.ok(m, r.value![0].message);
    assert.equal(Buffer.byteLength(m[1]), 4096, 'stdout cut to its last 4 KiB');
    assert.ok(!m[1].includes(main.address), 'the start of the output is gone');
    // A command held on the instance until the test lets it go: a second one meanwhile is refused.
    const [vm] = arm.instances(main.rg, main.vmss);
    const release = `${vm.dir}/os/var-lib/run-command-release`; // the instance's /var/lib (local-vm.ts OS_DIRS)
    fs.rmSync(release, { force: true });
    const poller = await compute.virtualMachineScaleSetVMs.beginRunCommand(main.rg, main.vmss, '0', { commandId: 'RunShellScript', script: ['while [ ! -e /var/lib/run-command-release ]; do sleep 0.05; done', 'cat /var/lib/managed-consul/boot-status'] });
    await assert.rejects(run(['true']), (e: { statusCode?: number; code?: string }) => e.statusCode === 409 && e.code === 'Conflict');
    fs.writeFileSync(release, '');
    const held = await poller.pollUntilDone();
    assert.match(held.value![0].message!, /booted|ok/, 'the held command ran to its end once let go');
  });

  it('item 9: a Run Command script that fails fails the target\'s call (its exit status, not Run Command\'s "succeeded")', async () => {
    // A reload of a unit that is not active: systemctl fails on the instance.
    await compute.virtualMachineScaleSetVMs.beginRunCommandAndWait(main.rg, main.vmss, '0', { commandId: 'RunShellScript', script: ['systemctl stop managed-consul.service'] }, { updateIntervalInMs: 100 });
    await assert.rejects(main.target.reloadServer(main.spec.clusterId, 0), /the script exited 1: Job for managed-consul.service failed: managed-consul.service is not active, cannot reload/);
  });

  it('item 3: a package that fails its checksum is not unpacked nor started, and the target fails the instance', async () => {
    arm.tamperPackage('1.8.7-tampered');
    const c = await cluster('vm-tampered', '1.8.7-tampered');
    const [vm] = arm.instances(c.rg, c.vmss);
    await assert.rejects(c.settle(() => c.target.startServers(c.spec, c.secrets)), (e: Error) => e instanceof InstanceBootFailedError && /failed 1 checksum/.test(e.message));
    assert.equal(await arm.whenBooted(c.rg, c.vmss, vm.instanceId), 'failed');
    assert.deepEqual(arm.instances(c.rg, c.vmss)[0].pids, [], 'no Consul started');
    assert.ok(!fs.existsSync(`${vm.dir}/os/opt/managed-consul/consul/usr/bin/consul`), 'nothing unpacked');
  });
});
