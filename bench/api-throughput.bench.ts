/**
 * API throughput, with the API as a separate process (node dist/apps/api/src/main.js)
 * on a database and queue prefix of its own, and NO worker (nothing provisions):
 *
 *  a. POST /v1/clusters: accepted creates (202) per second and their latency,
 *     a unique name per request; once with every request in one tenant (as a
 *     busy customer would) and once spread over many tenants.
 *  b. authenticated GET /v1/clusters/{id} beside a bare Fastify hello-world
 *     (bench/hello-fastify.ts, also a separate process), same load settings:
 *     requests/s, p50/p99 and the ratio api/hello.
 *
 * Load: autocannon from this process, CONNECTIONS connections for DURATION_S
 * seconds after a WARMUP_S warm-up. Latencies are measured per response (float
 * ms) from autocannon's response events; CPU time of the server process per
 * request is read from /proc (less sensitive to a noisy machine than req/s).
 * Afterwards the API is stopped, its queue obliterated and its database dropped.
 *
 * To see where the GET's time goes, the API's /healthz (no auth, no DB) and
 * /v1/tiers (auth, no DB) are also measured, BENCH_LADDER_S seconds each.
 *
 *   env: BENCH_CONNECTIONS (10), BENCH_DURATION_S (10), BENCH_WARMUP_S (2), BENCH_TENANTS (500), BENCH_LADDER_S (5),
 *   BENCH_API_NODE_ARGS (extra node flags for the API, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { mintToken } from '../infra/local/token';
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from '../infra/local/node-flags';
import { SecretBox, TenantClusterRepository, VIEW_COLUMNS, closeDb, createDb, sqlQuery } from '../libs/core/src';
import {
  type Child, createBenchDatabase, dropBenchDatabase, freePort, localDir, log, obliterateQueue, onCleanup, percentile, REPO_ROOT, required, round,
  runBench, spawnChild, waitForHttp, writeResult,
} from './support';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);
const TENANTS = Number(process.env.BENCH_TENANTS ?? 500);
/** Duration of the extra GET runs that split the API's cost (/healthz, /v1/tiers). */
const LADDER_S = Number(process.env.BENCH_LADDER_S ?? 5);
const TENANT = 'beeeeeee-0000-4000-8000-00000000b002';
const WARMUP_TENANT = 'beeeeeee-0000-4000-8000-00000000b003';
const SUBSCRIPTION = '0abcd000-0000-4000-8000-00000000b002';
const CLK_TCK = 100; // Linux USER_HZ

interface LoadResult {
  label: string;
  connections: number;
  durationS: number;
  requests: number;
  statusCounts: Record<string, number>;
  /** Responses with the expected status. */
  ok: number;
  okPerSecond: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Latency of the responses with the expected status, ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Expected-status responses in each second of the run. */
  perSecond: number[];
  /** CPU time of the server process per expected-status response, µs (user + system). */
  serverCpuUsPerRequest?: number;
  /** Server process CPU utilisation over the run (1.0 = one core). */
  serverCpuCores?: number;
}

/** user + system CPU time of a process, ms. */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

function load(
  label: string,
  opts: { url: string; durationS: number; expect: number; requests: autocannon.Request[]; serverPid?: number },
): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const perSecond: number[] = [];
    const statusCounts: Record<string, number> = {};
    let started = 0;
    const cpu0 = opts.serverPid ? processCpuMs(opts.serverPid) : undefined;
    const instance = autocannon(
      { url: opts.url, connections: CONNECTIONS, duration: opts.durationS, timeout: 10, requests: opts.requests },
      (err: Error | null, result: autocannon.Result) => {
        if (err) return reject(err);
        const cpu1 = opts.serverPid ? processCpuMs(opts.serverPid) : undefined;
        const sorted = latencies.sort((a, b) => a - b);
        const ok = statusCounts[String(opts.expect)] ?? 0;
        const total = Object.values(statusCounts).reduce((a, b) => a + b, 0);
        const cpuMs = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
        resolve({
          label,
          connections: CONNECTIONS,
          durationS: result.duration,
          requests: total,
          statusCounts,
          ok,
          okPerSecond: round(ok / result.duration),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          latencyMs: {
            p50: round(percentile(sorted, 50), 2),
            p90: round(percentile(sorted, 90), 2),
            p99: round(percentile(sorted, 99), 2),
            max: round(sorted[sorted.length - 1] ?? NaN, 2),
            mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1), 2),
          },
          perSecond: Array.from({ length: Math.floor(result.duration) }, (_, i) => perSecond[i] ?? 0), // full seconds only
          serverCpuUsPerRequest: cpuMs !== undefined && ok > 0 ? round((cpuMs * 1000) / ok, 0) : undefined,
          serverCpuCores: cpuMs !== undefined ? round(cpuMs / 1000 / result.duration, 2) : undefined,
        });
      },
    );
    instance.on('start', () => (started = Date.now()));
    instance.on('response', (_client: autocannon.Client, statusCode: number, _bytes: number, responseTime: number) => {
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
      if (statusCode !== opts.expect) return;
      latencies.push(responseTime);
      const sec = Math.floor((Date.now() - (started || Date.now())) / 1000);
      perSecond[sec] = (perSecond[sec] ?? 0) + 1;
    });
    onCleanup(() => instance.stop());
  });
}

