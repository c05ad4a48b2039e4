/**
 * Rolling upgrade time per server, on a real standard (3 servers) cluster,
 * through the real worker (in this process) and the real UpgradeFlow, beside a
 * baseline measured in the same run: a plain stop/start of one follower (SIGTERM,
 * no leave, same binary), waited for with the same health condition as the
 * upgrade (every server a healthy voter in autopilot's view, caught up).
 *
 * Only Consul 1.8.7 exists here, so (as in test/upgrade.e2e.test.ts) the
 * catalog gets two more names for the same binary through symbolic links
 * (`1.8.7-bench-a`, `1.8.7-bench-b`, both reporting 1.8.7): each run upgrades
 * to the other name, so every server really restarts on another binary path.
 *
 * Where the time goes, per server: the target and Consul API calls the flow makes are
 * timed (stopServer = leave + exit, startServers, the health wait), and an
 * observer polls the raft configuration and the leader every 100 ms to see
 * when the server left the raft peers, came back as a non-voter, was promoted
 * to voter, and when the cluster had no leader. The servers' own log lines
 * for these events are kept in the result file.
 *
 *   node dist/bench/upgrade.bench.js      (npm run bench -- upgrade)
 *   env: BENCH_RUNS (2): baseline restart + one upgrade each;
 *        BENCH_UPGRADE_COMPARE_LEAVE=1: after each upgrade, also replay the flow's
 *        previous procedure (graceful leave, autopilot's view) on the same cluster
 *        (about 85 s more per run: raise BENCH_TIME_LIMIT);
 *        BENCH_UPGRADE_LOGS=1: print the servers' log lines of the first upgrade.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import {
  ClusterRepository, OperationKind, TenantClusterRepository, enqueueOperation, type Config, type OperationStep,
} from '../libs/core/src';
import {
  CONSUL_SERVER_PORTS, ClusterLayout, ConsulHttpClient, ConsulApi, signalProcess, type ConsulConnections, type LocalClusterSecrets, type LocalClusterSpec, type LocalTarget,
} from '../libs/provisioner/src';
import {
  benchConfig, consulLogLines, createBenchDatabase, createClusterThroughWorker, deleteClusterThroughWorker, dropBenchDatabase, log,
  onCleanup, round, runBench, sleep, summarize, waitForOperation, writeResult, startBenchWorker,
} from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const OBSERVE_MS = 100;
const HEALTH_POLL_MS = 100;
const VERSIONS = ['1.8.7-bench-a', '1.8.7-bench-b'];
/** Also replay the flow's previous procedure (graceful leave) in the same run, for a before/after on the same machine state. */
const COMPARE_LEAVE = process.env.BENCH_UPGRADE_COMPARE_LEAVE === '1';

interface Ev { at: number; what: string; index?: number; detail?: string }

/** Raft membership and leader, as seen from the first server that answers, every OBSERVE_MS. */
class Observer {
  readonly events: Ev[] = [];
  private running = true;
  private loop?: Promise<void>;
  private last = new Map<string, string>(); // address -> 'voter' | 'nonvoter' | 'absent'
  private lastLeader = '?';

  constructor(private readonly client: ConsulHttpClient, private readonly spec: LocalClusterSpec, private readonly token: string) {}

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        await this.sample().catch(() => undefined);
        await sleep(OBSERVE_MS);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /**
   * One sample: the raft configuration asked of every server at once (the endpoint is
   * forwarded to the leader); the first answer names the leader (its Leader flag).
   * When no server gets an answer within 1 s, there is no working leader (a follower
   * may still name a leader that is gone: it only notices at its next heartbeat
   * timeout), from the moment the sample started.
   */
  private async sample(): Promise<void> {
    const t = Date.now();
    type Srv = { Address: string; Voter: boolean; Leader: boolean };
    const answers = await Promise.all(this.spec.servers.map((s) =>
      this.client.request({ address: s.address, port: CONSUL_SERVER_PORTS.https, method: 'GET', token: this.token, timeoutMs: 1_000, path: '/v1/operator/raft/configuration' })
        .then((r) => (r.status === 200 ? { at: Date.now(), servers: ((r.body as { Servers?: Srv[] }).Servers ?? []) } : undefined))
        .catch(() => undefined),
    ));
    const first = answers.filter((x): x is { at: number; servers: Srv[] } => x !== undefined).sort((x, y) => x.at - y.at)[0];
    if (!first) return this.leaderIs(t, '');
    this.leaderIs(first.at, first.servers.find((x) => x.Leader)?.Address.split(':')[0] ?? '');
    for (const srv of this.spec.servers) {
      const r = first.servers.find((x) => x.Address.startsWith(`${srv.address}:`));
      const state = !r ? 'absent' : r.Voter ? 'voter' : 'nonvoter';
      if (this.last.get(srv.address) !== state) {
        if (this.last.has(srv.address)) this.events.push({ at: first.at, what: `raft-${state}`, index: srv.index });
        this.last.set(srv.address, state);
      }
    }
  }

