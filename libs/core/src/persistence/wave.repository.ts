import { randomUUID } from 'node:crypto';
import { sqlQuery, type Db } from './prisma';
import { operationInsertText } from './operation-writer';
import type { Wave, WaveItem } from '../generated/prisma/client';

export type WaveWithItems = Wave & { items: WaveItem[] };

/** The operations of the items startItems starts, one per row of its \`ok\` (its actor is $13). */
const ITEM_OPERATIONS = operationInsertText({
  id: '"opId"', tenantId: '"tenantId"', clusterId: '"clusterId"', kind: '"kind"', mutating: '"mutating"', requestedBy: '$13', params: '"params"::jsonb',
  at: '(SELECT "at" FROM clock)',
}, 'FROM ok ORDER BY "position"', '1');

/**
 * One item to start: its operation's id, kind and params, its audit action, and for a snapshot
 * action the snapshot row. With `skipReason` the item is skipped instead (no operation; the audit
 * action and params are the skip's event). `pin`: the cluster's upgrade pin the plan was made
 * with; the item is left Pending (planned again next time) if the pin has moved since.
 */
export interface ItemStart {
  position: number;
  clusterId: string;
  operationId: string;
  kind: string;
  mutating: boolean;
  params: Record<string, unknown>;
  auditAction: string;
  snapshot?: { id: string; name: string; kind: string; blobKey: string };
  skipReason?: string;
  pin?: string;
}

/** A Pending item, with what planning its operation needs of its cluster (null when the cluster is gone). */
export type PendingItem = WaveItem & { consulVersion: string | null; upgradePin: string | null };

/** A wave's items counted by state; canaries also on their own. */
export interface WaveCounts {
  Pending: number; Running: number; Succeeded: number; Failed: number; Skipped: number;
  canariesPending: number; canariesUnfinished: number;
}

export interface NewWave {
  action: string;
  params: Record<string, unknown>;
  selector: Record<string, unknown>;
  canaries: number;
  maxInFlight: number;
  maxFailures: number;
  createdBy: string;
  clusterIds: string[];
}

/** Maintenance waves and their per-cluster items. */
export class WaveRepository {
  constructor(private readonly db: Db) {}

  /**
   * The wave and its items (Pending, in selection order, the first `canaries`
   * of them canaries) in one statement: a wave over the whole fleet is one
   * round trip, its items built here rather than read back.
   */
  async create(w: NewWave): Promise<WaveWithItems> {
    const id = randomUUID();
    const [wave] = await sqlQuery<Wave>(this.db, `
      WITH w AS (
        INSERT INTO "Wave" ("id", "action", "params", "selector", "canaries", "maxInFlight", "maxFailures", "state", "createdBy", "createdAt")
        VALUES ($1::uuid, $2, $3::jsonb, $4::jsonb, $5, $6, $7, 'Running', $8, (now() AT TIME ZONE 'UTC'))
        RETURNING *
      ), items AS (
        INSERT INTO "WaveItem" ("waveId", "position", "clusterId", "canary", "state")
        SELECT $1::uuid, v."ord"::int - 1, v."clusterId", v."ord" <= $5, 'Pending'
        FROM unnest($9::uuid[]) WITH ORDINALITY AS v("clusterId", "ord")
        RETURNING 1
      )
      SELECT * FROM w`,
    [id, w.action, JSON.stringify(w.params), JSON.stringify(w.selector), w.canaries, w.maxInFlight, w.maxFailures, w.createdBy, w.clusterIds], 'wave-create');
    const items: WaveItem[] = w.clusterIds.map((clusterId, position) => ({
      waveId: id, position, clusterId, canary: position < w.canaries, state: 'Pending', reason: null, operationId: null, startedAt: null, finishedAt: null,
    }));
    return { ...wave!, items };
  }

  get(id: string): Promise<WaveWithItems | null> {
    return this.db.wave.findUnique({ where: { id }, include: { items: { orderBy: { position: 'asc' } } } });
  }

  /** The running waves, without their items (the driver reads counts and candidates instead). */
  listRunningWaves(): Promise<Wave[]> {
    return sqlQuery<Wave>(this.db, `SELECT * FROM "Wave" WHERE "state" = 'Running' ORDER BY "createdAt"`, []);
  }

