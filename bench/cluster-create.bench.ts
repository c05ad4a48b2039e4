/**
 * Cluster create latency: from the POST /v1/clusters request to the cluster
 * being Running, through the real API and worker (in this process) and real
 * Consul 1.8.7 servers, for the development (1 server) and standard (3
 * servers) tiers. Each run uses a fresh cluster name and deletes the cluster
 * afterwards (waits for the delete; no Consul process is left).
 *
 * The time is broken down by the create operation's steps (durationMs on the
 * Operation row) and, from the servers' own logs, wait-for-leader is split
 * into "leader elected" and "ACL legacy-mode exit".
 *
 *   node dist/bench/cluster-create.bench.js      (npm run bench runs it)
 *   env: BENCH_RUNS (5), and what bench.sh exports.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { INestApplicationContext } from '@nestjs/common';
import { createApiApp } from '../apps/api/src/app';
import { startWorker } from '../apps/worker/src/worker';
import { closeDb, createDb, type Config, type Db, type OperationStep } from '../libs/core/src';
import { LocalTarget } from '../libs/provisioner/src';
import { mintToken } from '../infra/local/token';
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from '../infra/local/node-flags';
import { WORKER_MAIN, workerEnv } from '../test/support/worker-process';
import {
  REPO_ROOT, benchConfig, createBenchDatabase, dropBenchDatabase, freePort, listenApi, log, obliterateQueue, onCleanup, round, runBench, sleep, spawnChild, summarize, waitForHttp, writeResult,
} from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** BENCH_PARALLEL=N: N standard clusters asked at once instead (see parallel()). */
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 0);
const PARALLEL_TIMEOUT_MS = Number(process.env.BENCH_PARALLEL_TIMEOUT_S ?? 240) * 1000;
const TIERS = ['development', 'standard'] as const;
type Tier = (typeof TIERS)[number];
const TENANT = 'beeeeeee-0000-4000-8000-00000000b001';
const SUBSCRIPTION = '0abcd000-0000-4000-8000-00000000b001';
const RUN_TIMEOUT_MS = 60_000;
const POLL_MS = 10;

/** Step groups reported, each the sum of its steps' durationMs. */
const GROUPS: Record<string, string[]> = {
  'address allocation (allocate-addresses)': ['allocate-addresses'],
  'key generation (generate-secrets)': ['generate-secrets'],
  'process start (write-config + start-servers)': ['write-config', 'start-servers'],
  'leader election + ACL mode (wait-for-leader)': ['wait-for-leader'],
  'ACL set-up check (verify-acl)': ['verify-acl'],
  'public endpoint (apply-public-endpoint + record-public-address)': ['apply-public-endpoint', 'record-public-address'],
};

interface RunResult {
  tier: Tier;
  run: number;
  clusterId: string;
  /** POST sent to runningSince written by the worker. */
  totalMs: number;
  /** POST sent to 202 received. */
  acceptedMs: number;
  /** POST sent to the operation marked Running by the worker (queue pickup). */
  pickupMs: number;
  steps: Record<string, number>;
  groups: Record<string, number>;
  /** total minus all steps: API, queue pickup, step bookkeeping in the DB, marking Running. */
  restMs: number;
  /** Split of wait-for-leader from the Consul servers' logs (undefined if the log lines were not found). */
  leaderElectedMs?: number;
  aclLegacyExitMs?: number;
  deleteMs: number;
}

/** The benchmark's database, queue prefix and local target; whatever happens, no Consul server of ours is left running. */
async function setUp(): Promise<{ databaseUrl: string; config: Config; clustersDir: string; target: LocalTarget; live: Set<string> }> {
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const config: Config = benchConfig(databaseUrl, 250);
  onCleanup(async () => {
    await obliterateQueue(config.REDIS_URL, config.QUEUE_PREFIX);
  });
  const clustersDir = path.join(config.LOCAL_DIR, 'clusters');
  const target = new LocalTarget({ clustersDir, consulBinary: () => config.CONSUL_BIN });
  const live = new Set<string>();
  // Whatever happens: no Consul server of ours is left running.
  // All at once: the burst leaves 50 clusters, which one by one outlasted the clean-up's 60 s.
  onCleanup(async () => {
    await Promise.all([...live].map((id) => {
      log(`clean-up: stopping the servers of cluster ${id}`);
      return target.stopAndRemove(id, { gracefulTimeoutMs: 5_000 });
    }));
    target.close();
  });
  return { databaseUrl, config, clustersDir, target, live };
}

