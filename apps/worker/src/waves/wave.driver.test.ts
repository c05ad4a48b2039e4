import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Worker, type Job } from 'bullmq';
import {
  ClusterRepository, ClusterState, OPERATIONS_QUEUE, OperationRepository, WaveRepository, closeDb, createDb, createOperationsQueue, createRedis,
  type Config, type Db, type JobPayloads, type OperationKind, type OperationsQueue,
} from '../../../../libs/core/src';
import { dropTestDatabase, testConfig, waitFor } from '../../../../test/support/stack';
import type { Flow, FlowContext } from '../operations/flows/flow';
import { OperationRunner } from '../operations/operation.runner';
import { WaveDriver } from './wave.driver';
import { rowOnlyContexts } from '../../../../test/support/cluster-contexts';

const TENANT = 'f1f1f1f1-0000-4000-8000-00000000001f';

// The wave driver against real Postgres and Redis with the real runner and a
// scripted flow: items started in bulk, one statement per chunk; the wave
// carried to its end by the runner's nudges after a single tick; two drivers
// ticking at once start each item once.
describe('WaveDriver', () => {
  let config: Config;
  let db: Db;
  let queue: OperationsQueue;
  let worker: Worker;
  let waves: WaveRepository;
  const drivers: WaveDriver[] = [];
  const connections: ReturnType<typeof createRedis>[] = [];
  const ran: { op: string; cluster: string; start: number; end: number }[] = [];
  let running = 0;
  let maxRunning = 0;

  const redis = (forWorker: boolean) => {
    const c = createRedis(config.REDIS_URL, forWorker);
    connections.push(c);
    return c;
  };

  const flow: Flow = {
    steps: (ctx: FlowContext) => [{
      name: 'work',
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const start = Date.now();
        await new Promise((r) => setTimeout(r, 20)); // the work itself
        running--;
        ran.push({ op: ctx.operation.id, cluster: ctx.cluster.id, start, end: Date.now() });
      },
    }],
    succeeded: async () => undefined,
    failed: async () => undefined,
  };

  async function newClusters(prefix: string, n: number, state: string = ClusterState.Running): Promise<string[]> {
    const rows = Array.from({ length: n }, (_, i) => ({
      id: randomUUID(), tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', managedResourceGroup: `mrg-${prefix}-${i}`,
      name: `${prefix}-${i}`, region: 'westeurope', datacenter: `${prefix}-${i}`, consulVersion: '1.8.7', tier: 'development', serverCount: 1, state,
      createdBy: 'test',
    }));
    await db.cluster.createMany({ data: rows });
    return rows.map((r) => r.id);
  }

  before(async () => {
    config = await testConfig({ JOB_ATTEMPTS: '2' });
    db = createDb(config.DATABASE_URL, 10);
    waves = new WaveRepository(db);
    queue = createOperationsQueue(redis(false), config.QUEUE_PREFIX);
    const flows = new Proxy({}, { get: () => flow }) as Record<OperationKind, Flow>;
    const clusters = new ClusterRepository(db);
    const runner = new OperationRunner(new OperationRepository(db), clusters, flows, { open: rowOnlyContexts(clusters) });
    for (let i = 0; i < 2; i++) drivers.push(new WaveDriver(waves, queue, config.JOB_ATTEMPTS));
    // As WorkerService wires them; no periodic tick in this test.
    runner.onEnded = (op) => {
      if (op.requestedBy.startsWith('wave:')) drivers[0]!.nudge(op.id);
    };
    worker = new Worker(OPERATIONS_QUEUE, (job: Job<JobPayloads['run-operation']>, token?: string) => runner.run(job, token), {
      connection: redis(true), prefix: config.QUEUE_PREFIX, concurrency: 8,
    });
  });
  after(async () => {
    for (const d of drivers) d.close();
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    for (const c of connections) c.disconnect();
    await closeDb(db);
    await dropTestDatabase(config.DATABASE_URL);
  });

  it('one tick, then nudges: canary first, at most maxInFlight at a time, snapshot rows and audit events written with each operation', async () => {
    const running_ = await newClusters('nudge', 5);
    const [stopped] = await newClusters('nudge-failed', 1, ClusterState.Failed);
    const clusterIds = [...running_.slice(0, 2), stopped!, ...running_.slice(2)];
    const wave = await waves.create({ action: 'snapshot', params: {}, selector: {}, canaries: 1, maxInFlight: 2, maxFailures: 0, createdBy: 'test', clusterIds });
    ran.length = 0;
    maxRunning = 0;
    await drivers[0]!.tick();
    // No more ticks: only the runner's nudges can start the rest and end the wave.
    const done = await waitFor('the wave to end', () => waves.get(wave.id), (w) => w?.state !== 'Running', 20_000, 50);
    assert.equal(done!.state, 'Succeeded');
    assert.deepEqual(done!.items.map((i) => i.state), ['Succeeded', 'Succeeded', 'Skipped', 'Succeeded', 'Succeeded', 'Succeeded']);
    assert.equal(ran.length, 5);
    const canary = ran.find((r) => r.cluster === clusterIds[0])!;
    for (const r of ran) if (r !== canary) assert.ok(r.start >= canary.end, 'nothing starts before the canary is done');
    assert.ok(maxRunning <= 2, `at most maxInFlight at a time (saw ${maxRunning})`);

    const opIds = done!.items.filter((i) => i.operationId).map((i) => i.operationId!);
    assert.equal(opIds.length, 5);
    const ops = await db.operation.findMany({ where: { id: { in: opIds } } });
    assert.deepEqual(ops.map((o) => [o.kind, o.state, o.requestedBy]), opIds.map(() => ['snapshot', 'Succeeded', `wave:${wave.id}`]));
    const snapshots = await db.snapshot.findMany({ where: { operationId: { in: opIds } } });
    assert.equal(snapshots.length, 5);
    for (const s of snapshots) {
      const op = ops.find((o) => o.id === s.operationId)!;
      assert.equal((op.params as { snapshotId: string }).snapshotId, s.id);
      assert.equal(s.clusterId, op.clusterId);
      assert.equal(s.name, `wave ${wave.id.slice(0, 8)}`);
    }
    const audits = await db.auditEvent.findMany({ where: { operationId: { in: opIds }, action: 'snapshot.requested' } });
    assert.equal(audits.length, 5, 'one audit event per started operation');
    assert.equal(await db.operation.count({ where: { clusterId: stopped! } }), 0, 'nothing written for the skipped cluster');
    assert.equal(done!.items[2]!.reason, 'the cluster was not Running when its turn came');
  });

  it('create writes the wave and its items in one statement and returns what a read returns', async () => {
    const clusterIds = await newClusters('create', 4);
    const created = await waves.create({ action: 'snapshot', params: { name: 'x' }, selector: { region: 'westeurope' }, canaries: 2, maxInFlight: 3, maxFailures: 1, createdBy: 'sre', clusterIds });
    const read = await waves.get(created.id);
    assert.deepEqual(created, read);
    assert.deepEqual(read!.items.map((i) => [i.position, i.clusterId, i.canary, i.state]), clusterIds.map((c, i) => [i, c, i < 2, 'Pending']));
    assert.deepEqual([read!.state, read!.params, read!.selector, read!.canaries, read!.maxInFlight, read!.maxFailures], ['Running', { name: 'x' }, { region: 'westeurope' }, 2, 3, 1]);
    assert.ok(Math.abs(read!.createdAt.getTime() - Date.now()) < 60_000, 'createdAt is now, in UTC');
    await db.wave.update({ where: { id: created.id }, data: { state: 'Halted' } }); // not for the driver
  });

  it('an upgrade wave plans each operation from its own cluster\'s version', async () => {
    const clusterIds = await newClusters('upgrade', 3);
    await db.cluster.update({ where: { id: clusterIds[1]! }, data: { consulVersion: '1.8.6' } });
    const wave = await waves.create({ action: 'upgrade', params: { consulVersion: '1.8.8' }, selector: {}, canaries: 0, maxInFlight: 3, maxFailures: 0, createdBy: 'test', clusterIds });
    await drivers[0]!.tick();
    const done = await waitFor('the wave to end', () => waves.get(wave.id), (w) => w?.state !== 'Running', 20_000, 50);
    assert.equal(done!.state, 'Succeeded');
    const ops = await db.operation.findMany({ where: { requestedBy: `wave:${wave.id}` } });
    const from = Object.fromEntries(ops.map((o) => [o.clusterId, [o.kind, (o.params as { fromVersion: string; toVersion: string }).fromVersion, (o.params as { toVersion: string }).toVersion]]));
    assert.deepEqual(from, { [clusterIds[0]!]: ['upgrade', '1.8.7', '1.8.8'], [clusterIds[1]!]: ['upgrade', '1.8.6', '1.8.8'], [clusterIds[2]!]: ['upgrade', '1.8.7', '1.8.8'] });
  });

  it('an upgrade wave skips a cluster whose pin excludes the version, saying why in the item and the cluster\'s events; the others it upgrades', async () => {
    const [patch, minor, none] = await newClusters('pin', 3);
    await db.cluster.update({ where: { id: patch! }, data: { upgradePin: 'patch' } });
    await db.cluster.update({ where: { id: minor! }, data: { upgradePin: 'minor' } });
    const clusterIds = [patch!, minor!, none!];
    const wave = await waves.create({ action: 'upgrade', params: { consulVersion: '1.9.0' }, selector: {}, canaries: 0, maxInFlight: 3, maxFailures: 0, createdBy: 'test', clusterIds });
    await drivers[0]!.tick();
    const done = await waitFor('the wave to end', () => waves.get(wave.id), (w) => w?.state !== 'Running', 20_000, 50);
    assert.equal(done!.state, 'Succeeded');
    assert.deepEqual(done!.items.map((i) => [i.state, i.reason, i.operationId === null]), [
      ['Skipped', "pinned to 1.8.x; the wave's 1.9.0 crosses the pin", true],
      ['Succeeded', null, false],
      ['Succeeded', null, false],
    ]);
    const ops = await db.operation.findMany({ where: { requestedBy: `wave:${wave.id}` } });
    assert.deepEqual(ops.map((o) => o.clusterId).sort(), [minor!, none!].sort(), 'no operation for the pinned cluster');
    const skipped = await db.auditEvent.findMany({ where: { clusterId: patch!, action: 'cluster.upgrade.skipped' } });
    assert.equal(skipped.length, 1);
    assert.deepEqual([skipped[0]!.actor, skipped[0]!.operationId], [`wave:${wave.id}`, null]);
    assert.deepEqual(skipped[0]!.details, { toVersion: '1.9.0', fromVersion: '1.8.7', pin: 'patch', reason: "pinned to 1.8.x; the wave's 1.9.0 crosses the pin", waveId: wave.id });
  });

  it('an upgrade item planned with a pin that has moved since is left Pending, nothing written, to be planned again', async () => {
    const [id] = await newClusters('pin-moved', 1);
    const wave = await waves.create({ action: 'upgrade', params: { consulVersion: '1.9.0' }, selector: {}, canaries: 0, maxInFlight: 1, maxFailures: 0, createdBy: 'test', clusterIds: [id!] });
    await db.wave.update({ where: { id: wave.id }, data: { state: 'Halted' } }); // not for the drivers: this test starts its items itself
    // Planned while the cluster had no pin; the customer pinned it to 1.8.x before the statement ran.
    await db.cluster.update({ where: { id: id! }, data: { upgradePin: 'patch' } });
    const item = { position: 0, clusterId: id!, kind: 'upgrade', mutating: true, auditAction: 'cluster.upgrade.requested', pin: 'none' };
    const upgrade = { ...item, operationId: randomUUID(), params: { toVersion: '1.9.0', fromVersion: '1.8.7' } };
    assert.deepEqual(await waves.startItems(wave.id, 'test', [upgrade]), { started: [], skipped: [] });
    // And the other way round: planned as a skip under a pin the customer has since removed.
    await db.cluster.update({ where: { id: id! }, data: { upgradePin: 'minor' } });
    const skip = { ...item, operationId: randomUUID(), params: {}, auditAction: 'cluster.upgrade.skipped', skipReason: 'pinned to 1.8.x', pin: 'patch' };
    assert.deepEqual(await waves.startItems(wave.id, 'test', [skip]), { started: [], skipped: [] });
    const [left] = (await waves.get(wave.id))!.items;
    assert.deepEqual([left!.state, left!.reason, left!.operationId], ['Pending', null, null]);
    assert.equal(await db.operation.count({ where: { clusterId: id! } }), 0);
    assert.equal(await db.auditEvent.count({ where: { clusterId: id! } }), 0);
    // Planned with the pin it has: it starts.
    const started = await waves.startItems(wave.id, 'test', [{ ...upgrade, operationId: randomUUID(), pin: 'minor' }]);
    assert.equal(started.started.length, 1);
  });

  it('two drivers ticking at once start each item once', async () => {
    const clusterIds = await newClusters('race', 40);
    const wave = await waves.create({ action: 'rotate-gossip-key', params: {}, selector: {}, canaries: 0, maxInFlight: 40, maxFailures: 0, createdBy: 'test', clusterIds });
    await Promise.all([drivers[0]!.tick(), drivers[1]!.tick(), drivers[1]!.tick()]);
    const done = await waitFor('the wave to end', () => waves.get(wave.id), (w) => w?.state !== 'Running', 20_000, 50);
    assert.equal(done!.state, 'Succeeded');
    const ops = await db.operation.findMany({ where: { requestedBy: `wave:${wave.id}` } });
    assert.equal(ops.length, 40, 'one operation per item');
    assert.deepEqual(new Set(ops.map((o) => o.clusterId)), new Set(clusterIds));
    assert.ok(ops.every((o) => o.state === 'Succeeded' && o.attempts === 1));
    assert.equal(await db.auditEvent.count({ where: { operationId: { in: ops.map((o) => o.id) } , action: 'cluster.rotate.requested' } }), 40);
  });
});

