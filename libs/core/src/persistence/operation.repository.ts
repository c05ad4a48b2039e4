import type { Db } from './prisma';
import { randomUUID } from 'node:crypto';
import { everBillable, openSegment } from './billing-segments';
import { ClusterState, OperationState, type OperationError, type OperationStep } from '../model';
import type { Operation } from '../generated/prisma/client';

/** Operation rows: the truth for every job; the step log and progress live here. */
export class OperationRepository {
  constructor(private readonly db: Db) {}

  findForTenant(tenantId: string, id: string): Promise<Operation | null> {
    return this.db.operation.findFirst({ where: { id, tenantId } });
  }

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

  /** The states of these operations, by id (one read; a missing one is absent). */
  async statesOf(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.$queryRaw<{ id: string; state: string }[]>`
      SELECT "id"::text AS "id", "state" FROM "Operation" WHERE "id" = ANY(${ids}::uuid[])`;
    return new Map(rows.map((r) => [r.id, r.state]));
  }

  /**
   * The runner's start, in one statement: if the operation is still Queued or
   * Running and (when mutating) its cluster's lock can be taken in seq order
   * (free or already its own, no earlier mutating operation of the cluster
   * unfinished), takes the lock, marks the operation Running, counts the
   * attempt and returns the row. Null when it is finished, gone, or the lock is
   * not free: the caller reads the row to tell which.
   */
  async claim(id: string): Promise<Operation | null> {
    const rows = await this.db.$queryRaw<Operation[]>`
      WITH o AS MATERIALIZED (
        SELECT "clusterId", "seq" FROM "Operation"
        WHERE "id" = ${id}::uuid AND "state" IN ('Queued', 'Running') AND "mutating"
      ), l AS (
        -- The cluster id and seq as scalar subqueries, not a join: the earlier-operations check then stays
        -- an index lookup on ("clusterId", "state"), as with constants.
        UPDATE "Cluster" SET "lockedByOperationId" = ${id}::uuid, "updatedAt" = (now() AT TIME ZONE 'UTC')
        WHERE "id" = (SELECT "clusterId" FROM o)
          AND ("lockedByOperationId" IS NULL OR "lockedByOperationId" = ${id}::uuid)
          AND NOT EXISTS (
            SELECT 1 FROM "Operation" p
            WHERE p."clusterId" = (SELECT "clusterId" FROM o) AND p."state" IN ('Queued', 'Running')
              AND p."mutating" AND p."seq" < (SELECT "seq" FROM o))
        RETURNING "id"
      )
      UPDATE "Operation" SET "state" = ${OperationState.Running}, "attempts" = "attempts" + 1,
        "startedAt" = (now() AT TIME ZONE 'UTC'), "updatedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "id" = ${id}::uuid AND "state" IN ('Queued', 'Running')
        AND (NOT "mutating" OR EXISTS (SELECT 1 FROM l))
      RETURNING *`;
    return rows[0] ?? null;
  }

  async saveSteps(id: string, steps: OperationStep[], progress: number, currentStep: string | null): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "Operation" SET "steps" = ${JSON.stringify(steps)}::jsonb, "progress" = ${progress}, "currentStep" = ${currentStep},
        "updatedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "id" = ${id}::uuid`;
  }

  /** Ends the operation and frees its cluster's lock in one statement: nothing sees it ended but still holding the cluster. */
  async succeed(id: string, result?: Record<string, unknown>): Promise<void> {
    const json = result ? JSON.stringify(result) : null;
    await this.db.$executeRaw`
      WITH o AS (
        UPDATE "Operation" SET "state" = ${OperationState.Succeeded}, "progress" = 100, "currentStep" = NULL,
          "finishedAt" = (now() AT TIME ZONE 'UTC'), "updatedAt" = (now() AT TIME ZONE 'UTC'), "error" = NULL,
          "result" = COALESCE(${json}::jsonb, "result")
        WHERE "id" = ${id}::uuid
        RETURNING "id"
      )
      UPDATE "Cluster" SET "lockedByOperationId" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "lockedByOperationId" = ${id}::uuid AND EXISTS (SELECT 1 FROM o)`;
  }

  /** Fails the operation and frees its cluster's lock in one statement. */
  async fail(id: string, error: OperationError): Promise<void> {
    await this.db.$executeRaw`
      WITH o AS (
        UPDATE "Operation" SET "state" = ${OperationState.Failed}, "finishedAt" = (now() AT TIME ZONE 'UTC'),
          "updatedAt" = (now() AT TIME ZONE 'UTC'), "error" = ${JSON.stringify(error)}::jsonb
        WHERE "id" = ${id}::uuid
        RETURNING "id"
      )
      UPDATE "Cluster" SET "lockedByOperationId" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "lockedByOperationId" = ${id}::uuid AND EXISTS (SELECT 1 FROM o)`;
  }

  listForCluster(tenantId: string, clusterId: string, limit = 100): Promise<Operation[]> {
    return this.db.operation.findMany({ where: { tenantId, clusterId }, orderBy: { seq: 'desc' }, take: limit });
  }

  /**
   * Cancels an operation that has not started, and undoes what requesting it
   * did to the cluster and snapshot rows, in one transaction. Returns false when
   * it is no longer Queued (a worker took it meanwhile).
   */
  async cancelQueued(op: Operation, actor: string, at: Date = new Date()): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const n = await tx.operation.updateMany({
        where: { id: op.id, state: OperationState.Queued },
        data: { state: OperationState.Canceled, finishedAt: new Date(), error: { code: 'canceled', message: `canceled by ${actor} before it started` } },
      });
      if (n.count !== 1) return false;
      const params = (op.params ?? {}) as { previousState?: string; snapshotId?: string };
      if (op.kind === 'create') {
        await tx.cluster.updateMany({ where: { id: op.clusterId, state: ClusterState.Creating }, data: { state: ClusterState.Failed, stateReason: 'create canceled before it started; delete the cluster' } });
      } else if (op.kind === 'delete' && params.previousState) {
        const back = await tx.cluster.updateMany({ where: { id: op.clusterId, state: ClusterState.Deleting }, data: { state: params.previousState } });
        // Billing stopped when the delete was asked for; the cluster stays, so it is billable again from now.
        if (back.count === 1 && (await everBillable(tx, op.clusterId))) {
          const { tier } = await tx.cluster.findUniqueOrThrow({ where: { id: op.clusterId }, select: { tier: true } });
          await openSegment(tx, op.clusterId, tier, at);
        }
      } else if (op.kind === 'snapshot' && params.snapshotId) {
        await tx.snapshot.updateMany({ where: { id: params.snapshotId, state: 'Pending' }, data: { state: 'Failed' } });
      } else if (op.kind === 'delete-snapshot' && params.snapshotId) {
        await tx.snapshot.updateMany({ where: { id: params.snapshotId, state: 'Deleting' }, data: { state: 'Available' } });
      }
      await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: op.tenantId, clusterId: op.clusterId, operationId: op.id, actor, action: 'operation.canceled', details: { kind: op.kind } } });
      return true;
    });
  }

  /** Records the last error of an attempt that will be retried, without ending the operation. */
  async noteRetry(id: string, error: OperationError): Promise<void> {
    await this.db.operation.update({ where: { id }, data: { error: { ...error, retrying: true } } });
  }
}
