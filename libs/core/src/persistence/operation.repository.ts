import { sqlQuery, sqlQuerySplit, type Db } from './prisma';
import type { ClusterWithServers } from './cluster.repository';
import { hostname } from 'node:os';
import { OperationState, type OperationError } from '../model';
import type { Operation } from '../generated/prisma/client';

/**
 * The runner's start, for a batch of operation ids ($1), the state to set ($2,
 * Running) and the unfinished states ($3). Every row is reached by key: each
 * operation by its id (the LATERAL lookup with OFFSET 0 cannot become a scan
 * by state, and the update's state check, array_position, cannot use the
 * partial index of unfinished operations), each earlier-operation check per
 * row on that partial index by cluster (the NOT EXISTS with OFFSET 0 is not
 * turned into a join). The cost is the batch's, however many operations are
 * queued and whatever the table's statistics say: statistics taken before a wave
 * queued a thousand operations say almost none are unfinished, and the join
 * form read every unfinished operation once per operation claimed.
 *
 * The operation rows are locked first (in id order) and their state checked
 * under that lock, before the cluster's lock is taken: a cancel (or any end)
 * that commits while the claim waits is seen, so the cluster is never locked
 * by an operation that this statement then fails to set Running (issue 11,
 * item 4: from a plain snapshot the Cluster update succeeded while the
 * Operation update found the row Canceled, and the cluster stayed locked).
 *
 * Fencing (item 5): a Running operation is taken only when its lease ($5 ms,
 * renewed by its runner) has lapsed; each claim gets a new claim id and the
 * owner's name ($4), and every later write of the runner names that claim id.
 *
 * An operation handed back to the queue while a target change runs (handBackMany)
 * has no lease and a step to resume at: the claim takes it at once, clears that
 * step and returns it as "resumeAt", and counts no attempt (a hand-back is not
 * a failure).
 */
export const CLAIM_STATEMENT = `
      WITH o AS MATERIALIZED (
        SELECT op."id", op."clusterId", op."seq", op."mutating", op."resumeStep"
        FROM (SELECT DISTINCT unnest($1::uuid[]) AS "id" ORDER BY 1) r
        CROSS JOIN LATERAL (
          SELECT x."id", x."clusterId", x."seq", x."mutating", x."state", x."leaseUntil", x."resumeStep" FROM "Operation" x
          WHERE x."id" = r."id" OFFSET 0 FOR NO KEY UPDATE) op
        WHERE op."state" = 'Queued'
          OR (op."state" = 'Running' AND (op."leaseUntil" IS NULL OR op."leaseUntil" <= (now() AT TIME ZONE 'UTC')))
      ), l AS (
        UPDATE "Cluster" c SET "lockedByOperationId" = o."id", "updatedAt" = (now() AT TIME ZONE 'UTC')
        FROM o
        WHERE o."mutating" AND c."id" = o."clusterId"
          AND (c."lockedByOperationId" IS NULL OR c."lockedByOperationId" = o."id")
          AND NOT EXISTS (
            SELECT 1 FROM "Operation" p
            WHERE p."clusterId" = o."clusterId" AND p."state" IN ('Queued', 'Running') AND p."mutating" AND p."seq" < o."seq"
            OFFSET 0)
        RETURNING c."lockedByOperationId" AS "id"
      ), u AS (
        UPDATE "Operation" x SET "state" = $2, "attempts" = x."attempts" + CASE WHEN o."resumeStep" IS NULL THEN 1 ELSE 0 END,
          "startedAt" = (now() AT TIME ZONE 'UTC'), "updatedAt" = (now() AT TIME ZONE 'UTC'), "resumeStep" = NULL,
          "claimedBy" = $4, "claimId" = gen_random_uuid(), "leaseUntil" = (now() AT TIME ZONE 'UTC') + $5 * interval '1 millisecond'
        FROM o
        WHERE x."id" = o."id" AND array_position($3::text[], x."state") IS NOT NULL
          AND (NOT o."mutating" OR o."id" IN (SELECT "id" FROM l))
        RETURNING x.*, o."resumeStep" AS "resumeAt"
      )
      SELECT u.*, NULL AS "__cluster", c.*, COALESCE((
        SELECT json_agg(json_build_object('clusterId', s."clusterId", 'index', s."index", 'address', s."address", 'apiEndpoint', s."apiEndpoint") ORDER BY s."index")
        FROM "ClusterServer" s WHERE s."clusterId" = c."id"), '[]'::json) AS "servers"
      FROM u LEFT JOIN "Cluster" c ON c."id" = u."clusterId"`;

/** Who claims (a worker's name, for people) and for how long the claim's lease lasts without renewal. */
export interface ClaimOwner {
  owner: string;
  leaseMs: number;
}

/** For callers that claim outside a worker (tests, tools). */
export const DEFAULT_CLAIM: ClaimOwner = { owner: `${hostname()}:${process.pid}`, leaseMs: 30_000 };

