/**
 * Orchestration overhead: 1,000 no-op operations through our real machinery
 * beside bare BullMQ add -> process of 1,000 jobs, in the same run, on the same
 * Redis, with the same worker settings (concurrency, lock duration, stalled
 * check) and the same job options (job id, attempts, backoff, removeOnComplete).
 *
 *   bare BullMQ   queue.add x 1,000 -> a Worker whose processor does nothing.
 *   operations    per cluster: the operation row and its audit event in one statement
 *                 (TenantClusterRepository.addOperation, as the API writes one), the job (enqueueOperation);
 *                 the real OperationRunner takes the per-cluster lock, marks the operation
 *                 Running, records its one step, runs a scripted no-op flow (as
 *                 apps/worker/src/operations/two-workers.test.ts does), marks it Succeeded and frees
 *                 the cluster.
 *   wave          the same through the real WaveDriver: one wave over the 1,000 clusters
 *                 (maxInFlight 1,000, no canaries), driven as WorkerService drives it (one
 *                 tick to start, a tick every WAVE_TICK_MS, and a nudge from the runner when
 *                 an operation of a wave ends) until the driver has marked the wave Succeeded.
 *
 * Both sides write with the same number of requests in flight (BENCH_PRODUCERS,
 * default the worker's DATABASE_POOL_SIZE, 10): a Prisma interactive
 * transaction waits at most 2 s for a connection, so 1,000 operation writes at
 * once fail ("Unable to start a transaction in the given time").
 *
 * 1,000 cluster rows (state Running, no servers, no Consul), one operation each
 * per round. Times from the first write to the last job completed (bare,
 * operations) or to the wave marked Succeeded. CPU: this process
 * (process.cpuUsage), and PostgreSQL's and Redis's processes (/proc/<pid>/stat).
 * A last, untimed round runs with the repositories' calls timed and a CPU
 * profile of this process, to show where the time goes. Each wave round also
 * records its timeline (created, first job started, first and last jobs
 * added, last job done, wave ended).
 *
 *   node dist/bench/wave-overhead.bench.js      (npm run bench -- wave-overhead)
 *   env: BENCH_OPS (1000), BENCH_RUNS (3), BENCH_PRODUCERS (10), BENCH_PROFILE (1: the profiled round; 0: none),
 *        BENCH_STUB_RUNNER (1: a ceiling, not the product: the runner's claim and end statements are
 *        replaced by in-memory answers, so the wave measures the driver, BullMQ and the runner's own
 *        code without the runner's database work; the wave then ends when its jobs have completed)
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import pg from 'pg';
import {
  ClusterRepository, ClusterState, OPERATIONS_QUEUE, OperationRepository, TenantClusterRepository, WaveRepository, closeDb, createDb, createOperationsQueue,
  createRedis, enqueueOperation, planClusterAction, type Cluster, type Config, type Db, type JobPayloads, type OperationKind,
} from '../libs/core/src';
import { createLogger } from '../libs/core/src/logger';
import type { Flow } from '../apps/worker/src/operations/flows/flow';
import { OperationRunner } from '../apps/worker/src/operations/operation.runner';
import { WaveDriver } from '../apps/worker/src/waves/wave.driver';
import {
  RESULTS_DIR, benchConfig, cpuMs, createBenchDatabase, dropBenchDatabase, log, obliterateQueue, onCleanup, round, runBench, sleep, summarize, writeResult,
} from './support';
import { rowOnlyContexts } from '../test/support/cluster-contexts';

const N = Number(process.env.BENCH_OPS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PROFILE = (process.env.BENCH_PROFILE ?? '1') !== '0';
/** Requests in flight at once while writing the operations (and adding the bare jobs): the worker's database pool size by default. */
const PRODUCERS = Number(process.env.BENCH_PRODUCERS ?? 0);
const STUB_RUNNER = (process.env.BENCH_STUB_RUNNER ?? '0') !== '0';
const TENANT = 'beeeeeee-0000-4000-8000-00000000b003';

interface Measure {
  variant: string; round: number; ms: number; cpuMs: number; pgCpuMs: number; redisCpuMs: number; writeMs?: number;
  /** The wave's timeline, ms from the start of the timed part: created, first job started, first and last jobs added, last job done, wave ended. */
  phases?: Record<string, number>;
  /** Transactions (each statement outside a transaction is one), rows inserted+updated+deleted, rows fetched: our database's counters. */
  pgTransactions: number; pgRowsWritten: number; pgRowsRead: number;
}

