import { Logger } from '@nestjs/common';
import {
  ClusterRepository, ClusterState, OperationRepository, SnapshotRepository, TERMINAL_OPERATION_STATES, WaveRepository,
  enqueueOperation, requestClusterAction, type OperationsQueue, type WaveAction, type WaveWithItems,
} from '../../../libs/core/src';

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
    for (const item of initial.items.filter((i) => i.state === 'Running' && i.operationId)) {
      const op = await this.operations.get(item.operationId!);
      if (op && TERMINAL_OPERATION_STATES.has(op.state)) await this.waves.finishItem(item.waveId, item.position, op.state === 'Succeeded' ? 'Succeeded' : 'Failed');
    }
    const wave = (await this.waves.get(initial.id))!;
    const failed = wave.items.filter((i) => i.state === 'Failed').length;
    if (failed > wave.maxFailures) {
      for (const i of wave.items.filter((x) => x.state === 'Pending')) await this.waves.finishItem(wave.id, i.position, 'Skipped');
      if (!wave.items.some((i) => i.state === 'Running')) {
        await this.waves.finish(wave.id, 'Halted', `${failed} failure(s), more than maxFailures ${wave.maxFailures}`);
        this.log.warn({ msg: 'wave halted', waveId: wave.id, failed });
      }
      return;
    }
    const canariesDone = wave.items.filter((i) => i.canary).every((i) => !['Pending', 'Running'].includes(i.state));
    let inFlight = wave.items.filter((i) => i.state === 'Running').length;
    const candidates = wave.items.filter((i) => i.state === 'Pending' && (canariesDone || i.canary));
    for (const item of candidates) {
      if (inFlight >= wave.maxInFlight) break;
      const cluster = await this.clusters.get(item.clusterId);
      if (!cluster || cluster.state !== ClusterState.Running) {
        await this.waves.finishItem(wave.id, item.position, 'Skipped');
        continue;
      }
      const op = await requestClusterAction(this.clusters, this.snapshots, cluster, wave.action as WaveAction, { ...(wave.params as object), name: `wave ${wave.id.slice(0, 8)}` }, `wave:${wave.id}`);
      if (await this.waves.start(wave.id, item.position, op.id)) {
        await enqueueOperation(this.queue, op.id, this.attempts).catch(() => undefined); // the reconciler enqueues it otherwise
        inFlight++;
      } else {
        await this.operations.cancelQueued(op, 'wave-driver'); // another driver started this item first
      }
    }
    const now = (await this.waves.get(wave.id))!;
    if (now.items.every((i) => !['Pending', 'Running'].includes(i.state))) {
      const f = now.items.filter((i) => i.state === 'Failed').length;
      await this.waves.finish(wave.id, 'Succeeded', f ? `${f} failure(s), within maxFailures ${wave.maxFailures}` : null);
    }
  }
}
