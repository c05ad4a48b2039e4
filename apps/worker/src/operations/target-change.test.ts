import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Worker, type Job } from 'bullmq';
import {
  ClusterRepository, OPERATIONS_QUEUE, OperationRepository, TenantClusterRepository, closeDb, createDb, createOperationsQueue, createRedis,
  enqueueOperation, operationJobId, type Config, type Db, type JobPayloads, type OperationKind, type OperationsQueue,
} from '../../../../libs/core/src';
import type { ClusterSpec, Progress, Target } from '../../../../libs/provisioner/src';
import { dropTestDatabase, testConfig, waitFor } from '../../../../test/support/stack';
import { ClusterTarget } from './cluster-target';
import type { Flow } from './flows/flow';
import { OperationRunner } from './operation.runner';
import { TARGET_CHANGE_DEADLINE_MS, TargetChangeInProgress } from './target-change';
import { rowOnlyContexts } from '../../../../test/support/cluster-contexts';

const TENANT = 'eeeeeeee-0000-4000-8000-000000000021';
/** Longer than the whole test: a handed-back job waits in the delayed set until the test promotes it ("time has passed"). */
const RETRY_AFTER_MS = 10 * 60_000;

/**
 * The hosts of the test's clusters: each cluster's change answers in-progress
 * (as an ARM deployment does) for as many asks as the test says, then ready.
 * Only what the tests call.
 */
class SlowDeployments {
  readonly asks = new Map<string, number>();
  private readonly plans = new Map<string, { inProgressAnswers: number; retryAfterMs: number }>();

  plan(clusterId: string, inProgressAnswers: number, retryAfterMs = RETRY_AFTER_MS): void {
    this.plans.set(clusterId, { inProgressAnswers, retryAfterMs });
  }

  private async ask(spec: ClusterSpec): Promise<Progress> {
    const n = (this.asks.get(spec.clusterId) ?? 0) + 1;
    this.asks.set(spec.clusterId, n);
    const plan = this.plans.get(spec.clusterId) ?? { inProgressAnswers: 0, retryAfterMs: RETRY_AFTER_MS };
    if (n > plan.inProgressAnswers) return { state: 'ready', detail: `deployment of ${spec.datacenter} succeeded` };
    return { state: 'in-progress', detail: `deployment of ${spec.datacenter}: Running`, retryAfterMs: plan.retryAfterMs };
  }

  readonly target = {
    kind: 'azure',
    ensureInfrastructure: (spec: ClusterSpec) => this.ask(spec),
    putServer: (spec: ClusterSpec) => this.ask(spec),
  } as unknown as Target;
}

/** ClusterTarget with the test's hosts for every cluster (settle, the code under test, is ClusterTarget's own). */
class OnSlowHosts extends ClusterTarget {
  constructor(config: Config, clusters: ClusterRepository, private readonly slow: SlowDeployments) {
    super(config, clusters, undefined as never);
  }

  override async hosts(): Promise<Target> {
    return this.slow.target;
  }
}

