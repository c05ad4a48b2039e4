import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { operationInsert } from './operation-writer';
import type { UpgradePolicy } from './upgrade-schedule.repository';
import type { AllowlistEntry } from '../../../contracts/src';
import { ClusterState, OperationState } from '../model';
import { Prisma, type Cluster, type Operation } from '../generated/prisma/client';

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
  /** The public endpoint's sources, checked by the contract; default none. Kept when the endpoint is off. */
  ipAllowlist?: AllowlistEntry[];
  /** Default: off. */
  deletionProtection?: boolean;
  createdBy: string;
  snapshotIntervalHours?: number;
  snapshotRetention?: number;
  /** Default: manual, no window, no pin. */
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
  /** The federation's primary, for a secondary (made with a federation token). */
  primaryClusterId?: string;
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

/**
 * Writes the cluster, its create operation, the audit event and (with a key)
 * the idempotency record in one statement: atomic, and one round trip on the
 * API's hottest write path. A taken name or a raced Idempotency-Key is a
 * unique violation (see isUniqueViolation).
 */
export async function insertCluster(db: Pick<Db, '$queryRaw'>, input: NewCluster, idem?: IdempotentResponse): Promise<{ cluster: Cluster; operation: Operation }> {
  const now = new Date();
  const { upgradePolicy, managedApplication, primaryClusterId, ...columns } = input;
  const cluster: Cluster = {
    id: randomUUID(),
    ...columns,
    snapshotIntervalHours: input.snapshotIntervalHours ?? 24,
    snapshotRetention: input.snapshotRetention ?? 30,
    deletionProtection: input.deletionProtection ?? false,
    ipAllowlist: (input.ipAllowlist ?? []) as unknown as Prisma.JsonArray,
    publicAddress: null,
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
    upgradePin: upgradePolicy?.pin ?? 'none',
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
    primaryClusterId: primaryClusterId ?? null,
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
    upgradePolicy: { mode: cluster.upgradeMode, window: cluster.upgradeWindow, pin: cluster.upgradePin },
    deletionProtection: cluster.deletionProtection,
    publicEndpoint: cluster.publicEndpoint,
    ...(input.ipAllowlist?.length ? { ipAllowlist: input.ipAllowlist } : {}),
    ...(cluster.primaryClusterId ? { primaryClusterId: cluster.primaryClusterId } : {}),
  });
  const idemInsert = idem
    ? Prisma.sql`, i AS (
        INSERT INTO "IdempotencyRecord" ("tenantId", "key", "requestHash", "statusCode", "location", "body", "createdAt")
        SELECT ${input.tenantId}, ${idem.key}, ${idem.requestHash}, ${idem.statusCode},
               ${idem.location?.replace(':operationId', operation.id) ?? null}, ${JSON.stringify(idem.body(cluster, operation))}::jsonb, ${now}
        FROM o RETURNING 1)`
    : Prisma.empty;
  const rows = await db.$queryRaw<{ seq: bigint }[]>`
    WITH c AS (
      INSERT INTO "Cluster" ("id", "tenantId", "subscriptionId", "resourceGroup", "managedResourceGroup", "name", "region", "datacenter",
        "consulVersion", "tier", "serverCount", "publicEndpoint", "ipAllowlist", "deletionProtection", "target", "state", "createdBy", "createdAt", "updatedAt",
        "snapshotIntervalHours", "snapshotRetention", "upgradeMode", "upgradeWindow", "upgradePin", "billingResourceId", "billingPlanId",
        "managedApplicationId", "managedResourceGroupId", "vnetCidr", "primaryClusterId")
      VALUES (${cluster.id}::uuid, ${cluster.tenantId}, ${cluster.subscriptionId}, ${cluster.resourceGroup}, ${cluster.managedResourceGroup},
        ${cluster.name}, ${cluster.region}, ${cluster.datacenter}, ${cluster.consulVersion}, ${cluster.tier}, ${cluster.serverCount},
        ${cluster.publicEndpoint}, ${JSON.stringify(cluster.ipAllowlist)}::jsonb, ${cluster.deletionProtection}, ${cluster.target}, ${cluster.state}, ${cluster.createdBy}, ${now}, ${now},
        ${cluster.snapshotIntervalHours}, ${cluster.snapshotRetention},
        ${cluster.upgradeMode}, ${cluster.upgradeWindow === null ? null : JSON.stringify(cluster.upgradeWindow)}::jsonb, ${cluster.upgradePin}, ${cluster.billingResourceId}, ${cluster.billingPlanId},
        ${cluster.managedApplicationId}, ${cluster.managedResourceGroupId}, ${cluster.vnetCidr}, ${cluster.primaryClusterId}::uuid)
      RETURNING "id"
    ), o AS (
      ${operationInsert({
        id: Prisma.sql`${operation.id}::uuid`, tenantId: operation.tenantId, clusterId: Prisma.sql`c."id"`, kind: Prisma.sql`'create'`,
        mutating: Prisma.sql`true`, requestedBy: operation.requestedBy, params: Prisma.sql`'{}'::jsonb`, at: now,
      }, Prisma.sql`FROM c`, Prisma.sql`"id", "seq"`)}
    ), a AS (
      INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "operationId", "actor", "action", "details", "createdAt")
      SELECT ${randomUUID()}::uuid, ${input.tenantId}, ${cluster.id}::uuid, o."id", ${input.createdBy}, 'cluster.create.requested', ${audit}::jsonb, ${now} FROM o
      RETURNING 1
    )${idemInsert}
    SELECT o."seq" FROM o`;
  operation.seq = BigInt(rows[0].seq);
  return { cluster, operation };
}
