import { spawn } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ClusterSpec } from '../cluster-spec';
import { PollAborted, poll } from '../consul/poll';
import type { PublicEndpointSpec } from '../target';
import { writeFileIfChanged } from './atomic-file';
import type { ClusterLayout } from './cluster-layout';
import { findBusyPorts } from './loopback-ports';
import { ENDPOINT_APPLIED_FILE, ENDPOINT_CONFIG_FILE, ENDPOINT_DIR_ARGUMENT, configDigest, type EndpointConfig } from './public-endpoint-proxy';
import { readProcessArgs, signalProcess } from './server-processes';

/**
 * The public endpoints of local clusters: one proxy process per cluster whose endpoint is on
 * (public-endpoint-proxy.ts), on the cluster's public loopback address. Like the servers, the
 * process table is the truth: a proxy is found by its `--endpoint-dir=` argument, so a worker
 * restarted (or SIGKILLed mid-change) adopts the one running; its config file and `applied` digest
 * say whether it runs the wanted allowlist.
 */

/** Consul's HTTPS port, where Azure's public load balancer listens too. */
export const PUBLIC_ENDPOINT_PORT = 8501;
/**
 * The last octet of a cluster's public address in its loopback block (servers take .1 to .5,
 * 127.<a>.<b>.<index + 1>): the block is the cluster's alone, so the address is too.
 */
const PUBLIC_HOST_OCTET = 200;
const APPLY_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;

export interface PublicEndpointProcess {
  pid: number;
}

/** The public address of a local cluster: its loopback block's .200. */
export function localPublicAddress(spec: Pick<ClusterSpec, 'clusterId' | 'servers'>): string {
  const first = spec.servers[0]?.address;
  const m = first ? /^(127\.\d+\.\d+)\.\d+$/.exec(first) : null;
  if (!m) throw new Error(`cluster ${spec.clusterId} has no loopback block yet (its first server's address: ${first ?? 'none'})`);
  return `${m[1]}.${PUBLIC_HOST_OCTET}`;
}

export class LocalPublicEndpoints {
  /** The compiled proxy beside this file: run with the worker's own node. */
  private readonly script = path.join(__dirname, 'public-endpoint-proxy.js');

  constructor(private readonly layout: ClusterLayout) {}

  dir(clusterId: string): string {
    return path.join(this.layout.clusterDir(clusterId), 'public-endpoint');
  }

