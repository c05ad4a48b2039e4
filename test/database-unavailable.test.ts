import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { isDatabaseUnavailable } from '../libs/core/src';
import { createBody, startStack, waitFor, WRITE, type TestStack } from './support/stack';

const TENANT = 'dbd00000-0000-4000-8000-000000000001';


// The API while its database cannot be reached: every request it cannot serve is
// a 503 in the error shape with Retry-After (never a 500), nothing is half-written,
// and it serves again by itself once the database is back. The outage is made the
// way a restart looks to the API: its connections are cut (57P01) and new ones are
// refused (53300) until the database takes connections again.
describe('the API while the database is unavailable', () => {
  let s: TestStack;
  let dbName: string;
  // The test's own connection, as the database's owner (who may cut its other connections),
  // opened before the outage: the connection limit does not end connections already open.
  let ctl: pg.Client;
  const reopen = () => ctl.query(`ALTER DATABASE ${dbName} CONNECTION LIMIT -1`);
  before(async () => {
    s = await startStack();
    dbName = new URL(s.config.DATABASE_URL).pathname.slice(1);
    ctl = new pg.Client({ connectionString: s.config.DATABASE_URL });
    await ctl.connect();
  });
  after(async () => {
    await reopen().catch(() => undefined);
    await ctl?.end();
    await s?.close();
  });

  it('answers 503 database_unavailable while it is down, then recovers by itself', async () => {
    const token = s.token(TENANT, WRITE);
    assert.equal((await s.request('GET', '/v1/clusters', { token })).status, 200);

    await ctl.query(`ALTER DATABASE ${dbName} CONNECTION LIMIT 0`);
    await ctl.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    try {
      // Reads and a write: each one a 503 with the API's error shape.
      for (const [method, path, body] of [
        ['GET', '/v1/clusters', undefined],
        ['GET', '/v1/clusters/0f0f0f0f-0000-4000-8000-000000000001', undefined],
        ['POST', '/v1/clusters', createBody({ name: 'while-down' })],
      ] as const) {
        const res = await s.request(method, path, { token, body });
        assert.equal(res.status, 503, `${method} ${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'database_unavailable');
        assert.match(res.body.error.message, /try again/);
        assert.equal(res.headers.get('retry-after'), '5');
      }
      const ready = await s.request('GET', '/readyz');
      assert.equal(ready.status, 503);
    } finally {
      await reopen();
    }

    // Back by itself: no restart of the API.
    await waitFor('GET /v1/clusters answers 200 again', () => s.request('GET', '/v1/clusters', { token }), (r) => r.status === 200, 30_000);
    // The refused create left nothing behind.
    const clusters = await s.db.cluster.count({ where: { tenantId: TENANT } });
    assert.equal(clusters, 0);
    const created = await s.request('POST', '/v1/clusters', { token, body: createBody({ name: 'after' }) });
    assert.equal(created.status, 202, JSON.stringify(created.body));
  });

  it('tells unreachable-database errors from other errors', () => {
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), true);
    assert.equal(isDatabaseUnavailable({ code: 'P1001', message: "Can't reach database server" }), true);
    assert.equal(isDatabaseUnavailable({ code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } } }), true);
    assert.equal(isDatabaseUnavailable(new Error('x', { cause: Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }) })), true);
    assert.equal(isDatabaseUnavailable({ code: 'P2028', message: 'Transaction API error: Unable to start a transaction in the given time.' }), true);
    assert.equal(isDatabaseUnavailable({ code: 'P2028', message: 'Transaction API error: A query cannot be executed on an expired transaction. The timeout for this transaction was 30000 ms, however 31200 ms passed since the start of the transaction.' }), true);
    assert.equal(isDatabaseUnavailable({ code: 'P2002', message: 'Unique constraint failed' }), false);
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' })), false);
    assert.equal(isDatabaseUnavailable(new Error('boom')), false);
    assert.equal(isDatabaseUnavailable(undefined), false);
  });

  // Prisma's default is 5 s. On a loaded machine a delete's few statements waited 15 s for the CPU and
  // expired (a 500 to a valid DELETE): a transaction of ours may take longer than 5 s and still commit.
  it('lets a transaction run past Prisma\'s default 5 s and commit', async () => {
    const slept = await s.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_sleep(5.5)`;
      return tx.$queryRaw<{ ok: number }[]>`SELECT 1 AS ok`;
    });
    assert.deepEqual(slept, [{ ok: 1 }]);
  });
});