async function main(): Promise<void> {
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const config: Config = benchConfig(databaseUrl, 254);
  const barePrefix = `${config.QUEUE_PREFIX}bare`;
  onCleanup(async () => {
    await obliterateQueue(config.REDIS_URL, config.QUEUE_PREFIX);
    await obliterateQueue(config.REDIS_URL, barePrefix);
  });
  // The worker's own pool size, as WorkerModule creates it.
  const db: Db = createDb(databaseUrl, config.DATABASE_POOL_SIZE);
  const dbName = new URL(databaseUrl).pathname.slice(1);
  const producers = PRODUCERS || config.DATABASE_POOL_SIZE;
  // The worker's logger, as startWorker installs it.
  Logger.overrideLogger(createLogger('worker', config));
  onCleanup(() => closeDb(db));
  const connections: ReturnType<typeof createRedis>[] = [];
  const redis = (forWorker: boolean) => {
    const c = createRedis(config.REDIS_URL, forWorker);
    connections.push(c);
    return c;
  };
  onCleanup(() => {
    for (const c of connections) c.disconnect();
  });

  // 1,000 clusters, Running, without servers: the no-op flow never touches them.
  const clusterRows = Array.from({ length: N }, (_, i) => ({
    id: randomUUID(), tenantId: TENANT, subscriptionId: '0abcd000-0000-4000-8000-00000000b003', resourceGroup: 'rg-bench', managedResourceGroup: `mrg-${i}`,
    name: `wave-${i}`, region: 'westeurope', datacenter: `wave-${i}`, consulVersion: '1.8.7', tier: 'development', serverCount: 1, state: ClusterState.Running,
    createdBy: 'bench',
  }));
  await db.cluster.createMany({ data: clusterRows });
  const clusters: Cluster[] = await db.cluster.findMany({ where: { tenantId: TENANT }, orderBy: { name: 'asc' } });

  const operations = new OperationRepository(db);
  const clusterRepo = new TenantClusterRepository(db);
  // One operation per cluster as the API writes it: the row and its audit event in one statement.
  const request = (c: Cluster) => {
    const plan = planClusterAction(c, 'rotate-gossip-key', {});
    return clusterRepo.addOperation(c, plan.kind, 'bench', plan.auditAction, plan.params);
  };
  const waves = new WaveRepository(db);
  const noop: Flow = { steps: () => [{ name: 'no-op', run: async () => undefined }], succeeded: async () => undefined, failed: async () => undefined };
  const flows = new Proxy({}, { get: () => noop }) as Record<OperationKind, Flow>;
  if (STUB_RUNNER) {
    // The ceiling: every claim succeeds at once with a Running operation on a cluster of the bench, every end is a no-op.
    const stub = operations as unknown as Record<string, unknown>;
    const cluster = { ...clusters[0]!, servers: [] };
    stub.claimManyWithClusters = async (ids: string[]) => ids.map((id) => ({
      op: { id, clusterId: cluster.id, kind: 'rotate-gossip-key', mutating: true, attempts: 1, steps: [], progress: 0, requestedBy: 'bench', claimId: id }, cluster, resumeAt: null,
    }));
    stub.succeedMany = async (entries: { claimId: string }[]) => new Set(entries.map((e) => e.claimId));
  }
  const systemClusters = new ClusterRepository(db);
  const runner = new OperationRunner(operations, systemClusters, flows, { owner: 'bench', leaseMs: config.OPERATION_LEASE_MS, open: rowOnlyContexts(systemClusters) });

  // The same worker settings as WorkerService.
  const workerOpts = (prefix: string) => ({
    connection: redis(true), prefix, concurrency: config.WORKER_CONCURRENCY, lockDuration: config.JOB_LOCK_MS,
    stalledInterval: Math.max(500, Math.floor(config.JOB_LOCK_MS / 2)), maxStalledCount: 10,
  });
  let completedOurs = 0;
  let completedBare = 0;
  let failedJobs = 0;
  // The wave's timeline (the runner, the driver's addBulk and its end, as they happen).
  let phases: Record<string, number> | undefined;
  let phaseT0 = 0;
  const phase = (name: string, first = false) => {
    if (phases && !(first && name in phases)) phases[name] = round(performance.now() - phaseT0);
  };
  const ours = new Worker(OPERATIONS_QUEUE, async (job: Job<JobPayloads['run-operation']>, token?: string) => {
    phase('first job started', true);
    await runner.run(job, token);
    phase('last job done');
  }, workerOpts(config.QUEUE_PREFIX));
  ours.on('completed', () => completedOurs++);
  ours.on('failed', (_j, e) => {
    // DelayedError (lock busy) is not a failure; anything else is.
    if (e?.name !== 'DelayedError') failedJobs++;
  });
  const bare = new Worker(OPERATIONS_QUEUE, async () => undefined, workerOpts(barePrefix));
  bare.on('completed', () => completedBare++);
  onCleanup(async () => {
    await ours.close();
    await bare.close();
  });
  await ours.waitUntilReady();
  await bare.waitUntilReady();
  const queue = createOperationsQueue(redis(false), config.QUEUE_PREFIX);
  const bareQueue = createOperationsQueue(redis(false), barePrefix);
  onCleanup(async () => {
    await queue.close();
    await bareQueue.close();
  });
  const addBulk = queue.addBulk.bind(queue);
  queue.addBulk = (async (jobs: Parameters<typeof addBulk>[0]) => {
    const added = await addBulk(jobs);
    phase('first jobs added', true);
    phase('last jobs added');
    return added;
  }) as typeof queue.addBulk;
  const driver = new WaveDriver(waves, queue, config.JOB_ATTEMPTS);
  // As WorkerService wires them: an operation of a wave that ends nudges the driver.
  runner.onEnded = (op) => {
    if (op.requestedBy.startsWith('wave:')) driver.nudge(op.id);
  };
  onCleanup(() => driver.close());
  const ended = new Set<string>();
  driver.onWaveEnded = (waveId) => {
    phase('wave ended');
    ended.add(waveId);
  };

  const until = async (what: string, done: () => boolean | Promise<boolean>, timeoutMs = 300_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms`);
      if (failedJobs > 0) throw new Error(`${what}: ${failedJobs} job(s) failed`);
      await sleep(2);
    }
  };

  const measure = async (variant: string, round_: number, body: () => Promise<number | undefined>, timeline = false): Promise<Measure> => {
    const pgCpu0 = new PgCpuSampler(dbName);
    const x0 = await pgCounters(db);
    const rd0 = procCpuMs('redis-server');
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    phaseT0 = t0;
    phases = timeline ? {} : undefined;
    const writeMs = await body();
    const ms = performance.now() - t0;
    const cpu = round(cpuMs(c0));
    const pgCpu = round(pgCpu0.stop());
    const redisCpu = round(procCpuMs('redis-server') - rd0);
    // PostgreSQL publishes a backend's counters when it goes idle, at most once a second.
    await sleep(1_200);
    const x1 = await pgCounters(db);
    return {
      variant, round: round_, ms: round(ms), cpuMs: cpu, pgCpuMs: pgCpu, redisCpuMs: redisCpu, writeMs: writeMs === undefined ? undefined : round(writeMs),
      pgTransactions: Math.max(0, x1.xacts - x0.xacts - 1), pgRowsWritten: x1.written - x0.written, pgRowsRead: x1.read - x0.read,
      ...(phases ? { phases } : {}),
    };
  };

  const runBare = (r: number) => measure('bare BullMQ', r, async () => {
    completedBare = 0;
    const t = performance.now();
    // The same options as enqueueOperation: job id, attempts, backoff (and the queue's removeOnComplete).
    await mapLimit(Array.from({ length: N }, (_, i) => i), producers, (i) => bareQueue.add('run-operation', { operationId: `${r}-${i}` }, { jobId: `bare-${r}-${i}`, attempts: config.JOB_ATTEMPTS, backoff: { type: 'exponential', delay: 1000 } }));
    const w = performance.now() - t;
    await until('bare jobs', () => completedBare >= N);
    return w;
  });

  const runOps = (r: number, started?: () => Promise<void>) => measure('operations', r, async () => {
    completedOurs = 0;
    await started?.();
    const t = performance.now();
    const ids = await mapLimit(clusters, producers, async (c) => {
      const op = await request(c);
      await enqueueOperation(queue, op.id, config.JOB_ATTEMPTS);
      return op.id;
    });
    const w = performance.now() - t;
    await until('operations', () => completedOurs >= N);
    const ok = await db.operation.count({ where: { id: { in: ids }, state: 'Succeeded' } });
    if (!STUB_RUNNER && ok !== N) throw new Error(`operations: ${ok} of ${N} Succeeded`);
    return w;
  });

  const runWave = (r: number, started?: () => Promise<void>) => measure('wave', r, async () => {
    completedOurs = 0;
    const wave = await waves.create({
      action: 'rotate-gossip-key', params: {}, selector: { bench: true }, canaries: 0, maxInFlight: N, maxFailures: 0, createdBy: 'bench',
      clusterIds: clusters.map((c) => c.id),
    });
    phase('created');
    let firstTickMs: number | undefined;
    await started?.();
    const t = performance.now();
    // As WorkerService runs the driver: a tick every WAVE_TICK_MS, and the nudges of the operations that end.
    const timer = setInterval(() => void driver.tick().catch(() => undefined), config.WAVE_TICK_MS);
    try {
      await driver.tick();
      firstTickMs = performance.now() - t;
      await until('wave', () => (STUB_RUNNER ? completedOurs >= N : ended.has(wave.id)));
    } finally {
      clearInterval(timer);
    }
    const w = await db.wave.findUnique({ where: { id: wave.id }, select: { state: true } });
    if (!STUB_RUNNER && w?.state !== 'Succeeded') throw new Error(`wave ${wave.id} ended ${w?.state}`);
    return firstTickMs;
  }, true);

  // Warm-up, not counted: JIT, connections, Prisma's query plans.
  const warm = clusters.slice(0, Math.min(N, 100));
  log(`wave-overhead: warm-up (${warm.length} of each, not counted)`);
  completedBare = 0;
  await mapLimit(warm, producers, (_, i) => bareQueue.add('run-operation', { operationId: `w-${i}` }, { jobId: `bare-w-${i}`, attempts: config.JOB_ATTEMPTS }));
  await until('warm-up bare', () => completedBare >= warm.length);
  completedOurs = 0;
  await mapLimit(warm, producers, async (c) => enqueueOperation(queue, (await request(c)).id, config.JOB_ATTEMPTS));
  await until('warm-up operations', () => completedOurs >= warm.length);

  const results: Measure[] = [];
  for (let r = 1; r <= RUNS; r++) {
    for (const m of [await runBare(r), await runOps(r), await runWave(r)]) {
      results.push(m);
      log(`  round ${r} ${m.variant.padEnd(12)} ${String(m.ms).padStart(8)} ms for ${N} (${round(N / (m.ms / 1000))}/s); this process CPU ${m.cpuMs} ms, PostgreSQL ${m.pgCpuMs} ms (${m.pgTransactions} transactions), Redis ${m.redisCpuMs} ms${m.writeMs !== undefined ? `; ${m.variant === 'wave' ? 'first driver tick' : 'adds/writes done'} after ${m.writeMs} ms` : ''}`);
      if (m.phases) log(`    timeline (ms): ${Object.entries(m.phases).sort((a, b) => a[1] - b[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  }

  // Profiled rounds: where the time goes, for the operations and for the wave.
  const profile: Record<string, unknown> = {};
  if (PROFILE) {
    for (const [variant, run] of [['operations', runOps], ['wave', runWave]] as const) {
      log(`wave-overhead: profiled round (${variant}; not counted)`);
      const timing = timeMethods({ operations, clusters: clusterRepo, waves });
      const sql = countStatements();
      const session = new Session();
      session.connect();
      const post = <T>(method: string, params?: object) => new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r as T))));
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 500 });
      // The profile covers the timed part only (not the wave's creation).
      const m = await run(0, () => post('Profiler.start'));
      const { profile: cpu } = await post<{ profile: CpuProfile }>('Profiler.stop');
      session.disconnect();
      timing.restore();
      const statements = sql.stop();
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      const cpuFile = path.join(RESULTS_DIR, `wave-overhead-${variant}.cpuprofile`);
      fs.writeFileSync(cpuFile, JSON.stringify(cpu));
      const byMethod = Object.fromEntries(Object.entries(timing.stats).map(([k, v]) => [k, { calls: v.calls, totalMs: round(v.ms), meanMs: round(v.ms / v.calls, 2) }]));
      const p = { round: m, sqlStatementsPerOperation: round(statements.count / N, 2), sqlByKind: statements.byKind, repositoryCalls: byMethod, cpuByPackage: summarizeProfile(cpu), cpuProfileFile: path.relative(process.cwd(), cpuFile) };
      profile[variant] = p;
      log(`  profiled: ${round(statements.count / N, 2)} SQL statements per operation (${Object.entries(statements.byKind).map(([k, v]) => `${k} ${round(v / N, 2)}`).join(', ')})`);
      log(`  profiled: ${m.ms} ms; repository calls (count, total ms of wall time, overlapping up to ${config.WORKER_CONCURRENCY} at a time):`);
      for (const [k, v] of Object.entries(byMethod).sort((a, b) => b[1].totalMs - a[1].totalMs)) log(`    ${k.padEnd(28)} ${String(v.calls).padStart(5)} calls ${String(v.totalMs).padStart(8)} ms (mean ${v.meanMs} ms)`);
      log(`  this process's CPU by package (share of samples): ${Object.entries(p.cpuByPackage).map(([k, v]) => `${k} ${v}%`).join(', ')}`);
    }
  }

  const med = (variant: string, f: (m: Measure) => number) => summarize(results.filter((m) => m.variant === variant).map(f));
  const bareMs = med('bare BullMQ', (m) => m.ms);
  const opsMs = med('operations', (m) => m.ms);
  const waveMs = med('wave', (m) => m.ms);
  const ratioOps = round(bareMs.median / opsMs.median, 3);
  const ratioWave = round(bareMs.median / waveMs.median, 3);
  const perOp = (v: string) => ({
    wallMs: round(med(v, (m) => m.ms).median / N, 3),
    cpuMs: round(med(v, (m) => m.cpuMs).median / N, 3),
    pgCpuMs: round(med(v, (m) => m.pgCpuMs).median / N, 3),
    redisCpuMs: round(med(v, (m) => m.redisCpuMs).median / N, 3),
    pgTransactions: round(med(v, (m) => m.pgTransactions).median / N, 2),
    pgRowsWritten: round(med(v, (m) => m.pgRowsWritten).median / N, 2),
  });
  const summary = [
    `${N} jobs, median of ${RUNS}: bare BullMQ ${bareMs.median} ms [${bareMs.min}-${bareMs.max}], operations ${opsMs.median} ms [${opsMs.min}-${opsMs.max}], wave ${waveMs.median} ms [${waveMs.min}-${waveMs.max}]`,
    `ratio bare / ours: operations ${ratioOps}, wave ${ratioWave} (target >= 0.5: ${ratioOps >= 0.5 ? 'met' : 'MISSED'} for operations, ${ratioWave >= 0.5 ? 'met' : 'MISSED'} for the wave)`,
    `per job: bare ${JSON.stringify(perOp('bare BullMQ'))}; operations ${JSON.stringify(perOp('operations'))}; wave ${JSON.stringify(perOp('wave'))} (ms: wall, this process CPU, PostgreSQL CPU of our database's backends, Redis CPU (shared with others); PostgreSQL transactions and rows written per job)`,
  ];
  if (STUB_RUNNER) summary.unshift('RUNNER STATEMENTS STUBBED (BENCH_STUB_RUNNER): a ceiling for the driver, BullMQ and the runner\'s code, not the product');
  const file = writeResult(STUB_RUNNER ? 'wave-overhead-stub-runner' : 'wave-overhead', {
    stubRunner: STUB_RUNNER, jobs: N, runs: RUNS, concurrency: config.WORKER_CONCURRENCY, databasePool: config.DATABASE_POOL_SIZE, producers,
    targets: { ratioBareOverOursAtLeast: 0.5, operations: ratioOps, wave: ratioWave },
    summary, perJob: { bare: perOp('bare BullMQ'), operations: perOp('operations'), wave: perOp('wave') }, results, profile,
  });
  log('');
  for (const line of summary) log(`wave-overhead: ${line}`);
  log(`wave-overhead: results in ${file}`);
}

