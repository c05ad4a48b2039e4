import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { dropTestDatabase, testConfig } from '../../../../test/support/stack';
import { CLAIM_STATEMENT } from './operation.repository';
import { createDb, closeDb } from './prisma';
import { COUNT_UNBILLED_STATEMENT, UsageRepository } from './usage.repository';

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; 'Actual Rows': number; 'Actual Loops': number; 'Rows Removed by Filter'?: number; 'Rows Removed by Join Filter'?: number; Plans?: PlanNode[] }

/** Rows the plan read from a table: returned by its scans plus those their filters threw away, over all loops. */
function rowsRead(node: PlanNode, table: string): number {
  const own = node['Relation Name'] === table && /Scan/.test(node['Node Type'])
    ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops']
    : 0;
  return own + (node.Plans ?? []).reduce((n, p) => n + rowsRead(p, table), 0);
}

/** The largest number of rows any join threw away: a join filter doing a scan's work. */
function joinFilterDiscards(node: PlanNode): number {
  return Math.max(node['Rows Removed by Join Filter'] ?? 0, ...(node.Plans ?? []).map(joinFilterDiscards));
}

// The runner's batched start against real PostgreSQL in the state a wave
// creates: statistics taken while every operation had finished, then a
// thousand operations queued at once. The statement must reach its rows by
// key: the batch's cost, not the number of queued operations times the batch.
// Both halves are needed: the old statement with the new indexes, and this
// statement with the old indexes (led by state), read 32,000 and 30,060 rows here.
// Plans are checked as the worker runs them (prepared; after five runs a
// generic plan) and as a custom plan, each rolled back.
describe('the runner\'s claim reads by key', () => {
  const CLUSTERS = 1000;
  const BATCH = 30;
  let url: string;
  let client: pg.Client;
  let queued: { id: string; clusterId: string }[];

  before(async () => {
    url = (await testConfig({})).DATABASE_URL;
    client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`
      INSERT INTO "Cluster" ("id", "tenantId", "subscriptionId", "resourceGroup", "managedResourceGroup", "name", "region", "datacenter",
        "consulVersion", "tier", "serverCount", "state", "createdBy", "updatedAt")
      SELECT gen_random_uuid(), 't', 's', 'rg', 'mrg-' || i, 'c-' || i, 'westeurope', 'dc' || i, '1.8.7', 'development', 1, 'Running', 'test', now()
      FROM generate_series(1, ${CLUSTERS}) i`);
    // History: twenty finished operations per cluster, and the statistics of that moment.
    await client.query(`
      INSERT INTO "Operation" ("id", "tenantId", "clusterId", "kind", "state", "requestedBy", "updatedAt", "finishedAt")
      SELECT gen_random_uuid(), 't', c."id", 'snapshot', 'Succeeded', 'scheduler', now(), now() FROM "Cluster" c, generate_series(1, 20)`);
    await client.query('ANALYZE "Operation"');
    await client.query('ANALYZE "Cluster"');
    // A wave: one queued operation per cluster, all at once.
    const ids = Array.from({ length: CLUSTERS }, () => randomUUID());
    const r = await client.query<{ id: string; clusterId: string }>(`
      INSERT INTO "Operation" ("id", "tenantId", "clusterId", "kind", "state", "requestedBy", "updatedAt")
      SELECT w."id", 't', c."id", 'rotate-gossip-key', 'Queued', 'wave:test', now()
      FROM (SELECT "id", row_number() OVER (ORDER BY "name") AS n FROM "Cluster") c
      JOIN (SELECT u AS "id", row_number() OVER () AS n FROM unnest($1::uuid[]) u) w ON w.n = c.n
      RETURNING "id", "clusterId"`, [ids]);
    queued = r.rows;
  });
  after(async () => {
    await client?.end();
    await dropTestDatabase(url);
  });

  /** EXPLAIN ANALYZE of the prepared statement run once with these parameters, inside a transaction rolled back. */
  async function plan(statement: string, params: unknown[], generic: boolean): Promise<PlanNode> {
    const name = `s_${randomUUID().replace(/-/g, '')}`;
    await client.query(`SET plan_cache_mode = ${generic ? 'force_generic_plan' : 'force_custom_plan'}`);
    await client.query(`PREPARE ${name} AS ${statement}`);
    await client.query('BEGIN');
    try {
      const args = params.map((p) => client.escapeLiteral(Array.isArray(p) ? `{${p.join(',')}}` : String(p))).join(', ');
      const r = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name}(${args})`);
      return r.rows[0]!['QUERY PLAN'][0].Plan;
    } finally {
      await client.query('ROLLBACK');
      await client.query(`DEALLOCATE ${name}`);
      await client.query('RESET plan_cache_mode');
    }
  }

  for (const generic of [true, false]) {
    it(`the claim of ${BATCH} of ${CLUSTERS} queued operations reads about ${BATCH} operations (${generic ? 'generic' : 'custom'} plan)`, async () => {
      const batch = queued.slice(0, BATCH);
      const p = await plan(CLAIM_STATEMENT, [batch.map((o) => o.id), 'Running', ['Queued', 'Running'], 'plan-test', 30_000], generic);
      // Every one of them claimed: the plan is the one that did the work.
      assert.equal(p['Actual Rows'], BATCH);
      // Each operation is read by id twice (lookup, update), and each earlier-operation
      // check finds only that cluster's unfinished rows (its own): 3 per operation. The
      // join form read all 1,000 unfinished operations for every operation claimed.
      const read = rowsRead(p, 'Operation');
      assert.ok(read <= 4 * BATCH, `the claim read ${read} operation rows for ${BATCH} operations`);
      assert.ok(joinFilterDiscards(p) <= BATCH, `a join threw away ${joinFilterDiscards(p)} rows`);
    });
  }
});

// The worker's billing metrics count the usage records not billed yet on every
// tick. Nearly every record is billed (Accepted), and there is one per cluster,
// dimension and hour: the count must read the unbilled ones through the
// partial index, not every hour ever billed. Without the index, or with the
// old count over all states, it read all 20,009 rows here.
describe('the unbilled-usage count reads only unbilled records', () => {
  let url: string;
  let client: pg.Client;

  before(async () => {
    url = (await testConfig({})).DATABASE_URL;
    client = new pg.Client({ connectionString: url });
    await client.connect();
    const states = [...Array(20_000).fill('Accepted'), 'Pending', 'Pending', 'Pending', 'Failed', 'Failed', 'Late', 'Expired', 'Duplicate', 'Duplicate'];
    await client.query(`
      INSERT INTO "UsageRecord" ("id", "clusterId", "dimension", "hour", "minutes", "tenantId", "subscriptionId", "resourceGroup", "clusterName",
        "resourceId", "planId", "unitPriceMicros", "exportState")
      SELECT gen_random_uuid(), gen_random_uuid(), 'standard', timestamp '2026-01-01' + s.i * interval '1 hour', 60, 't', 's', 'rg', 'c',
        '/subscriptions/s', 'plan', 1000, s."state"
      FROM unnest($1::text[]) WITH ORDINALITY AS s("state", i)`, [states]);
    await client.query('ANALYZE "UsageRecord"');
  });
  after(async () => {
    await client?.end();
    await dropTestDatabase(url);
  });

  it('counts Pending, Failed, Late and Expired, and reads only those rows', async () => {
    const db = createDb(url, 1);
    try {
      assert.deepEqual(await new UsageRepository(db).countUnbilledByState(), { Pending: 3, Failed: 2, Late: 1, Expired: 1 });
    } finally {
      await closeDb(db);
    }
    const r = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${COUNT_UNBILLED_STATEMENT}`);
    const read = rowsRead(r.rows[0]!['QUERY PLAN'][0].Plan, 'UsageRecord');
    assert.ok(read <= 10, `the count read ${read} usage records for 7 unbilled ones`);
  });
});
