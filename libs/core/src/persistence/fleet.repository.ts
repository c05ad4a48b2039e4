import type { Db } from './prisma';
import type { ClusterWithServers } from './cluster.repository';
import { ClusterState } from '../model';

/**
 * The whole fleet across tenants, for the operator routes only (GET /v1/admin/clusters, waves),
 * which Platform.SRE of the operator tenant may call: the one cluster read of the API that
 * takes no tenant, on purpose.
 */
export class FleetRepository {
  constructor(private readonly db: Db) {}

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
}