async function main(): Promise<void> {
  if (PARALLEL > 0) return parallel(PARALLEL);
  const { databaseUrl, config, clustersDir, target, live } = await setUp();

  const api = await createApiApp(config);
  const url = await listenApi(api);
  const worker: INestApplicationContext = await startWorker(config);
  onCleanup(() => worker.close());
  const db: Db = createDb(databaseUrl, 2);
  onCleanup(() => closeDb(db));

  const token = mintToken({ tenantId: TENANT, user: 'bench', roles: ['Clusters.ReadWrite'] });
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(url + p, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };

  const runOnce = async (tier: Tier, run: number): Promise<RunResult> => {
    const name = `bench-${tier.slice(0, 3)}-${run}-${randomBytes(3).toString('hex')}`;
    const t0 = Date.now();
    const p0 = performance.now();
    const res = await call('POST', '/v1/clusters', { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', region: 'westeurope', tier });
    const acceptedMs = performance.now() - p0;
    if (res.status !== 202) throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
    const clusterId: string = res.body.cluster.id;
    const operationId: string = res.body.operation.id;
    live.add(clusterId);

    const deadline = Date.now() + RUN_TIMEOUT_MS;
    let cluster = await db.cluster.findUnique({ where: { id: clusterId } });
    while (cluster?.state !== 'Running') {
      if (cluster?.state === 'Failed') {
        const op = await db.operation.findUnique({ where: { id: operationId } });
        throw new Error(`cluster ${clusterId} failed: ${cluster.stateReason}; ${JSON.stringify(op?.error)}`);
      }
      if (Date.now() > deadline) throw new Error(`cluster ${clusterId} not Running after ${RUN_TIMEOUT_MS} ms (state ${cluster?.state})`);
      await sleep(POLL_MS);
      cluster = await db.cluster.findUnique({ where: { id: clusterId } });
    }
    // The cluster is Running before the operation has written its last steps' durations: they are read once it has ended.
    let op = await db.operation.findUniqueOrThrow({ where: { id: operationId } });
    while (op.state !== 'Succeeded') {
      if (Date.now() > deadline) throw new Error(`create ${operationId} not Succeeded after ${RUN_TIMEOUT_MS} ms (state ${op.state})`);
      await sleep(POLL_MS);
      op = await db.operation.findUniqueOrThrow({ where: { id: operationId } });
    }
    const totalMs = cluster.runningSince!.getTime() - t0;
    const stepLog = op.steps as unknown as OperationStep[];
    const steps: Record<string, number> = {};
    for (const s of stepLog) steps[s.name] = s.durationMs ?? NaN;
    const groups: Record<string, number> = {};
    for (const [g, names] of Object.entries(GROUPS)) groups[g] = names.reduce((sum, n) => sum + (steps[n] ?? 0), 0);
    const stepSum = Object.values(steps).reduce((a, b) => a + b, 0);
    const split = leaderSplit(clustersDir, clusterId, stepLog.find((s) => s.name === 'wait-for-leader'));
    if (tier === 'standard' && run === RUNS) keepLogs(clustersDir, clusterId);

    // Delete, and wait for it: no process, no files.
    const d0 = performance.now();
    const del = await call('DELETE', `/v1/clusters/${clusterId}`);
    if (del.status !== 202) throw new Error(`delete answered ${del.status}: ${JSON.stringify(del.body)}`);
    const deleteOp: string = del.body.operation.id;
    for (;;) {
      const d = await db.operation.findUnique({ where: { id: deleteOp } });
      if (d?.state === 'Succeeded') break;
      if (d?.state === 'Failed') throw new Error(`delete of ${clusterId} failed: ${JSON.stringify(d.error)}`);
      if (performance.now() - d0 > RUN_TIMEOUT_MS) throw new Error(`delete of ${clusterId} did not finish in ${RUN_TIMEOUT_MS} ms`);
      await sleep(POLL_MS * 5);
    }
    const deleteMs = performance.now() - d0;
    const left = await target.observe(clusterId);
    if (left.length > 0) throw new Error(`cluster ${clusterId}: ${left.length} Consul process(es) still running after delete`);
    live.delete(clusterId);

    return {
      tier,
      run,
      clusterId,
      totalMs,
      acceptedMs: round(acceptedMs),
      pickupMs: op.startedAt!.getTime() - t0,
      steps,
      groups,
      restMs: totalMs - stepSum,
      ...split,
      deleteMs: round(deleteMs),
    };
  };

  // One development cluster first, not counted: JIT, the identity metadata fetch, first connections.
  log('cluster-create: warm-up (development, not counted)');
  const warmup = await runOnce('development', 0);
  log(`  warm-up: ${warmup.totalMs} ms to Running`);

  const results: RunResult[] = [];
  for (let run = 1; run <= RUNS; run++) {
    for (const tier of TIERS) {
      const r = await runOnce(tier, run);
      results.push(r);
      const parts = Object.entries(r.steps).map(([k, v]) => `${k} ${v}`).join(', ');
      log(`  ${tier.padEnd(11)} run ${run}: ${r.totalMs} ms to Running (${parts}; rest ${r.restMs}; delete ${r.deleteMs} ms)`);
    }
  }

  const byTier: Record<string, unknown> = {};
  for (const tier of TIERS) {
    const rs = results.filter((r) => r.tier === tier);
    const breakdown: Record<string, ReturnType<typeof summarize>> = {};
    for (const g of Object.keys(GROUPS)) breakdown[g] = summarize(rs.map((r) => r.groups[g]!));
    breakdown['rest: API, queue pickup, DB bookkeeping (total minus steps)'] = summarize(rs.map((r) => r.restMs));
    const leader = rs.filter((r) => r.leaderElectedMs !== undefined);
    byTier[tier] = {
      runs: rs.length,
      totalMs: summarize(rs.map((r) => r.totalMs)),
      breakdownMs: breakdown,
      waitForLeaderSplitMs: leader.length
        ? { leaderElected: summarize(leader.map((r) => r.leaderElectedMs!)), aclLegacyExit: summarize(leader.map((r) => r.aclLegacyExitMs!)), runsWithSplit: leader.length }
        : undefined,
      acceptedMs: summarize(rs.map((r) => r.acceptedMs)),
      pickupMs: summarize(rs.map((r) => r.pickupMs)),
      deleteMs: summarize(rs.map((r) => r.deleteMs)),
    };
  }
  const target3s = (byTier.standard as { totalMs: { median: number } }).totalMs.median < 3000;
  const summary: string[] = [];
  for (const tier of TIERS) {
    const t = byTier[tier] as {
      totalMs: { median: number; min: number; max: number };
      breakdownMs: Record<string, { median: number; min: number; max: number }>;
      waitForLeaderSplitMs?: { leaderElected: { median: number }; aclLegacyExit: { median: number } };
    };
    const over3s = results.filter((r) => r.tier === tier && r.totalMs >= 3000).length;
    summary.push(`${tier}: POST to Running median ${t.totalMs.median} ms [${t.totalMs.min}-${t.totalMs.max}] over ${RUNS} runs (${over3s} of them >= 3 s)`);
    for (const [g, st] of Object.entries(t.breakdownMs)) summary.push(`  ${g.padEnd(60)} ${String(st.median).padStart(7)} ms [${st.min}-${st.max}]`);
    if (t.waitForLeaderSplitMs) {
      summary.push(`  (wait-for-leader per the Consul logs: leader elected after ${t.waitForLeaderSplitMs.leaderElected.median} ms, then ACL legacy-mode exit ${t.waitForLeaderSplitMs.aclLegacyExit.median} ms)`);
    }
  }
  summary.push(`target standard median < 3000 ms: ${target3s ? 'met' : 'MISSED'}`);
  const file = writeResult('cluster-create', {
    runsPerTier: RUNS,
    targets: { standardRunningMedianBelowMs: 3000, met: target3s },
    summary,
    tiers: byTier,
    warmup,
    runs: results,
  });
  log('');
  for (const line of summary) log(`cluster-create: ${line}`);
  log(`cluster-create: results in ${file}`);
}

/** utime + stime of a process in ms (/proc/<pid>/stat), or 0 when it is gone. */
function processCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** VmRSS and VmHWM (peak) of a process in MB, from /proc/<pid>/status. */
function processRssMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: round(kb('VmRSS') / 1024), peak: round(kb('VmHWM') / 1024) };
}