// The nudge's timing, with the clock mocked and the repository in memory: a
// pass gathers the operations that end within NUDGE_DELAY_MS, except when as
// many have ended here as the last pass left running: then it runs at once.
describe('WaveDriver nudges', () => {
  function fixture(onSync?: (only?: string[]) => void) {
    const state = { running: 2 };
    const synced: string[][] = [];
    const ended: string[] = [];
    const wave = { id: 'w', maxFailures: 0, maxInFlight: 2, action: 'repair', params: {} };
    const repo = {
      listRunningWaves: async () => (ended.length ? [] : [wave]),
      syncEnded: async (_id: string, _terminal: readonly string[], only?: string[]) => {
        synced.push(only ?? ['(all)']);
        state.running -= only?.length ?? 0;
        onSync?.(only);
      },
      counts: async () => ({ Pending: 0, Running: state.running, Succeeded: 2 - state.running, Failed: 0, Skipped: 0, canariesPending: 0, canariesUnfinished: 0 }),
      finish: async () => true,
    };
    const driver = new WaveDriver(repo as unknown as WaveRepository, {} as OperationsQueue, 1);
    driver.onWaveEnded = (id) => ended.push(id);
    return { driver, synced, ended };
  }
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };

  it('the last running operation to end here ends the wave at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { driver, synced, ended } = fixture();
    await driver.tick(); // leaves 2 running
    driver.nudge('a');
    t.mock.timers.tick(10);
    await settle();
    assert.equal(synced.length, 1, 'one of two ended: the pass waits to gather more');
    driver.nudge('b');
    t.mock.timers.tick(0);
    await settle();
    assert.deepEqual(synced[1], ['a', 'b']);
    assert.deepEqual(ended, ['w']);
    driver.close();
  });

  it('a pass during which the last ones ended goes round once more at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const late: { nudge?: (id: string) => void } = {};
    // 'b' ends while the pass for 'a' runs: its nudge still saw two running.
    const f = fixture((only) => {
      if (only?.[0] === 'a') late.nudge?.('b');
    });
    const { driver } = f;
    late.nudge = (id) => driver.nudge(id);
    await driver.tick();
    driver.nudge('a');
    t.mock.timers.tick(50);
    await settle();
    assert.deepEqual(f.synced.slice(1), [['a'], ['b']]);
    assert.deepEqual(f.ended, ['w'], 'ended without another wait');
    driver.close();
  });

  it('otherwise the pass comes after the gathering delay, with all that ended meanwhile', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { driver, synced, ended } = fixture();
    await driver.tick();
    driver.nudge('a');
    t.mock.timers.tick(49);
    await settle();
    assert.equal(synced.length, 1);
    t.mock.timers.tick(1);
    await settle();
    assert.deepEqual(synced[1], ['a']);
    assert.deepEqual(ended, [], 'one still running');
    driver.close();
  });
});
