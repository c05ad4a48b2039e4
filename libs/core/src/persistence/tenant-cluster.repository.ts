import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { sqlQuery } from './prisma';
import { ReadBatch } from './read-batch';
import { closeSegmentSql } from './billing-segments';
import type { ClusterWithServers } from './cluster.repository';
import { insertCluster, type IdempotentResponse, type NewCluster } from './new-cluster';
import { insertOperation, operationInsert } from './operation-writer';
import { recordIdempotentAnswer, type IdempotentAnswer } from './idempotency.repository';
import type { UpgradePolicy } from './upgrade-schedule.repository';
import { DELETION_PROTECTION_OFF, isUuid, type AllowlistEntry } from '../../../contracts/src';
import { ClusterState, OperationKind, OperationState, isMutating } from '../model';
import { ConflictError } from '../errors';
import { Prisma, type Cluster, type ClusterServer, type Operation } from '../generated/prisma/client';

/** The columns the API's cluster view shows (apps/api/src/clusters/views.ts). */
export const VIEW_COLUMNS = [
  'id', 'name', 'state', 'stateReason', 'tier', 'serverCount', 'consulVersion', 'region', 'datacenter', 'subscriptionId', 'resourceGroup',
  'managedResourceGroup', 'publicEndpoint', 'ipAllowlist', 'publicAddress', 'deletionProtection', 'target', 'createdAt', 'updatedAt', 'runningSince', 'snapshotIntervalHours', 'snapshotRetention',
  'upgradeMode', 'upgradeWindow', 'upgradePin', 'caNotAfter', 'serverCertsNotAfter', 'health', 'healthReason', 'healthCheckedAt', 'primaryClusterId',
] as const satisfies readonly (keyof Cluster)[];
/** The columns of a cluster the view needs, whichever read they come from. */
export type ClusterViewColumns = Pick<Cluster, (typeof VIEW_COLUMNS)[number]>;
export type ClusterViewRow = ClusterViewColumns & { serverAddresses: string[] };

const LIVE_STATES_EXCLUDE_DELETED = { not: ClusterState.Deleted };

/** What requestDelete refuses: a federation primary that still has secondaries; a cluster with deletion protection on. */
export interface DeleteRefusals {
  refuseWithSecondaries?: boolean;
  refuseProtected?: boolean;
}

/** A PATCH's settings, each applied and audited when given (control-plane settings: no operation; the endpoint: an update-endpoint operation). */
export interface ClusterSettingsChange {
  snapshotPolicy?: { intervalHours: number; retention: number };
  upgradePolicy?: UpgradePolicy;
  deletionProtection?: boolean;
  /** The public endpoint on or off, and/or a whole new allowlist (checked by the contract). */
  endpoint?: { publicEndpoint?: boolean; ipAllowlist?: AllowlistEntry[] };
}

/** A cluster's public endpoint setting: on or off, and the sources it admits. */
export interface EndpointSetting {
  publicEndpoint: boolean;
  ipAllowlist: AllowlistEntry[];
}

/** The states in which the endpoint may change: an update-endpoint queues behind a create or an update in progress. */
const ENDPOINT_CHANGE_STATES: readonly string[] = [ClusterState.Creating, ClusterState.Running, ClusterState.Updating];

const sameSetting = (a: EndpointSetting, b: EndpointSetting) => a.publicEndpoint === b.publicEndpoint && JSON.stringify(a.ipAllowlist) === JSON.stringify(b.ipAllowlist);

/**
 * A tenant's clusters: what the API reads and asks for. Every read takes the tenant as a required
 * argument (a read without one does not compile), and every request takes a cluster so read;
 * the one read across tenants, findLiveByManagedApplication, says why. The worker's and the
 * schedulers' reads by id are ClusterRepository's, which the API does not provide.
 */
export class TenantClusterRepository {
  constructor(private readonly db: Db) {}

  /** The cluster and its create operation, audit event and (with a key) idempotency record: see insertCluster. */
  createWithOperation(input: NewCluster, idem?: IdempotentResponse): Promise<{ cluster: Cluster; operation: Operation }> {
    return insertCluster(this.db, input, idem);
  }

