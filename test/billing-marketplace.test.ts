import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { closeDb, createDb, type Db } from '../libs/core/src';
import { UsageRepository } from '../libs/core/src/persistence/usage.repository';
import { MarketplaceUsageExporter, Meter, MeteringClient, UsageExportDriver, quantityHours } from '../libs/billing/src';
import { BillingTicker } from '../apps/worker/src/billing/billing.ticker';
import { startFakeMetering, usageKey, type FakeMetering } from './support/fake-metering';
import { SUBSCRIPTION, createTestDatabase, dropTestDatabase, startStack, testConfig, type TestStack } from './support/stack';

const MIN = 60_000;
const HOUR = 60 * MIN;
const TENANT = 'd0d0d0d0-0000-4000-8000-00000000000d';

/** A cluster row (no Consul behind it: billing reads rows only) with billing segments. */
async function billedCluster(db: Db, name: string, segments: Array<{ dimension: string; start: number; end: number | null }>, billingResourceId?: string): Promise<string> {
  const id = randomUUID();
  await db.cluster.create({
    data: {
      id, tenantId: TENANT, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-mkt', managedResourceGroup: `mrg-${name}`, name, region: 'westeurope', datacenter: 'dc1',
      consulVersion: '1.8.7', tier: 'standard', serverCount: 3, state: 'Running', createdBy: 'test', ...(billingResourceId ? { billingResourceId } : {}),
    },
  });
  for (const sg of segments) {
    await db.billingSegment.create({ data: { id: randomUUID(), clusterId: id, dimension: sg.dimension, startedAt: new Date(sg.start), endedAt: sg.end === null ? null : new Date(sg.end) } });
  }
  return id;
}

const keyOf = (r: { resourceId: string; dimension: string; hour: Date }) => usageKey(r.resourceId, r.dimension, r.hour.toISOString());

