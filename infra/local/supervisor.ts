import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import { say, stopChild } from './processes';

/** How long a process that exited waits before it is started again. */
export interface Backoff {
  /** The first wait, and the wait again once a process has run resetAfterMs. */
  firstMs: number;
  /** Each wait doubles up to this. */
  maxMs: number;
  resetAfterMs: number;
}

/** `npm start`'s: 1 s, then 2, 4, ... up to 30 s; back to 1 s once a process has run a minute. */
export const NPM_START_BACKOFF: Backoff = { firstMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };

export interface SupervisedProcess {
  /** In messages; the log file is the caller's (logs/<name>.log for npm start). */
  name: string;
  command: string;
  args: string[];
  /** Standard output and error are appended here, and so is each restart. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** What the supervisor saw: `started` (restart: false the first time), `exited` (with the wait before the restart). */
export type SupervisorEvent =
  | { kind: 'started'; name: string; pid: number; restart: boolean }
  | { kind: 'exited'; name: string; pid: number | undefined; status: number; ranMs: number; delayMs: number };

interface Running {
  spec: SupervisedProcess;
  proc?: ChildProcess;
  startedAt: number;
  delayMs: number;
  timer?: NodeJS.Timeout;
}

/** Exit status as a shell reports it: the code, or 128 + the signal's number. */
function exitStatus(code: number | null, sig: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (sig ? (os.constants.signals[sig] ?? 0) : 0);
}

const seconds = (ms: number) => `${ms / 1000} s`;

/**
 * Keeps processes up: one that exits is started again after a backoff (doubling up to a
 * maximum, back to the first once it has run long enough), and the terminal (stderr) and its
 * log say which, with what status and when. stop() ends them all (SIGTERM, then SIGKILL after
 * the grace period) and resolves once every one has exited; nothing is started after it.
 * Emits 'event' with a SupervisorEvent.
 */
export class Supervisor extends EventEmitter {
  private readonly running = new Map<string, Running>();
  private stopping: Promise<void> | undefined;
  private readonly backoff: Backoff;
  private readonly graceMs: number;

  constructor(opts: { backoff?: Backoff; graceMs?: number } = {}) {
    super();
    this.backoff = opts.backoff ?? NPM_START_BACKOFF;
    this.graceMs = opts.graceMs ?? 10_000;
  }

  /** Starts SPEC and keeps it up. */
  start(spec: SupervisedProcess): void {
    if (this.running.has(spec.name)) throw new Error(`${spec.name} is supervised already`);
    const r: Running = { spec, startedAt: Date.now(), delayMs: this.backoff.firstMs };
    this.running.set(spec.name, r);
    this.launch(r, false);
  }

  /** The pid of NAME's current process (undefined while it waits to be started again). */
  pid(name: string): number | undefined {
    const proc = this.running.get(name)?.proc;
    return proc && proc.exitCode === null && proc.signalCode === null ? proc.pid : undefined;
  }

  /** Ends every process and every pending restart; resolves once all have exited. */
  stop(): Promise<void> {
    this.stopping ??= Promise.all(
      [...this.running.values()].map(async (r) => {
        clearTimeout(r.timer);
        if (r.proc) await stopChild(r.proc, this.graceMs);
      }),
    ).then(() => undefined);
    return this.stopping;
  }

  private launch(r: Running, restart: boolean): void {
    const out = fs.openSync(r.spec.logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(r.spec.command, r.spec.args, { env: r.spec.env ?? process.env, cwd: r.spec.cwd, stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
    r.proc = proc;
    r.startedAt = Date.now();
    let ended = false;
    const onEnd = (status: number) => {
      if (ended) return;
      ended = true;
      this.exited(r, proc.pid, status);
    };
    proc.once('exit', (code, sig) => onEnd(exitStatus(code, sig)));
    // Not started at all (no such command): as a shell would say.
    proc.once('error', () => proc.pid === undefined && onEnd(127));
    if (proc.pid !== undefined) this.emit('event', { kind: 'started', name: r.spec.name, pid: proc.pid, restart } satisfies SupervisorEvent);
  }

  private exited(r: Running, pid: number | undefined, status: number): void {
    if (this.stopping) return;
    const ranMs = Date.now() - r.startedAt;
    if (ranMs >= this.backoff.resetAfterMs) r.delayMs = this.backoff.firstMs;
    const { name, logFile } = r.spec;
    say.warn(`${name} (pid ${pid}) exited with status ${status} after ${Math.floor(ranMs / 1000)} s; starting it again in ${seconds(r.delayMs)} (log: ${logFile})`);
    fs.appendFileSync(logFile, `==> supervisor: ${name} exited with status ${status}; restarting in ${seconds(r.delayMs)}\n`);
    this.emit('event', { kind: 'exited', name, pid, status, ranMs, delayMs: r.delayMs } satisfies SupervisorEvent);
    r.timer = setTimeout(() => {
      if (this.stopping) return;
      this.launch(r, true);
      say.log(`${name} started again (pid ${r.proc?.pid})`);
      r.delayMs = Math.min(r.delayMs * 2, this.backoff.maxMs);
    }, r.delayMs);
  }
}
