import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import {
  SnapshotRepository, TERMINAL_OPERATION_STATES, WaveRepository, isMutating, operationJobId, planClusterAction, waveSkipReason,
  type ItemStart, type OperationKind, type OperationsQueue, type Wave, type PendingItem, type WaveAction,
} from '../../../../libs/core/src';

/**
 * Items started in one statement, their jobs put on the queue together
 * (queue.addBulk). The first chunk is small so that workers start at once; a
 * chunk's jobs are added while the next chunk's statement runs.
 */
const START_BATCHES = [50, 200];
/** After an operation of a wave ends, the driver looks again this soon (once for all that end meanwhile). */
const NUDGE_DELAY_MS = 50;

/**
 * Advances maintenance waves: canaries first; once they are all done, the rest
 * with at most maxInFlight running at a time; halts (starts nothing more) as
 * soon as failures pass maxFailures. Every tick is idempotent, and starting
 * items is one conditional statement, so several workers may tick at once.
 * A tick reads counts and only the items it may start, not the whole wave.
 *
 * Ticks run every WAVE_TICK_MS, and soon after an operation of a wave ends
 * (nudge), so the next items start, and the wave ends, without waiting a tick.
 */
export class WaveDriver {
  private readonly log = new Logger('waves');
  private current?: Promise<void>;
  private again = false;
  /** A full pass (every running item's operation checked) is due: the periodic tick, or a tick asked for directly. */
  private fullDue = false;
  /** Operations of waves that ended in this process since the last pass: a nudged pass checks only these. */
  private ended = new Set<string>();
  private nudgeTimer?: NodeJS.Timeout;
  /** Items the last pass left Running, over all waves: once as many operations have ended here, there is nothing to wait for. */
  private runningAfterPass = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly waves: WaveRepository,
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
  ) {}

  /** One pass over the running waves; a call while one runs makes it run once more and waits for that. */
  tick(): Promise<void> {
    this.fullDue = true;
    return this.pass();
  }

  private pass(): Promise<void> {
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          const full = this.fullDue;
          this.fullDue = false;
          const ended = [...this.ended];
          this.ended.clear();
          let running = 0;
          for (const wave of await this.waves.listRunningWaves()) running += await this.advance(wave, full ? undefined : ended);
          this.runningAfterPass = running;
          // The last ones ended while this pass ran (their nudges saw the count before it): once more now, not after the nudge's wait.
          if (running > 0 && this.ended.size >= running) {
            this.again = true;
            clearTimeout(this.nudgeTimer);
            this.nudgeTimer = undefined;
          }
        } while (this.again && !this.closed);
      } finally {
        this.current = undefined;
      }
    })();
    return this.current;
  }

  /**
   * An operation of a wave ended here: a pass soon, which checks the operations
   * that ended since the last one. At once when as many have ended here as the
   * last pass left running (the last of a wave, on one worker): nothing more to
   * gather, and the wave ends without the wait.
   */
  nudge(operationId: string): void {
    this.ended.add(operationId);
    if (this.closed) return;
    const all = this.runningAfterPass > 0 && this.ended.size >= this.runningAfterPass;
    if (this.nudgeTimer && !all) return;
    clearTimeout(this.nudgeTimer);
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = undefined;
      this.pass().catch((e: unknown) => this.log.warn({ msg: 'wave tick failed', error: (e as Error).message }));
    }, all ? 0 : NUDGE_DELAY_MS);
    this.nudgeTimer.unref();
  }

  /** Called when this driver ends a wave (Succeeded or Halted). */
  onWaveEnded?: (waveId: string, state: 'Succeeded' | 'Halted') => void;

  close(): void {
    this.closed = true;
    if (this.nudgeTimer) clearTimeout(this.nudgeTimer);
  }

  /** One step of a wave; returns how many of its items are left Running. */
  private async advance(wave: Wave, endedHere?: string[]): Promise<number> {
    // Items whose operations ended, marked in one statement: all of the wave's running items on a full pass, else those that ended here.
    await this.waves.syncEnded(wave.id, [...TERMINAL_OPERATION_STATES], endedHere);
    let c = await this.waves.counts(wave.id);
    if (c.Failed > wave.maxFailures) {
      if (c.Pending) await this.waves.skipPending(wave.id);
      if (!c.Running) {
        if (await this.waves.finish(wave.id, 'Halted', `${c.Failed} failure(s), more than maxFailures ${wave.maxFailures}`)) {
          this.log.warn({ msg: 'wave halted', waveId: wave.id, failed: c.Failed });
          this.onWaveEnded?.(wave.id, 'Halted');
        }
      }
      return c.Running;
    }
    const canariesDone = c.canariesUnfinished === 0;
    const room = wave.maxInFlight - c.Running;
    if (room > 0 && (canariesDone ? c.Pending : c.canariesPending) > 0) {
      const candidates = await this.waves.pendingItems(wave.id, { canariesOnly: !canariesDone, limit: room });
      let adding: Promise<void> = Promise.resolve();
      for (let i = 0, k = 0; i < candidates.length; k++) {
        const size = START_BATCHES[Math.min(k, START_BATCHES.length - 1)]!;
        const started = await this.start(wave, candidates.slice(i, i + size));
        i += size;
        await adding;
        adding = this.enqueue(started);
      }
      await adding;
      c = await this.waves.counts(wave.id);
    }
    if (c.Pending === 0 && c.Running === 0) {
      if (await this.waves.finish(wave.id, 'Succeeded', c.Failed ? `${c.Failed} failure(s), within maxFailures ${wave.maxFailures}` : null)) {
        this.log.log({ msg: 'wave succeeded', waveId: wave.id, succeeded: c.Succeeded, failed: c.Failed, skipped: c.Skipped });
        this.onWaveEnded?.(wave.id, 'Succeeded');
      }
    }
    return c.Running;
  }

  /** Starts a chunk of items in one statement; returns the started operations' ids. */
  private async start(wave: Wave, items: PendingItem[]): Promise<string[]> {
    const params: Record<string, unknown> = { ...(wave.params as object), name: `wave ${wave.id.slice(0, 8)}` };
    const action = wave.action as WaveAction;
    const starts: ItemStart[] = items.map((item) => {
      // A cluster that is gone or not Running is skipped by the statement itself; its plan is never written.
      const cluster = { consulVersion: item.consulVersion ?? '', upgradePin: item.upgradePin ?? 'none' };
      const plan = planClusterAction(cluster, action, params);
      // An upgrade is planned with the pin read here; the statement starts or skips it only if the pin is still that.
      const pin = action === 'upgrade' ? cluster.upgradePin : undefined;
      const skipReason = waveSkipReason(cluster, action, params);
      if (skipReason) {
        const details = { toVersion: params.consulVersion, fromVersion: cluster.consulVersion, pin, reason: skipReason, waveId: wave.id };
        return {
          position: item.position, clusterId: item.clusterId, operationId: randomUUID(), kind: plan.kind, mutating: false,
          params: details, auditAction: 'cluster.upgrade.skipped', skipReason, pin,
        };
      }
      return {
        position: item.position, clusterId: item.clusterId, operationId: randomUUID(), kind: plan.kind, mutating: isMutating(plan.kind as OperationKind),
        params: plan.params, auditAction: plan.auditAction, pin,
        snapshot: plan.snapshot && { ...plan.snapshot, blobKey: SnapshotRepository.blobKey(item.clusterId, plan.snapshot.id) },
      };
    });
    return (await this.waves.startItems(wave.id, `wave:${wave.id}`, starts)).started;
  }

  /** Puts the jobs of started operations on the queue together. */
  private async enqueue(started: string[]): Promise<void> {
    if (started.length === 0) return;
    await this.queue.addBulk(started.map((operationId) => ({
      name: 'run-operation' as const,
      data: { operationId },
      opts: { jobId: operationJobId(operationId), attempts: this.attempts, backoff: { type: 'exponential', delay: 1000 } },
    }))).catch(() => undefined); // the reconciler enqueues them otherwise
  }
}
