/**
 * The Azure target beside the local one, in the same run: create -> Running
 * for standard clusters (3 servers) on `local` (Consul processes on loopback)
 * and on `azure` (an ARM deployment through the real SDKs against the local
 * ARM server of the tests, which realises each scale-set instance as a real
 * Consul server), alternating, then the ratio of the medians. And the
 * worker's own cost per deployment poll: while a deployment is held Running,
 * the worker (a process of its own) asks ARM about it again and again; its
 * CPU time over those polls, per poll.
 *
 *   node dist/bench/azure-target.bench.js      (npm run bench runs it)
 *   env: BENCH_RUNS (3), BENCH_POLLS (40), and what bench.sh exports.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ClusterRepository, TenantClusterRepository, enqueueOperation, type Config, type Db } from '../libs/core/src';
import { startLocalArm, type LocalArm } from '../test/support/local-arm';
import { sshPublicKey } from '../test/support/ssh-key';
import { WORKER_MAIN, workerEnv } from '../test/support/worker-process';
import {
  benchConfig, createBenchDatabase, dropBenchDatabase, environment, log, obliterateQueue, onCleanup, openBenchDbAndQueue, round, runBench, sleep, spawnChild, summarize,
  waitForOperation, writeResult,
} from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const POLLS = Number(process.env.BENCH_POLLS ?? 40);
const TENANT = 'beeeeeee-0000-4000-8000-00000000b014';
const SUBSCRIPTION = '0abcd000-0000-4000-8000-00000000b014';
const POLL_INTERVAL_MS = 200;

/** utime + stime of a process, ms (from /proc; clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function createCluster(db: Db, queue: Parameters<typeof enqueueOperation>[0], config: Config, name: string, target: 'local' | 'azure', arm?: LocalArm) {
  const { cluster, operation } = await new TenantClusterRepository(db).createWithOperation({
    tenantId: TENANT, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bench', name, region: 'westeurope', datacenter: name,
    consulVersion: '1.8.7', tier: 'standard', serverCount: 3, publicEndpoint: false, createdBy: 'bench', target,
  });
  // What the managed application's deployment grants on the cluster's vault (the servers' secrets go there).
  if (target === 'azure') arm?.grantVaultRoles(SUBSCRIPTION, cluster.managedResourceGroup, name);
  await enqueueOperation(queue, operation.id, config.JOB_ATTEMPTS);
  return { clusterId: cluster.id, operationId: operation.id };
}

async function deleteCluster(db: Db, queue: Parameters<typeof enqueueOperation>[0], config: Config, clusterId: string) {
  const cluster = await new ClusterRepository(db).get(clusterId);
  if (!cluster || cluster.state === 'Deleted') return;
  const op = await new TenantClusterRepository(db).requestDelete(cluster, 'bench');
  await enqueueOperation(queue, op.id, config.JOB_ATTEMPTS);
  await waitForOperation(db, op.id, 120_000);
}

/** The package the local ARM serves to its instances (their cloud-init downloads and checks it). */
function packages(arm: LocalArm): string {
  return JSON.stringify({ '1.8.7': arm.packageFor('1.8.7') });
}

