import { ClusterRepository, SecretName, SecretRepository } from '../../../../libs/core/src';
import {
  certificateDates, generateClusterPki, generateGossipKey, generateManagementToken, issueServerCertificate,
  type CertificateAuthority, type ClusterPki, type ClusterSecrets, type ClusterSpec, type ServerCertificate,
} from '../../../../libs/provisioner/src';

/**
 * A cluster's secrets as the worker keeps them: made once and sealed before
 * anything uses them (so a retried step reuses them), the PKI's public part
 * (CA bundle, expiry dates) recorded on the cluster row whenever the PKI
 * changes, and the server certificates issued from the cluster's CA.
 */
export class ClusterSecretStore {
  constructor(private readonly clusters: ClusterRepository, private readonly sealed: SecretRepository) {}

  /** Creates the cluster's secrets if they are missing. */
  async ensure(spec: ClusterSpec): Promise<void> {
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.Pki, async () =>
      JSON.stringify(await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: spec.servers.map((s) => s.address) })),
    );
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.GossipKey, () => generateGossipKey());
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.ManagementToken, () => generateManagementToken());
    await this.publishCertificates(spec.clusterId);
  }

  async load(clusterId: string): Promise<ClusterSecrets> {
    const [pki, gossipKey, managementToken] = await Promise.all([
      this.sealed.get(clusterId, SecretName.Pki),
      this.sealed.get(clusterId, SecretName.GossipKey),
      this.sealed.get(clusterId, SecretName.ManagementToken),
    ]);
    if (!pki || !gossipKey || !managementToken) throw new Error('the cluster secrets are not generated yet');
    return { pki: JSON.parse(pki) as ClusterPki, gossipKey, managementToken };
  }

  /** Seals the cluster's new PKI, then records its public part (CA bundle, expiry dates) on the cluster row. */
  async replacePki(clusterId: string, pki: ClusterPki): Promise<void> {
    await this.sealed.replace(clusterId, SecretName.Pki, JSON.stringify(pki));
    await this.clusters.recordCertificates(clusterId, certificateDates(pki));
  }

  /**
   * Records the public part of the sealed PKI on the cluster row (what the API
   * serves without unsealing anything). false when the cluster has no PKI yet.
   */
  async publishCertificates(clusterId: string): Promise<boolean> {
    const raw = await this.sealed.get(clusterId, SecretName.Pki);
    if (!raw) return false;
    await this.clusters.recordCertificates(clusterId, certificateDates(JSON.parse(raw) as ClusterPki));
    return true;
  }

  /** Server certificates for the servers of `spec` that `pki` has none for (scaling up), from the cluster's own CA. */
  async ensureServerCertificates(spec: ClusterSpec, pki: ClusterPki): Promise<number> {
    const have = new Set(pki.servers.map((c) => c.address));
    const missing = spec.servers.filter((s) => !have.has(s.address));
    if (missing.length === 0) return 0;
    const issued = await issueServerCertificates(pki, spec.datacenter, missing);
    await this.replacePki(spec.clusterId, { ...pki, servers: [...pki.servers, ...issued] });
    return issued.length;
  }

  /** Drops the certificates of servers that are not in `spec` any more (scaling down). */
  async forgetServerCertificates(spec: ClusterSpec, pki: ClusterPki): Promise<void> {
    const keep = new Set(spec.servers.map((s) => s.address));
    const servers = pki.servers.filter((c) => keep.has(c.address));
    if (servers.length !== pki.servers.length) await this.replacePki(spec.clusterId, { ...pki, servers });
  }
}

/** A certificate from `ca` for each of `servers`, in their order. */
export async function issueServerCertificates(ca: CertificateAuthority, datacenter: string, servers: readonly { address: string }[]): Promise<ServerCertificate[]> {
  const issued: ServerCertificate[] = [];
  for (const s of servers) issued.push(await issueServerCertificate(ca, datacenter, s.address));
  return issued;
}
