import { AuditRepository, ClusterRepository, ClusterState, OperationKind, type Config } from '../../../../../libs/core/src';
import type { ClusterTarget } from '../cluster-target';
import { paramsOf, type Flow, type FlowContext, type Step } from './flow';
import { publicEndpointSteps } from './public-endpoint-steps';

interface ScaleParams {
  fromTier: string;
  toTier: string;
  fromCount: number;
  toCount: number;
}

/** From is what the cluster has when the operation runs (an earlier scale may have run since it was requested). */
function scaleOf(ctx: FlowContext): ScaleParams {
  const to = paramsOf(ctx, OperationKind.Scale);
  return { fromTier: ctx.cluster.tier, fromCount: ctx.cluster.serverCount, toTier: to.toTier, toCount: to.toCount };
}

/**
 * Scale between 1, 3 and 5 servers. Up: addresses, certificates from the
 * cluster's CA, config, processes, and done when every server is a voter.
 * Down: one server at a time leaves gracefully (highest index first) so raft
 * keeps quorum, then the rest learn the new member list. Data stays in raft.
 */
export class ScaleFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
    private readonly audit: AuditRepository,
    private readonly config: Config,
  ) {}

  steps(ctx: FlowContext): Step[] {
    const p = scaleOf(ctx);
    const { loaded } = ctx;
    const id = ctx.cluster.id;
    const begin: Step = {
      name: 'begin',
      run: async () => {
        await this.clusters.setState(id, ClusterState.Updating, `scaling from ${p.fromCount} to ${p.toCount} servers`);
      },
    };
    const writeConfig: Step = { name: 'write-config', run: () => this.target.writeServerConfig(loaded.specWith(p.toCount), loaded.secrets) };
    // The public endpoint forwards to the servers the cluster has now.
    const endpoint = publicEndpointSteps(this.target, this.clusters, loaded, () => loaded.specWith(p.toCount));
    const waitForVoters: Step = {
      name: 'wait-for-voters',
      run: async () => {
        const r = await loaded.consulOf(loaded.specWith(p.toCount)).waitForLeader({ timeoutMs: this.config.CLUSTER_READY_TIMEOUT_MS });
        return `leader ${r.leader}, ${r.voters} voters`;
      },
    };
    if (p.toCount > p.fromCount) {
      return [
        begin,
        {
          name: 'allocate-addresses',
          run: async () => {
            const servers = await this.target.allocate(loaded.cluster, p.toCount);
            await loaded.reload();
            return servers.map((s) => s.address).join(', ');
          },
        },
        {
          name: 'issue-certificates',
          run: async () => {
            const issued = await this.target.secrets.ensureServerCertificates(loaded.specWith(p.toCount), loaded.secrets.pki);
            await loaded.reload();
            return `${issued} new server certificate(s)`;
          },
        },
        writeConfig,
        {
          name: 'start-servers',
          run: async () => {
            const r = await this.target.startServers(loaded.specWith(p.toCount), loaded.secrets);
            return `${r.started.length} started, ${r.alreadyRunning.length} already running`;
          },
        },
        waitForVoters,
        ...endpoint,
      ];
    }
    return [
      begin,
      {
        name: 'remove-servers',
        run: async () => {
          const all = loaded.allServers;
          const leaving = all.servers.filter((s) => s.index >= p.toCount).sort((a, b) => b.index - a.index);
          for (const s of leaving) await this.target.removeServer(all, loaded.secrets, s.index);
          return `${leaving.length} server(s) left: ${leaving.map((s) => s.address).join(', ') || 'none'}`;
        },
      },
      {
        name: 'release-addresses',
        run: async () => {
          await this.clusters.releaseServersFrom(id, p.toCount);
          await this.target.secrets.forgetServerCertificates(loaded.specWith(p.toCount), loaded.secrets.pki);
          await loaded.reload();
        },
      },
      writeConfig,
      waitForVoters,
      ...endpoint,
    ];
  }

  async succeeded(ctx: FlowContext) {
    const p = scaleOf(ctx);
    await this.clusters.completeScale(ctx.cluster.id, p.toTier, p.toCount);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'cluster.scaled', details: { ...p } });
  }

  async failed(ctx: FlowContext, reason: string) {
    // The cluster keeps serving on the servers it has; its state says what failed.
    await this.clusters.setState(ctx.cluster.id, ClusterState.Running, `scale failed: ${reason}`);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: 'system', action: 'cluster.scale.failed', details: { reason } });
  }
}
