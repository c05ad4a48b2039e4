import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ClusterState, closeDb, createDb, isUniqueViolation, type Db } from '../libs/core/src';
import { ClusterRepository } from '../libs/core/src/persistence/cluster.repository';
import type { NewCluster } from '../libs/core/src/persistence/new-cluster';
import { TenantClusterRepository } from '../libs/core/src/persistence/tenant-cluster.repository';
import { UsageRepository } from '../libs/core/src/persistence/usage.repository';
import { MarketplaceUsageExporter, Meter, MeteringClient, UsageExportDriver } from '../libs/billing/src';
import { BillingTicker } from '../apps/worker/src/billing/billing.ticker';
import { startFakeMetering, type FakeMetering } from './support/fake-metering';
import { SUBSCRIPTION, TENANT_A, TENANT_B, WRITE, createBody, createTestDatabase, dropTestDatabase, startStack, type TestStack } from './support/stack';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = Date.parse('2026-11-20T12:20:00Z');

// Issue 11 item 3: usage is metered against an identity the caller cannot type or collide with.
// Before it, the billed resource was /subscriptions/{sub}/resourceGroups/{rg}/.../applications/{name}
// built from the request, so these scenarios sent one hour twice under one resource and the
// marketplace kept only the first (Duplicate).
describe('the billed resource identity', { timeout: 200_000 }, () => {
  let db: Db;
  let url: string;
  let fake: FakeMetering;
  let clusters: ClusterRepository;
  let tenantClusters: TenantClusterRepository;
  let usage: UsageRepository;

  before(async () => {
    url = await createTestDatabase();
    db = createDb(url, 4);
    clusters = new ClusterRepository(db);
    tenantClusters = new TenantClusterRepository(db);
    usage = new UsageRepository(db);
  });
  after(async () => {
    await fake?.close();
    await closeDb(db);
    await dropTestDatabase(url);
  });

  const spec = (tenantId: string, name: string): NewCluster => ({
    tenantId, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-same', name, region: 'westeurope', datacenter: 'dc1',
    consulVersion: '1.8.7', tier: 'standard', serverCount: 3, publicEndpoint: false, createdBy: 'test',
  });
  /** A cluster made by the API's own write path, that ran from `start` to `end` (ms; null: still running). */
  const ran = async (tenantId: string, name: string, start: number, end: number | null) => {
    const { cluster } = await tenantClusters.createWithOperation(spec(tenantId, name));
    await db.billingSegment.create({ data: { id: randomUUID(), clusterId: cluster.id, dimension: 'standard_hours', startedAt: new Date(start), endedAt: end === null ? null : new Date(end) } });
    if (end !== null) await clusters.setState(cluster.id, ClusterState.Deleted);
    return cluster.id;
  };
  const exportAll = async (at: number) => {
    const client = new MeteringClient({ baseUrl: fake.url, credential: fake.credential(), timeoutMs: 5_000, maxAttempts: 3, backoff: { baseMs: 2, maxMs: 10 } });
    const ticker = new BillingTicker(usage, new Meter(usage, { graceMs: 5 * MIN, planId: 'consul-payg' }), new UsageExportDriver(usage, new MarketplaceUsageExporter(client), { concurrency: 2, leaseMs: 60_000 }));
    await ticker.tick(new Date(at));
  };

  it('two tenants with the same subscription, group and name, and a cluster deleted and made again within the hour, each bill their own hour', async () => {
    fake = await startFakeMetering({ now: () => NOW });
    const h = Date.parse('2026-11-20T10:00:00Z');
    const a = await ran(TENANT_A, 'alpha', h + 5 * MIN, h + 50 * MIN);
    // Tenant B types exactly tenant A's subscription, resource group and name.
    const b = await ran(TENANT_B, 'alpha', h + 10 * MIN, h + 40 * MIN);
    // Tenant A deletes "beta" at 10:20 and makes "beta" again at 10:30.
    const first = await ran(TENANT_A, 'beta', h, h + 20 * MIN);
    const again = await ran(TENANT_A, 'beta', h + 30 * MIN, null);
    await exportAll(NOW);

    const rows = await db.usageRecord.findMany({ where: { hour: new Date(h) }, orderBy: { clusterId: 'asc' } });
    const byCluster = new Map(rows.map((r) => [r.clusterId, r]));
    assert.deepEqual([a, b, first, again].map((id) => [byCluster.get(id)?.minutes, byCluster.get(id)?.exportState]), [[45, 'Accepted'], [30, 'Accepted'], [20, 'Accepted'], [30, 'Accepted']]);
    const ids = await db.cluster.findMany({ where: { id: { in: [a, b, first, again] } }, select: { id: true, billingResourceId: true } });
    assert.equal(new Set(ids.map((c) => c.billingResourceId)).size, 4, 'four clusters, four billed resources');
    for (const c of ids) assert.equal(byCluster.get(c.id)!.resourceId, c.billingResourceId);
    // The marketplace took each as new, under its own resource: 125 minutes billed, none folded into another.
    assert.equal(fake.counters.duplicates, 0);
    const theirs = fake.accepted().filter((e) => e.effectiveStartTime === new Date(h).toISOString());
    assert.deepEqual(theirs.map((e) => e.resource).sort(), ids.map((c) => c.billingResourceId).sort());
    assert.equal(Math.round(theirs.reduce((n, e) => n + e.quantity, 0) * 60), 125);
  });

  it('a cluster bought through the marketplace is metered under the plan it was bought with', async () => {
    const h = Date.parse('2026-11-20T11:00:00Z');
    const { cluster: bought } = await tenantClusters.createWithOperation({ ...spec(TENANT_A, 'bought'), tier: 'plus', serverCount: 5, billingResourceId: randomUUID(), billingPlanId: 'plus' });
    await db.billingSegment.create({ data: { id: randomUUID(), clusterId: bought.id, dimension: 'plus_hours', startedAt: new Date(h), endedAt: new Date(h + 30 * MIN) } });
    const own = await ran(TENANT_A, 'own', h, h + 30 * MIN);
    const ownResource = (await db.cluster.findUniqueOrThrow({ where: { id: own } })).billingResourceId;
    // The marketplace knows each resource with its plan, and each plan's dimensions.
    await fake?.close();
    fake = await startFakeMetering({
      now: () => NOW,
      plans: { plus: ['plus_hours'], 'consul-payg': ['development_hours', 'standard_hours', 'plus_hours'] },
      purchasedPlan: (r) => (r === bought.billingResourceId ? 'plus' : r === ownResource ? 'consul-payg' : undefined),
    });
    // The first test's metering closed these hours already: open them again (records are unique, nothing is billed twice).
    await db.meteringCursor.deleteMany();
    await exportAll(NOW);
    const rows = await db.usageRecord.findMany({ where: { clusterId: { in: [bought.id, own] }, hour: new Date(h) } });
    const of = (id: string) => rows.find((r) => r.clusterId === id)!;
    assert.deepEqual([of(bought.id).planId, of(bought.id).exportState], ['plus', 'Accepted'], `${of(bought.id).exportState}: ${of(bought.id).exportError ?? ''}`);
    assert.deepEqual([of(own).planId, of(own).exportState], ['consul-payg', 'Accepted']);
  });

  it('the database refuses a second cluster on one billed (resource, dimension, hour), and a second cluster on one billing id', async () => {
    const [one, two] = await db.cluster.findMany({ take: 2, orderBy: { createdAt: 'asc' } });
    const rec = await db.usageRecord.findFirstOrThrow({ where: { clusterId: one.id } });
    const copy = { ...rec, id: randomUUID(), clusterId: two.id };
    await assert.rejects(db.usageRecord.create({ data: copy }), (e: unknown) => isUniqueViolation(e));
    await assert.rejects(db.cluster.update({ where: { id: two.id }, data: { billingResourceId: one.billingResourceId } }), (e: unknown) => isUniqueViolation(e));
  });

  it('whatever clusters come and go under colliding names, no (resource, dimension, hour) is billed twice and no minute is lost', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            tenant: fc.constantFrom(TENANT_A, TENANT_B),
            name: fc.constantFrom('x', 'y'),
            start: fc.integer({ min: 0, max: 5 * HOUR }),
            length: fc.integer({ min: MIN, max: 3 * HOUR }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        async (lives) => {
          await db.$executeRawUnsafe('TRUNCATE "UsageRecord", "BillingSegment", "MeteringCursor", "AuditEvent", "Operation", "Cluster" CASCADE');
          await fake.close();
          fake = await startFakeMetering({ now: () => NOW });
          const base = Date.parse('2026-11-20T04:00:00Z');
          let expectedMinutes = 0;
          // Lives one after another per (tenant, name), as the live-name rule allows; different ones overlap freely.
          const free = new Map<string, number>();
          for (const l of lives) {
            const k = `${l.tenant}/${l.name}`;
            const start = Math.max(base + l.start, free.get(k) ?? 0);
            // Metering at NOW closes the hours before 12:00.
            const end = Math.min(Math.floor((start + l.length) / MIN) * MIN, Date.parse('2026-11-20T12:00:00Z'));
            const s0 = Math.floor(start / MIN) * MIN;
            if (end <= s0) continue;
            free.set(k, end);
            await ran(l.tenant, l.name, s0, end);
            expectedMinutes += (end - s0) / MIN;
          }
          await exportAll(NOW);
          const records = await db.usageRecord.findMany();
          assert.equal(records.reduce((n, r) => n + r.minutes, 0), expectedMinutes);
          assert.ok(records.every((r) => r.exportState === 'Accepted'), JSON.stringify(records.map((r) => r.exportState)));
          assert.equal(fake.counters.duplicates, 0);
          for (const [k, n] of fake.acceptedCounts()) assert.equal(n, 1, `${k} accepted ${n} times`);
          assert.equal(fake.accepted().length, records.length);
        },
      ),
      { numRuns: 10 },
    );
  });
});

describe('a caller cannot pick the billed resource', { timeout: 60_000 }, () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => s?.close());

  it('refuses billingResourceId in a create request and writes nothing', async () => {
    const token = s.token(TENANT_A, WRITE);
    const res = await s.request('POST', '/v1/clusters', { token, body: createBody({ name: 'chooser', billingResourceId: randomUUID() }) });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(JSON.stringify(res.body), /billingResourceId/);
    assert.equal(await s.db.cluster.count(), 0);
    const ok = await s.request('POST', '/v1/clusters', { token, body: createBody({ name: 'chooser' }) });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const row = await s.db.cluster.findUniqueOrThrow({ where: { id: ok.body.cluster.id } });
    assert.notEqual(row.billingResourceId, row.id);
    assert.match(row.billingResourceId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