/** Counts the SQL statements sent through node-postgres (Prisma's driver adapter uses it), by first word. */
function countStatements(): { stop(): { count: number; byKind: Record<string, number> } } {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  let count = 0;
  const byKind: Record<string, number> = {};
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0];
    const text = typeof q === 'string' ? q : (q as { text?: string } | undefined)?.text ?? '';
    const kind = (/^\s*(\w+)/.exec(text)?.[1] ?? '?').toUpperCase();
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    count++;
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.query = original;
      return { count, byKind };
    },
  };
}

/** Our database's counters (pg_stat_database). */
async function pgCounters(db: Db): Promise<{ xacts: number; written: number; read: number }> {
  const [r] = await db.$queryRaw<{ x: bigint; w: bigint; f: bigint }[]>`
    SELECT xact_commit + xact_rollback AS x, tup_inserted + tup_updated + tup_deleted AS w, tup_fetched AS f
    FROM pg_stat_database WHERE datname = current_database()`;
  return { xacts: Number(r!.x), written: Number(r!.w), read: Number(r!.f) };
}

/** Runs fn over items with at most `limit` calls in flight; results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

/**
 * CPU time of our database's PostgreSQL backends over a time window: sampled every
 * 100 ms, each backend's last reading minus its first (0 for one that started in
 * the window), so that pooled connections closing and opening are counted.
 */
