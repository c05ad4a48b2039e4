/**
 * Metering and exporting 100,000 cluster-hours: ~4,350 clusters billable for
 * the last 23 hours (the marketplace takes events of the last 24 h only),
 * closed into usage records by the worker's metering, then exported in
 * batches of 25 through the marketplace exporter to the fake metering API
 * running in a child process (its CPU is not ours).
 *
 * Figures, all from this one run:
 *   - metering alone: closing the 23 hours into usage records (one SQL statement per 24-hour chunk);
 *   - the worker's billing tick (BillingTicker: each hour metered, its records exported while the
 *     next is metered) with the real exporter → HTTP (wall time): the figure;
 *   - the same tick with an exporter that answers at once (our code and the database only);
 *   - bare HTTP: the same number of batches posted straight with MeteringClient, no database;
 *   - the share of time in our code versus waiting on HTTP.
 *
 *   node dist/bench/billing.bench.js   (npm run bench -- billing)
 *   env: BENCH_CLUSTER_HOURS (100000), BENCH_EXPORT_CONCURRENCY (8)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ClientSecretCredential } from '@azure/identity';
import { closeDb, createDb, type Db } from '../libs/core/src';
import { UsageRepository, type ExportResult, type UsageRecord } from '../libs/core/src/persistence/usage.repository';
import { MarketplaceUsageExporter, Meter, MeteringClient, UsageExportDriver, type UsageEvent, type UsageExporter } from '../libs/billing/src';
import { BillingTicker } from '../apps/worker/src/billing/billing.ticker';
import { createBenchDatabase, dropBenchDatabase, localDir, log, onCleanup, round, runBench, spawnChild, writeResult } from './support';

const CLUSTER_HOURS = Number(process.env.BENCH_CLUSTER_HOURS ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_EXPORT_CONCURRENCY ?? 8);
const HOUR = 3_600_000;
const NOW = Math.floor(Date.parse('2026-11-20T12:00:00Z') / HOUR) * HOUR + 10 * 60_000;
// 23 closed hours: the oldest of 24 would already be past the 24 h window (Late) at NOW.
const HOURS = 23;
const CLUSTERS = Math.ceil(CLUSTER_HOURS / HOURS);

async function seed(db: Db): Promise<void> {
  // Clusters billable from 24 h before the last closed hour, all still running.
  const start = new Date(Math.floor(NOW / HOUR) * HOUR - HOURS * HOUR);
  // (closeHours at NOW closes every hour before floor(NOW - grace).)
  await db.$executeRaw`
    INSERT INTO "Cluster" ("id", "tenantId", "subscriptionId", "resourceGroup", "managedResourceGroup", "name", "region", "datacenter",
      "consulVersion", "tier", "serverCount", "state", "createdBy", "updatedAt", "runningSince")
    SELECT gen_random_uuid(), 'bench-tenant', '0abcd000-0000-4000-8000-00000000b002', 'rg-bench-' || (g % 50), 'mrg-' || g, 'c' || g, 'westeurope', 'dc1',
      '1.8.7', 'standard', 3, 'Running', 'bench', now(), ${start}::timestamp
    FROM generate_series(1, ${CLUSTERS}) AS g`;
  await db.$executeRaw`
    INSERT INTO "BillingSegment" ("id", "clusterId", "dimension", "startedAt")
    SELECT gen_random_uuid(), "id", 'standard_hours', "runningSince" FROM "Cluster"`;
}

/** Answers every record at once: the driver and the database without any HTTP. */
class InstantExporter implements UsageExporter {
  readonly name = 'instant';
  readonly batchSize = 25;
  async export(records: UsageRecord[]): Promise<ExportResult[]> {
    return records.map((r) => ({ id: r.id, state: 'Accepted', status: 'Accepted', usageEventId: r.id }));
  }
}