/**
 * Operation rows as the worker runs them: the truth for every job; the step log and progress live
 * here. Read by id across tenants: system-only, the API's module does not provide it (the API
 * reads operations through TenantOperationRepository). Rows are written by operation-writer.ts.
 */
export class OperationRepository {
  constructor(private readonly db: Db) {}

  get(id: string): Promise<Operation | null> {
    return this.db.operation.findUnique({ where: { id } });
  }

  /** Queued or Running operations: what the reconciler makes sure has a job. */
  listUnfinished(limit = 1000): Promise<Pick<Operation, 'id' | 'state' | 'updatedAt'>[]> {
    return this.db.operation.findMany({
      where: { state: { in: [OperationState.Queued, OperationState.Running] } },
      select: { id: true, state: true, updatedAt: true },
      orderBy: { seq: 'asc' },
      take: limit,
    });
  }

  /**
   * The runner's start, for several operations in one statement: each one that
   * is still Queued or Running and (when mutating) can take its cluster's lock
   * in seq order (free or already its own, no earlier mutating operation of the
   * cluster unfinished) takes the lock, is marked Running, has its attempt
   * counted and is returned. Null, in its place, when it is finished, gone, or
   * the lock is not free: the caller reads the row to tell which. Of two in the
   * same call for one cluster, only the earlier can pass the seq check.
   */
  async claimMany(ids: string[], claim: ClaimOwner = DEFAULT_CLAIM): Promise<(Operation | null)[]> {
    return (await this.claimManyWithClusters(ids, claim)).map((c) => c?.op ?? null);
  }

  /**
   * claimMany, with each claimed operation's cluster row (and servers) read in
   * the same statement. The statement's snapshot is the right one to read: a
   * mutating operation can only take the lock if the previous operation's end
   * (and so everything it wrote before) was committed when the statement began.
   * `resumeAt`: the step an operation handed back to the queue resumes at
   * (null for a first run or a retry).
   */
  async claimManyWithClusters(ids: string[], claim: ClaimOwner = DEFAULT_CLAIM): Promise<({ op: Operation; cluster: ClusterWithServers | null; resumeAt: string | null } | null)[]> {
    if (ids.length === 0) return [];
    const rows = await sqlQuerySplit<Operation & { resumeAt: string | null }, ClusterWithServers>(this.db, '__cluster', CLAIM_STATEMENT,
      [ids, OperationState.Running, [OperationState.Queued, OperationState.Running], claim.owner, claim.leaseMs], 'operation-claim');
    const byId = new Map(rows.map(([{ resumeAt, ...op }, cluster]) => [op.id, {
      op, resumeAt, cluster: cluster && { ...cluster, lockedByOperationId: op.mutating ? op.id : cluster.lockedByOperationId },
    }]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /**
   * Step logs (already serialized) and progress of several operations in one
   * statement, each only where its claim still holds the (Running) operation.
   * Returns the claim ids whose row was written: one missing lost its claim.
   */
  async saveStepsMany(entries: { id: string; claimId: string; steps: string; progress: number; currentStep: string | null }[]): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = await sqlQuery<{ claimId: string }>(this.db, `
      UPDATE "Operation" o SET "steps" = v."steps"::jsonb, "progress" = v."progress", "currentStep" = v."currentStep",
        "updatedAt" = (now() AT TIME ZONE 'UTC')
      FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[]) AS v("id", "claimId", "steps", "progress", "currentStep")
      WHERE o."id" = v."id" AND o."claimId" = v."claimId" AND o."state" = 'Running'
      RETURNING o."claimId"`,
    [entries.map((e) => e.id), entries.map((e) => e.claimId), entries.map((e) => e.steps), entries.map((e) => e.progress), entries.map((e) => e.currentStep)], 'operation-save-steps');
    return new Set(rows.map((r) => r.claimId));
  }

  /**
   * Hands Running operations back to the queue while a target change of theirs
   * runs, several in one statement, each only where its claim still holds it:
   * its step log and progress, the step the next claim resumes at, and the
   * change waited on with when it first answered in-progress (ISO text, UTC).
   * The claim ends (no lease, no claim id: a renewal still in flight finds
   * nothing to extend, and any worker may claim the operation at once); the
   * operation stays Running and keeps its cluster's lock. Returns the claim
   * ids that handed their operation back.
   */
  async handBackMany(entries: {
    id: string; claimId: string; steps: string; progress: number; step: string; change: string; changeSince: string;
  }[]): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = await sqlQuery<{ claimId: string }>(this.db, `
      UPDATE "Operation" o SET "steps" = v."steps"::jsonb, "progress" = v."progress", "currentStep" = v."step", "resumeStep" = v."step",
        "targetChange" = v."change", "targetChangeSince" = v."changeSince"::timestamptz AT TIME ZONE 'UTC',
        "claimId" = NULL, "leaseUntil" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
      FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[]) AS v("id", "claimId", "steps", "progress", "step", "change", "changeSince")
      WHERE o."id" = v."id" AND o."claimId" = v."claimId" AND o."state" = 'Running'
      RETURNING v."claimId"`,
    [entries.map((e) => e.id), entries.map((e) => e.claimId), entries.map((e) => e.steps), entries.map((e) => e.progress),
      entries.map((e) => e.step), entries.map((e) => e.change), entries.map((e) => e.changeSince)], 'operation-hand-back');
    return new Set(rows.map((r) => r.claimId));
  }

  /**
   * The runners' heartbeat: extends the lease of each claim that still holds
   * its Running operation, several in one statement. Returns the claim ids
   * renewed; one missing was taken over (or its operation ended).
   */
  async renewLeases(claims: { id: string; claimId: string }[], leaseMs: number): Promise<Set<string>> {
    if (claims.length === 0) return new Set();
    const rows = await sqlQuery<{ claimId: string }>(this.db, `
      UPDATE "Operation" o SET "leaseUntil" = (now() AT TIME ZONE 'UTC') + $3 * interval '1 millisecond'
      FROM unnest($1::uuid[], $2::uuid[]) AS v("id", "claimId")
      WHERE o."id" = v."id" AND o."claimId" = v."claimId" AND o."state" = 'Running'
      RETURNING o."claimId"`, [claims.map((c) => c.id), claims.map((c) => c.claimId), leaseMs], 'operation-renew-leases');
    return new Set(rows.map((r) => r.claimId));
  }

  /**
   * succeed for several operations in one statement, each with its result and
   * its final step log (serialized; null keeps what the row has), each only
   * where its claim still holds the Running operation. The operation ends and
   * its cluster's lock is freed in one statement: nothing sees it ended but
   * still holding the cluster. Returns the claim ids that ended their operation.
   */
  async succeedMany(entries: { id: string; claimId: string; result: string | null; steps: string | null }[]): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = await sqlQuery<{ claimId: string }>(this.db, `
      WITH v AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS v("id", "claimId", "result", "steps")
      ), o AS (
        UPDATE "Operation" op SET "state" = $5, "progress" = 100, "currentStep" = NULL, "leaseUntil" = NULL,
          "finishedAt" = (now() AT TIME ZONE 'UTC'), "updatedAt" = (now() AT TIME ZONE 'UTC'), "error" = NULL,
          "result" = COALESCE(v."result"::jsonb, op."result"), "steps" = COALESCE(v."steps"::jsonb, op."steps")
        FROM v WHERE op."id" = v."id" AND op."claimId" = v."claimId" AND op."state" = 'Running'
        RETURNING op."id", op."clusterId", op."claimId"
      ), l AS (
        UPDATE "Cluster" c SET "lockedByOperationId" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
        FROM o WHERE c."id" = o."clusterId" AND c."lockedByOperationId" = o."id"
      )
      SELECT "claimId" FROM o`,
    [entries.map((e) => e.id), entries.map((e) => e.claimId), entries.map((e) => e.result), entries.map((e) => e.steps), OperationState.Succeeded], 'operation-succeed');
    return new Set(rows.map((r) => r.claimId));
  }

