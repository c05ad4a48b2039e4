/**
 * Shared helpers of the benchmarks (run by `npm run bench`, see infra/local/bench.sh):
 * a database of their own cloned from the migrated template, a config with a
 * queue prefix and loopback block of their own (LOCAL_NET_OCTET 250-254 is
 * reserved for benchmarks), child processes that are always stopped, small
 * statistics and the JSON result files under bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import {
  ClusterRepository, OPERATIONS_QUEUE, TenantClusterRepository, closeDb, createDb, createOperationsQueue, createRedis, enqueueOperation, loadConfig, type Config, type Db, type Operation, type OperationsQueue,
} from '../libs/core/src';
import { cloneTemplateDatabase, dropClonedDatabase } from '../test/support/databases';
import { stopChild } from '../infra/local/processes';
import type { INestApplicationContext } from '@nestjs/common';
import { startWorker } from '../apps/worker/src/worker';
import { ClusterTarget } from '../apps/worker/src/operations/cluster-target';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

export function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the benchmarks with npm run bench`);
  return v;
}

export function localDir(): string {
  return process.env.LOCAL_DIR || path.join(REPO_ROOT, '.local');
}

/** Where the benchmarks' child processes leave their pid files; bench.sh stops whatever is left there. */
export function benchRunDir(): string {
  return process.env.BENCH_RUN_DIR || path.join(localDir(), 'bench', 'run');
}

// ---------------------------------------------------------------- database

export const createBenchDatabase = () => cloneTemplateDatabase('bench');
export const dropBenchDatabase = (databaseUrl: string) => dropClonedDatabase(databaseUrl, 'bench');

/** A product config of the benchmark's own: database, queue prefix, loopback block (250-254). */
export function benchConfig(databaseUrl: string, octet: number, overrides: Record<string, string> = {}): Config {
  if (octet < 250 || octet > 254) throw new Error('benchmarks use LOCAL_NET_OCTET 250-254 (64 is npm start, 100-249 the tests)');
  return loadConfig(process.env, {
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: `b${randomBytes(4).toString('hex')}`,
    LOCAL_NET_OCTET: String(octet),
    PORT: '0',
    WORKER_PORT: '0',
    UI_PROXY_PORT: '0',
    LOG_FORMAT: 'json',
    ...overrides,
  });
}

/** Removes a benchmark's queue (all its jobs and keys); returns what it held and how many keys are left. */
export async function obliterateQueue(redisUrl: string, prefix: string): Promise<{ jobs: Record<string, number>; keysLeft: number }> {
  const redis = new IORedis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(OPERATIONS_QUEUE, { connection: redis, prefix });
  try {
    const jobs = await queue.getJobCounts();
    await queue.obliterate({ force: true });
    await queue.close();
    let keysLeft = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      keysLeft += keys.length;
      cursor = next;
    } while (cursor !== '0');
    return { jobs, keysLeft };
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------- statistics

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  // nearest-rank
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    median: round(median(s)),
    min: round(s[0] ?? NaN),
    max: round(s[s.length - 1] ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / (s.length || 1)),
  };
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

// ---------------------------------------------------------------- results

export function environment(): Record<string, unknown> {
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.type()} ${os.release()}`,
    loadavgAtEnd: os.loadavg().map((l) => round(l, 2)),
  };
}

export function writeResult(name: string, result: Record<string, unknown>): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ bench: name, finishedAt: new Date().toISOString(), environment: environment(), ...result }, null, 2)}\n`);
  return file;
}

// ---------------------------------------------------------------- processes, clean-up, time limit

const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | undefined;

/** Registers clean-up work; it runs once, last registered first, on success, error, signal or time-out. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (e) {
        process.stderr.write(`clean-up failed: ${(e as Error).message}\n`);
      }
    }
  })();
  return cleaning;
}

/**
 * Runs a benchmark's main function with a hard time limit; whatever happens,
 * the clean-ups run (child processes stopped, clusters deleted, databases
 * dropped) before the process exits.
 */
