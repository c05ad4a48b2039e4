import {
  ClusterRepository, DEFAULT_VNET_CIDR, SecretName, SecretRepository, VERSIONS, type Config,
} from '../../../libs/core/src';
import {
  ConsulApi, InstanceBootFailedError, PollTimeout, TargetRefusedError, certificateDates, subnetPlan, generateClusterPki, generateGossipKey, generateManagementToken, issueServerCertificate, poll,
  type ClusterPki, type ClusterSecrets, type ClusterSpec, type ObservedServer, type Progress, type SnapshotStore, type Target, type WaitForHealthyOptions,
} from '../../../libs/provisioner/src';
import path from 'node:path';
import { PermanentError } from './flows/flow';
import { ServerRouteCache } from './server-routes';
import { TARGET_CHANGE_DEADLINE_MS, TARGET_CHANGE_IN_STEP_WAIT_MS, TargetChangeInProgress } from './target-change';
import { TargetRegistry } from './target-registry';

export interface RollingRestartResult {
  /** Server indexes in the order they were restarted (the leader last). */
  restarted: number[];
  /** The servers that were not running and were started on the current files. */
  started: number[];
}

/**
 * What flows see of a cluster: its spec and sealed secrets from the database,
 * its Consul API (`consul`, the same on every target), and its servers' hosts
 * (the `Target` its row names), composed here into the server-level steps the
 * flows take. Secrets are made once and stored sealed before anything uses
 * them, so a retried step reuses them.
 */
export class ClusterTarget {
  readonly consul: ConsulApi;
  readonly binaryFor: (version: string) => string;
  readonly targets: TargetRegistry;
  /** The target kind of each cluster seen, from its row (it never changes). */
  private readonly kinds = new Map<string, string>();
  /** How the servers are reached when their target gives routes (asked again after each change settled here). */
  private readonly routes: ServerRouteCache;

  constructor(private readonly config: Config, private readonly clusters: ClusterRepository, private readonly secrets: SecretRepository) {
    const installDir = path.resolve(path.dirname(config.CONSUL_BIN), '..', '..');
    this.binaryFor = (version: string) => {
        const entry = config.versions.find((v) => v.version === version);
        if (!entry) throw new PermanentError('unknown_version', `Consul ${version} is not in the version catalog`);
        if (version === VERSIONS[0].version) return config.CONSUL_BIN;
        return path.isAbsolute(entry.binary) ? entry.binary : path.join(installDir, entry.binary);
    };
    this.targets = new TargetRegistry(config, this.binaryFor, clusters);
    this.routes = new ServerRouteCache((clusterId) => this.hosts(clusterId), clusters);
    this.consul = new ConsulApi({
      liveness: {
        running: async (clusterId) => new Set((await this.observe(clusterId)).map((s) => s.index)),
        explainDown: async (clusterId, index) => (await this.hosts(clusterId)).explainDown(clusterId, index),
      },
      route: (clusterId, address, port) => this.routes.route(clusterId, address, port),
    });
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
    if (opts.leave && (await hosts.observe(spec.clusterId)).some((s) => s.index === index)) await this.consul.leave(spec, secrets, index);
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
    await this.consul.removeRaftPeer(spec, secrets, index);
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
    await this.consul.waitForServedCertificate(spec, secrets, index, expectedCertPem);
  }

