/**
 * The local stack's processes, read from /proc: which process holds a port, whether a service
 * on our port is this clone's (refuse it, or replace a leftover of a clone that is gone), and
 * stopping by pid (SIGTERM, then SIGKILL after a grace period), never by name.
 *
 * Used by the scripts in infra/local once the build has made dist/ (setup.sh builds before it
 * starts the services), by `npm start`'s supervisor (start.ts, supervisor.ts) and by the
 * benchmarks. Node's built-in modules only: test/clone-identity.test.ts runs this file's
 * compiled form in a bare clone (no node_modules).
 *
 *   node dist/infra/local/processes.js port-holder PORT              pid of the listener, or status 1
 *   node dist/infra/local/processes.js refuse-or-replace NAME PORT VARIABLE LOCAL_DIR
 *   node dist/infra/local/processes.js pg-root-orphaned ROOT         status 0 when ROOT's clone is gone
 *   node dist/infra/local/processes.js stop [--grace S] [--command-has TEXT] [--label NAME] PIDFILE...
 *   node dist/infra/local/processes.js stop-consul LOCAL_DIR         the Consul agents run from LOCAL_DIR, and the clusters' public endpoints
 *
 * The stop commands print on stdout how many processes they stopped (stop.sh sums them).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// ---------------------------------------------------------------------------- messages

/** Lines as the bash scripts print them: `==> ` news, `!!  ` warnings, on stderr. */
export const say = {
  log: (msg: string) => process.stderr.write(`==> ${msg}\n`),
  warn: (msg: string) => process.stderr.write(`!!  ${msg}\n`),
};

/** An error the scripts end on: its message is what the user reads (`!!  ERROR: ...`). */
export class StackError extends Error {}

// ---------------------------------------------------------------------------- /proc

/** A process exists and is not a zombie (signal 0 succeeds on a zombie). */
export function procAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(') ') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A process's arguments (empty when it is gone). */
export function commandArgs(pid: number): string[] {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (args.at(-1) === '') args.pop();
    return args;
  } catch {
    return [];
  }
}

export const commandLine = (pid: number): string => commandArgs(pid).join(' ');

/** When a process started, in ms since the epoch (boot time plus its start tick). */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // starttime is field 22 of stat, the 20th after "pid (comm)".
    const ticks = Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK).
    return (btime + ticks / 100) * 1000;
  } catch {
    return undefined;
  }
}

const readlink = (p: string): string | undefined => {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
};

const pids = (): number[] => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);

/** The pid of the process listening on PORT (any address), from /proc/net/tcp* and /proc/<pid>/fd. */
export function portHolder(port: number): number | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let inode: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address, st (0A: LISTEN), ..., inode (10th field).
      if (f[1]?.endsWith(hex) && f[3] === '0A' && f[9] && f[9] !== '0') {
        inode = f[9];
        break;
      }
    }
    if (inode) break;
  }
  if (!inode) return undefined;
  const socket = `socket:[${inode}]`;
  for (const pid of pids()) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    if (fds.some((fd) => readlink(`/proc/${pid}/fd/${fd}`) === socket)) return pid;
  }
  return undefined;
}

/** Consul agents whose arguments mention NEEDLE (a clone's runtime folder, a cluster's folder). */
export function consulAgents(needle: string): number[] {
  return pids().filter((pid) => {
    const args = commandArgs(pid);
    return args.length > 0 && path.basename(args[0]!) === 'consul' && args.join(' ').includes(needle);
  });
}

/**
 * Clusters' public endpoints (libs/provisioner/src/local/public-endpoint-proxy.ts) whose folder is
 * under NEEDLE: started detached by the product, like the Consul agents, and found the same way.
 */
export function publicEndpointProxies(needle: string): number[] {
  return pids().filter((pid) => {
    const args = commandArgs(pid);
    return args.some((a) => a.endsWith('public-endpoint-proxy.js')) && args.some((a) => a.startsWith(`--endpoint-dir=${needle}`));
  });
}

// ---------------------------------------------------------------------------- waiting and stopping

/** Polls COND every pollMs until it holds (true) or timeoutMs has passed (false). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
  }
}

export interface StopOptions {
  /** Between the first signal and SIGKILL. */
  graceMs?: number;
  /** The first signal (PostgreSQL's fast shutdown is SIGINT). */
  signal?: NodeJS.Signals;
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
};

/**
 * Stops PIDS (never this process): the first signal, then SIGKILL to those still alive after
 * the grace period; returns once all are gone (or throws when SIGKILL does not end them).
 * Returns the pids it stopped.
 */