  private leaderIs(at: number, address: string): void {
    if (address === this.lastLeader) return;
    this.events.push({ at, what: address ? 'leader' : 'no-leader', index: this.indexOf(address) });
    this.lastLeader = address;
  }

  private indexOf(address: string): number | undefined {
    return this.spec.servers.find((s) => s.address === address)?.index;
  }

  first(what: string, index: number | undefined, after: number, before = Infinity): number | undefined {
    return this.events.find((e) => e.what === what && (index === undefined || e.index === index) && e.at >= after && e.at <= before)?.at;
  }
}

interface ServerRoll {
  index: number;
  wasLeader: boolean;
  /** stopServer called until it returned (the leave API call, then the process exit). */
  stopMs: number;
  /** of which: until the observer saw it leave the raft peers. */
  leftRaftMs?: number;
  startMs: number;
  /** startServers returned until the observer saw it back in the raft peers (as a non-voter after a leave). */
  rejoinMs?: number;
  /** back in the peers until it is a voter (autopilot's promotion). */
  promoteMs?: number;
  /** startServers returned until the flow's health check passed. */
  healthMs: number;
  /** of which: until autopilot was first asked (leader, voters, ACL mode, caught up: all passed), and from there until it answered healthy. */
  beforeAutopilotMs?: number;
  autopilotMs?: number;
  /** no leader seen by the observer during this server's turn. */
  leaderlessMs?: number;
  totalMs: number;
}

