import type { ClusterSecrets, ClusterSpec } from './cluster-spec';
import type { ServerLiveness } from './consul/consul-api';
import type { SnapshotStore } from './snapshots/blob-store';

/**
 * The servers' hosts of a cluster, whatever they are: processes on loopback
 * (`local`), scale-set instances of an ARM deployment (`azure`). The shape of
 * crossplane's external client: observe first, then act on the difference;
 * every call is idempotent, and none has to block until the change is done:
 * a call answers `in-progress` (with when to ask again) while the change
 * runs, and the caller asks again until it answers `ready`. The cluster's
 * Consul API (leader, tokens, keyring, snapshots) is not here: it is the
 * same whatever runs the servers (`ConsulApi`).
 */

export type TargetKind = 'local' | 'azure';

export type Progress =
  | { state: 'ready'; detail?: string }
  | { state: 'in-progress'; detail: string; retryAfterMs: number };

export const READY: Progress = { state: 'ready' };

/**
 * The target's cloud refused a change for good (a template ARM's preflight rejects, a role the
 * principal lacks, a deployment that failed): asking again with the same request cannot
 * succeed, so the operation fails at once with the cloud's own code and its root cause.
 */
export class TargetRefusedError extends Error {
  readonly permanent = true;
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What a cluster's public endpoint admits: the allowlist's networks (IPv4 and IPv6 CIDRs, checked by the contract). */
export interface PublicEndpointSpec {
  allowlist: readonly { cidr: string; description: string }[];
}

export interface ObservedServer {
  index: number;
  /** Where it is reached, when the target assigns addresses itself (a VM's private IP). */
  address?: string;
}

export interface Target {
  readonly kind: TargetKind;

  /** The servers of the cluster that run now, from the target itself (process table, instance view). */
  observe(clusterId: string): Promise<readonly ObservedServer[]>;

  /** What runs below the servers: folders here; network, storage, identity, a scale set in Azure. */
  ensureInfrastructure(spec: ClusterSpec): Promise<Progress>;

  /**
   * Puts the config of every server of the spec in place (its TLS files and
   * Consul config): a server reads it when it starts or reloads. Changes only
   * what differs.
   */
  writeServerConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<Progress>;

  /** Starts every server of the spec that does not run, on its config and the spec's binary; running ones are left alone. */
  startServers(spec: ClusterSpec, secrets: ClusterSecrets): Promise<Progress>;

  /**
   * Server `index` runs on its current config and the spec's binary: started
   * when down, restarted (without leaving) when it runs another binary or
   * an older config, left alone otherwise.
   */
  putServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number): Promise<Progress>;

  /** Server `index` re-reads its config files without a restart (TLS files and CAs apply to new connections). */
  reloadServer(clusterId: string, index: number): Promise<Progress>;

  /** Stops server `index` and keeps its data (a leave, if wanted, is the Consul API's). */
  stopServer(clusterId: string, index: number): Promise<Progress>;

  /** Stops server `index` and deletes its data and config for good (scaling down). */
  removeServer(clusterId: string, index: number): Promise<Progress>;

  /** Deletes everything the target holds for the cluster. */
  deleteAll(clusterId: string): Promise<Progress>;

  /**
   * The cluster's public endpoint (the servers' HTTPS API and UI on a public address of its own)
   * admits exactly `endpoint.allowlist`'s sources, changed in place when it exists; with null,
   * there is none (and nothing public of it is left). Locally a proxy process on a loopback
   * address of the cluster's; in Azure the public IP and load balancer, with a network security
   * group rule per address family admitting the allowlist (the secrets: Azure's deployment of
   * the servers carries their files, and the endpoint changes in that same deployment).
   */
  updateEndpoint(spec: ClusterSpec, secrets: ClusterSecrets, endpoint: PublicEndpointSpec | null): Promise<Progress>;

  /** Where the public endpoint answers now (an IP address), or null when there is none. */
  publicAddress(clusterId: string): Promise<string | null>;

  /** What artifact server `index` runs (a binary path, an image); null when it does not run. */
  serverBinary(clusterId: string, index: number): Promise<string | null>;

  /** The running servers started from another config than the one `writeServerConfig` writes for this spec and secrets. */
  serversOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<number[]>;

  /** Why server `index` is not running, for error messages (e.g. the end of its log). */
  explainDown(clusterId: string, index: number): Promise<string>;

  /**
   * Where the cluster's snapshots are kept when the target keeps them beside
   * the cluster (Azure: the storage account of its managed resource group);
   * `gone` once that storage was deleted with the cluster (its blobs with it).
   * Targets without it leave snapshots in the control plane's store.
   */
  snapshotStore?(clusterId: string): Promise<SnapshotStore | 'gone'>;

  /**
   * How the control plane reaches each server's ports when not at the server's own address
   * (Azure: the cluster's Private Link service, through a private endpoint in the control
   * plane's network, one inbound NAT port per server and port; the servers' own addresses
   * overlap other customers' and are never routed to). Targets without it: the server's
   * address and Consul's port. A server without a route yet (an instance still being made)
   * is left out.
   */
  routes?(clusterId: string): Promise<ReadonlyMap<string, ServerRoutes>>;

  close(): void;
}

/** Where one server's HTTPS API and RPC port are reached, by the server's own address (what its certificate names). */
export interface ServerRoutes {
  https: Endpoint;
  rpc: Endpoint;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** `host:port` (an IPv6 host in brackets): how an endpoint is written down, e.g. on a server's row. */
export function endpointText(e: Endpoint): string {
  return `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/** The endpoint `endpointText` wrote. */
export function parseEndpoint(text: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65_535) throw new Error(`'${text}' is not a host:port endpoint`);
  return { host: (m[1] ?? m[2])!, port };
}

/** The Consul API's view of one target's servers (which run, why one does not). */
export function targetLiveness(target: Pick<Target, 'observe' | 'explainDown'>): ServerLiveness {
  return {
    running: async (clusterId) => new Set((await target.observe(clusterId)).map((s) => s.index)),
    explainDown: (clusterId, index) => target.explainDown(clusterId, index),
  };
}
