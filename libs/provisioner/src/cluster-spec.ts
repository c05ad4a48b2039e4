import type { ClusterServerSecrets, ClusterServersSpec } from './server-files';

/**
 * A cluster as the provisioner sees it, whatever runs its servers: which
 * servers it has (index and address), its datacenter and Consul version.
 */

export interface ServerSpec {
  index: number;
  /** The address the server is reached at (and a SAN of its certificate). */
  address: string;
}

export interface ClusterSpec extends ClusterServersSpec {
  consulVersion: string;
  servers: ServerSpec[];
}

/** The cluster's secrets: PKI, gossip key, management token. */
export type ClusterSecrets = ClusterServerSecrets;