// Long target changes against real Postgres and Redis: the job is handed back to
// the queue between polls (DelayedError) and resumed at its step by any worker.
describe('long target changes', () => {
  let config: Config;
  let db: Db;
  let clusters: ClusterRepository;
  let tenantClusters: TenantClusterRepository;
  let operations: OperationRepository;
  let queue: OperationsQueue;
  let target: OnSlowHosts;
  const slow = new SlowDeployments();
  const connections: ReturnType<typeof createRedis>[] = [];
  const workers: { worker: Worker; runner: OperationRunner }[] = [];
  /** Per cluster, what its operations did, in order. */
  const events = new Map<string, string[]>();
  const record = (clusterId: string, event: string) => {
    events.set(clusterId, [...(events.get(clusterId) ?? []), event]);
  };
  const redis = (forWorker: boolean) => {
    const c = createRedis(config.REDIS_URL, forWorker);
    connections.push(c);
    return c;
  };

  const flow: Flow = {
    steps: ({ cluster, operation }) => [
      { name: 'prepare', run: async () => record(cluster.id, `${operation.kind}:prepare`) },
      {
        name: 'deploy',
        run: async () => {
          await target.ensureInfrastructure({ clusterId: cluster.id, datacenter: cluster.datacenter, consulVersion: cluster.consulVersion, servers: [] });
          return 'infrastructure in place';
        },
      },
      { name: 'finish', run: async () => record(cluster.id, `${operation.kind}:finish`) },
    ],
    succeeded: async () => undefined,
    failed: async () => undefined,
  };

  /**
   * One worker replica: its own runner and one job at a time. `diesAtMoveToDelayed`:
   * the process stops right after writing a hand-back, before the job reaches the
   * delayed set (its move never returns; the test then closes the worker by force).
   */
  function startWorker(owner: string, opts: { diesAtMoveToDelayed?: boolean } = {}) {
    const runner = new OperationRunner(operations, clusters, { create: flow, delete: flow } as Record<OperationKind, Flow>, { owner, leaseMs: config.OPERATION_LEASE_MS, open: rowOnlyContexts(clusters) });
    const worker = new Worker(OPERATIONS_QUEUE, (job: Job<JobPayloads['run-operation']>, token?: string) => {
      if (opts.diesAtMoveToDelayed) job.moveToDelayed = () => new Promise<void>(() => undefined);
      return runner.run(job, token);
    }, {
      connection: redis(true),
      prefix: config.QUEUE_PREFIX,
      concurrency: 1,
      lockDuration: config.JOB_LOCK_MS,
      stalledInterval: 500,
    });
    const w = { worker, runner };
    workers.push(w);
    return w;
  }
  async function stopWorker(w: { worker: Worker; runner: OperationRunner }, force = false) {
    await w.worker.close(force);
    w.runner.close();
    workers.splice(workers.indexOf(w), 1);
  }

  before(async () => {
    config = await testConfig();
    db = createDb(config.DATABASE_URL, 4);
    clusters = new ClusterRepository(db);
    tenantClusters = new TenantClusterRepository(db);
    operations = new OperationRepository(db);
    queue = createOperationsQueue(redis(false), config.QUEUE_PREFIX);
    target = new OnSlowHosts(config, clusters, slow);
  });
  after(async () => {
    for (const w of [...workers]) await stopWorker(w, true);
    await queue.obliterate({ force: true });
    await queue.close();
    // BullMQ does not close connections it was given.
    for (const c of connections) c.disconnect();
    target.close();
    await closeDb(db);
    await dropTestDatabase(config.DATABASE_URL);
  });

  async function newCluster(name: string, inProgressAnswers: number) {
    const made = await tenantClusters.createWithOperation({
      tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', name, region: 'westeurope', datacenter: name,
      consulVersion: '1.8.7', tier: 'development', serverCount: 1, publicEndpoint: false, createdBy: 'test',
    });
    slow.plan(made.cluster.id, inProgressAnswers);
    return made;
  }
  const job = async (operationId: string) => (await queue.getJob(operationJobId(operationId)))!;
  /** The job waits in the delayed set after `asks` asks of its cluster's change (a hand-back, not a lock wait). */
  const handedBack = (operationId: string, clusterId: string, asks: number) =>
    waitFor(`operation ${operationId} handed back after ask ${asks}`, async () => ({ state: await (await job(operationId)).getState(), asks: slow.asks.get(clusterId) ?? 0 }),
      (s) => s.state === 'delayed' && s.asks === asks, 30_000, 25);
  const ended = (id: string) => waitFor(`operation ${id} to end`, () => operations.get(id), (o) => !!o && ['Succeeded', 'Failed', 'Canceled'].includes(o.state), 30_000, 25);
  const stepsOf = (o: { steps: unknown }) => o.steps as { name: string; state: string; detail?: string; startedAt: string }[];

  it('hands a change still in progress back to the queue between polls (no slot, no lease, no attempt) and resumes at its step on any worker', async () => {
    const a = startWorker('replica-a');
    const { cluster, operation } = await newCluster('long-deploy', 2);
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    await handedBack(operation.id, cluster.id, 1);

    const waiting = (await operations.get(operation.id))!;
    assert.equal(waiting.state, 'Running', 'not a failure: the operation still runs');
    assert.equal(waiting.leaseUntil, null, 'no lease held while the job waits');
    assert.equal(waiting.claimId, null, 'no claim either: any worker may take it at once');
    assert.equal(waiting.attempts, 1);
    assert.equal(waiting.resumeStep, 'deploy');
    assert.equal(waiting.currentStep, 'deploy');
    assert.equal(waiting.targetChange, `the infrastructure of cluster ${cluster.id}`);
    assert.ok(waiting.targetChangeSince, 'the change\'s start is kept for its deadline');
    assert.deepEqual(stepsOf(waiting).map((s) => [s.name, s.state, s.detail]), [
      ['prepare', 'Succeeded', undefined],
      ['deploy', 'Running', 'waiting: deployment of long-deploy: Running'],
    ]);
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, operation.id, 'the cluster stays locked by the operation');
    const delayed = await job(operation.id);
    assert.equal(delayed.attemptsMade, 0, 'a hand-back uses none of the job\'s attempts');
    assert.ok(delayed.delay > RETRY_AFTER_MS - 60_000 && delayed.delay <= RETRY_AFTER_MS, `delayed by the target's retry-after (${delayed.delay} ms)`);
    assert.equal(await queue.getActiveCount(), 0, 'no worker slot is held');

    // A later mutating operation of the cluster is refused its turn while the job is away.
    const del = await tenantClusters.addOperation((await clusters.get(cluster.id))!, 'delete', 'test', 'cluster.delete.requested');
    await enqueueOperation(queue, del.id, config.JOB_ATTEMPTS);
    // The only slot of this one-job-at-a-time worker is free: another cluster's operation runs meanwhile.
    const other = await newCluster('meanwhile', 0);
    await enqueueOperation(queue, other.operation.id, config.JOB_ATTEMPTS);
    assert.equal((await ended(other.operation.id))!.state, 'Succeeded');
    await waitFor('the delete to have asked for the cluster', () => job(del.id), (j) => j.attemptsStarted > 0, 30_000, 25);
    assert.equal((await operations.get(del.id))!.state, 'Queued', 'the delete did not slip in');

    // The replica that handed the job back goes away; another one takes it when it is due.
    await stopWorker(a);
    const b = startWorker('replica-b');
    await delayed.promote();
    await handedBack(operation.id, cluster.id, 2);
    const again = (await operations.get(operation.id))!;
    assert.equal(again.claimedBy, 'replica-b');
    assert.equal(again.attempts, 1, 'the resumed claim counted no attempt');
    assert.deepEqual(again.targetChangeSince, waiting.targetChangeSince, 'the same change keeps its start across hand-backs');
    assert.deepEqual(events.get(cluster.id), ['create:prepare'], 'resumed at deploy: prepare did not run again');
    assert.equal((await job(operation.id)).attemptsMade, 0);

    await (await job(operation.id)).promote();
    const done = (await ended(operation.id))!;
    assert.equal(done.state, 'Succeeded');
    assert.equal(done.attempts, 1);
    assert.equal(slow.asks.get(cluster.id), 3, 'asked once per run of the step, never deployed twice');
    assert.deepEqual(stepsOf(done).map((s) => [s.name, s.state, s.detail]), [
      ['prepare', 'Succeeded', undefined],
      ['deploy', 'Succeeded', 'infrastructure in place'],
      ['finish', 'Succeeded', undefined],
    ]);
    assert.equal(stepsOf(done)[1]!.startedAt, stepsOf(waiting)[1]!.startedAt, 'the step\'s start is its first run\'s');
    assert.equal((await ended(del.id))!.state, 'Succeeded');
    assert.deepEqual(events.get(cluster.id), ['create:prepare', 'create:finish', 'delete:prepare', 'delete:finish']);
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, null);
    await stopWorker(b);
  });

  it('fails the operation, for good and saying why, when the change is still in progress past its deadline', async () => {
    const w = startWorker('replica-deadline');
    const { cluster, operation } = await newCluster('stuck-deploy', Infinity);
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    await handedBack(operation.id, cluster.id, 1);
    // The change began longer ago than the deadline (as after two hours of hand-backs, or on a worker restarted since).
    await db.operation.update({ where: { id: operation.id }, data: { targetChangeSince: new Date(Date.now() - TARGET_CHANGE_DEADLINE_MS - 60_000) } });
    await (await job(operation.id)).promote();
    const done = (await ended(operation.id))!;
    assert.equal(done.state, 'Failed');
    const error = done.error as { code: string; message: string };
    assert.equal(error.code, 'target_change_timeout');
    assert.equal(error.message,
      `deploy: the infrastructure of cluster ${cluster.id} still in progress after ${TARGET_CHANGE_DEADLINE_MS / 60_000 + 1} min (deployment of stuck-deploy: Running); a target change may take at most ${TARGET_CHANGE_DEADLINE_MS / 60_000} min`);
    assert.deepEqual(stepsOf(done).map((s) => [s.name, s.state]), [['prepare', 'Succeeded'], ['deploy', 'Failed']]);
    assert.equal(slow.asks.get(cluster.id), 2, 'not retried: a retry would resume the same change, past its deadline');
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, null, 'the cluster is free again');
    await stopWorker(w);
  });

  it('a worker that dies between writing its hand-back and delaying the job leaves the operation to the next worker', async () => {
    const dying = startWorker('replica-dies', { diesAtMoveToDelayed: true });
    const { cluster, operation } = await newCluster('orphaned-hand-back', 1);
    await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
    await waitFor('the hand-back written', () => operations.get(operation.id), (o) => o?.resumeStep === 'deploy' && o.claimId === null, 30_000, 25);
    assert.equal(await (await job(operation.id)).getState(), 'active', 'the job never reached the delayed set');
    // The process is gone: its job's lock is no longer renewed, and the next worker finds the job stalled.
    await stopWorker(dying, true);
    const next = startWorker('replica-next');
    const done = (await ended(operation.id))!;
    assert.equal(done.state, 'Succeeded');
    assert.equal(done.claimedBy, 'replica-next');
    assert.equal(done.attempts, 1, 'resumed, not retried');
    assert.deepEqual(events.get(cluster.id), ['create:prepare', 'create:finish'], 'prepare ran once');
    assert.equal(slow.asks.get(cluster.id), 2);
    await stopWorker(next);
  });

  it('asks about a server change until done within the step when the caller says so (an upgrade\'s roll), else hands it back', async () => {
    const spec = (datacenter: string): ClusterSpec => ({ clusterId: randomUUID(), datacenter, consulVersion: '1.8.7', servers: [] });
    const quick = spec('rolled-in-step');
    slow.plan(quick.clusterId, 2, 20);
    await target.putServer(quick, undefined as never, 0, { withinStep: true });
    assert.equal(slow.asks.get(quick.clusterId), 3);
    const handed = spec('rolled-later');
    slow.plan(handed.clusterId, 1);
    await assert.rejects(target.putServer(handed, undefined as never, 0), (e) => e instanceof TargetChangeInProgress && e.change === `server 0 of cluster ${handed.clusterId} on its config` && e.retryAfterMs === RETRY_AFTER_MS);
    assert.equal(slow.asks.get(handed.clusterId), 1, 'asked once: its retry-after is past the in-step wait');
  });
});
