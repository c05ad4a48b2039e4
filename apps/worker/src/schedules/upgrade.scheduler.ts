import { Logger } from '@nestjs/common';
import { dispatchOperation, type OperationsQueue, type UpgradeScheduleRepository } from '../../../../libs/core/src';

/**
 * Automatic upgrades: queues an upgrade to the catalog's RECOMMENDED version
 * for each Running cluster with mode automatic whose maintenance window is
 * open at `now`, at most once per window occurrence (the claim is a
 * conditional UPDATE, so several workers may tick at once). A cluster whose
 * upgrade pin excludes that version is skipped for the occurrence, with the
 * reason logged and in its events. The worker ticks it on the wall clock every
 * UPGRADE_TICK_MS; tests tick it with the time they choose. Returns how many it queued.
 */
export class UpgradeScheduler {
  private readonly log = new Logger('upgrade-scheduler');

  constructor(
    private readonly schedule: UpgradeScheduleRepository,
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
    private readonly recommended: string,
  ) {}

  async tick(now: Date = new Date()): Promise<number> {
    const { queued, skipped } = await this.schedule.claimDue(now, this.recommended);
    for (const k of skipped) {
      this.log.log({ msg: 'automatic upgrade skipped', clusterId: k.clusterId, from: k.fromVersion, to: k.toVersion, reason: k.reason, windowOpenedAt: k.windowOpenedAt.toISOString() });
    }
    for (const q of queued) {
      this.log.log({ msg: 'automatic upgrade queued', clusterId: q.clusterId, operationId: q.operationId, from: q.fromVersion, to: q.toVersion, windowOpenedAt: q.windowOpenedAt.toISOString() });
      // If Redis is down now, the reconciler enqueues it later: the rows are written.
      await dispatchOperation(this.queue, q.operationId, this.attempts, this.log);
    }
    return queued.length;
  }
}