  /**
   * Marks Running items whose operation has ended: Succeeded, or Failed for any
   * other end. One statement; with `onlyOperations`, only those operations'
   * items are looked at (not every running item of a big wave).
   */
  async syncEnded(waveId: string, terminal: readonly string[], onlyOperations?: string[]): Promise<void> {
    if (onlyOperations && onlyOperations.length === 0) return;
    await sqlQuery(this.db, `
      UPDATE "WaveItem" wi SET "state" = CASE WHEN o."state" = 'Succeeded' THEN 'Succeeded' ELSE 'Failed' END,
        "finishedAt" = (now() AT TIME ZONE 'UTC')
      FROM "Operation" o
      WHERE wi."waveId" = $1::uuid AND wi."state" = 'Running' AND o."id" = wi."operationId" AND o."state" = ANY($2::text[])
        AND ($3::uuid[] IS NULL OR wi."operationId" = ANY($3::uuid[]))`, [waveId, [...terminal], onlyOperations ?? null]);
  }

  async counts(waveId: string): Promise<WaveCounts> {
    const rows = await sqlQuery<{ state: string; canary: boolean; n: number }>(this.db, `
      SELECT "state", "canary", count(*)::int AS "n" FROM "WaveItem" WHERE "waveId" = $1::uuid GROUP BY "state", "canary"`, [waveId]);
    const c: WaveCounts = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0, Skipped: 0, canariesPending: 0, canariesUnfinished: 0 };
    for (const r of rows) {
      if (r.state in c) c[r.state as 'Pending'] += r.n;
      if (r.canary && r.state === 'Pending') c.canariesPending += r.n;
      if (r.canary && (r.state === 'Pending' || r.state === 'Running')) c.canariesUnfinished += r.n;
    }
    return c;
  }

  /**
   * Pending items in position order (canaries only, when asked), at most
   * `limit`, each with its cluster's Consul version and upgrade pin (what planning
   * the item's operation reads; null when the cluster is gone).
   */
  pendingItems(waveId: string, opts: { canariesOnly: boolean; limit: number }): Promise<PendingItem[]> {
    return sqlQuery<PendingItem>(this.db, `
      SELECT wi.*, c."consulVersion", c."upgradePin" FROM "WaveItem" wi LEFT JOIN "Cluster" c ON c."id" = wi."clusterId"
      WHERE wi."waveId" = $1::uuid AND wi."state" = 'Pending' AND (wi."canary" OR NOT $2::boolean)
      ORDER BY wi."position" LIMIT $3`, [waveId, opts.canariesOnly, opts.limit], 'wave-pending-items');
  }

  /** Marks every Pending item Skipped (a halted wave). */
  async skipPending(waveId: string): Promise<void> {
    await this.db.waveItem.updateMany({ where: { waveId, state: 'Pending' }, data: { state: 'Skipped', reason: 'the wave halted before its turn', finishedAt: new Date() } });
  }

  /**
   * Starts items in one statement: for each item still Pending whose cluster is
   * Running, the item is marked Running with its operation, and the operation,
   * its audit event and (snapshot actions) the snapshot row are written; an
   * item still Pending whose cluster is not Running is Skipped. An item with a
   * skipReason (its pin excludes the wave's version) is Skipped with that reason
   * and its audit event, no operation. An item whose cluster's pin is no longer
   * the one it was planned with stays Pending. An item another driver started
   * meanwhile is left alone (its row lock makes this statement see it Running).
   * Returns the started items' operation ids and the skipped positions.
   */
  async startItems(waveId: string, actor: string, items: ItemStart[]): Promise<{ started: string[]; skipped: number[] }> {
    if (items.length === 0) return { started: [], skipped: [] };
    const col = <T>(f: (i: ItemStart) => T) => items.map(f);
    const rows = await sqlQuery<{ what: string; position: number; operationId: string | null }>(this.db, `
      WITH clock AS (SELECT (now() AT TIME ZONE 'UTC') AS "at"), v AS (
        SELECT * FROM unnest($2::int[], $3::uuid[], $4::uuid[], $5::text[], $6::boolean[], $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[], $12::text[], $14::text[], $15::text[])
          AS v("position", "clusterId", "opId", "kind", "mutating", "params", "action", "snapId", "snapName", "snapKind", "blobKey", "skipReason", "pin")
      ), ok AS MATERIALIZED (
        UPDATE "WaveItem" wi SET "state" = 'Running', "operationId" = v."opId", "startedAt" = (SELECT "at" FROM clock)
        FROM v JOIN "Cluster" c ON c."id" = v."clusterId" AND c."state" = 'Running' AND (v."pin" IS NULL OR c."upgradePin" = v."pin")
        WHERE wi."waveId" = $1::uuid AND wi."position" = v."position" AND wi."clusterId" = v."clusterId" AND wi."state" = 'Pending'
          AND v."skipReason" IS NULL
        RETURNING v.*, c."tenantId"
      ), pinned AS MATERIALIZED (
        UPDATE "WaveItem" wi SET "state" = 'Skipped', "reason" = v."skipReason", "finishedAt" = (SELECT "at" FROM clock)
        FROM v JOIN "Cluster" c ON c."id" = v."clusterId" AND c."state" = 'Running' AND c."upgradePin" = v."pin"
        WHERE wi."waveId" = $1::uuid AND wi."position" = v."position" AND wi."clusterId" = v."clusterId" AND wi."state" = 'Pending'
          AND v."skipReason" IS NOT NULL
        RETURNING wi."position", v."clusterId", v."params", v."action", c."tenantId"
      ), skip AS (
        UPDATE "WaveItem" wi SET "state" = 'Skipped', "reason" = 'the cluster was not Running when its turn came', "finishedAt" = (SELECT "at" FROM clock)
        FROM v
        WHERE wi."waveId" = $1::uuid AND wi."position" = v."position" AND wi."clusterId" = v."clusterId" AND wi."state" = 'Pending'
          AND NOT EXISTS (SELECT 1 FROM "Cluster" c WHERE c."id" = v."clusterId" AND c."state" = 'Running')
        RETURNING wi."position"
      ), ops AS (
        ${ITEM_OPERATIONS}
      ), snaps AS (
        INSERT INTO "Snapshot" ("id", "tenantId", "clusterId", "name", "kind", "state", "blobKey", "operationId", "createdAt", "updatedAt")
        SELECT "snapId", "tenantId", "clusterId", "snapName", "snapKind", 'Pending', "blobKey", "opId", (SELECT "at" FROM clock), (SELECT "at" FROM clock)
        FROM ok WHERE "snapId" IS NOT NULL
        RETURNING 1
      ), audit AS (
        INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
        SELECT gen_random_uuid(), "tenantId", "clusterId", "opId", $13, "action", "params"::jsonb, (SELECT "at" FROM clock) FROM ok
        UNION ALL
        SELECT gen_random_uuid(), "tenantId", "clusterId", NULL, $13, "action", "params"::jsonb, (SELECT "at" FROM clock) FROM pinned
        RETURNING 1
      )
      SELECT 'started' AS "what", "position", "opId"::text AS "operationId" FROM ok
      UNION ALL SELECT 'skipped', "position", NULL FROM skip
      UNION ALL SELECT 'skipped', "position", NULL FROM pinned`,
    [
      waveId, col((i) => i.position), col((i) => i.clusterId), col((i) => i.operationId), col((i) => i.kind), col((i) => i.mutating),
      col((i) => JSON.stringify(i.params)), col((i) => i.auditAction), col((i) => i.snapshot?.id ?? null), col((i) => i.snapshot?.name ?? null),
      col((i) => i.snapshot?.kind ?? null), col((i) => i.snapshot?.blobKey ?? null), actor, col((i) => i.skipReason ?? null), col((i) => i.pin ?? null),
    ]);
    const started = rows.filter((r) => r.what === 'started').sort((a, b) => a.position - b.position).map((r) => r.operationId!);
    return { started, skipped: rows.filter((r) => r.what === 'skipped').map((r) => r.position) };
  }

  /** Ends a Running wave; false when it had ended already (another driver was first). */
  async finish(id: string, state: 'Succeeded' | 'Halted', reason: string | null): Promise<boolean> {
    const n = await this.db.wave.updateMany({ where: { id, state: 'Running' }, data: { state, stateReason: reason, finishedAt: new Date() } });
    return n.count === 1;
  }
}
