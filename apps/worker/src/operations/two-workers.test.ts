import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Worker, type Job } from 'bullmq';
import {
  ClusterRepository, OPERATIONS_QUEUE, OperationRepository, TenantClusterRepository, closeDb, createDb, createOperationsQueue, createRedis,
  enqueueOperation, type Config, type Db, type JobPayloads, type Operation, type OperationKind, type OperationsQueue,
} from '../../../../libs/core/src';
import { dropTestDatabase, testConfig, waitFor } from '../../../../test/support/stack';
import type { Flow, FlowContext } from './flows/flow';
import { OperationRunner } from './operation.runner';
import { rowOnlyContexts } from '../../../../test/support/cluster-contexts';

const TENANT = 'f0f0f0f0-0000-4000-8000-00000000000f';
const CLUSTERS = 20;
const OPS_PER_CLUSTER = 4;

// Two workers on one Redis, each with its own connections and runner, as two
// worker processes would be: 20 clusters, 4 mutating operations each, enqueued
// all at once. Each cluster's operations must run one at a time, in request
// order, and every operation exactly once.
describe('two workers, twenty clusters', () => {
  let config: Config;
  let db: Db;
  const connections: ReturnType<typeof createRedis>[] = [];
  const workers: Worker[] = [];
  let queue: OperationsQueue;
  const runs = new Map<string, string[]>(); // operation id -> worker names that ran it
  const timeline = new Map<string, { op: string; start: number; end: number }[]>();

  const redis = (forWorker: boolean) => {
    const c = createRedis(config.REDIS_URL, forWorker);
    connections.push(c);
    return c;
  };

  function flowFor(workerName: string): Flow {
    return {
      steps: (ctx: FlowContext) => [
        {
          name: 'work',
          run: async () => {
            runs.set(ctx.operation.id, [...(runs.get(ctx.operation.id) ?? []), workerName]);
            const start = Date.now();
            await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 20))); // the work itself
            const line = timeline.get(ctx.cluster.id) ?? [];
            line.push({ op: ctx.operation.id, start, end: Date.now() });
            timeline.set(ctx.cluster.id, line);
          },
        },
      ],
      succeeded: async () => undefined,
      failed: async () => undefined,
    };
  }

  before(async () => {
    config = await testConfig({ JOB_ATTEMPTS: '3' });
    db = createDb(config.DATABASE_URL, 10);
    queue = createOperationsQueue(redis(false), config.QUEUE_PREFIX);
    for (const name of ['worker-a', 'worker-b']) {
      const flow = flowFor(name);
      const flows = new Proxy({}, { get: () => flow }) as Record<OperationKind, Flow>;
      const clusters = new ClusterRepository(db);
      const runner = new OperationRunner(new OperationRepository(db), clusters, flows, { open: rowOnlyContexts(clusters) });
      workers.push(
        new Worker(OPERATIONS_QUEUE, (job: Job<JobPayloads['run-operation']>, token?: string) => runner.run(job, token), {
          connection: redis(true), prefix: config.QUEUE_PREFIX, concurrency: 8,
        }),
      );
    }
  });
  after(async () => {
    for (const w of workers) await w.close();
    await queue.obliterate({ force: true });
    await queue.close();
    for (const c of connections) c.disconnect();
    await closeDb(db);
    await dropTestDatabase(config.DATABASE_URL);
  });

  it('runs each operation once, and one at a time per cluster in request order', async () => {
    const clusters = new TenantClusterRepository(db);
    const requested = new Map<string, Operation[]>();
    for (let i = 0; i < CLUSTERS; i++) {
      const { cluster, operation } = await clusters.createWithOperation({
        tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', name: `c${i}`, region: 'westeurope', datacenter: `c${i}`,
        consulVersion: '1.8.7', tier: 'development', serverCount: 1, publicEndpoint: false, createdBy: 'test',
      });
      const ops = [operation];
      // With the params their kinds carry (the runner checks them before any step).
      for (let k = 1; k < OPS_PER_CLUSTER; k++) {
        ops.push(await clusters.addOperation(cluster, k % 2 ? 'snapshot' : 'scale', 'test', 'test', k % 2 ? { snapshotId: randomUUID() } : { toTier: 'standard', toCount: 3 }));
      }
      requested.set(cluster.id, ops);
    }
    // Enqueue in a shuffled order: the lock, not the queue, decides the order per cluster.
    const all = [...requested.values()].flat().sort(() => Math.random() - 0.5);
    await Promise.all(all.map((op) => enqueueOperation(queue, op.id, config.JOB_ATTEMPTS)));

    await waitFor('every operation to end', () => db.operation.count({ where: { state: { in: ['Queued', 'Running'] } } }), (n) => n === 0, 60_000, 100);
    assert.equal(await db.operation.count({ where: { state: 'Succeeded' } }), CLUSTERS * OPS_PER_CLUSTER);
    for (const [op, by] of runs) assert.equal(by.length, 1, `operation ${op} ran ${by.length} times`);
    assert.equal(runs.size, CLUSTERS * OPS_PER_CLUSTER);
    const byWorker = new Set([...runs.values()].flat());
    assert.deepEqual([...byWorker].sort(), ['worker-a', 'worker-b'], 'both workers took work');
    for (const [clusterId, ops] of requested) {
      const line = timeline.get(clusterId)!;
      assert.deepEqual(line.map((x) => x.op), ops.map((o) => o.id), 'request order');
      for (let k = 1; k < line.length; k++) assert.ok(line[k].start >= line[k - 1].end, 'one at a time');
    }
  });
});
