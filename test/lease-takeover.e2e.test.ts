import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'fe11ce00-0000-4000-8000-000000000011';
const WORKER_MAIN = path.resolve(__dirname, '..', 'apps', 'worker', 'src', 'main.js');

/** A worker as a real child process, with what it logged about operations (JSON lines). */
interface WorkerProcess {
  name: string;
  child: ChildProcess;
  ready: boolean;
  events: { msg: string; operationId: string }[];
  problems: string[];
}

function spawnWorker(s: TestStack, name: string): WorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(s.config)) if (v !== undefined && typeof v !== 'object') env[k] = String(v);
  env.WORKER_NAME = name;
  env.WORKER_PORT = '0';
  env.LOG_FORMAT = 'json';
  env.NODE_ENV = 'development'; // under test the logger drops the 'log' lines read here
  const child = spawn(process.execPath, [WORKER_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const w: WorkerProcess = { name, child, ready: false, events: [], problems: [] };
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      let parsed: { level?: string; message?: { msg?: string; operationId?: string; error?: string } | string } | undefined;
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        return;
      }
      const m = parsed?.message;
      const msg = typeof m === 'string' ? m : m?.msg;
      if (msg === 'worker ready') w.ready = true;
      if ((parsed?.level === 'warn' || parsed?.level === 'error') && w.problems.length < 50) w.problems.push(`${msg ?? ''} ${typeof m === 'object' ? m?.error ?? '' : ''}`.slice(0, 300));
      if (typeof m === 'object' && m?.operationId && msg) w.events.push({ msg, operationId: m.operationId });
    });
  }
  return w;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

// Fencing with two real worker processes: the first is frozen (SIGSTOP) in the
// middle of a create, so its BullMQ lock and its operation lease both lapse
// while it still "runs"; the second takes the job over and ends the create.
// When the first wakes up it must notice at its next step boundary that its
// claim is gone and do nothing more: no further step, no end written, no
// second success. One runner only.
describe('a lapsed lease: two worker processes, one runner', { timeout: 300_000 }, () => {
  let s: TestStack;
  let target: LocalTarget;
  const workers: WorkerProcess[] = [];
  const problems = () => workers.map((w) => `${w.name}: ${w.problems.slice(-8).join(' | ') || 'nothing'}`).join('\n');

  before(async () => {
    s = await startStack({ worker: false });
    target = localTarget(s.config);
  });
  after(async () => {
    for (const w of workers) {
      w.child.kill('SIGCONT');
      w.child.kill('SIGTERM');
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
      await exited(w.child);
      clearTimeout(timer);
    }
    target?.close();
    await s?.close();
  });

  it('the frozen runner, woken after the takeover, runs no step and writes nothing', async () => {
    const token = s.token(TENANT, WRITE);
    const a = spawnWorker(s, `lease-a-${s.config.QUEUE_PREFIX}`);
    workers.push(a);
    await waitFor('worker a ready', async () => a.ready || a.child.exitCode !== null, Boolean, 60_000, 50);
    assert.equal(a.child.exitCode, null, problems());

    const res = await s.request('POST', '/v1/clusters', {
      token,
      body: { name: 'fenced', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-fence', region: 'westeurope', tier: 'development' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const clusterId: string = res.body.cluster.id;
    const opId: string = res.body.operation.id;

    // Freeze worker a inside the create: its server process exists, the leader is not yet checked.
    await waitFor('the first server process', () => target.observe(clusterId), (procs) => procs.length >= 1, 60_000, 20);
    a.child.kill('SIGSTOP');
    const frozen = await s.db.operation.findUniqueOrThrow({ where: { id: opId } });
    assert.equal(frozen.state, 'Running', 'frozen in the middle of the create');
    assert.equal(frozen.attempts, 1);
    assert.equal(frozen.claimedBy, `${hostname()}:${a.child.pid}`);

    // Worker b takes the job over once the lock and the lease have lapsed, and ends the create.
    const b = spawnWorker(s, `lease-b-${s.config.QUEUE_PREFIX}`);
    workers.push(b);
    const done = await waitFor('the create ended by worker b', () => s.db.operation.findUniqueOrThrow({ where: { id: opId } }), (o) => !['Queued', 'Running'].includes(o.state), 120_000, 100)
      .catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    assert.equal(done.state, 'Succeeded', `${JSON.stringify(done.error)}\n${problems()}`);
    assert.equal(done.attempts, 2, 'claimed a second time, by b');
    assert.equal(done.claimedBy, `${hostname()}:${b.child.pid}`);
    assert.notEqual(done.claimId, frozen.claimId);
    const atEnd = { steps: done.steps, finishedAt: done.finishedAt, result: done.result };
    // b writes the end, then logs it: wait for the line.
    await waitFor('worker b to log the end', async () => b.events.filter((e) => e.operationId === opId).map((e) => e.msg), (m) => m.includes('operation succeeded'), 30_000, 50);
    assert.deepEqual(b.events.filter((e) => e.operationId === opId).map((e) => e.msg), ['operation resumed', 'operation succeeded']);

    // Wake worker a: it finds its claim gone at its next step boundary and stops.
    a.child.kill('SIGCONT');
    await waitFor('worker a to notice its lease is lost', async () => a.events.filter((e) => e.operationId === opId).map((e) => e.msg), (m) => m.includes('operation lease lost; stopped'), 60_000, 50)
      .catch((e: Error) => assert.fail(`${e.message}\n${problems()}`));
    assert.deepEqual(a.events.filter((e) => e.operationId === opId).map((e) => e.msg), ['operation started', 'operation lease lost; stopped'], 'a neither ended nor failed the operation');

    const row = await s.db.operation.findUniqueOrThrow({ where: { id: opId } });
    assert.equal(row.state, 'Succeeded');
    assert.deepEqual({ steps: row.steps, finishedAt: row.finishedAt, result: row.result }, atEnd, 'nothing of a was written after the takeover');
    assert.equal(row.error, null);
    const steps = row.steps as { name: string; state: string }[];
    assert.deepEqual(steps.map((x) => [x.name, x.state]), ['allocate-addresses', 'generate-secrets', 'write-config', 'start-servers', 'wait-for-leader', 'verify-acl', 'apply-public-endpoint', 'record-public-address'].map((n) => [n, 'Succeeded']));
    const audits = await s.db.auditEvent.findMany({ where: { operationId: opId, action: 'cluster.running' } });
    assert.equal(audits.length, 1, 'the cluster became Running once');
    assert.deepEqual((await target.observe(clusterId)).map((p) => p.index), [0], 'exactly its one server process');
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).lockedByOperationId, null);

    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    assert.equal(del.status, 202);
    const deleted = await waitFor('delete', () => s.db.operation.findUniqueOrThrow({ where: { id: del.body.operation.id } }), (o) => ['Succeeded', 'Failed'].includes(o.state), 90_000, 100);
    assert.equal(deleted.state, 'Succeeded', JSON.stringify(deleted.error));
    assert.deepEqual(await target.observe(clusterId), []);
  });
});
