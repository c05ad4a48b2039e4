import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { SnapshotScheduleRepository, createOperationsQueue, createRedis, type OperationsQueue } from '../libs/core/src';
import { SnapshotScheduler } from '../apps/worker/src/schedules/snapshot.scheduler';
import { SUBSCRIPTION, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'abababab-0000-4000-8000-00000000000a';
const HOUR = 3_600_000;

// Scheduled snapshots on a real cluster, with the worker's scheduler ticked on a clock the test drives.
describe('scheduled snapshots and retention', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let clusterId: string;
  let t0: number;
  let scheduler: SnapshotScheduler;
  let queue: OperationsQueue;
  let redis: ReturnType<typeof createRedis>;

  const scheduled = async () =>
    (await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token })).body.snapshots.filter((x: { kind: string }) => x.kind === 'scheduled');
  const drained = () =>
    waitFor('scheduled snapshot operations to finish', () => s.db.operation.count({ where: { clusterId, kind: 'snapshot', state: { in: ['Queued', 'Running'] } } }), (n) => n === 0, 60_000);

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    const res = await s.request('POST', '/v1/clusters', {
      token,
      body: { name: 'sched', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-sched', region: 'westeurope', tier: 'development', snapshotPolicy: { intervalHours: 1, retention: 2 } },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    await waitFor('create', () => s.request('GET', `/v1/operations/${res.body.operation.id}`, { token }), (r) => r.body.state === 'Succeeded', 90_000);
    const c = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.deepEqual(c.body.snapshotPolicy, { intervalHours: 1, retention: 2 });
    t0 = Date.parse(c.body.runningSince);
    redis = createRedis(s.config.REDIS_URL, false);
    queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    scheduler = new SnapshotScheduler(new SnapshotScheduleRepository(s.db), queue, s.config.JOB_ATTEMPTS);
  });
  after(async () => {
    await queue.close();
    redis.disconnect();
    await s.close();
  });

  it('takes nothing before the interval, one snapshot when it passes, and never the same slot twice', async () => {
    assert.equal(await scheduler.tick(new Date(t0 + 30 * 60_000)), 0);
    assert.equal(await scheduler.tick(new Date(t0 + HOUR + 60_000)), 1);
    assert.equal(await scheduler.tick(new Date(t0 + HOUR + 120_000)), 0, 'the same slot is not taken twice');
    await drained();
    const list = await scheduled();
    assert.equal(list.length, 1);
    assert.equal(list[0].state, 'Available');
  });

  it('prunes scheduled snapshots beyond the retention, blobs included, and keeps manual ones', async () => {
    const manual = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token, body: { name: 'keep-me' } });
    await drained();
    const first = (await scheduled())[0];
    assert.equal(await scheduler.tick(new Date(t0 + 2 * HOUR + 60_000)), 1);
    await drained();
    assert.equal(await scheduler.tick(new Date(t0 + 3 * HOUR + 60_000)), 1);
    await drained();
    const list = await scheduled();
    assert.equal(list.length, 2, 'retention 2');
    assert.ok(!list.some((x: { id: string }) => x.id === first.id), 'the oldest was pruned');
    const blobs = BlobServiceClient.fromConnectionString(s.config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(s.config.SNAPSHOT_CONTAINER);
    assert.equal(await blobs.getBlockBlobClient(`${clusterId}/${first.id}.snap`).exists(), false);
    const all = (await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token })).body.snapshots;
    assert.ok(all.some((x: { id: string }) => x.id === manual.body.snapshot.id), 'manual snapshots are not pruned');
  });

  it('after the worker was down for hours, takes one snapshot, not a backlog', async () => {
    assert.equal(await scheduler.tick(new Date(t0 + 10 * HOUR + 60_000)), 1);
    assert.equal(await scheduler.tick(new Date(t0 + 10 * HOUR + 90_000)), 0);
    await drained();
  });

  it('PATCH changes the policy and refuses a bad one', async () => {
    const bad = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body: { snapshotPolicy: { intervalHours: 48 } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_snapshotPolicy_intervalHours');
    const ok = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body: { snapshotPolicy: { intervalHours: 6 } } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.snapshotPolicy, { intervalHours: 6, retention: 2 });
    assert.equal(await scheduler.tick(new Date(t0 + 11 * HOUR)), 0, 'next slot is 6 h after the last one');
    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    await waitFor('delete', () => s.request('GET', `/v1/operations/${del.body.operation.id}`, { token }), (r) => r.body.state === 'Succeeded');
  });
});
