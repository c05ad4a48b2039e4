/**
 * Snapshot and restore time and throughput against snapshot size, on a real
 * development-tier (1 server) cluster, through the real worker (in this process):
 * the snapshot operation (Consul's snapshot API, sha256, upload to Azurite in
 * blocks with their MD5s, the row marked Available) and the restore operation
 * (download, checksum check, `PUT /v1/snapshot`, wait for the leader and the
 * ACL system), beside baselines measured in the same run on the same data:
 *
 *   snapshot baseline = raw `GET /v1/snapshot` streamed to nowhere
 *                     + raw upload of the same bytes (`BlockBlobClient.uploadData`, the SDK's defaults)
 *   restore baseline  = raw download of those bytes (`downloadToBuffer`)
 *                     + raw `PUT /v1/snapshot` of them
 *
 * The KV store is filled to each size in turn with incompressible values
 * (random bytes, 5 900 per key, 64 keys per `PUT /v1/txn`), so the gzipped
 * snapshot is about as large as the data. Restores put back the snapshot just
 * taken, so the size stays.
 *
 * To show where the snapshot operation's time goes, its parts are also timed
 * one by one outside the operation: Consul's API into memory, sealing (a fresh
 * data key, chunked AES-256-GCM), the sha256, our blob store's put, and opening
 * the operation's sealed snapshot (the raw PUT baseline restores its plaintext).
 *
 *   node dist/bench/snapshots.bench.js      (npm run bench -- snapshots)
 *   env: BENCH_RUNS (3), BENCH_SNAPSHOT_SIZES_MB (1,10,50)
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import https from 'node:https';
import { BlobServiceClient } from '@azure/storage-blob';
import {
  ClusterRepository, OperationKind, SnapshotKind, SnapshotRepository, TenantSnapshotRepository, enqueueOperation,
  type Config, type OperationStep,
  SecretBox, openBuffer, sealBuffer, snapshotBinding,
} from '../libs/core/src';
import { BlobSnapshotStore, CONSUL_SERVER_PORTS, ConsulHttpClient, type LocalClusterSecrets, type LocalClusterSpec } from '../libs/provisioner/src';
import {
  BENCH_TENANT, benchConfig, createBenchDatabase, createClusterThroughWorker, deleteClusterThroughWorker, dropBenchDatabase, log, onCleanup, round,
  runBench, summarize, waitForOperation, writeResult, startBenchWorker,
} from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES_MB = (process.env.BENCH_SNAPSHOT_SIZES_MB ?? '1,10,50').split(',').map(Number);
const VALUE_BYTES = 5_900; // 64 of them, base64 in JSON, stay under Consul's 512 KiB txn request limit
const OPS_PER_TXN = 64; // Consul 1.8's limit per transaction
const MB = 1024 * 1024;

interface Run {
  sizeMb: number;
  run: number;
  bytes: number;
  raw: { getMs: number; uploadMs: number; downloadMs: number; restoreMs: number };
  snapshotOp: { totalMs: number; takeStepMs: number; retentionStepMs: number };
  parts: { consulMs: number; sealMs: number; sha256Ms: number; storePutMs: number; openMs: number };
  restoreOp: { totalMs: number; steps: Record<string, number> };
}

async function main(): Promise<void> {
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const container = `bench-snapshots-${randomBytes(4).toString('hex')}`;
  const config: Config = benchConfig(databaseUrl, 252, { SNAPSHOT_CONTAINER: container, HEALTH_TICK_MS: '3600000', SNAPSHOT_TICK_MS: '3600000' });
  const containerClient = BlobServiceClient.fromConnectionString(config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(container);
  onCleanup(async () => {
    await containerClient.deleteIfExists();
  });
  const { db, queue, target } = await startBenchWorker(config);
  const store = new BlobSnapshotStore({ connectionString: config.AZURE_STORAGE_CONNECTION_STRING, container });
  const box = SecretBox.fromKeyFile(config.KEK_FILE);
  await store.ensureContainer();

  log('snapshots: creating a development cluster');
  const clusterId = await createClusterThroughWorker(db, queue, config, `bench-snap-${randomBytes(3).toString('hex')}`, 'development');
  onCleanup(async () => {
    if ((await target.observe(clusterId)).length > 0) await target.deleteAll(clusterId);
  });
  const clusters = new ClusterRepository(db);
  const opened = await target.open((await clusters.get(clusterId))!);
  const spec: LocalClusterSpec = opened.spec;
  const secrets: LocalClusterSecrets = opened.secrets;
  const address = spec.servers[0]!.address;
  const client = new ConsulHttpClient(secrets.pki.caCertPem);
  onCleanup(() => client.close());
  const agent = new https.Agent({ ca: secrets.pki.caCertPem, keepAlive: true });
  onCleanup(() => agent.destroy());
  const rows = new TenantSnapshotRepository(db);

  let keys = 0;
  let loaded = 0;
  const results: Run[] = [];
  const loads: { sizeMb: number; ms: number; keys: number }[] = [];
  for (const sizeMb of SIZES_MB) {
    // Fill the KV store up to sizeMb of values.
    const l0 = performance.now();
    const want = sizeMb * MB;
    while (loaded < want) {
      const n = Math.min(OPS_PER_TXN, Math.ceil((want - loaded) / VALUE_BYTES));
      const ops = Array.from({ length: n }, (_, i) => ({ KV: { Verb: 'set', Key: `bench/${String(keys + i).padStart(7, '0')}`, Value: randomBytes(VALUE_BYTES).toString('base64') } }));
      const res = await client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'PUT', path: '/v1/txn', token: secrets.managementToken, body: ops, timeoutMs: 30_000 });
      if (res.status !== 200) throw new Error(`txn answered HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      keys += n;
      loaded += n * VALUE_BYTES;
    }
    loads.push({ sizeMb, ms: round(performance.now() - l0), keys });
    log(`snapshots: KV holds ${round(loaded / MB, 1)} MB in ${keys} keys (loaded in ${round(performance.now() - l0)} ms)`);

    for (let run = 1; run <= RUNS; run++) {
      // Baseline 1: Consul's snapshot API, streamed to nowhere.
      const g0 = performance.now();
      const rawBytes = await rawSnapshotGet(agent, address, secrets.managementToken);
      const getMs = performance.now() - g0;

      // Ours: the snapshot operation through the worker.
      const cluster = (await clusters.get(clusterId))!;
      const s0 = performance.now();
      const { operation, snapshot } = await rows.requestWithOperation(cluster, 'bench', { kind: OperationKind.Snapshot, action: 'snapshot.requested' }, { name: `bench ${sizeMb} MB ${run}`, kind: SnapshotKind.Manual });
      await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
      const snapOp = await waitForOperation(db, operation.id, 300_000, 10);
      const snapTotal = performance.now() - s0;
      const snapSteps = stepMs(snapOp.steps);
      const row = (await new SnapshotRepository(db).get(snapshot!.id))!;
      const bytes = Number(row.size);

      // The operation's take-snapshot step, part by part.
      const c0 = performance.now();
      const { data } = await opened.consul.saveSnapshot();
      const consulMs = performance.now() - c0;
      // Sealing, as the worker does it (fresh data key wrapped by the KEK, chunked AES-256-GCM).
      const k0 = performance.now();
      const partsBinding = snapshotBinding(clusterId, `parts-${sizeMb}-${run}`);
      const dk = box.newDataKey(partsBinding);
      const sealedData = sealBuffer(dk.dataKey, partsBinding, data);
      const sealMs = performance.now() - k0;
      void sealedData;
      const h0 = performance.now();
      const sha = createHash('sha256').update(data).digest('hex');
      const sha256Ms = performance.now() - h0;
      const p0 = performance.now();
      await store.put(`parts/${sizeMb}-${run}.snap`, data, sha);
      const storePutMs = performance.now() - p0;

      // Baseline 2: a raw upload of the same bytes, with the SDK's defaults.
      const rawBlob = containerClient.getBlockBlobClient(`raw/${sizeMb}-${run}.snap`);
      const u0 = performance.now();
      await rawBlob.uploadData(data);
      const uploadMs = performance.now() - u0;

      // Restore baselines: raw download, raw PUT /v1/snapshot (of the snapshot the operation took).
      const d0 = performance.now();
      const down = await rawBlob.downloadToBuffer();
      const downloadMs = performance.now() - d0;
      if (down.length !== data.length) throw new Error('raw download size differs');
      const opSealed = await store.get(row.blobKey, row.sha256!);
      const x0 = performance.now();
      const opBinding = snapshotBinding(row.clusterId, row.id);
      const opBytes = openBuffer(box.unwrapDataKey(row.kekId!, row.wrappedKey!, opBinding), opBinding, opSealed);
      const openMs = performance.now() - x0;
      const r0 = performance.now();
      const put = await client.requestRaw({ address, port: CONSUL_SERVER_PORTS.https, method: 'PUT', path: '/v1/snapshot', token: secrets.managementToken, rawBody: opBytes, timeoutMs: 300_000 });
      const restoreMs = performance.now() - r0;
      if (put.status !== 200) throw new Error(`raw restore answered HTTP ${put.status}: ${put.data.toString('utf8').slice(0, 200)}`);

      // Ours: the restore operation (no pre-restore snapshot: { takeSnapshot: false }).
      const restoreCluster = (await clusters.get(clusterId))!;
      const o0 = performance.now();
      const restore = await rows.requestWithOperation(restoreCluster, 'bench', { kind: OperationKind.Restore, action: 'cluster.restore.requested', params: { snapshotId: row.id } });
      await enqueueOperation(queue, restore.operation.id, config.JOB_ATTEMPTS);
      const restoreOp = await waitForOperation(db, restore.operation.id, 300_000, 10);
      const restoreTotal = performance.now() - o0;

      const r: Run = {
        sizeMb,
        run,
        bytes,
        raw: { getMs: round(getMs), uploadMs: round(uploadMs), downloadMs: round(downloadMs), restoreMs: round(restoreMs) },
        snapshotOp: { totalMs: round(snapTotal), takeStepMs: snapSteps['take-snapshot'] ?? NaN, retentionStepMs: snapSteps['apply-retention'] ?? NaN },
        parts: { consulMs: round(consulMs), sealMs: round(sealMs), sha256Ms: round(sha256Ms), storePutMs: round(storePutMs), openMs: round(openMs) },
        restoreOp: { totalMs: round(restoreTotal), steps: stepMs(restoreOp.steps) },
      };
      results.push(r);
      if (Math.abs(rawBytes - bytes) > bytes * 0.05) log(`  (raw GET returned ${rawBytes} bytes, the operation's snapshot ${bytes})`);
      log(`  ${sizeMb} MB run ${run}: snapshot ${round(bytes / MB, 2)} MB: op ${r.snapshotOp.totalMs} ms (take-snapshot ${r.snapshotOp.takeStepMs}; parts: consul ${r.parts.consulMs}, seal ${r.parts.sealMs}, open ${r.parts.openMs}, sha256 ${r.parts.sha256Ms}, put ${r.parts.storePutMs}) vs raw GET ${r.raw.getMs} + raw upload ${r.raw.uploadMs}; restore op ${r.restoreOp.totalMs} ms (${Object.entries(r.restoreOp.steps).map(([k, v]) => `${k} ${v}`).join(', ')}) vs raw download ${r.raw.downloadMs} + raw PUT ${r.raw.restoreMs}`);
    }

    // Once per size: the API's default restore, with a pre-restore snapshot first.
    const latest = (await rows.listForCluster(BENCH_TENANT, clusterId)).find((s) => s.state === 'Available')!;
    const cl = (await clusters.get(clusterId))!;
    const w0 = performance.now();
    const withPre = await rows.requestWithOperation(cl, 'bench', { kind: OperationKind.Restore, action: 'cluster.restore.requested', params: { snapshotId: latest.id, preRestoreSnapshotId: randomUUID() } });
    await enqueueOperation(queue, withPre.operation.id, config.JOB_ATTEMPTS);
    const withPreOp = await waitForOperation(db, withPre.operation.id, 300_000, 10);
    const withPreMs = performance.now() - w0;
    defaults.push({ sizeMb, totalMs: round(withPreMs), steps: stepMs(withPreOp.steps) });
    log(`  ${sizeMb} MB: restore with a pre-restore snapshot (the API's default): ${round(withPreMs)} ms (${Object.entries(stepMs(withPreOp.steps)).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }

  log('snapshots: deleting the cluster');
  await deleteClusterThroughWorker(db, queue, config, clusterId);

  // Per size: medians, MB/s, ratios.
  const bySize: Record<string, unknown> = {};
  const summary: string[] = [];
  for (const sizeMb of SIZES_MB) {
    const rs = results.filter((r) => r.sizeMb === sizeMb);
    const mb = summarize(rs.map((r) => r.bytes)).median / MB;
    const med = (f: (r: Run) => number) => summarize(rs.map(f)).median;
    const rawSnap = med((r) => r.raw.getMs + r.raw.uploadMs);
    const opSnap = med((r) => r.snapshotOp.totalMs);
    const takeStep = med((r) => r.snapshotOp.takeStepMs);
    const rawRestore = med((r) => r.raw.downloadMs + r.raw.restoreMs);
    const opRestore = med((r) => r.restoreOp.totalMs);
    const restoreSteps: Record<string, number> = {};
    for (const k of Object.keys(rs[0]!.restoreOp.steps)) restoreSteps[k] = med((r) => r.restoreOp.steps[k] ?? NaN);
    const restoreCore = med((r) => (r.restoreOp.steps['verify-snapshot'] ?? 0) + (r.restoreOp.steps['restore'] ?? 0));
    const mbps = (ms: number) => round(mb / (ms / 1000), 1);
    const entry = {
      snapshotMb: round(mb, 2),
      runs: rs.length,
      snapshot: {
        rawGetMs: med((r) => r.raw.getMs), rawUploadMs: med((r) => r.raw.uploadMs), rawTotalMs: rawSnap, rawMBps: mbps(rawSnap),
        operationMs: opSnap, operationMBps: mbps(opSnap), takeStepMs: takeStep, takeStepMBps: mbps(takeStep),
        parts: { consulMs: med((r) => r.parts.consulMs), sealMs: med((r) => r.parts.sealMs), sha256Ms: med((r) => r.parts.sha256Ms), storePutMs: med((r) => r.parts.storePutMs), openMs: med((r) => r.parts.openMs) },
        ratioRawOverOperation: round(rawSnap / opSnap, 2), ratioRawOverTakeStep: round(rawSnap / takeStep, 2),
      },
      restore: {
        rawDownloadMs: med((r) => r.raw.downloadMs), rawPutMs: med((r) => r.raw.restoreMs), rawTotalMs: rawRestore, rawMBps: mbps(rawRestore),
        operationMs: opRestore, operationMBps: mbps(opRestore), steps: restoreSteps,
        ratioRawOverOperation: round(rawRestore / opRestore, 2), ratioRawOverVerifyPlusRestoreSteps: round(rawRestore / restoreCore, 2),
      },
      restoreWithPreRestoreSnapshot: defaults.find((d) => d.sizeMb === sizeMb),
    };
    bySize[`${sizeMb}MB`] = entry;
    summary.push(`${sizeMb} MB of KV -> ${entry.snapshotMb} MB snapshot: snapshot op ${opSnap} ms (${entry.snapshot.operationMBps} MB/s; take-snapshot step ${takeStep} ms) vs raw GET+upload ${rawSnap} ms (${entry.snapshot.rawMBps} MB/s): ratio ${entry.snapshot.ratioRawOverOperation} (step: ${entry.snapshot.ratioRawOverTakeStep})`);
    summary.push(`${''.padStart(String(sizeMb).length)}    restore op ${opRestore} ms (${entry.restore.operationMBps} MB/s; ${Object.entries(restoreSteps).map(([k, v]) => `${k} ${v}`).join(', ')}) vs raw download+PUT ${rawRestore} ms (${entry.restore.rawMBps} MB/s): ratio ${entry.restore.ratioRawOverOperation} (verify+restore steps: ${entry.restore.ratioRawOverVerifyPlusRestoreSteps})`);
  }
  const file = writeResult('snapshots', { runs: RUNS, sizesMb: SIZES_MB, valueBytes: VALUE_BYTES, loads, summary, bySize, results });
  log('');
  for (const line of summary) log(`snapshots: ${line}`);
  log(`snapshots: results in ${file}`);
}

const defaults: { sizeMb: number; totalMs: number; steps: Record<string, number> }[] = [];

function stepMs(steps: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of (steps as OperationStep[]) ?? []) out[s.name] = s.durationMs ?? NaN;
  return out;
}

/** `GET /v1/snapshot`, the body read and thrown away; returns its size. */
function rawSnapshotGet(agent: https.Agent, address: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: address, port: CONSUL_SERVER_PORTS.https, path: '/v1/snapshot', method: 'GET', agent, headers: { 'X-Consul-Token': token } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`raw GET /v1/snapshot answered HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(300_000, () => req.destroy(new Error('raw GET /v1/snapshot timed out')));
    req.on('error', reject);
    req.end();
  });
}

runBench('snapshots', 600_000, main);