runBench('azure-target', Number(process.env.BENCH_TIME_LIMIT ?? 300) * 1000 - 30_000, async () => {
  const arm: LocalArm = await startLocalArm({ consulPackage: () => process.env.CONSUL_DEB!, retryAfterSeconds: 0 });
  onCleanup(() => arm.close());
  arm.preflight.putResourceGroup(SUBSCRIPTION, /^mrg-consul-/, 'westeurope');
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const config = benchConfig(databaseUrl, 252, {
    AZURE_CONSUL_PACKAGES: packages(arm), AZURE_ADMIN_SSH_PUBLIC_KEY: sshPublicKey('operator'), CLUSTER_TARGET: 'local',
    AZURE_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS), ...arm.env(),
  });
  onCleanup(async () => {
    await obliterateQueue(config.REDIS_URL, config.QUEUE_PREFIX);
  });
  const { db, queue } = openBenchDbAndQueue(config);
  // The worker in a process of its own: its CPU time is its own (the local ARM server runs in this one).
  // With the local cloud's DNS (its vaults' names).
  const worker = spawnChild('bench-azure-worker', process.execPath, [WORKER_MAIN], { ...workerEnv(config, 'bench-azure-worker'), NODE_OPTIONS: `--require ${path.join(__dirname, '..', 'test', 'support', 'local-dns.js')}` });
  const pid = worker.proc.pid!;

  // 1. create -> Running, local and azure alternating.
  const times: Record<'local' | 'azure', number[]> = { local: [], azure: [] };
  const workerCpu: Record<'local' | 'azure', number[]> = { local: [], azure: [] };
  const azureSteps: Record<string, number[]> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const target of run % 2 === 0 ? (['local', 'azure'] as const) : (['azure', 'local'] as const)) {
      const name = `b${target[0]}${run}${randomBytes(2).toString('hex')}`;
      const cpu0 = processCpuMs(pid);
      const t0 = performance.now();
      const { clusterId, operationId } = await createCluster(db, queue, config, name, target, arm);
      const op = await waitForOperation(db, operationId, 180_000, 10);
      const ms = performance.now() - t0;
      times[target].push(ms);
      workerCpu[target].push(processCpuMs(pid) - cpu0);
      if (target === 'azure') {
        for (const s of op.steps as { name: string; durationMs?: number }[]) (azureSteps[s.name] ??= []).push(s.durationMs ?? 0);
      }
      log(`run ${run} ${target}: create -> Running ${round(ms)} ms`);
      await deleteCluster(db, queue, config, clusterId);
    }
  }
  const local = summarize(times.local);
  const azure = summarize(times.azure);
  const ratio = round(azure.median / local.median, 2);

  // 2. The worker's CPU per deployment poll, while a deployment is held Running.
  arm.holdDeployments();
  const { clusterId, operationId } = await createCluster(db, queue, config, `bpoll${randomBytes(2).toString('hex')}`, 'azure', arm);
  await waitForPolls(arm, arm.counters.statusPolls + 3);
  const cpu0 = processCpuMs(pid);
  const polls0 = arm.counters.statusPolls;
  const wall0 = performance.now();
  await waitForPolls(arm, polls0 + POLLS);
  const cpuMsTotal = processCpuMs(pid) - cpu0;
  const polls = arm.counters.statusPolls - polls0;
  const wallMs = performance.now() - wall0;
  arm.releaseDeployments();
  await waitForOperation(db, operationId, 180_000, 10);
  await deleteCluster(db, queue, config, clusterId);
  const cpuPerPollMs = round(cpuMsTotal / polls, 2);
  const idleCpu = await idleCpuMs(pid, wallMs);
  // Over the idle baseline (timers, Redis heartbeats): what the polls themselves cost.
  const netPerPollMs = round(Math.max(0, cpuMsTotal - idleCpu) / polls, 2);

  const summary = [
    `create -> Running, standard (3 servers): local p50 ${round(local.median)} ms, azure (local ARM) p50 ${round(azure.median)} ms; azure/local ${ratio} (${RUNS} runs each)`,
    `worker CPU per create: local p50 ${round(summarize(workerCpu.local).median)} ms, azure p50 ${round(summarize(workerCpu.azure).median)} ms`,
    `worker per deployment poll: ${netPerPollMs} ms CPU over an idle worker's (${cpuPerPollMs} ms gross: ${round(cpuMsTotal)} ms over ${polls} polls in ${round(wallMs)} ms; idle worker over the same time: ${round(idleCpu)} ms; poll interval ${POLL_INTERVAL_MS} ms)`,
  ];
  writeResult('azure-target', {
    environment: environment(),
    runs: RUNS,
    createToRunningMs: { local, azure, ratio },
    workerCpuPerCreateMs: { local: summarize(workerCpu.local), azure: summarize(workerCpu.azure) },
    azureStepsMs: Object.fromEntries(Object.entries(azureSteps).map(([k, v]) => [k, summarize(v)])),
    poll: { polls, wallMs: round(wallMs), cpuMs: cpuMsTotal, cpuPerPollMs, netCpuPerPollMs: netPerPollMs, idleCpuMsSameWindow: idleCpu, pollIntervalMs: POLL_INTERVAL_MS },
    summary,
  });
  for (const s of summary) log(s);
});

/** The worker's CPU while it has nothing to do, over a window as long as the poll measurement (its baseline). */
async function idleCpuMs(pid: number, windowMs: number): Promise<number> {
  const cpu0 = processCpuMs(pid);
  await sleep(windowMs);
  return processCpuMs(pid) - cpu0;
}

async function waitForPolls(arm: LocalArm, n: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (arm.counters.statusPolls < n) {
    if (Date.now() > deadline) throw new Error(`only ${arm.counters.statusPolls} status polls, waited for ${n}`);
    await sleep(20);
  }
}
