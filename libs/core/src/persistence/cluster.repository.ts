import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { isUniqueViolation, sqlQuery } from './prisma';
import { closeSegment, openSegment } from './billing-segments';
import type { UpgradePolicy } from './upgrade-schedule.repository';
import { ClusterState, OperationState, type OperationKind, isMutating } from '../model';
import { Prisma, type Cluster, type ClusterServer, type Operation } from '../generated/prisma/client';

export type ClusterWithServers = Cluster & { servers: ClusterServer[] };

export interface NewCluster {
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  region: string;
  datacenter: string;
  consulVersion: string;
  tier: string;
  serverCount: number;
  publicEndpoint: boolean;
  createdBy: string;
  snapshotIntervalHours?: number;
  snapshotRetention?: number;
  /** Default: manual, no window. */
  upgradePolicy?: UpgradePolicy;
  /**
   * What usage is metered against. Never from a caller's request: a fresh random id by default,
   * the managed application's billingDetails.resourceUsageId when Azure created the cluster.
   */
  billingResourceId?: string;
  /** The marketplace plan it was bought with (a managed application's), metered under that plan's id. */
  billingPlanId?: string;
  /** What runs its servers (`local`, `azure`); default `local`. */
  target?: string;
  /** The cluster's VNet address space on the Azure target (a managed application's comes with it). */
  vnetCidr?: string;
  /** Set when an Azure managed application made the cluster (POST /resource). */
  managedApplication?: ManagedApplicationRef;
}

/** The managed application a cluster belongs to, and the resource group Azure made for it. */
export interface ManagedApplicationRef {
  /** Its resource id, lower case. */
  applicationId: string;
  managedResourceGroupId: string;
  vnetCidr: string;
}

export interface IdempotentResponse {
  key: string;
  requestHash: string;
  statusCode: number;
  location: string | null;
  body: (cluster: Cluster, operation: Operation) => unknown;
}

/** The columns the API's cluster view shows (apps/api/src/clusters/views.ts). */
export const VIEW_COLUMNS = [
  'id', 'name', 'state', 'stateReason', 'tier', 'serverCount', 'consulVersion', 'region', 'datacenter', 'subscriptionId', 'resourceGroup',
  'managedResourceGroup', 'publicEndpoint', 'target', 'createdAt', 'updatedAt', 'runningSince', 'snapshotIntervalHours', 'snapshotRetention',
  'upgradeMode', 'upgradeWindow', 'caNotAfter', 'serverCertsNotAfter', 'health', 'healthReason', 'healthCheckedAt',
] as const satisfies readonly (keyof Cluster)[];
/** The columns of a cluster the view needs, whichever read they come from. */
export type ClusterViewColumns = Pick<Cluster, (typeof VIEW_COLUMNS)[number]>;
export type ClusterViewRow = ClusterViewColumns & { serverAddresses: string[] };

const LIVE_STATES_EXCLUDE_DELETED = { not: ClusterState.Deleted };

/** Clusters and their loopback addresses. Tenant-facing reads take the tenant as a required argument. */
export class ClusterRepository {
  constructor(private readonly db: Db) {}

