import { Logger } from '@nestjs/common';
import {
  ClusterRepository, ClusterState, OperationRepository, SnapshotRepository, TERMINAL_OPERATION_STATES, WaveRepository,
  operationJobId, requestClusterAction, type OperationsQueue, type WaveAction, type WaveWithItems,
} from '../../../libs/core/src';

/** Items of one tick started at a time (each writes its operation in a transaction; the pool is shared with the runner). */
const START_CONCURRENCY = 4;
/** Started items whose jobs are put on the queue together (queue.addBulk). */
const START_BATCH = 50;

type Item = WaveWithItems['items'][number];

/**
 * Advances maintenance waves: canaries first; once they are all done, the rest
 * with at most maxInFlight running at a time; halts (starts nothing more) as
 * soon as failures pass maxFailures. Every tick is idempotent, and starting an
 * item is a conditional update, so several workers may tick at once.
 */
export class WaveDriver {
  private readonly log = new Logger('waves');

  constructor(
    private readonly waves: WaveRepository,
    private readonly operations: OperationRepository,
    private readonly clusters: ClusterRepository,
    private readonly snapshots: SnapshotRepository,
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
  ) {}

  async tick(): Promise<void> {
    for (const wave of await this.waves.listRunning()) await this.advance(wave);
  }

  private async advance(initial: WaveWithItems): Promise<void> {
    // The running items' operations in one read; the ended ones marked in one write per outcome.
    const running = initial.items.filter((i) => i.state === 'Running' && i.operationId);
    if (running.length > 0) {
      const states = await this.operations.statesOf(running.map((i) => i.operationId!));
      const ended = running.filter((i) => TERMINAL_OPERATION_STATES.has(states.get(i.operationId!) ?? ''));
      const succeeded = ended.filter((i) => states.get(i.operationId!) === 'Succeeded').map((i) => i.position);
      const failed = ended.filter((i) => states.get(i.operationId!) !== 'Succeeded').map((i) => i.position);
      if (succeeded.length) await this.waves.finishItems(initial.id, succeeded, 'Succeeded');
      if (failed.length) await this.waves.finishItems(initial.id, failed, 'Failed');
    }
    const wave = (await this.waves.get(initial.id))!;
    const failed = wave.items.filter((i) => i.state === 'Failed').length;
    if (failed > wave.maxFailures) {
      const pending = wave.items.filter((x) => x.state === 'Pending').map((i) => i.position);
      if (pending.length) await this.waves.finishItems(wave.id, pending, 'Skipped');
      if (!wave.items.some((i) => i.state === 'Running')) {
        await this.waves.finish(wave.id, 'Halted', `${failed} failure(s), more than maxFailures ${wave.maxFailures}`);
        this.log.warn({ msg: 'wave halted', waveId: wave.id, failed });
      }
      return;
    }
    const canariesDone = wave.items.filter((i) => i.canary).every((i) => !['Pending', 'Running'].includes(i.state));
    let inFlight = wave.items.filter((i) => i.state === 'Running').length;
    const candidates = wave.items.filter((i) => i.state === 'Pending' && (canariesDone || i.canary));
    // A chunk at a time, never more than maxInFlight running: the chunk's items are started a few at once,
    // then the jobs of those that started are put on the queue together.
    let next = 0;
    while (next < candidates.length && inFlight < wave.maxInFlight) {
      const chunk = candidates.slice(next, next + Math.min(START_BATCH, wave.maxInFlight - inFlight));
      next += chunk.length;
      const started = (await mapLimit(chunk, START_CONCURRENCY, (item) => this.startItem(wave, item))).filter((id): id is string => id !== null);
      inFlight += started.length;
      if (started.length) {
        await this.queue.addBulk(started.map((operationId) => ({
          name: 'run-operation' as const,
          data: { operationId },
          opts: { jobId: operationJobId(operationId), attempts: this.attempts, backoff: { type: 'exponential', delay: 1000 } },
        }))).catch(() => undefined); // the reconciler enqueues them otherwise
      }
    }
    const now = (await this.waves.get(wave.id))!;
    if (now.items.every((i) => !['Pending', 'Running'].includes(i.state))) {
      const f = now.items.filter((i) => i.state === 'Failed').length;
      await this.waves.finish(wave.id, 'Succeeded', f ? `${f} failure(s), within maxFailures ${wave.maxFailures}` : null);
    }
  }

  /** Starts one item: its operation written and the item marked Running with it. Returns the operation id, or null (skipped, or another driver was first). */
  private async startItem(wave: WaveWithItems, item: Item): Promise<string | null> {
    const cluster = await this.clusters.getRaw(item.clusterId);
    if (!cluster || cluster.state !== ClusterState.Running) {
      await this.waves.finishItem(wave.id, item.position, 'Skipped');
      return null;
    }
    const op = await requestClusterAction(this.clusters, this.snapshots, cluster, wave.action as WaveAction, { ...(wave.params as object), name: `wave ${wave.id.slice(0, 8)}` }, `wave:${wave.id}`);
    if (await this.waves.start(wave.id, item.position, op.id)) return op.id;
    await this.operations.cancelQueued(op, 'wave-driver'); // another driver started this item first
    return null;
  }
}

/** Runs fn over items with at most `limit` calls in flight; results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}
