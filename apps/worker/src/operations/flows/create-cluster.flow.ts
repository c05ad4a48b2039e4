import { AuditRepository, ClusterRepository, ClusterState } from '../../../../../libs/core/src';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';

/** Create: addresses, secrets, config, processes, leader, ACL check; then Running. */
export class CreateClusterFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
    private readonly audit: AuditRepository,
    private readonly readyTimeoutMs: number,
  ) {}

  steps({ loaded }: FlowContext): Step[] {
    return [
      {
        name: 'allocate-addresses',
        run: async () => {
          const servers = await this.target.allocate(loaded.cluster);
          await loaded.reload();
          return servers.map((s) => s.address).join(', ');
        },
      },
      {
        name: 'generate-secrets',
        run: async () => {
          await this.target.secrets.ensure(loaded.spec);
          await loaded.reload();
          return 'CA, server certificates, gossip key, management token';
        },
      },
      {
        name: 'write-config',
        run: async () => {
          await this.target.ensureInfrastructure(loaded.spec);
          await this.target.writeServerConfig(loaded.spec, loaded.secrets);
        },
      },
      {
        name: 'start-servers',
        run: async () => {
          const { running } = await this.target.startServers(loaded.spec, loaded.secrets);
          return `${running} of ${loaded.spec.servers.length} server processes running`;
        },
      },
      {
        name: 'wait-for-leader',
        run: async () => {
          const r = await loaded.consul.waitForLeader({ timeoutMs: this.readyTimeoutMs });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
      {
        name: 'verify-acl',
        run: async () => {
          await loaded.consul.verifyAclEnforced();
          return 'anonymous writes are denied';
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    if (await this.clusters.markRunningIfCreating(cluster.id)) {
      await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.running' });
    }
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    const current = await this.clusters.get(cluster.id);
    if (current?.state === ClusterState.Creating) await this.clusters.setState(cluster.id, ClusterState.Failed, `create failed: ${reason}`);
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.create.failed', details: { reason } });
  }
}
