import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { LocalTarget } from '../../libs/provisioner/src';
import type { INestApplicationContext } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import IORedis from 'ioredis';
import { createApiApp } from '../../apps/api/src/app';
import { startWorker } from '../../apps/worker/src/worker';
import { ROLES, closeDb, createDb, loadConfig, type Config, type Db } from '../../libs/core/src';
import { mintToken } from '../../infra/local/token';
import { cloneTemplateDatabase, dropClonedDatabase } from './databases';

/**
 * One isolated product per test file: a database cloned from the migrated
 * template, a queue prefix and a loopback block of its own, so files run in parallel.
 */
export interface TestStack {
  config: Config;
  url: string;
  db: Db;
  api: NestFastifyApplication;
  worker?: INestApplicationContext;
  token(tenantId: string, roles: string[], user?: string): string;
  /** A Platform.SRE token from the operator's tenant (OPERATOR_TENANT), the only tenant whose SRE role counts. */
  sreToken(user?: string): string;
  request(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  startWorker(): Promise<INestApplicationContext>;
  close(): Promise<void>;
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests with npm test`);
  return v;
}

/** A distinct second octet per test file (127.<octet>.x.y), handed out by Redis so parallel files never collide. */
async function claimOctet(redisUrl: string): Promise<number> {
  const redis = new IORedis(redisUrl, { maxRetriesPerRequest: 3 });
  try {
    const n = await redis.incr('test:loopback-octet');
    return 100 + (n % 150);
  } finally {
    redis.disconnect();
  }
}

/** The local target on a config's cluster folder and Consul binary: what tests observe and clean up with. */
export function localTarget(config: Config): LocalTarget {
  return new LocalTarget({ clustersDir: path.join(config.LOCAL_DIR, 'clusters'), consulBinary: () => config.CONSUL_BIN });
}

export const createTestDatabase = () => cloneTemplateDatabase('test');
export const dropTestDatabase = (databaseUrl: string) => dropClonedDatabase(databaseUrl, 'test');

/** A scheduler period whose next boundary lies past any test run (the largest the configuration takes). */
const NEVER_IN_A_TEST = '2000000000';

export async function testConfig(overrides: Record<string, string> = {}): Promise<Config> {
  const redisUrl = required('REDIS_URL');
  return loadConfig(process.env, {
    DATABASE_URL: await createTestDatabase(),
    QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
    LOCAL_NET_OCTET: String(await claimOctet(redisUrl)),
    PORT: '0',
    WORKER_PORT: '0',
    UI_PROXY_PORT: '0',
    LOG_FORMAT: 'json',
    JOB_LOCK_MS: '3000',
    // Twice the job lock: on a loaded machine a statement can take a second or more, and a lease
    // that lapses while its runner waits on one makes a needless retry.
    OPERATION_LEASE_MS: '6000',
    RECONCILE_INTERVAL_MS: '1000',
    // Tests tick the schedulers themselves, on the clock they choose: a period of about 23 days (its
    // boundaries floored from the epoch), so a worker's own schedules do not fire in a test.
    SNAPSHOT_TICK_MS: NEVER_IN_A_TEST,
    HEALTH_TICK_MS: NEVER_IN_A_TEST,
    BILLING_TICK_MS: NEVER_IN_A_TEST,
    BILLING_EXPORT_DIR: path.join(os.tmpdir(), `usage-${randomBytes(4).toString('hex')}`),
    UPGRADE_TICK_MS: NEVER_IN_A_TEST,
    CERT_ROTATION_TICK_MS: NEVER_IN_A_TEST,
    OPERATOR_TENANT_ID: OPERATOR_TENANT,
    // Every answer of every test against its route's contract.
    API_VERIFY_ANSWERS: 'true',
    ...overrides,
  });
}

export async function startStack(opts: { worker?: boolean; config?: Config } = {}): Promise<TestStack> {
  const config = opts.config ?? (await testConfig());
  const api = await createApiApp(config);
  await api.listen(0, '127.0.0.1');
  const address = api.getHttpServer().address();
  if (!address || typeof address === 'string') throw new Error('the API is not listening on a TCP port');
  const url = `http://127.0.0.1:${address.port}`;
  const db = createDb(config.DATABASE_URL, 2);
  const workers: INestApplicationContext[] = [];
  const stack: TestStack = {
    config,
    url,
    db,
    api,
    token: (tenantId, roles, user = 'tester') => mintToken({ tenantId, user, roles }),
    sreToken: (user = 'sre') => mintToken({ tenantId: OPERATOR_TENANT, user, roles: [ROLES.sre] }),
    request: (method, path, o) => httpRequest(url, method, path, o),
    async startWorker() {
      const w = await startWorker(config);
      workers.push(w);
      stack.worker = w;
      return w;
    },
    async close() {
      for (const w of workers) await w.close();
      // No test leaves Consul processes behind, whatever it did or failed to do.
      const left = await db.cluster.findMany({ where: { state: { not: 'Deleted' } }, select: { id: true } });
      if (left.length) {
        const target = localTarget(config);
        for (const c of left) await target.stopAndRemove(c.id, { gracefulTimeoutMs: 5_000 });
        target.close();
      }
      await api.close();
      await closeDb(db);
      await dropTestDatabase(config.DATABASE_URL);
    },
  };
  if (opts.worker) await stack.startWorker();
  return stack;
}

/** One request to an API at `baseUrl`, with a bearer token and a JSON body; the answer parsed when it is JSON. */
export async function httpRequest(
  baseUrl: string, method: string, path: string, o: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  }
  const res = await fetch(baseUrl + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls a condition until it holds, or fails with the last value seen. Never a bare sleep. */
export async function waitFor<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The operator's own tenant in tests (OPERATOR_TENANT_ID): Platform.SRE counts only from it. */
export const OPERATOR_TENANT = '0d0d0d0d-0000-4000-8000-00000000d0d0';
export const TENANT_A = 'aaaaaaaa-0000-4000-8000-000000000001';
export const TENANT_B = 'bbbbbbbb-0000-4000-8000-000000000002';
export const SUBSCRIPTION = '5ub5c000-0000-4000-8000-000000000000'.replace('5ub5c', '0abcd');
export const WRITE = ['Clusters.ReadWrite'];
export const READ = ['Clusters.Read'];

export function createBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'orders', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-orders', region: 'westeurope', tier: 'development', ...over };
}
