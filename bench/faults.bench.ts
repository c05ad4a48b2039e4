/**
 * Faults under load (`npm run bench -- faults`): the product as separate
 * processes (one API, two workers) on a PostgreSQL and a Redis of this run's
 * own (so both can be killed and restarted without touching anything else on
 * the machine), creates and day-2 operations in flight, and meanwhile:
 *
 *  - a worker killed with SIGKILL (and started again) every few seconds,
 *  - Redis killed with SIGKILL and started again (its AOF keeps what it had
 *    flushed; jobs of the last second may be gone: the reconciler re-enqueues),
 *  - PostgreSQL stopped (immediate: connections cut) and started again, while
 *    the API is polled: it must answer 503, never 500, and recover by itself.
 *
 * Then it checks what the issue asks: every accepted operation ended; every
 * cluster runs exactly its servers (Consul processes found by command line);
 * no operation ran twice (its success recorded once, and no two workers ran it
 * at the same time, from their JSON logs); after the clusters are deleted and
 * the processes stopped, no process is left. Exit code 1 when a check fails.
 *
 *   env: FAULTS_CLUSTERS (4), FAULTS_ROUNDS (4, at least), FAULTS_WORKER_KILLS (4), FAULTS_REDIS_KILLS (2),
 *   FAULTS_PG_RESTARTS (2), FAULTS_SEED (random), FAULTS_PG_DOWN_S (4)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { consulAgents } from '../infra/local/processes';
import { mintToken } from '../infra/local/token';
import { mulberry32 } from '../test/support/prng';
import {
  type Child, freePort, localDir, log, logTail, onCleanup, REPO_ROOT, required, round, runBench, sleep, spawnChild, waitForHttp, writeResult,
} from './support';

const CLUSTERS = Number(process.env.FAULTS_CLUSTERS ?? 4);
const ROUNDS = Number(process.env.FAULTS_ROUNDS ?? 4);
/** At least this many of each fault happen while operations are in flight (rounds go on until they have). */
const MIN_WORKER_KILLS = Number(process.env.FAULTS_WORKER_KILLS ?? 4);
const MIN_REDIS_KILLS = Number(process.env.FAULTS_REDIS_KILLS ?? 2);
const MIN_PG_RESTARTS = Number(process.env.FAULTS_PG_RESTARTS ?? 2);
const SEED = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PG_DOWN_S = Number(process.env.FAULTS_PG_DOWN_S ?? 4);
const TENANT = 'faa17000-0000-4000-8000-00000000fa17';
const SUBSCRIPTION = 'faa17000-0000-4000-8000-00000000fa18';
const OCTET = 252;
const PG_BIN = '/usr/lib/postgresql/15/bin';

const random = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