  /**
   * Rolling restart onto the config of `writeServerConfig(spec, secrets)`, for
   * settings Consul applies only at start. Servers that are down are started
   * first; then one at a time each server still running an older config
   * restarts, followers first: a follower just stops and starts again,
   * staying a voter, so the others keep quorum and the leader; the leader,
   * last, leaves gracefully so the others elect a new one at once. The
   * cluster must be healthy before the next server. Idempotent: servers
   * already on the current config are left alone.
   */
  async restartServersOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets, opts: WaitForHealthyOptions): Promise<RollingRestartResult> {
    const hosts = await this.hosts(spec.clusterId);
    const { started } = await this.startServers(spec, secrets);
    await this.consul.waitForHealthy(spec, secrets, opts);
    const restarted: number[] = [];
    for (;;) {
      const old = await hosts.serversOnOldConfig(spec, secrets);
      if (old.length === 0) return { restarted, started };
      const leader = await this.consul.leaderIndex(spec, secrets);
      const index = old.find((i) => i !== leader) ?? old[0]!;
      if (restarted.includes(index)) {
        throw new Error(`server ${index} of cluster ${spec.clusterId} still runs an older config after its restart`);
      }
      if (index === leader && spec.servers.length > 1) {
        await this.consul.leave(spec, secrets, index);
        await this.waitForLeftServer(hosts, spec.clusterId, index);
      }
      await this.putServer(spec, secrets, index);
      await this.consul.waitForHealthy(spec, secrets, opts);
      restarted.push(index);
    }
  }

  /**
   * A server that left shuts itself down: until its process is gone, the
   * target may still see it running and leave it alone, and it then exits
   * under the roll. Waits a while for it to go; a host whose servers are
   * seen by their machine (a VM stays running) goes on after the wait.
   */
  private async waitForLeftServer(hosts: Target, clusterId: string, index: number): Promise<void> {
    try {
      await poll(`server ${index} of cluster ${clusterId} to shut down after its leave`, async () => (await hosts.observe(clusterId)).some((s) => s.index === index), (running) => (running ? 'still running' : true), {
        timeoutMs: hosts.kind === 'local' ? 30_000 : 0, intervalMs: () => 100,
      });
    } catch {
      // Still seen running: putServer restarts it either way.
    }
  }

  async serverBinary(clusterId: string, index: number): Promise<string | null> {
    return (await this.hosts(clusterId)).serverBinary(clusterId, index);
  }

  async serversOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<number[]> {
    return (await this.hosts(spec.clusterId)).serversOnOldConfig(spec, secrets);
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
  async allocate(clusterId: string, count?: number) {
    const cluster = await this.clusters.get(clusterId);
    if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
    const n = count ?? cluster.serverCount;
    if (cluster.target === 'azure') return this.clusters.assignAddresses(clusterId, subnetPlan(cluster.vnetCidr ?? DEFAULT_VNET_CIDR, n).serverAddresses);
    return this.clusters.allocateAddresses(clusterId, n, this.config.LOCAL_NET_OCTET);
  }

  /** The cluster as the provisioner sees it: its first `count` servers (default: its tier's count). */
  async spec(clusterId: string, count?: number): Promise<ClusterSpec> {
    const cluster = await this.clusters.get(clusterId);
    if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
    const n = count ?? cluster.serverCount;
    if (cluster.servers.length < n) throw new Error('the cluster has no addresses yet');
    return {
      clusterId: cluster.id,
      datacenter: cluster.datacenter,
      consulVersion: cluster.consulVersion,
      servers: cluster.servers.slice(0, n).map((s) => ({ index: s.index, address: s.address })),
    };
  }

  /** Every server that has an address, also those being added or removed by scaling. */
  async allServersSpec(clusterId: string): Promise<ClusterSpec> {
    const cluster = await this.clusters.get(clusterId);
    if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
    return this.spec(clusterId, cluster.servers.length);
  }

  /** Server certificates for servers that have none yet (scaling up), from the cluster's own CA. */
  async ensureServerCertificates(spec: ClusterSpec): Promise<number> {
    const secrets = await this.loadSecrets(spec.clusterId);
    const have = new Set(secrets.pki.servers.map((c) => c.address));
    const missing = spec.servers.filter((s) => !have.has(s.address));
    if (missing.length === 0) return 0;
    const issued = [];
    for (const s of missing) issued.push(await issueServerCertificate({ caCertPem: secrets.pki.caCertPem, caKeyPem: secrets.pki.caKeyPem }, spec.datacenter, s.address));
    const pki: ClusterPki = { ...secrets.pki, servers: [...secrets.pki.servers, ...issued] };
    await this.replacePki(spec.clusterId, pki);
    return issued.length;
  }

  /** Drops the certificates of servers that are gone (scaling down). */
  async forgetServerCertificates(spec: ClusterSpec): Promise<void> {
    const secrets = await this.loadSecrets(spec.clusterId);
    const keep = new Set(spec.servers.map((s) => s.address));
    const servers = secrets.pki.servers.filter((c) => keep.has(c.address));
    if (servers.length !== secrets.pki.servers.length) await this.replacePki(spec.clusterId, { ...secrets.pki, servers });
  }

  /** Seals the cluster's new PKI, then records its public part (CA bundle, expiry dates) on the cluster row. */
  async replacePki(clusterId: string, pki: ClusterPki): Promise<void> {
    await this.secrets.replace(clusterId, SecretName.Pki, JSON.stringify(pki));
    await this.clusters.recordCertificates(clusterId, certificateDates(pki));
  }

  /**
   * Records the public part of the sealed PKI on the cluster row (what the API
   * serves without unsealing anything). false when the cluster has no PKI yet.
   */
  async publishCertificates(clusterId: string): Promise<boolean> {
    const raw = await this.secrets.get(clusterId, SecretName.Pki);
    if (!raw) return false;
    await this.clusters.recordCertificates(clusterId, certificateDates(JSON.parse(raw) as ClusterPki));
    return true;
  }

  /** Creates the cluster's secrets if they are missing. */
  async ensureSecrets(spec: ClusterSpec): Promise<void> {
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.Pki, async () =>
      JSON.stringify(await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: spec.servers.map((s) => s.address) })),
    );
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.GossipKey, () => generateGossipKey());
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.ManagementToken, () => generateManagementToken());
    await this.publishCertificates(spec.clusterId);
  }

  async loadSecrets(clusterId: string): Promise<ClusterSecrets> {
    const [pki, gossipKey, managementToken] = await Promise.all([
      this.secrets.get(clusterId, SecretName.Pki),
      this.secrets.get(clusterId, SecretName.GossipKey),
      this.secrets.get(clusterId, SecretName.ManagementToken),
    ]);
    if (!pki || !gossipKey || !managementToken) throw new Error('the cluster secrets are not generated yet');
    return { pki: JSON.parse(pki) as ClusterPki, gossipKey, managementToken };
  }
}
