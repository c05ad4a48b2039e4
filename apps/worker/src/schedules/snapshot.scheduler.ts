import { Logger } from '@nestjs/common';
import { SnapshotScheduleRepository, dispatchOperation, type OperationsQueue } from '../../../../libs/core/src';

/**
 * Queues each cluster's scheduled snapshot when its interval has passed. The
 * worker ticks it on the wall clock; tests tick it with the time they choose.
 * Pruning by retention happens in the snapshot operation itself.
 */
export class SnapshotScheduler {
  private readonly log = new Logger('snapshot-scheduler');

  constructor(private readonly schedule: SnapshotScheduleRepository, private readonly queue: OperationsQueue, private readonly attempts: number) {}

  async tick(now: Date = new Date()): Promise<number> {
    const due = await this.schedule.claimDue(now);
    for (const d of due) {
      // If Redis is down now, the reconciler enqueues it later: the rows are written.
      await dispatchOperation(this.queue, d.operationId, this.attempts, this.log);
    }
    if (due.length) this.log.log({ msg: 'scheduled snapshots queued', count: due.length });
    return due.length;
  }
}
