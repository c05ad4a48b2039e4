import { AuditRepository, ClusterRepository, ClusterState } from '../../../../libs/core/src';
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

  steps({ cluster }: FlowContext): Step[] {
    const id = cluster.id;
    return [
      {
        name: 'allocate-addresses',
        run: async () => {
          const servers = await this.target.allocate(id);
          return servers.map((s) => s.address).join(', ');
        },
      },
      {
        name: 'generate-secrets',
        run: async () => {
          await this.target.ensureSecrets(await this.target.spec(id));
          return 'CA, server certificates, gossip key, management token';
        },
      },
      {
        name: 'write-config',
        run: async () => {
          const spec = await this.target.spec(id);
          await this.target.ensureInfrastructure(spec);
          await this.target.writeServerConfig(spec, await this.target.loadSecrets(id));
        },
      },
      {
        name: 'start-servers',
        run: async () => {
          const spec = await this.target.spec(id);
          const { running } = await this.target.startServers(spec, await this.target.loadSecrets(id));
          return `${running} of ${spec.servers.length} server processes running`;
        },
      },
      {
        name: 'wait-for-leader',
        run: async () => {
          const r = await this.target.consul.waitForLeader(await this.target.spec(id), await this.target.loadSecrets(id), { timeoutMs: this.readyTimeoutMs });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
      {
        name: 'verify-acl',
        run: async () => {
          await this.target.consul.verifyAclEnforced(await this.target.spec(id), await this.target.loadSecrets(id));
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