export function runBench(name: string, limitMs: number, main: () => Promise<void>): void {
  let exiting = false;
  const finish = async (code: number, why?: string) => {
    if (exiting) return;
    exiting = true;
    if (why) process.stderr.write(`${name}: ${why}\n`);
    const hard = setTimeout(() => {
      process.stderr.write(`${name}: clean-up did not finish within 60 s; exiting anyway\n`);
      process.exit(code || 1);
    }, 60_000);
    hard.unref();
    await runCleanups();
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void finish(130, `stopped by ${sig}`));
  process.on('uncaughtException', (e) => void finish(1, `uncaught: ${e.stack ?? String(e)}`));
  process.on('unhandledRejection', (e) => void finish(1, `unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));
  const timer = setTimeout(() => void finish(2, `time limit of ${limitMs / 1000} s exceeded`), limitMs);
  timer.unref();
  main().then(
    () => finish(0),
    (e: unknown) => finish(1, `failed: ${(e as Error)?.stack ?? String(e)}`),
  );
}

export interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Starts a child process with its output in a log file and a pid file in
 * $LOCAL_DIR/bench/run (bench.sh stops leftovers by that pid). It is stopped
 * (SIGTERM, then SIGKILL after 5 s) by the clean-ups at the latest.
 */
export function spawnChild(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const logDir = path.join(localDir(), 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(benchRunDir(), { recursive: true });
  const logFile = path.join(logDir, `${name}.log`);
  const out = fs.openSync(logFile, 'w');
  const proc = spawn(command, args, { env, stdio: ['ignore', out, out], cwd: REPO_ROOT });
  fs.closeSync(out);
  const pidFile = path.join(benchRunDir(), `${name}.pid`);
  if (proc.pid) fs.writeFileSync(pidFile, `${proc.pid}\n`);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => {
      try {
        if (fs.readFileSync(pidFile, 'utf8').trim() === String(proc.pid)) fs.unlinkSync(pidFile);
      } catch {
        /* gone already */
      }
      resolve(code);
    });
    proc.once('error', () => resolve(null));
  });
  let stopping: Promise<void> | undefined;
  const child: Child = {
    name,
    proc,
    logFile,
    exited,
    stop() {
      stopping ??= stopChild(proc, 5_000);
      return stopping;
    },
  };
  onCleanup(() => child.stop());
  return child;
}

export function logTail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export { freePort } from '../test/support/local-clone';

/** Polls a URL until it answers 200; fails early if the child exits, or after timeoutMs. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before answering; end of ${child.logFile}:\n${logTail(child.logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last}); end of ${child.logFile}:\n${logTail(child.logFile)}`);
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

// ---------------------------------------------------------------- clusters through the real worker (day-2 benchmarks)

export const BENCH_TENANT = 'beeeeeee-0000-4000-8000-00000000b002';
const BENCH_SUBSCRIPTION = '0abcd000-0000-4000-8000-00000000b002';

/** Waits until an operation row is Succeeded (returns it) or Failed/Canceled (throws with its error). */
export async function waitForOperation(db: Db, operationId: string, timeoutMs = 120_000, pollMs = 25): Promise<Operation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const op = await db.operation.findUnique({ where: { id: operationId } });
    if (op?.state === 'Succeeded') return op;
    if (op && ['Failed', 'Canceled'].includes(op.state)) throw new Error(`operation ${op.kind} ${operationId} ${op.state}: ${JSON.stringify(op.error)}`);
    if (Date.now() > deadline) throw new Error(`operation ${operationId} not done after ${timeoutMs} ms (state ${op?.state}, step ${op?.currentStep})`);
    await sleep(pollMs);
  }
}

/**
 * Creates a cluster as the API would (one row with its create operation), queues
 * the operation for the worker running in this process and waits until it is
 * Running. Returns the cluster id.
 */