export async function terminate(label: string, targets: number[], opts: StopOptions = {}): Promise<number[]> {
  const graceMs = opts.graceMs ?? 10_000;
  const live = targets.filter((pid) => pid !== process.pid && procAlive(pid));
  if (live.length === 0) return [];
  for (const pid of live) signal(pid, opts.signal ?? 'SIGTERM');
  const left = () => live.filter(procAlive);
  if (!(await waitUntil(() => left().length === 0, graceMs))) {
    say.warn(`${label}: pid ${left().join(' ')} ignored ${opts.signal ?? 'SIGTERM'} for ${graceMs / 1000}s, sending SIGKILL`);
    for (const pid of left()) signal(pid, 'SIGKILL');
    if (!(await waitUntil(() => left().length === 0, 5_000))) throw new StackError(`${label} (pid ${left().join(' ')}) does not stop`);
  }
  say.log(`stopped ${label} (pid ${live.join(' ')})`);
  return live;
}

const readPid = (file: string): number | undefined => {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').replace(/\D/g, ''));
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Stops the process a pid file names (`<name>.pid`), then removes the file. Left alone: a pid
 * that another process took after a reboot or a crash (it started after the file was written),
 * and, with commandHas, a process whose command line does not contain that text.
 * Returns the pid it stopped.
 */
export async function stopByPidFile(file: string, opts: StopOptions & { commandHas?: string; label?: string } = {}): Promise<number | undefined> {
  const name = opts.label ?? path.basename(file, '.pid');
  const pid = readPid(file);
  let stopped: number | undefined;
  if (pid && procAlive(pid) && (!opts.commandHas || commandLine(pid).includes(opts.commandHas))) {
    const started = processStartMs(pid) ?? 0;
    let written = started;
    try {
      written = fs.statSync(file).mtimeMs;
    } catch {
      /* removed meanwhile by its process */
    }
    if (started > written + 1_000) say.warn(`${name}: pid ${pid} was reused by another process; not touching it`);
    else stopped = (await terminate(name, [pid], opts))[0];
  }
  fs.rmSync(file, { force: true });
  return stopped;
}

/** Stops a child of this process: SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
export async function stopChild(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------- whose service is on our port

/** The 32 hex digits in FILE (a clone-id file). */
function readCloneId(file: string): string | undefined {
  try {
    const id = fs.readFileSync(file, 'utf8').replace(/[^0-9a-f]/g, '').slice(0, 32);
    return id.length === 32 ? id : undefined;
  } catch {
    return undefined;
  }
}

const firstLine = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[0];
  } catch {
    return undefined;
  }
};

/**
 * A PostgreSQL folder (under PG_CLUSTERS_DIR) whose clone is gone: the runtime folder its
 * `owner` file names no longer holds the identity its `clone-id` file records (the clone was
 * deleted, perhaps made again at that path). A folder of the earlier versions (no clone-id,
 * named from a hash of the path): its owner is gone, or now belongs to a clone with an identity
 * (which never uses such a folder). A folder without an owner is not judged.
 */
export function pgRootOrphaned(root: string): boolean {
  const owner = firstLine(path.join(root, 'owner'));
  if (!owner) return false;
  if (fs.existsSync(path.join(root, 'clone-id'))) {
    const id = readCloneId(path.join(root, 'clone-id'));
    return id !== undefined && readCloneId(path.join(owner, 'clone-id')) !== id;
  }
  return !fs.existsSync(owner) || readCloneId(path.join(owner, 'clone-id')) !== undefined;
}