async function main(): Promise<void> {
  const databaseUrl = await createBenchDatabase();
  onCleanup(() => dropBenchDatabase(databaseUrl));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-upgrade-'));
  onCleanup(() => fs.rmSync(work, { recursive: true, force: true }));
  const consulBin = process.env.CONSUL_BIN!;
  const extra = VERSIONS.map((version) => {
    const link = path.join(work, `consul-${version}`);
    fs.symlinkSync(consulBin, link);
    return { version, status: 'AVAILABLE', binary: link, reports: '1.8.7' };
  });
  const container = `bench-upgrade-${randomBytes(4).toString('hex')}`;
  const config: Config = benchConfig(databaseUrl, 253, {
    EXTRA_CONSUL_VERSIONS: JSON.stringify(extra),
    SNAPSHOT_CONTAINER: container,
    HEALTH_TICK_MS: '3600000',
    SNAPSHOT_TICK_MS: '3600000',
  });
  onCleanup(async () => {
    await BlobServiceClient.fromConnectionString(config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(container).deleteIfExists();
  });
  const { db, queue, target } = await startBenchWorker(config);
  const local: Local = { hosts: target.targets.get('local') as LocalTarget, consul: target.consul };
  const calls = instrument(local);
  const layout = new ClusterLayout(path.join(config.LOCAL_DIR, 'clusters'));

  log('upgrade: creating a standard cluster');
  const name = `bench-up-${randomBytes(3).toString('hex')}`;
  const clusterId = await createClusterThroughWorker(db, queue, config, name, 'standard');
  onCleanup(async () => {
    if ((await local.hosts.observe(clusterId)).length > 0) {
      log(`clean-up: stopping the servers of cluster ${clusterId}`);
      await local.hosts.stopAndRemove(clusterId, { gracefulTimeoutMs: 5_000 });
    }
  });
  const clusters = new ClusterRepository(db);
  const secrets: LocalClusterSecrets = await target.secrets.load(clusterId);
  const client = new ConsulHttpClient(secrets.pki.caCertPem);
  onCleanup(() => client.close());
  const specOf = async () => (await target.open((await clusters.get(clusterId))!)).spec;

  const baselines: Record<string, number>[] = [];
  const leaveRolls: { run: number; rollMs: number; servers: ServerRoll[] }[] = [];
  const upgrades: { run: number; to: string; rollMs: number; opMs: number; servers: ServerRoll[]; order: string; logs: string[] }[] = [];
  for (let run = 1; run <= RUNS; run++) {
    // Baseline: a plain restart of one follower, same binary, no leave.
    const spec = await specOf();
    const leaderIdx = await leaderIndex(local, spec, secrets);
    const follower = spec.servers.find((s) => s.index !== leaderIdx)!.index;
    const b = await plainRestart(local, client, spec, secrets, follower, leaderIdx!);
    baselines.push(b);
    log(`  run ${run} baseline: plain stop/start of follower ${follower}: stop ${b.stopMs} ms, start ${b.startMs} ms, to answering ${b.answeringMs} ms, caught up ${b.caughtUpMs} ms, to healthy voter ${b.healthMs} ms (ConsulApi.waitForHealthy: ${b.waitForHealthyMs} ms); total ${b.totalMs} ms`);

    // The upgrade, through the worker.
    const to = VERSIONS[(run - 1) % VERSIONS.length]!;
    const observer = new Observer(client, spec, secrets.managementToken);
    observer.start();
    calls.length = 0;
    const cluster = (await clusters.get(clusterId))!;
    const t0 = Date.now();
    const op = await new TenantClusterRepository(db).addOperation(cluster, OperationKind.Upgrade, 'bench', 'cluster.upgrade.requested', {
      toVersion: to, fromVersion: cluster.consulVersion, preUpgradeSnapshotId: randomUUID(),
    });
    await enqueueOperation(queue, op.id, config.JOB_ATTEMPTS);
    const done = await waitForOperation(db, op.id, 400_000, 50);
    const opMs = Date.now() - t0;
    await sleep(300);
    await observer.stop();
    const steps = done.steps as unknown as OperationStep[];
    const roll = steps.find((s) => s.name === 'roll-servers')!;
    const rollStart = Date.parse(roll.startedAt);
    const rollEnd = Date.parse(roll.finishedAt!);
    const servers = perServer(calls, observer, leaderIdx);
    const logs = collectLogs(layout, clusterId, spec, rollStart - 1000, rollEnd + 1000);
    upgrades.push({ run, to, rollMs: roll.durationMs!, opMs, servers, order: roll.detail ?? '', logs });
    log(`  run ${run} upgrade to ${to}: roll-servers ${roll.durationMs} ms (${roll.detail}); operation ${opMs} ms`);
    for (const s of servers) {
      log(`    server ${s.index}${s.wasLeader ? ' (leader)' : ''}: total ${s.totalMs} ms = stop ${s.stopMs} (left raft after ${s.leftRaftMs ?? '?'}) + start ${s.startMs} + health wait ${s.healthMs} (${s.beforeAutopilotMs ?? '?'} until autopilot asked, ${s.autopilotMs ?? '?'} for autopilot; back in raft after ${s.rejoinMs ?? '?'}, voter ${s.promoteMs ?? '?'} later); no leader for ${s.leaderlessMs ?? 0} ms`);
    }
    if (run === 1 && process.env.BENCH_UPGRADE_LOGS === '1') for (const l of logs) log(`      ${l}`);

    if (COMPARE_LEAVE) {
      // The procedure the flow used before (graceful leave, then autopilot's view polled every 200 ms), replayed through the same two layers on the same cluster.
      const spec2 = await specOf();
      const leader2 = await leaderIndex(local, spec2, secrets);
      const obs2 = new Observer(client, spec2, secrets.managementToken);
      obs2.start();
      calls.length = 0;
      const r0 = Date.now();
      for (const s of [...spec2.servers].sort((a, b) => Number(a.index === leader2) - Number(b.index === leader2))) {
        await local.consul.for(spec2, secrets).leave(s.index);
        await local.hosts.stopServer(spec2.clusterId, s.index);
        await local.hosts.startServers(spec2, secrets);
        await previousHealthCheck(local, spec2, secrets, s.index);
      }
      const rollMs = Date.now() - r0;
      await sleep(300);
      await obs2.stop();
      const servers2 = perServer(calls, obs2, leader2);
      leaveRolls.push({ run, rollMs, servers: servers2 });
      log(`  run ${run} previous procedure (leave + restart, replayed): ${rollMs} ms for 3 servers`);
      for (const x of servers2) {
        log(`    server ${x.index}${x.wasLeader ? ' (leader)' : ''}: total ${x.totalMs} ms = stop ${x.stopMs} (left raft after ${x.leftRaftMs ?? '?'}) + start ${x.startMs} + health wait ${x.healthMs} (${x.beforeAutopilotMs ?? '?'} until autopilot asked, ${x.autopilotMs ?? '?'} for autopilot; back in raft after ${x.rejoinMs ?? '?'}, voter ${x.promoteMs ?? '?'} later); no leader for ${x.leaderlessMs ?? 0} ms`);
      }
    }
  }

  log('upgrade: deleting the cluster');
  await deleteClusterThroughWorker(db, queue, config, clusterId);

  const all = upgrades.flatMap((u) => u.servers);
  const followers = all.filter((s) => !s.wasLeader);
  const leaders = all.filter((s) => s.wasLeader);
  const baseTotal = summarize(baselines.map((b) => b.totalMs!));
  // Followers and the leader differ by design (the leader's restart needs an election), so a
  // median over both is meaningless: per server is a roll's time divided by its servers.
  const perServerRoll = summarize(upgrades.map((u) => u.rollMs / u.servers.length));
  const followerTotal = summarize(followers.map((s) => s.totalMs));
  const ratio = round(baseTotal.median / perServerRoll.median, 3);
  const ratioFollower = round(baseTotal.median / followerTotal.median, 3);
  const parts = (xs: ServerRoll[]) => ({
    total: summarize(xs.map((s) => s.totalMs)),
    stop: summarize(xs.map((s) => s.stopMs)),
    leftRaft: summarize(xs.filter((s) => s.leftRaftMs !== undefined).map((s) => s.leftRaftMs!)),
    start: summarize(xs.map((s) => s.startMs)),
    healthWait: summarize(xs.map((s) => s.healthMs)),
    healthBeforeAutopilot: summarize(xs.filter((s) => s.beforeAutopilotMs !== undefined).map((s) => s.beforeAutopilotMs!)),
    healthAutopilot: summarize(xs.filter((s) => s.autopilotMs !== undefined).map((s) => s.autopilotMs!)),
    rejoin: summarize(xs.filter((s) => s.rejoinMs !== undefined).map((s) => s.rejoinMs!)),
    promote: summarize(xs.filter((s) => s.promoteMs !== undefined).map((s) => s.promoteMs!)),
    leaderless: summarize(xs.map((s) => s.leaderlessMs ?? 0)),
  });
  const summary = [
    `roll-servers median ${summarize(upgrades.map((u) => u.rollMs)).median} ms for 3 servers: ${perServerRoll.median} ms per server [${perServerRoll.min}-${perServerRoll.max}]; a follower ${followerTotal.median} ms, the leader ${summarize(leaders.map((s) => s.totalMs)).median} ms (medians of ${followers.length} and ${leaders.length})`,
    `  followers: ${fmt(parts(followers))}`,
    `  leader:    ${fmt(parts(leaders))}`,
    `baseline plain stop/start of a follower (no leave, same health condition): median ${baseTotal.median} ms [${baseTotal.min}-${baseTotal.max}] (stop ${summarize(baselines.map((b) => b.stopMs!)).median}, start ${summarize(baselines.map((b) => b.startMs!)).median}, answering ${summarize(baselines.map((b) => b.answeringMs!)).median}, caught up ${summarize(baselines.map((b) => b.caughtUpMs!)).median}, healthy ${summarize(baselines.map((b) => b.healthMs!)).median}; waitForHealthy ${summarize(baselines.map((b) => b.waitForHealthyMs!)).median} after start)`,
    `ratio baseline / upgrade: per server ${ratio}, per follower ${ratioFollower}`,
  ];
  let previous: Record<string, unknown> | undefined;
  if (leaveRolls.length > 0) {
    const prev = leaveRolls.flatMap((r) => r.servers);
    const prevPerServer = summarize(leaveRolls.map((r) => r.rollMs / r.servers.length));
    previous = { rolls: leaveRolls, followers: parts(prev.filter((x) => !x.wasLeader)), leader: parts(prev.filter((x) => x.wasLeader)) };
    summary.push(
      `previous procedure (graceful leave, replayed in the same run): ${summarize(leaveRolls.map((r) => r.rollMs)).median} ms for 3 servers, ${prevPerServer.median} ms per server [${prevPerServer.min}-${prevPerServer.max}]; ratio baseline / previous ${round(baseTotal.median / prevPerServer.median, 3)}; upgrade now / previous ${round(perServerRoll.median / prevPerServer.median, 3)}`,
      `  followers: ${fmt(parts(prev.filter((x) => !x.wasLeader)))}`,
      `  leader:    ${fmt(parts(prev.filter((x) => x.wasLeader)))}`,
    );
  }
  const file = writeResult('upgrade', { runs: RUNS, summary, baselines, upgrades, previous, followers: parts(followers), leader: parts(leaders), ratioBaselineOverUpgradePerServer: ratio, ratioBaselineOverFollower: ratioFollower });
  log('');
  for (const line of summary) log(`upgrade: ${line}`);
  log(`upgrade: results in ${file}`);
}

function fmt(p: Record<string, { median: number; n: number }>): string {
  return Object.entries(p).map(([k, v]) => `${k} ${v.n ? v.median : '-'}`).join(', ');
}


interface Call { at: number; end: number; what: 'stop' | 'start' | 'healthy' | 'autopilot'; index?: number; started?: number[]; healthy?: boolean }

/** The two layers the upgrade flow goes through: the servers' hosts and the Consul API. */
interface Local {
  hosts: LocalTarget;
  consul: ConsulConnections;
}

/**
 * Times the calls the upgrade flow makes: stopping a server and starting it
 * on the new binary (putServer, whose stop part is timed by stopServer), and
 * the first healthy autopilot answer after each start.
 */
function instrument(local: Local): Call[] {
  const calls: Call[] = [];
  const { hosts } = local;
  // Every cluster's API is made per call (ConsulConnections.for): its methods are timed on the class.
  const consul = ConsulApi.prototype;
  let lastStopEnd = 0;
  const stop = hosts.stopServer.bind(hosts);
  hosts.stopServer = async (clusterId, index, opts) => {
    const at = Date.now();
    const r = await stop(clusterId, index, opts);
    lastStopEnd = Date.now();
    calls.push({ at, end: lastStopEnd, what: 'stop', index });
    return r;
  };
  const put = hosts.putServer.bind(hosts);
  hosts.putServer = async (spec, secrets, index) => {
    const called = Date.now();
    const r = await put(spec, secrets, index);
    calls.push({ at: Math.max(called, lastStopEnd), end: Date.now(), what: 'start', started: [index] });
    return r;
  };
  const start = hosts.startServers.bind(hosts);
  hosts.startServers = async (spec, secrets) => {
    const at = Date.now();
    const r = await start(spec, secrets);
    calls.push({ at, end: Date.now(), what: 'start', started: r.started.map((s) => s.index) });
    return r;
  };
  // The leader's turn starts with its graceful leave (the rolling restart then waits for its exit
  // and starts it on the new binary, with no stopServer of its own): the leave is its stop.
  const leave = consul.leave;
  consul.leave = async function (this: ConsulApi, index: number) {
    const at = Date.now();
    const r = await leave.call(this, index);
    lastStopEnd = Date.now();
    calls.push({ at, end: lastStopEnd, what: 'stop', index });
    return r;
  };
  // Health is checked through waitForHealthy (the flow now), or by polling autopilotHealthy
  // alone (the flow before, replayed by previousHealthCheck): its healthy answer ends the wait.
  let insideWaitForHealthy = 0;
  const waitForHealthy = consul.waitForHealthy;
  consul.waitForHealthy = async function (this: ConsulApi, opts) {
    const at = Date.now();
    insideWaitForHealthy++;
    try {
      const r = await waitForHealthy.call(this, opts);
      calls.push({ at, end: Date.now(), what: 'healthy' });
      return r;
    } finally {
      insideWaitForHealthy--;
    }
  };
  const healthy = consul.autopilotHealthy;
  consul.autopilotHealthy = async function (this: ConsulApi) {
    const at = Date.now();
    const r = await healthy.call(this);
    calls.push({ at, end: Date.now(), what: 'autopilot', healthy: r.healthy });
    if (r.healthy && insideWaitForHealthy === 0) calls.push({ at, end: Date.now(), what: 'healthy' });
    return r;
  };
  return calls;
}

function perServer(calls: Call[], obs: Observer, leaderIdx: number | undefined): ServerRoll[] {
  const out: ServerRoll[] = [];
  const counted = new Set<Call>();
  for (const stop of calls.filter((c) => c.what === 'stop')) {
    const index = stop.index!;
    const start = calls.find((c) => c.what === 'start' && c.at >= stop.end && c.started?.includes(index));
    // A leave and then a stopServer of the same server (the replayed procedure) are one turn, from the leave.
    if (!start || counted.has(start)) continue;
    counted.add(start);
    const healthy = calls.find((c) => c.what === 'healthy' && c.at >= start.end);
    const end = healthy?.end ?? start.end;
    // Inside the health wait: until autopilot is first asked (the other checks passed: leader, voters,
    // ACLs, caught up), then until autopilot answers healthy.
    const firstAutopilot = calls.find((c) => c.what === 'autopilot' && c.at >= start.end && c.at <= end);
    const left = obs.first('raft-absent', index, stop.at);
    const back = obs.first('raft-nonvoter', index, start.end) ?? obs.first('raft-voter', index, start.end);
    const voter = obs.first('raft-voter', index, start.end);
    // Leaderless time: from a no-leader observation to the next leader observation, inside this server's turn.
    let leaderless = 0;
    const evs = obs.events.filter((e) => e.at >= stop.at && e.at <= end && (e.what === 'leader' || e.what === 'no-leader'));
    for (let i = 0; i < evs.length; i++) {
      if (evs[i]!.what !== 'no-leader') continue;
      const next = evs.slice(i + 1).find((e) => e.what === 'leader');
      leaderless += (next?.at ?? end) - evs[i]!.at;
    }
    out.push({
      index,
      wasLeader: index === leaderIdx,
      stopMs: stop.end - stop.at,
      leftRaftMs: left !== undefined ? left - stop.at : undefined,
      startMs: start.end - start.at,
      rejoinMs: back !== undefined ? back - start.end : undefined,
      promoteMs: back !== undefined && voter !== undefined ? voter - back : undefined,
      healthMs: end - start.end,
      beforeAutopilotMs: firstAutopilot ? firstAutopilot.at - start.end : undefined,
      autopilotMs: firstAutopilot ? end - firstAutopilot.at : undefined,
      leaderlessMs: leaderless,
      totalMs: end - stop.at,
    });
  }
  return out;
}

async function leaderIndex(local: Local, spec: LocalClusterSpec, secrets: LocalClusterSecrets): Promise<number | undefined> {
  for (const s of spec.servers) {
    try {
      const st = await local.consul.for(spec, secrets).serverStatus(s.index);
      const addr = st.leader.split(':')[0];
      const found = spec.servers.find((x) => x.address === addr);
      if (found) return found.index;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** A server's own raft statistics (agent/self Stats.raft), or undefined when it does not answer. */
async function raftStats(client: ConsulHttpClient, address: string, token: string): Promise<Record<string, string> | undefined> {
  try {
    const res = await client.request({ address, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/agent/self', token, timeoutMs: 2_000 });
    if (res.status !== 200) return undefined;
    return (res.body as { Stats?: { raft?: Record<string, string> } }).Stats?.raft;
  } catch {
    return undefined;
  }
}

/** Go's time.Duration text ("12.3ms", "1.5s", "0", "never") in ms; Infinity for never. */
export function goDurationMs(text: string): number {
  if (text === 'never' || text === '') return Infinity;
  if (text === '0') return 0;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
  let ms = 0;
  for (const m of text.matchAll(/([\d.]+)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

/**
 * Baseline: SIGTERM one follower (no leave; leave_on_terminate is false, so it stays a
 * raft voter), wait for its exit, start it again on the same binary, then wait for the
 * same condition the upgrade needs before the next server: every server a healthy voter
 * in autopilot's view, and, so that a view from before the stop cannot pass, the
 * restarted server itself in contact with the leader (last_contact < 200 ms) with its
 * applied index at or past the leader's commit index sampled after the restart.
 */
async function plainRestart(local: Local, client: ConsulHttpClient, spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number, leader: number): Promise<Record<string, number>> {
  const addr = (i: number) => spec.servers.find((s) => s.index === i)!.address;
  const t0 = Date.now();
  const procs = (await local.hosts.observe(spec.clusterId)).filter((p) => p.index === index);
  for (const p of procs) signalProcess(p.pid, 'SIGTERM');
  while ((await local.hosts.observe(spec.clusterId)).some((p) => p.index === index)) await sleep(20);
  const t1 = Date.now();
  await local.hosts.startServers(spec, secrets);
  const t2 = Date.now();
  // The flow's own condition (ConsulApi.waitForHealthy), timed on the same restart.
  let flowCheck = 0;
  const flowCheckDone = local.consul.for(spec, secrets).waitForHealthy({ timeoutMs: 120_000 }).then(() => void (flowCheck = Date.now() - t2));
  const leaderCommit = Number((await raftStats(client, addr(leader), secrets.managementToken))?.commit_index ?? NaN);
  let answering = 0;
  let caughtUp = 0;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const own = await raftStats(client, addr(index), secrets.managementToken);
    if (own && !answering) answering = Date.now();
    if (own && !caughtUp && own.state === 'Follower' && goDurationMs(own.last_contact ?? 'never') < 200 && Number(own.applied_index) >= leaderCommit) caughtUp = Date.now();
    if (caughtUp && (await local.consul.for(spec, secrets).autopilotHealthy().catch(() => ({ healthy: false }))).healthy) break;
    if (Date.now() > deadline) throw new Error(`server ${index} not healthy 120 s after a plain restart`);
    await sleep(HEALTH_POLL_MS);
  }
  const t3 = Date.now();
  await flowCheckDone;
  return { index, stopMs: t1 - t0, startMs: t2 - t1, answeringMs: answering - t2, caughtUpMs: caughtUp - t2, healthMs: t3 - t2, totalMs: t3 - t0, waitForHealthyMs: flowCheck };
}

/** The upgrade flow's health check before this change: the process runs, answers, and autopilot's (cached) view has every server a healthy voter; polled every 200 ms. */
async function previousHealthCheck(local: Local, spec: LocalClusterSpec, secrets: LocalClusterSecrets, index: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await local.hosts.observe(spec.clusterId)).some((p) => p.index === index)) {
      try {
        await local.consul.for(spec, secrets).serverStatus(index);
        if ((await local.consul.for(spec, secrets).autopilotHealthy()).healthy) return;
      } catch {
        /* not yet */
      }
    }
    await sleep(200);
  }
  throw new Error(`server ${index} not healthy 60 s after its restart (previous procedure)`);
}

/** The servers' log lines about leaving, joining, raft membership, promotion and leadership, in time order. */
function collectLogs(layout: ClusterLayout, clusterId: string, spec: LocalClusterSpec, from: number, to: number): string[] {
  const pattern = /leave|left|drain|shutdown|Promot|nonvoter|non-voter|Adding|added|Removing|removed|remove|election|leader|EventMember|Join|joined|Caught up|Updating configuration|entering|Consul agent running|retry|Handled event/i;
  const lines: { at: number; line: string }[] = [];
  for (const s of spec.servers) {
    for (const l of consulLogLines(layout.server(clusterId, s.index).logFile, pattern, from, to)) lines.push({ at: l.at, line: `[server ${s.index}] ${l.line.replace(/^\S+\s+/, '')}` });
  }
  lines.sort((a, b) => a.at - b.at);
  const t0 = lines[0]?.at ?? from;
  return lines.map((l) => `+${String(l.at - t0).padStart(6)} ms ${l.line.slice(0, 220)}`);
}

runBench('upgrade', 840_000, main);
