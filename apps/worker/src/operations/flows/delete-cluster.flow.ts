import { AuditRepository, ClusterRepository, ClusterState, IssuedTokenRepository, SecretRepository, SnapshotRepository } from '../../../../../libs/core/src';
import type { SecondarySteps } from '../../federation/secondary-steps';
import type { ClusterSnapshots } from '../cluster-snapshots';
import type { ClusterTarget } from '../cluster-target';
import type { ConsulUiRevoker } from '../../consul-ui/consul-ui-revoker';
import type { Flow, FlowContext, Step } from './flow';

/** Delete: end its Consul UI sessions, (a secondary) leave the federation, stop every server, remove its files, forget the secrets and addresses. */
export class DeleteClusterFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
    private readonly secrets: SecretRepository,
    private readonly audit: AuditRepository,
    private readonly snapshotRows: SnapshotRepository,
    private readonly snapshots: ClusterSnapshots,
    private readonly tokens: IssuedTokenRepository,
    private readonly uiSessions: ConsulUiRevoker,
    private readonly secondary: SecondarySteps,
  ) {}

  steps({ cluster, loaded }: FlowContext): Step[] {
    const id = cluster.id;
    // A secondary leaves its federation while its servers still run, and its tokens go from the primary once they are gone.
    const isSecondary = cluster.primaryClusterId !== null;
    return [
      {
        // While the servers still answer: each signed-in user's Consul UI token is deleted and audited.
        name: 'revoke-consul-ui-sessions',
        run: async () => `${await this.uiSessions.revokeCluster(id)} Consul UI session(s) revoked`,
      },
      ...(isSecondary ? [this.secondary.leaveWan(loaded)] : []),
      {
        name: 'stop-servers',
        run: async () => {
          const { before, detail } = await this.target.deleteAll(id);
          return `stopped ${before} server processes, removed their data${detail ? ` (${detail})` : ''}`;
        },
      },
      {
        name: 'remove-snapshots',
        run: async () => {
          const rows = await this.snapshotRows.withBlobs(id);
          for (const r of rows) await this.snapshots.remove(r.id);
          return `${rows.length} snapshot(s) removed from storage`;
        },
      },
      ...(isSecondary ? [this.secondary.deleteAcls(loaded)] : []),
      { name: 'remove-secrets', run: () => this.secrets.deleteAll(id) },
      { name: 'release-addresses', run: () => this.clusters.releaseAddresses(id) },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    await this.clusters.setState(cluster.id, ClusterState.Deleted);
    // Its servers are gone, and every token they knew with them.
    await this.tokens.revokeAllOfDeletedCluster(cluster.id);
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.deleted' });
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.clusters.setState(cluster.id, ClusterState.Failed, `delete failed: ${reason}`);
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.delete.failed', details: { reason } });
  }
}
