import { AuditRepository, ClusterRepository, type Config } from '../../../../../libs/core/src';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';
import { publicEndpointSteps } from './public-endpoint-steps';

/**
 * Repair: restart whichever server processes died, from the files they had; done when every
 * server is a voter again, and the public endpoint is what the row says (its proxy started again
 * if it died).
 */
export class RepairFlow implements Flow {
  constructor(private readonly target: ClusterTarget, private readonly clusters: ClusterRepository, private readonly audit: AuditRepository, private readonly config: Config) {}

  steps({ loaded }: FlowContext): Step[] {
    return [
      { name: 'write-config', run: () => this.target.writeServerConfig(loaded.spec, loaded.secrets) },
      {
        name: 'restart-servers',
        run: async () => {
          const r = await this.target.startServers(loaded.spec, loaded.secrets);
          return r.started.length ? `restarted server(s) ${r.started.join(', ')}` : 'every server was running';
        },
      },
      {
        name: 'wait-for-leader',
        run: async () => {
          const r = await loaded.consul.waitForLeader({ timeoutMs: this.config.CLUSTER_READY_TIMEOUT_MS });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
      ...publicEndpointSteps(this.target, this.clusters, loaded),
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    await this.clusters.recordHealth(cluster.id, 'healthy', null, new Date());
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.repaired' });
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.repair.failed', details: { reason } });
  }
}
