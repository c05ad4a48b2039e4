import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { WORKER_MAIN, exited, workerEnv } from './support/worker-process';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'dddddddd-0000-4000-8000-000000000004';

/** The worker as a real process, so that the test can SIGKILL it. */
function spawnWorker(s: TestStack, name: string): ChildProcess {
  return spawn(process.execPath, [WORKER_MAIN], { env: workerEnv(s.config, name), stdio: ['ignore', 'ignore', 'inherit'] });
}

// A worker killed in the middle of a create: the next worker resumes the
// operation, adopts the servers already running, and starts no duplicate.
describe('a worker killed during create', { timeout: 240_000 }, () => {
  let s: TestStack;
  let target: LocalTarget;
  const children: ChildProcess[] = [];

  before(async () => {
    s = await startStack({ worker: false });
    target = localTarget(s.config);
  });
  after(async () => {
    for (const c of children) {
      c.kill('SIGKILL');
      await exited(c);
    }
    target.close();
    await s.close();
  });

  it('resumes, ends Running with exactly its servers, and deletes cleanly', async () => {
    const token = s.token(TENANT, WRITE);
    const res = await s.request('POST', '/v1/clusters', {
      token,
      body: { name: 'crashy', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-crash', region: 'northeurope', tier: 'standard' },
    });
    assert.equal(res.status, 202);
    const clusterId: string = res.body.cluster.id;
    const opId: string = res.body.operation.id;

    const first = spawnWorker(s, `test-worker-a-${opId.slice(0, 8)}`);
    children.push(first);
    // Kill it as soon as its first Consul server process exists: mid-create, before the leader.
    await waitFor('the first server process', () => target.observe(clusterId), (procs) => procs.length >= 1, 60_000, 20);
    first.kill('SIGKILL');
    await exited(first);
    const mid = await s.db.operation.findUniqueOrThrow({ where: { id: opId } });
    assert.equal(mid.state, 'Running', 'the operation was cut off mid-way');
    assert.equal(mid.finishedAt, null);
    assert.equal(mid.attempts, 1);
    // (The row's step log may not show the step that was cut off: a step is written when it runs over 100 ms, or with the next write.)

    const second = spawnWorker(s, `test-worker-b-${opId.slice(0, 8)}`);
    children.push(second);
    const done = await waitFor('the resumed create', () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000);
    assert.equal(done.body.state, 'Succeeded', JSON.stringify(done.body));
    assert.ok(done.body.attempts >= 2, `the operation ran again (attempts ${done.body.attempts})`);
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Running');

    const procs = await target.observe(clusterId);
    assert.deepEqual(procs.map((p) => p.index), [0, 1, 2], 'exactly one process per server');

    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    const deleted = await waitFor('delete', () => s.request('GET', `/v1/operations/${del.body.operation.id}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state));
    assert.equal(deleted.body.state, 'Succeeded');
    assert.deepEqual(await target.observe(clusterId), []);
  });
});
