import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { ClusterSecrets, ClusterSpec, ServerSpec } from '../cluster-spec';
import { validateSpec as validateClusterSpec } from '../consul/consul-api';
import { poll } from '../consul/poll';
import { serverFileList, serverFiles } from '../server-files';
import { READY, type Progress, type PublicEndpointSpec, type Target } from '../target';
import { removeStaleTemporaryFiles, writeFileIfChanged } from './atomic-file';
import { ClusterLayout, type ServerPaths } from './cluster-layout';
import { findBusyPorts } from './loopback-ports';
import { LocalPublicEndpoints } from './public-endpoints';
import { CONSUL_SERVER_BOUND_PORTS, serverNodeName } from './server-config';
import { listAgentProcesses, readProcessArgs, readProcessEnv, signalProcess, spawnServerProcess } from './server-processes';

/**
 * The `local` target, the servers' hosts on this machine: each server is a
 * real Consul process on its own loopback address with Consul's standard
 * ports, started detached so that it outlives the worker, with its files
 * under `<clustersDir>/<clusterId>/server-<i>/`.
 *
 * Every method is idempotent and may be called again after the calling
 * worker was SIGKILLed at any point: state is read back from the file system
 * and the process table, never from memory or pid files. Each change is done
 * when the call returns, so every Progress is `ready`.
 */

export interface LocalTargetOptions {
  /** Root of all clusters' files: `<clustersDir>/<clusterId>/server-<i>/...`. */
  clustersDir: string;
  /** Path of the Consul binary for a Consul version. */
  consulBinary(version: string): string;
}

/** Names kept from when this class was the whole target. */
export type LocalServerSpec = ServerSpec;
export type LocalClusterSpec = ClusterSpec;
export type LocalClusterSecrets = ClusterSecrets;

/** A server process. */
export interface LocalServerProcess {
  index: number;
  pid: number;
}

export interface StartServersResult {
  state: 'ready';
  /** Servers spawned by this call. */
  started: LocalServerProcess[];
  /** Servers that were already running and left alone. */
  alreadyRunning: LocalServerProcess[];
}

export interface StopOptions {
  /** How long to wait after SIGTERM before SIGKILL. Default 20 s. */
  gracefulTimeoutMs?: number;
}

const DEFAULT_GRACEFUL_TIMEOUT_MS = 20_000;
const KILL_TIMEOUT_MS = 5_000;
const EXIT_POLL_MS = 50;
/**
 * Environment variable of each server process: the SHA-256 of the config file
 * it was started from. Consul 1.8 applies some settings (acl.tokens.master)
 * only at start, not on SIGHUP; this tells which servers still run an older
 * config. A hash of random UUIDs and keys, it reveals none of them.
 */
const CONFIG_HASH_ENV = 'MANAGED_CONSUL_CONFIG_SHA256';

export class LocalTarget implements Target {
  readonly kind = 'local' as const;
  private readonly layout: ClusterLayout;
  private readonly consulBinary: (version: string) => string;
  /** The clusters' public endpoints: a proxy process each, on the cluster's own public loopback address. */
  readonly endpoints: LocalPublicEndpoints;

  constructor(opts: LocalTargetOptions) {
    this.layout = new ClusterLayout(opts.clustersDir);
    this.consulBinary = opts.consulBinary;
    this.endpoints = new LocalPublicEndpoints(this.layout);
  }

  async updateEndpoint(spec: ClusterSpec, _secrets: ClusterSecrets, endpoint: PublicEndpointSpec | null): Promise<Progress> {
    if (endpoint) await this.endpoints.ensure(spec, endpoint);
    else await this.endpoints.remove(spec.clusterId);
    return READY;
  }

  publicAddress(clusterId: string): Promise<string | null> {
    return this.endpoints.address(clusterId);
  }

  /** The cluster's folder. */
  async ensureInfrastructure(spec: ClusterSpec): Promise<Progress> {
    await fs.mkdir(this.layout.clusterDir(spec.clusterId), { recursive: true, mode: 0o700 });
    return READY;
  }

