import type { ExportResult, ExportableUsage } from '../../core/src';
import type { UsageExporter } from './exporter';
import { MAX_BATCH_EVENTS, type EventOutcome, type MeteringClient, type UsageEvent } from './marketplace/client';
import { quantityHours } from './prices';

export interface MarketplaceExporterOptions {
  /** The marketplace takes events whose hour started at most this long ago (24 h). */
  windowMs?: number;
  /** First wait before sending an event again after a transient failure; doubles per attempt. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/**
 * Usage to the marketplace metering API, 25 events per batch. Every event gets
 * a stored outcome: Accepted (with the usageEventId), Duplicate (already
 * accepted earlier; the original id is kept), Expired, Failed (rejected for
 * good, flagged with the reason), or Pending with a next attempt time
 * (transient errors, 5xx, 429, timeouts). An hour already older than the
 * marketplace's 24 h window is not sent: it becomes Late, for manual billing,
 * never silently dropped. Because the API answers a repeat with Duplicate, a
 * batch sent again after a lost answer never reports an hour twice as new.
 */
export class MarketplaceUsageExporter implements UsageExporter {
  readonly name = 'marketplace';
  readonly batchSize = MAX_BATCH_EVENTS;
  private readonly windowMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly client: MeteringClient, opts: MarketplaceExporterOptions = {}) {
    this.windowMs = opts.windowMs ?? 24 * 3_600_000;
    this.retryBaseMs = opts.retryBaseMs ?? 60_000;
    this.retryMaxMs = opts.retryMaxMs ?? 30 * 60_000;
  }

  static event(r: ExportableUsage): UsageEvent {
    return { resourceId: r.resourceId, quantity: quantityHours(r.minutes), dimension: r.dimension, effectiveStartTime: r.hour.toISOString(), planId: r.planId };
  }

  async export(records: ExportableUsage[], now: Date): Promise<ExportResult[]> {
    const results: ExportResult[] = [];
    const send: ExportableUsage[] = [];
    for (const r of records) {
      if (r.hour.getTime() < now.getTime() - this.windowMs) {
        results.push({ id: r.id, state: 'Late', status: 'OutsideWindow', error: `the hour ${r.hour.toISOString()} is older than the marketplace's 24 h window; bill it by hand` });
      } else {
        send.push(r);
      }
    }
    if (send.length === 0) return results;
    let outcomes: EventOutcome[];
    try {
      outcomes = await this.client.batchUsageEvent(send.map(MarketplaceUsageExporter.event));
    } catch (e) {
      // A configuration or protocol problem: nothing was settled; every event is tried again later.
      const message = (e as Error).message;
      outcomes = send.map(() => ({ kind: 'retry', status: (e as Error).name || 'Error', message }));
    }
    send.forEach((r, i) => results.push(this.settle(r, outcomes[i], now)));
    return results;
  }

  private settle(r: ExportableUsage, o: EventOutcome | undefined, now: Date): ExportResult {
    if (!o) return { id: r.id, state: 'Pending', status: 'NoAnswer', error: 'no outcome for this event', nextAttemptAt: this.next(r, now) };
    switch (o.kind) {
      case 'accepted':
        return { id: r.id, state: 'Accepted', status: o.status, usageEventId: o.usageEventId, error: null };
      case 'duplicate':
        return { id: r.id, state: 'Duplicate', status: o.status, usageEventId: o.usageEventId, error: null };
      case 'expired':
        return { id: r.id, state: 'Expired', status: o.status, error: 'the marketplace answered Expired (older than 24 h); bill it by hand' };
      case 'rejected':
        return { id: r.id, state: 'Failed', status: o.status, error: o.message };
      case 'retry':
        return { id: r.id, state: 'Pending', status: o.status, error: o.message, nextAttemptAt: this.next(r, now) };
    }
  }

  private next(r: ExportableUsage, now: Date): Date {
    const wait = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(r.exportAttempts, 16));
    return new Date(now.getTime() + wait);
  }
}
