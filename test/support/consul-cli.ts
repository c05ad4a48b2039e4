import tls from 'node:tls';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Runs the real `consul` CLI against a cluster's HTTPS API; the token travels in the environment, not argv. */
export function consul(args: string[], opts: { httpAddr: string; caFile: string; token?: string; tlsServerName?: string; netns?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = process.env.CONSUL_BIN!;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CONSUL_HTTP_ADDR: opts.httpAddr, CONSUL_CACERT: opts.caFile };
  // Through a forwarded port (Azure's private endpoint) the certificate is checked for the server's name, not the address dialled.
  if (opts.tlsServerName) env.CONSUL_TLS_SERVER_NAME = opts.tlsServerName;
  if (opts.token) env.CONSUL_HTTP_TOKEN = opts.token;
  return new Promise((resolve) => {
    // `netns`: from a machine of that network (a customer's VNet in the local cloud).
    const [file, argv] = opts.netns ? ['nsenter', [`--net=${opts.netns}`, '--', bin, ...args]] : [bin, args];
    execFile(file, argv, { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `consul` process (an agent, a proxy) with its output in a log file. */
export interface ConsulProcess {
  log(): string;
  stop(): Promise<void>;
}

/** Starts `consul <args>` with its output in `logFile`, its environment PATH plus `env` (tokens travel there, never in argv). */
export function startConsulProcess(args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ConsulProcess {
  const out = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.env.CONSUL_BIN!, args, { stdio: ['ignore', out, out], env: { PATH: process.env.PATH, ...env } });
  fs.closeSync(out);
  return {
    log: () => fs.readFileSync(logFile, 'utf8'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** A Consul client agent started from a config dir, like a customer's VM would. */
export interface ClientAgent extends ConsulProcess {
  dir: string;
}

export function startClientAgent(dir: string, config: Record<string, unknown>, caPem: string): ClientAgent {
  fs.mkdirSync(path.join(dir, 'config'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'ca.pem'), caPem);
  fs.writeFileSync(
    path.join(dir, 'config', 'client.json'),
    JSON.stringify({ ...config, ca_file: path.join(dir, 'config', 'ca.pem'), data_dir: path.join(dir, 'data') }, null, 2),
  );
  return { dir, ...startConsulProcess(['agent', `-config-dir=${path.join(dir, 'config')}`], path.join(dir, 'consul.log')) };
}

/** True when something accepts TCP connections at address:port. */
export function tcpOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * The SHA-256 fingerprint of the certificate a server serves on its HTTPS port, verified against
 * the cluster's CA and for the server's address (`via`: the host and port it is reached at).
 */
export function servedFingerprint(host: string, ca: string, via?: { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: via?.host ?? host, port: via?.port ?? 8501, ca, checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host, cert) }, () => {
      const fp = socket.getPeerX509Certificate()!.fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.once('error', reject);
    socket.setTimeout(10_000);
    socket.once('timeout', () => socket.destroy(new Error(`no TLS answer from ${via ? `${via.host}:${via.port}` : host} in time`)));
  });
}
