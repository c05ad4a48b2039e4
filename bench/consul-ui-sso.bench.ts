/**
 * The Consul UI single sign-on on a real development-tier cluster, with the API (and its UI
 * proxy) and the worker in this process and the local issuer of bench.sh:
 *
 *   open-to-first-v1  *Open Consul UI* (GET /sso/clusters/{id} with a console session) →
 *                     the proxy's /_sso/start (the browser's binding cookie) → the console again
 *                     (a code bound to it) → the proxy's /_sso/callback (code redeemed, the user's
 *                     Consul token made) →
 *                     the UI's first API call, GET /v1/catalog/datacenters, answered through the proxy
 *   proxied vs direct GET /v1/catalog/nodes through the proxy (UI session cookie) and straight to
 *                     the server over HTTPS with the same user's token, alternated, both on
 *                     kept-alive connections; the figure is the difference of the medians
 *                     (target: the proxy adds under 2 ms at p50)
 *
 * The proxy reads its sessions' checks again every CONSOLE_UI_RECHECK_MS (default 5 s), as in
 * production; the latency loop includes those reads.
 *
 *   node dist/bench/consul-ui-sso.bench.js      (npm run bench -- consul-ui-sso)
 *   env: BENCH_SSO_OPENS (20), BENCH_SSO_REQUESTS (2000)
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { randomBytes } from 'node:crypto';
import { createApiApp } from '../apps/api/src/app';
import { ConsulUiProxy } from '../apps/api/src/consul-ui/ui-proxy';
import { ClusterRepository, type Config } from '../libs/core/src';
import { signIn } from '../test/support/console';
import {
  BENCH_TENANT, benchConfig, createBenchDatabase, createClusterThroughWorker, deleteClusterThroughWorker, dropBenchDatabase, log, onCleanup, round,
  listenApi, percentile, runBench, startBenchWorker, summarize, writeResult,
} from './support';

const OPENS = Number(process.env.BENCH_SSO_OPENS ?? 20);
const REQUESTS = Number(process.env.BENCH_SSO_REQUESTS ?? 2000);

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

function send(agent: http.Agent | https.Agent, mod: typeof http | typeof https, o: https.RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = (mod.request as typeof https.request)({ ...o, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const config: Config = benchConfig(databaseUrl, 251, { HEALTH_TICK_MS: '3600000', SNAPSHOT_TICK_MS: '3600000' });
  const { db, queue, target } = await startBenchWorker(config);
  const api = await createApiApp(config);
  const url = await listenApi(api);
  const proxyPort = api.get(ConsulUiProxy).port;

  log('consul-ui-sso: creating a development cluster');
  const clusterId = await createClusterThroughWorker(db, queue, config, `bench-sso-${randomBytes(3).toString('hex')}`, 'development');
  onCleanup(async () => {
    await deleteClusterThroughWorker(db, queue, config, clusterId).catch(async () => {
      if ((await target.observe(clusterId)).length > 0) await target.deleteAll(clusterId);
    });
  });
  const cluster = (await new ClusterRepository(db).get(clusterId))!;
  const serverAddress = cluster.servers[0]!.address;
  const who = await signIn(url, { user: 'bench@contoso.example', tenantId: BENCH_TENANT, roles: ['Clusters.Read'] });

  const proxyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const directAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: cluster.caCertPem! });
  onCleanup(() => {
    proxyAgent.destroy();
    directAgent.destroy();
  });
  const host = `${clusterId}.ui.localhost:${proxyPort}`;
  const viaProxy = (path: string, cookie?: string) => send(proxyAgent, http, { host: '127.0.0.1', port: proxyPort, path, headers: { host, ...(cookie ? { cookie } : {}) } });

  // Open Consul UI → the first /v1 answer, as the browser goes.
  const opens: number[] = [];
  let cookie = '';
  for (let i = 0; i < OPENS; i++) {
    const t0 = process.hrtime.bigint();
    const open = await fetch(`${url}/sso/clusters/${clusterId}`, { redirect: 'manual', headers: { cookie: who.cookie } });
    await open.arrayBuffer();
    const start = await viaProxy(new URL(open.headers.get('location')!).pathname);
    const binding = /^(__Host-mc_ui_login=[^;]+)/.exec(String(start.headers['set-cookie']?.[0]))![1]!;
    const sso = await fetch(String(start.headers.location), { redirect: 'manual', headers: { cookie: who.cookie } });
    await sso.arrayBuffer();
    const code = new URL(sso.headers.get('location')!).searchParams.get('code');
    const cb = await viaProxy(`/_sso/callback?code=${code}`, binding);
    if (cb.status !== 302) throw new Error(`callback answered ${cb.status}: ${cb.body}`);
    cookie = /^(__Host-mc_ui_session=[^;]+)/.exec(String(cb.headers['set-cookie']?.[0]))![1]!;
    const first = await viaProxy('/v1/catalog/datacenters', cookie);
    if (first.status !== 200) throw new Error(`the first /v1 answer: ${first.status} ${first.body}`);
    opens.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }

  // Proxied against direct, alternated, the same user's token.
  const self = JSON.parse((await viaProxy('/v1/acl/token/self', cookie)).body) as { SecretID: string };
  const direct = () => send(directAgent, https, { host: serverAddress, port: 8501, path: '/v1/catalog/nodes', headers: { 'x-consul-token': self.SecretID } });
  const proxied = () => viaProxy('/v1/catalog/nodes', cookie);
  for (let i = 0; i < 50; i++) {
    await direct();
    await proxied();
  }
  const d: number[] = [];
  const p: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    for (const [fn, into] of (i % 2 === 0 ? [[direct, d], [proxied, p]] : [[proxied, p], [direct, d]]) as [() => Promise<Answer>, number[]][]) {
      const t = process.hrtime.bigint();
      const r = await fn();
      into.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 200) throw new Error(`GET /v1/catalog/nodes answered ${r.status}`);
    }
  }
  const stats = (v: number[]) => {
    const sorted = [...v].sort((a, b) => a - b);
    return { ...summarize(v), p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
  };
  const open = stats(opens);
  const ds = stats(d);
  const ps = stats(p);
  const added = round(ps.p50 - ds.p50, 3);
  const summary = [
    `open-to-first-v1: p50 ${round(open.p50)} ms, p95 ${round(open.p95)} ms (${OPENS} opens: code, token made, first /v1 answer)`,
    `GET /v1/catalog/nodes: proxied p50 ${round(ps.p50, 3)} ms, direct p50 ${round(ds.p50, 3)} ms: the proxy adds ${added} ms at p50 (target < 2 ms; ratio ${round(ps.p50 / ds.p50, 2)}); p95 ${round(ps.p95, 3)} vs ${round(ds.p95, 3)} ms`,
  ];
  for (const line of summary) log(line);
  writeResult('consul-ui-sso', { summary, openToFirstV1Ms: open, proxiedMs: ps, directMs: ds, addedAtP50Ms: added, requests: REQUESTS, opens: OPENS, recheckMs: config.CONSOLE_UI_RECHECK_MS });
}

runBench('consul-ui-sso', 270_000, main);