// Export to a metering server that speaks the marketplace API and misbehaves on purpose:
// 5xx, 429 with Retry-After, dropped connections, answers lost after the server accepted.
describe('marketplace export under faults', { timeout: 280_000 }, () => {
  let db: Db;
  let url: string;

  before(async () => {
    url = await createTestDatabase();
    db = createDb(url, 4);
  });
  after(async () => {
    await closeDb(db);
    await dropTestDatabase(url);
  });

  it('loses nothing and never reports an hour twice as new', async () => {
    const usage = new UsageRepository(db);
    const seen = { faults: 0, duplicates: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ start: fc.integer({ min: 1 * HOUR, max: 30 * HOUR }), length: fc.option(fc.integer({ min: 2 * MIN, max: 20 * HOUR }), { nil: null }), dim: fc.constantFrom('development_hours', 'standard_hours', 'plus_hours') }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.record({
          seed: fc.integer(),
          serverError: fc.double({ min: 0, max: 0.2, noNaN: true }),
          throttle: fc.double({ min: 0, max: 0.15, noNaN: true }),
          drop: fc.double({ min: 0, max: 0.15, noNaN: true }),
          timeoutAfterAccept: fc.double({ min: 0, max: 0.15, noNaN: true }),
          eventError: fc.double({ min: 0, max: 0.2, noNaN: true }),
        }),
        async (lives, rates) => {
          await db.$executeRawUnsafe('TRUNCATE "UsageRecord", "BillingSegment", "MeteringCursor", "AuditEvent", "Operation", "Cluster" CASCADE');
          let clock = Date.parse('2026-11-10T12:20:00Z');
          const fake = await startFakeMetering({ now: () => clock, faultRates: { ...rates, retryAfterSeconds: 0, hangMs: 2_000 }, shuffleResults: true, seed: rates.seed });
          try {
            for (const [i, l] of lives.entries()) {
              const start = clock - l.start;
              await billedCluster(db, `m${i}-${randomUUID().slice(0, 6)}`, [{ dimension: l.dim, start, end: l.length === null ? null : Math.min(clock, start + l.length) }]);
            }
            // Every run has hours to send and meets these first, whatever the random rates: an answer
            // lost after the marketplace accepted (the retry must come back Duplicate), a 503, a 429.
            await billedCluster(db, `always-${randomUUID().slice(0, 6)}`, [{ dimension: 'standard_hours', start: clock - 3 * HOUR, end: null }]);
            fake.inject({ kind: 'timeoutAfterAccept' }, { kind: 'status', status: 503 }, { kind: 'throttle', retryAfterSeconds: 0 });
            const client = new MeteringClient({ baseUrl: fake.url, credential: fake.credential(), timeoutMs: 250, maxAttempts: 3, backoff: { baseMs: 2, maxMs: 10 } });
            const exporter = new MarketplaceUsageExporter(client, { retryBaseMs: 1_000, retryMaxMs: 1_000 });
            const ticker = new BillingTicker(usage, new Meter(usage, { graceMs: 5 * MIN, planId: 'consul-payg' }), new UsageExportDriver(usage, exporter, { concurrency: 3, leaseMs: 60_000 }));
            // The worker ticks until nothing is pending; a transient failure waits a second of the test's clock.
            for (let round = 0; round < 200; round++) {
              await ticker.tick(new Date(clock));
              if ((await db.usageRecord.count({ where: { exportState: 'Pending' } })) === 0) break;
              clock += 1_000;
            }
            const records = await db.usageRecord.findMany();
            assert.ok(records.length > 0);
            const byState = records.reduce<Record<string, number>>((m, r) => ({ ...m, [r.exportState]: (m[r.exportState] ?? 0) + 1 }), {});
            assert.deepEqual(Object.keys(byState).filter((s) => !['Accepted', 'Duplicate', 'Late'].includes(s)), [], `every record settled: ${JSON.stringify(byState)}`);
            // Late exactly when the hour was already outside the 24 h window when it was first exported.
            for (const r of records) assert.equal(r.exportState === 'Late', r.hour.getTime() < Date.parse('2026-11-10T12:20:00Z') - 24 * HOUR, `${r.hour.toISOString()} ${r.exportState}`);
            const sent = records.filter((r) => r.exportState !== 'Late');
            const counts = fake.acceptedCounts();
            for (const [k, n] of counts) assert.equal(n, 1, `${k} accepted as new ${n} times`);
            assert.deepEqual([...counts.keys()].sort(), sent.map(keyOf).sort(), 'the marketplace holds exactly our billed hours');
            const theirs = new Map(fake.accepted().map((a) => [a.key, a]));
            for (const r of sent) {
              const t = theirs.get(keyOf(r))!;
              assert.equal(t.quantity, quantityHours(r.minutes));
              assert.equal(r.usageEventId, t.usageEventId, 'a Duplicate keeps the original usageEventId');
            }
            seen.faults += fake.counters.faults;
            seen.duplicates += fake.counters.duplicates;
          } finally {
            await fake.close();
          }
        },
      ),
      { numRuns: 12 },
    );
    // The runs did meet faults, and answers lost after acceptance came back as Duplicate.
    assert.ok(seen.faults > 0 && seen.duplicates > 0, JSON.stringify(seen));
  });

  it('two workers ticking at once: each hour is metered by one and sent once, as its records commit, never taken by the other', async () => {
    await db.$executeRawUnsafe('TRUNCATE "UsageRecord", "BillingSegment", "MeteringCursor", "AuditEvent", "Operation", "Cluster" CASCADE');
    const clock = Date.parse('2026-11-10T12:20:00Z');
    const usage = new UsageRepository(db);
    for (let i = 0; i < 40; i++) await billedCluster(db, `pair-${i}`, [{ dimension: 'standard_hours', start: clock - 20 * HOUR, end: null }]);
    const fake = await startFakeMetering({ now: () => clock });
    try {
      const worker = () => {
        const client = new MeteringClient({ baseUrl: fake.url, credential: fake.credential(), timeoutMs: 5_000, maxAttempts: 3, backoff: { baseMs: 2, maxMs: 10 } });
        // One batch per claim and two in flight: each worker claims many times while the other meters.
        const driver = new UsageExportDriver(usage, new MarketplaceUsageExporter(client), { concurrency: 2, leaseMs: 60_000, batchesPerClaim: 1, recordEvery: 25 });
        return new BillingTicker(usage, new Meter(usage, { graceMs: 5 * MIN, planId: 'consul-payg' }), driver);
      };
      const [a, b] = await Promise.all([worker().tick(new Date(clock)), worker().tick(new Date(clock))]);
      const records = await db.usageRecord.findMany();
      assert.equal(records.length, 40 * 20, 'every closed hour of every cluster');
      assert.equal(a.recordsWritten + b.recordsWritten, records.length, 'each hour metered by one of the two');
      assert.equal(a.export.handed + b.export.handed, records.length, 'each record handed over once across both');
      assert.deepEqual([...new Set(records.map((r) => r.exportState))], ['Accepted']);
      assert.equal(fake.counters.duplicates, 0, 'no event sent twice');
      for (const [k, n] of fake.acceptedCounts()) assert.equal(n, 1, `${k} accepted ${n} times`);
      assert.equal(records.filter((r) => r.leaseUntil !== null).length, 0, 'every lease let go');
    } finally {
      await fake.close();
    }
  });
});

