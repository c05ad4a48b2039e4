import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, it, type TestContext } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';
import { mulberry32 } from './support/prng';
import { STEPS, SUCCESS_MARKER } from './support/flow-record';

const TENANT = 'e2e2e2e2-0000-4000-8000-000000000022';
const CLUSTERS = 20;
const WORKER_MAIN = path.resolve(__dirname, '..', 'apps', 'worker', 'src', 'main.js');
const SEED = Number(process.env.TWO_WORKERS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Seeded, so that a failing shuffle can be replayed with TWO_WORKERS_SEED. */
const prng = mulberry32;
const random = prng(SEED);
function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** What a worker process said about one operation, from its JSON log lines. */
interface OpEvent {
  msg: string;
  operationId: string;
  kind: string;
  at: number;
}

/** A worker as a real child process, with its JSON log lines parsed as they come. */
interface WorkerProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  ready: boolean;
  events: OpEvent[];
  problems: string[]; // warn/error messages, for failure reports (never tokens: the worker does not log them)
  closed: Promise<void>; // both output streams ended
  onEvent?: (e: OpEvent) => void;
}

const STARTS = new Set(['operation started', 'operation resumed']);
const ENDS = new Set(['operation succeeded', 'operation failed', 'operation step failed; will retry']);

function spawnWorker(s: TestStack, name: string): WorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Optional settings left unset are `undefined` in the config: passing them on as the string "undefined" would fail validation.
  for (const [k, v] of Object.entries(s.config)) if (v !== undefined && typeof v !== 'object') env[k] = String(v);
  env.WORKER_NAME = name;
  env.WORKER_PORT = '0';
  env.LOG_FORMAT = 'json';
  // Under NODE_ENV=test the logger drops 'log' lines; the test reads "operation started/succeeded" from them.
  env.NODE_ENV = 'development';
  const child = spawn(process.execPath, [WORKER_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.ok(child.pid, `worker ${name} did not start`);
  const w: WorkerProcess = { name, child, pid: child.pid, ready: false, events: [], problems: [], closed: Promise.resolve() };
  const read = (stream: NodeJS.ReadableStream) =>
    new Promise<void>((resolve) => {
      const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => {
        let parsed: { level?: string; pid?: number; message?: unknown } | undefined;
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          if (w.problems.length < 50) w.problems.push(line.slice(0, 300));
          return;
        }
        const m = parsed?.message as { msg?: string; operationId?: string; kind?: string; error?: string } | string | undefined;
        const msg = typeof m === 'string' ? m : m?.msg;
        if (parsed?.pid !== undefined && parsed.pid !== w.pid) w.problems.push(`a log line from pid ${parsed.pid} in ${name}'s output`);
        if (msg === 'worker ready') w.ready = true;
        if (parsed?.level === 'warn' || parsed?.level === 'error' || parsed?.level === 'fatal') {
          if (w.problems.length < 50) w.problems.push(`${parsed.level}: ${msg ?? ''} ${typeof m === 'object' && m?.error ? m.error : ''}`.slice(0, 300));
        }
        if (typeof m === 'object' && m?.operationId && msg && (STARTS.has(msg) || ENDS.has(msg))) {
          const e: OpEvent = { msg, operationId: m.operationId, kind: String(m.kind), at: Date.now() };
          w.events.push(e);
          w.onEvent?.(e);
        }
      });
      rl.on('close', () => resolve());
    });
  w.closed = Promise.all([read(child.stdout!), read(child.stderr!)]).then(() => undefined);
  return w;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
  await exited(w.child);
  clearTimeout(timer);
}

type Action = 'snapshot' | 'named-snapshot' | 'token' | 'patch-policy' | 'rotate-gossip-key';

interface Requested {
  clusterId: string;
  action: Action;
  operationId?: string; // none for a policy PATCH (no operation)
  accessorId?: string; // for a token: what the API handed out
  snapshotId?: string;
}

