import { Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import type { ScheduleClaim, ScheduleRunRepository } from '../../../../libs/core/src';

/** The schedulers that run once per period across all workers, by the name their ledger rows and metrics carry. */
export const SCHEDULE_NAMES = ['snapshots', 'automatic-upgrades', 'certificate-expiry', 'health', 'billing', 'token-sweep'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

const runsTotal = new Counter({
  name: 'scheduler_runs_total',
  help: 'Periods of a scheduler this worker ran to the end (summed over the workers: one per period), by schedule',
  labelNames: ['schedule'],
});

export interface PeriodicScheduleOptions {
  name: ScheduleName;
  periodMs: number;
  /** Who claims (host:pid): the ledger's claimedBy and finishedBy. */
  owner: string;
  /** The claim's lease, renewed every third of it while the run lasts. */
  leaseMs: number;
  run: () => Promise<unknown>;
}

/**
 * One scheduler, fired once per period across every worker. Each worker looks
 * four times a period (at least every 250 ms, at most every 30 s) whether the
 * current period (or one of the last few that nobody got to in time) is still
 * unclaimed, from the first period that starts after the worker did (as a
 * timer's first tick came one period after the start), and whether a run was left unfinished by a
 * worker that died (its lease lapsed): the first it can claim in the ledger
 * (ScheduleRunRepository) it runs. A process never runs one scheduler twice at
 * once. A run that throws still ends its period (logged, recorded with the
 * error): the next period tries again, as the timers did before the ledger.
 */
export class PeriodicSchedule {
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  private stopped = false;
  private startedAt = new Date();
  private lastTakeoverLook = 0;

  constructor(private readonly ledger: ScheduleRunRepository, private readonly opts: PeriodicScheduleOptions) {
    this.log = new Logger(`schedule:${opts.name}`);
  }

  start(): void {
    this.startedAt = new Date();
    const every = Math.min(30_000, Math.max(250, Math.floor(this.opts.periodMs / 4)));
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
    void this.check();
  }

  /** Stops looking; resolves once a run in flight has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One look: claims and runs a lapsed period or else the current one. Resolves when that run has ended. */
  check(): Promise<void> {
    if (this.running || this.stopped) return this.running ?? Promise.resolve();
    this.running = this.claimAndRun()
      .catch((e: unknown) => this.log.warn({ msg: 'schedule claim failed', schedule: this.opts.name, error: (e as Error).message }))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async claimAndRun(): Promise<void> {
    const { name, periodMs, owner, leaseMs } = this.opts;
    // Lapsed runs are looked for every third of a lease (one lapses a lease after its holder went quiet), the period at every look.
    let claim: ScheduleClaim | null = null;
    if (Date.now() - this.lastTakeoverLook >= leaseMs / 3) {
      this.lastTakeoverLook = Date.now();
      claim = await this.ledger.takeOverLapsed(name, owner, leaseMs);
    }
    claim ??= await this.ledger.claimDue(name, periodMs, owner, leaseMs, this.startedAt);
    if (!claim) return;
    if (claim.runs > 1) this.log.warn({ msg: 'schedule run taken over', schedule: name, periodStart: claim.periodStart.toISOString(), runs: claim.runs });
    await this.runHeld(claim);
  }

  private async runHeld(claim: ScheduleClaim): Promise<void> {
    const { name, owner, leaseMs } = this.opts;
    const heartbeat = setInterval(() => {
      this.ledger.renew(claim, leaseMs).then(
        (held) => held || this.log.warn({ msg: 'schedule run lost its lease (taken over); its end will not be recorded', schedule: name, periodStart: claim.periodStart.toISOString() }),
        (e: unknown) => this.log.warn({ msg: 'schedule lease renewal failed', schedule: name, error: (e as Error).message }),
      );
    }, Math.max(100, Math.floor(leaseMs / 3)));
    heartbeat.unref();
    let error: string | null = null;
    try {
      await this.opts.run();
    } catch (e) {
      error = (e as Error).message;
      this.log.warn({ msg: 'schedule run failed', schedule: name, error });
    } finally {
      clearInterval(heartbeat);
    }
    if (await this.ledger.finish(claim, owner, error)) runsTotal.inc({ schedule: name });
  }
}