// The worker's own ticker, wired from configuration (BILLING_EXPORTER=marketplace), and the SRE's reconciliation.
describe('marketplace exporter in the worker, and reconciliation', { timeout: 200_000 }, () => {
  let s: TestStack;
  let fake: FakeMetering;
  const clock = Date.parse('2026-11-12T09:30:00Z');

  before(async () => {
    fake = await startFakeMetering({ now: () => clock, knownResources: (r) => !r.startsWith('gone-') });
    const config = await testConfig({
      BILLING_EXPORTER: 'marketplace',
      MARKETPLACE_METERING_URL: fake.url,
      MARKETPLACE_AUTHORITY_HOST: fake.url,
      MARKETPLACE_TENANT_ID: fake.tenantId,
      MARKETPLACE_CLIENT_ID: fake.clientId,
      MARKETPLACE_CLIENT_SECRET: fake.clientSecret,
    });
    s = await startStack({ worker: true, config });
  });
  after(async () => {
    await s?.close();
    await fake?.close();
  });

  it('reports hours with the token from Entra ID, keeps late ones, flags rejected ones, and reconciles', async () => {
    const base = Date.parse('2026-11-12T00:00:00Z');
    const a = await billedCluster(s.db, 'alpha', [{ dimension: 'standard_hours', start: base + 2 * HOUR + 15 * MIN, end: base + 5 * HOUR }]);
    // Ran two days ago: its hours are past the marketplace's window by the time they are closed.
    const old = await billedCluster(s.db, 'old', [{ dimension: 'plus_hours', start: base - 48 * HOUR, end: base - 47 * HOUR }]);
    // The managed application is gone at the marketplace: its events are rejected for good.
    const gone = await billedCluster(s.db, 'gone', [{ dimension: 'development_hours', start: base + 3 * HOUR, end: base + 4 * HOUR }], `gone-${randomUUID()}`);
    // An hour the marketplace already holds, with another quantity (sent by someone else): a mismatch.
    const alphaResource = (await s.db.cluster.findUniqueOrThrow({ where: { id: a } })).billingResourceId;
    fake.injectAccepted([{ resourceId: alphaResource, dimension: 'standard_hours', effectiveStartTime: new Date(base + 4 * HOUR).toISOString(), quantity: 0.5, planId: s.config.BILLING_PLAN_ID }]);
    // And one we never sent: extra.
    const stranger = randomUUID();
    fake.injectAccepted([{ resourceId: stranger, dimension: 'plus_hours', effectiveStartTime: new Date(base + 6 * HOUR).toISOString(), quantity: 1, planId: s.config.BILLING_PLAN_ID }]);

    const ticker = s.worker!.get(BillingTicker);
    const result = await ticker.tick(new Date(clock));
    assert.ok(result.hoursClosed > 0);
    const rec = async (clusterId: string) => s.db.usageRecord.findMany({ where: { clusterId }, orderBy: { hour: 'asc' } });
    const alpha = await rec(a);
    assert.deepEqual(alpha.map((r) => [r.hour.toISOString().slice(11, 13), r.minutes, r.exportState]), [['02', 45, 'Accepted'], ['03', 60, 'Accepted'], ['04', 60, 'Duplicate']]);
    for (const r of alpha) assert.equal(r.usageEventId, fake.accepted().find((x) => x.key === keyOf(r))!.usageEventId);
    assert.deepEqual((await rec(old)).map((r) => [r.exportState, r.exportStatus]), [['Late', 'OutsideWindow']]);
    assert.deepEqual((await rec(gone)).map((r) => [r.exportState, r.exportStatus]), [['Failed', 'ResourceNotFound']]);
    assert.ok(fake.counters.tokensIssued >= 1, 'a token from the Entra ID endpoint');
    assert.equal(fake.counters.unauthorized, 0);

    // A record we hold as accepted that the marketplace never got: missing.
    await s.db.usageRecord.create({
      data: {
        id: randomUUID(), clusterId: a, dimension: 'plus_hours', hour: new Date(base + 7 * HOUR), minutes: 60, tenantId: TENANT, subscriptionId: SUBSCRIPTION,
        resourceGroup: 'rg-mkt', clusterName: 'alpha', resourceId: alphaResource, planId: s.config.BILLING_PLAN_ID, unitPriceMicros: 1_120_000n,
        exportState: 'Accepted', usageEventId: randomUUID(),
      },
    });

    const sre = s.sreToken();
    const rep = await s.request('GET', '/v1/admin/billing/reconciliation?from=2026-11-10&to=2026-11-13', { token: sre });
    assert.equal(rep.status, 200, JSON.stringify(rep.body));
    assert.deepEqual(rep.body.mismatched.map((m: { dimension: string; ours: number; theirs: number }) => [m.dimension, m.ours, m.theirs]), [['standard_hours', 2.75, 2.25]]);
    assert.deepEqual(rep.body.missing.map((m: { dimension: string; ours: number }) => [m.dimension, m.ours]), [['plus_hours', 1]]);
    assert.equal(rep.body.matched, 0);
    assert.deepEqual(rep.body.extra.map((m: { resourceId: string }) => m.resourceId), [stranger]);
    assert.deepEqual(rep.body.unbilled, { Late: 1, Failed: 1 });
    assert.equal((await s.request('GET', '/v1/admin/billing/reconciliation?from=2026-11-10&to=2026-11-13', { token: s.token(TENANT, ['Clusters.ReadWrite']) })).status, 403);
    const bad = await s.request('GET', '/v1/admin/billing/reconciliation?from=soon', { token: sre });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_from');
  });
});
