import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';

/** A worker's hold on one period of one scheduler. */
export interface ScheduleClaim {
  schedule: string;
  periodStart: Date;
  claimId: string;
  /** 1 for the period's first run; more for a takeover of a run whose holder's lease lapsed. */
  runs: number;
}

/**
 * How many periods before the current one a worker still runs when nobody claimed them: those of
 * the last minute, at least 3 and at most 100 (a starved machine's workers can all miss a few
 * short periods; an outage longer than that is not replayed).
 */
export function catchUpPeriods(periodMs: number): number {
  return Math.min(100, Math.max(3, Math.ceil(60_000 / periodMs)));
}
/** Finished rows are kept this long (the record of which worker ran which period), then deleted. */
const KEEP_FINISHED = '1 day';

/**
 * The ledger that makes each scheduler run once per period across every worker
 * (ScheduleRun). A period is named by the database's clock, floored to a
 * multiple of the period, so workers with skewed clocks still name the same
 * one; its row is claimed by one INSERT (the primary key decides who wins), a period
 * nobody got to in time is claimed late (up to a minute back), and
 * a run whose holder died (its lease lapsed, not finished) is taken over by one
 * conditional UPDATE. Every write after the claim is conditional on the claim id.
 */
export class ScheduleRunRepository {
  constructor(private readonly db: Db) {}

  /**
   * Claims the earliest period of `schedule` that nobody claimed among the current one and the
   * catchUpPeriods before it (a period no worker could look at in time, the machine being starved
   * or every worker busy, is run late rather than never; a longer outage is not replayed), never one
   * that began before `notBefore` (a worker's first period is the first one that starts after it
   * did, as a timer's first tick came one period after the start). Null when there is none.
   */
  async claimDue(schedule: string, periodMs: number, owner: string, leaseMs: number, notBefore: Date): Promise<ScheduleClaim | null> {
    const claimId = randomUUID();
    const rows = await this.db.$queryRaw<ScheduleClaim[]>`
      WITH now AS (
        SELECT clock_timestamp() AT TIME ZONE 'UTC' AS "at", floor(extract(epoch FROM clock_timestamp()) * 1000 / ${periodMs}::int) AS "n"
      ), due AS (
        SELECT to_timestamp((now."n" - k) * ${periodMs}::int / 1000.0) AT TIME ZONE 'UTC' AS "periodStart", now."at"
        FROM now, generate_series(0, ${catchUpPeriods(periodMs)}::int) AS k
      )
      INSERT INTO "ScheduleRun" AS r ("schedule", "periodStart", "periodMs", "runs", "claimId", "claimedBy", "leaseUntil", "startedAt")
      SELECT ${schedule}, due."periodStart", ${periodMs}::int, 1, ${claimId}::uuid, ARRAY[${owner}::text], due."at" + ${leaseMs}::int * interval '1 millisecond', due."at"
      FROM due
      WHERE due."periodStart" >= ${notBefore}
        AND NOT EXISTS (SELECT 1 FROM "ScheduleRun" x WHERE x."schedule" = ${schedule} AND x."periodStart" = due."periodStart")
      ORDER BY due."periodStart" LIMIT 1
      ON CONFLICT ("schedule", "periodStart") DO NOTHING
      RETURNING r."schedule", r."periodStart", r."claimId"::text AS "claimId", r."runs"`;
    return rows[0] ?? null;
  }

  /**
   * Takes over the oldest period of `schedule` whose run was left unfinished
   * with its lease lapsed (its worker died or was cut off), or null.
   */
  async takeOverLapsed(schedule: string, owner: string, leaseMs: number): Promise<ScheduleClaim | null> {
    const claimId = randomUUID();
    const rows = await this.db.$queryRaw<ScheduleClaim[]>`
      WITH lapsed AS (
        SELECT "schedule", "periodStart" FROM "ScheduleRun"
        WHERE "schedule" = ${schedule} AND "finishedAt" IS NULL AND "leaseUntil" < clock_timestamp() AT TIME ZONE 'UTC'
        ORDER BY "periodStart" LIMIT 1 FOR UPDATE SKIP LOCKED
      )
      UPDATE "ScheduleRun" r SET "runs" = r."runs" + 1, "claimId" = ${claimId}::uuid, "claimedBy" = array_append(r."claimedBy", ${owner}::text),
        "leaseUntil" = clock_timestamp() AT TIME ZONE 'UTC' + ${leaseMs}::int * interval '1 millisecond'
      FROM lapsed WHERE r."schedule" = lapsed."schedule" AND r."periodStart" = lapsed."periodStart"
        AND r."finishedAt" IS NULL AND r."leaseUntil" < clock_timestamp() AT TIME ZONE 'UTC'
      RETURNING r."schedule", r."periodStart", r."claimId"::text AS "claimId", r."runs"`;
    return rows[0] ?? null;
  }

  /** Extends the lease of a run still held; false once it was taken over. */
  async renew(claim: ScheduleClaim, leaseMs: number): Promise<boolean> {
    const n = await this.db.$executeRaw`
      UPDATE "ScheduleRun" SET "leaseUntil" = clock_timestamp() AT TIME ZONE 'UTC' + ${leaseMs}::int * interval '1 millisecond'
      WHERE "schedule" = ${claim.schedule} AND "periodStart" = ${claim.periodStart} AND "claimId" = ${claim.claimId}::uuid AND "finishedAt" IS NULL`;
    return n === 1;
  }

  /**
   * Marks the period's run finished (with the error it failed with, if any), if
   * this claim still holds it; false when it was taken over. Drops finished rows
   * older than a day of the same schedule on the way.
   */
  async finish(claim: ScheduleClaim, owner: string, error: string | null): Promise<boolean> {
    const rows = await this.db.$queryRaw<{ n: bigint }[]>`
      WITH f AS (
        UPDATE "ScheduleRun" SET "finishedAt" = clock_timestamp() AT TIME ZONE 'UTC', "finishedBy" = ${owner}, "error" = ${error}
        WHERE "schedule" = ${claim.schedule} AND "periodStart" = ${claim.periodStart} AND "claimId" = ${claim.claimId}::uuid AND "finishedAt" IS NULL
        RETURNING 1
      ), old AS (
        DELETE FROM "ScheduleRun" WHERE "schedule" = ${claim.schedule} AND "finishedAt" IS NOT NULL
          AND "periodStart" < clock_timestamp() AT TIME ZONE 'UTC' - ${KEEP_FINISHED}::interval
        RETURNING 1
      )
      SELECT count(*) AS n FROM f`;
    return Number(rows[0]?.n ?? 0) === 1;
  }
}
