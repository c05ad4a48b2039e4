import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { insertCluster, type IdempotentResponse, type NewCluster } from './new-cluster';
import { ClusterState } from '../model';
import { ConflictError, UnprocessableError } from '../errors';
import { DEFAULT_VNET_CIDR, networksOverlap } from '../network';
import type { Cluster, Operation } from '../generated/prisma/client';

/** A member of a federation as its page shows it. */
export type FederationMember = Pick<Cluster, 'id' | 'name' | 'datacenter' | 'region' | 'state' | 'health' | 'runningSince' | 'target' | 'vnetCidr' | 'consulVersion'>;
const MEMBER_COLUMNS = { id: true, name: true, datacenter: true, region: true, state: true, health: true, runningSince: true, target: true, vnetCidr: true, consulVersion: true } as const;

export const hashFederationToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Why a federation token cannot make a secondary: the same answer for unknown, another tenant's, used and expired (nothing to probe). */
const UNUSABLE = () => new UnprocessableError('invalid_federation_token', 'the federation token is unknown, used or expired; ask the primary for a new one (POST /v1/clusters/{primaryId}/federation-token)', { field: 'federationToken' });

/**
 * Federations of a tenant's clusters: a primary's single-use tokens, and the secondaries made
 * with them. Every read and change takes the tenant; a token of another tenant is as unknown
 * as one never issued.
 */
export class FederationRepository {
  constructor(private readonly db: Db) {}

  /** A new token of `primary` (Running, not itself a secondary: the service checks), kept as its hash, with its audit event. */
  async issueToken(primary: Cluster, actor: string, ttlMs: number, now = new Date()): Promise<{ token: string; expiresAt: Date }> {
    const token = `mcf1.${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(now.getTime() + ttlMs);
    const id = randomUUID();
    await this.db.$transaction([
      this.db.federationToken.create({ data: { id, tenantId: primary.tenantId, primaryClusterId: primary.id, secretHash: hashFederationToken(token), createdBy: actor, createdAt: now, expiresAt } }),
      this.db.auditEvent.create({ data: { id: randomUUID(), tenantId: primary.tenantId, clusterId: primary.id, actor, action: 'cluster.federation-token.issued', details: { tokenId: id, expiresAt: expiresAt.toISOString() } } }),
    ]);
    return { token, expiresAt };
  }

  /**
   * Creates a secondary with a federation token, in one transaction: the token used up, the
   * primary's row locked while its federation is checked (Running, not a secondary; the new
   * datacenter name unique and its address space apart from every member's; the same target and
   * Consul version), then the cluster and its create operation written. Refused: nothing written,
   * the token still usable.
   */
  async createSecondary(input: NewCluster, token: string, idem?: IdempotentResponse, now = new Date()): Promise<{ cluster: Cluster; operation: Operation }> {
    return this.db.$transaction(async (tx) => {
      const [found] = await tx.$queryRaw<{ id: string; tenantId: string; primaryClusterId: string; expiresAt: Date; usedAt: Date | null }[]>`
        SELECT "id", "tenantId", "primaryClusterId", "expiresAt", "usedAt" FROM "FederationToken" WHERE "secretHash" = ${hashFederationToken(token)} FOR UPDATE`;
      if (!found || found.tenantId !== input.tenantId || found.usedAt !== null || found.expiresAt.getTime() <= now.getTime()) throw UNUSABLE();
      const [primary] = await tx.$queryRaw<Cluster[]>`SELECT * FROM "Cluster" WHERE "id" = ${found.primaryClusterId}::uuid FOR UPDATE`;
      if (!primary || primary.state !== ClusterState.Running) {
        throw new ConflictError('primary_not_running', `the federation's primary ${primary?.name ?? found.primaryClusterId} is ${primary?.state ?? 'gone'}; a secondary joins a Running primary`, { primaryClusterId: found.primaryClusterId });
      }
      const members = [primary, ...(await tx.cluster.findMany({ where: { primaryClusterId: primary.id, state: { not: ClusterState.Deleted } }, select: MEMBER_COLUMNS }))];
      refuseClash(input, primary, members);
      const created = await insertCluster(tx, { ...input, primaryClusterId: primary.id }, idem);
      await tx.federationToken.update({ where: { id: found.id }, data: { usedAt: now, usedByClusterId: created.cluster.id } });
      return created;
    });
  }

  /** The federation of a tenant's cluster: its primary (itself or its primary) and the primary's live secondaries, oldest first. */
  async federationOf(tenantId: string, cluster: Pick<Cluster, 'id' | 'primaryClusterId'>): Promise<{ primary: FederationMember | null; secondaries: FederationMember[] }> {
    const primaryId = cluster.primaryClusterId ?? cluster.id;
    const [primary, secondaries] = await Promise.all([
      this.db.cluster.findFirst({ where: { id: primaryId, tenantId }, select: MEMBER_COLUMNS }),
      this.liveSecondaries(tenantId, primaryId),
    ]);
    return { primary, secondaries };
  }

  liveSecondaries(tenantId: string, primaryId: string): Promise<FederationMember[]> {
    return this.db.cluster.findMany({ where: { tenantId, primaryClusterId: primaryId, state: { not: ClusterState.Deleted } }, select: MEMBER_COLUMNS, orderBy: { createdAt: 'asc' } });
  }
}

/** The rules of a federation a new member must keep (HCS: unique datacenters, address spaces that do not overlap). */
function refuseClash(input: NewCluster, primary: Cluster, members: readonly FederationMember[]): void {
  const target = input.target ?? 'local';
  if (primary.primaryClusterId !== null) throw new ConflictError('primary_is_secondary', `${primary.name} is itself a secondary; federation tokens come from the primary`);
  if (primary.target !== target) throw new ConflictError('federation_target_mismatch', `the primary runs on ${primary.target}; a secondary must run there too`, { field: 'federationToken' });
  if (input.consulVersion !== primary.consulVersion) {
    throw new UnprocessableError('federation_version_mismatch', `the primary runs Consul ${primary.consulVersion}; create the secondary with consulVersion ${primary.consulVersion}`, { field: 'consulVersion' });
  }
  const sameDc = members.find((m) => m.datacenter === input.datacenter);
  if (sameDc) {
    throw new UnprocessableError('datacenter_taken', `datacenter '${input.datacenter}' is ${sameDc.name}'s in this federation; every member needs its own (set datacenter)`, { field: 'datacenter' });
  }
  if (target === 'azure') {
    const mine = input.vnetCidr ?? DEFAULT_VNET_CIDR;
    const overlapping = members.find((m) => networksOverlap(mine, m.vnetCidr ?? DEFAULT_VNET_CIDR));
    if (overlapping) {
      throw new UnprocessableError('vnet_overlaps', `vnetCidr ${mine} overlaps ${overlapping.name}'s ${overlapping.vnetCidr ?? DEFAULT_VNET_CIDR}; peered networks need address spaces apart (set vnetCidr)`, { field: 'vnetCidr' });
    }
  }
}
