import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeDb, createDb, createOperationsQueue, createRedis, type Db, type OperationsQueue } from '../libs/core/src';
import { UpgradeScheduleRepository, windowOpenedAt } from '../libs/core/src/persistence/upgrade-schedule.repository';
import { LocalTarget } from '../libs/provisioner/src';
import { UpgradeScheduler } from '../apps/worker/src/schedules/upgrade.scheduler';
import { linkedVersion } from './support/catalog';
import { SUBSCRIPTION, WRITE, localTarget, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'a0a0a0a0-0000-4000-8000-0000000000a0';
// Wednesday 22:00 UTC for 4 hours: the window runs past midnight into Thursday 02:00.
const WINDOW = { dayOfWeek: 3, startHourUtc: 22, hours: 4 };
const at = (iso: string) => new Date(iso);
// 2030-01-02 is a Wednesday.
const BEFORE_WINDOW = at('2030-01-02T21:30:00Z');
const IN_WINDOW = at('2030-01-03T01:00:00Z');
const WINDOW_CLOSED = at('2030-01-03T02:00:00Z');
const NEXT_WEEK_IN_WINDOW = at('2030-01-09T23:00:00Z');

/** The API as one tenant's caller sees it; `get` gives the stack and token once before() has made them. */
function caller(get: () => { s: TestStack; token: string }) {
  const request = (method: string, path: string, body?: unknown) => get().s.request(method, path, { token: get().token, body });
  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => request('GET', `/v1/operations/${opId}`), (r) => ['Succeeded', 'Failed', 'Canceled'].includes(r.body.state), 180_000)).body;
  const operations = async (id: string) => (await request('GET', `/v1/clusters/${id}/operations`)).body.operations as { id: string; kind: string; state: string }[];
  const create = (name: string, extra: Record<string, unknown> = {}) =>
    request('POST', '/v1/clusters', { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-auto', region: 'westeurope', tier: 'development', consulVersion: '1.8.7', ...extra });
  return {
    finish,
    operations,
    create,
    cluster: async (id: string) => (await request('GET', `/v1/clusters/${id}`)).body,
    events: async (id: string) => (await request('GET', `/v1/clusters/${id}/events`)).body.events as { action: string; actor: string; operationId: string | null; details: any }[],
    upgrades: async (id: string) => (await operations(id)).filter((o) => o.kind === 'upgrade'),
    /** Clusters created at once, each waited for until Running; their ids in order. */
    async createRunning(...clusters: [string, Record<string, unknown>][]): Promise<string[]> {
      const created = await Promise.all(clusters.map(([name, extra]) => create(name, extra)));
      for (const c of created) assert.equal(c.status, 202, JSON.stringify(c.body));
      const done = await Promise.all(created.map((c) => finish(c.body.operation.id)));
      for (const d of done) assert.equal(d.state, 'Succeeded', JSON.stringify(d));
      return created.map((c) => c.body.cluster.id as string);
    },
  };
}

describe('maintenance windows (pure)', () => {
  it('opens on the day and hour, runs past midnight, closes after its hours', () => {
    assert.equal(windowOpenedAt(WINDOW, BEFORE_WINDOW), null);
    assert.equal(windowOpenedAt(WINDOW, at('2030-01-02T22:00:00Z'))?.toISOString(), '2030-01-02T22:00:00.000Z');
    assert.equal(windowOpenedAt(WINDOW, IN_WINDOW)?.toISOString(), '2030-01-02T22:00:00.000Z');
    assert.equal(windowOpenedAt(WINDOW, at('2030-01-03T01:59:59.999Z'))?.toISOString(), '2030-01-02T22:00:00.000Z');
    assert.equal(windowOpenedAt(WINDOW, WINDOW_CLOSED), null);
    assert.equal(windowOpenedAt(WINDOW, at('2030-01-01T23:00:00Z')), null, 'Tuesday at the same hour');
  });

  it('wraps past the end of the week (Saturday into Sunday) and covers a whole day at 24 hours', () => {
    const sat = { dayOfWeek: 6, startHourUtc: 22, hours: 4 };
    // 2030-01-05 is a Saturday, 2030-01-06 a Sunday.
    assert.equal(windowOpenedAt(sat, at('2030-01-06T01:30:00Z'))?.toISOString(), '2030-01-05T22:00:00.000Z');
    assert.equal(windowOpenedAt(sat, at('2030-01-06T02:00:00Z')), null);
    assert.equal(windowOpenedAt(sat, at('2030-01-05T21:59:59Z')), null);
    const sunday = { dayOfWeek: 0, startHourUtc: 0, hours: 24 };
    assert.equal(windowOpenedAt(sunday, at('2030-01-06T23:59:00Z'))?.toISOString(), '2030-01-06T00:00:00.000Z');
    assert.equal(windowOpenedAt(sunday, at('2030-01-07T00:00:00Z')), null);
  });
});

// Only Consul 1.8.7 exists here. The test registers a second catalog entry,
// '1.8.7-auto', marked RECOMMENDED, whose binary is a link to the same 1.8.7
// binary (so each server's binary path shows whether it was upgraded); it
// honestly reports 1.8.7. The upgrade scheduler is ticked on a clock the test drives.
describe('automatic upgrades inside a maintenance window', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let catalog: ReturnType<typeof linkedVersion>;
  let link: string;
  let target: LocalTarget;
  let redis: ReturnType<typeof createRedis>;
  let queue: OperationsQueue;
  let otherDbs: Db[] = [];
  let scheduler: UpgradeScheduler;
  /** Workers ticking at the same moment: each its own scheduler on its own database client. */
  let workers: UpgradeScheduler[];
  const tickAll = async (now: Date) => (await Promise.all(workers.map((w) => w.tick(now)))).reduce((a, b) => a + b, 0);
  let autoId: string;
  let manualId: string;

  const { finish, cluster, operations, events, upgrades, create, createRunning } = caller(() => ({ s, token }));

  before(async () => {
    catalog = linkedVersion('1.8.7-auto', 'RECOMMENDED');
    link = catalog.link;
    s = await startStack({ worker: true, config: await testConfig({ EXTRA_CONSUL_VERSIONS: JSON.stringify([catalog.entry]) }) });
    token = s.token(TENANT, WRITE);
    target = localTarget(s.config);
    redis = createRedis(s.config.REDIS_URL, false);
    queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    scheduler = new UpgradeScheduler(new UpgradeScheduleRepository(s.db), queue, s.config.JOB_ATTEMPTS, '1.8.7-auto');
    otherDbs = [1, 2, 3].map(() => createDb(s.config.DATABASE_URL, 1));
    workers = [scheduler, ...otherDbs.map((db) => new UpgradeScheduler(new UpgradeScheduleRepository(db), queue, s.config.JOB_ATTEMPTS, '1.8.7-auto'))];

    [autoId, manualId] = await createRunning(['auto', { upgradePolicy: { mode: 'automatic', window: WINDOW } }], ['manual', {}]);
  });
  after(async () => {
    await queue?.close();
    redis?.disconnect();
    for (const db of otherDbs) await closeDb(db);
    target?.close();
    await s?.close();
    catalog?.remove();
  });

  it('the extra catalog entry is the one RECOMMENDED version', async () => {
    const versions = (await s.request('GET', '/v1/versions', { token })).body.versions;
    assert.deepEqual(versions, [
      { version: '1.8.7', status: 'AVAILABLE' },
      { version: '1.8.7-auto', status: 'RECOMMENDED' },
    ]);
  });

  it('shows the policy: automatic with its window as created, manual with no window by default', async () => {
    const auto = await cluster(autoId);
    assert.deepEqual(auto.upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'none' });
    assert.equal(auto.consulVersion, '1.8.7');
    const manual = await cluster(manualId);
    assert.deepEqual(manual.upgradePolicy, { mode: 'manual', window: null, pin: 'none' });
    const created = (await events(autoId)).find((e) => e.action === 'cluster.create.requested')!;
    assert.deepEqual(created.details.upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'none' });
  });

  it('OpenAPI (generated from the contracts) describes the policy on create, on PATCH and in the cluster view', async () => {
    const doc = (await s.request('GET', '/docs/openapi.json')).body;
    const schemas = doc.components.schemas;
    const body = (path: string, method: string) => doc.paths[path][method].requestBody.content['application/json'].schema;
    assert.equal(body('/v1/clusters', 'post').properties.upgradePolicy.$ref, '#/components/schemas/UpgradePolicyChange');
    assert.equal(body('/v1/clusters/{id}', 'patch').properties.upgradePolicy.$ref, '#/components/schemas/UpgradePolicyChange');
    assert.deepEqual(schemas.UpgradePolicyChange.properties.mode.enum, ['manual', 'automatic']);
    assert.deepEqual(schemas.UpgradePolicyChange.properties.pin.enum, ['none', 'patch', 'minor']);
    assert.deepEqual(schemas.UpgradePolicy.properties.pin.enum, ['none', 'patch', 'minor']);
    assert.deepEqual(Object.keys(schemas.UpgradeWindow.properties).sort(), ['dayOfWeek', 'hours', 'startHourUtc']);
    assert.equal(schemas.UpgradeWindow.properties.hours.maximum, 24);
    assert.equal(schemas.Cluster.properties.upgradePolicy.$ref, '#/components/schemas/UpgradePolicy');
    assert.equal(doc.paths['/v1/clusters/{id}'].get.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Cluster');
  });

  it('refuses a bad policy with 400 naming what to fix, and writes nothing', async () => {
    const clustersBefore = await s.db.cluster.count();
    const auditBefore = await s.db.auditEvent.count();
    const cases: [unknown, string, string][] = [
      ['weekly', 'invalid_upgradePolicy', 'upgradePolicy'],
      [{ mode: 'automatic' }, 'invalid_upgradePolicy_window', 'upgradePolicy.window'],
      [{ mode: 'automatic', window: null }, 'invalid_upgradePolicy_window', 'upgradePolicy.window'],
      [{ mode: 'sometimes', window: WINDOW }, 'invalid_upgradePolicy_mode', 'upgradePolicy.mode'],
      [{ mode: 'automatic', window: WINDOW, when: 'always' }, 'invalid_upgradePolicy', 'upgradePolicy'],
      [{ mode: 'automatic', window: 'sundays' }, 'invalid_upgradePolicy_window', 'upgradePolicy.window'],
      [{ mode: 'automatic', window: { ...WINDOW, minutes: 5 } }, 'invalid_upgradePolicy_window', 'upgradePolicy.window'],
      [{ mode: 'automatic', window: { ...WINDOW, dayOfWeek: 7 } }, 'invalid_upgradePolicy_window_dayOfWeek', 'upgradePolicy.window.dayOfWeek'],
      [{ mode: 'automatic', window: { ...WINDOW, dayOfWeek: -1 } }, 'invalid_upgradePolicy_window_dayOfWeek', 'upgradePolicy.window.dayOfWeek'],
      [{ mode: 'automatic', window: { ...WINDOW, startHourUtc: 24 } }, 'invalid_upgradePolicy_window_startHourUtc', 'upgradePolicy.window.startHourUtc'],
      [{ mode: 'automatic', window: { ...WINDOW, hours: 0 } }, 'invalid_upgradePolicy_window_hours', 'upgradePolicy.window.hours'],
      [{ mode: 'automatic', window: { ...WINDOW, hours: 25 } }, 'invalid_upgradePolicy_window_hours', 'upgradePolicy.window.hours'],
      [{ mode: 'automatic', window: { ...WINDOW, hours: 1.5 } }, 'invalid_upgradePolicy_window_hours', 'upgradePolicy.window.hours'],
      [{ mode: 'automatic', window: { dayOfWeek: 3, startHourUtc: 22 } }, 'invalid_upgradePolicy_window_hours', 'upgradePolicy.window.hours'],
      [{ pin: 'major' }, 'invalid_upgradePolicy_pin', 'upgradePolicy.pin'],
      [{ pin: true }, 'invalid_upgradePolicy_pin', 'upgradePolicy.pin'],
    ];
    for (const [policy, code, field] of cases) {
      const res = await create('refused', { upgradePolicy: policy });
      assert.equal(res.status, 400, `create with ${JSON.stringify(policy)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, JSON.stringify(policy));
      assert.equal(res.body.error.details.field, field, JSON.stringify(policy));
      assert.ok(res.body.error.message.length > 0);
    }
    const windowMissing = await create('refused', { upgradePolicy: { mode: 'automatic' } });
    assert.match(windowMissing.body.error.message, /automatic upgrades need a maintenance window/);
    assert.match((await create('refused', { upgradePolicy: { mode: 'automatic', window: { ...WINDOW, hours: 25 } } })).body.error.message, /hours must be a whole number of hours from 1 to 24/);
    assert.match((await create('refused', { upgradePolicy: { pin: 'major' } })).body.error.message, /upgradePolicy\.pin must be one of none, patch, minor/);

    // PATCH: the manual cluster has no window, so switching it to automatic alone is refused; so is removing the automatic one's window.
    const patches: [string, unknown, string][] = [
      [manualId, { upgradePolicy: { mode: 'automatic' } }, 'invalid_upgradePolicy_window'],
      [autoId, { upgradePolicy: { window: null } }, 'invalid_upgradePolicy_window'],
      [autoId, { upgradePolicy: { window: { ...WINDOW, startHourUtc: 30 } } }, 'invalid_upgradePolicy_window_startHourUtc'],
      [manualId, { upgradePolicy: { mode: 'automatic', window: WINDOW }, tier: 'huge' }, 'invalid_tier'],
      [manualId, { upgradePolicy: { mode: 'never' }, tier: 'standard' }, 'invalid_upgradePolicy_mode'],
      [manualId, { upgradePolicy: { mode: 'automatic', window: WINDOW }, snapshotPolicy: { intervalHours: 48 } }, 'invalid_snapshotPolicy_intervalHours'],
      [manualId, { upgradePolicy: { pin: 'latest' } }, 'invalid_upgradePolicy_pin'],
    ];
    for (const [id, body, code] of patches) {
      const res = await s.request('PATCH', `/v1/clusters/${id}`, { token, body });
      assert.equal(res.status, 400, `PATCH ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, JSON.stringify(body));
    }
    assert.equal(await s.db.cluster.count(), clustersBefore, 'no cluster was created');
    assert.equal(await s.db.auditEvent.count(), auditBefore, 'no audit event was written');
    assert.deepEqual((await cluster(manualId)).upgradePolicy, { mode: 'manual', window: null, pin: 'none' });
    assert.equal((await cluster(manualId)).tier, 'development');
    assert.deepEqual((await cluster(autoId)).upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'none' });
    assert.deepEqual((await operations(manualId)).map((o) => o.kind), ['create'], 'no scale operation was queued');
  });

  it('PATCH changes the policy at once, audited, no operation; with a new tier it answers 202 with the scale', async () => {
    const res = await s.request('PATCH', `/v1/clusters/${manualId}`, { token, body: { upgradePolicy: { window: WINDOW } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.upgradePolicy, { mode: 'manual', window: WINDOW, pin: 'none' }, 'a missing mode keeps the current one');
    assert.deepEqual((await operations(manualId)).map((o) => o.kind), ['create'], 'a policy change is not an operation');
    const changed = (await events(manualId)).filter((e) => e.action === 'cluster.upgrade-policy.changed');
    assert.equal(changed.length, 1);
    assert.equal(changed[0].operationId, null);
    const caller = (await events(manualId)).find((e) => e.action === 'cluster.create.requested')!.actor;
    assert.equal(changed[0].actor, caller, 'the caller who changed it');
    assert.deepEqual(changed[0].details, { from: { mode: 'manual', window: null, pin: 'none' }, to: { mode: 'manual', window: WINDOW, pin: 'none' } });

    const both = await s.request('PATCH', `/v1/clusters/${manualId}`, { token, body: { tier: 'standard', upgradePolicy: { window: { ...WINDOW, hours: 3 } } } });
    assert.equal(both.status, 202, JSON.stringify(both.body));
    assert.equal(both.body.operation.kind, 'scale');
    assert.deepEqual(both.body.cluster.upgradePolicy, { mode: 'manual', window: { ...WINDOW, hours: 3 }, pin: 'none' }, 'the policy applies at once, the tier with the operation');
    assert.equal((await finish(both.body.operation.id)).state, 'Succeeded');
    const scaled = await cluster(manualId);
    assert.equal(scaled.tier, 'standard');
    assert.deepEqual(scaled.upgradePolicy, { mode: 'manual', window: { ...WINDOW, hours: 3 }, pin: 'none' });
    assert.equal((await events(manualId)).filter((e) => e.action === 'cluster.upgrade-policy.changed').length, 2);
  });

  it('queues nothing outside the window; inside, one upgrade to the RECOMMENDED version even with several workers ticking; then nothing more that window', async () => {
    assert.equal(await scheduler.tick(BEFORE_WINDOW), 0, 'before the window opens');
    assert.equal(await scheduler.tick(WINDOW_CLOSED), 0, 'once the window has closed');
    assert.deepEqual(await upgrades(autoId), []);

    assert.equal(await tickAll(IN_WINDOW), 1, 'four workers ticking at once queue one upgrade');
    assert.equal(await scheduler.tick(new Date(IN_WINDOW.getTime() + 60_000)), 0, 'not while it is queued or running');
    const ops = await upgrades(autoId);
    assert.equal(ops.length, 1);
    const requested = (await events(autoId)).filter((e) => e.action === 'cluster.upgrade.requested');
    assert.equal(requested.length, 1);
    assert.equal(requested[0].actor, 'system:auto-upgrade');
    assert.equal(requested[0].operationId, ops[0].id);
    assert.equal(requested[0].details.toVersion, '1.8.7-auto');
    assert.equal(requested[0].details.fromVersion, '1.8.7');
    assert.equal(requested[0].details.windowOpenedAt, '2030-01-02T22:00:00.000Z');

    const done = await finish(ops[0].id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.ok(done.steps.some((x: { name: string }) => x.name === 'pre-upgrade-snapshot'));
    const c = await cluster(autoId);
    assert.equal(c.consulVersion, '1.8.7-auto');
    assert.equal(c.state, 'Running');
    assert.equal(await target.serverBinary(autoId, 0), link, 'the server was restarted on the new catalog entry');
    const upgraded = (await events(autoId)).find((e) => e.action === 'cluster.upgraded')!;
    assert.equal(upgraded.actor, 'system:auto-upgrade');

    assert.equal(await scheduler.tick(new Date(IN_WINDOW.getTime() + 30 * 60_000)), 0, 'the same window again');
    assert.equal((await upgrades(autoId)).length, 1);
  });

  it('a cluster moved back inside the same window is left alone until the next occurrence', async () => {
    // The customer moves back to 1.8.7 by hand while the window is still open.
    const back = await s.request('POST', `/v1/clusters/${autoId}/upgrade`, { token, body: { consulVersion: '1.8.7' } });
    assert.equal(back.status, 202, JSON.stringify(back.body));
    assert.equal((await finish(back.body.operation.id)).state, 'Succeeded');
    assert.equal((await cluster(autoId)).consulVersion, '1.8.7');

    assert.equal(await scheduler.tick(new Date(IN_WINDOW.getTime() + 45 * 60_000)), 0, 'this occurrence of the window already had its upgrade');
    assert.equal(await scheduler.tick(at('2030-01-08T23:00:00Z')), 0, 'Tuesday: no window');
    assert.equal(await tickAll(NEXT_WEEK_IN_WINDOW), 1, 'the next week: one upgrade');
    const automatic = (await events(autoId)).filter((e) => e.action === 'cluster.upgrade.requested' && e.actor === 'system:auto-upgrade');
    assert.equal(automatic.length, 2, 'one automatic upgrade per window occurrence');
    assert.equal(automatic[1].details.windowOpenedAt, '2030-01-09T22:00:00.000Z');
    assert.equal((await upgrades(autoId)).length, 3, 'automatic, manual back, automatic');
    assert.equal((await finish(automatic[1].operationId!)).state, 'Succeeded');
    assert.equal((await cluster(autoId)).consulVersion, '1.8.7-auto');
  });

  it('never upgrades a manual cluster, even with a window that is open', async () => {
    assert.equal(await scheduler.tick(at('2030-01-16T23:30:00Z')), 0);
    assert.deepEqual(await upgrades(manualId), []);
    const c = await cluster(manualId);
    assert.equal(c.consulVersion, '1.8.7');
    assert.equal(c.upgradePolicy.mode, 'manual');
    assert.ok(!(await events(manualId)).some((e) => e.actor === 'system:auto-upgrade'));
  });
});

// Version pins: the catalog's RECOMMENDED version is 1.9.0 (a link to the same 1.8.7 binary, which
// honestly reports 1.8.7), another minor than the clusters' 1.8.7. The worker's own scheduler (its
// RECOMMENDED from the catalog) is ticked on the test's clock.
describe('automatic upgrades and the version pin', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let catalog: ReturnType<typeof linkedVersion>;
  let target: LocalTarget;
  let scheduler: UpgradeScheduler;
  let pinnedId: string;
  let freeId: string;

  const { finish, cluster, events, upgrades, createRunning } = caller(() => ({ s, token }));
  const automatic = (pin: string) => ({ upgradePolicy: { mode: 'automatic', window: WINDOW, pin } });

  before(async () => {
    catalog = linkedVersion('1.9.0', 'RECOMMENDED');
    s = await startStack({ worker: true, config: await testConfig({ EXTRA_CONSUL_VERSIONS: JSON.stringify([catalog.entry]) }) });
    token = s.token(TENANT, WRITE);
    target = localTarget(s.config);
    scheduler = s.worker!.get(UpgradeScheduler);
    [pinnedId, freeId] = await createRunning(['pinned', automatic('patch')], ['free', automatic('none')]);
  });
  after(async () => {
    target?.close();
    await s?.close();
    catalog?.remove();
  });

  it('shows the pin as created, and the create event records it', async () => {
    assert.deepEqual((await cluster(pinnedId)).upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'patch' });
    assert.deepEqual((await cluster(freeId)).upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'none' });
    const created = (await events(pinnedId)).find((e) => e.action === 'cluster.create.requested')!;
    assert.equal(created.details.upgradePolicy.pin, 'patch');
  });

  it('one tick: the unpinned cluster is upgraded to the RECOMMENDED 1.9.0; the one pinned to 1.8.x is skipped, saying why, once per window', async () => {
    assert.equal(await scheduler.tick(IN_WINDOW), 1, 'one upgrade queued');
    assert.equal((await upgrades(freeId)).length, 1);
    assert.deepEqual(await upgrades(pinnedId), [], 'no upgrade for the pinned cluster');
    const skipped = (await events(pinnedId)).filter((e) => e.action === 'cluster.upgrade.skipped');
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0].actor, 'system:auto-upgrade');
    assert.equal(skipped[0].operationId, null);
    assert.equal(skipped[0].details.reason, 'pinned to 1.8.x; the RECOMMENDED 1.9.0 crosses the pin');
    assert.deepEqual([skipped[0].details.fromVersion, skipped[0].details.toVersion, skipped[0].details.pin], ['1.8.7', '1.9.0', 'patch']);
    assert.equal(skipped[0].details.windowOpenedAt, '2030-01-02T22:00:00.000Z');
    assert.ok(!(await events(freeId)).some((e) => e.action === 'cluster.upgrade.skipped'));

    assert.equal(await scheduler.tick(new Date(IN_WINDOW.getTime() + 10 * 60_000)), 0, 'nothing more this window');
    assert.equal((await events(pinnedId)).filter((e) => e.action === 'cluster.upgrade.skipped').length, 1, 'the skip is said once per window occurrence');

    const done = await finish((await upgrades(freeId))[0]!.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.equal((await cluster(freeId)).consulVersion, '1.9.0');
    assert.equal(await target.serverBinary(freeId, 0), catalog.link, 'restarted on the 1.9.0 entry');
    assert.equal((await cluster(pinnedId)).consulVersion, '1.8.7');
  });

  it('widened to a minor pin (audited), the next window upgrades it; a manual upgrade across a pin is the customer\'s choice and goes ahead', async () => {
    const widened = await s.request('PATCH', `/v1/clusters/${pinnedId}`, { token, body: { upgradePolicy: { pin: 'minor' } } });
    assert.equal(widened.status, 200, JSON.stringify(widened.body));
    assert.deepEqual(widened.body.upgradePolicy, { mode: 'automatic', window: WINDOW, pin: 'minor' }, 'the mode and window are kept');
    const changed = (await events(pinnedId)).filter((e) => e.action === 'cluster.upgrade-policy.changed');
    assert.deepEqual(changed.map((e) => [e.details.from.pin, e.details.to.pin]), [['patch', 'minor']]);

    assert.equal(await scheduler.tick(NEXT_WEEK_IN_WINDOW), 1);
    const [op] = await upgrades(pinnedId);
    assert.ok(op);
    assert.equal((await finish(op.id)).state, 'Succeeded');
    assert.equal((await cluster(pinnedId)).consulVersion, '1.9.0');
    assert.equal((await events(pinnedId)).filter((e) => e.action === 'cluster.upgrade.skipped').length, 1, 'no skip this time');

    // 1.9.0 pinned to its patch releases; the customer asks for 1.8.7 themselves.
    assert.equal((await s.request('PATCH', `/v1/clusters/${freeId}`, { token, body: { upgradePolicy: { pin: 'patch' } } })).status, 200);
    const manual = await s.request('POST', `/v1/clusters/${freeId}/upgrade`, { token, body: { consulVersion: '1.8.7' } });
    assert.equal(manual.status, 202, JSON.stringify(manual.body));
    assert.equal((await finish(manual.body.operation.id)).state, 'Succeeded');
    assert.equal((await cluster(freeId)).consulVersion, '1.8.7');
  });
});
