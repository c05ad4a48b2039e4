import { X509Certificate, createHash, randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import { isIPv4 } from 'node:net';
import * as tls from 'node:tls';
import { caBundlePem, serverTlsName, type ClusterPki, type ServerCertificate } from '../pki';
import { ClusterLayout, type ServerPaths } from './cluster-layout';
import { ConsulHttpClient, describeBody, type ConsulResponse } from './consul-http';
import { removeStaleTemporaryFiles, writeFileIfChanged } from './atomic-file';
import { serverCertificate, serverFileList, serverFiles } from '../server-files';
import { findBusyPorts } from './loopback-ports';
import {
  ALLOWED_SERVER_COUNTS,
  CONSUL_SERVER_BOUND_PORTS,
  CONSUL_SERVER_PORTS,
  serverNodeName,
} from './server-config';
import { listAgentProcesses, readProcessArgs, readProcessEnv, signalProcess, spawnServerProcess } from './server-processes';

/**
 * The `local` target: each cluster is N real Consul server processes on this
 * machine, each on its own loopback address with Consul's standard ports.
 *
 * Every method is idempotent and may be called again after the calling
 * worker was SIGKILLed at any point: state is read back from the file system
 * and the process table, never from memory or pid files.
 */

export interface LocalTargetOptions {
  /** Root of all clusters' files: `<clustersDir>/<clusterId>/server-<i>/...`. */
  clustersDir: string;
  /** Path of the Consul binary for a Consul version. */
  consulBinary(version: string): string;
}

export interface LocalServerSpec {
  index: number;
  /** A loopback address of its own, e.g. 127.64.0.1. */
  address: string;
}

export interface LocalClusterSpec {
  clusterId: string;
  datacenter: string;
  consulVersion: string;
  servers: LocalServerSpec[];
}

export interface LocalClusterSecrets {
  pki: ClusterPki;
  gossipKey: string;
  managementToken: string;
}

export interface ObservedServer {
  index: number;
  pid: number;
}

export interface StartServersResult {
  /** Servers spawned by this call. */
  started: ObservedServer[];
  /** Servers that were already running and left alone. */
  alreadyRunning: ObservedServer[];
}

export interface WaitForLeaderOptions {
  timeoutMs: number;
  /** Default 100 ms. */
  pollIntervalMs?: number;
}

export interface LeaderState {
  /** The leader's RPC address, e.g. `127.64.0.2:8300`. */
  leader: string;
  voters: number;
  elapsedMs: number;
}

export interface CreateTokenOptions {
  description: string;
  /**
   * Pass ids generated (and persisted) before the call to make retries
   * idempotent: if a token with this accessor id exists it is returned.
   * Generated when omitted.
   */
  accessorId?: string;
  secretId?: string;
}

export interface CreatedToken {
  accessorId: string;
  secretId: string;
}

export interface StopAndRemoveOptions {
  /** How long to wait after SIGTERM before SIGKILL. Default 20 s. */
  gracefulTimeoutMs?: number;
}

export interface StopServerOptions extends StopAndRemoveOptions {
  /**
   * Leave gracefully first (default): raft drops the server from its peers
   * (a leader steps down cleanly). Without it the server only stops and stays
   * a voter (leave_on_terminate is false), as for a restart.
   */
  leave?: boolean;
}

export interface WaitForHealthyOptions {
  timeoutMs: number;
}

export interface RollingRestartResult {
  /** Server indexes in the order they were restarted (the leader last). */
  restarted: number[];
  /** The servers that were not running and were started on the current files. */
  started: number[];
}

export interface TokenInfo {
  accessorId: string;
  /** Names of the token's policies. */
  policies: string[];
}

const DEFAULT_POLL_INTERVAL_MS = 100;
const PROCESS_CHECK_INTERVAL_MS = 500;
const DEFAULT_GRACEFUL_TIMEOUT_MS = 20_000;
const KILL_TIMEOUT_MS = 5_000;
const EXIT_POLL_MS = 50;
const HTTP_TIMEOUT_MS = 5_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * Environment variable of each server process: the SHA-256 of the config file
 * it was started from. Consul 1.8 applies some settings (acl.tokens.master)
 * only at start, not on SIGHUP; this tells which servers still run an older
 * config. A hash of random UUIDs and keys, it reveals none of them.
 */
const CONFIG_HASH_ENV = 'MANAGED_CONSUL_CONFIG_SHA256';

export class LocalTarget {
  private readonly layout: ClusterLayout;
  private readonly consulBinary: (version: string) => string;
  private readonly clients = new Map<string, { caCertPem: string; client: ConsulHttpClient }>();

  constructor(opts: LocalTargetOptions) {
    this.layout = new ClusterLayout(opts.clustersDir);
    this.consulBinary = opts.consulBinary;
  }

  /** Writes each server's config and TLS files; rewrites only what differs. */
  async writeServerFiles(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<void> {
    validateSpec(spec, secrets);
    await fs.mkdir(this.layout.clusterDir(spec.clusterId), { recursive: true, mode: 0o700 });
    for (const server of spec.servers) {
      const paths = this.layout.server(spec.clusterId, server.index);
      for (const dir of [paths.serverDir, paths.configDir, paths.dataDir, paths.tlsDir]) {
        await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      }
      await removeStaleTemporaryFiles(paths.configDir);
      await removeStaleTemporaryFiles(paths.tlsDir);
      // TLS first: the config refers to these files. The config holds the gossip key and the management token.
      for (const file of serverFileList(serverFiles(spec, secrets, server.index, paths))) {
        await writeFileIfChanged(file.path, file.content, file.mode);
      }
    }
  }

  /** The live server processes of a cluster, from the process table. */
  async observe(clusterId: string): Promise<ObservedServer[]> {
    this.layout.clusterDir(clusterId); // validates the id
    const observed: ObservedServer[] = [];
    for (const proc of await listAgentProcesses()) {
      for (const arg of proc.args) {
        const index = this.layout.serverIndexOfConfigDirArgument(clusterId, arg);
        if (index !== undefined) {
          observed.push({ index, pid: proc.pid });
          break;
        }
      }
    }
    return observed.sort((a, b) => a.index - b.index || a.pid - b.pid);
  }

  /**
   * Spawns, detached, every server of the spec that is not running. Requires
   * the files of `writeServerFiles` for this very spec and secrets. Checks
   * every server to start before spawning any: if one's ports are held by
   * another process it fails clearly and spawns nothing.
   */
  async startServers(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<StartServersResult> {
    validateSpec(spec, secrets);
    const binary = this.consulBinary(spec.consulVersion);
    const running = await this.observe(spec.clusterId);
    const result: StartServersResult = { started: [], alreadyRunning: [] };
    const toStart: { server: LocalServerSpec; paths: ServerPaths }[] = [];
    for (const server of spec.servers) {
      const existing = running.filter((p) => p.index === server.index);
      if (existing.length > 0) {
        result.alreadyRunning.push(...existing);
        continue;
      }
      const paths = this.layout.server(spec.clusterId, server.index);
      await this.assertFilesWritten(spec, secrets, server, paths);
      const busy = await findBusyPorts(server.address, CONSUL_SERVER_BOUND_PORTS);
      if (busy.length > 0) {
        const list = busy.map((p) => `${server.address}:${p.port}/${p.protocol}`).join(', ');
        throw new Error(
          `Cannot start ${serverNodeName(spec.datacenter, server.index)} of cluster ${spec.clusterId}: ` +
            `port(s) ${list} in use by another process`,
        );
      }
      toStart.push({ server, paths });
    }
    for (const { server, paths } of toStart) {
      const pid = await spawnServerProcess({
        binary,
        configDir: paths.configDir,
        cwd: paths.serverDir,
        logFile: paths.logFile,
        env: { [CONFIG_HASH_ENV]: sha256(this.renderConfig(spec, secrets, server, paths)) },
      });
      result.started.push({ index: server.index, pid });
    }
    return result;
  }

  /**
   * Polls the HTTPS API until the cluster has a leader, its raft
   * configuration holds exactly the spec's servers, all voters, and every
   * server has left Consul 1.8's ACL legacy mode (so token APIs work). Fails early
   * if a server process is gone (with the end of its log), and on timeout
   * with the last observed state.
   */
  async waitForLeader(
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    opts: WaitForLeaderOptions,
  ): Promise<LeaderState> {
    validateSpec(spec, secrets);
    const client = this.client(spec, secrets);
    const startedAt = Date.now();
    const deadline = startedAt + opts.timeoutMs;
    const pollMs = opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    const expected = new Set(spec.servers.map((s) => `${s.address}:${CONSUL_SERVER_PORTS.server}`));
    let leader = '';
    let voters = 0;
    let members = '';
    // eslint-disable-next-line no-useless-assignment -- read in the timeout message if no attempt ever set it
    let lastError = 'no answer yet';
    let lastProcessCheck = 0;
    for (let attempt = 0; ; attempt++) {
      const address = spec.servers[attempt % spec.servers.length]!.address;
      const timeoutMs = Math.max(100, Math.min(HTTP_TIMEOUT_MS, deadline - Date.now()));
      try {
        const status = await client.request({
          address,
          port: CONSUL_SERVER_PORTS.https,
          method: 'GET',
          path: '/v1/status/leader',
          timeoutMs,
        });
        leader = status.status === 200 && typeof status.body === 'string' ? status.body : '';
        if (status.status !== 200) {
          lastError = `${address}: status/leader HTTP ${status.status} ${describeBody(status.body)}`;
        }
        else if (leader === '') lastError = `${address}: no leader yet`;
        else {
          const raft = await client.request({
            address,
            port: CONSUL_SERVER_PORTS.https,
            method: 'GET',
            path: '/v1/operator/raft/configuration',
            token: secrets.managementToken,
            timeoutMs,
          });
          if (raft.status === 200) {
            const servers = raftServers(raft.body);
            voters = servers.filter((s) => s.Voter).length;
            members = servers.map((s) => `${s.Node}@${s.Address}${s.Voter ? '' : '(non-voter)'}`).join(', ');
            const complete =
              servers.length === expected.size && servers.every((s) => s.Voter && expected.has(s.Address));
            if (complete) {
              const aclNotReady = await this.firstServerWithoutNewAcls(client, spec, secrets, timeoutMs);
              if (aclNotReady === undefined) return { leader, voters, elapsedMs: Date.now() - startedAt };
              lastError = aclNotReady;
            } else {
              lastError = `${address}: raft configuration not complete yet`;
            }
          } else {
            lastError = `${address}: raft configuration HTTP ${raft.status} ${describeBody(raft.body)}`;
          }
        }
      } catch (err) {
        lastError = (err as Error).message;
      }

      const now = Date.now();
      if (now - lastProcessCheck >= PROCESS_CHECK_INTERVAL_MS) {
        lastProcessCheck = now;
        await this.assertAllRunning(spec);
      }
      const state = `leader=${leader || 'none'}, voters=${voters}/${spec.servers.length} [${members}], last: ${lastError}`;
      if (Date.now() + pollMs > deadline) {
        throw new Error(
          `Cluster ${spec.clusterId} had no leader with ${spec.servers.length} voters after ${Date.now() - startedAt} ms (${state})`,
        );
      }
      await delay(pollMs);
    }
  }

  /**
   * Consul 1.8 servers start with the ACL system in legacy mode and switch to
   * the new ACL system (tokens, policies) on their own some time after the
   * leader is elected; until then token endpoints answer 500 "The ACL system
   * is currently in legacy mode". A server is ready once it resolves the
   * management token through `/v1/acl/token/self`. Returns a description of
   * the first server not ready, or undefined if all are.
   */
  private async firstServerWithoutNewAcls(
    client: ConsulHttpClient,
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    timeoutMs: number,
  ): Promise<string | undefined> {
    for (const server of spec.servers) {
      const res = await client.request({
        address: server.address,
        port: CONSUL_SERVER_PORTS.https,
        method: 'GET',
        path: '/v1/acl/token/self',
        token: secrets.managementToken,
        timeoutMs,
      });
      if (res.status !== 200) {
        return `${server.address}: ACL system not ready: HTTP ${res.status} ${describeBody(res.body)}`;
      }
    }
    return undefined;
  }

  /** Anonymous writes must be denied (403) and the management token must be allowed. */
  async verifyAclEnforced(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<void> {
    validateSpec(spec, secrets);
    const client = this.client(spec, secrets);
    const address = await this.answeringAddress(spec, secrets);
    const path = `/v1/kv/provisioner/acl-probe-${randomBytes(8).toString('hex')}`;
    const call = (method: 'PUT' | 'DELETE', token?: string): Promise<ConsulResponse> =>
      client.request({ address, port: CONSUL_SERVER_PORTS.https, method, path, token, body: method === 'PUT' ? 'probe' : undefined });

    const anonymous = await call('PUT');
    if (anonymous.status !== 403) {
      throw new Error(
        `ACLs not enforced on cluster ${spec.clusterId}: anonymous KV write answered HTTP ${anonymous.status} (expected 403)`,
      );
    }
    const managed = await call('PUT', secrets.managementToken);
    if (managed.status !== 200) {
      throw new Error(
        `Management token rejected on cluster ${spec.clusterId}: KV write answered HTTP ${managed.status} ${describeBody(managed.body)}`,
      );
    }
    const cleanup = await call('DELETE', secrets.managementToken);
    if (cleanup.status !== 200) {
      throw new Error(`Could not delete ACL probe key on cluster ${spec.clusterId}: HTTP ${cleanup.status}`);
    }
  }

  /** Creates an ACL token with the global-management policy. */
  async createToken(
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    opts: CreateTokenOptions,
  ): Promise<CreatedToken> {
    validateSpec(spec, secrets);
    const accessorId = opts.accessorId ?? randomUUID();
    const secretId = opts.secretId ?? randomUUID();
    if (!UUID.test(accessorId) || !UUID.test(secretId)) throw new Error('Token accessor and secret ids must be UUIDs');
    const client = this.client(spec, secrets);
    const address = await this.answeringAddress(spec, secrets);
    const base = { address, port: CONSUL_SERVER_PORTS.https, token: secrets.managementToken } as const;

    const readExisting = async (): Promise<CreatedToken | undefined> => {
      const res = await client.request({ ...base, method: 'GET', path: `/v1/acl/token/${accessorId}` });
      if (res.status === 200) return tokenIds(res.body);
      if (isAclNotFound(res)) return undefined;
      throw new Error(`Reading token on cluster ${spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
    };

    if (opts.accessorId !== undefined) {
      const existing = await readExisting();
      if (existing) return existing;
    }
    const res = await client.request({
      ...base,
      method: 'PUT',
      path: '/v1/acl/token',
      body: {
        AccessorID: accessorId,
        SecretID: secretId,
        Description: opts.description,
        Policies: [{ Name: 'global-management' }],
        Local: false,
      },
    });
    if (res.status === 200) return tokenIds(res.body);
    // A concurrent or earlier attempt with the same ids may have won the race.
    const existing = opts.accessorId !== undefined ? await readExisting() : undefined;
    if (existing) return existing;
    throw new Error(`Creating token on cluster ${spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
  }

  /**
   * Stops every server process of the cluster (SIGTERM, then SIGKILL after
   * the graceful timeout) and removes the cluster's directory.
   */
  async stopAndRemove(clusterId: string, opts: StopAndRemoveOptions = {}): Promise<void> {
    const clusterDir = this.layout.clusterDir(clusterId);
    const gracefulMs = opts.gracefulTimeoutMs ?? DEFAULT_GRACEFUL_TIMEOUT_MS;
    // Re-check after removal: a start racing with this call could have spawned one more.
    for (let round = 0; round < 3; round++) {
      const running = await this.observe(clusterId);
      if (running.length > 0) {
        for (const p of running) signalProcess(p.pid, 'SIGTERM');
        let left = await this.waitForExit(clusterId, running, gracefulMs);
        if (left.length > 0) {
          for (const p of left) signalProcess(p.pid, 'SIGKILL');
          left = await this.waitForExit(clusterId, left, KILL_TIMEOUT_MS);
          if (left.length > 0) {
            throw new Error(
              `Cluster ${clusterId}: server process(es) ${left.map((p) => p.pid).join(', ')} did not exit after SIGKILL`,
            );
          }
        }
      }
      await fs.rm(clusterDir, { recursive: true, force: true });
      if ((await this.observe(clusterId)).length === 0) break;
    }
    const cached = this.clients.get(clusterId);
    if (cached) {
      cached.client.close();
      this.clients.delete(clusterId);
    }
  }

  /**
   * Takes one server out of a running cluster for good (scaling down): a
   * graceful leave, so raft drops it from the peers while the others keep
   * quorum; its process exits; if it did not leave cleanly its raft peer is
   * removed through another server; then its files go. Idempotent.
   */
  async removeServer(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, opts: StopAndRemoveOptions = {}): Promise<void> {
    validateSpec(spec, secrets);
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    const others = spec.servers.filter((s) => s.index !== index);
    const client = this.client(spec, secrets);
    await this.stopServer(spec, secrets, index, opts);
    // Still a raft peer (it crashed, or the leave did not finish)? Remove it through a remaining server.
    const peer = `${server.address}:${CONSUL_SERVER_PORTS.server}`;
    for (const other of others) {
      const raft = await client
        .request({ address: other.address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/operator/raft/configuration', token: secrets.managementToken })
        .catch(() => undefined);
      if (!raft || raft.status !== 200) continue;
      if (raftServers(raft.body).some((s) => s.Address === peer)) {
        const res = await client.request({
          address: other.address, port: CONSUL_SERVER_PORTS.https, method: 'DELETE',
          path: `/v1/operator/raft/peer?address=${encodeURIComponent(peer)}`, token: secrets.managementToken,
        });
        if (res.status !== 200) throw new Error(`removing raft peer ${peer} answered HTTP ${res.status} ${describeBody(res.body)}`);
      }
      break;
    }
    await fs.rm(this.layout.server(spec.clusterId, index).serverDir, { recursive: true, force: true });
  }

  /**
   * Gossip key rotation by Consul's keyring procedure: install the new key on
   * every member, make it the primary, remove every other key. Each keyring call
   * answers only when all members have acted on it. Idempotent.
   */
  async rotateGossipKey(spec: LocalClusterSpec, secrets: LocalClusterSecrets, newKey: string): Promise<{ removed: number }> {
    validateSpec(spec, secrets);
    const keyring = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', body?: unknown) =>
      this.firstAnswering(spec, secrets, (address, client) =>
        client.request({ address, port: CONSUL_SERVER_PORTS.https, method, path: '/v1/operator/keyring', token: secrets.managementToken, body, timeoutMs: 30_000 }),
      ).then((res) => {
        if (res.status !== 200) throw new Error(`keyring ${method} answered HTTP ${res.status} ${describeBody(res.body)}`);
        return res.body;
      });
    await keyring('POST', { Key: newKey });
    await keyring('PUT', { Key: newKey });
    const pools = (await keyring('GET')) as { Keys: Record<string, number>; NumNodes: number }[];
    const old = new Set(pools.flatMap((p) => Object.keys(p.Keys)).filter((k) => k !== newKey));
    for (const k of old) await keyring('DELETE', { Key: k });
    const after = (await keyring('GET')) as { Keys: Record<string, number>; NumNodes: number; WAN: boolean }[];
    for (const p of after) {
      const keys = Object.keys(p.Keys);
      if (keys.length !== 1 || keys[0] !== newKey || p.Keys[newKey] !== p.NumNodes) {
        throw new Error(`keyring not converged on the new key (${p.WAN ? 'WAN' : 'LAN'}: ${keys.length} key(s), ${p.Keys[newKey] ?? 0}/${p.NumNodes} members)`);
      }
    }
    return { removed: old.size };
  }

  /**
   * Makes one server re-read its configuration (SIGHUP): new TLS certificates
   * are used for new connections without a restart. Waits until its HTTPS
   * endpoint serves a certificate with the expected fingerprint.
   */
  async reloadServer(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, expectedCertPem: string, timeoutMs = 30_000): Promise<void> {
    validateSpec(spec, secrets);
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    const proc = (await this.observe(spec.clusterId)).find((p) => p.index === index);
    if (!proc) throw new Error(`server ${index} of cluster ${spec.clusterId} is not running`);
    signalProcess(proc.pid, 'SIGHUP');
    const want = new X509Certificate(expectedCertPem).fingerprint256;
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    while (Date.now() < deadline) {
      seen = await servedFingerprint(server.address, CONSUL_SERVER_PORTS.https, caBundlePem(secrets.pki)).catch((e: Error) => `error: ${e.message}`);
      if (seen === want) return;
      await delay(100);
    }
    throw new Error(`server ${index} still serves another certificate after reload (${seen.slice(0, 40)})`);
  }

  /** The SHA-256 fingerprint of the certificate server `index` serves on HTTPS, verified against the trusted CA bundle. */
  async servedCertificateFingerprint(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number): Promise<string> {
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    return servedFingerprint(server.address, CONSUL_SERVER_PORTS.https, caBundlePem(secrets.pki));
  }

  /**
   * Whether server `index` accepts `client` as a client certificate on its RPC
   * port (verify_incoming_rpc): a TLS handshake as another server would make
   * it, so it tells which CAs the running process trusts right now (not what
   * its files say). TLS 1.2, so that a refusal ends the handshake.
   */
  async acceptsClientCertificate(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, client: Pick<ServerCertificate, 'certPem' | 'keyPem'>): Promise<boolean> {
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    return rpcHandshake(server.address, CONSUL_SERVER_PORTS.server, caBundlePem(secrets.pki), serverTlsName(spec.datacenter), client);
  }

  /**
   * Makes server `index` re-read its files (SIGHUP: TLS files and CAs apply to
   * new connections, no restart) unless `done` holds already, then waits until
   * it does. Returns whether it had to reload. Idempotent: a retry reloads
   * only the servers not there yet.
   */
  async reloadServerUntil(
    spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, what: string, done: () => Promise<boolean>, timeoutMs = 30_000,
  ): Promise<boolean> {
    validateSpec(spec, secrets);
    const attempt = () => done().catch(() => false);
    if (await attempt()) return false;
    const proc = (await this.observe(spec.clusterId)).find((p) => p.index === index);
    if (!proc) throw new Error(`server ${index} of cluster ${spec.clusterId} is not running`);
    signalProcess(proc.pid, 'SIGHUP');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await attempt()) return true;
      await delay(100);
    }
    throw new Error(`server ${index} of cluster ${spec.clusterId}: ${what} not true after its reload`);
  }

  /** The binary a running server was started from (null when it is not running). */
  async serverBinary(clusterId: string, index: number): Promise<string | null> {
    const proc = (await this.observe(clusterId)).find((p) => p.index === index);
    if (!proc) return null;
    const args = await readProcessArgs(proc.pid);
    return args?.[0] ?? null;
  }

  /**
   * Stops one server and keeps its files (rolling upgrade): a graceful leave
   * (unless `leave: false`), then it exits.
   */
  async stopServer(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, opts: StopServerOptions = {}): Promise<void> {
    validateSpec(spec, secrets);
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    const procs = (await this.observe(spec.clusterId)).filter((p) => p.index === index);
    if (procs.length === 0) return;
    if (opts.leave ?? true) {
      await this.client(spec, secrets)
        .request({ address: server.address, port: CONSUL_SERVER_PORTS.https, method: 'PUT', path: '/v1/agent/leave', token: secrets.managementToken, timeoutMs: 30_000 })
        .catch(() => undefined);
    }
    // The leave has completed when the call returns; the process does not always exit by itself.
    for (const p of procs) signalProcess(p.pid, 'SIGTERM');
    let left = await this.waitForExit(spec.clusterId, procs, opts.gracefulTimeoutMs ?? DEFAULT_GRACEFUL_TIMEOUT_MS);
    if (left.length > 0) {
      for (const p of left) signalProcess(p.pid, 'SIGKILL');
      left = await this.waitForExit(spec.clusterId, left, KILL_TIMEOUT_MS);
      if (left.length > 0) throw new Error(`server ${index} of cluster ${spec.clusterId} did not exit`);
    }
  }

  /** The Consul version a running server reports of itself, and the current leader's address. */
  async serverStatus(spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number): Promise<{ version: string; leader: string }> {
    const server = spec.servers.find((s) => s.index === index);
    if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    const client = this.client(spec, secrets);
    const base = { address: server.address, port: CONSUL_SERVER_PORTS.https, token: secrets.managementToken } as const;
    const self = await client.request({ ...base, method: 'GET', path: '/v1/agent/self' });
    if (self.status !== 200) throw new Error(`agent/self on server ${index} answered HTTP ${self.status}`);
    const leader = await client.request({ ...base, method: 'GET', path: '/v1/status/leader' });
    return { version: String((self.body as { Config?: { Version?: string } }).Config?.Version ?? ''), leader: String(leader.body ?? '') };
  }

  /** Autopilot's view: every server healthy (alive, voter, caught up on the commit index). */
  async autopilotHealthy(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<{ healthy: boolean; detail: string }> {
    const res = await this.firstAnswering(spec, secrets, (address, client) =>
      client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/operator/autopilot/health', token: secrets.managementToken }),
    );
    // 429 is Consul's answer for "not healthy".
    const body = res.body as { Healthy?: boolean; Servers?: { Name: string; Healthy: boolean; Voter: boolean; LastIndex: number }[] };
    const servers = body?.Servers ?? [];
    const detail = servers.map((s) => `${s.Name}:${s.Healthy ? 'healthy' : 'unhealthy'}${s.Voter ? '' : '(non-voter)'}@${s.LastIndex}`).join(', ');
    return { healthy: (res.status === 200 && body?.Healthy === true && servers.length === spec.servers.length && servers.every((s) => s.Voter)), detail };
  }

  /**
   * The servers running from another config than the one `writeServerFiles`
   * writes for this spec and secrets: started before the files changed (or by
   * a version of this code that did not record it). Settings Consul 1.8 reads
   * only at start, like acl.tokens.master, need those restarted.
   */
  async serversOnOldConfig(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<number[]> {
    validateSpec(spec, secrets);
    const old = new Set<number>();
    for (const proc of await this.observe(spec.clusterId)) {
      const server = spec.servers.find((s) => s.index === proc.index);
      if (!server) continue;
      const env = await readProcessEnv(proc.pid);
      if (env === undefined) continue; // exited meanwhile
      const current = sha256(this.renderConfig(spec, secrets, server, this.layout.server(spec.clusterId, server.index)));
      if (env[CONFIG_HASH_ENV] !== current) old.add(proc.index);
    }
    return [...old].sort((a, b) => a - b);
  }

  /** The index of the current leader as the first answering server sees it; undefined while there is none. */
  async leaderIndex(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<number | undefined> {
    validateSpec(spec, secrets);
    const res = await this.firstAnswering(spec, secrets, (address, client) =>
      client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/status/leader', timeoutMs: HTTP_TIMEOUT_MS }),
    );
    const leader = res.status === 200 && typeof res.body === 'string' ? res.body : '';
    return spec.servers.find((s) => leader === `${s.address}:${CONSUL_SERVER_PORTS.server}`)?.index;
  }

  /**
   * Waits until the cluster is whole after a server restarted: a leader, every
   * server a voter on the new ACL system (waitForLeader), every follower in
   * contact with the leader and its raft log applied up to the leader's commit
   * index, and autopilot reporting every server healthy.
   */
  async waitForHealthy(spec: LocalClusterSpec, secrets: LocalClusterSecrets, opts: WaitForHealthyOptions): Promise<LeaderState> {
    const startedAt = Date.now();
    const deadline = startedAt + opts.timeoutMs;
    const state = await this.waitForLeader(spec, secrets, { timeoutMs: opts.timeoutMs });
    const client = this.client(spec, secrets);
    let commitIndex: number | undefined;
    for (;;) {
      let why: string;
      try {
        const stats = await Promise.all(spec.servers.map((s) => raftStats(client, s.address, secrets.managementToken)));
        const leader = stats.find((x) => x.state === 'Leader');
        if (!leader) {
          why = 'no server reports itself leader';
        } else {
          commitIndex ??= leader.commitIndex;
          const target = commitIndex;
          const behind = spec.servers.filter((_, i) => {
            const x = stats[i]!;
            return x.state !== 'Leader' && (x.state !== 'Follower' || x.lastContact === 'never' || x.appliedIndex < target);
          });
          if (behind.length > 0) {
            why = `server(s) ${behind.map((s) => s.index).join(', ')} not caught up with index ${target}`;
          } else {
            const ap = await this.autopilotHealthy(spec, secrets);
            if (ap.healthy) return { ...state, elapsedMs: Date.now() - startedAt };
            why = `autopilot: ${ap.detail || 'no servers'}`;
          }
        }
      } catch (e) {
        why = (e as Error).message;
      }
      if (Date.now() + DEFAULT_POLL_INTERVAL_MS > deadline) {
        throw new Error(`Cluster ${spec.clusterId} not healthy after ${Date.now() - startedAt} ms: ${why}`);
      }
      await delay(DEFAULT_POLL_INTERVAL_MS);
    }
  }

  /**
   * Rolling restart onto the files of `writeServerFiles(spec, secrets)`, for
   * settings Consul applies only at start. Servers that are down are started
   * first; then one at a time each server still running an older config
   * (serversOnOldConfig) restarts, followers first: a follower just stops and
   * starts again, staying a voter, so the others keep quorum and the leader;
   * the leader, last, leaves gracefully so the others elect a new one at once.
   * The cluster must be healthy (waitForHealthy) before the next server.
   * Idempotent: servers already on the current config are left alone.
   */
  async restartServersOnOldConfig(spec: LocalClusterSpec, secrets: LocalClusterSecrets, opts: WaitForHealthyOptions): Promise<RollingRestartResult> {
    validateSpec(spec, secrets);
    const started = (await this.startServers(spec, secrets)).started.map((p) => p.index);
    await this.waitForHealthy(spec, secrets, opts);
    const restarted: number[] = [];
    for (;;) {
      const old = await this.serversOnOldConfig(spec, secrets);
      if (old.length === 0) return { restarted, started };
      const leader = await this.leaderIndex(spec, secrets);
      const index = old.find((i) => i !== leader) ?? old[0]!;
      if (restarted.includes(index)) {
        throw new Error(`server ${index} of cluster ${spec.clusterId} still runs an older config after its restart`);
      }
      await this.stopServer(spec, secrets, index, { leave: index === leader && spec.servers.length > 1 });
      await this.startServers(spec, secrets);
      await this.waitForHealthy(spec, secrets, opts);
      restarted.push(index);
    }
  }

  /**
   * What Consul knows of the token with this secret, asked with the token
   * itself (`/v1/acl/token/self`) of server `index`, or of the first server
   * that answers when omitted; undefined when it answers "ACL not found".
   */
  async tokenInfo(spec: LocalClusterSpec, secrets: LocalClusterSecrets, secretId: string, index?: number): Promise<TokenInfo | undefined> {
    validateSpec(spec, secrets);
    const servers = index === undefined ? spec.servers : spec.servers.filter((s) => s.index === index);
    if (servers.length === 0) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
    const client = this.client(spec, secrets);
    let lastError = '';
    for (const server of servers) {
      let res: ConsulResponse;
      try {
        res = await client.request({
          address: server.address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/acl/token/self', token: secretId, timeoutMs: HTTP_TIMEOUT_MS,
        });
      } catch (e) {
        lastError = (e as Error).message; // down or restarting: ask the next
        continue;
      }
      if (res.status === 200) {
        const body = res.body as { AccessorID?: unknown; Policies?: { Name?: unknown }[] } | undefined;
        if (typeof body?.AccessorID !== 'string') throw new Error(`server ${server.index}: token lookup answered without an AccessorID`);
        return { accessorId: body.AccessorID, policies: (body.Policies ?? []).map((p) => String(p.Name)) };
      }
      if (isAclNotFound(res)) return undefined;
      // Only error answers reach here, and they never hold the token.
      lastError = `server ${server.index}: token lookup answered HTTP ${res.status} ${describeBody(res.body)}`;
    }
    throw new Error(lastError);
  }

  /** Waits until every running server resolves the token (it was just created through the leader); returns it. */
  async waitForTokenOnEveryServer(spec: LocalClusterSpec, secrets: LocalClusterSecrets, secretId: string, opts: WaitForHealthyOptions): Promise<TokenInfo> {
    return this.pollEveryServer(spec, secrets, secretId, opts, 'resolve the token', (info) => info !== undefined) as Promise<TokenInfo>;
  }

  /**
   * Deletes the token with this secret (its accessor is looked up with the
   * token itself), authorized by `secrets.managementToken`, then waits until
   * every running server answers "ACL not found" for it. Returns the deleted accessor,
   * or undefined if the token was gone already. Idempotent.
   */
  async deleteTokenBySecret(spec: LocalClusterSpec, secrets: LocalClusterSecrets, secretId: string, opts: WaitForHealthyOptions): Promise<string | undefined> {
    validateSpec(spec, secrets);
    if (secretId === secrets.managementToken) throw new Error('refusing to delete the management token the request is made with');
    const found = await this.tokenInfo(spec, secrets, secretId);
    if (found) {
      const accessorId = found.accessorId;
      const res = await this.firstAnswering(spec, secrets, (address, client) =>
        client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'DELETE', path: `/v1/acl/token/${encodeURIComponent(accessorId)}`, token: secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS }),
      );
      if (res.status !== 200 && !isAclNotFound(res)) {
        throw new Error(`deleting token ${accessorId} on cluster ${spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
      }
    }
    await this.pollEveryServer(spec, secrets, secretId, opts, 'reject the token', (info) => info === undefined);
    return found?.accessorId;
  }

  /**
   * Deletes the token with this AccessorID, authorized by `secrets.managementToken`,
   * unless it is that token itself ('current': left alone). 'absent' when the
   * cluster has no such token. Idempotent.
   */
  async deleteTokenByAccessor(spec: LocalClusterSpec, secrets: LocalClusterSecrets, accessorId: string): Promise<'deleted' | 'absent' | 'current'> {
    validateSpec(spec, secrets);
    if (!UUID.test(accessorId)) throw new Error('a token accessor id must be a UUID');
    const path = `/v1/acl/token/${encodeURIComponent(accessorId)}`;
    const call = (method: 'GET' | 'DELETE'): Promise<ConsulResponse> =>
      this.firstAnswering(spec, secrets, (address, client) =>
        client.request({ address, port: CONSUL_SERVER_PORTS.https, method, path, token: secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS }),
      );
    const found = await call('GET');
    if (isAclNotFound(found)) return 'absent';
    // A 200 answer holds the token's secret: compared, never described.
    if (found.status !== 200) throw new Error(`reading token ${accessorId} on cluster ${spec.clusterId} answered HTTP ${found.status} ${describeBody(found.body)}`);
    if (tokenIds(found.body).secretId === secrets.managementToken) return 'current';
    const res = await call('DELETE');
    if (res.status !== 200 && !isAclNotFound(res)) {
      throw new Error(`deleting token ${accessorId} on cluster ${spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
    }
    return 'deleted';
  }

  /**
   * Waits until every running server, each answering from its own state
   * (`?stale`, as when it authorizes a request), resolves
   * `secrets.managementToken` and answers "ACL not found" for each of
   * `absentAccessorIds`. The management token is asked about first, so an
   * "ACL not found" after it is about the token looked up, not the one the
   * request is made with.
   */
  async waitForTokensAbsentOnEveryServer(
    spec: LocalClusterSpec, secrets: LocalClusterSecrets, absentAccessorIds: readonly string[], opts: WaitForHealthyOptions,
  ): Promise<void> {
    validateSpec(spec, secrets);
    const client = this.client(spec, secrets);
    const startedAt = Date.now();
    for (;;) {
      const running = new Set((await this.observe(spec.clusterId)).map((p) => p.index));
      const servers = spec.servers.filter((s) => running.has(s.index));
      const waiting: string[] = servers.length === 0 ? ['no server is running'] : [];
      for (const s of servers) {
        const get = (path: string): Promise<ConsulResponse> =>
          client.request({ address: s.address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path, token: secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS });
        try {
          const self = await get('/v1/acl/token/self?stale');
          if (self.status !== 200) {
            waiting.push(`server ${s.index}: the management token answered HTTP ${self.status} ${describeBody(self.body)}`);
            continue;
          }
          for (const accessorId of absentAccessorIds) {
            const res = await get(`/v1/acl/token/${encodeURIComponent(accessorId)}?stale`);
            if (res.status === 200) waiting.push(`server ${s.index}: token ${accessorId} exists`);
            else if (!isAclNotFound(res)) waiting.push(`server ${s.index}: token ${accessorId} answered HTTP ${res.status} ${describeBody(res.body)}`);
          }
        } catch (e) {
          waiting.push(`server ${s.index}: ${(e as Error).message}`);
        }
      }
      if (waiting.length === 0) return;
      if (Date.now() - startedAt + DEFAULT_POLL_INTERVAL_MS > opts.timeoutMs) {
        throw new Error(`cluster ${spec.clusterId}: not every server rejects the retired tokens and resolves the management token after ${Date.now() - startedAt} ms (${waiting.join('; ')})`);
      }
      await delay(DEFAULT_POLL_INTERVAL_MS);
    }
  }

  /** Asks every running server about a token until `done` holds for all of them. */
  private async pollEveryServer(
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    secretId: string,
    opts: WaitForHealthyOptions,
    what: string,
    done: (info: TokenInfo | undefined) => boolean,
  ): Promise<TokenInfo | undefined> {
    validateSpec(spec, secrets);
    const startedAt = Date.now();
    for (;;) {
      // A server that is down learns what it missed from the raft log when it starts.
      const running = new Set((await this.observe(spec.clusterId)).map((p) => p.index));
      const servers = spec.servers.filter((s) => running.has(s.index));
      let first: TokenInfo | undefined;
      const waiting: string[] = servers.length === 0 ? ['no server is running'] : [];
      for (const s of servers) {
        try {
          const info = await this.tokenInfo(spec, secrets, secretId, s.index);
          if (!done(info)) waiting.push(`server ${s.index}`);
          if (s === servers[0]) first = info;
        } catch (e) {
          waiting.push((e as Error).message);
        }
      }
      if (waiting.length === 0) return first;
      if (Date.now() - startedAt + DEFAULT_POLL_INTERVAL_MS > opts.timeoutMs) {
        throw new Error(`cluster ${spec.clusterId}: not every server would ${what} after ${Date.now() - startedAt} ms (${waiting.join('; ')})`);
      }
      await delay(DEFAULT_POLL_INTERVAL_MS);
    }
  }

  /** Closes pooled HTTPS connections (servers keep running). */
  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private renderConfig(
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    server: LocalServerSpec,
    paths: ServerPaths,
  ): string {
    return serverFiles(spec, secrets, server.index, paths).config.content;
  }

  private async assertFilesWritten(
    spec: LocalClusterSpec,
    secrets: LocalClusterSecrets,
    server: LocalServerSpec,
    paths: ServerPaths,
  ): Promise<void> {
    const expected = this.renderConfig(spec, secrets, server, paths);
    const actual = await fs.readFile(paths.configFile, 'utf8').catch(() => undefined);
    if (actual !== expected) {
      throw new Error(
        `Config of ${serverNodeName(spec.datacenter, server.index)} (cluster ${spec.clusterId}) is ` +
          `${actual === undefined ? 'missing' : 'not the one of this spec'}; call writeServerFiles first`,
      );
    }
  }

  private async assertAllRunning(spec: LocalClusterSpec): Promise<void> {
    const running = new Set((await this.observe(spec.clusterId)).map((p) => p.index));
    for (const server of spec.servers) {
      if (running.has(server.index)) continue;
      const paths = this.layout.server(spec.clusterId, server.index);
      throw new Error(
        `${serverNodeName(spec.datacenter, server.index)} of cluster ${spec.clusterId} is not running; ` +
          `end of ${paths.logFile}:\n${await logTail(paths.logFile)}`,
      );
    }
  }

  /** Waits until none of `procs` is alive any more; returns those still alive at the timeout. */
  private async waitForExit(clusterId: string, procs: ObservedServer[], timeoutMs: number): Promise<ObservedServer[]> {
    const deadline = Date.now() + timeoutMs;
    let left = procs;
    for (;;) {
      const alive = await Promise.all(left.map((p) => this.isAlive(clusterId, p)));
      left = left.filter((_, i) => alive[i]);
      if (left.length === 0 || Date.now() >= deadline) return left;
      await delay(EXIT_POLL_MS);
    }
  }

  /** Alive and still the same server (guards against pid reuse). */
  private async isAlive(clusterId: string, proc: ObservedServer): Promise<boolean> {
    const args = await readProcessArgs(proc.pid);
    return args?.some((a) => this.layout.serverIndexOfConfigDirArgument(clusterId, a) === proc.index) ?? false;
  }

  /**
   * Takes a snapshot through Consul's snapshot API (served by the leader): a
   * gzipped archive of the raft state, with the raft index it was taken at.
   */
  async saveSnapshot(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<{ data: Buffer; index: bigint }> {
    validateSpec(spec, secrets);
    const res = await this.firstAnswering(spec, secrets, (address, client) =>
      client.requestRaw({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/snapshot', token: secrets.managementToken, timeoutMs: 60_000, maxBytes: 1024 * 1024 * 1024 }),
    );
    if (res.status !== 200) throw new Error(`snapshot of cluster ${spec.clusterId} answered HTTP ${res.status} ${res.data.toString('utf8').slice(0, 200)}`);
    return { data: res.data, index: BigInt(String(res.headers['x-consul-index'] ?? '0')) };
  }

  /** Restores a snapshot taken with saveSnapshot: the cluster's state becomes exactly the snapshot's. */
  async restoreSnapshot(spec: LocalClusterSpec, secrets: LocalClusterSecrets, data: Buffer): Promise<void> {
    validateSpec(spec, secrets);
    const res = await this.firstAnswering(spec, secrets, (address, client) =>
      client.requestRaw({ address, port: CONSUL_SERVER_PORTS.https, method: 'PUT', path: '/v1/snapshot', token: secrets.managementToken, rawBody: data, timeoutMs: 120_000 }),
    );
    if (res.status !== 200) throw new Error(`restore on cluster ${spec.clusterId} answered HTTP ${res.status} ${res.data.toString('utf8').slice(0, 200)}`);
  }

  /** The address of the first server whose HTTPS API answers (one may be down or restarting). */
  private async answeringAddress(spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<string> {
    return this.firstAnswering(spec, secrets, async (address, client) => {
      await client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/status/leader', timeoutMs: HTTP_TIMEOUT_MS });
      return address;
    });
  }

  /** Asks each server in turn until one answers (a server may be down or restarting). */
  private async firstAnswering<T>(spec: LocalClusterSpec, secrets: LocalClusterSecrets, call: (address: string, client: ConsulHttpClient) => Promise<T>): Promise<T> {
    const client = this.client(spec, secrets);
    let last: unknown;
    for (const server of spec.servers) {
      try {
        return await call(server.address, client);
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  private client(spec: LocalClusterSpec, secrets: LocalClusterSecrets): ConsulHttpClient {
    const bundle = caBundlePem(secrets.pki);
    const cached = this.clients.get(spec.clusterId);
    if (cached && cached.caCertPem === bundle) return cached.client;
    cached?.client.close();
    const client = new ConsulHttpClient(bundle);
    this.clients.set(spec.clusterId, { caCertPem: bundle, client });
    return client;
  }
}

interface RaftServer {
  Node: string;
  Address: string;
  Voter: boolean;
  Leader: boolean;
}

function raftServers(body: unknown): RaftServer[] {
  const servers = (body as { Servers?: unknown } | undefined)?.Servers;
  return Array.isArray(servers) ? (servers as RaftServer[]) : [];
}

interface RaftStats {
  state: string;
  appliedIndex: number;
  commitIndex: number;
  lastContact: string;
}

/** A server's own raft view (`/v1/agent/self` Stats.raft). */
async function raftStats(client: ConsulHttpClient, address: string, token: string): Promise<RaftStats> {
  const res = await client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/agent/self', token, timeoutMs: HTTP_TIMEOUT_MS });
  if (res.status !== 200) throw new Error(`${address}: agent/self answered HTTP ${res.status} ${describeBody(res.body)}`);
  const raft = (res.body as { Stats?: { raft?: Record<string, string> } } | undefined)?.Stats?.raft ?? {};
  return {
    state: raft['state'] ?? '',
    appliedIndex: Number(raft['applied_index'] ?? 0),
    commitIndex: Number(raft['commit_index'] ?? 0),
    lastContact: raft['last_contact'] ?? 'never',
  };
}

/** Consul 1.8 answers an unknown token or accessor id with 403 "ACL not found". */
function isAclNotFound(res: ConsulResponse): boolean {
  return res.status === 404 || (res.status === 403 && /ACL not found/i.test(describeBody(res.body)));
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function tokenIds(body: unknown): CreatedToken {
  const b = body as { AccessorID?: unknown; SecretID?: unknown } | undefined;
  if (typeof b?.AccessorID !== 'string' || typeof b.SecretID !== 'string') {
    throw new Error('Consul answered a token without AccessorID/SecretID');
  }
  return { accessorId: b.AccessorID, secretId: b.SecretID };
}

function validateSpec(spec: LocalClusterSpec, secrets: LocalClusterSecrets): void {
  const n = spec.servers.length;
  if (!ALLOWED_SERVER_COUNTS.includes(n)) {
    throw new Error(`Cluster ${spec.clusterId}: ${n} servers; must be one of ${ALLOWED_SERVER_COUNTS.join(', ')}`);
  }
  if (new Set(spec.servers.map((s) => s.index)).size !== n) throw new Error(`Cluster ${spec.clusterId}: duplicate server index`);
  if (new Set(spec.servers.map((s) => s.address)).size !== n) throw new Error(`Cluster ${spec.clusterId}: duplicate server address`);
  for (const s of spec.servers) {
    if (!isIPv4(s.address) || !s.address.startsWith('127.') || s.address === '127.0.0.1') {
      throw new Error(`Cluster ${spec.clusterId}: server address ${s.address} must be a dedicated 127.0.0.0/8 address`);
    }
    serverCertificate(secrets.pki, s.address);
  }
}

async function logTail(file: string, maxLines = 20): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 8192);
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, size - length);
      return buf.toString('utf8').trimEnd().split('\n').slice(-maxLines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log)';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The SHA-256 fingerprint of the certificate a TLS server presents (checked against the cluster CA). */
function servedFingerprint(host: string, port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca, servername: undefined, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (!cert) reject(new Error('no certificate presented'));
      else resolve(cert.fingerprint256);
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', reject);
  });
}

/**
 * A TLS handshake on a Consul server's RPC port (first byte 0x03: RPCTLS) with
 * a client certificate. true: accepted; false: the server refused the
 * certificate (a TLS alert); anything else (down, our side refusing the
 * server's certificate) is an error.
 */
function rpcHandshake(host: string, port: number, ca: string, servername: string, client: { certPem: string; keyPem: string }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host, port });
    const fail = (e: Error) => {
      raw.destroy();
      reject(e);
    };
    raw.setTimeout(5_000, () => fail(new Error('RPC TLS handshake timed out')));
    raw.once('error', fail);
    raw.once('connect', () => {
      raw.write(Buffer.from([0x03]));
      const socket = tls.connect({ socket: raw, ca, servername, cert: client.certPem, key: client.keyPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', rejectUnauthorized: true }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        socket.destroy();
        if (/_ALERT_/.test(e.code ?? '')) resolve(false);
        else fail(e);
      });
    });
  });
}
