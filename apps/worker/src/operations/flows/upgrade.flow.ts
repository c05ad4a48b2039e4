import {
  AuditRepository, ClusterRepository, ClusterState, OperationKind, SnapshotKind, SnapshotRepository, type Config,
} from '../../../../../libs/core/src';
import type { ClusterSpec, ConsulApi } from '../../../../../libs/provisioner/src';
import type { ClusterContext } from '../cluster-context';
import type { ClusterSnapshots } from '../cluster-snapshots';
import type { ClusterTarget } from '../cluster-target';
import { describeRoll, rollingRestart } from '../rolling-restart';
import { PermanentError, paramsOf, type Flow, type FlowContext, type Step } from './flow';

/**
 * Rolling upgrade: a pre-upgrade snapshot; then one server at a time, followers
 * first and the leader last: it stops, restarts on the target binary, and must
 * report the binary's version with the cluster whole again before the next: a
 * leader, every server a voter, every follower in contact with the leader and
 * caught up to the leader's commit index, autopilot reporting every server
 * healthy (ConsulApi.waitForHealthy). A server that does not come back
 * healthy is rolled back to the old binary and the upgrade stops.
 *
 * A follower restarts in place (same node id, address and data) without a
 * graceful leave: it stays a raft voter while it is down (leave_on_terminate is
 * false), which costs quorum nothing a leave would not (one server of three is
 * down either way). A leave costs about 28 s per server in Consul 1.8
 * (BENCHMARKS.md, "Rolling upgrade"): the leave itself (serf leave propagation
 * on WAN and LAN, a 5 s RPC drain: ~14 s), then the server comes back as a
 * non-voter that autopilot promotes only after server_stabilization_time, on
 * its 10 s loop (~12 s); and a follower that left campaigns while it drains and
 * comes back with a higher term that makes the leader step down.
 *
 * The leader still leaves gracefully: it steps down while it keeps answering,
 * so writes sent meanwhile wait for the new leader ("No cluster leader" is
 * retried by Consul) instead of failing, as they do for about a second when a
 * stopped leader's followers still forward to it. The roll is rollingRestart,
 * the same as a rotation's restarts onto a new config, with this flow's health
 * gate (the version reported) and a roll-back.
 *
 * Each server's change is asked about until done inside the step (no hand-back
 * to the queue): what the roll knows between a server's change and the next
 * (that its health is still to check, that it is being rolled back and why)
 * lives in this step's memory, and a run of the step from the start would take
 * a server on the new binary for one already checked (an azure instance runs
 * the new model while it still boots) and go on to the next.
 */
export class UpgradeFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly snapshots: ClusterSnapshots,
    private readonly rows: SnapshotRepository,
    private readonly clusters: ClusterRepository,
    private readonly audit: AuditRepository,
    private readonly config: Config,
  ) {}

  steps(ctx: FlowContext): Step[] {
    const p = paramsOf(ctx, OperationKind.Upgrade);
    const id = ctx.cluster.id;
    const from = ctx.cluster.consulVersion;
    return [
      {
        name: 'begin',
        run: async () => void (await this.clusters.setState(id, ClusterState.Updating, `upgrading from Consul ${from} to ${p.toVersion}`)),
      },
      {
        name: 'pre-upgrade-snapshot',
        run: async () => {
          await this.rows.ensurePending(ctx.cluster, p.preUpgradeSnapshotId, `before upgrading to ${p.toVersion}`, SnapshotKind.PreUpgrade, ctx.operation.id);
          return this.snapshots.take(p.preUpgradeSnapshotId, ctx.loaded);
        },
      },
      { name: 'roll-servers', run: () => this.roll(ctx.loaded, from, p.toVersion) },
    ];
  }

  private async roll(loaded: ClusterContext, from: string, to: string): Promise<string> {
    const { spec: base, secrets, consul } = loaded;
    const toSpec: ClusterSpec = { ...base, consulVersion: to };
    const fromSpec: ClusterSpec = { ...base, consulVersion: from };
    const toBinary = this.target.binaryFor(to);
    const reports = (version: string) => this.config.versions.find((v) => v.version === version)!.reports;
    // Upgraded before a worker restart: left alone.
    const already: number[] = [];
    for (const s of base.servers) if ((await this.target.serverBinary(base.clusterId, s.index)) === toBinary) already.push(s.index);
    const before = (restarted: readonly number[]) => [...already.map((i) => `${i}(already)`), ...restarted.map(String)];
    const upgraded = await rollingRestart(this.target, consul, base, {
      behind: `runs another binary than Consul ${to}'s`,
      pending: (restarted) => Promise.resolve(base.servers.map((s) => s.index).filter((i) => !already.includes(i) && !restarted.includes(i))),
      restart: (index) => this.target.putServer(toSpec, secrets, index, { withinStep: true }),
      healthy: (index) => this.healthy(consul, index, reports(to)),
      rollBack: async (index, why, restarted) => {
        await this.target.putServer(fromSpec, secrets, index, { withinStep: true });
        const back = await this.healthy(consul, index, reports(from)).then(() => true as const, (e: Error) => e.message);
        throw new PermanentError(
          'upgrade_health_failed',
          `server ${index} was not healthy on Consul ${to} (${why.message}); it was rolled back to ${from}${back === true ? '' : ` but is not healthy yet (${back})`}; upgraded before it: ${before(restarted).join(', ') || 'none'}`,
        );
      },
    });
    return `servers upgraded in order ${describeRoll(upgraded, already.map((i) => `${i}(already)`))}`;
  }

  /**
   * The health gate: the cluster is whole again (waitForHealthy: a leader, every
   * server a voter on the new ACL system, every follower in contact with the
   * leader and caught up to its commit index, autopilot reporting every server
   * healthy) and the server reports the expected version; else it throws why
   * not. A server whose process exits fails at once (waitForLeader checks the
   * processes).
   */
  private async healthy(consul: ConsulApi, index: number, reports: string): Promise<void> {
    await consul.waitForHealthy({ timeoutMs: Math.min(this.config.CLUSTER_READY_TIMEOUT_MS, 60_000) });
    const status = await consul.serverStatus(index);
    if (status.version !== reports) throw new Error(`it reports Consul ${status.version}, expected ${reports}`);
  }

  async succeeded(ctx: FlowContext) {
    const p = paramsOf(ctx, OperationKind.Upgrade);
    await this.clusters.setConsulVersion(ctx.cluster.id, p.toVersion);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'cluster.upgraded', details: { from: ctx.cluster.consulVersion, to: p.toVersion } });
  }

  async failed(ctx: FlowContext, reason: string) {
    await this.clusters.setState(ctx.cluster.id, ClusterState.Running, `upgrade to ${paramsOf(ctx, OperationKind.Upgrade).toVersion} failed: ${reason}`);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: 'system', action: 'cluster.upgrade.failed', details: { reason } });
  }
}
