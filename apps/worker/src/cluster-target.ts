import {
  ClusterRepository, SecretName, SecretRepository, VERSIONS, type ClusterWithServers, type Config,
} from '../../../libs/core/src';
import {
  LocalTarget, generateClusterPki, generateGossipKey, generateManagementToken, type ClusterPki, type LocalClusterSecrets, type LocalClusterSpec,
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

  constructor(private readonly config: Config, private readonly clusters: ClusterRepository, private readonly secrets: SecretRepository) {
    const installDir = path.resolve(path.dirname(config.CONSUL_BIN), '..', '..');
    this.local = new LocalTarget({
      clustersDir: path.join(config.LOCAL_DIR, 'clusters'),
      consulBinary: (version: string) => {
        const entry = VERSIONS.find((v) => v.version === version);
        if (!entry) throw new PermanentError('unknown_version', `Consul ${version} is not in the version catalog`);
        return version === VERSIONS[0].version ? config.CONSUL_BIN : path.join(installDir, entry.binary);
      },
    });
  }

  async allocate(cluster: ClusterWithServers) {
    return this.clusters.allocateAddresses(cluster.id, cluster.serverCount, this.config.LOCAL_NET_OCTET);
  }

  async spec(clusterId: string): Promise<LocalClusterSpec> {
    const cluster = await this.clusters.get(clusterId);
    if (!cluster) throw new PermanentError('cluster_gone', `cluster ${clusterId} no longer exists`);
    if (cluster.servers.length < cluster.serverCount) throw new Error('the cluster has no addresses yet');
    return {
      clusterId: cluster.id,
      datacenter: cluster.datacenter,
      consulVersion: cluster.consulVersion,
      servers: cluster.servers.slice(0, cluster.serverCount).map((s) => ({ index: s.index, address: s.address })),
    };
  }

  /** Creates the cluster's secrets if they are missing. */
  async ensureSecrets(spec: LocalClusterSpec): Promise<void> {
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.Pki, async () =>
      JSON.stringify(await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: spec.servers.map((s) => s.address) })),
    );
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.GossipKey, () => generateGossipKey());
    await this.secrets.putIfAbsent(spec.clusterId, SecretName.ManagementToken, () => generateManagementToken());
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
