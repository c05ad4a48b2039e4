import type { CloseHoursResult, ExportableUsage, UsageRepository } from '../../core/src';
import { PRICES } from './prices';

export interface MeterOptions {
  /** An hour is closed this long after it ends. */
  graceMs: number;
  planId: string;
}

/**
 * Hourly metering: turns billing segments (when each cluster was billable, on
 * which dimension) into one usage record per (cluster, dimension, hour) once the
 * hour has closed. Minutes are whole: a segment counts from the minute it
 * started to the minute it ended (both truncated), so the minutes of a
 * cluster's hours add up exactly to its billable lifetime in minutes.
 */
export class Meter {
  constructor(private readonly usage: UsageRepository, private readonly opts: MeterOptions) {}

  closeHours(now: Date): Promise<CloseHoursResult> {
    return this.usage.closeHours(now, { graceMs: this.opts.graceMs, planId: this.opts.planId, prices: PRICES });
  }

  /** closeHours an hour at a time, each hour's new records yielded as it commits, leased until `leaseUntil` to the exporter that sends them. */
  closeHoursLeased(now: Date, leaseUntil: Date): AsyncGenerator<ExportableUsage[], CloseHoursResult, void> {
    return this.usage.closeHoursLeased(now, { graceMs: this.opts.graceMs, planId: this.opts.planId, prices: PRICES, leaseUntil });
  }
}

export interface MinutePiece {
  dimension: string;
  /** ms since epoch of the UTC hour's start. */
  hour: number;
  minutes: number;
}

/**
 * The reference split, in plain code: what the SQL in closeHours computes, for
 * property tests and documentation. Segments: [start, end) in ms, end null = open.
 */
export function splitIntoHours(segments: ReadonlyArray<{ dimension: string; start: number; end: number | null }>, closedThrough: number): MinutePiece[] {
  const MIN = 60_000;
  const HOUR = 3_600_000;
  const out = new Map<string, MinutePiece>();
  for (const s of segments) {
    const a = Math.floor(s.start / MIN) * MIN;
    const b = Math.min(s.end === null ? Infinity : Math.floor(s.end / MIN) * MIN, closedThrough);
    for (let h = Math.floor(a / HOUR) * HOUR; h < b; h += HOUR) {
      const minutes = (Math.min(b, h + HOUR) - Math.max(a, h)) / MIN;
      if (minutes <= 0) continue;
      const key = `${s.dimension}|${h}`;
      const p = out.get(key) ?? { dimension: s.dimension, hour: h, minutes: 0 };
      p.minutes += minutes;
      out.set(key, p);
    }
  }
  return [...out.values()].sort((x, y) => x.hour - y.hour || x.dimension.localeCompare(y.dimension));
}