  /**
   * The API's hot read (every GET /v1/clusters/{id}): one prepared statement straight on the pool
   * (sqlQuery), not through Prisma's query compiler, which cost most of the request's CPU. Always
   * read afresh (nothing cached), and always scoped to the caller's tenant.
   */
  async findForTenant(tenantId: string, id: string): Promise<ClusterWithServers | null> {
    const rows = await sqlQuery<Cluster & { servers: ClusterServer[] }>(
      this.db,
      `SELECT c.*, COALESCE((SELECT json_agg(json_build_object('clusterId', s."clusterId", 'index', s."index", 'address', s."address", 'apiEndpoint', s."apiEndpoint") ORDER BY s."index")
                             FROM "ClusterServer" s WHERE s."clusterId" = c."id"), '[]'::json) AS "servers"
       FROM "Cluster" c WHERE c."id" = $1::uuid AND c."tenantId" = $2`,
      [id, tenantId],
      'cluster-for-tenant',
    );
    return rows[0] ?? null;
  }

  /**
   * The hot read (GET /v1/clusters/{id}): only the columns the cluster view shows, and the
   * servers' addresses as one text array (skipping the CA bundle, the lock, the schedules halves
   * what pg parses per request). Reads asked at the same moment go to the database in one prepared
   * statement (ReadBatch): each matched by its own id and tenant, so a read never answers another
   * tenant's cluster.
   */
  findViewForTenant(tenantId: string, id: string): Promise<ClusterViewRow | null> {
    // Not a UUID: no cluster has it (the route's contract refuses it first; the batch's cast must not fail for the others).
    if (!isUuid(id)) return Promise.resolve(null);
    return this.views.load([id, tenantId]);
  }

  private readonly views = new ReadBatch<readonly [string, string], ClusterViewRow>(async (keys) => {
    const rows = await sqlQuery<ClusterViewRow & { _i: bigint }>(
      this.db,
      `SELECT k."i" AS "_i", ${VIEW_COLUMNS.map((c) => `c."${c}"`).join(', ')},
              ARRAY(SELECT s."address" FROM "ClusterServer" s WHERE s."clusterId" = c."id" ORDER BY s."index") AS "serverAddresses"
       FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS k("id", "tenantId", "i")
       JOIN "Cluster" c ON c."id" = k."id" AND c."tenantId" = k."tenantId"`,
      [keys.map((k) => k[0]), keys.map((k) => k[1])],
      'cluster-views-for-tenants',
    );
    const answers: Array<ClusterViewRow | null> = keys.map(() => null);
    for (const { _i, ...row } of rows) answers[Number(_i) - 1] = row;
    return answers;
  });

  listForTenant(tenantId: string, opts: { includeDeleted?: boolean } = {}): Promise<ClusterWithServers[]> {
    return this.db.cluster.findMany({
      where: { tenantId, ...(opts.includeDeleted ? {} : { state: LIVE_STATES_EXCLUDE_DELETED }) },
      include: { servers: { orderBy: { index: 'asc' } } },
      orderBy: { createdAt: 'asc' },
    });
  }

  /**
   * The live cluster an Azure managed application made, if any, in any tenant: the one read here
   * without a tenant, for the managed application's notification (Azure's call, not a tenant's),
   * which proved the application and comes before the cluster's tenant is known.
   */
  findLiveByManagedApplication(applicationId: string): Promise<Cluster | null> {
    return this.db.cluster.findFirst({ where: { managedApplicationId: applicationId, state: { not: ClusterState.Deleted } } });
  }

  /**
   * Queues an operation on the cluster with its audit event in one statement; with an
   * Idempotency-Key, the key's record of the answer too, in the same transaction.
   */
  async addOperation(
    cluster: Cluster, kind: OperationKind, actor: string, action: string, params: Record<string, unknown> = {}, idem?: IdempotentAnswer<Operation>,
  ): Promise<Operation> {
    const id = randomUUID();
    const json = JSON.stringify(params);
    const now = new Date();
    const insert = async (db: Pick<Db, '$queryRaw'>) => {
      const rows = await db.$queryRaw<Operation[]>`
        WITH o AS (
          ${operationInsert({
            id: Prisma.sql`${id}::uuid`, tenantId: cluster.tenantId, clusterId: Prisma.sql`${cluster.id}::uuid`, kind, mutating: isMutating(kind),
            requestedBy: actor, params: Prisma.sql`${json}::jsonb`, at: now,
          }, Prisma.empty, Prisma.sql`*`)}
        ), a AS (
          INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
          SELECT ${randomUUID()}::uuid, o."tenantId", o."clusterId", o."id", ${actor}, ${action}, ${json}::jsonb, ${now} FROM o
          RETURNING 1
        )
        SELECT * FROM o`;
      const op = rows[0];
      return { ...op, seq: BigInt(op.seq) };
    };
    if (!idem) return insert(this.db);
    return this.db.$transaction(async (tx) => {
      const op = await insert(tx);
      await recordIdempotentAnswer(tx, cluster.tenantId, op.id, idem, op);
      return op;
    });
  }

