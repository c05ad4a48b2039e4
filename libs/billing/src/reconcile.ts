import type { UsageRecord } from '../../core/src';
import type { UsageEventSummary } from './marketplace/wire';
import { quantityHours } from './prices';

export interface ReconciliationEntry {
  /** The billed resource (resourceId) the marketplace sums under. */
  resourceId: string;
  dimension: string;
  /** The UTC day (yyyy-mm-dd) the marketplace sums usage by. */
  day: string;
  ours: number;
  theirs: number;
}

export interface ReconciliationReport {
  from: string;
  to: string;
  /** (resource, dimension, day) groups compared on each side. */
  compared: { ours: number; theirs: number };
  matched: number;
  /** We hold accepted usage the marketplace does not list. */
  missing: ReconciliationEntry[];
  /** The marketplace lists usage we never had accepted. */
  extra: ReconciliationEntry[];
  /** Both sides have the group, with different quantities. */
  mismatched: ReconciliationEntry[];
  /** Our records not (yet) billed through the marketplace, by export state (Pending, Late, Expired, Failed). */
  unbilled: Record<string, number>;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * Compares our usage records for a period with what the marketplace lists
 * (`GET /api/usageEvents`, one entry per resource, dimension and day). Only
 * records the marketplace accepted (Accepted, Duplicate) are expected there.
 */
export function reconcile(from: Date, to: Date, records: readonly UsageRecord[], theirs: readonly UsageEventSummary[]): ReconciliationReport {
  const key = (resource: string, dimension: string, day: string) => `${resource.toLowerCase()}|${dimension}|${day}`;
  const ourGroups = new Map<string, ReconciliationEntry>();
  const unbilled: Record<string, number> = {};
  for (const r of records) {
    if (r.exportState !== 'Accepted' && r.exportState !== 'Duplicate') {
      unbilled[r.exportState] = (unbilled[r.exportState] ?? 0) + 1;
      continue;
    }
    const day = r.hour.toISOString().slice(0, 10);
    const k = key(r.resourceId, r.dimension, day);
    const g = ourGroups.get(k) ?? { resourceId: r.resourceId, dimension: r.dimension, day, ours: 0, theirs: 0 };
    g.ours = round6(g.ours + quantityHours(r.minutes));
    ourGroups.set(k, g);
  }
  const theirGroups = new Map<string, ReconciliationEntry>();
  for (const t of theirs) {
    const day = t.usageDate.slice(0, 10);
    const k = key(t.usageResourceId, t.dimension, day);
    const g = theirGroups.get(k) ?? { resourceId: t.usageResourceId, dimension: t.dimension, day, ours: 0, theirs: 0 };
    g.theirs = round6(g.theirs + t.submittedQuantity);
    theirGroups.set(k, g);
  }
  const report: ReconciliationReport = {
    from: from.toISOString(),
    to: to.toISOString(),
    compared: { ours: ourGroups.size, theirs: theirGroups.size },
    matched: 0,
    missing: [],
    extra: [],
    mismatched: [],
    unbilled,
  };
  for (const [k, g] of ourGroups) {
    const t = theirGroups.get(k);
    if (!t) report.missing.push(g);
    else if (Math.abs(t.theirs - g.ours) > 1e-6) report.mismatched.push({ ...g, theirs: t.theirs });
    else report.matched += 1;
  }
  for (const [k, t] of theirGroups) if (!ourGroups.has(k)) report.extra.push(t);
  return report;
}
