import { sqlQuery, sqlTransaction, type Db } from './prisma';
import type { UsageRecord } from '../generated/prisma/client';

export type { UsageRecord };

const HOUR_MS = 3_600_000;
const CURSOR_ID = 'hourly';

export const UsageExportState = {
  Pending: 'Pending',
  Accepted: 'Accepted',
  Duplicate: 'Duplicate',
  Expired: 'Expired',
  Late: 'Late',
  Failed: 'Failed',
} as const;
export type UsageExportState = (typeof UsageExportState)[keyof typeof UsageExportState];

/** Unbilled usage records by export state; its WHERE is the partial index's predicate (migration usage_unbilled_index). */
export const COUNT_UNBILLED_STATEMENT = `
  SELECT "exportState" AS "state", count(*)::int AS "n" FROM "UsageRecord"
  WHERE "exportState" NOT IN ('Accepted', 'Duplicate') GROUP BY 1`;

export interface DimensionPrice {
  dimension: string;
  pricePerHourMicros: bigint;
}

/** What an exporter reads of a usage record. */
export type ExportableUsage = Pick<UsageRecord, 'id' | 'clusterId' | 'clusterName' | 'tenantId' | 'subscriptionId' | 'resourceGroup' | 'resourceId'
  | 'dimension' | 'hour' | 'minutes' | 'planId' | 'unitPriceMicros' | 'exportAttempts'>;

const EXPORTABLE = ['id', 'clusterId', 'clusterName', 'tenantId', 'subscriptionId', 'resourceGroup', 'resourceId', 'dimension', 'hour', 'minutes',
  'planId', 'unitPriceMicros', 'exportAttempts'] as const;
/** ExportableUsage's columns of the UsageRecord table (as `alias`), uuids as text. */
function exportableColumns(alias: string): string {
  return EXPORTABLE.map((c) => (c === 'id' || c === 'clusterId' ? `${alias}"${c}"::text AS "${c}"` : `${alias}"${c}"`)).join(', ');
}

/**
 * Closes the hours [$1, $2) into usage records (one per cluster, dimension and hour, from the
 * billing segments; whole minutes), leased until $6 (or not leased: null); RETURNING follows.
 */
const CLOSE_HOURS_STATEMENT = `
  WITH hours AS (
    SELECT h AS "hour" FROM generate_series($1::timestamp, $2::timestamp - interval '1 hour', interval '1 hour') AS h
  ), pieces AS (
    SELECT s."clusterId", s."dimension", hours."hour",
      (EXTRACT(EPOCH FROM LEAST(date_trunc('minute', COALESCE(s."endedAt", 'infinity'::timestamp)), hours."hour" + interval '1 hour')
                        - GREATEST(date_trunc('minute', s."startedAt"), hours."hour")))::bigint / 60 AS "minutes"
    FROM "BillingSegment" s
    JOIN hours ON s."startedAt" < hours."hour" + interval '1 hour' AND (s."endedAt" IS NULL OR s."endedAt" > hours."hour")
  ), per AS (
    SELECT "clusterId", "dimension", "hour", SUM("minutes")::int AS "minutes"
    FROM pieces WHERE "minutes" > 0 GROUP BY 1, 2, 3
  )
  INSERT INTO "UsageRecord" ("id", "clusterId", "dimension", "hour", "minutes", "tenantId", "subscriptionId", "resourceGroup",
    "clusterName", "resourceId", "planId", "unitPriceMicros", "leaseUntil")
  SELECT gen_random_uuid(), per."clusterId", per."dimension", per."hour", per."minutes", c."tenantId", c."subscriptionId", c."resourceGroup",
    c."name", c."billingResourceId", COALESCE(c."billingPlanId", $3), p."price", $6::timestamp
  FROM per
  JOIN "Cluster" c ON c."id" = per."clusterId"
  JOIN unnest($4::text[], $5::text[]::bigint[]) AS p("dimension", "price") ON p."dimension" = per."dimension"
  ON CONFLICT ("clusterId", "dimension", "hour") DO NOTHING
  RETURNING `;

export interface CloseHoursOptions {
  graceMs: number;
  planId: string;
  prices: readonly DimensionPrice[];
  /** Hours closed per transaction: default 24 (1 when the records are leased to an exporter). */
  maxHoursPerChunk?: number;
}

export interface CloseHoursResult {
  /** Every hour before this has its usage records. */
  closedThrough: Date;
  hoursClosed: number;
  recordsWritten: number;
}

/** What an exporter made of one record. */
export interface ExportResult {
  id: string;
  state: UsageExportState;
  status: string | null;
  usageEventId?: string | null;
  error?: string | null;
  /** Pending records: when to try again. */
  nextAttemptAt?: Date | null;
}

export interface UsageLine {
  subscriptionId: string;
  resourceGroup: string;
  clusterId: string;
  clusterName: string;
  dimension: string;
  unitPriceMicros: bigint;
  minutes: bigint;
}

export function floorHour(t: Date): Date {
  return new Date(Math.floor(t.getTime() / HOUR_MS) * HOUR_MS);
}