  /**
   * Writes the cluster, its create operation, the audit event and (with a key)
   * the idempotency record in one statement: atomic, and one round trip on the
   * API's hottest write path. A taken name or a raced Idempotency-Key is a
   * unique violation (see isUniqueViolation).
   */
  async createWithOperation(input: NewCluster, idem?: IdempotentResponse): Promise<{ cluster: Cluster; operation: Operation }> {
    const now = new Date();
    const { upgradePolicy, managedApplication, ...columns } = input;
    const cluster: Cluster = {
      id: randomUUID(),
      ...columns,
      snapshotIntervalHours: input.snapshotIntervalHours ?? 24,
      snapshotRetention: input.snapshotRetention ?? 30,
      managedResourceGroup: '',
      target: input.target ?? 'local',
      state: ClusterState.Creating,
      stateReason: null,
      addressSlot: null,
      lockedByOperationId: null,
      createdAt: now,
      updatedAt: now,
      runningSince: null,
      deletedAt: null,
      lastScheduledSnapshotAt: null,
      health: 'unknown',
      healthReason: null,
      healthCheckedAt: null,
      upgradeMode: upgradePolicy?.mode ?? 'manual',
      upgradeWindow: upgradePolicy?.window ?? null,
      lastAutoUpgradeAt: null,
      caCertPem: null,
      caNotAfter: null,
      serverCertsNotAfter: null,
      certRotationQueuedAt: null,
      billingResourceId: input.billingResourceId ?? randomUUID(),
      billingPlanId: input.billingPlanId ?? null,
      managedApplicationId: managedApplication?.applicationId ?? null,
      managedResourceGroupId: managedApplication?.managedResourceGroupId ?? null,
      vnetCidr: managedApplication?.vnetCidr ?? input.vnetCidr ?? null,
    };
    cluster.managedResourceGroup = managedApplication
      ? managedApplication.managedResourceGroupId.split('/').pop()!
      : `mrg-consul-${input.name}-${cluster.id.slice(0, 8)}`;
    const operation: Operation = {
      id: randomUUID(),
      seq: 0n,
      tenantId: input.tenantId,
      clusterId: cluster.id,
      kind: 'create',
      mutating: true,
      params: {},
      state: OperationState.Queued,
      progress: 0,
      steps: [],
      currentStep: null,
      attempts: 0,
      error: null,
      result: null,
      targetState: {},
      resumeStep: null,
      targetChange: null,
      targetChangeSince: null,
      requestedBy: input.createdBy,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
      claimedBy: null,
      claimId: null,
      leaseUntil: null,
    };
    const audit = JSON.stringify({
      name: input.name, tier: input.tier, region: input.region, consulVersion: input.consulVersion,
      upgradePolicy: { mode: cluster.upgradeMode, window: cluster.upgradeWindow },
    });
    const idemInsert = idem
      ? Prisma.sql`, i AS (
          INSERT INTO "IdempotencyRecord" ("tenantId", "key", "requestHash", "statusCode", "location", "body", "createdAt")
          SELECT ${input.tenantId}, ${idem.key}, ${idem.requestHash}, ${idem.statusCode},
                 ${idem.location?.replace(':operationId', operation.id) ?? null}, ${JSON.stringify(idem.body(cluster, operation))}::jsonb, ${now}
          FROM o RETURNING 1)`
      : Prisma.empty;
    const rows = await this.db.$queryRaw<{ seq: bigint }[]>`
      WITH c AS (
        INSERT INTO "Cluster" ("id", "tenantId", "subscriptionId", "resourceGroup", "managedResourceGroup", "name", "region", "datacenter",
          "consulVersion", "tier", "serverCount", "publicEndpoint", "target", "state", "createdBy", "createdAt", "updatedAt",
          "snapshotIntervalHours", "snapshotRetention", "upgradeMode", "upgradeWindow", "billingResourceId", "billingPlanId",
          "managedApplicationId", "managedResourceGroupId", "vnetCidr")
        VALUES (${cluster.id}::uuid, ${cluster.tenantId}, ${cluster.subscriptionId}, ${cluster.resourceGroup}, ${cluster.managedResourceGroup},
          ${cluster.name}, ${cluster.region}, ${cluster.datacenter}, ${cluster.consulVersion}, ${cluster.tier}, ${cluster.serverCount},
          ${cluster.publicEndpoint}, ${cluster.target}, ${cluster.state}, ${cluster.createdBy}, ${now}, ${now},
          ${cluster.snapshotIntervalHours}, ${cluster.snapshotRetention},
          ${cluster.upgradeMode}, ${cluster.upgradeWindow === null ? null : JSON.stringify(cluster.upgradeWindow)}::jsonb, ${cluster.billingResourceId}, ${cluster.billingPlanId},
          ${cluster.managedApplicationId}, ${cluster.managedResourceGroupId}, ${cluster.vnetCidr})
        RETURNING "id"
      ), o AS (
        INSERT INTO "Operation" ("id", "tenantId", "clusterId", "kind", "mutating", "state", "requestedBy", "createdAt", "updatedAt")
        SELECT ${operation.id}::uuid, ${operation.tenantId}, c."id", 'create', true, ${operation.state}, ${operation.requestedBy}, ${now}, ${now} FROM c
        RETURNING "id", "seq"
      ), a AS (
        INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
        SELECT ${randomUUID()}::uuid, ${input.tenantId}, ${cluster.id}::uuid, o."id", ${input.createdBy}, 'cluster.create.requested', ${audit}::jsonb, ${now} FROM o
        RETURNING 1
      )${idemInsert}
      SELECT o."seq" FROM o`;
    operation.seq = BigInt(rows[0].seq);
    return { cluster, operation };
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
   * servers' addresses as one text array, as one prepared statement. Skipping the rest (the CA
   * bundle, the lock, the schedules) halves what pg parses per request.
   */
  async findViewForTenant(tenantId: string, id: string): Promise<ClusterViewRow | null> {
    const rows = await sqlQuery<ClusterViewRow>(
      this.db,
      `SELECT ${VIEW_COLUMNS.map((c) => `c."${c}"`).join(', ')},
              ARRAY(SELECT s."address" FROM "ClusterServer" s WHERE s."clusterId" = c."id" ORDER BY s."index") AS "serverAddresses"
       FROM "Cluster" c WHERE c."id" = $1::uuid AND c."tenantId" = $2`,
      [id, tenantId],
      'cluster-view-for-tenant',
    );
    return rows[0] ?? null;
  }