// The "workers scale out" requirement with real processes: two compiled worker
// processes on the same database, Redis and queue prefix as the API, twenty real
// development clusters, a burst of operations across all of them, then one worker
// SIGKILLed in the middle of a second burst. Every operation must run to the end
// exactly once, each cluster's changes one at a time in request order.
describe('two worker processes, twenty clusters', { timeout: 600_000 }, () => {
  let s: TestStack;
  let target: LocalTarget;
  let token: string;
  const workers: WorkerProcess[] = [];
  const clusterIds: string[] = [];
  const createOps = new Map<string, string>(); // cluster -> its create operation
  const t0 = Date.now();

  const op = (id: string) => s.db.operation.findUniqueOrThrow({ where: { id } });
  const unfinished = () => s.db.operation.count({ where: { tenantId: TENANT, state: { in: ['Queued', 'Running'] } } });
  const eventsOf = (id: string) => workers.flatMap((w) => w.events.filter((e) => e.operationId === id).map((e) => ({ ...e, worker: w.name })));
  const problems = () => workers.map((w) => `${w.name} (pid ${w.pid}): ${w.problems.slice(-8).join(' | ') || 'nothing'}`).join('\n');

  before(async () => {
    s = await startStack({ worker: false });
    target = localTarget(s.config);
    token = s.token(TENANT, WRITE, 'scale-out');
    for (const name of ['worker-a', 'worker-b']) workers.push(spawnWorker(s, `two-procs-${name}-${s.config.QUEUE_PREFIX}`));
    await waitFor('both worker processes ready', async () => workers.map((w) => w.ready || w.child.exitCode !== null), (r) => r.every(Boolean), 60_000, 50);
    for (const w of workers) assert.equal(w.child.exitCode, null, `${w.name} exited at start:\n${problems()}`);
  });

  after(async () => {
    for (const w of workers) await stopWorker(w);
    target?.close();
    // close() also stops any Consul process of a cluster not Deleted, whatever happened above.
    await s?.close();
  });

  /**
   * Asserts what the rows and the workers' logs say about a set of operations.
   * Returns (does not assert, so that the caller checks everything else first)
   * the operations whose success was not recorded exactly once in the audit log.
   */
  async function assertRanOnce(ids: string[], opts: { killed?: Map<string, string> } = {}): Promise<string[]> {
    const twice: string[] = [];
    const rows = await s.db.operation.findMany({ where: { id: { in: ids } } });
    assert.equal(rows.length, ids.length);
    const audits = await s.db.auditEvent.findMany({ where: { operationId: { in: ids } } });
    for (const row of rows) {
      const ev = eventsOf(row.id);
      const detail = `${row.kind} ${row.id}: state ${row.state}, attempts ${row.attempts}, error ${JSON.stringify(row.error)}, log ${JSON.stringify(ev.map((e) => `${e.worker}:${e.msg}`))}`;
      assert.equal(row.state, 'Succeeded', detail);
      assert.ok(row.startedAt && row.finishedAt && row.startedAt <= row.finishedAt, detail);
      assert.equal(row.error, null, detail);
      const starts = ev.filter((e) => STARTS.has(e.msg));
      const successes = ev.filter((e) => e.msg === 'operation succeeded');
      assert.equal(ev.filter((e) => e.msg === 'operation step failed; will retry' || e.msg === 'operation failed').length, 0, `no failed attempt: ${detail}`);
      if (opts.killed?.has(row.id) && row.attempts === 1) {
        // The killed process committed the end but died before it could log it: the other one did not run it again.
        assert.deepEqual(ev.map((e) => `${e.worker === opts.killed!.get(row.id) ? 'killed' : 'other'}:${e.msg}`), ['killed:operation started'], detail);
      } else if (opts.killed?.has(row.id)) {
        // Cut off by the SIGKILL: the other process resumed it, once, and ended it.
        const by = opts.killed.get(row.id);
        assert.equal(row.attempts, 2, detail);
        assert.equal(successes.length, 1, `ran to the end exactly once: ${detail}`);
        assert.ok(['', 'operation started'].includes(ev.filter((e) => e.worker === by).map((e) => e.msg).join()), `killed before it ended: ${detail}`);
        assert.equal(ev.filter((e) => e.worker !== by).map((e) => e.msg).join(), 'operation resumed,operation succeeded', `resumed once by the other process: ${detail}`);
      } else {
        assert.equal(successes.length, 1, `ran to the end exactly once: ${detail}`);
        assert.equal(row.attempts, 1, `started once: ${detail}`);
        assert.deepEqual(starts.map((e) => e.msg), ['operation started'], `one start, in one process: ${detail}`);
        assert.equal(starts[0].worker, successes[0].worker, detail);
      }
      const steps = row.steps as { name: string; state: string; startedAt: string; finishedAt?: string }[];
      if (STEPS[row.kind]) assert.deepEqual(steps.map((x) => x.name), STEPS[row.kind], detail);
      for (const step of steps) {
        assert.equal(step.state, 'Succeeded', detail);
        if (row.attempts === 1) {
          assert.ok(new Date(step.startedAt) >= row.startedAt! && new Date(step.finishedAt!) <= row.finishedAt!, `step ${step.name} inside its operation: ${detail}`);
        }
      }
      const marker = SUCCESS_MARKER[row.kind];
      if (marker) {
        const marks = audits.filter((a) => a.operationId === row.id && a.action === marker);
        const evidence = `${detail}; row started ${row.startedAt?.toISOString()} finished ${row.finishedAt?.toISOString()}; steps ${JSON.stringify(steps.map((x) => [x.name, x.startedAt, x.finishedAt]))}; '${marker}' events at ${JSON.stringify(marks.map((a) => a.createdAt.toISOString()))}`;
        if (marks.length !== 1) twice.push(`${marks.length} '${marker}' audit events for ${evidence}`);
      }
    }
    return twice;
  }

  /** Each cluster's mutating operations ran one at a time, in their request order (seq). */
  async function assertSerialPerCluster() {
    const all = await s.db.operation.findMany({ where: { tenantId: TENANT, mutating: true }, orderBy: { seq: 'asc' } });
    let pairs = 0;
    for (const clusterId of clusterIds) {
      const line = all.filter((o) => o.clusterId === clusterId);
      for (let k = 1; k < line.length; k++) {
        const prev = line[k - 1];
        const next = line[k];
        assert.ok(
          next.startedAt! >= prev.finishedAt!,
          `cluster ${clusterId}: ${next.kind} #${next.seq} started ${next.startedAt?.toISOString()} before ${prev.kind} #${prev.seq} ended ${prev.finishedAt?.toISOString()}`,
        );
        pairs++;
      }
    }
    const locked = await s.db.cluster.count({ where: { id: { in: clusterIds }, lockedByOperationId: { not: null } } });
    assert.equal(locked, 0, 'no cluster is left locked');
    return pairs;
  }

  /** Issues the actions of one cluster one after the other (a token is not awaited: it answers when done). */
  async function runChain(clusterId: string, actions: Action[], tag: string, out: Requested[], tokenAnswers: Promise<void>[]) {
    for (const [n, action] of actions.entries()) {
      const r: Requested = { clusterId, action };
      out.push(r);
      if (action === 'token') {
        const answer = s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: `${tag} ${n}` } }).then((res) => {
          assert.equal(res.status, 201, `token for ${clusterId}: ${res.status} ${JSON.stringify(res.body?.error)}`);
          // Never printed: only its shape is checked.
          assert.ok(/^[0-9a-f-]{36}$/.test(String(res.body.secretId)), 'a secretId was handed out');
          r.accessorId = res.body.accessorId;
        });
        answer.catch(() => undefined); // awaited with the others once the chains are issued
        tokenAnswers.push(answer);
        continue;
      }
      if (action === 'patch-policy') {
        const res = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body: { snapshotPolicy: { intervalHours: 12, retention: 3 + n } } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        continue;
      }
      const res =
        action === 'rotate-gossip-key'
          ? await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token, body: { what: 'gossip-key' } })
          : await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token, body: action === 'named-snapshot' ? { name: `${tag}-${n}` } : {} });
      assert.equal(res.status, 202, `${action} on ${clusterId}: ${res.status} ${JSON.stringify(res.body)}`);
      r.operationId = res.body.operation.id;
      r.snapshotId = res.body.snapshot?.id;
    }
  }

  /** A burst: every cluster's chain at once, the chains started in a shuffled order. */
  async function burst(actionsFor: (i: number) => Action[], tag: string): Promise<Requested[]> {
    const out: Requested[] = [];
    const tokenAnswers: Promise<void>[] = [];
    const order = shuffle(clusterIds.map((id, i) => ({ id, i })));
    await Promise.all(order.map(({ id, i }) => runChain(id, shuffle(actionsFor(i)), tag, out, tokenAnswers)));
    await Promise.all(tokenAnswers);
    return out;
  }

  /** The create-token operation behind each token handed out (its result names the accessor). */
  async function resolveTokenOperations(reqs: Requested[]) {
    for (const r of reqs.filter((x) => x.action === 'token')) {
      const ops = await s.db.operation.findMany({ where: { clusterId: r.clusterId, kind: 'create-token', result: { path: ['accessorId'], equals: r.accessorId } } });
      assert.equal(ops.length, 1, `one create-token operation handed out ${r.clusterId}'s token`);
      assert.equal(ops[0].mutating, false);
      r.operationId = ops[0].id;
    }
  }

  /** The side effects of a burst: one snapshot row per snapshot operation, Available and named as asked; tokens match their audit. */
  async function assertEffects(reqs: Requested[]) {
    for (const r of reqs.filter((x) => x.action === 'token')) {
      const ev = await s.db.auditEvent.findMany({ where: { clusterId: r.clusterId, action: 'cluster.token.created', details: { path: ['accessorId'], equals: r.accessorId } } });
      assert.ok(ev.length >= 1 && ev.every((e) => e.operationId === r.operationId), `the token handed out for ${r.clusterId} is the one its operation recorded`);
    }
    const snaps = reqs.filter((x) => x.action.endsWith('snapshot'));
    const rows = await s.db.snapshot.findMany({ where: { operationId: { in: snaps.map((x) => x.operationId!) } } });
    assert.equal(rows.length, snaps.length, 'one snapshot row per snapshot operation');
    for (const r of snaps) {
      const row = rows.find((x) => x.operationId === r.operationId)!;
      assert.equal(row.id, r.snapshotId);
      assert.equal(row.state, 'Available', `snapshot ${row.id}`);
      assert.match(row.sha256 ?? '', /^[0-9a-f]{64}$/);
      assert.ok(Number(row.size) > 0 && row.consulIndex !== null);
      if (r.action === 'named-snapshot') assert.match(row.name, /^(b1|b2)-\d$/);
    }
    // Per cluster, the mutating requests' seq follows the order they were made in.
    for (const clusterId of clusterIds) {
      const ids = reqs.filter((x) => x.clusterId === clusterId && x.operationId && x.action !== 'token').map((x) => x.operationId!);
      const seqs = await Promise.all(ids.map(async (id) => (await op(id)).seq));
      for (let k = 1; k < seqs.length; k++) assert.ok(seqs[k] > seqs[k - 1], `request order recorded for ${clusterId}`);
    }
  }

  const perWorker = (ids: Set<string>) =>
    Object.fromEntries(workers.map((w) => [w.name.split('-').slice(2, 4).join('-'), w.events.filter((e) => e.msg === 'operation succeeded' && ids.has(e.operationId)).length]));

  it('creates twenty development clusters through the API, spread over both processes', async (t: TestContext) => {
    const started = Date.now();
    const answers = await Promise.all(
      shuffle([...Array(CLUSTERS).keys()]).map((i) =>
        s.request('POST', '/v1/clusters', {
          token,
          body: { name: `scale-${i}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-scale-out', region: 'westeurope', tier: 'development' },
        }),
      ),
    );
    for (const res of answers) {
      assert.equal(res.status, 202, JSON.stringify(res.body));
      clusterIds.push(res.body.cluster.id);
      createOps.set(res.body.cluster.id, res.body.operation.id);
    }
    await waitFor('every create to end', unfinished, (n) => n === 0, 240_000, 250).catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    const ids = [...createOps.values()];
    assert.deepEqual(await assertRanOnce(ids), [], 'every create recorded its success once');
    const clusters = await s.db.cluster.findMany({ where: { id: { in: clusterIds } } });
    assert.ok(clusters.every((c) => c.state === 'Running'));
    for (const id of clusterIds) assert.deepEqual((await target.observe(id)).map((p) => p.index), [0], `one server process for ${id}`);
    const by = perWorker(new Set(ids));
    t.diagnostic(`seed ${SEED}; 20 creates in ${((Date.now() - started) / 1000).toFixed(1)} s; by process: ${JSON.stringify(by)}`);
  });

  let firstBurst: Requested[] = [];
  it('runs a burst of operations across all clusters: each once, both processes, one at a time per cluster in request order', async (t: TestContext) => {
    const started = Date.now();
    firstBurst = await burst((i) => ['snapshot', 'named-snapshot', 'token', 'snapshot', ...(i % 3 === 0 ? (['patch-policy'] as Action[]) : []), ...(i % 4 === 0 ? (['rotate-gossip-key'] as Action[]) : [])], 'b1');
    await waitFor('every operation of the burst to end', unfinished, (n) => n === 0, 180_000, 100).catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    const elapsed = Date.now() - started;
    await resolveTokenOperations(firstBurst);
    const ids = firstBurst.filter((r) => r.operationId).map((r) => r.operationId!);
    assert.deepEqual(await assertRanOnce(ids), [], 'every operation recorded its success once');
    await assertEffects(firstBurst);
    const pairs = await assertSerialPerCluster();
    const by = perWorker(new Set(ids));
    for (const [w, n] of Object.entries(by)) assert.ok(n > 0, `${w} took work: ${JSON.stringify(by)}`);
    assert.equal(Object.values(by).reduce((a, b) => a + b, 0), ids.length);
    // Per cluster, did both processes take part? (not required, reported)
    const mixed = clusterIds.filter((c) => new Set(firstBurst.filter((r) => r.clusterId === c && r.operationId).map((r) => eventsOf(r.operationId!)[0]?.worker)).size > 1).length;
    const kinds = Object.entries(
      ids.reduce<Record<string, number>>((acc, id) => {
        const k = eventsOf(id)[0]?.kind ?? '?';
        acc[k] = (acc[k] ?? 0) + 1;
        return acc;
      }, {}),
    );
    t.diagnostic(
      `burst 1: ${ids.length} operations (${JSON.stringify(Object.fromEntries(kinds))}) + ${firstBurst.filter((r) => r.action === 'patch-policy').length} policy PATCHes in ${(elapsed / 1000).toFixed(1)} s; by process: ${JSON.stringify(by)}; clusters served by both: ${mixed}/${CLUSTERS}; ordered pairs checked: ${pairs}`,
    );
    const patched = await s.db.cluster.findMany({ where: { id: { in: clusterIds }, snapshotIntervalHours: 12 } });
    assert.equal(patched.length, firstBurst.filter((r) => r.action === 'patch-policy').length);
  });

  it('SIGKILLs one process in the middle of a second burst: the other finishes everything, nothing runs twice', async (t: TestContext) => {
    const [a, b] = workers;
    const started = Date.now();
    let finishedByA = 0;
    let killedAt = 0;
    const inFlight = new Set<string>();
    a.onEvent = (e) => {
      if (STARTS.has(e.msg)) inFlight.add(e.operationId);
      else inFlight.delete(e.operationId);
      if (e.msg === 'operation succeeded') finishedByA++;
    };
    const issuing = burst(() => ['named-snapshot', 'snapshot', 'token', 'snapshot'], 'b2');
    // A has finished some of the burst and its log says several operations are under way. A log line is read
    // late, so it may tell of operations already ended: A is frozen (SIGSTOP) and killed only when its rows show
    // operations of its own still Running; otherwise it is let go again and looked at on the next poll.
    const claimedByA = `${hostname()}:${a.pid}`;
    const killMidway = async (): Promise<number> => {
      if (finishedByA < 5 || inFlight.size < 2) return 0;
      a.child.kill('SIGSTOP');
      const running = await s.db.operation.count({ where: { tenantId: TENANT, state: 'Running', claimedBy: claimedByA } });
      if (running >= 2) {
        a.child.kill('SIGKILL');
        killedAt = Date.now();
        return running;
      }
      a.child.kill('SIGCONT');
      return 0;
    };
    const runningAtKill = await waitFor('worker A to be killed with operations of its own under way', killMidway, (n) => n > 0, 60_000, 20);
    await exited(a.child);
    await a.closed; // every line A wrote before it died has been read
    const cutOff = new Set(inFlight); // started by A, never ended by A
    const secondBurst = await issuing;
    await waitFor('every operation of the second burst to end', unfinished, (n) => n === 0, 180_000, 100).catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    const elapsed = Date.now() - started;
    await resolveTokenOperations(secondBurst);
    const ids = secondBurst.filter((r) => r.operationId).map((r) => r.operationId!);
    const rows = await s.db.operation.findMany({ where: { id: { in: ids } } });
    // A start that A wrote to the row but did not live to log also counts as cut off: B resumed it.
    const unlogged = rows.filter((r) => !cutOff.has(r.id) && r.attempts === 2 && eventsOf(r.id).every((e) => e.worker === b.name)).map((r) => r.id);
    const killed = new Map([...cutOff, ...unlogged].map((id) => [id, a.name]));
    const twice = await assertRanOnce(ids, { killed });
    const resumed = rows.filter((r) => killed.has(r.id) && r.attempts === 2).length;
    const committedByA = rows.filter((r) => killed.has(r.id) && r.attempts === 1).length;
    assert.ok(resumed >= 1, 'the kill cut at least one operation off mid-way, and B resumed it');
    await assertEffects(secondBurst);
    // Nothing A finished ran again in B.
    const doneByA = new Set(a.events.filter((e) => e.msg === 'operation succeeded' && ids.includes(e.operationId)).map((e) => e.operationId));
    assert.ok(doneByA.size >= 5, `A had finished some of the burst (${doneByA.size})`);
    for (const id of doneByA) assert.equal(b.events.filter((e) => e.operationId === id).length, 0, `operation ${id} finished by A was not run again by B`);
    const afterKill = b.events.filter((e) => e.msg === 'operation succeeded' && e.at >= killedAt && ids.includes(e.operationId)).length;
    assert.ok(afterKill > 0, 'B went on after the kill');
    await assertSerialPerCluster();
    const by = perWorker(new Set(ids));
    t.diagnostic(
      `burst 2: ${ids.length} operations in ${(elapsed / 1000).toFixed(1)} s; A killed after ${((killedAt - started) / 1000).toFixed(1)} s with ${runningAtKill} of its operations Running in the database and ${cutOff.size} operation(s) logged as under way (+${unlogged.length} started but not yet logged): ${resumed} resumed by B, ${committedByA} already committed by A; finished by process: ${JSON.stringify(by)}; finished by B after the kill: ${afterKill}; success recorded twice: ${twice.length}`,
    );
    // Checked last, once everything above held. The runner records a flow's success (its audit event) in
    // flow.succeeded() and ends the operation afterwards, in another transaction: a process killed between
    // the two leaves the event behind, and the resumed run records it a second time.
    assert.deepEqual(twice, [], 'a resumed operation recorded its success once');
  });

  it('deletes all twenty clusters through the API and leaves no Consul process', async (t: TestContext) => {
    const started = Date.now();
    const answers = await Promise.all(shuffle(clusterIds).map((id) => s.request('DELETE', `/v1/clusters/${id}`, { token })));
    for (const res of answers) assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitFor('every delete to end', unfinished, (n) => n === 0, 180_000, 200).catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    const ids = answers.map((r) => r.body.operation.id as string);
    assert.deepEqual(await assertRanOnce(ids), [], 'every delete recorded its success once');
    await assertSerialPerCluster();
    const clusters = await s.db.cluster.findMany({ where: { id: { in: clusterIds } } });
    assert.ok(clusters.every((c) => c.state === 'Deleted'), JSON.stringify(clusters.map((c) => c.state)));
    for (const id of clusterIds) assert.deepEqual(await target.observe(id), [], `no Consul process left for ${id}`);
    const total = await s.db.operation.count({ where: { tenantId: TENANT } });
    const succeeded = await s.db.operation.count({ where: { tenantId: TENANT, state: 'Succeeded' } });
    assert.equal(succeeded, total, 'every operation of the test succeeded');
    t.diagnostic(`20 deletes in ${((Date.now() - started) / 1000).toFixed(1)} s; ${total} operations in all, all Succeeded; whole file ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
