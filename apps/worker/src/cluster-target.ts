import {
  ClusterRepository, SecretName, SecretRepository, VERSIONS, type ClusterWithServers, type Config,
} from '../../../libs/core/src';
import {
  LocalTarget, certificateDates, generateClusterPki, generateGossipKey, generateManagementToken, issueServerCertificate, type ClusterPki, type LocalClusterSecrets, type LocalClusterSpec,
} from '../../../libs/provisioner/src';
import path from 'node:path';
import { PermanentError } from './flows/flow';

/**
 * The worker's view of the local target: turns cluster rows and sealed secrets
 * into the provisioner's specs. Secrets are made once and stored sealed before
 * anything uses them, so a retried step reuses them.
 */
export class ClusterTarget {
  readonly local: LocalTarget;
  readonly binaryFor: (version: string) => string;

  constructor(private readonly config: Config, private readonly clusters: ClusterRepository, private readonly secrets: SecretRepository) {
    const installDir = path.resolve(path.dirname(config.CONSUL_BIN), '..', '..');
    this.binaryFor = (version: string) => {
        const entry = config.versions.find((v) => v.version === version);
        if (!entry) throw new PermanentError('unknown_version', `Consul ${version} is not in the version catalog`);
        if (version === VERSIONS[0].version) return config.CONSUL_BIN;
        return path.isAbsolute(entry.binary) ? entry.binary : path.join(installDir, entry.binary);
    };
    this.local = new LocalTarget({ clustersDir: path.join(config.LOCAL_DIR, 'clusters'), consulBinary: this.binaryFor });
  }

  async allocate(cluster: ClusterWithServers) {
    return this.clusters.allocateAddresses(cluster.id, cluster.serverCount, this.config.LOCAL_NET_OCTET);
  }

  /** The cluster as the local target sees it: its first `count` servers (default: its tier's count). */
  async spec(clusterId: string, count?: number): Promise<LocalClusterSpec> {
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
  async allServersSpec(clusterId: string): Promise<LocalClusterSpec> {
    const cluster = await this.clusters.get(clusterId);
    if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
    return this.spec(clusterId, cluster.servers.length);
  }

  /** Server certificates for servers that have none yet (scaling up), from the cluster's own CA. */
  async ensureServerCertificates(spec: LocalClusterSpec): Promise<number> {
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
  async forgetServerCertificates(spec: LocalClusterSpec): Promise<void> {
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
  async ensureSecrets(spec: LocalClusterSpec): Promise<void> {
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.Pki, async () =>
      JSON.stringify(await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: spec.servers.map((s) => s.address) })),
    );
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.GossipKey, () => generateGossipKey());
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.ManagementToken, () => generateManagementToken());
    await this.publishCertificates(spec.clusterId);
  }

  async loadSecrets(clusterId: string): Promise<LocalClusterSecrets> {
    const [pki, gossipKey, managementToken] = await Promise.all([
      this.secrets.get(clusterId, SecretName.Pki),
      this.secrets.get(clusterId, SecretName.GossipKey),
      this.secrets.get(clusterId, SecretName.ManagementToken),
    ]);
    if (!pki || !gossipKey || !managementToken) throw new Error('the cluster secrets are not generated yet');
    return { pki: JSON.parse(pki) as ClusterPki, gossipKey, managementToken };
  }
}