/** The Consul processes of these clusters (by their config dir), with their CPU so far. */
function consulCpuMs(clusterIds: ReadonlySet<string>): { processes: number; cpuMs: number } {
  let processes = 0;
  let cpuMs = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const id = /\/clusters\/([0-9a-f-]{36})\//.exec(cmdline)?.[1];
    if (!id || !clusterIds.has(id) || !cmdline.includes('agent')) continue;
    processes++;
    cpuMs += processCpuMs(Number(entry));
  }
  return { processes, cpuMs };
}

/**
 * BENCH_PARALLEL=N: N standard clusters (3 servers each) asked at once through the API, the API
 * and the worker each a process of their own (compiled, as in production) so that their CPU and
 * RSS are theirs. Measured: the time until every cluster is Running (and each one's), attempts
 * per operation (1 = its first attempt went through), the create step split (medians), the
 * worker's and Consul's CPU, the API's and the worker's RSS with N clusters, then N deletes asked
 * at once and the time until all are done (no Consul process left).
 */
async function parallel(n: number): Promise<void> {
  const { databaseUrl, config, live } = await setUp();
  const apiPort = await freePort();
  const api = spawnChild('bench-parallel-api', process.execPath, [...SERVICE_NODE_FLAGS, path.join(REPO_ROOT, 'dist/apps/api/src/main.js')], { ...workerEnv(config, 'bench-parallel-api'), ...SERVICE_ENV, PORT: String(apiPort) });
  const url = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${url}/healthz`, api);
  const worker = spawnChild('bench-parallel-worker', process.execPath, [...SERVICE_NODE_FLAGS, WORKER_MAIN], { ...workerEnv(config, 'bench-parallel-worker'), ...SERVICE_ENV });
  const db: Db = createDb(databaseUrl, 2);
  onCleanup(() => closeDb(db));
  const token = mintToken({ tenantId: TENANT, user: 'bench', roles: ['Clusters.ReadWrite'] });
  // As a client should: a 503 (the API too busy to serve the request now; nothing was written) is asked again
  // after its Retry-After, five times at most. Counted, and printed with the figures.
  const busy = { answers503: 0 };
  const call = async (method: string, p: string, body?: unknown) => {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      if (res.status === 503 && attempt <= 5) {
        busy.answers503++;
        await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
        continue;
      }
      return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
    }
  };
  // One development cluster first, not counted (JIT, first connections), deleted before the burst.
  const warm = await call('POST', '/v1/clusters', { name: `warm-${randomBytes(3).toString('hex')}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', region: 'westeurope', tier: 'development' });
  if (warm.status !== 202) throw new Error(`warm-up create answered ${warm.status}: ${JSON.stringify(warm.body)}`);
  live.add(warm.body.cluster.id);
  await waitForOperationState(db, warm.body.operation.id, 120_000);
  const apiAfterOne = processRssMb(api.proc.pid!);
  const workerAfterOne = processRssMb(worker.proc.pid!);
  const warmDelete = await call('DELETE', `/v1/clusters/${warm.body.cluster.id}`);
  await waitForOperationState(db, warmDelete.body.operation.id, 120_000);
  live.delete(warm.body.cluster.id);

  const workerCpu0 = processCpuMs(worker.proc.pid!);
  const t0 = Date.now();
  const made = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const res = await call('POST', '/v1/clusters', { name: `par-${i}-${randomBytes(3).toString('hex')}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', region: 'westeurope', tier: 'standard' });
    if (res.status !== 202) throw new Error(`create ${i} answered ${res.status}: ${JSON.stringify(res.body)}`);
    live.add(res.body.cluster.id);
    return { clusterId: res.body.cluster.id as string, operationId: res.body.operation.id as string };
  }));
  const ids = new Set(made.map((m) => m.clusterId));
  let running = 0;
  let peakConsul = { processes: 0, cpuMs: 0 };
  const progress: Array<{ s: number; running: number }> = [];
  while (running < n && Date.now() - t0 < PARALLEL_TIMEOUT_MS) {
    await sleep(500);
    running = await db.cluster.count({ where: { id: { in: [...ids] }, state: 'Running' } });
    progress.push({ s: round((Date.now() - t0) / 1000), running });
    const c = consulCpuMs(ids);
    if (c.cpuMs > peakConsul.cpuMs) peakConsul = c;
  }
  const allMs = Date.now() - t0;
  const workerCpuMs = processCpuMs(worker.proc.pid!) - workerCpu0;
  const consul = consulCpuMs(ids);
  const apiWith = processRssMb(api.proc.pid!);
  const workerWith = processRssMb(worker.proc.pid!);
  const clusters = await db.cluster.findMany({ where: { id: { in: [...ids] } } });
  const ops = await db.operation.findMany({ where: { id: { in: made.map((m) => m.operationId) } } });
  const times = clusters.filter((c) => c.runningSince).map((c) => c.runningSince!.getTime() - t0).sort((a, b) => a - b);
  const attempts: Record<string, number> = {};
  for (const op of ops) attempts[String(op.attempts)] = (attempts[String(op.attempts)] ?? 0) + 1;
  const stepMs: Record<string, number[]> = {};
  // A step still under way (an operation not yet ended when every cluster is Running) has no duration yet: left out.
  for (const op of ops) for (const st of (op.steps as unknown as OperationStep[]) ?? []) if (st.durationMs !== undefined) (stepMs[st.name] ??= []).push(st.durationMs);
  const stepMedians = Object.fromEntries(Object.entries(stepMs).map(([k, v]) => [k, summarize(v).median]));

  const created = [
    `${n} standard clusters asked at once: ${running} of ${n} Running after ${round(allMs / 1000)} s (target: all in 30 s, first attempt); each: median ${summarize(times).median} ms, max ${times.at(-1) ?? NaN} ms`,
    `attempts per create operation: ${JSON.stringify(attempts)}; step medians (ms): ${Object.entries(stepMedians).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `CPU during the burst: worker ${round(workerCpuMs / 1000)} s, Consul ${round(consul.cpuMs / 1000)} s over ${consul.processes} processes (wall ${round(allMs / 1000)} s, ${os.cpus().length} cores): ` +
      `Consul alone needs ${round(consul.cpuMs / os.cpus().length / 1000)} s of this machine's cores (${round(consul.cpuMs / Math.max(1, consul.processes))} ms per server), the control plane ${round(workerCpuMs / n)} ms of worker CPU per cluster`,
    `503 answers (retried after their Retry-After) to the creates: ${busy.answers503}`,
    `RSS: API ${apiAfterOne.rss} MB after one create, ${apiWith.rss} MB (peak ${apiWith.peak}) with ${n}; worker ${workerAfterOne.rss} MB after one create, ${workerWith.rss} MB (peak ${workerWith.peak}) with ${n} (targets: API <= 150, worker <= 200)`,
  ];
  // Printed before the deletes: a delete that fails stops the benchmark, not the creates' figures.
  for (const line of created) log(`create-burst: ${line}`);

  // Every delete asked at once.
  const d0 = Date.now();
  const deletes = await Promise.all([...ids].map(async (id) => {
    const res = await call('DELETE', `/v1/clusters/${id}`);
    if (res.status !== 202) throw new Error(`delete of ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body.operation.id as string;
  }));
  for (const opId of deletes) await waitForOperationState(db, opId, PARALLEL_TIMEOUT_MS);
  const deleteMs = Date.now() - d0;
  const left = consulCpuMs(ids).processes;
  if (left > 0) throw new Error(`${left} Consul processes left after the deletes`);
  for (const id of ids) live.delete(id);

  const summary = [...created, `${n} deletes asked at once: all done in ${round(deleteMs / 1000)} s, no Consul process left; 503 answers in all (retried): ${busy.answers503}`];
  log(`create-burst: ${summary.at(-1)}`);
  writeResult('create-burst', { parallel: n, summary, allMs, times, attempts, stepMedians, workerCpuMs, consul, peakConsul, rss: { apiAfterOne, apiWith, workerAfterOne, workerWith }, deleteMs, answers503: busy.answers503, progress });
}

async function waitForOperationState(db: Db, operationId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const op = await db.operation.findUnique({ where: { id: operationId } });
    if (op?.state === 'Succeeded') return;
    if (op?.state === 'Failed' || op?.state === 'Canceled') throw new Error(`operation ${operationId} ${op.state}: ${JSON.stringify(op.error)}`);
    if (Date.now() > deadline) throw new Error(`operation ${operationId} still ${op?.state} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * Splits wait-for-leader using the servers' logs: from the step's start to the
 * first "New leader elected" line, and from there to the step's end (the ACL
 * system leaving legacy mode on every server, plus polling).
 */
function leaderSplit(clustersDir: string, clusterId: string, step: OperationStep | undefined): { leaderElectedMs?: number; aclLegacyExitMs?: number } {
  if (!step?.finishedAt) return {};
  const start = Date.parse(step.startedAt);
  const end = Date.parse(step.finishedAt);
  let elected: number | undefined;
  for (const dir of safeReaddir(path.join(clustersDir, clusterId))) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(clustersDir, clusterId, dir, 'consul.log'), 'utf8');
    } catch {
      continue;
    }
    for (const raw of text.split('\n')) {
      if (!/New leader elected|cluster leadership acquired/.test(raw)) continue;
      const line = raw.trim(); // "2026-11-24T04:02:15.010Z [INFO]  agent.server: New leader elected: ..."
      const at = Date.parse(line.slice(0, line.indexOf(' ')));
      if (Number.isFinite(at) && (elected === undefined || at < elected)) elected = at;
      break;
    }
  }
  if (elected === undefined) return {};
  const leaderElectedMs = Math.max(0, elected - start);
  return { leaderElectedMs, aclLegacyExitMs: end - start - leaderElectedMs };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((d) => d.startsWith('server-'));
  } catch {
    return [];
  }
}

/** Keeps the last standard run's server logs next to the results, for a look at where the time goes. */
function keepLogs(clustersDir: string, clusterId: string): void {
  const out = path.join(__dirname, '..', '..', 'bench', 'results', 'cluster-create-logs');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  for (const dir of safeReaddir(path.join(clustersDir, clusterId))) {
    try {
      fs.copyFileSync(path.join(clustersDir, clusterId, dir, 'consul.log'), path.join(out, `${dir}.log`));
    } catch {
      /* no log */
    }
  }
}

// The burst (npm run bench -- create-burst) has its own name, result file and time limit.
runBench(PARALLEL > 0 ? 'create-burst' : 'cluster-create', PARALLEL > 0 ? PARALLEL_TIMEOUT_MS * 2 + 120_000 : 240_000, main);
