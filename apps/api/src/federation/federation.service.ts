import { Inject, Injectable } from '@nestjs/common';
import { FEDERATION_STATES, type FederationMemberView, type FederationTokenView, type FederationView } from '../../../../libs/contracts/src';
import { ClusterState, ConflictError, FederationRepository, type Config, type FederationMember } from '../../../../libs/core/src';
import type { Principal } from '../auth/principal';
import { ClustersService } from '../clusters/clusters.service';
import { CONFIG } from '../tokens';

/** Federations: a primary's tokens, and what a member's page shows of its federation. */
@Injectable()
export class FederationService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly clusters: ClustersService,
    private readonly federations: FederationRepository,
  ) {}

  /** A single-use token a new cluster of this tenant joins this (Running, primary-capable) cluster's federation with. */
  async issueToken(caller: Principal, id: string): Promise<FederationTokenView> {
    const cluster = await this.clusters.require(caller, id);
    if (cluster.primaryClusterId !== null) {
      throw new ConflictError('secondary_cannot_issue', `${cluster.name} is a secondary; federation tokens come from its primary (${cluster.primaryClusterId})`, { primaryClusterId: cluster.primaryClusterId });
    }
    if (cluster.state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; it can issue federation tokens once it is Running`);
    const { token, expiresAt } = await this.federations.issueToken(cluster, caller.userId, this.config.FEDERATION_TOKEN_TTL_MS);
    return { token, primaryClusterId: cluster.id, primaryDatacenter: cluster.datacenter, expiresAt: expiresAt.toISOString() };
  }

  async federation(caller: Principal, id: string): Promise<FederationView> {
    const cluster = await this.clusters.require(caller, id);
    const { primary, secondaries } = await this.federations.federationOf(caller.tenantId, cluster);
    const role = cluster.primaryClusterId !== null ? 'secondary' : secondaries.length > 0 ? 'primary' : 'none';
    if (role === 'none') return { role, state: 'none', primary: null, secondaries: [] };
    return { role, state: stateOf(primary, secondaries), primary: primary && memberView(primary), secondaries: secondaries.map(memberView) };
  }
}

function stateOf(primary: FederationMember | null, secondaries: readonly FederationMember[]): (typeof FEDERATION_STATES)[number] {
  if (!primary || primary.state === ClusterState.Deleted) return 'primary-missing';
  return [primary, ...secondaries].every((m) => m.state === ClusterState.Running && m.health !== 'unavailable' && m.health !== 'degraded') ? 'healthy' : 'degraded';
}

function memberView(m: FederationMember): FederationMemberView {
  return { clusterId: m.id, name: m.name, datacenter: m.datacenter, region: m.region, state: m.state, health: m.health, runningSince: m.runningSince?.toISOString() ?? null };
}
