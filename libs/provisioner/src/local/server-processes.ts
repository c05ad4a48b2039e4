import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, promises as fs } from 'node:fs';

/**
 * Consul server processes on this machine, as the kernel sees them. The
 * process table (/proc/<pid>/cmdline) is the only source of truth: a worker
 * SIGKILLed right after a spawn leaves no pid file behind, but its server is
 * still listed here.
 */

export interface AgentProcess {
  pid: number;
  args: string[];
}

/**
 * The environment a live process was started with (from /proc/<pid>/environ),
 * or undefined if it is gone or not ours to read.
 */
export async function readProcessEnv(pid: number): Promise<Record<string, string> | undefined> {
  let raw: Buffer;
  try {
    raw = await fs.readFile(`/proc/${pid}/environ`);
  } catch {
    return undefined;
  }
  const env: Record<string, string> = {};
  for (const entry of raw.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

let scanning: Promise<AgentProcess[]> | null = null;
let nextScan: Promise<AgentProcess[]> | null = null;

/**
 * All live processes whose command line is `<binary> agent ... -config-dir=...`: a scan of the
 * process table that began after this call. Callers at the same moment share scans: one in flight
 * and at most one queued behind it (which every caller arriving during the first one waits for), so
 * 50 creates and the health monitor polling at once cost two scans, not one each (a scan reads
 * every process's command line, growing with clusters × processes).
 */
export function listAgentProcesses(): Promise<AgentProcess[]> {
  if (!scanning) {
    scanning = scanAgentProcesses().finally(() => (scanning = null));
    return scanning;
  }
  if (!nextScan) {
    nextScan = scanning.catch(() => undefined).then(() => {
      nextScan = null;
      return listAgentProcesses();
    });
  }
  return nextScan;
}

async function scanAgentProcesses(): Promise<AgentProcess[]> {
  const entries = await fs.readdir('/proc');
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      const args = await readProcessArgs(pid);
      return args && isAgentCommandLine(args) ? { pid, args } : undefined;
    }),
  );
  return found.filter((p): p is AgentProcess => p !== undefined);
}

/**
 * The command line of a live process, or undefined if it is gone. Zombies
 * have an empty command line and so count as gone (they hold no ports).
 */
export async function readProcessArgs(pid: number): Promise<string[] | undefined> {
  let raw: Buffer;
  try {
    raw = await fs.readFile(`/proc/${pid}/cmdline`);
  } catch {
    return undefined; // exited between readdir and read, or not ours to read
  }
  if (raw.length === 0) return undefined;
  const args = raw.toString('utf8').split('\0');
  if (args[args.length - 1] === '') args.pop();
  return args;
}

function isAgentCommandLine(args: string[]): boolean {
  return args.length >= 3 && args[1] === 'agent' && args.some((a) => a.startsWith('-config-dir='));
}

export interface SpawnServerOptions {
  binary: string;
  configDir: string;
  /** Working directory of the process (the server's directory). */
  cwd: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Extra environment variables (never secrets: /proc/<pid>/environ is readable by the same user). */
  env?: Record<string, string>;
}

/**
 * Starts `consul agent -config-dir=<configDir>` in its own session and process
 * group, detached from the caller, so the server outlives the worker.
 * Returns the pid. The environment is reduced to PATH (and `opts.env`): the
 * worker's secrets (database URLs, cloud credentials) must not leak into
 * Consul's environment.
 */
export async function spawnServerProcess(opts: SpawnServerOptions): Promise<number> {
  try {
    await fs.access(opts.binary, fsConstants.X_OK);
  } catch {
    throw new Error(`Consul binary ${opts.binary} is missing or not executable`);
  }
  const logFd = openSync(opts.logFile, 'a', 0o600);
  try {
    const child = spawn(opts.binary, ['agent', `-config-dir=${opts.configDir}`], {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...opts.env, PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    child.on('error', () => undefined); // reported through the missing pid below
    if (child.pid === undefined) throw new Error(`Could not start ${opts.binary} for ${opts.configDir}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}

/** Sends a signal; a process that is already gone is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
