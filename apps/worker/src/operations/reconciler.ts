import { Logger } from '@nestjs/common';
import {
  ClusterRepository, OperationRepository, enqueueOperation, operationJobId, type OperationsQueue,
} from '../../../../libs/core/src';

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

  async reconcile(): Promise<{ requeued: number; failed: number; unlocked: number }> {
    let requeued = 0;
    let failed = 0;
    // The sweeper: no cluster stays locked by an operation that has ended (or is gone).
    const unlocked = (await this.clusters.releaseLocksOfEndedOperations()).length;
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
        // Only when no runner holds a live lease on it (fail frees the cluster's lock in the same statement).
        if (await this.operations.fail(op.id, { code: 'worker_lost', message: `the job ended (${state}) without finishing: ${job.failedReason ?? 'no reason recorded'}` }, null)) failed++;
      }
    }
    if (requeued || failed || unlocked) this.log.warn({ msg: 'reconciled operations', requeued, failed, unlocked });
    return { requeued, failed, unlocked };
  }
}