async function startFake(): Promise<{ url: string; tenantId: string; clientId: string; clientSecret: string }> {
  const infoFile = path.join(os.tmpdir(), `metering-${process.pid}.json`);
  fs.rmSync(infoFile, { force: true });
  const child = spawnChild('bench-metering', process.execPath, [path.join(__dirname, 'metering-server.js')], { ...process.env, FAKE_NOW: String(NOW), INFO_FILE: infoFile });
  onCleanup(() => fs.rmSync(infoFile, { force: true }));
  const deadline = Date.now() + 20_000;
  while (!fs.existsSync(infoFile) || fs.statSync(infoFile).size === 0) {
    if (Date.now() > deadline || child.proc.exitCode !== null) throw new Error(`the fake metering server did not start (see ${child.logFile})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return JSON.parse(fs.readFileSync(infoFile, 'utf8'));
}

function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

async function main(): Promise<void> {
  const url = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(url));
  const db = createDb(url, CONCURRENCY + 2);
  onCleanup(() => closeDb(db));
  const usage = new UsageRepository(db);
  const fake = await startFake();
  const credential = new ClientSecretCredential(fake.tenantId, fake.clientId, fake.clientSecret, { authorityHost: fake.url, disableInstanceDiscovery: true });
  const newClient = () => new MeteringClient({ baseUrl: fake.url, credential });

  log(`seeding ${CLUSTERS} clusters × ${HOURS} h`);
  await seed(db);

  const meter = new Meter(usage, { graceMs: 5 * 60_000, planId: 'consul-payg' });
  const driver = (exporter: UsageExporter) => new UsageExportDriver(usage, exporter, { concurrency: CONCURRENCY, leaseMs: 600_000 });
  /** Back to before metering: no usage records, the cursor unset. */
  const unmeter = async () => {
    await db.$executeRaw`DELETE FROM "UsageRecord"`;
    await db.$executeRaw`DELETE FROM "MeteringCursor"`;
    await db.$executeRawUnsafe('VACUUM ANALYZE "UsageRecord"');
  };

  // 1. Metering alone: close the 23 hours (one transaction per 24 hours, nothing leased).
  let t = performance.now();
  const closed = await meter.closeHours(new Date(NOW));
  const meteringMs = performance.now() - t;
  log(`metering alone: ${closed.recordsWritten} records in ${round(meteringMs)} ms`);
  await unmeter();

  // 2. The worker's billing tick with an exporter that answers at once: our code and the database only.
  t = performance.now();
  const instant = await new BillingTicker(usage, meter, driver(new InstantExporter())).tick(new Date(NOW));
  const instantMs = performance.now() - t;
  log(`tick, no HTTP: ${instant.recordsWritten} records metered and ${instant.export.handed} exported in ${round(instantMs)} ms`);
  await unmeter();

  // 3. The real thing: the worker's billing tick (each hour metered, then exported while the next is metered)
  // with the marketplace exporter to the metering API.
  const client = newClient();
  await credential.getToken('20e940b3-4c77-4b0b-9a53-9e16a1b010a7/.default'); // token outside the timing, as in steady state
  const cpu0 = process.cpuUsage();
  t = performance.now();
  const tick = await new BillingTicker(usage, meter, driver(new MarketplaceUsageExporter(client))).tick(new Date(NOW));
  const exportMs = performance.now() - t;
  const exportCpuMs = cpuMs(cpu0);
  const stats = client.stats;
  const real = tick.export;
  log(`tick: ${tick.recordsWritten} records metered, ${real.handed} exported in ${round(exportMs)} ms, ${JSON.stringify(real.byState)}`);
  const accepted = (real.byState.Accepted ?? 0) + (real.byState.Duplicate ?? 0);
  if (tick.recordsWritten !== closed.recordsWritten || accepted !== closed.recordsWritten) throw new Error(`exported ${accepted} of ${tick.recordsWritten} (${closed.recordsWritten} metered alone): ${JSON.stringify(real.byState)}`);
  const left = await db.usageRecord.count({ where: { exportState: { not: 'Accepted' } } });
  if (left !== 0) throw new Error(`${left} records not Accepted after the tick`);

  // 4. Baseline: the same number of batches straight to the API, same concurrency, no database.
  const bare = newClient();
  const batches = Math.ceil(closed.recordsWritten / 25);
  let next = 0;
  t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (;;) {
        const b = next++;
        if (b >= batches) return;
        const events: UsageEvent[] = Array.from({ length: 25 }, (_, i) => ({
          resourceId: `bare-${b}-${i}`,
          quantity: 1, dimension: 'standard_hours', effectiveStartTime: new Date(Math.floor(NOW / HOUR) * HOUR - HOUR).toISOString(), planId: 'consul-payg',
        }));
        await bare.batchUsageEvent(events);
      }
    }),
  );
  const bareMs = performance.now() - t;
  log(`bare HTTP: ${batches} batches in ${round(bareMs)} ms`);

  const httpWallMs = stats.httpMs / CONCURRENCY;
  const summary = [
    `${closed.recordsWritten} cluster-hours metered and exported in one billing tick: ${round(exportMs / 1000, 2)} s (target < 5 s); metering alone ${round(meteringMs / 1000, 2)} s`,
    `export: ${round(closed.recordsWritten / (exportMs / 1000), 0)} records/s, ${stats.calls} calls, ${stats.retries} retries, concurrency ${CONCURRENCY}`,
    `bare HTTP of the same ${batches} batches ${round(bareMs / 1000, 2)} s: ratio bare/ours ${round(bareMs / exportMs, 2)} (target 0.8)`,
    `time in the tick: waiting on HTTP ~${round((100 * httpWallMs) / exportMs, 0)} % (sum of request times / concurrency), our process on CPU ${round((100 * exportCpuMs) / exportMs, 0)} % of wall; the tick with an exporter answering at once (metering, claims, answers stored: no HTTP) ${round(instantMs / 1000, 2)} s`,
  ];
  for (const line of summary) log(line);
  writeResult('billing', {
    summary,
    clusterHours: closed.recordsWritten,
    clusters: CLUSTERS,
    concurrency: CONCURRENCY,
    meteringMs: round(meteringMs),
    exportMs: round(exportMs),
    exportCpuMs: round(exportCpuMs),
    instantExportMs: round(instantMs),
    bareHttpMs: round(bareMs),
    client: stats,
    localDir: localDir(),
  });
}

runBench('billing', 280_000, main);
