import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ClusterRepository, TIERS, TenantClusterRepository, TenantOperationRepository, closeDb, createDb, dimensionForTier, type Cluster, type Db, type Operation } from '../libs/core/src';
import { UsageRepository } from '../libs/core/src/persistence/usage.repository';
import { FileUsageExporter, Meter, UsageExportDriver, splitIntoHours } from '../libs/billing/src';
import { BillingTicker } from '../apps/worker/src/billing/billing.ticker';
import { SUBSCRIPTION, createTestDatabase, dropTestDatabase } from './support/stack';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse('2026-11-01T00:00:00Z');
const HORIZON = 72 * HOUR;
const GRACE = 5 * MIN;
const TENANT = 'c0c0c0c0-0000-4000-8000-00000000000c';
const TIER_NAMES = Object.keys(TIERS) as (keyof typeof TIERS)[];

/** One cluster's life as the model sees it: when things happened, in ms after T0. */
interface Life {
  runAt: number | null;
  /** Tier changes while running and not being deleted: [at, tier]. */
  changes: Array<[number, keyof typeof TIERS]>;
  /** Delete requested at; optionally canceled at (billing resumes), then maybe requested again. */
  deletes: Array<{ at: number; cancelAt: number | null }>;
  tier0: keyof typeof TIERS;
}

type Event =
  | { at: number; kind: 'run' }
  | { at: number; kind: 'scale'; tier: keyof typeof TIERS }
  | { at: number; kind: 'delete' }
  | { at: number; kind: 'cancel' };

const offset = fc.integer({ min: 0, max: HORIZON - 1 });

/** Random lives: sorted instants (with seconds, not minute-aligned) turned into a consistent story. */
const lifeArb: fc.Arbitrary<Life> = fc
  .record({
    runs: fc.boolean(),
    tier0: fc.constantFrom(...TIER_NAMES),
    instants: fc.uniqueArray(offset, { minLength: 1, maxLength: 8 }),
    kinds: fc.array(fc.constantFrom('scale', 'scale', 'delete', 'cancel'), { minLength: 8, maxLength: 8 }),
    tiers: fc.array(fc.constantFrom(...TIER_NAMES), { minLength: 8, maxLength: 8 }),
  })
  .map(({ runs, tier0, instants, kinds, tiers }) => {
    const sorted = [...instants].sort((a, b) => a - b);
    const life: Life = { runAt: null, changes: [], deletes: [], tier0 };
    if (!runs) return life;
    life.runAt = sorted[0];
    let deleting = false;
    const deleted = false;
    for (let i = 1; i < sorted.length && !deleted; i++) {
      const k = kinds[i];
      if (k === 'scale' && !deleting) life.changes.push([sorted[i], tiers[i]]);
      else if (k === 'delete' && !deleting) {
        life.deletes.push({ at: sorted[i], cancelAt: null });
        deleting = true;
      } else if (k === 'cancel' && deleting) {
        life.deletes[life.deletes.length - 1].cancelAt = sorted[i];
        deleting = false;
      }
    }
    return life;
  });

function eventsOf(life: Life): Event[] {
  if (life.runAt === null) return [];
  const ev: Event[] = [{ at: life.runAt, kind: 'run' }];
  for (const [at, tier] of life.changes) ev.push({ at, kind: 'scale', tier });
  for (const d of life.deletes) {
    ev.push({ at: d.at, kind: 'delete' });
    if (d.cancelAt !== null) ev.push({ at: d.cancelAt, kind: 'cancel' });
  }
  return ev.sort((a, b) => a.at - b.at);
}

/** The model's billable intervals: running and not being deleted, on the tier of the moment. */
function modelSegments(life: Life): Array<{ dimension: string; start: number; end: number | null }> {
  const out: Array<{ dimension: string; start: number; end: number | null }> = [];
  let tier = life.tier0;
  let open: { dimension: string; start: number; end: number | null } | null = null;
  for (const e of eventsOf(life)) {
    const t = T0 + e.at;
    if (e.kind === 'run' || e.kind === 'cancel') {
      open = { dimension: dimensionForTier(tier), start: t, end: null };
      out.push(open);
    } else if (e.kind === 'scale') {
      if (e.tier !== tier && open) {
        open.end = t;
        open = { dimension: dimensionForTier(e.tier), start: t, end: null };
        out.push(open);
      }
      tier = e.tier;
    } else if (e.kind === 'delete' && open) {
      open.end = t;
      open = null;
    }
  }
  return out;
}

