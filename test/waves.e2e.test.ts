import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { linkedVersion } from './support/catalog';
import { SUBSCRIPTION, WRITE, localTarget, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'a1a1a1a1-0000-4000-8000-0000000000a1';

interface Item {
  clusterId: string;
  canary: boolean;
  state: string;
  reason: string | null;
  operationId: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The most items running at one moment, from their start and finish times. */
function maxConcurrent(items: Item[]): number {
  const started = items.filter((i) => i.startedAt);
  return Math.max(...started.map((i) => started.filter((j) => j.startedAt! <= i.startedAt! && (!j.finishedAt || j.finishedAt > i.startedAt!)).length));
}

// Maintenance waves over ten real clusters, driven by the worker's wave driver. The catalog has a
// 1.9.0 (another minor than the clusters' 1.8.7): a link to the same binary, honestly reporting 1.8.7.
describe('maintenance waves', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let sre: string;
  let catalog: ReturnType<typeof linkedVersion>;
  const ids: string[] = [];

  before(async () => {
    catalog = linkedVersion('1.9.0', 'AVAILABLE');
    s = await startStack({ worker: true, config: await testConfig({ WAVE_TICK_MS: '200', JOB_ATTEMPTS: '1', EXTRA_CONSUL_VERSIONS: JSON.stringify([catalog.entry]) }) });
    token = s.token(TENANT, WRITE);
    sre = s.sreToken();
    const ops: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await s.request('POST', '/v1/clusters', { token, body: { name: `fleet-${i}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-fleet', region: 'westeurope', tier: 'development' } });
      assert.equal(res.status, 202);
      ids.push(res.body.cluster.id);
      ops.push(res.body.operation.id);
    }
    await waitFor('ten clusters Running', () => s.db.operation.count({ where: { id: { in: ops }, state: 'Succeeded' } }), (n) => n === 10, 180_000, 250);
  });
  after(async () => {
    await s?.close();
    catalog?.remove();
  });

  const finished = (id: string) =>
    waitFor(`wave ${id}`, () => s.request('GET', `/v1/admin/waves/${id}`, { token: sre }), (r) => r.body.state !== 'Running', 180_000, 250).then((r) => r.body);

  it('runs a canary first, then the rest at most three at a time', async () => {
    const res = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'snapshot', selector: { clusterIds: ids }, canaries: 1, maxInFlight: 3, maxFailures: 0 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.total, 10);
    const wave = await finished(res.body.id);
    assert.equal(wave.state, 'Succeeded', JSON.stringify(wave));
    assert.equal(wave.succeeded, 10);
    const items = wave.clusters as Item[];
    const canary = items.filter((i) => i.canary);
    assert.equal(canary.length, 1);
    for (const i of items.filter((x) => !x.canary)) assert.ok(i.startedAt! >= canary[0].finishedAt!, 'the rest start after the canary ended');
    const most = maxConcurrent(items.filter((i) => !i.canary));
    assert.ok(most <= 3, `at most 3 in flight, saw ${most}`);
    assert.ok(most >= 2, `the wave ran in parallel (saw ${most})`);
    for (const id of ids) {
      const snaps = (await s.request('GET', `/v1/clusters/${id}/snapshots`, { token })).body.snapshots;
      assert.equal(snaps.filter((x: { state: string }) => x.state === 'Available').length, 1, 'one snapshot per cluster');
    }
  });

  it('rotates the management token across the fleet, each cluster through its own rotation operation', async () => {
    const secrets = new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE));
    const some = ids.slice(1, 4);
    const before_ = await Promise.all(some.map((id) => secrets.get(id, SecretName.ManagementToken)));
    const res = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'rotate-management-token', selector: { clusterIds: some }, canaries: 1, maxInFlight: 2, maxFailures: 0 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const wave = await finished(res.body.id);
    assert.equal(wave.state, 'Succeeded', JSON.stringify(wave));
    assert.equal(wave.succeeded, 3);
    const ops = await s.db.operation.findMany({ where: { requestedBy: `wave:${res.body.id}` } });
    assert.deepEqual(ops.map((o) => [o.kind, o.state, o.params]).sort(), some.map(() => ['rotate-management-token', 'Succeeded', { what: 'management-token' }]));
    const after_ = await Promise.all(some.map((id) => secrets.get(id, SecretName.ManagementToken)));
    some.forEach((id, i) => {
      assert.ok(before_[i] && after_[i], `cluster ${id} has a management token`);
      assert.notEqual(after_[i], before_[i], `cluster ${id}: a new management token`);
    });
  });

  it('an upgrade wave skips the cluster whose pin excludes its version, with the reason, and upgrades the rest; the canary is one it upgrades', async () => {
    const [patch, minor, none] = [ids[4]!, ids[5]!, ids[6]!];
    for (const [id, pin] of [[patch, 'patch'], [minor, 'minor']] as const) {
      const res = await s.request('PATCH', `/v1/clusters/${id}`, { token, body: { upgradePolicy: { pin } } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const res = await s.request('POST', '/v1/admin/waves', {
      token: sre, body: { action: 'upgrade', params: { consulVersion: '1.9.0' }, selector: { clusterIds: [patch, minor, none] }, canaries: 1, maxInFlight: 2, maxFailures: 0 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.total, 3);
    const wave = await finished(res.body.id);
    assert.equal(wave.state, 'Succeeded', JSON.stringify(wave));
    assert.deepEqual([wave.succeeded, wave.skipped, wave.failed], [2, 1, 0]);
    const items = wave.clusters as Item[];
    const pinned = items.find((i) => i.clusterId === patch)!;
    assert.deepEqual([pinned.state, pinned.reason, pinned.operationId, pinned.canary], ['Skipped', "pinned to 1.8.x; the wave's 1.9.0 crosses the pin", null, false]);
    assert.notEqual(items.find((i) => i.canary)!.clusterId, patch, 'the canary is a cluster the wave upgrades');
    for (const id of [minor, none]) {
      assert.equal(items.find((i) => i.clusterId === id)!.reason, null);
      assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token })).body.consulVersion, '1.9.0', 'a minor pin and no pin let 1.9.0 through');
    }
    assert.equal((await s.request('GET', `/v1/clusters/${patch}`, { token })).body.consulVersion, '1.8.7');
    const ops = (await s.request('GET', `/v1/clusters/${patch}/operations`, { token })).body.operations as { kind: string }[];
    assert.ok(!ops.some((o) => o.kind === 'upgrade'), 'no upgrade operation for the pinned cluster');
    // The customer sees why in the cluster's events.
    const events = (await s.request('GET', `/v1/clusters/${patch}/events`, { token })).body.events as { action: string; actor: string; details: any }[];
    const skipped = events.filter((e) => e.action === 'cluster.upgrade.skipped');
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0]!.actor, `wave:${res.body.id}`);
    assert.equal(skipped[0]!.details.reason, "pinned to 1.8.x; the wave's 1.9.0 crosses the pin");
  });

  it('halts when failures pass maxFailures: nothing after the failed canary starts', async () => {
    // Break the first cluster (the canary): its servers are gone, so its snapshot fails.
    const target = localTarget(s.config);
    await target.stopAndRemove(ids[0], { gracefulTimeoutMs: 5_000 });
    target.close();
    const res = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'snapshot', selector: { clusterIds: ids }, canaries: 1, maxInFlight: 3, maxFailures: 0 } });
    const wave = await finished(res.body.id);
    assert.equal(wave.state, 'Halted', JSON.stringify(wave));
    assert.match(wave.stateReason, /1 failure/);
    assert.equal(wave.failed, 1);
    assert.equal(wave.skipped, 9);
    assert.ok(wave.clusters.filter((i: Item) => !i.canary).every((i: Item) => i.startedAt === null), 'no other cluster was touched');
    assert.ok(wave.clusters.filter((i: Item) => !i.canary).every((i: Item) => i.reason === 'the wave halted before its turn'), 'each skipped item says why');
  });

  it('is for SREs only, and refuses bad waves', async () => {
    const customer = await s.request('POST', '/v1/admin/waves', { token, body: { action: 'snapshot', canaries: 1, maxInFlight: 1, maxFailures: 0 } });
    assert.equal(customer.status, 403);
    assert.equal((await s.request('GET', `/v1/admin/waves/${ids[0]}`, { token })).status, 403);
    const bad = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'explode' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_action');
    const none = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'snapshot', selector: { region: 'eastus' } } });
    assert.equal(none.status, 422);
    assert.equal(none.body.error.code, 'empty_selection');
  });
});
