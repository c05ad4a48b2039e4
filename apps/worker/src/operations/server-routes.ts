import type { ClusterRepository } from '../../../../libs/core/src';
import { endpointText, type Endpoint, type ServerRoutes, type Target } from '../../../../libs/provisioner/src';

export interface RouteAsking {
  /** A server without a route (an instance still being made) makes its target be asked again at most this often. */
  missIntervalMs: number;
  /** Routes are asked again when older than this, whoever changed the target meanwhile (another worker's repair). */
  maxAgeMs: number;
}

const ASKING: RouteAsking = { missIntervalMs: 5_000, maxAgeMs: 60_000 };

interface Known {
  routes: ReadonlyMap<string, ServerRoutes>;
  at: number;
}

/**
 * How the worker reaches each cluster's servers when its target gives routes (Azure: a private
 * endpoint and a NAT port per server and port; the servers' own addresses are in customers'
 * networks, which overlap, and are never connected to). A cluster's routes are asked of its
 * target once and kept, asked again after each change of the target (`refresh`), when a server
 * has none, and when they are old. Whenever the HTTPS endpoints change they are written to the
 * server rows (`apiEndpoint`), where the API's Consul UI proxy finds them. A target without
 * routes: none (its servers are reached at their addresses), and nothing written.
 */
export class ServerRouteCache {
  private readonly known = new Map<string, Known>();
  private readonly inFlight = new Map<string, Promise<Known>>();

  constructor(
    private readonly hosts: (clusterId: string) => Promise<Target>,
    private readonly clusters: Pick<ClusterRepository, 'setServerApiEndpoints'>,
    private readonly when: RouteAsking = ASKING,
  ) {}

  /**
   * Where to connect for `port` of the server at `address`: undefined on a target without
   * routes. On a target with routes, a server without one is an error (it is not answering yet),
   * never a connection to its own address.
   */
  async route(clusterId: string, address: string, port: 'https' | 'rpc'): Promise<Endpoint | undefined> {
    const hosts = await this.hosts(clusterId);
    if (!hosts.routes) return undefined;
    let known = this.known.get(clusterId);
    const age = known ? Date.now() - known.at : Infinity;
    if (age >= this.when.maxAgeMs || (!known?.routes.has(address) && age >= this.when.missIntervalMs)) {
      known = await (this.inFlight.get(clusterId) ?? this.ask(hosts, clusterId));
    }
    const routes = known?.routes.get(address);
    if (!routes) throw new Error(`server ${address} of cluster ${clusterId} has no route from the control plane yet`);
    return routes[port];
  }

  /** Asks the cluster's target again (it just changed); the HTTPS endpoints that changed go to the server rows. */
  async refresh(clusterId: string): Promise<void> {
    const hosts = await this.hosts(clusterId);
    if (hosts.routes) await this.ask(hosts, clusterId);
  }

  /** The cluster is gone. */
  forget(clusterId: string): void {
    this.known.delete(clusterId);
  }

  /** One lookup at a time per cluster, in order: a later answer is never overwritten (nor its rows) by an earlier one. */
  private ask(hosts: Target, clusterId: string): Promise<Known> {
    const previous = this.inFlight.get(clusterId)?.catch(() => undefined);
    const asked = (async () => {
      await previous;
      const routes = await hosts.routes!(clusterId);
      const before = this.known.get(clusterId);
      if (!before || !sameHttps(before.routes, routes)) {
        await this.clusters.setServerApiEndpoints(clusterId, new Map([...routes].map(([address, r]) => [address, endpointText(r.https)])));
      }
      const known = { routes, at: Date.now() };
      this.known.set(clusterId, known);
      return known;
    })().finally(() => {
      if (this.inFlight.get(clusterId) === asked) this.inFlight.delete(clusterId);
    });
    this.inFlight.set(clusterId, asked);
    return asked;
  }
}

function sameHttps(a: ReadonlyMap<string, ServerRoutes>, b: ReadonlyMap<string, ServerRoutes>): boolean {
  if (a.size !== b.size) return false;
  for (const [address, r] of b) {
    const was = a.get(address);
    if (!was || endpointText(was.https) !== endpointText(r.https)) return false;
  }
  return true;
}
