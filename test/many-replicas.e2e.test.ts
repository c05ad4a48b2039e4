import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { listAgentProcesses, type LocalTarget } from '../libs/provisioner/src';
import { SCHEDULE_NAMES, type ScheduleName } from '../apps/worker/src/schedules/periodic-schedule';
import { TOKEN_SWEEPER_ACTOR } from '../apps/worker/src/schedules/token.sweeper';
import { AUTO_UPGRADE_ACTOR, CERT_ROTATION_ACTOR } from '../libs/core/src';
import { STEPS, SUCCESS_MARKER } from './support/flow-record';
import { freePort } from './support/local-clone';
import { RoundRobinClient } from './support/replica-client';
import { SUBSCRIPTION, WRITE, localTarget, startStack, testConfig, waitFor, type TestStack } from './support/stack';
import { WORKER_MAIN, exited, stopGracefully, workerEnv } from './support/worker-process';

const TENANT = 'a1a1a1a1-0000-4000-8000-000000000024';
const API_MAIN = path.resolve(__dirname, '..', 'apps', 'api', 'src', 'main.js');
/** Every scheduler's period here: short, so that the run covers dozens of them. */
const PERIOD_MS = 2000;
/**
 * Health's: longer, as its run reads the whole process table once per cluster (the local target's
 * observe) and takes seconds on a loaded two-core machine; a run longer than the workers can share
 * out cannot fit once per period.
 */
const HEALTH_PERIOD_MS = 6000;
const periodOf = (schedule: ScheduleName) => (schedule === 'health' ? HEALTH_PERIOD_MS : PERIOD_MS);
const CLUSTERS = 6;
/** Clusters deleted in the burst; the others stay Running to the end. */
const DELETED = new Set([4, 5]);
/** Clusters whose scheduled snapshot falls due during the run (their runningSince is put a day back). */
const SNAPSHOT_DUE = [1, 2];
/** The actors of the operations the schedulers queue (the others are the client's). */
const SYSTEM_ACTORS = new Set(['scheduler', 'health-monitor', TOKEN_SWEEPER_ACTOR, AUTO_UPGRADE_ACTOR, CERT_ROTATION_ACTOR]);

/** An API or worker replica: a real process from the built dist. */
interface Replica {
  kind: 'api' | 'worker';
  name: string;
  port: number;
  child: ChildProcess;
  /** host:pid, as the worker names itself in claims and in the schedule ledger. */
  owner: string;
  output: string[];
}

function startReplica(s: TestStack, kind: Replica['kind'], name: string, port: number, apiLocalDir: string): Replica {
  const env = workerEnv(s.config, name);
  if (kind === 'api') {
    env.PORT = String(port);
    // Its pid file goes to a folder of this test's own, not over the clone's `api.pid`.
    env.LOCAL_DIR = apiLocalDir;
  } else {
    env.WORKER_PORT = String(port);
  }
  const child = spawn(process.execPath, [kind === 'api' ? API_MAIN : WORKER_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.ok(child.pid, `${name} did not start`);
  const r: Replica = { kind, name, port, child, owner: `${hostname()}:${child.pid}`, output: [] };
  // Its warnings and errors, for a failure's report (the processes log no secrets).
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      r.output.push(...d.split('\n').filter(Boolean).map((l) => l.slice(0, 300)));
      if (r.output.length > 40) r.output.splice(0, r.output.length - 40);
    });
  }
  return r;
}

async function ready(r: Replica): Promise<void> {
  await waitFor(`${r.name} to answer /healthz`, async () => {
    if (r.child.exitCode !== null) throw new Error(`${r.name} exited (${r.child.exitCode}):\n${r.output.join('\n')}`);
    return fetch(`http://127.0.0.1:${r.port}/healthz`).then(async (res) => (await res.arrayBuffer(), res.status), () => 0);
    // A loaded two-core machine: a process can take a minute to load.
  }, (status) => status === 200, 180_000, 100);
}

