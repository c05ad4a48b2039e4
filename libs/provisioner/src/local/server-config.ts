/**
 * Renders the configuration file of one Consul 1.8 server of a `local`
 * cluster. Every server has its own loopback address and Consul's standard
 * ports, as it would on its own VM.
 */

export const CONSUL_SERVER_PORTS = {
  server: 8300,
  serfLan: 8301,
  serfWan: 8302,
  https: 8501,
} as const;

/** Ports each server binds on its address: TCP for all, UDP for gossip. */
export const CONSUL_SERVER_BOUND_PORTS: readonly { port: number; protocol: 'tcp' | 'udp' }[] = [
  { port: CONSUL_SERVER_PORTS.server, protocol: 'tcp' },
  { port: CONSUL_SERVER_PORTS.serfLan, protocol: 'tcp' },
  { port: CONSUL_SERVER_PORTS.serfLan, protocol: 'udp' },
  { port: CONSUL_SERVER_PORTS.serfWan, protocol: 'tcp' },
  { port: CONSUL_SERVER_PORTS.serfWan, protocol: 'udp' },
  { port: CONSUL_SERVER_PORTS.https, protocol: 'tcp' },
];

export const ALLOWED_SERVER_COUNTS: readonly number[] = [1, 3, 5];

export interface ServerTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface ServerConfigInput {
  datacenter: string;
  serverCount: number;
  /** Index of this server within the cluster (as used in node_name). */
  index: number;
  /** This server's address (bind, advertise and client address). */
  address: string;
  /** Addresses of all servers of the cluster, this one included. */
  addresses: string[];
  dataDir: string;
  tls: ServerTlsFiles;
  gossipKey: string;
  managementToken: string;
  /** A secondary of a federation: the primary to join over the WAN and replicate ACLs from. */
  federation?: SecondaryConfig;
}

/**
 * What a secondary datacenter's servers need beside their own cluster's (Consul 1.8, WAN
 * federation without mesh gateways): the primary's datacenter, its servers' WAN gossip
 * addresses, and two tokens made in the primary: the replication token (ACL token replication,
 * Connect CA and intention replication) and the servers' agent token. A secondary has no
 * `acl.tokens.master`: that token is only used in the primary datacenter, which bootstraps the
 * ACL system for the federation.
 */
export interface SecondaryConfig {
  primaryDatacenter: string;
  /** The primary's server addresses; each is joined at its serf WAN port. */
  primaryServers: readonly string[];
  replicationToken: string;
  agentToken: string;
}

export function serverNodeName(datacenter: string, index: number): string {
  return `${datacenter}-server-${index}`;
}

/** The Consul configuration object (keys as Consul 1.8 names them). */
export function serverConfig(input: ServerConfigInput): Record<string, unknown> {
  validate(input);
  const secondary = input.federation;
  return {
    datacenter: input.datacenter,
    // The datacenter whose servers hold the ACL and Connect CA roots of the whole federation.
    primary_datacenter: secondary?.primaryDatacenter ?? input.datacenter,
    ...(secondary ? { retry_join_wan: secondary.primaryServers.map((a) => `${a}:${CONSUL_SERVER_PORTS.serfWan}`) } : {}),
    node_name: serverNodeName(input.datacenter, input.index),
    server: true,
    bootstrap_expect: input.serverCount,
    retry_join: input.addresses.map((a) => `${a}:${CONSUL_SERVER_PORTS.serfLan}`),
    bind_addr: input.address,
    advertise_addr: input.address,
    client_addr: input.address,
    ports: {
      server: CONSUL_SERVER_PORTS.server,
      serf_lan: CONSUL_SERVER_PORTS.serfLan,
      serf_wan: CONSUL_SERVER_PORTS.serfWan,
      https: CONSUL_SERVER_PORTS.https,
      http: -1,
      dns: -1,
      grpc: -1,
    },
    data_dir: input.dataDir,
    log_level: 'INFO',
    ui: true,
    disable_update_check: true,
    disable_anonymous_signature: true,
    // All servers of all clusters share this host: never derive node IDs from it.
    disable_host_node_id: true,
    // Servers never leave the raft peer set on SIGTERM; a leave is a deliberate act.
    leave_on_terminate: false,
    // A server added by scaling becomes a voter once it has been healthy this long (Consul's default is 10 s).
    autopilot: { server_stabilization_time: '3s' },

    encrypt: input.gossipKey,
    encrypt_verify_incoming: true,
    encrypt_verify_outgoing: true,

    ca_file: input.tls.caFile,
    cert_file: input.tls.certFile,
    key_file: input.tls.keyFile,
    tls_min_version: 'tls12',
    verify_incoming_rpc: true,
    // Browsers and token-only API clients must reach HTTPS without a client cert.
    verify_incoming_https: false,
    verify_outgoing: true,
    verify_server_hostname: true,
    auto_encrypt: { allow_tls: true },
    connect: { enabled: true },

    acl: {
      enabled: true,
      default_policy: 'deny',
      down_policy: 'extend-cache',
      enable_token_persistence: true,
      ...(secondary ? { enable_token_replication: true } : {}),
      tokens: secondary
        ? { agent: secondary.agentToken, replication: secondary.replicationToken }
        : { master: input.managementToken, agent: input.managementToken },
    },

    performance: { raft_multiplier: 1 },
  };
}

/** The configuration file content (JSON, stable formatting, trailing newline). */
export function renderServerConfig(input: ServerConfigInput): string {
  return JSON.stringify(serverConfig(input), null, 2) + '\n';
}

function validate(input: ServerConfigInput): void {
  if (!ALLOWED_SERVER_COUNTS.includes(input.serverCount)) {
    throw new Error(`serverCount must be one of ${ALLOWED_SERVER_COUNTS.join(', ')}, got ${input.serverCount}`);
  }
  if (input.addresses.length !== input.serverCount) {
    throw new Error(`Expected ${input.serverCount} server addresses, got ${input.addresses.length}`);
  }
  if (new Set(input.addresses).size !== input.addresses.length) {
    throw new Error('Server addresses must be distinct');
  }
  if (!input.addresses.includes(input.address)) {
    throw new Error(`Server address ${input.address} is not among the cluster's addresses`);
  }
  if (!Number.isInteger(input.index) || input.index < 0) {
    throw new Error(`Server index must be a non-negative integer, got ${input.index}`);
  }
  if (Buffer.from(input.gossipKey, 'base64').length !== 32) {
    throw new Error('Gossip key must be 32 bytes, base64 encoded');
  }
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(input.managementToken)) {
    throw new Error('Management token must be a UUID');
  }
  const secondary = input.federation;
  if (secondary) {
    if (secondary.primaryDatacenter === input.datacenter) throw new Error(`a secondary's datacenter must differ from its primary's (${input.datacenter})`);
    if (secondary.primaryServers.length === 0) throw new Error('a secondary needs the addresses of its primary\'s servers');
    for (const t of [secondary.replicationToken, secondary.agentToken]) if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(t)) throw new Error('Federation tokens must be UUIDs');
  }
}
