import {
  AuditRepository, ClusterRepository, ClusterState, SnapshotKind, SnapshotRepository, type Config,
} from '../../../../libs/core/src';
import type { LocalClusterSpec } from '../../../../libs/provisioner/src';
import type { ClusterSnapshots } from '../cluster-snapshots';
import type { ClusterTarget } from '../cluster-target';
import { PermanentError, type Flow, type FlowContext, type Step } from './flow';

interface UpgradeParams {
  toVersion: string;
  preUpgradeSnapshotId: string;
}

/**
 * Rolling upgrade as Consul documents it: a pre-upgrade snapshot; then one
 * server at a time, followers first and the leader last: it leaves, restarts on
 * the target binary, and must report the binary's version and be a healthy voter
 * (autopilot: alive, voter, caught up) before the next. A server that does not
 * come back healthy is rolled back to the old binary and the upgrade stops.
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
    const p = ctx.operation.params as unknown as UpgradeParams;
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
          return this.snapshots.take(p.preUpgradeSnapshotId);
        },
      },
      { name: 'roll-servers', run: () => this.roll(id, from, p.toVersion) },
    ];
  }

  private async roll(id: string, from: string, to: string): Promise<string> {
    const secrets = await this.target.loadSecrets(id);
    const base = await this.target.spec(id);
    const toSpec: LocalClusterSpec = { ...base, consulVersion: to };
    const fromSpec: LocalClusterSpec = { ...base, consulVersion: from };
    const toBinary = this.target.binaryFor(to);
    const entry = this.config.versions.find((v) => v.version === to)!;
    const done: string[] = [];
    // Leader last: order by whether each server is the leader now.
    const leader = (await this.target.local.serverStatus(base, secrets, base.servers[0].index).catch(() => ({ leader: '' }))).leader;
    const order = [...base.servers].sort((a, b) => Number(leader.startsWith(`${a.address}:`)) - Number(leader.startsWith(`${b.address}:`)));
    for (const server of order) {
      if ((await this.target.local.serverBinary(id, server.index)) === toBinary) {
        done.push(`${server.index}(already)`);
        continue; // upgraded before a worker restart
      }
      await this.target.local.stopServer(base, secrets, server.index);
      await this.target.local.startServers(toSpec, secrets);
      const healthy = await this.healthy(toSpec, server.index, entry.reports);
      if (healthy !== true) {
        await this.target.local.stopServer(base, secrets, server.index);
        await this.target.local.startServers(fromSpec, secrets);
        const back = await this.healthy(fromSpec, server.index, this.config.versions.find((v) => v.version === from)!.reports);
        throw new PermanentError(
          'upgrade_health_failed',
          `server ${server.index} was not healthy on Consul ${to} (${healthy}); it was rolled back to ${from}${back === true ? '' : ` but is not healthy yet (${back})`}; upgraded before it: ${done.join(', ') || 'none'}`,
        );
      }
      done.push(String(server.index));
    }
    return `servers upgraded in order ${done.join(', ')} (leader last)`;
  }

  /** True when the server runs, reports the expected version, and autopilot sees every server healthy; else why not. */
  private async healthy(spec: LocalClusterSpec, index: number, reports: string): Promise<true | string> {
    const secrets = await this.target.loadSecrets(spec.clusterId);
    const deadline = Date.now() + Math.min(this.config.CLUSTER_READY_TIMEOUT_MS, 60_000);
    let why = 'not checked';
    while (Date.now() < deadline) {
      if (!(await this.target.local.observe(spec.clusterId)).some((p) => p.index === index)) {
        why = 'the process exited';
        // A process that exits at once will not come back by waiting.
        if (Date.now() > deadline - Math.min(this.config.CLUSTER_READY_TIMEOUT_MS, 60_000) + 2_000) return why;
      } else {
        try {
          const status = await this.target.local.serverStatus(spec, secrets, index);
          if (status.version !== reports) return `it reports Consul ${status.version}, expected ${reports}`;
          const ap = await this.target.local.autopilotHealthy(spec, secrets);
          if (ap.healthy) return true;
          why = `autopilot: ${ap.detail || 'no servers'}`;
        } catch (e) {
          why = (e as Error).message;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return why;
  }

  async succeeded(ctx: FlowContext) {
    const p = ctx.operation.params as unknown as UpgradeParams;
    await this.clusters.setConsulVersion(ctx.cluster.id, p.toVersion);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'cluster.upgraded', details: { from: ctx.cluster.consulVersion, to: p.toVersion } });
  }

  async failed(ctx: FlowContext, reason: string) {
    await this.clusters.setState(ctx.cluster.id, ClusterState.Running, `upgrade to ${(ctx.operation.params as unknown as UpgradeParams).toVersion} failed: ${reason}`);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: 'system', action: 'cluster.upgrade.failed', details: { reason } });
  }
}