export async function createClusterThroughWorker(db: Db, queue: OperationsQueue, config: Config, name: string, tier: 'development' | 'standard'): Promise<string> {
  const { cluster, operation } = await new TenantClusterRepository(db).createWithOperation({
    tenantId: BENCH_TENANT, subscriptionId: BENCH_SUBSCRIPTION, resourceGroup: 'rg-bench', name, region: 'westeurope', datacenter: name,
    consulVersion: '1.8.7', tier, serverCount: tier === 'standard' ? 3 : 1, publicEndpoint: false, createdBy: 'bench',
  });
  await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
  await waitForOperation(db, operation.id, config.CLUSTER_READY_TIMEOUT_MS + 30_000);
  return cluster.id;
}

/** Deletes a cluster through the worker (its servers stop, its files and snapshots go) and waits for it. */
export async function deleteClusterThroughWorker(db: Db, queue: OperationsQueue, config: Config, clusterId: string): Promise<void> {
  const cluster = await new ClusterRepository(db).get(clusterId);
  if (!cluster || cluster.state === 'Deleted') return;
  const op = await new TenantClusterRepository(db).requestDelete(cluster, 'bench');
  await enqueueOperation(queue, op.id, config.JOB_ATTEMPTS);
  await waitForOperation(db, op.id, 60_000);
}

/** Parses the timestamp at the start of a Consul log line ("2026-11-24T04:02:15.010Z [INFO] ..."). */
export function consulLogTime(line: string): number {
  const t = line.trimStart();
  return Date.parse(t.slice(0, t.indexOf(' ')));
}

/** Lines of a file matching a pattern, with their timestamps, between two instants. */
export function consulLogLines(file: string, pattern: RegExp, from = 0, to = Infinity): { at: number; line: string }[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: { at: number; line: string }[] = [];
  for (const line of text.split('\n')) {
    if (!pattern.test(line)) continue;
    const at = consulLogTime(line);
    if (Number.isFinite(at) && at >= from && at <= to) out.push({ at, line: line.trim() });
  }
  return out;
}

/** CPU time (user + system) of this process, in ms, since `since` (a process.cpuUsage() value). */
export function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

// ---------------------------------------------------------------- a worker in this process

/**
 * The real worker in this process on a benchmark's config, with a database
 * client and a queue handle of the benchmark's own; all closed by the clean-ups
 * (the queue's keys removed).
 */
export async function startBenchWorker(config: Config): Promise<{ worker: INestApplicationContext; db: Db; queue: OperationsQueue; target: ClusterTarget }> {
  onCleanup(async () => {
    await obliterateQueue(config.REDIS_URL, config.QUEUE_PREFIX);
  });
  const worker = await startWorker(config);
  onCleanup(() => worker.close());
  const { db, queue } = openBenchDbAndQueue(config);
  return { worker, db, queue, target: worker.get(ClusterTarget, { strict: false }) };
}

/** A database client and a queue handle of the benchmark's own, closed by the clean-ups. */
export function openBenchDbAndQueue(config: Config): { db: Db; queue: OperationsQueue } {
  const db = createDb(config.DATABASE_URL, 2);
  onCleanup(() => closeDb(db));
  const redis = createRedis(config.REDIS_URL, false);
  const queue = createOperationsQueue(redis, config.QUEUE_PREFIX);
  onCleanup(async () => {
    await queue.close();
    redis.disconnect();
  });
  return { db, queue };
}

/** Starts an API app on a free loopback port and registers its close; returns its base URL. */
export async function listenApi(api: { listen(port: number, host: string): Promise<unknown>; getHttpServer(): { address(): unknown }; close(): Promise<void> }): Promise<string> {
  onCleanup(() => api.close());
  await api.listen(0, '127.0.0.1');
  const address = api.getHttpServer().address() as { port: number } | string | null;
  if (!address || typeof address === 'string') throw new Error('the API is not listening on a TCP port');
  return `http://127.0.0.1:${address.port}`;
}
