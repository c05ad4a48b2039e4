import {
  ClusterRepository, DEFAULT_VNET_CIDR, SecretRepository, VERSIONS, type ClusterWithServers, type Config,
} from '../../../../libs/core/src';
import {
  ConsulConnections, InstanceBootFailedError, PollTimeout, TargetRefusedError, subnetPlan, poll,
  type ClusterSecrets, type ClusterSpec, type ObservedServer, type Progress, type PublicEndpointSpec, type SnapshotStore, type Target,
} from '../../../../libs/provisioner/src';
import path from 'node:path';
import { ClusterContext } from './cluster-context';
import { ClusterSecretStore } from './cluster-secrets';
import { PermanentError } from './flows/flow';
import { ServerRouteCache } from './server-routes';
import { TARGET_CHANGE_DEADLINE_MS, TARGET_CHANGE_IN_STEP_WAIT_MS, TargetChangeInProgress } from './target-change';
import { TargetRegistry } from './target-registry';

/**
 * What flows see of a cluster: its context for an attempt (`open`: its row,
 * sealed secrets and Consul API), its secrets (`secrets`), the connections to
 * its Consul API (`consul`, the same on every target), and its servers' hosts
 * (the `Target` its row names), composed here into the server-level steps the
 * flows take.
 */
export class ClusterTarget {
  readonly consul: ConsulConnections;
  readonly secrets: ClusterSecretStore;
  readonly binaryFor: (version: string) => string;
  readonly targets: TargetRegistry;
  /** The target kind of each cluster seen, from its row (it never changes). */
  private readonly kinds = new Map<string, string>();
  /** How the servers are reached when their target gives routes (asked again after each change settled here). */
  private readonly routes: ServerRouteCache;

  constructor(private readonly config: Config, private readonly clusters: ClusterRepository, sealed: SecretRepository) {
    this.secrets = new ClusterSecretStore(clusters, sealed);
    const installDir = path.resolve(path.dirname(config.CONSUL_BIN), '..', '..');
    this.binaryFor = (version: string) => {
        const entry = config.versions.find((v) => v.version === version);
        if (!entry) throw new PermanentError('unknown_version', `Consul ${version} is not in the version catalog`);
        if (version === VERSIONS[0].version) return config.CONSUL_BIN;
        return path.isAbsolute(entry.binary) ? entry.binary : path.join(installDir, entry.binary);
    };
    this.targets = new TargetRegistry(config, this.binaryFor, clusters);
    this.routes = new ServerRouteCache((clusterId) => this.hosts(clusterId), clusters);
    this.consul = new ConsulConnections({
      liveness: {
        running: async (clusterId) => new Set((await this.observe(clusterId)).map((s) => s.index)),
        explainDown: async (clusterId, index) => (await this.hosts(clusterId)).explainDown(clusterId, index),
      },
      route: (clusterId, address, port) => this.routes.route(clusterId, address, port),
    });
  }

  /** The cluster an attempt works on, from the row its claim read (see ClusterContext). */
  async open(cluster: ClusterWithServers): Promise<ClusterContext> {
    this.kinds.set(cluster.id, cluster.target);
    return ClusterContext.open(cluster, { cluster: (id) => this.clusters.get(id), secrets: (id) => this.secrets.load(id), consul: this.consul });
  }

  /** The hosts of the cluster's servers: the target its row records. */
  async hosts(clusterId: string): Promise<Target> {
    let kind = this.kinds.get(clusterId);
    if (kind === undefined) {
      const cluster = await this.clusters.get(clusterId);
      if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
      kind = cluster.target;
      this.kinds.set(clusterId, kind);
    }
    return this.targets.get(kind);
  }

  /**
   * The store of the cluster's snapshots when its target keeps them beside the
   * cluster (`gone` once deleted with it); null: the control plane's store.
   */
  async snapshotStore(clusterId: string): Promise<SnapshotStore | 'gone' | null> {
    const hosts = await this.hosts(clusterId);
    return hosts.snapshotStore ? hosts.snapshotStore(clusterId) : null;
  }

  /** The servers of the cluster that run now. */
  async observe(clusterId: string): Promise<readonly ObservedServer[]> {
    return (await this.hosts(clusterId)).observe(clusterId);
  }

