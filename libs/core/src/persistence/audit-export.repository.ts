import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import type { AuditExport } from '../generated/prisma/client';
import { SecretName } from '../model';

/** An export position: the last exported event's (txid, seq). */
export interface ExportCursor {
  txid: bigint;
  seq: bigint;
}

/** An audit event as the export reads it. */
export interface ExportedEvent {
  id: string;
  seq: bigint;
  txid: bigint;
  tenantId: string;
  clusterId: string;
  operationId: string | null;
  actor: string;
  action: string;
  details: unknown;
  createdAt: Date;
}

/** An export this worker holds: the row as claimed, and the claim that fences every write. */
export interface ClaimedExport {
  row: AuditExport;
  claim: string;
}

/** What a page appended to one hour blob: its committed length before and after. */
export interface BlobAppend {
  blob: string;
  fromLength: number;
  toLength: number;
}

/** One committed page: the cursor and its blobs' lengths move together, or none does. */
export interface AppendCommit {
  from: ExportCursor;
  to: ExportCursor;
  last: { id: string; createdAt: Date };
  container: string;
  blobs: BlobAppend[];
}

const HOUR_MS = 3_600_000;

/**
 * The worker's side of the audit export (docs/audit-export.md). Which events are final: those whose
 * writing transaction ended before every transaction still running (`txid` below the snapshot's
 * xmin), so no event can later appear before the cursor; they are read in (txid, seq) order. Every
 * write names the claim and the cursor it read: a worker that lost its claim changes nothing.
 */
export class AuditExportRepository {
  constructor(private readonly db: Db) {}

  /** Takes up to `limit` exports that are due and held by no live worker. */
  async claimDue(leaseMs: number, limit = 10): Promise<ClaimedExport[]> {
    const claim = randomUUID();
    const rows = await this.db.$queryRaw<AuditExport[]>`
      UPDATE "AuditExport" SET "leaseOwner" = ${claim}, "leaseUntil" = now() + make_interval(secs => ${leaseMs / 1000})
      WHERE "clusterId" IN (
        SELECT "clusterId" FROM "AuditExport"
        WHERE "enabled" AND "nextAttemptAt" <= now() AND ("leaseUntil" IS NULL OR "leaseUntil" < now())
        ORDER BY "nextAttemptAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING *`;
    return rows.map((row) => ({ row, claim }));
  }

  /** The next final events after the cursor, in export order. */
  nextEvents(clusterId: string, after: ExportCursor, limit: number): Promise<ExportedEvent[]> {
    return this.db.$queryRaw<ExportedEvent[]>`
      SELECT "id", "seq", "txid", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt" FROM "AuditEvent"
      WHERE "clusterId" = ${clusterId}::uuid AND ("txid", "seq") > (${after.txid}, ${after.seq})
        AND "txid" < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
      ORDER BY "txid", "seq" LIMIT ${limit}`;
  }

  /** Committed bytes of a blob of the container (0: the export has not appended to it). */
  async blobLength(clusterId: string, container: string, name: string): Promise<number> {
    const row = await this.db.auditExportBlob.findUnique({ where: { clusterId_container_name: { clusterId, container, name } } });
    return row ? Number(row.length) : 0;
  }

  /** Records a page's appends: false when the claim, the cursor or a length is no longer what this worker read (nothing written). */
  async commit(x: ClaimedExport, c: AppendCommit, leaseMs: number): Promise<boolean> {
    const clusterId = x.row.clusterId;
    const lastBlob = c.blobs[c.blobs.length - 1]?.blob ?? null;
    try {
      return await this.db.$transaction(async (tx) => {
        const moved = await tx.$executeRaw`
          UPDATE "AuditExport" SET "cursorTxid" = ${c.to.txid}, "cursorSeq" = ${c.to.seq}, "lastEventId" = ${c.last.id}::uuid, "lastEventAt" = ${c.last.createdAt},
            "lastBlob" = ${lastBlob}, "lastExportedAt" = now(), "leaseUntil" = now() + make_interval(secs => ${leaseMs / 1000}), "updatedAt" = now()
          WHERE "clusterId" = ${clusterId}::uuid AND "leaseOwner" = ${x.claim} AND "cursorTxid" = ${c.from.txid} AND "cursorSeq" = ${c.from.seq}`;
        if (moved !== 1) throw new LostClaim();
        for (const b of c.blobs) {
          const grown = b.fromLength === 0
            ? await tx.$executeRaw`
                INSERT INTO "AuditExportBlob" ("clusterId", "container", "name", "length", "updatedAt") VALUES (${clusterId}::uuid, ${c.container}, ${b.blob}, ${b.toLength}, now())
                ON CONFLICT ("clusterId", "container", "name") DO UPDATE SET "length" = EXCLUDED."length", "updatedAt" = now() WHERE "AuditExportBlob"."length" = 0`
            : await tx.$executeRaw`
                UPDATE "AuditExportBlob" SET "length" = ${b.toLength}, "updatedAt" = now()
                WHERE "clusterId" = ${clusterId}::uuid AND "container" = ${c.container} AND "name" = ${b.blob} AND "length" = ${b.fromLength}`;
          if (grown !== 1) throw new LostClaim();
        }
        return true;
      });
    } catch (e) {
      if (e instanceof LostClaim) return false;
      throw e;
    }
  }

