import type { Db } from './prisma';
import { isUniqueViolation } from './prisma';
import { closeSegment, openSegment } from './billing-segments';
import { ClusterState } from '../model';
import { DIMENSION_SUFFIX } from '../catalog';
import type { Cluster, ClusterServer } from '../generated/prisma/client';

export type ClusterWithServers = Cluster & { servers: ClusterServer[] };

/**
 * Cluster rows as the worker and the schedulers run them: read and written by id, across
 * tenants (the operation being run already proved its tenant). System-only: the API's module
 * does not provide it; what the API reads goes through TenantClusterRepository, scoped by tenant.
 */
export class ClusterRepository {
  constructor(private readonly db: Db) {}

  /** Worker-side read: the operation already proved the tenant. */
  get(id: string): Promise<ClusterWithServers | null> {
    return this.db.cluster.findUnique({ where: { id }, include: { servers: { orderBy: { index: 'asc' } } } });
  }

  /** A primary's secondaries that are not deleted, oldest first (the federation's day-2 work reaches them). */
  liveSecondaries(primaryId: string): Promise<ClusterWithServers[]> {
    return this.db.cluster.findMany({
      where: { primaryClusterId: primaryId, state: { not: ClusterState.Deleted } }, include: { servers: { orderBy: { index: 'asc' } } }, orderBy: { createdAt: 'asc' },
    });
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
   * (127.<octet>.<slot>.<index+1>), unless it has them already. Slots are unique across clusters.
   * Single statements, no interactive transaction (whose 5 s limit a loaded machine overran when
   * 50 clusters were asked at once): the slot is taken by one UPDATE, among the lowest 64 free
   * ones at random, so creates at the same moment rarely race for one (a race that loses retries);
   * the servers' rows follow, idempotently.
   */
  async allocateAddresses(clusterId: string, serverCount: number, octet: number): Promise<ClusterServer[]> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const existing = await this.get(clusterId);
      if (!existing) throw new Error(`cluster ${clusterId} not found`);
      if (existing.addressSlot !== null && existing.servers.length >= serverCount) return existing.servers.slice(0, serverCount);
      let slot = existing.addressSlot;
      if (slot === null) {
        try {
          const rows = await this.db.$queryRaw<{ addressSlot: number | null }[]>`
            UPDATE "Cluster" SET "addressSlot" = COALESCE("addressSlot", (
              SELECT s FROM (
                SELECT s FROM generate_series(0, 65023) AS s
                WHERE NOT EXISTS (SELECT 1 FROM "Cluster" WHERE "addressSlot" = s) ORDER BY s LIMIT 64) AS free
              ORDER BY random() LIMIT 1))
            WHERE "id" = ${clusterId}::uuid RETURNING "addressSlot"`;
          slot = rows[0]?.addressSlot ?? null;
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          continue; // another cluster took that slot at the same moment
        }
        if (slot === null) throw new Error('no free loopback address block');
      }
      const third = slot % 254;
      const second = octet + Math.floor(slot / 254);
      const missing = Array.from({ length: Math.max(0, serverCount - existing.servers.length) }, (_, i) => existing.servers.length + i);
      await this.db.clusterServer.createMany({
        data: missing.map((index) => ({ clusterId, index, address: `127.${second}.${third}.${index + 1}` })),
        skipDuplicates: true,
      });
      const servers = await this.db.clusterServer.findMany({ where: { clusterId }, orderBy: { index: 'asc' } });
      if (servers.length >= serverCount) return servers.slice(0, serverCount);
    }
    throw new Error('could not allocate loopback addresses after 20 attempts');
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

  /** Where the cluster's public endpoint answers (null: there is none). */
  async recordPublicAddress(id: string, publicAddress: string | null): Promise<void> {
    await this.db.cluster.update({ where: { id }, data: { publicAddress } });
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

  /**
   * Create finishing after a delete was requested must not bring the cluster back to Running.
   * One statement: the state and the billing segment it opens (billing-segments.ts's rule, in SQL).
   */
  async markRunningIfCreating(id: string, at: Date = new Date()): Promise<boolean> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      WITH running AS (
        UPDATE "Cluster" SET "state" = ${ClusterState.Running}, "stateReason" = NULL, "runningSince" = ${at}, "updatedAt" = (now() AT TIME ZONE 'UTC')
        WHERE "id" = ${id}::uuid AND "state" IN (${ClusterState.Creating}, ${ClusterState.Failed})
        RETURNING "id", "tier"
      ), segment AS (
        INSERT INTO "BillingSegment" ("id", "clusterId", "dimension", "startedAt")
        SELECT gen_random_uuid(), "id", "tier" || ${DIMENSION_SUFFIX}, ${at} FROM running
        ON CONFLICT ("clusterId") WHERE "endedAt" IS NULL DO NOTHING
      )
      SELECT "id"::text AS "id" FROM running`;
    return rows.length === 1;
  }

}