  async ensureInfrastructure(spec: ClusterSpec): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    await this.settleChange(spec.clusterId, `the infrastructure of cluster ${spec.clusterId}`, () => hosts.ensureInfrastructure(spec));
  }

  async writeServerConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    await this.settleChange(spec.clusterId, `the server config of cluster ${spec.clusterId}`, () => hosts.writeServerConfig(spec, secrets));
  }

  /** Starts the servers of the spec that are down, on its config and binary; running ones are left alone. */
  async startServers(spec: ClusterSpec, secrets: ClusterSecrets): Promise<{ started: number[]; alreadyRunning: number[]; running: number }> {
    const hosts = await this.hosts(spec.clusterId);
    const indexes = async () => new Set((await hosts.observe(spec.clusterId)).map((s) => s.index));
    const before = await indexes();
    await this.settleChange(spec.clusterId, `the servers of cluster ${spec.clusterId} to start`, () => hosts.startServers(spec, secrets));
    const after = await indexes();
    const ofSpec = spec.servers.map((s) => s.index);
    return { started: ofSpec.filter((i) => after.has(i) && !before.has(i)), alreadyRunning: ofSpec.filter((i) => before.has(i)), running: after.size };
  }

  /**
   * Server `index` runs the spec's config and binary (restarted if it ran
   * others). `withinStep`: asked until done inside the step, never handed back,
   * for a caller whose next move depends on what it knows only in memory.
   */
  async putServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number, opts: { withinStep?: boolean } = {}): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    await this.settleChange(spec.clusterId, `server ${index} of cluster ${spec.clusterId} on its config`, () => hosts.putServer(spec, secrets, index), opts);
  }

  /**
   * Stops one server and keeps its files: a graceful leave first (with
   * `leave`, for a leader: the others elect a new one at once), else it stays
   * a voter, as for a restart.
   */
  async stopServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number, opts: { leave: boolean }): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    if (opts.leave && (await hosts.observe(spec.clusterId)).some((s) => s.index === index)) await this.consul.for(spec, secrets).leave(index);
    await this.settleChange(spec.clusterId, `server ${index} of cluster ${spec.clusterId} to stop`, () => hosts.stopServer(spec.clusterId, index));
  }

  /**
   * Takes one server out of a running cluster for good (scaling down): a
   * graceful leave, so raft drops it while the others keep quorum; it stops;
   * if it did not leave cleanly its raft peer is removed through another
   * server; then its data goes. Idempotent.
   */
  async removeServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    await this.stopServer(spec, secrets, index, { leave: true });
    await this.consul.for(spec, secrets).removeRaftPeer(index);
    await this.settleChange(spec.clusterId, `server ${index} of cluster ${spec.clusterId} to be removed`, () => hosts.removeServer(spec.clusterId, index));
  }

  /**
   * Makes server `index` re-read its files (TLS files and CAs apply to new
   * connections, no restart) unless `done` holds already, then waits until
   * it does. Returns whether it had to reload. Idempotent: a retry reloads
   * only the servers not there yet.
   */
  async reloadServerUntil(spec: ClusterSpec, index: number, what: string, done: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
    const attempt = () => done().catch(() => false);
    if (await attempt()) return false;
    const hosts = await this.hosts(spec.clusterId);
    await this.settle(`server ${index} of cluster ${spec.clusterId} to reload`, () => hosts.reloadServer(spec.clusterId, index));
    await poll(`server ${index} of cluster ${spec.clusterId}: ${what} not true after its reload`, attempt, (ok) => ok || 'not yet', { timeoutMs });
    return true;
  }

  /** Reloads server `index` and waits until it serves `expectedCertPem`. */
  async reloadServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number, expectedCertPem: string): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    if (!(await hosts.observe(spec.clusterId)).some((s) => s.index === index)) throw new Error(`server ${index} of cluster ${spec.clusterId} is not running`);
    await this.settle(`server ${index} of cluster ${spec.clusterId} to reload`, () => hosts.reloadServer(spec.clusterId, index));
    await this.consul.for(spec, secrets).waitForServedCertificate(index, expectedCertPem);
  }

  async serverBinary(clusterId: string, index: number): Promise<string | null> {
    return (await this.hosts(clusterId)).serverBinary(clusterId, index);
  }

  async serversOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<number[]> {
    return (await this.hosts(spec.clusterId)).serversOnOldConfig(spec, secrets);
  }

  /** The cluster's public endpoint admits exactly `endpoint`'s allowlist, or is gone (null); in place where it exists. */
  async updateEndpoint(spec: ClusterSpec, secrets: ClusterSecrets, endpoint: PublicEndpointSpec | null): Promise<void> {
    const hosts = await this.hosts(spec.clusterId);
    await this.settleChange(spec.clusterId, `the public endpoint of cluster ${spec.clusterId}`, () => hosts.updateEndpoint(spec, secrets, endpoint));
  }

  /** Where the cluster's public endpoint answers now, or null. */
  async publicAddress(clusterId: string): Promise<string | null> {
    return (await this.hosts(clusterId)).publicAddress(clusterId);
  }

  /** Removes everything the target holds for the cluster; the servers before it and what the target said, for the step log. */
  async deleteAll(clusterId: string): Promise<{ before: number; detail?: string }> {
    const hosts = await this.hosts(clusterId);
    const before = (await hosts.observe(clusterId)).length;
    const detail = await this.settle(`cluster ${clusterId} to be deleted`, () => hosts.deleteAll(clusterId));
    this.routes.forget(clusterId);
    this.consul.forget(clusterId);
    this.kinds.delete(clusterId);
    return { before, detail };
  }

  /** Closes pooled connections (servers keep running). */
  close(): void {
    this.consul.close();
    this.targets.close();
  }

  /** settle() for a change of the cluster's servers' hosts: their routes are asked again once it is done. */
  private async settleChange(clusterId: string, what: string, call: () => Promise<Progress>, opts: { withinStep?: boolean } = {}): Promise<void> {
    await this.settle(what, call, opts);
    await this.routes.refresh(clusterId);
  }

  /**
   * Asks a target's call again until it is done, for a few seconds: a long
   * change (a deployment) still in progress then is handed to the runner
   * (TargetChangeInProgress), which gives the job back to the queue and runs
   * the step again later; the call is idempotent, so that asks again.
   * `withinStep`: asked until done (up to the change's deadline) in the step.
   */
  private async settle(what: string, call: () => Promise<Progress>, opts: { withinStep?: boolean } = {}): Promise<string | undefined> {
    let last: { detail: string; retryAfterMs: number; firstSeenAt: Date } | undefined;
    try {
      const done = await poll(what, async () => {
        const p = await call();
        if (p.state === 'in-progress') last = { detail: p.detail, retryAfterMs: p.retryAfterMs, firstSeenAt: last?.firstSeenAt ?? new Date() };
        return p;
      }, (p) => (p.state === 'ready' ? true : p.detail), {
        timeoutMs: opts.withinStep ? TARGET_CHANGE_DEADLINE_MS : TARGET_CHANGE_IN_STEP_WAIT_MS, intervalMs: () => last?.retryAfterMs ?? 1_000, failOnError: true,
      });
      return done.detail;
    } catch (e) {
      if (e instanceof PollTimeout && e.what === what && last && !opts.withinStep) throw new TargetChangeInProgress(what, last.detail, last.retryAfterMs, last.firstSeenAt);
      // A server VM whose boot script failed (a package that fails its checksum, a disk that will not mount) fails the same way on a retry.
      if (e instanceof InstanceBootFailedError) throw new PermanentError('instance_boot_failed', e.message);
      // The cloud refused the change for good (its own code and root cause): the same request fails the same way.
      if (e instanceof TargetRefusedError) throw new PermanentError(e.code, e.message);
      throw e;
    }
  }

  /**
   * Addresses for the cluster's first `count` servers (default: its tier's):
   * a loopback block of this machine on `local`, the next addresses of the
   * cluster's own subnet on `azure` (Azure hands out the lowest free ones).
   */
  async allocate(cluster: ClusterWithServers, count?: number) {
    const n = count ?? cluster.serverCount;
    if (cluster.target === 'azure') return this.clusters.assignAddresses(cluster.id, subnetPlan(cluster.vnetCidr ?? DEFAULT_VNET_CIDR, n).serverAddresses);
    return this.clusters.allocateAddresses(cluster.id, n, this.config.LOCAL_NET_OCTET);
  }
}