class PgCpuSampler {
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly dbName: string) {
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 100);
  }

  private sample(initial: boolean): void {
    for (const [pid, ms] of backendCpu(this.dbName)) {
      if (!this.first.has(pid)) this.first.set(pid, initial ? ms : 0);
      this.last.set(pid, ms);
    }
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample(false);
    let total = 0;
    for (const [pid, ms] of this.last) total += ms - (this.first.get(pid) ?? 0);
    return total;
  }
}

function backendCpu(dbName: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`postgres: `) || !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${dbName} `)) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * CPU time (user + system, ms) of every process with this command name, from /proc;
 * with `cmdlineHas`, only those whose command line contains it (PostgreSQL backends
 * show their database: "postgres: user db 127.0.0.1(port) idle").
 */
function procCpuMs(comm: string, cmdlineHas?: string): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      if (stat.slice(open + 1, close) !== comm) continue;
      if (cmdlineHas && !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(cmdlineHas)) continue;
      const f = stat.slice(close + 2).split(' ');
      total += ((Number(f[11]) + Number(f[12])) * 1000) / tick; // utime, stime
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Wraps every method of the given objects to count calls and add up their wall time. */
function timeMethods(objs: Record<string, object>): { stats: Record<string, { calls: number; ms: number }>; restore(): void } {
  const stats: Record<string, { calls: number; ms: number }> = {};
  const undo: (() => void)[] = [];
  for (const [label, obj] of Object.entries(objs)) {
    const proto = Object.getPrototypeOf(obj) as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = proto[name];
      if (name === 'constructor' || typeof fn !== 'function') continue;
      const key = `${label}.${name}`;
      const target = obj as Record<string, unknown>;
      target[name] = async function (this: unknown, ...args: unknown[]) {
        const t = performance.now();
        try {
          return await (fn as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
        } finally {
          const s = (stats[key] ??= { calls: 0, ms: 0 });
          s.calls++;
          s.ms += performance.now() - t;
        }
      };
      undo.push(() => delete target[name]);
    }
  }
  return { stats, restore: () => undo.forEach((u) => u()) };
}

interface CpuProfile { nodes: { id: number; callFrame: { url: string; functionName: string }; hitCount?: number; children?: number[] }[]; samples?: number[] }

/**
 * Share of this process's CPU samples by who caused them: a sample in native code
 * (socket writes, WebAssembly, JSON) is charged to the nearest JS caller in a
 * package (node_modules/<pkg>) or in our code (dist/); what has none is node's own
 * (node internals), the garbage collector, or idle.
 */
function summarizeProfile(p: CpuProfile): Record<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map<number, string>();
  const categorize = (id: number): string => {
    const known = categoryOf.get(id);
    if (known) return known;
    let cat = '';
    for (let cur: number | undefined = id; cur !== undefined && !cat; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(n.callFrame.url);
      if (m) cat = m[1]!;
      else if (n.callFrame.url.includes('/dist/')) cat = 'ours (dist/)';
    }
    if (!cat) {
      const n = byId.get(id)!;
      cat = ['(idle)', '(garbage collector)', '(program)'].includes(n.callFrame.functionName) ? n.callFrame.functionName : 'node internals';
    }
    categoryOf.set(id, cat);
    return cat;
  };
  const counts: Record<string, number> = {};
  let total = 0;
  for (const id of p.samples ?? []) {
    if (!byId.has(id)) continue;
    const cat = categorize(id);
    counts[cat] = (counts[cat] ?? 0) + 1;
    total++;
  }
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => [k, round((v / total) * 100, 1)]));
}

runBench('wave-overhead', 420_000, main);
