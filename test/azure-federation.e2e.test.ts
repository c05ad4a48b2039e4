import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { consul } from './support/consul-cli';
import { endAzureRun, operationEnd, spawnAzureWorker } from './support/azure-e2e';
import { startLocalArm, type LocalArm } from './support/local-arm';
import { sshPublicKey } from './support/ssh-key';
import { SUBSCRIPTION, WRITE, startStack, testConfig, type TestStack } from './support/stack';

const TENANT = 'a3a3a3a3-0000-4000-8000-0000000000a3';
const SECRET = randomBytes(32).toString('base64url');

/** Whether a TCP connection from a machine of `netns` to host:port opens within 2 s (an NSG drops silently: no answer at all). */
function connects(netns: string, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=${netns}`, '--', 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], (err) => resolve(!err));
  });
}

// WAN federation on the azure target: a primary and a secondary, each bought as a managed
// application (the secondary with its primary's federation token), each in its own managed
// resource group and VNet (a network namespace of the local ARM). The secondary's deployment
// peers its VNet with the primary's, the target peers the primary's back; once both peerings are
// Connected the local ARM wires the two VNets together, admitting only what each NSG admits, and
// the secondary's real Consul servers join the primary's over the WAN (the create waits for it).
describe('federation on the azure target', { timeout: 600_000 }, () => {
  let s: TestStack;
  let arm: LocalArm;
  let work: string;
  let token: string;
  const children: ChildProcess[] = [];

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'azure-fed-'));
    arm = await startLocalArm({ consulPackage: () => process.env.CONSUL_DEB!, retryAfterSeconds: 0 });
    const config = await testConfig({
      CLUSTER_TARGET: 'azure',
      AZURE_ADMIN_SSH_PUBLIC_KEY: sshPublicKey('operator'),
      AZURE_CONSUL_PACKAGES: JSON.stringify({ '1.8.7': arm.packageFor('1.8.7') }),
      AZURE_POLL_INTERVAL_MS: '200',
      NOTIFICATION_SECRET: SECRET,
      ...arm.env(),
    });
    s = await startStack({ worker: false, config });
    token = s.token(TENANT, WRITE);
    children.push(spawnAzureWorker(s, 'azure-fed-worker'));
  });
  after(() => endAzureRun(children, s, arm, work));

  const finish = (opId: string, timeoutMs = 240_000) => operationEnd(s, token, opId, timeoutMs);

  /** A managed application bought and deployed: Azure notifies PUT Succeeded and the API answers. */
  async function buy(name: string, datacenter: string, vnetCidr: string, federationToken = '') {
    const appId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-${name}/providers/Microsoft.Solutions/applications/${name}`;
    const mrg = `mrg-${name}-20261207`;
    arm.putApplication({
      id: appId, location: 'westeurope', managedResourceGroupId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${mrg}`,
      parameters: {
        location: 'westeurope', clusterName: name, datacenter, tier: 'development', consulVersion: '1.8.7', externalEndpoint: false, vnetCidr, federationToken,
        upgradeMode: 'manual', upgradeWindowDay: 0, upgradeWindowStartHour: 2, upgradeWindowHours: 4, snapshotIntervalHours: 24, snapshotRetention: 7,
      },
      outputs: { tenantId: TENANT },
    });
    const res = await s.request('POST', `/resource?sig=${encodeURIComponent(SECRET)}`, {
      body: { eventType: 'PUT', applicationId: appId, eventTime: new Date().toISOString(), provisioningState: 'Succeeded' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { appId, mrg, answer: res.body as { outcome: string; clusterId?: string; operationId?: string } };
  }

  const vnetOf = (mrg: string, name: string) => `/subscriptions/${SUBSCRIPTION}/resourceGroups/${mrg}/providers/Microsoft.Network/virtualNetworks/${name}-vnet`;
  let primary: { id: string; mrg: string };
  let secondary: { id: string; mrg: string };
  let federationToken: string;

  it('a primary on its own: nothing peered', async () => {
    const { mrg, answer } = await buy('fed-west', 'west', '172.25.16.0/24');
    assert.equal(answer.outcome, 'created', JSON.stringify(answer));
    const op = await finish(answer.operationId!);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    primary = { id: answer.clusterId!, mrg };
    assert.deepEqual(arm.peerings(), []);
    const servers = arm.deployments().filter((d) => d.resourceGroup === mrg && d.name.startsWith('consul-servers-'));
    assert.ok(servers.length > 0 && servers.every((d) => Array.isArray(d.parameters.federationPeers.value) && d.parameters.federationPeers.value.length === 0), 'a primary\'s template peers with nothing');
    const issued = await s.request('POST', `/v1/clusters/${primary.id}/federation-token`, { token });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    federationToken = issued.body.token;
  });

  it('a secondary whose address space overlaps the primary\'s is refused before anything is deployed (vnet_overlaps); the token stays usable', async () => {
    const deployments = arm.deployments().length;
    const { appId, mrg, answer } = await buy('fed-clash', 'clash', '172.25.16.0/25', federationToken);
    assert.equal(answer.outcome, 'rejected', JSON.stringify(answer));
    const recorded = await s.db.managedAppNotification.findFirstOrThrow({ where: { applicationId: appId.toLowerCase() } });
    assert.match(recorded.reason ?? '', /^vnet_overlaps: vnetCidr 172\.25\.16\.0\/25 overlaps fed-west's 172\.25\.16\.0\/24/);
    assert.ok(!(recorded.reason ?? '').includes(federationToken), 'the token is not in the recorded reason');
    assert.equal(await s.db.cluster.count({ where: { managedApplicationId: appId.toLowerCase() } }), 0, 'no cluster row');
    assert.equal(arm.deployments().length, deployments, 'nothing deployed');
    assert.ok(!arm.deployments().some((d) => d.resourceGroup === mrg));
    // The API's own create refuses on Azure before any federation check: clusters come from the offer.
    const direct = await s.request('POST', '/v1/clusters', { token, body: { name: 'fed-direct', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-x', region: 'westeurope', tier: 'development', datacenter: 'direct', consulVersion: '1.8.7', vnetCidr: '172.25.16.0/25', federationToken } });
    assert.deepEqual([direct.status, direct.body.error?.code], [409, 'create_through_marketplace']);
  });

  it('a secondary: its VNet and the primary\'s peered both ways and Connected, only RPC and WAN gossip admitted across, its Consul servers in the primary\'s WAN pool', async () => {
    const { mrg, answer } = await buy('fed-east', 'east', '172.25.17.0/24', federationToken);
    assert.equal(answer.outcome, 'created', JSON.stringify(answer));
    const op = await finish(answer.operationId!);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    secondary = { id: answer.clusterId!, mrg };
    const row = await s.db.cluster.findUniqueOrThrow({ where: { id: secondary.id }, include: { servers: true } });
    assert.equal(row.primaryClusterId, primary.id);

    const peerings = arm.peerings();
    assert.deepEqual(
      peerings.map((p) => [p.vnetId.toLowerCase(), p.remoteId.toLowerCase(), p.state]).sort(),
      [[vnetOf(mrg, 'fed-east'), vnetOf(primary.mrg, 'fed-west'), 'Connected'], [vnetOf(primary.mrg, 'fed-west'), vnetOf(mrg, 'fed-east'), 'Connected']].map(([a, b, c]) => [a.toLowerCase(), b.toLowerCase(), c]).sort(),
      'the secondary peers with the primary (its template), the primary back (the target\'s deployment into the primary\'s group)',
    );
    assert.ok(arm.deployments().some((d) => d.resourceGroup === primary.mrg && d.name.startsWith('consul-peering-') && d.state === 'Succeeded'), 'the peering back is a deployment of its own in the primary\'s managed resource group');
    assert.deepEqual(arm.peeredGroups().map((g) => [...g].sort()), [[primary.mrg, mrg].map((g) => g.toLowerCase()).sort()]);

    // From the secondary's VNet: the primary's server RPC answers; its HTTPS API and LAN gossip port do not (the NSG admits peers to 8300 and 8302 only).
    const primaryServer = (await s.db.clusterServer.findFirstOrThrow({ where: { clusterId: primary.id }, orderBy: { index: 'asc' } })).address;
    const netns = arm.netnsOf(mrg);
    assert.equal(await connects(netns, primaryServer, 8300), true, 'server RPC across the peering');
    assert.equal(await connects(netns, primaryServer, 8302), true, 'WAN gossip across the peering');
    assert.equal(await connects(netns, primaryServer, 8501), false, 'HTTPS is not admitted from a peer');
    assert.equal(await connects(netns, primaryServer, 8301), false, 'LAN gossip is not admitted from a peer');

    // The primary's WAN pool, as the customer's consul CLI shows it from the primary's network.
    const cc = (await s.request('GET', `/v1/clusters/${primary.id}/client-config`, { token })).body;
    const caFile = path.join(work, 'west.pem');
    fs.writeFileSync(caFile, cc.caPem);
    const secret = (await s.request('POST', `/v1/clusters/${primary.id}/tokens`, { token })).body.secretId as string;
    const wan = await consul(['members', '-wan'], { httpAddr: cc.httpsAddress, caFile, token: secret, netns: arm.netnsOf(primary.mrg) });
    assert.equal(wan.code, 0, wan.stderr);
    const eastServer = [...row.servers].sort((a, b) => a.index - b.index)[0].address;
    assert.match(wan.stdout, new RegExp(`${eastServer.replace(/\./g, '\\.')}:8302\\s+alive\\s+server.*\\seast\\s`), wan.stdout);
    const fed = await s.request('GET', `/v1/clusters/${primary.id}/federation`, { token });
    assert.deepEqual(fed.body.secondaries.map((x: { clusterId: string }) => x.clusterId), [secondary.id]);
  });

  /** The peerings as [VNet, remote VNet, state], lower case, sorted. */
  const peeringTriples = () => arm.peerings().map((p) => [p.vnetId.toLowerCase(), p.remoteId.toLowerCase(), p.state]).sort();
  const both = (a: { mrg: string; name: string }, b: { mrg: string; name: string }) => [
    [vnetOf(a.mrg, a.name).toLowerCase(), vnetOf(b.mrg, b.name).toLowerCase(), 'Connected'],
    [vnetOf(b.mrg, b.name).toLowerCase(), vnetOf(a.mrg, a.name).toLowerCase(), 'Connected'],
  ];
  let third: { id: string; mrg: string };

  it('a second secondary peers with the primary and with the first secondary too (the WAN pool is a full mesh; peering is not transitive)', async () => {
    const issued = await s.request('POST', `/v1/clusters/${primary.id}/federation-token`, { token });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const { mrg, answer } = await buy('fed-south', 'south', '172.25.18.0/24', issued.body.token);
    assert.equal(answer.outcome, 'created', JSON.stringify(answer));
    const op = await finish(answer.operationId!);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    third = { id: answer.clusterId!, mrg };
    const west = { mrg: primary.mrg, name: 'fed-west' };
    const east = { mrg: secondary.mrg, name: 'fed-east' };
    const south = { mrg, name: 'fed-south' };
    assert.deepEqual(peeringTriples(), [...both(west, east), ...both(west, south), ...both(east, south)].sort());
    assert.ok(arm.deployments().some((d) => d.resourceGroup === secondary.mrg && d.name.startsWith('consul-peering-') && d.state === 'Succeeded'), 'the first secondary peers back by a deployment into its own group');
    assert.equal(arm.peeredGroups().length, 3);
    const southServer = (await s.db.clusterServer.findFirstOrThrow({ where: { clusterId: third.id }, orderBy: { index: 'asc' } })).address;
    assert.equal(await connects(arm.netnsOf(secondary.mrg), southServer, 8300), true, 'one secondary reaches the other\'s server RPC');
  });

  it('deleting a secondary removes the other members\' peerings to it; the others stay peered; the primary stays Running', async () => {
    const del = await s.request('DELETE', `/v1/clusters/${secondary.id}`, { token });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    const op = await finish(del.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.deepEqual(peeringTriples(), both({ mrg: primary.mrg, name: 'fed-west' }, { mrg: third.mrg, name: 'fed-south' }).sort(), 'its own peerings went with its VNet; the primary\'s and the other secondary\'s to it were deleted');
    for (const [mrg, name] of [[primary.mrg, 'fed-west'], [third.mrg, 'fed-south']]) {
      assert.ok(arm.requests.some((r) => r.toLowerCase() === `delete ${vnetOf(mrg, name).toLowerCase()}/virtualnetworkpeerings/federation-${secondary.id}`), `deleted by the target, in ${name}'s VNet`);
    }
    assert.deepEqual(arm.peeredGroups().map((g) => [...g].sort()), [[primary.mrg, third.mrg].map((g) => g.toLowerCase()).sort()]);
    const again = await s.request('DELETE', `/v1/clusters/${third.id}`, { token });
    assert.equal((await finish(again.body.operation.id)).state, 'Succeeded');
    assert.deepEqual(arm.peerings(), [], 'the primary is peered with nothing');
    assert.deepEqual(arm.peeredGroups(), []);
    const p = await s.db.cluster.findUniqueOrThrow({ where: { id: primary.id } });
    assert.equal(p.state, 'Running');
  });
});