const argAfter = (args: string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

/**
 * The folder a service keeps its data in: Azurite's --location, PostgreSQL's -D (its clone's,
 * through the owner file beside it), else its working directory.
 */
function serviceDataDir(pid: number): string | undefined {
  const args = commandArgs(pid);
  const dir = argAfter(args, '--location') ?? argAfter(args, '-D');
  const owner = dir && args.join(' ').includes('postgres') ? firstLine(path.join(path.dirname(dir), 'owner')) : undefined;
  if (owner !== undefined) return owner;
  return dir ?? readlink(`/proc/${pid}/cwd`);
}

export interface ServiceOnPort {
  /** PostgreSQL, Redis, Azurite: in messages, and PostgreSQL's leftovers are judged by their folder's owner. */
  name: string;
  port: number;
  /** The variable that picks another port. */
  variable: string;
  /** This clone's runtime folder ($LOCAL). */
  localDir: string;
  graceMs?: number;
}

/**
 * The service on PORT is not this clone's. When it is provably a leftover of a clone whose
 * folder is gone, stop it (this clone then starts its own); otherwise throw, naming the process
 * that holds the port and what to do.
 */
export async function refuseOrReplace(s: ServiceOnPort): Promise<void> {
  const pid = portHolder(s.port);
  if (pid === undefined) {
    throw new StackError(`port ${s.port} is taken, not by this clone's ${s.name}, and the process holding it cannot be found; free the port or set ${s.variable}`);
  }
  const cmd = commandLine(pid).trimEnd();
  const dir = serviceDataDir(pid);
  const pgData = argAfter(commandArgs(pid), '-D');
  let gone: string | undefined;
  if (s.name === 'PostgreSQL' && pgData && fs.existsSync(path.join(path.dirname(pgData), 'owner'))) {
    // A PostgreSQL folder records its clone's identity: a clone made again at the same path is not that clone.
    if (pgRootOrphaned(path.dirname(pgData))) gone = `a clone that is gone (its folder was ${dir})`;
  } else if (dir && (dir.endsWith(' (deleted)') || !fs.existsSync(dir))) {
    gone = `a clone whose folder is gone (${dir})`;
  }
  if (!gone) {
    throw new StackError(
      `port ${s.port} is held by pid ${pid} (${cmd}), which is not this clone's ${s.name} (its data: ${dir || 'unknown'}; this clone's: ${s.localDir}): stop it, or set ${s.variable} to a free port`,
    );
  }
  say.warn(`${s.name} on port ${s.port} (pid ${pid}: ${cmd}) belongs to ${gone}: stopping it`);
  // PostgreSQL: SIGINT is its fast shutdown; the others stop on SIGTERM.
  await terminate(s.name, [pid], { signal: s.name === 'PostgreSQL' ? 'SIGINT' : 'SIGTERM', graceMs: s.graceMs ?? 20_000 });
}

// ---------------------------------------------------------------------------- the command line

async function stopCommand(args: string[]): Promise<number> {
  let graceMs = 10_000;
  let commandHas: string | undefined;
  let label: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--grace') graceMs = Number(args[++i]) * 1000;
    else if (args[i] === '--command-has') commandHas = args[++i];
    else if (args[i] === '--label') label = args[++i];
    else files.push(args[i]!);
  }
  let stopped = 0;
  for (const file of files) {
    try {
      if (await stopByPidFile(file, { graceMs, commandHas, label })) stopped++;
    } catch (e) {
      // One that SIGKILL does not end (stuck in the kernel) must not keep the others running.
      if (!(e instanceof StackError)) throw e;
      say.warn(e.message);
    }
  }
  return stopped;
}

const USAGE = 'usage: processes.js port-holder PORT | refuse-or-replace NAME PORT VARIABLE LOCAL_DIR | pg-root-orphaned ROOT | stop [--grace S] [--command-has TEXT] [--label NAME] PIDFILE... | stop-consul LOCAL_DIR';

/** Runs one command; its exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'port-holder': {
      const pid = portHolder(Number(args[0]));
      if (pid === undefined) return 1;
      process.stdout.write(`${pid}\n`);
      return 0;
    }
    case 'refuse-or-replace': {
      const [name, port, variable, localDir] = args;
      if (!name || !port || !variable || !localDir) throw new StackError(USAGE);
      await refuseOrReplace({ name, port: Number(port), variable, localDir });
      return 0;
    }
    case 'pg-root-orphaned':
      return args[0] && pgRootOrphaned(args[0]) ? 0 : 1;
    case 'stop':
      process.stdout.write(`${await stopCommand(args)}\n`);
      return 0;
    case 'stop-consul': {
      if (!args[0]) throw new StackError(USAGE);
      // Clusters are started detached by the product, without pid files here: a consul binary whose arguments mention LOCAL_DIR/.
      const agents = consulAgents(`${args[0]}/`);
      // Their public endpoints too (a proxy process per cluster whose endpoint is on).
      const endpoints = publicEndpointProxies(`${args[0]}/`);
      process.stdout.write(`${(await terminate('consul agents', agents)).length + (await terminate('public endpoints', endpoints)).length}\n`);
      return 0;
    }
    default:
      throw new StackError(USAGE);
  }
}

/** Runs a script's MAIN and exits with its status; an error ends it with status 1 and `!!  ERROR: ...`. */
export function runScript(run: () => Promise<number | void>): void {
  run().then(
    (code) => {
      if (code !== undefined) process.exit(code);
    },
    (e: unknown) => {
      process.stderr.write(`!!  ERROR: ${e instanceof StackError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) runScript(() => main(process.argv.slice(2)));