  /** The cluster's proxy processes (one, or none; more only after a race, which `ensure` ends). */
  async observe(clusterId: string): Promise<PublicEndpointProcess[]> {
    const argument = `${ENDPOINT_DIR_ARGUMENT}${this.dir(clusterId)}`;
    const found: PublicEndpointProcess[] = [];
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const args = await readProcessArgs(Number(entry));
      if (args?.includes(argument)) found.push({ pid: Number(entry) });
    }
    return found;
  }

  /**
   * The endpoint admits exactly `endpoint.allowlist` and forwards to the spec's servers: the
   * config written, then the running proxy told (SIGHUP) or one started, and done once its
   * `applied` digest is the config's.
   */
  async ensure(spec: ClusterSpec, endpoint: PublicEndpointSpec): Promise<void> {
    const dir = this.dir(spec.clusterId);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const config: EndpointConfig = {
      address: localPublicAddress(spec),
      port: PUBLIC_ENDPOINT_PORT,
      upstreams: spec.servers.map((s) => ({ host: s.address, port: PUBLIC_ENDPOINT_PORT })),
      allow: endpoint.allowlist.map((e) => e.cidr),
    };
    const text = `${JSON.stringify(config, null, 2)}\n`;
    await writeFileIfChanged(path.join(dir, ENDPOINT_CONFIG_FILE), text, 0o600);
    const digest = configDigest(text);
    if ((await this.applied(spec.clusterId)) === digest && (await this.observe(spec.clusterId)).length === 1) return;
    let procs = await this.observe(spec.clusterId);
    if (procs.length > 1) {
      await this.stop(spec.clusterId);
      procs = [];
    }
    if (procs.length === 1) signalProcess(procs[0]!.pid, 'SIGHUP');
    else await this.start(spec.clusterId, config);
    await poll(`the public endpoint of cluster ${spec.clusterId} to apply its allowlist`, async () => {
      if ((await this.observe(spec.clusterId)).length === 0) throw new PollAborted(`the public endpoint of cluster ${spec.clusterId} exited: ${await this.logTail(spec.clusterId)}`);
      return this.applied(spec.clusterId);
    }, (d) => d === digest || 'not yet', { timeoutMs: APPLY_TIMEOUT_MS, intervalMs: 25 });
  }

  /**
   * Stops the cluster's proxy (SIGTERM, SIGKILL after a while) and removes its files. Without its
   * folder there is no proxy (the folder is made before one starts and removed after it stopped),
   * so the common case, a cluster that never had an endpoint, reads no process table.
   */
  async remove(clusterId: string): Promise<void> {
    if (!(await fs.stat(this.dir(clusterId)).catch(() => null))) return;
    await this.stop(clusterId);
    await fs.rm(this.dir(clusterId), { recursive: true, force: true });
  }

  /** Where the endpoint answers while its proxy runs; null when there is none. */
  async address(clusterId: string): Promise<string | null> {
    const text = await fs.readFile(path.join(this.dir(clusterId), ENDPOINT_CONFIG_FILE), 'utf8').catch(() => undefined);
    if (!text || (await this.observe(clusterId)).length === 0) return null;
    return (JSON.parse(text) as EndpointConfig).address;
  }

  private async applied(clusterId: string): Promise<string | undefined> {
    return fs.readFile(path.join(this.dir(clusterId), ENDPOINT_APPLIED_FILE), 'utf8').catch(() => undefined);
  }

  private async start(clusterId: string, config: EndpointConfig): Promise<void> {
    const busy = await findBusyPorts(config.address, [{ port: config.port, protocol: 'tcp' }]);
    if (busy.length > 0) throw new Error(`Cannot open the public endpoint of cluster ${clusterId}: ${config.address}:${config.port} is in use by another process`);
    const dir = this.dir(clusterId);
    await fs.rm(path.join(dir, ENDPOINT_APPLIED_FILE), { force: true });
    const logFd = openSync(path.join(dir, 'endpoint.log'), 'a', 0o600);
    try {
      // Its own session, so it outlives the worker; no environment but PATH (the worker's holds secrets).
      const child = spawn(process.execPath, [this.script, `${ENDPOINT_DIR_ARGUMENT}${dir}`], {
        cwd: dir, detached: true, stdio: ['ignore', logFd, logFd], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      });
      child.on('error', () => undefined); // seen as no process by the wait that follows
      child.unref();
    } finally {
      closeSync(logFd);
    }
  }

  private async stop(clusterId: string): Promise<void> {
    const procs = await this.observe(clusterId);
    if (procs.length === 0) return;
    for (const p of procs) signalProcess(p.pid, 'SIGTERM');
    const left = await poll(`the public endpoint of cluster ${clusterId} to exit`, () => this.observe(clusterId), (l) => l.length === 0 || `${l.length} running`, { timeoutMs: EXIT_TIMEOUT_MS, intervalMs: 25 })
      .then(() => [], () => procs);
    for (const p of left) signalProcess(p.pid, 'SIGKILL');
    await poll(`the public endpoint of cluster ${clusterId} to exit after SIGKILL`, () => this.observe(clusterId), (l) => l.length === 0 || `${l.length} running`, { timeoutMs: EXIT_TIMEOUT_MS, intervalMs: 25 });
  }

  private async logTail(clusterId: string): Promise<string> {
    const text = await fs.readFile(path.join(this.dir(clusterId), 'endpoint.log'), 'utf8').catch(() => '(no log)');
    return text.trimEnd().split('\n').slice(-5).join('\n');
  }
}