  async writeServerConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<Progress> {
    await this.writeServerFiles(spec, secrets);
    return READY;
  }

  /** Writes each server's config and TLS files; rewrites only what differs. */
  async writeServerFiles(spec: ClusterSpec, secrets: ClusterSecrets): Promise<void> {
    validateSpec(spec, secrets);
    await this.ensureInfrastructure(spec);
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
  async observe(clusterId: string): Promise<LocalServerProcess[]> {
    this.layout.clusterDir(clusterId); // validates the id
    const observed: LocalServerProcess[] = [];
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
  startServers(spec: ClusterSpec, secrets: ClusterSecrets): Promise<StartServersResult> {
    return this.start(spec, secrets, spec.servers);
  }

  async putServer(spec: ClusterSpec, secrets: ClusterSecrets, index: number): Promise<Progress> {
    validateSpec(spec, secrets);
    const server = serverOf(spec, index);
    if ((await this.observe(spec.clusterId)).some((p) => p.index === index)) {
      const onBinary = (await this.serverBinary(spec.clusterId, index)) === this.consulBinary(spec.consulVersion);
      if (onBinary && !(await this.serversOnOldConfig(spec, secrets)).includes(index)) return READY;
      await this.stopServer(spec.clusterId, index);
    }
    await this.start(spec, secrets, [server]);
    return READY;
  }

  /** SIGHUP: Consul re-reads its files; TLS files and CAs apply to new connections, no restart. */
  async reloadServer(clusterId: string, index: number): Promise<Progress> {
    const proc = (await this.observe(clusterId)).find((p) => p.index === index);
    if (!proc) throw new Error(`server ${index} of cluster ${clusterId} is not running`);
    signalProcess(proc.pid, 'SIGHUP');
    return READY;
  }

  /** Stops one server and keeps its files: SIGTERM, SIGKILL after the graceful timeout. */
  async stopServer(clusterId: string, index: number, opts: StopOptions = {}): Promise<Progress> {
    const procs = (await this.observe(clusterId)).filter((p) => p.index === index);
    await this.terminate(clusterId, procs, opts, `server ${index} of cluster ${clusterId}`);
    return READY;
  }

  /** Stops one server and removes its files (scaling down). */
  async removeServer(clusterId: string, index: number, opts: StopOptions = {}): Promise<Progress> {
    await this.stopServer(clusterId, index, opts);
    await fs.rm(this.layout.server(clusterId, index).serverDir, { recursive: true, force: true });
    return READY;
  }

  async deleteAll(clusterId: string): Promise<Progress> {
    await this.stopAndRemove(clusterId);
    return READY;
  }

  /**
   * Stops every server process of the cluster (SIGTERM, then SIGKILL after
   * the graceful timeout) and removes the cluster's directory.
   */
  async stopAndRemove(clusterId: string, opts: StopOptions = {}): Promise<void> {
    const clusterDir = this.layout.clusterDir(clusterId);
    // The public endpoint first: nothing public of the cluster stays up while its servers go.
    await this.endpoints.remove(clusterId);
    // Re-check after removal: a start racing with this call could have spawned one more.
    for (let round = 0; round < 3; round++) {
      await this.terminate(clusterId, await this.observe(clusterId), opts, `Cluster ${clusterId}: server process(es)`);
      await fs.rm(clusterDir, { recursive: true, force: true });
      if ((await this.observe(clusterId)).length === 0) break;
    }
  }

  /** The binary a running server was started from (null when it is not running). */
  async serverBinary(clusterId: string, index: number): Promise<string | null> {
    const proc = (await this.observe(clusterId)).find((p) => p.index === index);
    if (!proc) return null;
    const args = await readProcessArgs(proc.pid);
    return args?.[0] ?? null;
  }

  /**
   * The servers running from another config than the one `writeServerFiles`
   * writes for this spec and secrets: started before the files changed (or by
   * a version of this code that did not record it). Settings Consul 1.8 reads
   * only at start, like acl.tokens.master, need those restarted.
   */
  async serversOnOldConfig(spec: ClusterSpec, secrets: ClusterSecrets): Promise<number[]> {
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

  async explainDown(clusterId: string, index: number): Promise<string> {
    const { logFile } = this.layout.server(clusterId, index);
    return `end of ${logFile}:\n${await logTail(logFile)}`;
  }

  /** Nothing is pooled here (the Consul API holds the connections); servers keep running. */
  close(): void {}

  private async start(spec: ClusterSpec, secrets: ClusterSecrets, servers: readonly ServerSpec[]): Promise<StartServersResult> {
    validateSpec(spec, secrets);
    const binary = this.consulBinary(spec.consulVersion);
    const running = await this.observe(spec.clusterId);
    const result: StartServersResult = { state: 'ready', started: [], alreadyRunning: [] };
    const toStart: { server: ServerSpec; paths: ServerPaths }[] = [];
    for (const server of servers) {
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

  /** SIGTERM, then SIGKILL after the graceful timeout; fails if one survives both. */
  private async terminate(clusterId: string, procs: LocalServerProcess[], opts: StopOptions, what: string): Promise<void> {
    if (procs.length === 0) return;
    for (const p of procs) signalProcess(p.pid, 'SIGTERM');
    let left = await this.waitForExit(clusterId, procs, opts.gracefulTimeoutMs ?? DEFAULT_GRACEFUL_TIMEOUT_MS);
    if (left.length === 0) return;
    for (const p of left) signalProcess(p.pid, 'SIGKILL');
    left = await this.waitForExit(clusterId, left, KILL_TIMEOUT_MS);
    if (left.length > 0) throw new Error(`${what} ${left.map((p) => p.pid).join(', ')} did not exit after SIGKILL`);
  }

  /** Waits until none of `procs` is alive any more; returns those still alive at the timeout. */
  private async waitForExit(clusterId: string, procs: LocalServerProcess[], timeoutMs: number): Promise<LocalServerProcess[]> {
    let left = procs;
    await poll('server processes to exit', async () => {
      const alive = await Promise.all(left.map((p) => this.isAlive(clusterId, p)));
      left = left.filter((_, i) => alive[i]);
      return left;
    }, (l) => (l.length === 0 ? true : `${l.length} alive`), { timeoutMs, intervalMs: EXIT_POLL_MS }).catch(() => undefined);
    return left;
  }

  /** Alive and still the same server (guards against pid reuse). */
  private async isAlive(clusterId: string, proc: LocalServerProcess): Promise<boolean> {
    const args = await readProcessArgs(proc.pid);
    return args?.some((a) => this.layout.serverIndexOfConfigDirArgument(clusterId, a) === proc.index) ?? false;
  }

  private renderConfig(spec: ClusterSpec, secrets: ClusterSecrets, server: ServerSpec, paths: ServerPaths): string {
    return serverFiles(spec, secrets, server.index, paths).config.content;
  }

  private async assertFilesWritten(spec: ClusterSpec, secrets: ClusterSecrets, server: ServerSpec, paths: ServerPaths): Promise<void> {
    const expected = this.renderConfig(spec, secrets, server, paths);
    const actual = await fs.readFile(paths.configFile, 'utf8').catch(() => undefined);
    if (actual !== expected) {
      throw new Error(
        `Config of ${serverNodeName(spec.datacenter, server.index)} (cluster ${spec.clusterId}) is ` +
          `${actual === undefined ? 'missing' : 'not the one of this spec'}; call writeServerFiles first`,
      );
    }
  }
}

function serverOf(spec: ClusterSpec, index: number): ServerSpec {
  const server = spec.servers.find((s) => s.index === index);
  if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
  return server;
}

/** The shared checks, and: every address a dedicated loopback address. */
function validateSpec(spec: ClusterSpec, secrets: ClusterSecrets): void {
  for (const s of spec.servers) {
    if (!isIPv4(s.address) || !s.address.startsWith('127.') || s.address === '127.0.0.1') {
      throw new Error(`Cluster ${spec.clusterId}: server address ${s.address} must be a dedicated 127.0.0.0/8 address`);
    }
  }
  validateClusterSpec(spec, secrets);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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
