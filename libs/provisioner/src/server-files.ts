import { caBundlePem, type ClusterPki } from './pki';
import { renderServerConfig, type SecondaryConfig } from './local/server-config';
import type { ServerPaths } from './local/cluster-layout';

/**
 * The files one Consul server runs from (CA bundle, its certificate and key,
 * its configuration), as bytes, whatever runs the server: the `local` target
 * writes them under its cluster folder, the Azure target's cloud-init writes
 * them on the VM. One function, so both targets run the same secure config.
 */

export interface ClusterServersSpec {
  clusterId: string;
  datacenter: string;
  servers: ReadonlyArray<{ index: number; address: string }>;
  /** A secondary of a federation: its primary's datacenter and servers (absent for a primary or a cluster on its own). */
  federation?: FederationSpec;
}

export interface FederationSpec {
  primaryClusterId: string;
  primaryDatacenter: string;
  /** The addresses of the primary's servers (its tier's). */
  primaryServers: readonly string[];
}

export interface ClusterServerSecrets {
  pki: ClusterPki;
  gossipKey: string;
  managementToken: string;
  /** A secondary's tokens made in the primary (see SecondaryConfig); absent elsewhere. */
  federation?: SecondaryTokens;
}

export interface SecondaryTokens {
  replicationToken: string;
  agentToken: string;
}

export interface ServerFile {
  path: string;
  /** POSIX mode: 0644 for public files, 0600 for keys and the config (gossip key, management token). */
  mode: number;
  content: string;
}

export interface ServerFileSet {
  ca: ServerFile;
  cert: ServerFile;
  key: ServerFile;
  config: ServerFile;
}

/** The server's certificate and key from the cluster PKI, by its address (an IP SAN of the certificate). */
export function serverCertificate(pki: ClusterPki, address: string): { certPem: string; keyPem: string } {
  const cert = pki.servers.find((s) => s.address === address);
  if (!cert) throw new Error(`The cluster PKI has no certificate for server address ${address}`);
  return cert;
}

/**
 * The files of server `index` of the cluster, placed at `paths`. TLS files
 * come first in `list()` order: the config refers to them.
 */
export function serverFiles(spec: ClusterServersSpec, secrets: ClusterServerSecrets, index: number, paths: ServerPaths): ServerFileSet {
  const server = spec.servers.find((s) => s.index === index);
  if (!server) throw new Error(`Cluster ${spec.clusterId} has no server ${index}`);
  const cert = serverCertificate(secrets.pki, server.address);
  const config = renderServerConfig({
    datacenter: spec.datacenter,
    serverCount: spec.servers.length,
    index: server.index,
    address: server.address,
    addresses: spec.servers.map((s) => s.address),
    dataDir: paths.dataDir,
    tls: { caFile: paths.caFile, certFile: paths.certFile, keyFile: paths.keyFile },
    gossipKey: secrets.gossipKey,
    managementToken: secrets.managementToken,
    federation: federationConfig(spec, secrets),
  });
  return {
    ca: { path: paths.caFile, mode: 0o644, content: caBundlePem(secrets.pki) },
    cert: { path: paths.certFile, mode: 0o644, content: cert.certPem },
    key: { path: paths.keyFile, mode: 0o600, content: cert.keyPem },
    config: { path: paths.configFile, mode: 0o600, content: config },
  };
}

function federationConfig(spec: ClusterServersSpec, secrets: ClusterServerSecrets): SecondaryConfig | undefined {
  if (!spec.federation) return undefined;
  if (!secrets.federation) throw new Error(`cluster ${spec.clusterId} is a secondary of ${spec.federation.primaryClusterId} but has no federation tokens yet`);
  return { primaryDatacenter: spec.federation.primaryDatacenter, primaryServers: spec.federation.primaryServers, ...secrets.federation };
}

/** The files in the order they must be written. */
export function serverFileList(set: ServerFileSet): ServerFile[] {
  return [set.ca, set.cert, set.key, set.config];
}
