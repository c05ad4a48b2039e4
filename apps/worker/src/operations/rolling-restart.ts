import { poll, type ClusterSecrets, type ClusterSpec, type ConsulApi, type Target, type WaitForHealthyOptions } from '../../../../libs/provisioner/src';
import type { ClusterTarget } from './cluster-target';

/** What a rolling restart does to each server, and how it knows a server is done. */
export interface RollingRestart {
  /** What a server still to restart does, for the error when one still does after its restart ("runs an older config"). */
  behind: string;
  /** The servers still to restart, asked again after each restart (`restarted`: this roll's so far). */
  pending(restarted: readonly number[]): Promise<number[]>;
  /** Puts server `index` on what it is to run. */
  restart(index: number): Promise<void>;
  /** The health gate: throws unless the cluster is whole again with `index` restarted. */
  healthy(index: number): Promise<void>;
  /**
   * A server that fails the gate goes back to what it ran; what this throws
   * ends the roll. Without it, the gate's error ends the roll.
   */
  rollBack?(index: number, why: Error, restarted: readonly number[]): Promise<never>;
}

/** The order of a roll, and which server was the leader when its turn came (it left first). */
export interface RollOrder {
  restarted: number[];
  /**
   * The leader when the roll reached it; null when the leader was no longer
   * pending (leadership can move under a roll: a follower back from its
   * restart may call an election and win it).
   */
  leftAsLeader: number | null;
}

/** "1, 2, 0 (the leader, 0, last)": for a step's detail. */
export function describeRoll({ restarted, leftAsLeader }: RollOrder, prefix: readonly string[] = []): string {
  const order = [...prefix, ...restarted.map(String)].join(', ');
  return leftAsLeader === null ? `${order} (the leader was already done)` : `${order} (the leader, ${leftAsLeader}, last)`;
}

/**
 * One server at a time, followers first and the leader last: a follower
 * just restarts, staying a raft voter, so the others keep quorum and the
 * leader; the leader leaves gracefully first (with more than one server),
 * so it steps down while it keeps answering and the others elect a new one
 * at once: writes sent meanwhile wait for the new leader instead of failing.
 * The cluster must pass the health gate before the next server. Idempotent:
 * servers no longer pending are left alone. Returns the servers restarted,
 * in order.
 */
export async function rollingRestart(target: ClusterTarget, consul: ConsulApi, spec: ClusterSpec, roll: RollingRestart): Promise<RollOrder> {
  const hosts = await target.hosts(spec.clusterId);
  const restarted: number[] = [];
  let leftAsLeader: number | null = null;
  for (;;) {
    const pending = await roll.pending(restarted);
    if (pending.length === 0) return { restarted, leftAsLeader };
    const leader = await consul.leaderIndex();
    const index = pending.find((i) => i !== leader) ?? pending[0]!;
    if (restarted.includes(index)) throw new Error(`server ${index} of cluster ${spec.clusterId} still ${roll.behind} after its restart`);
    if (index === leader && spec.servers.length > 1) {
      leftAsLeader = index;
      await consul.leave(index);
      await waitForLeftServer(hosts, spec.clusterId, index);
    }
    await roll.restart(index);
    try {
      await roll.healthy(index);
    } catch (e) {
      if (!roll.rollBack) throw e;
      await roll.rollBack(index, e as Error, restarted);
    }
    restarted.push(index);
  }
}

export interface ConfigRestartResult extends RollOrder {
  /** The servers that were not running and were started on the current files. */
  started: number[];
}

/**
 * Rolling restart onto the config of `writeServerConfig(spec, secrets)`, for
 * settings Consul applies only at start: servers that are down are started
 * first and the cluster is healthy; then each server whose target says it
 * runs an older config restarts (rollingRestart), healthy before the next.
 */
export async function restartServersOnOldConfig(target: ClusterTarget, spec: ClusterSpec, secrets: ClusterSecrets, opts: WaitForHealthyOptions): Promise<ConfigRestartResult> {
  const hosts = await target.hosts(spec.clusterId);
  const consul = target.consul.for(spec, secrets);
  const { started } = await target.startServers(spec, secrets);
  await consul.waitForHealthy(opts);
  const order = await rollingRestart(target, consul, spec, {
    behind: 'runs an older config',
    pending: () => hosts.serversOnOldConfig(spec, secrets),
    restart: (index) => target.putServer(spec, secrets, index),
    healthy: async () => void (await consul.waitForHealthy(opts)),
  });
  return { ...order, started };
}

/**
 * A server that left shuts itself down: until its process is gone, the
 * target may still see it running and leave it alone, and it then exits
 * under the roll. Waits a while for it to go; a host whose servers are
 * seen by their machine (a VM stays running) goes on after the wait.
 */
async function waitForLeftServer(hosts: Target, clusterId: string, index: number): Promise<void> {
  try {
    await poll(`server ${index} of cluster ${clusterId} to shut down after its leave`, async () => (await hosts.observe(clusterId)).some((s) => s.index === index), (running) => (running ? 'still running' : true), {
      timeoutMs: hosts.kind === 'local' ? 30_000 : 0, intervalMs: () => 100,
    });
  } catch {
    // Still seen running: the restart puts it on its files either way.
  }
}
