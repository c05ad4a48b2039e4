import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Worker, type Job } from 'bullmq';
import {
  ClusterRepository, OPERATIONS_QUEUE, OperationRepository, TenantClusterRepository, closeDb, createDb, createOperationsQueue, createRedis,
  enqueueOperation, operationJobId, type Config, type Db, type JobPayloads, type OperationKind, type OperationsQueue,
} from '../../../../libs/core/src';
import { testConfig, waitFor, dropTestDatabase } from '../../../../test/support/stack';
import { PermanentError, type Flow, type FlowContext } from './flows/flow';
import { OperationRunner } from './operation.runner';
import { Reconciler } from './reconciler';
import { rowOnlyContexts } from '../../../../test/support/cluster-contexts';

const TENANT = 'eeeeeeee-0000-4000-8000-000000000005';

/** A flow whose single step is whatever the test says, recording when it ran. */
function scriptedFlow(step: (ctx: FlowContext) => Promise<string | void>): Flow {
  return {
    steps: (ctx) => [{ name: 'scripted', run: () => step(ctx) }],
    succeeded: async () => undefined,
    failed: async () => undefined,
  };
}

// The runner against real Postgres and Redis, with scripted flows: retries,
// permanent failures, one mutating operation per cluster, and the reconciler.
describe('OperationRunner', () => {
  let config: Config;
  let db: Db;
  let clusters: ClusterRepository;
  let tenantClusters: TenantClusterRepository;
  let operations: OperationRepository;
  let queue: OperationsQueue;
  let worker: Worker;
  const connections: ReturnType<typeof createRedis>[] = [];
  const redis = (forWorker: boolean) => {
    const c = createRedis(config.REDIS_URL, forWorker);
    connections.push(c);
    return c;
  };
  const behaviour = new Map<string, (ctx: FlowContext) => Promise<string | void>>();
  const running = new Map<string, number>();
  const overlaps: string[] = [];

  before(async () => {
    config = await testConfig({ JOB_ATTEMPTS: '3' });
    db = createDb(config.DATABASE_URL, 4);
    clusters = new ClusterRepository(db);
    tenantClusters = new TenantClusterRepository(db);
    operations = new OperationRepository(db);
    queue = createOperationsQueue(redis(false), config.QUEUE_PREFIX);
    const flow = scriptedFlow(async (ctx) => {
      const id = ctx.cluster.id;
      running.set(id, (running.get(id) ?? 0) + 1);
      if (running.get(id)! > 1 && ctx.operation.mutating) overlaps.push(ctx.operation.id);
      try {
        return await (behaviour.get(ctx.operation.id) ?? (async () => 'ok'))(ctx);
      } finally {
        running.set(id, running.get(id)! - 1);
      }
    });
    const flows = { create: flow, delete: flow, 'create-token': flow } as Record<OperationKind, Flow>;
    const runner = new OperationRunner(operations, clusters, flows, { open: rowOnlyContexts(clusters) });
    worker = new Worker(OPERATIONS_QUEUE, (job: Job<JobPayloads['run-operation']>, token?: string) => runner.run(job, token), {
      connection: redis(true),
      prefix: config.QUEUE_PREFIX,
      concurrency: 8,
      // Retries in tests back off from 1 s; keep them short but real.
    });
  });
  after(async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    // BullMQ does not close connections it was given.
    for (const c of connections) c.disconnect();
    await closeDb(db);
    await dropTestDatabase(config.DATABASE_URL);
  });

  async function newCluster(name: string) {
    return tenantClusters.createWithOperation({
      tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', name, region: 'westeurope', datacenter: name,
      consulVersion: '1.8.7', tier: 'development', serverCount: 1, publicEndpoint: false, createdBy: 'test',
    });
  }
  const finished = (id: string) => waitFor(`operation ${id} to end`, () => operations.get(id), (o) => !!o && ['Succeeded', 'Failed', 'Canceled'].includes(o.state), 30_000, 50);

  it('retries a transient failure with backoff and then succeeds', async () => {
    const { operation } = await newCluster('transient');
    let calls = 0;
    behaviour.set(operation.id, async () => {
      calls++;
      if (calls < 2) throw new Error('connection reset');
      return 'worked the second time';
    });
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    const done = await finished(operation.id);
    assert.equal(done!.state, 'Succeeded');
    assert.equal(done!.attempts, 2);
    assert.equal(calls, 2);
  });

  it('fails at once, with the reason, on an error retrying cannot fix', async () => {
    const { operation } = await newCluster('permanent');
    let calls = 0;
    behaviour.set(operation.id, async () => {
      calls++;
      throw new PermanentError('unknown_version', 'Consul 0.0.1 is not in the version catalog');
    });
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    const done = await finished(operation.id);
    assert.equal(done!.state, 'Failed');
    assert.equal(calls, 1, 'not retried');
    assert.deepEqual(done!.error, { code: 'unknown_version', message: 'scripted: Consul 0.0.1 is not in the version catalog' });
    const cluster = await clusters.get(operation.clusterId);
    assert.equal(cluster!.lockedByOperationId, null, 'the cluster lock is released');
  });

  it('fails after the last attempt of a failure that keeps happening', async () => {
    const { operation } = await newCluster('flaky');
    let calls = 0;
    behaviour.set(operation.id, async () => {
      calls++;
      throw new Error('still down');
    });
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    const done = await finished(operation.id);
    assert.equal(done!.state, 'Failed');
    assert.equal(calls, 3);
    assert.match((done!.error as { message: string }).message, /still down/);
  });

  it('runs mutating operations of one cluster one at a time, in order', async () => {
    const { cluster, operation: create } = await newCluster('serial');
    const order: string[] = [];
    const slow = (label: string) => async () => {
      order.push(`${label}:start`);
      await new Promise((r) => setTimeout(r, 150)); // the work itself, not synchronisation
      order.push(`${label}:end`);
    };
    behaviour.set(create.id, slow('create'));
    const second = await tenantClusters.addOperation(cluster, 'delete', 'test', 'cluster.delete.requested');
    behaviour.set(second.id, slow('delete'));
    // Enqueue the later operation first: the lock still runs them in request order.
    await enqueueOperation(queue, second.id, config.JOB_ATTEMPTS);
    await enqueueOperation(queue, create.id, config.JOB_ATTEMPTS);
    await finished(second.id);
    assert.equal((await operations.get(create.id))!.state, 'Succeeded');
    assert.deepEqual(order, ['create:start', 'create:end', 'delete:start', 'delete:end']);
    assert.deepEqual(overlaps, []);
  });

  it('the reconciler re-enqueues an operation whose job was lost', async () => {
    const { operation } = await newCluster('lost');
    // Rows written, job never enqueued (as when Redis was down for the API, or lost its data).
    assert.equal(await queue.getJob(operationJobId(operation.id)), undefined);
    const reconciler = new Reconciler(operations, clusters, queue, config.JOB_ATTEMPTS);
    const r = await reconciler.reconcile();
    assert.ok(r.requeued >= 1);
    const done = await finished(operation.id);
    assert.equal(done!.state, 'Succeeded');
    assert.equal((await reconciler.reconcile()).requeued, 0, 'nothing left to re-enqueue');
  });

  it('shows a slow step as Running on the row while it runs, and writes a quick one with the end', async () => {
    const { operation: slowOp } = await newCluster('slow-step');
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    behaviour.set(slowOp.id, async () => {
      await released;
      return 'slow done';
    });
    await enqueueOperation(queue, slowOp.id, config.JOB_ATTEMPTS);
    const during = await waitFor('the slow step on the row', () => operations.get(slowOp.id), (o) => o?.currentStep === 'scripted', 10_000, 20);
    assert.deepEqual((during!.steps as { name: string; state: string }[]).map((x) => [x.name, x.state]), [['scripted', 'Running']]);
    assert.equal(during!.state, 'Running');
    release();
    const done = await finished(slowOp.id);
    const steps = done!.steps as { name: string; state: string; detail?: string; durationMs?: number }[];
    assert.deepEqual(steps.map((x) => [x.name, x.state, x.detail]), [['scripted', 'Succeeded', 'slow done']]);
    assert.equal(done!.currentStep, null);
    assert.equal(done!.progress, 100);

    const { operation: quickOp } = await newCluster('quick-step');
    await enqueueOperation(queue, quickOp.id, config.JOB_ATTEMPTS);
    const quick = await finished(quickOp.id);
    assert.equal(quick!.state, 'Succeeded');
    const quickSteps = quick!.steps as { name: string; state: string; startedAt: string; finishedAt: string }[];
    assert.deepEqual(quickSteps.map((x) => [x.name, x.state]), [['scripted', 'Succeeded']], 'the quick step is in the log all the same');
    assert.ok(quickSteps[0]!.startedAt <= quickSteps[0]!.finishedAt);
  });

  it('claims several operations in one statement: of two for one cluster only the earlier; ended ones not at all', async () => {
    const { cluster, operation: first } = await newCluster('claim-many');
    const second = await tenantClusters.addOperation(cluster, 'delete', 'test', 'cluster.delete.requested');
    const { operation: other } = await newCluster('claim-many-other');
    const ended = (await newCluster('claim-many-ended')).operation;
    await db.operation.update({ where: { id: ended.id }, data: { state: 'Succeeded' } });
    // The later one first in the call: seq order, not call order, decides.
    const got = await operations.claimMany([second.id, first.id, other.id, ended.id, randomUUID()]);
    assert.deepEqual(got.map((o) => o?.id ?? null), [null, first.id, other.id, null, null]);
    assert.equal(got[1]!.state, 'Running');
    assert.equal(got[1]!.attempts, 1);
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, first.id);
    assert.equal((await operations.get(second.id))!.state, 'Queued');
    // Ending the first frees the cluster for the second, in the same kind of shared statement.
    await operations.succeedMany([{ id: first.id, claimId: got[1]!.claimId!, result: null, steps: null }, { id: other.id, claimId: got[2]!.claimId!, result: '{"k":1}', steps: '[]' }]);
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, null);
    assert.deepEqual((await operations.get(other.id))!.result, { k: 1 });
    const [again] = await operations.claimMany([second.id]);
    assert.equal(again?.id, second.id);
    await operations.succeedMany([{ id: second.id, claimId: again!.claimId!, result: null, steps: null }]);
  });
});
