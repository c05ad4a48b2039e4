import { randomUUID } from 'node:crypto';
import { ClusterRepository, SecretName, SecretRepository } from '../../../../libs/core/src';
import {
  certificateDates, generateClusterPki, generateGossipKey, generateManagementToken, issueServerCertificate,
  type CertificateAuthority, type ClusterPki, type ClusterSecrets, type ClusterSpec, type ServerCertificate,
} from '../../../../libs/provisioner/src';

interface TokenIds {
  accessorId: string;
  secretId: string;
}

/** What a secondary has made for it in the primary: ids chosen before they are made, so a retry makes the same tokens. */
export interface SecondaryAcl {
  replication: TokenIds;
  agent: TokenIds;
  /** Its management token's (the secret is the cluster's SecretName.ManagementToken). */
  managementAccessorId: string;
}

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

  /**
   * A secondary's secrets, from its primary's: server certificates for its own datacenter from
   * the primary's CA (one CA trust for the federation), the primary's gossip key (one WAN pool),
   * and a management token and the ids of its replication and agent tokens, which the worker
   * makes in the primary (a global token works in every datacenter). Chosen and sealed once.
   */
  async ensureSecondary(spec: ClusterSpec, primaryId: string): Promise<void> {
    // Mid-rotation the primary's stored key is about to be replaced: wait for the rotation to end (the step is retried).
    if ((await this.sealed.get(primaryId, SecretName.NextGossipKey)) !== null) throw new Error("the primary's gossip key is being rotated; the secondary takes the new key once the rotation ends");
    const primary = await this.load(primaryId);
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.Pki, async () => {
      const servers = await issueServerCertificates(primary.pki, spec.datacenter, spec.servers);
      const pki: ClusterPki = { caCertPem: primary.pki.caCertPem, caKeyPem: primary.pki.caKeyPem, servers, ...(primary.pki.trustedCaPems ? { trustedCaPems: primary.pki.trustedCaPems } : {}) };
      return JSON.stringify(pki);
    });
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.GossipKey, () => primary.gossipKey);
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.ManagementToken, () => generateManagementToken());
    await this.sealed.putIfAbsent(spec.clusterId, SecretName.FederationTokens, () => JSON.stringify({
      replication: { accessorId: randomUUID(), secretId: randomUUID() },
      agent: { accessorId: randomUUID(), secretId: randomUUID() },
      managementAccessorId: randomUUID(),
    } satisfies SecondaryAcl));
    await this.publishCertificates(spec.clusterId);
  }

  /** A secondary takes its primary's new gossip key (the federation has one). */
  async replaceGossipKey(clusterId: string, key: string): Promise<void> {
    await this.sealed.replace(clusterId, SecretName.GossipKey, key);
  }

  /** A secondary's tokens made in the primary; null for any other cluster. */
  async secondaryAcl(clusterId: string): Promise<SecondaryAcl | null> {
    const raw = await this.sealed.get(clusterId, SecretName.FederationTokens);
    return raw === null ? null : (JSON.parse(raw) as SecondaryAcl);
  }

  async load(clusterId: string): Promise<ClusterSecrets> {
    const [pki, gossipKey, managementToken, federation] = await Promise.all([
      this.sealed.get(clusterId, SecretName.Pki),
      this.sealed.get(clusterId, SecretName.GossipKey),
      this.sealed.get(clusterId, SecretName.ManagementToken),
      this.secondaryAcl(clusterId),
    ]);
    if (!pki || !gossipKey || !managementToken) throw new Error('the cluster secrets are not generated yet');
    return {
      pki: JSON.parse(pki) as ClusterPki, gossipKey, managementToken,
      ...(federation ? { federation: { replicationToken: federation.replication.secretId, agentToken: federation.agent.secretId } } : {}),
    };
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