  /** Queues the cluster's delete; a delete already queued or running is answered instead (see requestDeleteOnce). */
  async requestDelete(cluster: Cluster, actor: string, at: Date = new Date(), opts: DeleteRefusals = {}): Promise<Operation> {
    return (await this.requestDeleteOnce(cluster, actor, at, opts)).operation;
  }

  /**
   * Queues the delete and marks the cluster Deleting in one transaction (billing stops at this
   * moment), unless a delete is queued or running (`queued: false` with that one). Decided under
   * the cluster row's lock, so two requests at the same moment (two notifications,
   * a notification and DELETE /v1/clusters/{id}) queue one delete. A refusal (opts) throws before
   * anything is written; deletion protection is read under the same lock, so a PATCH turning it on
   * and a delete at the same moment never both win.
   */
  async requestDeleteOnce(cluster: Cluster, actor: string, at: Date = new Date(), opts: DeleteRefusals = {}): Promise<{ operation: Operation; queued: boolean }> {
    const id = randomUUID();
    return this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ state: string; deletionProtection: boolean }[]>`SELECT "state", "deletionProtection" FROM "Cluster" WHERE "id" = ${cluster.id}::uuid FOR UPDATE`;
      const pending = await tx.operation.findFirst({ where: { clusterId: cluster.id, kind: OperationKind.Delete, state: { in: [OperationState.Queued, OperationState.Running] } }, orderBy: { seq: 'asc' } });
      if (pending) return { operation: pending, queued: false };
      const isProtected = row?.deletionProtection ?? cluster.deletionProtection;
      if (opts.refuseProtected && isProtected) {
        throw new ConflictError('deletion_protected', `${cluster.name} has deletion protection on, so it was not deleted; turn it off first with PATCH /v1/clusters/${cluster.id} ${JSON.stringify(DELETION_PROTECTION_OFF)} (console: the cluster's Upgrade, scale and policies tab; CLI: hcs clusters update ${cluster.id} --deletion-protection off), then delete it`, { deletionProtection: true });
      }
      if (opts.refuseWithSecondaries) {
        // Under the primary's lock, which a secondary's create takes too: none joins while this is decided.
        const secondaries = await tx.cluster.findMany({ where: { primaryClusterId: cluster.id, state: { not: ClusterState.Deleted } }, select: { id: true, name: true, datacenter: true }, orderBy: { createdAt: 'asc' } });
        if (secondaries.length > 0) {
          throw new ConflictError('federation_has_secondaries', `${cluster.name} is the primary of a federation; delete its secondaries first: ${secondaries.map((s) => `${s.name} (${s.datacenter}, ${s.id})`).join(', ')}`, { secondaries });
        }
      }
      const previousState = row?.state ?? cluster.state;
      // A delete that went ahead although protection was on (an Azure managed application's) says so.
      const details = JSON.stringify(isProtected ? { previousState, deletionProtection: true } : { previousState });
      // The writes in one statement (a loaded machine waits for the CPU at every round trip: seven of them took
      // 15 s under a 50-cluster burst): the operation, the cluster Deleting, billing stopped, the audit event.
      const [op] = await tx.$queryRaw<Operation[]>`
        WITH o AS (
          ${operationInsert({
            id: Prisma.sql`${id}::uuid`, tenantId: cluster.tenantId, clusterId: Prisma.sql`${cluster.id}::uuid`, kind: OperationKind.Delete, mutating: isMutating(OperationKind.Delete),
            requestedBy: actor, params: Prisma.sql`${JSON.stringify({ previousState })}::jsonb`, at,
          }, Prisma.empty, Prisma.sql`*`)}
        ), c AS (
          UPDATE "Cluster" SET "state" = ${ClusterState.Deleting}, "stateReason" = NULL, "updatedAt" = ${at} WHERE "id" = ${cluster.id}::uuid RETURNING 1
        ), s AS (
          ${closeSegmentSql(cluster.id, at)} RETURNING 1
        ), a AS (
          INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
          SELECT ${randomUUID()}::uuid, o."tenantId", o."clusterId", o."id", ${actor}, 'cluster.delete.requested', ${details}::jsonb, ${at} FROM o
          RETURNING 1
        )
        SELECT * FROM o`;
      const operation: Operation = { ...op!, seq: BigInt(op!.seq) };
      return { operation, queued: true };
    });
  }

  /**
   * A PATCH's settings in one transaction under the cluster row's lock: all of them or none, each
   * with its audit event, and none on a cluster whose delete got there first (409 cluster_deleting).
   * Events say what each setting was under the lock. Deletion protection sent with its current
   * value changes nothing and writes no event. An endpoint change writes the new setting on the
   * row (what the cluster should have) and queues an update-endpoint operation that makes the
   * target match the row when it runs, audited as cluster.endpoint.changed with the before and
   * after; the same setting again queues nothing. Returns that operation, if one was queued.
   */
  async updateSettings(cluster: Cluster, change: ClusterSettingsChange, actor: string): Promise<Operation | null> {
    return this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<Pick<Cluster, 'state' | 'deletionProtection' | 'snapshotIntervalHours' | 'snapshotRetention' | 'upgradeMode' | 'upgradeWindow' | 'upgradePin' | 'publicEndpoint' | 'ipAllowlist'>[]>`
        SELECT "state", "deletionProtection", "snapshotIntervalHours", "snapshotRetention", "upgradeMode", "upgradeWindow", "upgradePin", "publicEndpoint", "ipAllowlist"
        FROM "Cluster" WHERE "id" = ${cluster.id}::uuid FOR UPDATE`;
      if (!row || row.state === ClusterState.Deleting || row.state === ClusterState.Deleted) throw new ConflictError('cluster_deleting', `the cluster is ${row?.state ?? ClusterState.Deleted}`);
      const audit = (action: string, details: Prisma.InputJsonObject, operationId?: string) =>
        tx.auditEvent.create({ data: { id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, actor, action, details, operationId } });
      const { snapshotPolicy: snapshot, upgradePolicy: upgrade, deletionProtection, endpoint } = change;
      let operation: Operation | null = null;
      if (endpoint) {
        const from: EndpointSetting = { publicEndpoint: row.publicEndpoint, ipAllowlist: row.ipAllowlist as unknown as AllowlistEntry[] };
        const to: EndpointSetting = { publicEndpoint: endpoint.publicEndpoint ?? from.publicEndpoint, ipAllowlist: endpoint.ipAllowlist ?? from.ipAllowlist };
        if (!sameSetting(from, to)) {
          // Checked first, so a refusal writes none of the other settings either.
          if (!ENDPOINT_CHANGE_STATES.includes(row.state)) throw new ConflictError('cluster_not_running', `the cluster is ${row.state}; its public endpoint can change once it is Running`);
          const id = randomUUID();
          const params = { from, to } as unknown as Prisma.InputJsonObject;
          operation = await insertOperation(tx, { id, tenantId: cluster.tenantId, clusterId: cluster.id, kind: OperationKind.UpdateEndpoint, requestedBy: actor, params });
          await tx.cluster.update({ where: { id: cluster.id }, data: { publicEndpoint: to.publicEndpoint, ipAllowlist: to.ipAllowlist as unknown as Prisma.InputJsonArray } });
          await audit('cluster.endpoint.changed', params, id);
        }
      }
      if (snapshot) {
        await tx.cluster.update({ where: { id: cluster.id }, data: { snapshotIntervalHours: snapshot.intervalHours, snapshotRetention: snapshot.retention } });
        await audit('cluster.snapshot-policy.changed', { from: { intervalHours: row.snapshotIntervalHours, retention: row.snapshotRetention }, to: snapshot });
      }
      if (upgrade) {
        // The scheduler reads the policy; it is not a change on the cluster itself.
        await tx.cluster.update({ where: { id: cluster.id }, data: { upgradeMode: upgrade.mode, upgradeWindow: upgrade.window ?? Prisma.DbNull, upgradePin: upgrade.pin } });
        await audit('cluster.upgrade-policy.changed', { from: { mode: row.upgradeMode, window: row.upgradeWindow ?? null, pin: row.upgradePin }, to: upgrade } as Prisma.InputJsonObject);
      }
      if (deletionProtection !== undefined && deletionProtection !== row.deletionProtection) {
        await tx.cluster.update({ where: { id: cluster.id }, data: { deletionProtection } });
        await audit('cluster.deletion-protection.changed', { from: row.deletionProtection, to: deletionProtection });
      }
      return operation;
    });
  }

  /** The cluster's earliest Queued or Running operation of a kind. */
  findPendingOperation(tenantId: string, clusterId: string, kind: OperationKind): Promise<Operation | null> {
    return this.db.operation.findFirst({
      where: { tenantId, clusterId, kind, state: { in: [OperationState.Queued, OperationState.Running] } },
      orderBy: { seq: 'asc' },
    });
  }
}