const stopReplica = (r: Replica) => stopGracefully(r.child, 20_000);

/** The sum over the workers' /metrics of scheduler_runs_total, by process and schedule. */
async function scrapeRuns(r: Replica): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  const runs: Record<string, number> = {};
  for (const m of text.matchAll(/^scheduler_runs_total\{schedule="([^"]+)"\} (\d+)$/gm)) runs[m[1]] = Number(m[2]);
  return runs;
}

// The control plane as production runs it: three API replicas and three worker replicas on one
// PostgreSQL database and one Redis prefix, every process built from dist. A client spreads
// creates and day-2 operations across the APIs and retries on connection errors with the same
// Idempotency-Key; one API and one worker are SIGKILLed while work is in flight and started
// again. Every operation ends once, every scheduler runs once per period (counted in the
// ScheduleRun ledger), and the client loses no request.
describe('many replicas: 3 APIs and 3 workers, one of each SIGKILLed', { timeout: 420_000 }, () => {
  let s: TestStack;
  let target: LocalTarget;
  let client: RoundRobinClient;
  let apiLocalDir: string;
  const apis: Replica[] = [];
  const workers: Replica[] = [];
  const killed: { api?: { replica: Replica; at: number }; worker?: { replica: Replica; at: number; cutOff: string[]; billingPeriod: Date } } = {};
  const clusterIds: string[] = [];
  const t0 = Date.now();
  let allReadyAt = 0;

  const db = () => s.db;
  const diagnostics = () => [...apis, ...workers].map((r) => `${r.name} (pid ${r.child.pid}, exit ${r.child.exitCode ?? r.child.signalCode}): ${r.output.slice(-6).join(' | ') || '-'}`).join('\n');
  const unfinished = () => db().operation.count({ where: { tenantId: TENANT, state: { in: ['Queued', 'Running'] } } });
  const workerOf = (owner: string) => workers.find((w) => w.owner === owner);

  before(async () => {
    const periods = String(PERIOD_MS);
    const config = await testConfig({
      SNAPSHOT_TICK_MS: periods, HEALTH_TICK_MS: String(HEALTH_PERIOD_MS), UPGRADE_TICK_MS: periods, CERT_ROTATION_TICK_MS: periods, BILLING_TICK_MS: periods,
      RECONCILE_INTERVAL_MS: periods,
      // Seven processes on one PostgreSQL beside another test file: a few connections each.
      DATABASE_POOL_SIZE: '8',
    });
    s = await startStack({ worker: false, config });
    target = localTarget(s.config);
    apiLocalDir = fs.mkdtempSync(path.join(tmpdir(), 'replicas-api-'));
    // One after the other: six processes loading at once would starve the test file running beside this one.
    for (let i = 0; i < 3; i++) {
      apis.push(startReplica(s, 'api', `replicas-api-${i}`, await freePort(), apiLocalDir));
      workers.push(startReplica(s, 'worker', `replicas-worker-${i}-${s.config.QUEUE_PREFIX}`, await freePort(), apiLocalDir));
      await Promise.all([ready(apis[i]), ready(workers[i])]).catch((e: Error) => assert.fail(`${e.message}\n${diagnostics()}`));
    }
    allReadyAt = Date.now();
    client = new RoundRobinClient(apis.map((a) => `http://127.0.0.1:${a.port}`), s.token(TENANT, WRITE, 'replicas'));
  });

  after(async () => {
    await Promise.all([...apis, ...workers].map(stopReplica));
    target?.close();
    await s?.close();
    if (apiLocalDir) fs.rmSync(apiLocalDir, { recursive: true, force: true });
  });

  /** Polls an operation through the APIs (round-robin, like every request) until it ends. */
  const waitEnded = (operationId: string, timeoutMs = 180_000) =>
    waitFor(`operation ${operationId} to end`, () => client.send('GET', `/v1/operations/${operationId}`), (r) => r.status === 200 && ['Succeeded', 'Failed', 'Canceled'].includes(r.body.state), timeoutMs, 250)
      .catch((e: Error) => assert.fail(`${e.message}\n${diagnostics()}`));

  it('creates six development clusters through the three APIs, run by the three workers', async (t: TestContext) => {
    const answers = await Promise.all(
      [...Array(CLUSTERS).keys()].map((i) =>
        client.send('POST', '/v1/clusters', {
          key: `create-${i}`,
          body: { name: `replica-${i}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-replicas', region: 'westeurope', tier: 'development' },
        }),
      ),
    );
    for (const res of answers) {
      assert.equal(res.status, 202, JSON.stringify(res.body));
      clusterIds.push(res.body.cluster.id);
    }
    const ended = await Promise.all(answers.map((a) => waitEnded(a.body.operation.id)));
    for (const e of ended) assert.equal(e.body.state, 'Succeeded', JSON.stringify(e.body));
    // Their scheduled snapshot falls due now (a day since they started running, interval 24 h).
    await db().cluster.updateMany({ where: { id: { in: SNAPSHOT_DUE.map((i) => clusterIds[i]) } }, data: { runningSince: new Date(Date.now() - 25 * 3_600_000) } });
    const by = await db().operation.groupBy({ by: ['claimedBy'], where: { tenantId: TENANT, kind: 'create' }, _count: true });
    t.diagnostic(`three APIs and three workers up ${((allReadyAt - t0) / 1000).toFixed(1)} s after the start; creates run by: ${JSON.stringify(by.map((b) => [workerOf(b.claimedBy ?? '')?.name ?? b.claimedBy, b._count]))}`);
  });

  it('runs day-2 operations across the APIs while one API and one worker are SIGKILLed mid-work and started again', async (t: TestContext) => {
    const opIds: string[] = [];
    const burstAt = Date.now();
    const requested = (res: { status: number; body: any }, what: string) => {
      assert.equal(res.status, 202, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      opIds.push(res.body.operation.id);
    };
    /** One cluster's day-2 requests, one after the other (each queues behind the last on the cluster). */
    const chain = async (i: number, round: number) => {
      const id = clusterIds[i];
      requested(await client.send('POST', `/v1/clusters/${id}/snapshots`, { key: `snap-${round}-${i}`, body: { name: `r${round}-${i}` } }), `snapshot ${i}`);
      requested(await client.send('POST', `/v1/clusters/${id}/rotate`, { key: `gossip-${round}-${i}`, body: { what: 'gossip-key' } }), `rotate ${i}`);
      requested(await client.send('POST', `/v1/clusters/${id}/snapshots`, { key: `snap2-${round}-${i}` }), `second snapshot ${i}`);
    };

    // The API replica to kill: once requests are in flight on it.
    const apiVictim = apis[1];
    const apiKill = waitFor('a request in flight on API 1', async () => client.inFlight[1], (n) => n >= 1, 120_000, 1).then(async () => {
      apiVictim.child.kill('SIGKILL');
      killed.api = { replica: apiVictim, at: Date.now() };
      await exited(apiVictim.child);
    });
    apiKill.catch(() => undefined); // awaited below

    // The worker to kill: one holding a period of the billing scheduler (a run held up on the
    // metering cursor's row, which this test locks) while it runs an operation. The lock is held
    // two periods at most, so that the other workers still take every period.
    const locker = new pg.Client({ connectionString: s.config.DATABASE_URL });
    await locker.connect();
    await waitFor('the metering cursor', () => db().meteringCursor.count(), (n) => n > 0, 30_000, 100);
    const workerKill = async (): Promise<void> => {
      for (let attempt = 1; attempt <= 8; attempt++) {
        await locker.query('BEGIN');
        await locker.query(`SELECT 1 FROM "MeteringCursor" FOR UPDATE`);
        const found = await waitFor('a worker holding a billing period while it runs an operation', async () => {
          const held = await db().scheduleRun.findMany({ where: { schedule: 'billing', finishedAt: null } });
          for (const run of held) {
            const w = workerOf(run.claimedBy[run.claimedBy.length - 1]);
            const running = w ? await db().operation.findMany({ where: { state: 'Running', claimedBy: w.owner }, select: { id: true } }) : [];
            if (w && running.length > 0) return { w, run, running };
          }
          return undefined;
        }, (x) => x !== undefined, 2 * PERIOD_MS, 20).catch(() => undefined);
        if (found) {
          found.w.child.kill('SIGKILL');
          const at = Date.now();
          await exited(found.w.child);
          await locker.query('COMMIT');
          // What it ran when it died: Running under its claim.
          const cutOff = (await db().operation.findMany({ where: { state: 'Running', claimedBy: found.w.owner }, select: { id: true } })).map((o) => o.id);
          killed.worker = { replica: found.w, at, cutOff, billingPeriod: found.run.periodStart };
          return;
        }
        await locker.query('COMMIT');
        // Nothing fit: let the held-up billing runs end, and give the workers more to do.
        await waitFor('billing runs to end', () => db().scheduleRun.count({ where: { schedule: 'billing', finishedAt: null } }), (n) => n === 0, 30_000, 50);
        await Promise.all(clusterIds.map((_, i) => (DELETED.has(i) ? undefined : chain(i, 100 + attempt))));
      }
      assert.fail(`no worker held a billing period while it ran an operation\n${diagnostics()}`);
    };

    const issued = Promise.all(clusterIds.map((_, i) => chain(i, 1).then(async () => {
      if (DELETED.has(i)) {
        const res = await client.send('DELETE', `/v1/clusters/${clusterIds[i]}`);
        requested(res, `delete ${i}`);
      }
    })));
    issued.catch(() => undefined); // awaited below
    await workerKill();
    await apiKill;
    await locker.end();

    // Both come back under their names and ports.
    const apiAgain = startReplica(s, 'api', apiVictim.name, apiVictim.port, apiLocalDir);
    apis[apis.indexOf(apiVictim)] = apiAgain;
    const w = killed.worker!.replica;
    const workerAgain = startReplica(s, 'worker', w.name, w.port, apiLocalDir);
    workers[workers.indexOf(w)] = workerAgain;
    await Promise.all([ready(apiAgain), ready(workerAgain)]).catch((e: Error) => assert.fail(`${e.message}\n${diagnostics()}`));
    await issued;

    await waitFor('every operation to end', unfinished, (n) => n === 0, 240_000, 250).catch((e: Error) => assert.fail(`${e.message}\n${diagnostics()}`));
    // The killed worker's billing period was run to its end by another worker.
    const lost = await waitFor('the killed worker\'s billing period to be taken over and finished',
      () => db().scheduleRun.findUniqueOrThrow({ where: { schedule_periodStart: { schedule: 'billing', periodStart: killed.worker!.billingPeriod } } }),
      (r) => r.finishedAt !== null, 60_000, 100);
    assert.equal(lost.claimedBy[0], w.owner);
    assert.notEqual(lost.finishedBy, w.owner);
    // The restarted API serves again (round-robin: two of six requests go to it).
    for (let i = 0; i < 6; i++) assert.equal((await client.send('GET', '/v1/clusters')).status, 200);
    assert.ok(client.sent.some((r) => r.attempts.some((a) => a.api === 1 && a.status === 200 && a.at > killed.api!.at)), 'the restarted API answered');
    t.diagnostic(`API 1 killed ${((killed.api!.at - burstAt) / 1000).toFixed(1)} s into the burst with ${client.sent.filter((r) => r.attempts.some((a) => a.api === 1 && a.error)).length} request(s) cut off; ` +
      `worker ${w.name} killed ${((killed.worker!.at - burstAt) / 1000).toFixed(1)} s into it with ${killed.worker!.cutOff.length} operation(s) Running and billing period ${killed.worker!.billingPeriod.toISOString()} held; ${opIds.length} day-2 operations requested`);
  });

  it('every operation ran to its end exactly once, and every retried request got the one operation it made', async (t: TestContext) => {
    const ops = await db().operation.findMany({ where: { tenantId: TENANT }, orderBy: { seq: 'asc' } });
    const audits = await db().auditEvent.findMany({ where: { tenantId: TENANT } });
    const cutOff = new Set(killed.worker!.cutOff);
    for (const op of ops) {
      const detail = `${op.kind} ${op.id}: state ${op.state}, attempts ${op.attempts}, by ${op.claimedBy}, error ${JSON.stringify(op.error)}`;
      assert.equal(op.state, 'Succeeded', detail);
      assert.equal(op.attempts, cutOff.has(op.id) ? 2 : 1, `started once, or once more after its worker was killed: ${detail}`);
      if (cutOff.has(op.id)) assert.notEqual(op.claimedBy, killed.worker!.replica.owner, `resumed by another worker: ${detail}`);
      const steps = op.steps as unknown as { name: string; state: string; startedAt: string; finishedAt?: string }[];
      if (STEPS[op.kind]) assert.deepEqual(steps.map((x) => x.name), STEPS[op.kind], detail);
      assert.equal(new Set(steps.map((x) => x.name)).size, steps.length, `each step once in the log: ${detail}`);
      for (const [k, step] of steps.entries()) {
        assert.equal(step.state, 'Succeeded', detail);
        if (k > 0) assert.ok(step.startedAt >= steps[k - 1].finishedAt!, `steps one after the other: ${detail}`);
      }
      const marker = SUCCESS_MARKER[op.kind];
      if (marker) assert.equal(audits.filter((a) => a.operationId === op.id && a.action === marker).length, 1, `'${marker}' recorded once: ${detail}`);
    }
    // No retried request made a second operation: the client's answers name every operation a person asked for, once each.
    const answered = client.sent.filter((r) => r.method !== 'GET').map((r) => r.body?.operation?.id as string);
    assert.equal(new Set(answered).size, answered.length, 'each request its own operation');
    assert.deepEqual(ops.filter((o) => !SYSTEM_ACTORS.has(o.requestedBy)).map((o) => o.id).sort(), [...answered].sort(), 'the operations asked for are the ones answered, none twice');
    // Each key's record answers the operation the client was given, whichever replica answered it and however often it was sent.
    const records = await db().idempotencyRecord.findMany({ where: { tenantId: TENANT } });
    for (const r of client.sent.filter((x) => x.key)) {
      const rec = records.filter((x) => x.key === r.key);
      assert.equal(rec.length, 1, `one record for ${r.key}`);
      assert.equal((rec[0].body as { operation: { id: string } }).operation.id, r.body.operation.id, `${r.key}: the same operation`);
    }
    // The client lost nothing: every request got an answer, the one its route gives.
    for (const r of client.sent) {
      assert.ok(r.status !== undefined, `${r.method} ${r.path}: answered`);
      assert.equal(r.status, r.method === 'GET' ? 200 : 202, `${r.method} ${r.path} ${r.key ?? ''}: ${JSON.stringify(r.body)}`);
    }
    const retried = client.sent.filter((r) => r.attempts.length > 1);
    assert.ok(retried.length > 0, 'the kill cut requests off, and they were sent again');
    const replayed = retried.filter((r) => r.key && records.find((x) => x.key === r.key)!.createdAt.getTime() < killed.api!.at);
    // The scheduled snapshots fell due once per cluster, and were queued once across three workers.
    for (const i of SNAPSHOT_DUE) {
      const scheduled = ops.filter((o) => o.clusterId === clusterIds[i] && o.requestedBy === 'scheduler' && o.kind === 'snapshot');
      assert.equal(scheduled.length, 1, `one scheduled snapshot for cluster ${i}`);
    }
    t.diagnostic(`${ops.length} operations (${JSON.stringify(Object.fromEntries(Object.entries(ops.reduce<Record<string, number>>((a, o) => ({ ...a, [o.kind]: (a[o.kind] ?? 0) + 1 }), {}))))}), ` +
      `${cutOff.size} resumed after the kill; ${client.sent.length} requests, ${retried.length} sent again after a connection error ` +
      `(${retried.filter((r) => r.key).length} keyed POSTs, ${replayed.length} of them answered from the key's record of an answer the killed API had written)`);
  });

  it('every cluster is in its expected state with exactly its servers; no Consul process is left without its row', async () => {
    const clusters = await db().cluster.findMany({ where: { id: { in: clusterIds } } });
    for (const [i, id] of clusterIds.entries()) {
      const c = clusters.find((x) => x.id === id)!;
      assert.equal(c.state, DELETED.has(i) ? 'Deleted' : 'Running', `cluster ${i}`);
      assert.equal(c.lockedByOperationId, null, `cluster ${i} is not left locked`);
      assert.deepEqual((await target.observe(id)).map((p) => p.index), DELETED.has(i) ? [] : [0], `cluster ${i}'s server processes`);
    }
    // Every Consul agent whose folder is one of this test's clusters' belongs to a cluster that is not Deleted.
    const clustersDir = path.join(s.config.LOCAL_DIR, 'clusters');
    const ours = (await listAgentProcesses()).filter((p) => clusterIds.some((id) => p.args.some((a) => a.includes(path.join(clustersDir, id)))));
    assert.equal(ours.length, CLUSTERS - DELETED.size, `one agent per Running cluster: ${JSON.stringify(ours.map((p) => p.pid))}`);
  });

  it('every scheduler ran once per period across the workers, a killed worker\'s period by another (the counts as a table)', async (t: TestContext) => {
    // A period is the database clock floored to a multiple of the schedule's period (ScheduleRun.periodStart).
    // Counted: every period from the first that began after the three workers were up to the last that had
    // ended a period before the count; a period run late (the machine starved) counts once it has run.
    // At least ten periods of each since the workers were up, however quickly the operations went.
    await waitFor('ten periods of every scheduler run since the workers were up', async () => {
      const done = await db().scheduleRun.groupBy({ by: ['schedule'], where: { finishedAt: { not: null }, periodStart: { gte: new Date(allReadyAt) } }, _count: true });
      return SCHEDULE_NAMES.map((name) => done.find((d) => d.schedule === name)?._count ?? 0);
    }, (counts) => counts.every((n) => n >= 12), 180_000, 500);
    const endAt = Date.now();
    const windowOf = (name: ScheduleName) => {
      const p = periodOf(name);
      return { first: Math.ceil(allReadyAt / p) * p, last: Math.floor(endAt / p) * p - 2 * p };
    };
    const settled = await waitFor('every period of the count to have run to its end', async () => {
      const done = await db().scheduleRun.findMany({ where: { finishedAt: { not: null } }, select: { schedule: true, periodStart: true } });
      return SCHEDULE_NAMES.every((name) => {
        const { first, last } = windowOf(name);
        return done.filter((r) => r.schedule === name && r.periodStart.getTime() >= first && r.periodStart.getTime() <= last).length === (last - first) / periodOf(name) + 1;
      });
    }, (ok) => ok, 60_000, 250).catch(() => false);
    const live = workers.filter((w) => w.child.exitCode === null);
    const metrics = await Promise.all(live.map(scrapeRuns));
    const stopAt = Date.now();
    await Promise.all(workers.map(stopReplica));
    const rows = await db().scheduleRun.findMany({ orderBy: { periodStart: 'asc' } });
    const table: string[] = ['schedule            | period | periods | fired once | taken over | missing | run by (killed; 0, 1, 2 as now) | live workers\' /metrics vs their ledger rows (whole run)'];
    const failures: string[] = [];
    for (const name of SCHEDULE_NAMES) {
      const { first, last } = windowOf(name);
      const periodMs = periodOf(name);
      const periods = (last - first) / periodMs + 1;
      assert.ok(periods >= 10, `${name}: the run covers ${periods} periods`);
      const mine = rows.filter((r) => r.schedule === name);
      const inWindow = mine.filter((r) => r.periodStart.getTime() >= first && r.periodStart.getTime() <= last);
      const missing: string[] = [];
      for (let p = first; p <= last; p += periodMs) if (!inWindow.some((r) => r.periodStart.getTime() === p)) missing.push(new Date(p).toISOString());
      const takenOver = inWindow.filter((r) => r.runs > 1);
      for (const r of inWindow) {
        const detail = `${name} ${r.periodStart.toISOString()}: runs ${r.runs} by ${JSON.stringify(r.claimedBy)}, finished by ${r.finishedBy}, error ${r.error}`;
        assert.ok(r.finishedAt, `finished: ${detail}`);
        assert.equal(r.error, null, detail);
        assert.equal(r.periodMs, periodMs);
        // Run more than once only when its first holder was the killed worker (or one whose lease lapsed: never here).
        if (r.runs > 1) {
          assert.equal(r.claimedBy[0], killed.worker!.replica.owner, `taken over only from the killed worker: ${detail}`);
          assert.notEqual(r.finishedBy, killed.worker!.replica.owner, detail);
        }
      }
      const byWorker = workers.map((w) => inWindow.filter((r) => r.finishedBy === w.owner).length);
      const killedRuns = inWindow.filter((r) => r.finishedBy === killed.worker!.replica.owner).length;
      // Each live worker's counter against the rows it finished (one run per schedule may end between the two reads).
      const counted = live.map((w, k) => [metrics[k][name] ?? 0, mine.filter((r) => r.finishedBy === w.owner && r.finishedAt!.getTime() <= stopAt).length]);
      for (const [k, [c, ledger]] of counted.entries()) assert.ok(ledger - c >= 0 && ledger - c <= 1, `${name}: ${live[k].name}'s scheduler_runs_total ${c} against ${ledger} rows it finished`);
      const summed = counted.reduce((a, [c]) => a + c, 0);
      table.push(`${name.padEnd(19)} | ${`${periodMs / 1000} s`.padStart(6)} | ${String(periods).padStart(7)} | ${String(inWindow.length - takenOver.length).padStart(10)} | ${String(takenOver.length).padStart(10)} | ${String(missing.length).padStart(7)} | ` +
        `${[killedRuns, ...byWorker].join(', ').padEnd(31)} | ${summed} counted, ${counted.reduce((a, [, l]) => a + l, 0)} rows`);
      if (missing.length) failures.push(`${name}: no run for the periods ${missing.join(', ')}`);
      if (inWindow.length !== periods) failures.push(`${name}: ${inWindow.length} runs for ${periods} periods`);
    }
    const billingTakeover = rows.find((r) => r.schedule === 'billing' && r.periodStart.getTime() === killed.worker!.billingPeriod.getTime())!;
    table.push(`the killed worker's billing period ${billingTakeover.periodStart.toISOString()}: claimed by ${JSON.stringify(billingTakeover.claimedBy)}, finished by ${billingTakeover.finishedBy}, runs ${billingTakeover.runs}`);
    table.push(`workers: ${workers.map((w) => `${w.name.split('-').slice(0, 3).join('-')} ${w.owner}`).join('; ')}; killed ${killed.worker!.replica.owner}`);
    // The restarted worker took its share.
    const restarted = workers.find((w) => w.name === killed.worker!.replica.name)!;
    assert.ok(rows.some((r) => r.finishedBy === restarted.owner), 'the restarted worker ran scheduler periods');
    t.diagnostic(`scheduler runs per period (whole file ${((Date.now() - t0) / 1000).toFixed(1)} s${settled ? '' : '; some periods had not run a minute after they ended'}):`);
    for (const line of table) t.diagnostic(line);
    assert.deepEqual(failures, [], 'one run for every period of every scheduler');
  });
});