/**
 * Whose usage a read is of: one tenant's, or the whole fleet's, which only the operator's billing
 * routes read (Platform.SRE of the operator tenant). Always said: a read that names neither does
 * not compile.
 */
export type UsageScope = { tenantId: string } | 'fleet';

function tenantOf(scope: UsageScope): string | null {
  return scope === 'fleet' ? null : scope.tenantId;
}

/**
 * Usage records: one per (cluster, dimension, UTC hour), made from billing
 * segments when an hour closes. The unique triple and ON CONFLICT DO NOTHING
 * make metering idempotent; the cursor row serialises workers that close hours
 * at the same time.
 */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  /**
   * Closes every hour that ended at least `graceMs` before `now` and is not yet
   * closed, oldest first, up to `maxHoursPerChunk` hours per transaction. Hours
   * missed while no worker ran are caught up here.
   */
  async closeHours(now: Date, opts: CloseHoursOptions): Promise<CloseHoursResult> {
    const hours = this.closeHoursLeased(now, { ...opts, leaseUntil: null });
    for (;;) {
      const step = await hours.next();
      if (step.done) return step.value;
    }
  }

  /**
   * closeHours one chunk (default: one hour) per transaction, yielding each chunk's new records
   * as it commits, so an exporter sends an hour while the next is metered. With `leaseUntil`,
   * the records are written leased to the caller until then: no other exporter claims them while
   * this one sends them, and if this one dies they are claimed once the lease ends. Plain SQL on
   * one connection: the records come back as rows, without Prisma's per-row work.
   */
  async *closeHoursLeased(now: Date, opts: CloseHoursOptions & { leaseUntil: Date | null }): AsyncGenerator<ExportableUsage[], CloseHoursResult, void> {
    const target = floorHour(new Date(now.getTime() - opts.graceMs));
    const chunk = opts.maxHoursPerChunk ?? (opts.leaseUntil ? 1 : 24);
    const dims = opts.prices.map((p) => p.dimension);
    const prices = opts.prices.map((p) => p.pricePerHourMicros.toString());
    let hoursClosed = 0;
    let recordsWritten = 0;
    // The first run starts at the first billable hour there is (or at `target` when nothing was ever billable).
    await this.db.$executeRaw`
      INSERT INTO "MeteringCursor" ("id", "closedThrough", "updatedAt")
      SELECT ${CURSOR_ID}, COALESCE(date_trunc('hour', MIN("startedAt")), ${target}::timestamp), now() FROM "BillingSegment"
      ON CONFLICT ("id") DO NOTHING`;
    for (;;) {
      const step = await sqlTransaction(this.db, async (tx) => {
        // An hour's statement is estimated far dearer than it is (every segment × every hour): PostgreSQL's
        // JIT compiled it each time, a quarter of its run on this machine (measured by EXPLAIN ANALYZE).
        await tx.query('SET LOCAL jit = off');
        const [cursor] = await tx.query<{ closedThrough: Date }>(`SELECT "closedThrough" FROM "MeteringCursor" WHERE "id" = $1 FOR UPDATE`, [CURSOR_ID], 'metering-cursor');
        const from = cursor!.closedThrough;
        if (from.getTime() >= target.getTime()) return { done: true, closedThrough: from, hours: 0, records: [] as ExportableUsage[] };
        const until = new Date(Math.min(target.getTime(), from.getTime() + chunk * HOUR_MS));
        // Without a lease nobody sends the records now: only their number is wanted.
        const returning = opts.leaseUntil ? exportableColumns('') : '"id"';
        const records = await tx.query<ExportableUsage>(CLOSE_HOURS_STATEMENT + returning,
          [from.toISOString(), until.toISOString(), opts.planId, dims, prices, opts.leaseUntil?.toISOString() ?? null], `usage-close-hours-${opts.leaseUntil ? 'leased' : 'count'}`);
        await tx.query(`UPDATE "MeteringCursor" SET "closedThrough" = $2::timestamp, "updatedAt" = now() WHERE "id" = $1`, [CURSOR_ID, until.toISOString()], 'metering-cursor-advance');
        return { done: false, closedThrough: until, hours: Math.round((until.getTime() - from.getTime()) / HOUR_MS), records };
      });
      hoursClosed += step.hours;
      recordsWritten += step.records.length;
      if (step.done) {
        // A big catch-up changes the table faster than autovacuum notices: fresh statistics keep
        // the exporters' claim an ordered index scan instead of a sort of every pending record.
        if (recordsWritten >= 5_000) await this.db.$executeRawUnsafe('ANALYZE "UsageRecord"');
        return { closedThrough: step.closedThrough, hoursClosed, recordsWritten };
      }
      if (opts.leaseUntil && step.records.length > 0) yield step.records;
    }
  }

  async cursor(): Promise<Date | null> {
    const c = await this.db.meteringCursor.findUnique({ where: { id: CURSOR_ID } });
    return c?.closedThrough ?? null;
  }

  /**
   * Leases up to `limit` pending records that are due, oldest hour first.
   * SKIP LOCKED plus the lease keep two workers from exporting the same record
   * at once; an exporter that dies leaves the lease to expire.
   */
  claimPending(now: Date, limit: number, leaseMs: number): Promise<ExportableUsage[]> {
    const leaseUntil = new Date(now.getTime() + leaseMs);
    return sqlQuery<ExportableUsage>(this.db, `
      WITH c AS (
        SELECT "id" FROM "UsageRecord"
        WHERE "exportState" = 'Pending' AND ("nextAttemptAt" IS NULL OR "nextAttemptAt" <= $1::timestamp)
          AND ("leaseUntil" IS NULL OR "leaseUntil" < $1::timestamp)
        ORDER BY "hour", "id" LIMIT $2
        FOR UPDATE SKIP LOCKED)
      UPDATE "UsageRecord" u SET "leaseUntil" = $3::timestamp
      FROM c WHERE u."id" = c."id"
      RETURNING ${exportableColumns('u.')}`, [now.toISOString(), limit, leaseUntil.toISOString()], 'usage-claim');
  }

  /** Stores the exporter's answers in one statement and lets go of the leases. */
  async recordResults(exporter: string, now: Date, results: readonly ExportResult[]): Promise<void> {
    if (results.length === 0) return;
    await sqlQuery(this.db, `
      UPDATE "UsageRecord" u SET
        "exportState" = r."state", "exportStatus" = r."status", "exporter" = $1,
        "usageEventId" = COALESCE(r."eventId", u."usageEventId"), "exportError" = r."error",
        "nextAttemptAt" = r."next", "leaseUntil" = NULL, "exportAttempts" = u."exportAttempts" + 1,
        "exportedAt" = CASE WHEN r."state" IN ('Accepted', 'Duplicate') THEN $2::timestamp ELSE u."exportedAt" END
      FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamp[])
        AS r("id", "state", "status", "eventId", "error", "next")
      WHERE u."id" = r."id"`,
    [exporter, now.toISOString(), results.map((r) => r.id), results.map((r) => r.state), results.map((r) => r.status), results.map((r) => r.usageEventId ?? null),
      results.map((r) => r.error ?? null), results.map((r) => r.nextAttemptAt?.toISOString() ?? null)], 'usage-record-results');
  }

  /** Per cluster and dimension (and price), the minutes of hours in [from, to). */
  lines(scope: UsageScope, filter: { from: Date; to: Date; subscriptionId?: string }): Promise<UsageLine[]> {
    const tenantId = tenantOf(scope);
    return this.db.$queryRaw<UsageLine[]>`
      SELECT "subscriptionId", "resourceGroup", "clusterId"::text AS "clusterId", "clusterName", "dimension", "unitPriceMicros",
             SUM("minutes")::bigint AS "minutes"
      FROM "UsageRecord"
      WHERE "hour" >= ${filter.from}::timestamp AND "hour" < ${filter.to}::timestamp
        AND (${tenantId}::text IS NULL OR "tenantId" = ${tenantId}::text)
        AND (${filter.subscriptionId ?? null}::text IS NULL OR "subscriptionId" = ${filter.subscriptionId ?? null}::text)
      GROUP BY 1, 2, 3, 4, 5, 6
      ORDER BY 1, 2, 4, 3, 5, 6`;
  }

  /** Subscriptions with usage in [from, to). */
  async subscriptions(scope: UsageScope, from: Date, to: Date): Promise<string[]> {
    const tenantId = tenantOf(scope);
    const rows = await this.db.$queryRaw<{ s: string }[]>`
      SELECT DISTINCT "subscriptionId" AS s FROM "UsageRecord"
      WHERE "hour" >= ${from}::timestamp AND "hour" < ${to}::timestamp
        AND (${tenantId}::text IS NULL OR "tenantId" = ${tenantId}::text)
      ORDER BY 1`;
    return rows.map((r) => r.s);
  }

  /** Records in [from, to), for exporters' checks, reconciliation and tests. */
  list(filter: { from: Date; to: Date; clusterId?: string; states?: string[] }): Promise<UsageRecord[]> {
    return this.db.usageRecord.findMany({
      where: {
        hour: { gte: filter.from, lt: filter.to },
        ...(filter.clusterId ? { clusterId: filter.clusterId } : {}),
        ...(filter.states ? { exportState: { in: filter.states } } : {}),
      },
      orderBy: [{ hour: 'asc' }, { clusterId: 'asc' }, { dimension: 'asc' }],
    });
  }

  /**
   * How many records are not billed yet, by export state (Pending, Late,
   * Expired, Failed; for metrics): read through a partial index, so the count
   * costs the unbilled records, not every hour ever billed. Billed records
   * (Accepted, Duplicate) are not counted here; the exporter's counter
   * (billing_usage_exported_total) counts a process's exports by outcome.
   */
  async countUnbilledByState(): Promise<Record<string, number>> {
    const rows = await sqlQuery<{ state: string; n: number }>(this.db, COUNT_UNBILLED_STATEMENT, [], 'usage-count-unbilled');
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }
}