  /**
   * Fails the operation and frees its cluster's lock in one statement. With a
   * claim id: only while that claim holds the Running operation. Without one
   * (the reconciler, for an operation whose job ended): only an unfinished
   * operation that no live lease holds. Returns whether it ended it.
   */
  async fail(id: string, error: OperationError, claimId: string | null): Promise<boolean> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      WITH o AS (
        UPDATE "Operation" SET "state" = ${OperationState.Failed}, "finishedAt" = (now() AT TIME ZONE 'UTC'), "leaseUntil" = NULL,
          "updatedAt" = (now() AT TIME ZONE 'UTC'), "error" = ${JSON.stringify(error)}::jsonb
        WHERE "id" = ${id}::uuid AND (
          (${claimId}::uuid IS NOT NULL AND "claimId" = ${claimId}::uuid AND "state" = 'Running')
          OR (${claimId}::uuid IS NULL AND "state" IN ('Queued', 'Running') AND ("leaseUntil" IS NULL OR "leaseUntil" <= (now() AT TIME ZONE 'UTC'))))
        RETURNING "id", "clusterId"
      ), l AS (
        UPDATE "Cluster" c SET "lockedByOperationId" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
        FROM o WHERE c."id" = o."clusterId" AND c."lockedByOperationId" = o."id"
      )
      SELECT "id"::text FROM o`;
    return rows.length === 1;
  }

  /**
   * Records the last error of an attempt that will be retried, without ending
   * the operation, while the claim still holds it; the claim's lease is given
   * up so that the retry (a new claim) can take the operation at once.
   * Returns whether the claim still held it.
   */
  async noteRetry(id: string, claimId: string, error: OperationError): Promise<boolean> {
    const n = await this.db.operation.updateMany({
      where: { id, claimId, state: OperationState.Running },
      data: { error: { ...error, retrying: true }, leaseUntil: null },
    });
    return n.count === 1;
  }
}