// Random cluster lives with tier changes, canceled deletes and a worker that is down for hours
// at a time, metered by the worker's billing ticker against real Postgres.
describe('metering properties', { timeout: 280_000 }, () => {
  let db: Db;
  let url: string;
  let dir: string;

  before(async () => {
    url = await createTestDatabase();
    db = createDb(url, 4);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'metering-'));
  });
  after(async () => {
    await closeDb(db);
    await dropTestDatabase(url);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('bills exactly the running minutes, each (cluster, dimension, hour) once, whatever the outages', async () => {
    const clusters = new ClusterRepository(db);
    const ops = new TenantOperationRepository(db);
    const tenantClusters = new TenantClusterRepository(db);
    const usage = new UsageRepository(db);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(lifeArb, { minLength: 1, maxLength: 4 }),
        // Worker ticks: gaps up to 30 h are outages; some ticks race a second worker.
        fc.array(fc.record({ at: fc.integer({ min: 0, max: HORIZON + 6 * HOUR }), twice: fc.boolean() }), { minLength: 1, maxLength: 12 }),
        async (lives, ticksIn) => {
          run += 1;
          await db.$executeRawUnsafe('TRUNCATE "UsageRecord", "BillingSegment", "MeteringCursor", "AuditEvent", "Operation", "Cluster" CASCADE');
          const exportDir = path.join(dir, `run-${run}`);
          // Two workers, each with its own exporter writing to the same folder.
          const ticker = () =>
            new BillingTicker(usage, new Meter(usage, { graceMs: GRACE, planId: 'plan' }), new UsageExportDriver(usage, new FileUsageExporter(exportDir), { concurrency: 2, leaseMs: 60_000 }));
          const workers = [ticker(), ticker()];

          // The clusters, created before anything happens.
          const rows: Array<{ cluster: Cluster; life: Life; deleteOp: Operation | null }> = [];
          for (const [i, life] of lives.entries()) {
            const { cluster } = await tenantClusters.createWithOperation({
              tenantId: TENANT, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-prop', name: `p${run}-${i}`, region: 'westeurope', datacenter: 'dc1',
              consulVersion: '1.8.7', tier: life.tier0, serverCount: TIERS[life.tier0].servers, publicEndpoint: false, createdBy: 'prop',
            });
            rows.push({ cluster, life, deleteOp: null });
          }
          // Cluster events and worker ticks in time order; the final tick closes everything before the horizon's end.
          const final = T0 + HORIZON + 6 * HOUR;
          type Step = { at: number; apply: () => Promise<void> };
          const steps: Step[] = [];
          for (const row of rows) {
            for (const e of eventsOf(row.life)) {
              const at = new Date(T0 + e.at);
              steps.push({
                at: at.getTime(),
                apply: async () => {
                  if (e.kind === 'run') assert.ok(await clusters.markRunningIfCreating(row.cluster.id, at));
                  else if (e.kind === 'scale') await clusters.completeScale(row.cluster.id, e.tier, TIERS[e.tier].servers, at);
                  else if (e.kind === 'delete') row.deleteOp = await tenantClusters.requestDelete((await clusters.get(row.cluster.id))!, 'prop', at);
                  else assert.ok(await ops.cancelQueued(row.deleteOp!, 'prop', at));
                },
              });
            }
          }
          for (const t of [...ticksIn, { at: final - T0, twice: true }]) {
            steps.push({
              at: T0 + t.at + 0.5, // a tick never shares an instant with a cluster event
              apply: async () => {
                const now = new Date(T0 + t.at);
                if (t.twice) await Promise.all(workers.map((w) => w.tick(now)));
                else await workers[0].tick(now);
              },
            });
          }
          steps.sort((a, b) => a.at - b.at);
          for (const s of steps) await s.apply();

          const closedThrough = (await usage.cursor())!.getTime();
          assert.equal(closedThrough, Math.floor((final - GRACE) / HOUR) * HOUR);
          const records = await db.usageRecord.findMany({ orderBy: [{ hour: 'asc' }, { dimension: 'asc' }] });
          for (const row of rows) {
            const segments = modelSegments(row.life);
            const mine = records.filter((r) => r.clusterId === row.cluster.id);
            // Exactly the running minutes: whole minutes from start to end of each billable stretch.
            const runningMinutes = segments.reduce((n, sg) => n + (Math.floor(Math.min(sg.end ?? Infinity, closedThrough) / MIN) - Math.floor(sg.start / MIN)), 0);
            assert.equal(mine.reduce((n, r) => n + r.minutes, 0), runningMinutes, 'billed minutes = running minutes');
            if (row.life.runAt === null) assert.equal(mine.length, 0, 'a cluster that never ran is not billed');
            // Hour by hour and dimension by dimension, the reference split.
            const expected = splitIntoHours(segments, closedThrough).map((p) => [new Date(p.hour).toISOString(), p.dimension, p.minutes]);
            assert.deepEqual(mine.map((r) => [r.hour.toISOString(), r.dimension, r.minutes]), expected);
            const perHour = new Map<number, number>();
            for (const r of mine) perHour.set(r.hour.getTime(), (perHour.get(r.hour.getTime()) ?? 0) + r.minutes);
            for (const m of perHour.values()) assert.ok(m > 0 && m <= 60, 'no hour holds more than 60 minutes');
          }
          // Every record exported, each key written once across the daily files.
          assert.equal(records.filter((r) => r.exportState !== 'Accepted').length, 0);
          const keys: string[] = [];
          for (const f of await fs.readdir(exportDir).catch(() => [] as string[])) {
            for (const line of (await fs.readFile(path.join(exportDir, f), 'utf8')).split('\n').filter(Boolean)) keys.push(JSON.parse(line).key);
          }
          assert.equal(keys.length, records.length, 'one line per usage record');
          assert.equal(new Set(keys).size, keys.length, 'no line written twice');
        },
      ),
      { numRuns: 40 },
    );
  });
});
