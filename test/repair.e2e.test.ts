import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalTarget } from '../libs/provisioner/src';
import { createOperationsQueue, createRedis, ClusterRepository, TenantClusterRepository, type OperationsQueue } from '../libs/core/src';
import { HealthMonitor } from '../apps/worker/src/health/health.monitor';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'edededed-0000-4000-8000-00000000000e';

// A server process dies: the health monitor notices, the cluster says so, and a repair brings it back.
describe('health and repair', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let target: LocalTarget;
  let monitor: HealthMonitor;
  let queue: OperationsQueue;
  let redis: ReturnType<typeof createRedis>;

  before(async () => {
    // The worker's own monitor ticks slowly here: the test ticks the same class itself.
    s = await startStack({ worker: true, config: undefined });
    token = s.token(TENANT, WRITE);
    target = localTarget(s.config);
    redis = createRedis(s.config.REDIS_URL, false);
    queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    monitor = new HealthMonitor(new ClusterRepository(s.db), new TenantClusterRepository(s.db), target, queue, s.config.JOB_ATTEMPTS);
  });
  after(async () => {
    target.close();
    await queue.close();
    redis.disconnect();
    await s.close();
  });

  it('a killed server is noticed, shown and repaired', async () => {
    const res = await s.request('POST', '/v1/clusters', { token, body: { name: 'fragile', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-fragile', region: 'westeurope', tier: 'standard' } });
    const id: string = res.body.cluster.id;
    await waitFor('create', () => s.request('GET', `/v1/operations/${res.body.operation.id}`, { token }), (r) => r.body.state === 'Succeeded', 90_000);
    await monitor.tick();
    assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token })).body.health.status, 'healthy');

    const victim = (await target.observe(id)).find((p) => p.index === 1)!;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('the server to be gone', () => target.observe(id), (procs) => !procs.some((p) => p.index === 1), 10_000, 50);

    const tick = await monitor.tick();
    assert.equal(tick.repairs, 1);
    const degraded = (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
    assert.equal(degraded.health.status, 'degraded');
    assert.match(degraded.health.reason, /server\(s\) 1 of 3 not running; quorum kept/);
    assert.equal((await monitor.tick()).repairs, 0, 'one repair at a time');

    const ops = (await s.request('GET', `/v1/clusters/${id}/operations`, { token })).body.operations;
    const repair = ops.find((o: { kind: string }) => o.kind === 'repair');
    assert.ok(repair, 'the repair is in the operation list');
    const done = await waitFor('repair', () => s.request('GET', `/v1/operations/${repair.id}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000);
    assert.equal(done.body.state, 'Succeeded', JSON.stringify(done.body));
    assert.deepEqual((await target.observe(id)).map((p) => p.index), [0, 1, 2]);
    await monitor.tick();
    const healed = (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
    assert.equal(healed.health.status, 'healthy');
    assert.equal(healed.state, 'Running');

    const del = await s.request('DELETE', `/v1/clusters/${id}`, { token });
    await waitFor('delete', () => s.request('GET', `/v1/operations/${del.body.operation.id}`, { token }), (r) => r.body.state === 'Succeeded');
  });
});