  /**
   * Ends a run that exported what it could (or had nothing to do): the claim is released and the
   * failure count cleared; the first success after failures is an audit event.
   */
  async succeed(x: ClaimedExport): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ attempts: number }[]>`
        SELECT "attempts" FROM "AuditExport" WHERE "clusterId" = ${x.row.clusterId}::uuid AND "leaseOwner" = ${x.claim} FOR UPDATE`;
      if (!row) return;
      await tx.$executeRaw`
        UPDATE "AuditExport" SET "attempts" = 0, "leaseOwner" = NULL, "leaseUntil" = NULL, "updatedAt" = now()
        WHERE "clusterId" = ${x.row.clusterId}::uuid AND "leaseOwner" = ${x.claim}`;
      if (row.attempts) {
        await tx.auditEvent.create({
          data: { id: randomUUID(), tenantId: x.row.tenantId, clusterId: x.row.clusterId, actor: 'system:audit-export', action: 'cluster.audit-export.resumed', details: { afterAttempts: row.attempts } },
        });
      }
    });
  }

  /**
   * A failed run: the error (never a secret) on the row, the claim released, the next attempt after
   * `retryMs` doubled per failure before it (at most an hour). The first failure is an audit event.
   */
  async fail(x: ClaimedExport, code: string, message: string, retryMs: number): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ attempts: number }[]>`
        SELECT "attempts" FROM "AuditExport" WHERE "clusterId" = ${x.row.clusterId}::uuid AND "leaseOwner" = ${x.claim} FOR UPDATE`;
      if (!row) return;
      const delay = Math.min(retryMs * 2 ** Math.min(row.attempts, 20), HOUR_MS);
      await tx.$executeRaw`
        UPDATE "AuditExport" SET "attempts" = "attempts" + 1, "lastErrorCode" = ${code}, "lastErrorMessage" = ${message}, "lastErrorAt" = now(),
          "nextAttemptAt" = now() + make_interval(secs => ${delay / 1000}), "leaseOwner" = NULL, "leaseUntil" = NULL, "updatedAt" = now()
        WHERE "clusterId" = ${x.row.clusterId}::uuid AND "leaseOwner" = ${x.claim}`;
      if (row.attempts === 0) {
        await tx.auditEvent.create({
          data: { id: randomUUID(), tenantId: x.row.tenantId, clusterId: x.row.clusterId, actor: 'system:audit-export', action: 'cluster.audit-export.failed', details: { code, message } },
        });
      }
    });
  }

  /** The cluster's state (a deleted cluster's export stops once it has written the last event). */
  async clusterState(clusterId: string): Promise<string | null> {
    const c = await this.db.cluster.findUnique({ where: { id: clusterId }, select: { state: true } });
    return c?.state ?? null;
  }

  /** A deleted cluster whose every event is exported: the export is turned off and its SAS dropped. */
  async retire(x: ClaimedExport): Promise<void> {
    await this.db.$transaction([
      this.db.auditExport.updateMany({ where: { clusterId: x.row.clusterId, leaseOwner: x.claim }, data: { enabled: false, leaseOwner: null, leaseUntil: null } }),
      this.db.clusterSecret.deleteMany({ where: { clusterId: x.row.clusterId, name: SecretName.AuditExportSas } }),
    ]);
  }
}

class LostClaim extends Error {}