  listForTenant(tenantId: string, opts: { includeDeleted?: boolean } = {}): Promise<ClusterWithServers[]> {
    return this.db.cluster.findMany({
      where: { tenantId, ...(opts.includeDeleted ? {} : { state: LIVE_STATES_EXCLUDE_DELETED }) },
      include: { servers: { orderBy: { index: 'asc' } } },
      orderBy: { createdAt: 'asc' },
    });
  }

  /** Worker-side read: the operation already proved the tenant. */
  get(id: string): Promise<ClusterWithServers | null> {
    return this.db.cluster.findUnique({ where: { id }, include: { servers: { orderBy: { index: 'asc' } } } });
  }

  async setState(id: string, state: ClusterState, reason: string | null = null): Promise<void> {
    const data: { state: string; stateReason: string | null; runningSince?: Date; deletedAt?: Date } = { state, stateReason: reason };
    if (state === ClusterState.Deleted) data.deletedAt = new Date();
    await this.db.cluster.update({ where: { id }, data });
  }

  async releaseLock(clusterId: string, operationId: string): Promise<void> {
    await this.db.cluster.updateMany({ where: { id: clusterId, lockedByOperationId: operationId }, data: { lockedByOperationId: null } });
  }

  /**
   * The sweeper: frees every cluster lock held by an operation that has ended
   * or no longer exists (each end frees its lock in its own statement; this
   * is for what a crash, a race or a hand edit left). A lock held by a Queued
   * or Running operation is left alone. An ended operation never takes a lock
   * again (the claim takes one only for an operation it sets Running under the
   * row's lock), so what the snapshot shows ended stays ended.
   * Returns the clusters freed.
   */
  async releaseLocksOfEndedOperations(): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      UPDATE "Cluster" c SET "lockedByOperationId" = NULL, "updatedAt" = (now() AT TIME ZONE 'UTC')
      WHERE c."lockedByOperationId" IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM "Operation" o WHERE o."id" = c."lockedByOperationId" AND o."state" IN ('Queued', 'Running'))
      RETURNING c."id"::text AS "id"`;
    return rows.map((r) => r.id);
  }

  /**
   * Gives the cluster a block of loopback addresses, one per server
   * (127.<octet>.<slot>.<index+1>), unless it has them already. Slots are
   * unique across clusters; a race on the same slot retries with the next one.
   */
  async allocateAddresses(clusterId: string, serverCount: number, octet: number): Promise<ClusterServer[]> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const existing = await this.get(clusterId);
      if (!existing) throw new Error(`cluster ${clusterId} not found`);
      if (existing.addressSlot !== null && existing.servers.length >= serverCount) return existing.servers.slice(0, serverCount);
      try {
        return await this.db.$transaction(async (tx) => {
          let slot = existing.addressSlot;
          if (slot === null) {
            const free = await tx.$queryRaw<{ s: number }[]>`
              SELECT s FROM generate_series(0, 65023) AS s
              WHERE NOT EXISTS (SELECT 1 FROM "Cluster" WHERE "addressSlot" = s) LIMIT 1`;
            if (free.length === 0) throw new Error('no free loopback address block');
            slot = free[0].s;
            await tx.cluster.update({ where: { id: clusterId }, data: { addressSlot: slot } });
          }
          const third = slot % 254;
          const second = octet + Math.floor(slot / 254);
          for (let index = existing.servers.length; index < serverCount; index++) {
            await tx.clusterServer.create({ data: { clusterId, index, address: `127.${second}.${third}.${index + 1}` } });
          }
          return tx.clusterServer.findMany({ where: { clusterId }, orderBy: { index: 'asc' } });
        });
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
      }
    }
    throw new Error('could not allocate loopback addresses after 20 attempts');
  }

  /** The live cluster an Azure managed application made, if any (any tenant: the notification proved the application). */
  findLiveByManagedApplication(applicationId: string): Promise<Cluster | null> {
    return this.db.cluster.findFirst({ where: { managedApplicationId: applicationId, state: { not: ClusterState.Deleted } } });
  }

  /** The whole fleet across tenants (SRE only), filtered. */
  listFleet(filter: { state?: string; consulVersion?: string; health?: string; region?: string }, limit = 500): Promise<ClusterWithServers[]> {
    return this.db.cluster.findMany({
      where: {
        ...(filter.state ? { state: filter.state } : { state: { not: ClusterState.Deleted } }),
        ...(filter.consulVersion ? { consulVersion: filter.consulVersion } : {}),
        ...(filter.health ? { health: filter.health } : {}),
        ...(filter.region ? { region: filter.region } : {}),
      },
      include: { servers: { orderBy: { index: 'asc' } } },
      orderBy: { createdAt: 'asc' },
      take: limit,
    });
  }

  /** Clusters the health monitor watches: Running or Updating, with their servers. */
  listMonitored(): Promise<ClusterWithServers[]> {
    return this.db.cluster.findMany({
      where: { state: { in: [ClusterState.Running, ClusterState.Updating] } },
      include: { servers: { orderBy: { index: 'asc' } } },
    });
  }

  /**
   * The public part of the cluster's PKI, written by the worker whenever the
   * sealed PKI changes: the CA bundle clients trust and the expiry dates.
   */
  async recordCertificates(id: string, dates: { caBundlePem: string; caNotAfter: Date; serverCertsNotAfter: Date | null }): Promise<void> {
    await this.db.cluster.update({
      where: { id },
      data: { caCertPem: dates.caBundlePem, caNotAfter: dates.caNotAfter, serverCertsNotAfter: dates.serverCertsNotAfter },
    });
  }

  /** Clusters made before their certificate dates were recorded (filled from the sealed PKI by the worker). */
  async listWithoutCertificateDates(limit = 100): Promise<string[]> {
    const rows = await this.db.cluster.findMany({
      where: { caCertPem: null, state: { notIn: [ClusterState.Deleted, ClusterState.Deleting] } }, select: { id: true }, take: limit, orderBy: { createdAt: 'asc' },
    });
    return rows.map((r) => r.id);
  }

  async recordHealth(id: string, health: string, reason: string | null, at: Date): Promise<void> {
    await this.db.cluster.update({ where: { id }, data: { health, healthReason: reason, healthCheckedAt: at } });
  }

  /** Forgets the addresses of servers from `count` on (scaling down); the slot stays the cluster's. */
  async releaseServersFrom(clusterId: string, count: number): Promise<void> {
    await this.db.clusterServer.deleteMany({ where: { clusterId, index: { gte: count } } });
  }

  async setConsulVersion(id: string, consulVersion: string): Promise<void> {
    await this.db.cluster.update({ where: { id }, data: { consulVersion, state: ClusterState.Running, stateReason: null } });
  }

  /** Scaling finished: the new tier is the cluster's from now on (billing splits the hour here). */
  async completeScale(id: string, tier: string, serverCount: number, at: Date = new Date()): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const before = await tx.cluster.findUniqueOrThrow({ where: { id }, select: { tier: true } });
      await tx.cluster.update({ where: { id }, data: { tier, serverCount, state: ClusterState.Running, stateReason: null } });
      if (before.tier === tier) return;
      if (await closeSegment(tx, id, at)) await openSegment(tx, id, tier, at);
    });
  }

  /**
   * Records the given addresses as servers 0..n-1 of the cluster where it has
   * none yet (the Azure target plans them in the cluster's own subnet); the
   * existing ones stay. Returns the cluster's first `addresses.length` servers.
   */
  async assignAddresses(clusterId: string, addresses: readonly string[]): Promise<ClusterServer[]> {
    await this.db.clusterServer.createMany({ data: addresses.map((address, index) => ({ clusterId, index, address })), skipDuplicates: true });
    const servers = await this.db.clusterServer.findMany({ where: { clusterId }, orderBy: { index: 'asc' } });
    return servers.slice(0, addresses.length);
  }

  /**
   * Records where the control plane reaches servers' HTTPS APIs (`host:port`; null: the address
   * itself), by the server's address. Only rows whose value changes are written; servers not
   * named keep theirs. Returns how many changed.
   */
  async setServerApiEndpoints(clusterId: string, endpoints: ReadonlyMap<string, string | null>): Promise<number> {
    if (endpoints.size === 0) return 0;
    return this.db.$executeRaw`
      UPDATE "ClusterServer" s SET "apiEndpoint" = v."endpoint"
      FROM unnest(${[...endpoints.keys()]}::text[], ${[...endpoints.values()]}::text[]) AS v("address", "endpoint")
      WHERE s."clusterId" = ${clusterId}::uuid AND s."address" = v."address" AND s."apiEndpoint" IS DISTINCT FROM v."endpoint"`;
  }

  /**
   * The operation that holds the cluster now and the target state saved on it
   * (an ARM deployment's poller state, by deployment name).
   */
  async lockingOperationTargetState(clusterId: string): Promise<{ operationId: string; states: Record<string, string> } | null> {
    const rows = await this.db.$queryRaw<{ id: string; targetState: Record<string, string> | null }[]>`
      SELECT o."id", o."targetState" FROM "Cluster" c JOIN "Operation" o ON o."id" = c."lockedByOperationId" WHERE c."id" = ${clusterId}::uuid`;
    return rows[0] ? { operationId: rows[0].id, states: rows[0].targetState ?? {} } : null;
  }

  /** Saves one entry of an operation's target state (merged into what it has). */
  async saveOperationTargetState(operationId: string, key: string, state: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "Operation" SET "targetState" = "targetState" || jsonb_build_object(${key}::text, ${state}::text) WHERE "id" = ${operationId}::uuid`;
  }

  async releaseAddresses(clusterId: string): Promise<void> {
    await this.db.$transaction([
      this.db.clusterServer.deleteMany({ where: { clusterId } }),
      this.db.cluster.update({ where: { id: clusterId }, data: { addressSlot: null } }),
    ]);
  }

  /** Queues a new operation on a cluster, with its audit event: one statement (atomic, one round trip). */
  async addOperation(cluster: Cluster, kind: OperationKind, actor: string, action: string, params: Record<string, unknown> = {}): Promise<Operation> {
    const id = randomUUID();
    const json = JSON.stringify(params);
    const now = new Date();
    const rows = await this.db.$queryRaw<Operation[]>`
      WITH o AS (
        INSERT INTO "Operation" ("id", "tenantId", "clusterId", "kind", "mutating", "state", "requestedBy", "params", "createdAt", "updatedAt")
        VALUES (${id}::uuid, ${cluster.tenantId}, ${cluster.id}::uuid, ${kind}, ${isMutating(kind)}, ${OperationState.Queued}, ${actor}, ${json}::jsonb, ${now}, ${now})
        RETURNING *
      ), a AS (
        INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
        SELECT ${randomUUID()}::uuid, o."tenantId", o."clusterId", o."id", ${actor}, ${action}, ${json}::jsonb, ${now} FROM o
        RETURNING 1
      )
      SELECT * FROM o`;
    const op = rows[0];
    return { ...op, seq: BigInt(op.seq) };
  }

  /** Queues the cluster's delete; a delete already queued or running is answered instead (see requestDeleteOnce). */
  async requestDelete(cluster: Cluster, actor: string, at: Date = new Date()): Promise<Operation> {
    return (await this.requestDeleteOnce(cluster, actor, at)).operation;
  }

  /**
   * Queues the delete and marks the cluster Deleting in one transaction (billing stops at this
   * moment), unless a delete is queued or running (`queued: false` with that one). Decided under
   * the cluster row's lock, so two requests at the same moment (two notifications,
   * a notification and DELETE /v1/clusters/{id}) queue one delete.
   */
  async requestDeleteOnce(cluster: Cluster, actor: string, at: Date = new Date()): Promise<{ operation: Operation; queued: boolean }> {
    const id = randomUUID();
    return this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ state: string }[]>`SELECT "state" FROM "Cluster" WHERE "id" = ${cluster.id}::uuid FOR UPDATE`;
      const pending = await tx.operation.findFirst({ where: { clusterId: cluster.id, kind: 'delete', state: { in: [OperationState.Queued, OperationState.Running] } }, orderBy: { seq: 'asc' } });
      if (pending) return { operation: pending, queued: false };
      const previousState = row?.state ?? cluster.state;
      const operation = await tx.operation.create({
        data: { id, tenantId: cluster.tenantId, clusterId: cluster.id, kind: 'delete', mutating: true, state: OperationState.Queued, requestedBy: actor, params: { previousState } },
      });
      await tx.cluster.update({ where: { id: cluster.id }, data: { state: ClusterState.Deleting, stateReason: null } });
      await closeSegment(tx, cluster.id, at);
      await tx.auditEvent.create({
        data: { id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, operationId: id, actor, action: 'cluster.delete.requested', details: { previousState } },
      });
      return { operation, queued: true };
    });
  }

  /** Changes the snapshot policy (a control-plane setting: nothing to do on the cluster itself). */
  async updateSnapshotPolicy(cluster: Cluster, policy: { intervalHours: number; retention: number }, actor: string): Promise<void> {
    await this.db.$transaction([
      this.db.cluster.update({ where: { id: cluster.id }, data: { snapshotIntervalHours: policy.intervalHours, snapshotRetention: policy.retention } }),
      this.db.auditEvent.create({
        data: {
          id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, actor, action: 'cluster.snapshot-policy.changed',
          details: { from: { intervalHours: cluster.snapshotIntervalHours, retention: cluster.snapshotRetention }, to: policy },
        },
      }),
    ]);
  }

  /** Changes the upgrade policy (a control-plane setting: the worker's upgrade scheduler reads it). */
  async updateUpgradePolicy(cluster: Cluster, policy: UpgradePolicy, actor: string): Promise<void> {
    await this.db.$transaction([
      this.db.cluster.update({ where: { id: cluster.id }, data: { upgradeMode: policy.mode, upgradeWindow: policy.window ?? Prisma.DbNull } }),
      this.db.auditEvent.create({
        data: {
          id: randomUUID(), tenantId: cluster.tenantId, clusterId: cluster.id, actor, action: 'cluster.upgrade-policy.changed',
          details: { from: { mode: cluster.upgradeMode, window: cluster.upgradeWindow ?? null }, to: policy } as Prisma.InputJsonObject,
        },
      }),
    ]);
  }

  findPendingOperation(clusterId: string, kind: OperationKind): Promise<Operation | null> {
    return this.db.operation.findFirst({
      where: { clusterId, kind, state: { in: [OperationState.Queued, OperationState.Running] } },
      orderBy: { seq: 'asc' },
    });
  }

  /** Create finishing after a delete was requested must not bring the cluster back to Running. */
  async markRunningIfCreating(id: string, at: Date = new Date()): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const n = await tx.cluster.updateMany({
        where: { id, state: { in: [ClusterState.Creating, ClusterState.Failed] } },
        data: { state: ClusterState.Running, stateReason: null, runningSince: at },
      });
      if (n.count !== 1) return false;
      const { tier } = await tx.cluster.findUniqueOrThrow({ where: { id }, select: { tier: true } });
      await openSegment(tx, id, tier, at);
      return true;
    });
  }
}