function describe(r: LoadResult, what: string): string {
  const other = Object.entries(r.statusCounts).filter(([s]) => Number(s) < 200 || Number(s) > 299);
  return (
    `${r.label}: ${r.okPerSecond} ${what}/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms` +
    ` (${r.ok} in ${r.durationS} s, ${CONNECTIONS} connections; non-2xx ${r.non2xx}${other.length ? ` ${JSON.stringify(Object.fromEntries(other))}` : ''}, errors ${r.errors}` +
    `${r.serverCpuUsPerRequest !== undefined ? `; server CPU ${r.serverCpuUsPerRequest} µs/request, ${r.serverCpuCores} cores` : ''})`
  );
}

function tenantGuid(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function main(): Promise<void> {
  const redisUrl = required('REDIS_URL');
  required('AUTH_ISSUER');
  required('AUTH_METADATA_URL');
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const prefix = `b${randomBytes(4).toString('hex')}`;
  let queueReport: Awaited<ReturnType<typeof obliterateQueue>> | undefined;
  onCleanup(async () => {
    queueReport = await obliterateQueue(redisUrl, prefix);
  });

  // The API, as its own process. LOCAL_DIR points into .local/bench so its pid
  // file (run/api.pid) does not replace the one of an `npm start` API.
  const apiPort = await freePort();
  const benchLocal = path.join(localDir(), 'bench');
  // In production a process never makes its key-encryption key: the stack's is made here if this is the first run.
  const kekFile = path.join(localDir(), 'keys', 'kek.json');
  SecretBox.fromKeyFile(kekFile);
  const api: Child = spawnChild('bench-api', process.execPath, [...SERVICE_NODE_FLAGS, ...(process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean), path.join(REPO_ROOT, 'dist/apps/api/src/main.js')], {
    ...process.env,
    ...SERVICE_ENV,
    NODE_ENV: 'production',
    LOG_FORMAT: 'json',
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: prefix,
    LOCAL_NET_OCTET: '251',
    LOCAL_DIR: benchLocal,
    KEK_FILE: kekFile,
    CONSUL_BIN: process.env.CONSUL_BIN ?? path.join(localDir(), 'consul', 'usr', 'bin', 'consul'),
  });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${apiUrl}/readyz`, api);

  const helloPort = await freePort();
  const hello = spawnChild('bench-hello-fastify', process.execPath, [path.join(REPO_ROOT, 'dist/bench/hello-fastify.js')], {
    PATH: process.env.PATH,
    PORT: String(helloPort),
    MAX_LIFETIME_S: '600',
  });
  const helloUrl = `http://127.0.0.1:${helloPort}`;
  await waitForHttp(`${helloUrl}/`, hello);

  const write = (tenantId: string) => `Bearer ${mintToken({ tenantId, user: 'bench', roles: ['Clusters.ReadWrite'] })}`;
  const runTag = randomBytes(3).toString('hex');
  const createRequest = (authorizations: string[], namePrefix: string): autocannon.Request => {
    let n = 0;
    return {
      method: 'POST',
      path: '/v1/clusters',
      headers: { 'content-type': 'application/json', authorization: authorizations[0]! },
      setupRequest: (req) => {
        const i = n++;
        req.body = JSON.stringify({ name: `${namePrefix}-${runTag}-${i}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', region: 'westeurope', tier: 'standard' });
        if (authorizations.length > 1) req.headers = { 'content-type': 'application/json', authorization: authorizations[i % authorizations.length]! };
        return req;
      },
    };
  };

  // a. creates
  log(`api-throughput: POST /v1/clusters warm-up (${WARMUP_S} s, another tenant)`);
  await load('create warm-up', { url: apiUrl, durationS: WARMUP_S, expect: 202, requests: [createRequest([write(WARMUP_TENANT)], 'w')] });
  log(`api-throughput: POST /v1/clusters, one tenant, ${CONNECTIONS} connections, ${DURATION_S} s`);
  const createOne = await load('creates, one tenant', {
    url: apiUrl,
    durationS: DURATION_S,
    expect: 202,
    requests: [createRequest([write(TENANT)], 'c')],
    serverPid: api.proc.pid,
  });
  log(`  ${describe(createOne, 'accepted')}`);
  log(`  accepted per second: ${createOne.perSecond.join(' ')}`);
  const tenantTokens = Array.from({ length: TENANTS }, () => write(tenantGuid()));
  log(`api-throughput: POST /v1/clusters, spread over ${TENANTS} tenants, ${CONNECTIONS} connections, ${DURATION_S} s`);
  const createMany = await load(`creates, ${TENANTS} tenants`, {
    url: apiUrl,
    durationS: DURATION_S,
    expect: 202,
    requests: [createRequest(tenantTokens, 'm')],
    serverPid: api.proc.pid,
  });
  log(`  ${describe(createMany, 'accepted')}`);
  log(`  accepted per second: ${createMany.perSecond.join(' ')}`);

  // b. GET one cluster vs a bare Fastify hello-world
  const read = `Bearer ${mintToken({ tenantId: TENANT, user: 'bench-reader', roles: ['Clusters.Read'] })}`;
  const made = await fetch(`${apiUrl}/v1/clusters`, {
    method: 'POST',
    headers: { authorization: write(TENANT), 'content-type': 'application/json' },
    body: JSON.stringify({ name: `get-${runTag}`, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', region: 'westeurope', tier: 'standard' }),
  });
  const madeBody = (await made.json()) as { cluster?: { id: string } };
  if (made.status !== 202 || !madeBody.cluster) throw new Error(`could not create the cluster to read: ${made.status} ${JSON.stringify(madeBody)}`);
  const getPath = `/v1/clusters/${madeBody.cluster.id}`;
  const check = await fetch(apiUrl + getPath, { headers: { authorization: read } });
  if (check.status !== 200) throw new Error(`GET ${getPath} answered ${check.status}: ${await check.text()}`);
  await check.arrayBuffer().catch(() => undefined);

  const getReq: autocannon.Request = { method: 'GET', path: getPath, headers: { authorization: read } };
  log(`api-throughput: GET /v1/clusters/{id} warm-up (${WARMUP_S} s)`);
  await load('get warm-up', { url: apiUrl, durationS: WARMUP_S, expect: 200, requests: [getReq] });
  log(`api-throughput: GET /v1/clusters/{id}, ${CONNECTIONS} connections, ${DURATION_S} s`);
  const getApi = await load('GET /v1/clusters/{id}', { url: apiUrl, durationS: DURATION_S, expect: 200, requests: [getReq], serverPid: api.proc.pid });
  log(`  ${describe(getApi, 'req')}`);

  // Where the GET's time goes: the same API process without auth and DB (/healthz), with auth but no DB (/v1/tiers).
  const ladder: LoadResult[] = [];
  for (const [label, req] of [
    ['GET /healthz (Nest, no auth, no DB)', { method: 'GET', path: '/healthz' }],
    ['GET /v1/tiers (Nest + bearer auth, no DB)', { method: 'GET', path: '/v1/tiers', headers: { authorization: read } }],
  ] as const) {
    await load(`${label} warm-up`, { url: apiUrl, durationS: 1, expect: 200, requests: [req] });
    const r = await load(label, { url: apiUrl, durationS: LADDER_S, expect: 200, requests: [req], serverPid: api.proc.pid });
    log(`  ${describe(r, 'req')}`);
    ladder.push(r);
  }

  const helloReq: autocannon.Request = { method: 'GET', path: '/' };
  log(`api-throughput: bare Fastify hello-world warm-up (${WARMUP_S} s)`);
  await load('hello warm-up', { url: helloUrl, durationS: WARMUP_S, expect: 200, requests: [helloReq] });
  log(`api-throughput: bare Fastify hello-world, ${CONNECTIONS} connections, ${DURATION_S} s`);
  const getHello = await load('bare Fastify GET /', { url: helloUrl, durationS: DURATION_S, expect: 200, requests: [helloReq], serverPid: hello.proc.pid });
  log(`  ${describe(getHello, 'req')}`);

  // Stop the servers, then count what the creates queued and obliterate it.
  await hello.stop();
  await api.stop();

  // The hot read's database part alone, in this process, as many at once as the load's connections:
  // the repository's batched read against one prepared statement per read (the read before the
  // batching), alternated, each round's CPU of this process and wall time.
  const repoRead = await compareRepositoryReads(databaseUrl, TENANT, madeBody.cluster.id);
  queueReport = await obliterateQueue(redisUrl, prefix);

  const ratio = round(getApi.okPerSecond / getHello.okPerSecond, 3);
  const cpuRatio =
    getApi.serverCpuUsPerRequest && getHello.serverCpuUsPerRequest ? round(getApi.serverCpuUsPerRequest / getHello.serverCpuUsPerRequest, 1) : undefined;
  const createTargetMet = createOne.okPerSecond >= 500 && createOne.latencyMs.p99 < 100;
  const summary = [
    `${describe(createOne, 'accepted')}`,
    `  per second: ${createOne.perSecond.join(' ')}`,
    `${describe(createMany, 'accepted')}`,
    `  per second: ${createMany.perSecond.join(' ')}`,
    `target creates >= 500/s with p99 < 100 ms (one tenant): ${createTargetMet ? 'met' : 'MISSED'}`,
    `${describe(getApi, 'req')}`,
    `${describe(getHello, 'req')}`,
    `GET ratio api/hello: ${ratio} (req/s)${cpuRatio !== undefined ? `; server CPU per request api/hello: ${cpuRatio}x` : ''}`,
    `where the GET's server CPU goes (µs/request): bare Fastify ${getHello.serverCpuUsPerRequest}, ` +
      ladder.map((r) => `${r.label} ${r.serverCpuUsPerRequest}`).join(', ') +
      `, ${getApi.label} (auth + the read) ${getApi.serverCpuUsPerRequest}`,
    `target GET ratio 0.30: ${ratio >= 0.3 ? 'met' : 'MISSED'}`,
    `the read alone (this process, ${CONNECTIONS} at once, medians of ${repoRead.rounds} rounds of ${repoRead.reads}): one statement per read ${repoRead.single.cpuUs} µs CPU and ${repoRead.single.wallUs} µs wall per read; gathered (ReadBatch) ${repoRead.batched.cpuUs} µs CPU, ${repoRead.batched.wallUs} µs wall; ratio single / batched CPU ${round(repoRead.single.cpuUs / repoRead.batched.cpuUs, 2)}`,
  ];
  const file = writeResult('api-throughput', {
    settings: { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, tenants: TENANTS, apiProcess: 'node dist/apps/api/src/main.js (NODE_ENV=production, no worker)' },
    targets: { createsPerSecondAtLeast: 500, createsP99BelowMs: 100, met: createTargetMet },
    summary,
    creates: { oneTenant: createOne, manyTenants: createMany },
    get: { api: getApi, hello: getHello, ratioApiOverHello: ratio, serverCpuPerRequestApiOverHello: cpuRatio, ladder, repositoryRead: repoRead },
    queue: { prefix, ...queueReport },
  });
  log('');
  for (const line of summary) log(`api-throughput: ${line}`);
  log(`api-throughput: queue ${prefix}: ${JSON.stringify(queueReport?.jobs)} jobs obliterated, ${queueReport?.keysLeft} keys left`);
  log(`api-throughput: results in ${file}`);
}

/** The hot read's database part, batched (the repository) against one prepared statement per read, alternated. */
async function compareRepositoryReads(databaseUrl: string, tenantId: string, clusterId: string) {
  const db = createDb(databaseUrl, 10);
  try {
    const repo = new TenantClusterRepository(db);
    const statement = `SELECT ${VIEW_COLUMNS.map((c) => `c."${c}"`).join(', ')},
        ARRAY(SELECT s."address" FROM "ClusterServer" s WHERE s."clusterId" = c."id" ORDER BY s."index") AS "serverAddresses"
      FROM "Cluster" c WHERE c."id" = $1::uuid AND c."tenantId" = $2`;
    const single = async () => (await sqlQuery(db, statement, [clusterId, tenantId], 'bench-cluster-view-single'))[0];
    const batched = () => repo.findViewForTenant(tenantId, clusterId);
    const reads = 5_000;
    const round1 = async (read: () => Promise<unknown>) => {
      let left = reads;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
        while (left-- > 0) if (!(await read())) throw new Error('the cluster was not read');
      }));
      const cpu = process.cpuUsage(cpu0);
      return { cpuUs: (cpu.user + cpu.system) / reads, wallUs: ((performance.now() - t0) * 1000) / reads };
    };
    await round1(single);
    await round1(batched);
    const rounds = 3;
    const runs: { single: Array<{ cpuUs: number; wallUs: number }>; batched: Array<{ cpuUs: number; wallUs: number }> } = { single: [], batched: [] };
    for (let i = 0; i < rounds; i++) {
      runs.single.push(await round1(single));
      runs.batched.push(await round1(batched));
    }
    const median = (xs: Array<{ cpuUs: number; wallUs: number }>) => {
      const m = (k: 'cpuUs' | 'wallUs') => round(xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!, 1);
      return { cpuUs: m('cpuUs'), wallUs: m('wallUs') };
    };
    return { reads, rounds, single: median(runs.single), batched: median(runs.batched), runs };
  } finally {
    await closeDb(db);
  }
}

runBench('api-throughput', 180_000, main);
