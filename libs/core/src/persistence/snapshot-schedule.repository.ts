import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { ClusterState, OperationKind, SnapshotKind, SnapshotState } from '../model';
import { insertOperation } from './operation-writer';
import { SnapshotRepository } from './snapshot.repository';

export interface DueSnapshot {
  clusterId: string;
  operationId: string;
  snapshotId: string;
}

/**
 * Scheduled snapshots. A cluster is due when `interval` hours have passed since
 * its last scheduled slot (or since it first ran). Claiming a slot is one
 * conditional UPDATE, so two workers ticking at once queue it once.
 */
export class SnapshotScheduleRepository {
  constructor(private readonly db: Db) {}

  /** Queues the scheduled snapshots due at `now`; returns what it queued. */
  async claimDue(now: Date, limit = 100): Promise<DueSnapshot[]> {
    const due = await this.db.$queryRaw<{ id: string; tenantId: string; base: Date; hours: number }[]>`
      SELECT "id", "tenantId", COALESCE("lastScheduledSnapshotAt", "runningSince") AS "base", "snapshotIntervalHours" AS "hours"
      FROM "Cluster"
      WHERE "state" = ${ClusterState.Running} AND "runningSince" IS NOT NULL
        AND COALESCE("lastScheduledSnapshotAt", "runningSince") + make_interval(hours => "snapshotIntervalHours") <= ${now}
      ORDER BY 3 LIMIT ${limit}`;
    const queued: DueSnapshot[] = [];
    for (const c of due) {
      // The newest slot at or before now: a worker that was down takes one snapshot, not a backlog.
      const every = c.hours * 3_600_000;
      const slot = new Date(c.base.getTime() + Math.floor((now.getTime() - c.base.getTime()) / every) * every);
      const operationId = randomUUID();
      const snapshotId = randomUUID();
      const won = await this.db.$transaction(async (tx) => {
        const n = await tx.$executeRaw`
          UPDATE "Cluster" SET "lastScheduledSnapshotAt" = ${slot}
          WHERE "id" = ${c.id}::uuid AND COALESCE("lastScheduledSnapshotAt", "runningSince") = ${c.base}`;
        if (n !== 1) return false;
        await insertOperation(tx, { id: operationId, tenantId: c.tenantId, clusterId: c.id, kind: OperationKind.Snapshot, requestedBy: 'scheduler', params: { snapshotId } });
        await tx.snapshot.create({
          data: {
            id: snapshotId, tenantId: c.tenantId, clusterId: c.id, name: `scheduled ${slot.toISOString()}`, kind: SnapshotKind.Scheduled,
            state: SnapshotState.Pending, blobKey: SnapshotRepository.blobKey(c.id, snapshotId), operationId, createdAt: now,
          },
        });
        await tx.auditEvent.create({ data: { id: randomUUID(), tenantId: c.tenantId, clusterId: c.id, operationId, actor: 'scheduler', action: 'snapshot.scheduled', details: { slot: slot.toISOString() } } });
        return true;
      });
      if (won) queued.push({ clusterId: c.id, operationId, snapshotId });
    }
    return queued;
  }
}
