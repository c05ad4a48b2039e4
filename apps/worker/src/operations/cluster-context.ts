import type { ClusterWithServers } from '../../../../libs/core/src';
import type { ClusterSecrets, ClusterSpec, ConsulApi, ConsulConnections } from '../../../../libs/provisioner/src';
import { PermanentError } from './flows/flow';

/** Where a cluster context reads the cluster from. */
export interface ClusterSources {
  cluster(clusterId: string): Promise<ClusterWithServers | null>;
  secrets(clusterId: string): Promise<ClusterSecrets>;
  consul: ConsulConnections;
}

type Sealed = { secrets: ClusterSecrets } | { error: unknown };

/**
 * The cluster an operation's attempt works on, read once when the attempt
 * starts: the row its claim read (servers and all), its secrets, and its
 * Consul API bound to both. A step that changes the secrets or the servers
 * calls `reload()` before the next step reads them. Built again for every
 * attempt (a retry, a job handed back, another worker's takeover), so a step
 * run again never sees what an earlier attempt read.
 *
 * The secrets are read with the row but their absence (a create before its
 * secrets are made, a delete after they are gone) or a failure to read them
 * is only raised by the step that uses them, as when each step read them.
 */
export class ClusterContext {
  private row: ClusterWithServers;
  private sealed: Sealed;
  private primaryRow: ClusterWithServers | null;
  private bound?: ConsulApi;

  private constructor(row: ClusterWithServers, sealed: Sealed, primaryRow: ClusterWithServers | null, private readonly sources: ClusterSources) {
    this.row = row;
    this.sealed = sealed;
    this.primaryRow = primaryRow;
  }

  static async open(row: ClusterWithServers, sources: ClusterSources): Promise<ClusterContext> {
    return new ClusterContext(row, await readSecrets(row.id, sources), await readPrimary(row, sources), sources);
  }

  /** The cluster's row as last read. */
  get cluster(): ClusterWithServers {
    return this.row;
  }

  /** A secondary's primary as read with the row (its datacenter and servers go into the secondary's config); null for any other cluster. */
  get primaryCluster(): ClusterWithServers | null {
    return this.primaryRow;
  }

  /** The context of a secondary's primary, read now: its Consul API is where the federation's ACLs are made. */
  async primary(): Promise<ClusterContext> {
    const row = this.row.primaryClusterId ? await this.sources.cluster(this.row.primaryClusterId) : null;
    if (!row) throw new PermanentError('primary_gone', `cluster ${this.row.id} is not a secondary of a cluster that exists`);
    return ClusterContext.open(row, this.sources);
  }

  /** The cluster as the provisioner sees it: the servers of its tier. */
  get spec(): ClusterSpec {
    return this.specWith(this.row.serverCount);
  }

  /** Every server that has an address, also those being added or removed by scaling. */
  get allServers(): ClusterSpec {
    return this.specWith(this.row.servers.length);
  }

  /** The cluster with its first `count` servers (a scale's target count). */
  specWith(count: number): ClusterSpec {
    if (this.row.servers.length < count) throw new Error('the cluster has no addresses yet');
    const primary = this.primaryRow;
    return {
      clusterId: this.row.id,
      datacenter: this.row.datacenter,
      consulVersion: this.row.consulVersion,
      servers: this.row.servers.slice(0, count).map((s) => ({ index: s.index, address: s.address })),
      ...(primary
        ? { federation: { primaryClusterId: primary.id, primaryDatacenter: primary.datacenter, primaryServers: primary.servers.slice(0, primary.serverCount).map((s) => s.address) } }
        : {}),
    };
  }

  get secrets(): ClusterSecrets {
    if ('error' in this.sealed) throw this.sealed.error;
    return this.sealed.secrets;
  }

  /** The Consul API of the tier's servers, with the stored secrets. */
  get consul(): ConsulApi {
    this.bound ??= this.sources.consul.for(this.spec, this.secrets);
    return this.bound;
  }

  /** The Consul API of the servers of `spec` (a scale's), with the stored secrets. */
  consulOf(spec: ClusterSpec): ConsulApi {
    return this.sources.consul.for(spec, this.secrets);
  }

  /** Reads the row and the secrets again, after a step changed them. */
  async reload(): Promise<void> {
    const row = await this.sources.cluster(this.row.id);
    if (!row) throw new PermanentError('cluster_gone', `cluster ${this.row.id} no longer exists`);
    this.row = row;
    this.sealed = await readSecrets(row.id, this.sources);
    this.primaryRow = await readPrimary(row, this.sources);
    this.bound = undefined;
  }
}

async function readPrimary(row: ClusterWithServers, sources: ClusterSources): Promise<ClusterWithServers | null> {
  return row.primaryClusterId ? sources.cluster(row.primaryClusterId) : null;
}

async function readSecrets(clusterId: string, sources: ClusterSources): Promise<Sealed> {
  try {
    return { secrets: await sources.secrets(clusterId) };
  } catch (error) {
    return { error };
  }
}
