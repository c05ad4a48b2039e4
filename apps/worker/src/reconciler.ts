import { Logger } from '@nestjs/common';
import {
  ClusterRepository, OperationRepository, enqueueOperation, operationJobId, type OperationsQueue,
} from '../../../libs/core/src';

/**
 * The operation rows are the truth. Every unfinished operation must have a live
 * job: after a Redis restart that lost jobs, or an API that wrote the rows but
 * could not reach Redis, the reconciler puts the job back.
 */
export class Reconciler {
  private readonly log = new Logger('reconciler');

  constructor(
    private readonly operations: OperationRepository,
    private readonly clusters: ClusterRepository,
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
  ) {}

  async reconcile(): Promise<{ requeued: number; failed: number }> {
    let requeued = 0;
    let failed = 0;
    for (const op of await this.operations.listUnfinished()) {
      const job = await this.queue.getJob(operationJobId(op.id));
      if (!job) {
        await enqueueOperation(this.queue, op.id, this.attempts);
        requeued++;
        continue;
      }
      const state = await job.getState();
      if (state === 'failed' || state === 'completed') {
        // The job ended without the operation ending (e.g. it stalled too often): end it visibly.
        const fresh = await this.operations.get(op.id);
        if (fresh && (fresh.state === 'Queued' || fresh.state === 'Running')) {
          await this.operations.fail(op.id, { code: 'worker_lost', message: `the job ended (${state}) without finishing: ${job.failedReason ?? 'no reason recorded'}` });
          await this.clusters.releaseLock(fresh.clusterId, op.id);
          failed++;
        }
      }
    }
    if (requeued || failed) this.log.warn({ msg: 'reconciled operations', requeued, failed });
    return { requeued, failed };
  }
}
