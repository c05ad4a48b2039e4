import type { CloseHoursResult, UsageRepository } from '../../../../libs/core/src';
import { Logger } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { Meter, UsageExportDriver, type ExportRunResult } from '../../../../libs/billing/src';

const hoursClosed = new Counter({ name: 'billing_hours_closed_total', help: 'UTC hours closed into usage records' });
const recordsWritten = new Counter({ name: 'billing_usage_records_written_total', help: 'Usage records written by hourly metering' });
const exported = new Counter({ name: 'billing_usage_exported_total', help: 'Usage records handed to the exporter, by the state they ended in', labelNames: ['state'] });
const byState = new Gauge({ name: 'billing_usage_records', help: 'Usage records not billed yet, by export state (Pending, Late, Expired, Failed); billed records are not counted here', labelNames: ['state'] });

export interface BillingTickResult {
  closedThrough: Date;
  hoursClosed: number;
  recordsWritten: number;
  export: ExportRunResult;
}

/**
 * The worker's billing loop: close finished hours into usage records, then
 * export what is pending. The worker ticks it on the wall clock; tests tick it
 * with the time they choose. Ticks never overlap within a process; across
 * workers, the metering cursor and the export leases keep work single.
 */
export class BillingTicker {
  private readonly log = new Logger('billing');
  private running: Promise<BillingTickResult> | null = null;

  constructor(private readonly usage: UsageRepository, private readonly meter: Meter, private readonly driver: UsageExportDriver) {}

  tick(now: Date = new Date()): Promise<BillingTickResult> {
    if (this.running) return this.running;
    this.running = this.run(now).finally(() => (this.running = null));
    return this.running;
  }

  private async run(now: Date): Promise<BillingTickResult> {
    // Each hour is exported as its records commit (written leased to this driver), while the next is metered.
    const hours = this.meter.closeHoursLeased(now, this.driver.leaseUntil(now));
    let closed: CloseHoursResult | undefined;
    const metered = async function* () {
      for (;;) {
        const step = await hours.next();
        if (step.done) {
          closed = step.value;
          return;
        }
        yield step.value;
      }
    };
    const result = await this.driver.run(now, metered());
    if (!closed) throw new Error('metering did not finish');
    hoursClosed.inc(closed.hoursClosed);
    recordsWritten.inc(closed.recordsWritten);
    if (closed.hoursClosed > 1) this.log.log({ msg: 'metering caught up', hours: closed.hoursClosed, records: closed.recordsWritten, closedThrough: closed.closedThrough.toISOString() });
    for (const [state, n] of Object.entries(result.byState)) exported.inc({ state }, n);
    if (result.byState.Late) this.log.warn({ msg: 'usage too old for the marketplace (over 24 h): kept as Late for manual billing', count: result.byState.Late });
    if (result.byState.Failed) this.log.warn({ msg: 'usage rejected by the exporter: kept as Failed for review', count: result.byState.Failed });
    const counts = await this.usage.countUnbilledByState();
    byState.reset();
    for (const [state, n] of Object.entries(counts)) byState.set({ state }, n);
    return { closedThrough: closed.closedThrough, hoursClosed: closed.hoursClosed, recordsWritten: closed.recordsWritten, export: result };
  }
}