/** Waits for a condition, polling; throws after timeoutMs with what was last seen. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, pollMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last: ${String(last)})` : ''}`);
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------- this run's PostgreSQL and Redis

interface Postgres { port: number; dataDir: string; url: string; start(): void; stopImmediate(): void }

/** A PostgreSQL cluster of this run's own, in a folder the postgres user can reach, trust auth on loopback. */
function makePostgres(port: number): Postgres {
  const dataDir = fs.mkdtempSync('/var/tmp/managed-consul-faults-pg-');
  fs.chmodSync(dataDir, 0o700);
  execFileSync('chown', ['postgres:postgres', dataDir]);
  const asPg = (args: string[]) => spawnSync('runuser', ['-u', 'postgres', '--', ...args], { cwd: '/', encoding: 'utf8' });
  const init = asPg([`${PG_BIN}/initdb`, '-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--auth=trust']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dataDir}'\nmax_connections = 200\nfsync = off\n`);
  const logFile = path.join(dataDir, 'server.log');
  const pg: Postgres = {
    port,
    dataDir,
    url: `postgresql://postgres@127.0.0.1:${port}/faults`,
    start() {
      const r = asPg([`${PG_BIN}/pg_ctl`, '-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
      if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.stderr}${r.stdout}`);
    },
    stopImmediate() {
      asPg([`${PG_BIN}/pg_ctl`, '-D', dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop']);
    },
  };
  onCleanup(() => {
    pg.stopImmediate();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return pg;
}

interface Redis { port: number; url: string; child?: Child; start(): Promise<void>; kill(): Promise<void> }

function makeRedis(port: number): Redis {
  const dir = fs.mkdtempSync(path.join(localDir(), 'faults-redis-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const r: Redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      r.child = spawnChild(`faults-redis-${n++}`, 'redis-server', [
        '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
        '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no',
      ], { PATH: process.env.PATH });
      await until('redis answers', async () => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 20_000, 100);
    },
    async kill() {
      r.child?.proc.kill('SIGKILL');
      await r.child?.exited;
    },
  };
  return r;
}

// ---------------------------------------------------------------- the product's processes

interface RunEvent { worker: string; msg: string; operationId: string; at: number }

interface Worker { name: string; child: Child; events: RunEvent[]; killedAt?: number }

const STARTS = new Set(['operation started', 'operation resumed']);
const ENDS = new Set(['operation succeeded', 'operation failed', 'operation step failed; will retry']);

function productEnv(pg: Postgres, redis: Redis, prefix: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: pg.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    LOCAL_NET_OCTET: String(OCTET),
    LOG_FORMAT: 'json',
    // 'log' lines (operation started/succeeded) are dropped under NODE_ENV=test.
    NODE_ENV: 'development',
    JOB_LOCK_MS: '4000',
    RECONCILE_INTERVAL_MS: '1000',
    HEALTH_TICK_MS: '3000',
    SNAPSHOT_TICK_MS: '3600000',
    UPGRADE_TICK_MS: '3600000',
    BILLING_TICK_MS: '3600000',
    BILLING_EXPORT_DIR: path.join(localDir(), 'faults-usage'),
    CONSUL_BIN: process.env.CONSUL_BIN ?? path.join(localDir(), 'consul', 'usr', 'bin', 'consul'),
  };
}

let workerCount = 0;
function startWorkerProcess(label: string, env: NodeJS.ProcessEnv): Worker {
  const name = `${label}.${++workerCount}`;
  const child = spawnChild(`faults-worker-${workerCount}`, process.execPath, [path.join(REPO_ROOT, 'dist/apps/worker/src/main.js')], { ...env, WORKER_NAME: name, WORKER_PORT: '0' });
  const w: Worker = { name, child, events: [] };
  // spawnChild writes output to a log file; follow it for the run events.
  void followLog(child.logFile, child, (line) => {
    let parsed: { message?: { msg?: string; operationId?: string } | string } | undefined;
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      return;
    }
    const m = parsed?.message;
    if (m && typeof m === 'object' && m.operationId && m.msg && (STARTS.has(m.msg) || ENDS.has(m.msg))) {
      w.events.push({ worker: name, msg: m.msg, operationId: m.operationId, at: Date.now() });
    }
  });
  return w;
}

/** Reads a growing log file line by line until its process has exited and the file is read to its end. */
async function followLog(file: string, child: Child, onLine: (line: string) => void): Promise<void> {
  let offset = 0;
  let rest = '';
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    const wasExited = exited;
    let size = 0;
    try {
      size = fs.statSync(file).size;
    } catch {
      /* not there yet */
    }
    if (size > offset) {
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = size;
      const lines = (rest + buf.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    }
    if (wasExited) return;
    await sleep(100);
  }
}

// ---------------------------------------------------------------- the API, as a client

interface Answer { status: number; body: any }

async function call(base: string, token: string, method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/** Consul server processes of one cluster, by command line (`<LOCAL_DIR>/clusters/<id>/...`). */
const consulProcesses = (clusterId?: string): number[] => consulAgents(path.join(localDir(), 'clusters', clusterId ?? ''));

// ---------------------------------------------------------------- the run

runBench('faults', Number(process.env.BENCH_TIME_LIMIT ?? 300) * 1000 - 20_000, async () => {
  required('AUTH_ISSUER');
  log(`faults: seed ${SEED}, ${CLUSTERS} clusters, ${ROUNDS} rounds of day-2 operations`);
  const pg = makePostgres(await freePort());
  pg.start();
  execFileSync(`${PG_BIN}/psql`, ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-qc', 'CREATE DATABASE faults'], { stdio: 'pipe' });
  log('faults: migrating this run\'s database');
  execFileSync(process.execPath, ['node_modules/prisma/build/index.js', 'migrate', 'deploy'], {
    cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: pg.url, CHECKPOINT_DISABLE: '1' }, stdio: 'pipe',
  });
  const redis = makeRedis(await freePort());
  await redis.start();
  const env = productEnv(pg, redis, 'faults');

  const apiPort = await freePort();
  const api = spawnChild('faults-api', process.execPath, [path.join(REPO_ROOT, 'dist/apps/api/src/main.js')], { ...env, PORT: String(apiPort) });
  const base = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${base}/readyz`, api, 60_000);
  const workers: Worker[] = [startWorkerProcess('w1', env), startWorkerProcess('w2', env)];
  const allWorkers = [...workers];
  onCleanup(async () => {
    for (const w of allWorkers) await w.child.stop();
  });
  const token = mintToken({ tenantId: TENANT, user: 'faults', roles: ['Clusters.ReadWrite'], expiresInSeconds: 3600 });

  const accepted: { operationId: string; kind: string; clusterId: string }[] = [];
  const refused: { what: string; status: number; code?: string }[] = [];
  const statusesWhileDbDown: Record<string, number> = {};
  const fiveHundreds: { url: string; body: unknown }[] = [];
  const faults: { at: number; what: string }[] = [];
  const selfExits: string[] = [];
  const t0 = Date.now();
  const note = (what: string) => {
    faults.push({ at: round((Date.now() - t0) / 1000), what });
    log(`faults: +${round((Date.now() - t0) / 1000)} s ${what}`);
  };

  /** A request the run needs to get through: retried while the product answers 503 or cannot be reached (a fault in progress). */
  async function request(method: string, url: string, body?: unknown): Promise<Answer> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      let a: Answer | undefined;
      try {
        a = await call(base, token, method, url, body);
      } catch {
        a = undefined;
      }
      if (a && a.status >= 500 && a.status !== 503) fiveHundreds.push({ url, body: a.body });
      if (a && a.status !== 503 && a.status < 500) return a;
      if (Date.now() > deadline) throw new Error(`${method} ${url} did not get through in 120 s (last ${a?.status ?? 'no answer'})`);
      await sleep(500);
    }
  }

  // ---- creates
  const clusterIds: string[] = [];
  const tiers: string[] = [];
  for (let i = 0; i < CLUSTERS; i++) {
    const tier = i === 0 ? 'standard' : 'development';
    const a = await request('POST', '/v1/clusters', { name: `faults-${i}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-faults', region: 'westeurope', tier });
    if (a.status !== 202) throw new Error(`create answered ${a.status}: ${JSON.stringify(a.body)}`);
    clusterIds.push(a.body.cluster.id);
    tiers.push(tier);
    accepted.push({ operationId: a.body.operation.id, kind: 'create', clusterId: a.body.cluster.id });
  }

  // ---- the fault loop, alongside the workload
  let stopFaults = false;
  const faultLoop = (async () => {
    let step = 0;
    while (!stopFaults) {
      await sleep(1_500 + Math.floor(random() * 2_500));
      if (stopFaults) break;
      // A worker that exited by itself (not killed here) is a defect: say so, and start it again.
      for (const [i, w] of workers.entries()) {
        if (w.killedAt === undefined && (w.child.proc.exitCode !== null || w.child.proc.signalCode !== null)) {
          selfExits.push(`${w.name} exited by itself (${w.child.proc.exitCode ?? w.child.proc.signalCode}): ${logTail(w.child.logFile, 3)}`);
          w.killedAt = Date.now();
          workers[i] = startWorkerProcess(w.name.split('.')[0]!, env);
          allWorkers.push(workers[i]!);
        }
      }
      step++;
      if (step % 4 === 2) {
        note('Redis SIGKILL');
        await redis.kill();
        await sleep(1_000 + Math.floor(random() * 2_000));
        await redis.start();
        note('Redis back');
      } else if (step % 4 === 3) {
        note('PostgreSQL stop (immediate)');
        pg.stopImmediate();
        const downUntil = Date.now() + PG_DOWN_S * 1000;
        while (Date.now() < downUntil) {
          try {
            const a = await call(base, token, 'GET', '/v1/clusters');
            statusesWhileDbDown[a.status] = (statusesWhileDbDown[a.status] ?? 0) + 1;
            if (a.status >= 500 && a.status !== 503) fiveHundreds.push({ url: 'GET /v1/clusters (database down)', body: a.body });
          } catch {
            statusesWhileDbDown.noAnswer = (statusesWhileDbDown.noAnswer ?? 0) + 1;
          }
          await sleep(200);
        }
        pg.start();
        const back = Date.now();
        await until('API answers 200 after PostgreSQL is back', async () => (await call(base, token, 'GET', '/v1/clusters')).status === 200, 60_000, 100);
        note(`PostgreSQL back; the API answered 200 again after ${Date.now() - back} ms`);
      } else {
        const i = Math.floor(random() * workers.length);
        const w = workers[i]!;
        note(`SIGKILL worker ${w.name}`);
        w.killedAt = Date.now();
        w.child.proc.kill('SIGKILL');
        await w.child.exited;
        await sleep(500 + Math.floor(random() * 1_500));
        workers[i] = startWorkerProcess(w.name.split('.')[0]!, env);
        allWorkers.push(workers[i]!);
        note(`worker ${workers[i]!.name} started`);
      }
    }
  })();

  // ---- day-2 rounds while the faults go on
  const waitRunning = (id: string) => until(`cluster ${id} Running`, async () => {
    const a = await request('GET', `/v1/clusters/${id}`);
    return a.body?.state === 'Running' && a.body;
  }, 240_000, 500);
  for (const id of clusterIds) await waitRunning(id);
  log(`faults: ${CLUSTERS} clusters Running after ${round((Date.now() - t0) / 1000)} s`);
  const count = (prefix: string) => faults.filter((f) => f.what.startsWith(prefix)).length;
  const faultsDone = () => count('SIGKILL worker') >= MIN_WORKER_KILLS && count('Redis SIGKILL') >= MIN_REDIS_KILLS && count('PostgreSQL back') >= MIN_PG_RESTARTS;
  for (let round_ = 0; round_ < ROUNDS || !faultsDone(); round_++) {
    if (round_ > 50) throw new Error('the faults did not all happen within 50 rounds');
    for (const [i, id] of clusterIds.entries()) {
      const action = pick(['snapshot', 'gossip', 'snapshot', 'certificates'] as const);
      const a = action === 'snapshot'
        ? await request('POST', `/v1/clusters/${id}/snapshots`, { name: `r${round_}` })
        : await request('POST', `/v1/clusters/${id}/rotate`, { what: action === 'gossip' ? 'gossip-key' : 'certificates' });
      if (a.status === 202) accepted.push({ operationId: a.body.operation.id, kind: a.body.operation.kind, clusterId: id });
      else refused.push({ what: action, status: a.status, code: a.body?.error?.code });
      if (round_ === 1 && i === 1 && tiers[i] === 'development') {
        const s = await request('PATCH', `/v1/clusters/${id}`, { tier: 'standard' });
        if (s.status === 202) {
          accepted.push({ operationId: s.body.operation.id, kind: 'scale', clusterId: id });
          tiers[i] = 'standard';
        } else refused.push({ what: 'scale', status: s.status, code: s.body?.error?.code });
      }
    }
    // Let this round's operations end before the next is asked (a cluster takes one at a time anyway).
    for (const op of accepted) {
      await until(`operation ${op.kind} ${op.operationId} ended`, async () => {
        const a = await request('GET', `/v1/operations/${op.operationId}`);
        return ['Succeeded', 'Failed', 'Canceled'].includes(a.body?.state) && a.body;
      }, 300_000, 500);
    }
    log(`faults: round ${round_ + 1} done at +${round((Date.now() - t0) / 1000)} s`);
  }
  stopFaults = true;
  await faultLoop;

  // ---- checks
  const problems: string[] = [];
  const ends: Record<string, number> = {};
  for (const op of accepted) {
    const a = await request('GET', `/v1/operations/${op.operationId}`);
    ends[a.body.state] = (ends[a.body.state] ?? 0) + 1;
    if (a.body.state !== 'Succeeded') problems.push(`operation ${op.kind} ${op.operationId} ended ${a.body.state}: ${JSON.stringify(a.body.error)}`);
  }
  // Each cluster exactly its servers: wait for the health monitor's repairs to settle first.
  for (const [i, id] of clusterIds.entries()) {
    const want = tiers[i] === 'standard' ? 3 : 1;
    try {
      await until(`cluster ${id} runs ${want} servers`, async () => consulProcesses(id).length === want, 60_000, 500);
    } catch {
      problems.push(`cluster ${id} runs ${consulProcesses(id).length} Consul servers, expected ${want}`);
    }
  }
  // No operation ran twice: its success recorded once, and no two runners at once.
  const events = await request('GET', `/v1/clusters/${clusterIds[0]}/events`); // reachability check
  if (events.status !== 200) problems.push(`events answered ${events.status}`);
  const markers: Record<string, string> = { create: 'cluster.running', snapshot: 'snapshot.created', 'rotate-gossip-key': 'cluster.gossip-key.rotated', 'rotate-certificates': 'cluster.certificates.rotated', scale: 'cluster.scaled' };
  for (const id of clusterIds) {
    const ev = await request('GET', `/v1/clusters/${id}/events`);
    const list = (Array.isArray(ev.body) ? ev.body : ev.body?.events ?? []) as { operationId?: string; action: string }[];
    for (const op of accepted.filter((o) => o.clusterId === id)) {
      const marker = markers[op.kind];
      if (!marker) continue;
      const n = list.filter((e) => e.operationId === op.operationId && e.action === marker).length;
      if (n !== 1) problems.push(`operation ${op.kind} ${op.operationId}: '${marker}' recorded ${n} times`);
    }
  }
  const runs = new Map<string, { worker: string; from: number; to: number }[]>();
  for (const w of allWorkers) {
    const open = new Map<string, number>();
    for (const e of w.events) {
      if (STARTS.has(e.msg)) open.set(e.operationId, e.at);
      else if (ENDS.has(e.msg) && open.has(e.operationId)) {
        (runs.get(e.operationId) ?? runs.set(e.operationId, []).get(e.operationId)!).push({ worker: w.name, from: open.get(e.operationId)!, to: e.at });
        open.delete(e.operationId);
      }
    }
    const end = w.killedAt ?? Date.now();
    for (const [id, from] of open) (runs.get(id) ?? runs.set(id, []).get(id)!).push({ worker: w.name, from, to: end });
  }
  let overlaps = 0;
  for (const [id, rs] of runs) {
    rs.sort((a, b) => a.from - b.from);
    for (let k = 1; k < rs.length; k++) {
      if (rs[k]!.from < rs[k - 1]!.to && rs[k]!.worker !== rs[k - 1]!.worker) {
        overlaps++;
        problems.push(`operation ${id} ran in ${rs[k - 1]!.worker} and ${rs[k]!.worker} at the same time`);
      }
    }
  }
  for (const e of selfExits) problems.push(e);
  if (fiveHundreds.length) problems.push(`${fiveHundreds.length} answers were 5xx other than 503: ${JSON.stringify(fiveHundreds.slice(0, 3))}`);
  if (!statusesWhileDbDown['503']) problems.push(`no 503 while PostgreSQL was down: ${JSON.stringify(statusesWhileDbDown)}`);

  // ---- deletes, then no process left behind
  const deletes: string[] = [];
  for (const id of clusterIds) {
    const a = await request('DELETE', `/v1/clusters/${id}`);
    if (a.status === 202) deletes.push(a.body.operation.id);
  }
  for (const id of deletes) {
    await until(`delete ${id} ended`, async () => ['Succeeded', 'Failed'].includes((await request('GET', `/v1/operations/${id}`)).body?.state), 120_000, 500);
  }
  for (const w of workers) await w.child.stop();
  await api.stop();
  const leftConsul = consulProcesses().filter((pid) => clusterIds.some((id) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)));
  if (leftConsul.length) problems.push(`Consul processes left after delete: ${leftConsul.join(', ')}`);
  const leftChildren = allWorkers.filter((w) => w.child.proc.exitCode === null && w.child.proc.signalCode === null).map((w) => w.name);
  if (leftChildren.length) problems.push(`worker processes still running: ${leftChildren.join(', ')}`);

  const result = {
    summary: [
      `${accepted.length} operations accepted, ended ${JSON.stringify(ends)}, in ${round((Date.now() - t0) / 1000)} s`,
      `faults: ${faults.filter((f) => f.what.startsWith('SIGKILL worker')).length} worker SIGKILLs, ${faults.filter((f) => f.what === 'Redis SIGKILL').length} Redis kills, ${faults.filter((f) => f.what.startsWith('PostgreSQL stop')).length} PostgreSQL restarts`,
      `API while PostgreSQL was down: ${JSON.stringify(statusesWhileDbDown)}; other 5xx: ${fiveHundreds.length}; concurrent runs: ${overlaps}; problems: ${problems.length}`,
    ],
    seed: SEED,
    clusters: CLUSTERS,
    rounds: ROUNDS,
    seconds: round((Date.now() - t0) / 1000),
    operationsAccepted: accepted.length,
    operationsEnded: ends,
    refused,
    faults,
    workerProcesses: allWorkers.length,
    statusesWhileDbDown,
    non503ServerErrors: fiveHundreds.length,
    concurrentRuns: overlaps,
    problems,
  };
  const file = writeResult('faults', result);
  log(`faults: ${accepted.length} operations accepted, ended ${JSON.stringify(ends)}; ${faults.length} fault events; while PostgreSQL was down the API answered ${JSON.stringify(statusesWhileDbDown)}; result in ${file}`);
  if (problems.length) {
    for (const p of problems) log(`faults: PROBLEM ${p}`);
    log(`faults: end of the API log:\n${logTail(api.logFile, 20)}`);
    throw new Error(`${problems.length} check(s) failed`);
  }
  log('faults: every check passed');
});
