import { AuditRepository, ClusterRepository, ClusterState } from '../../../../../libs/core/src';
import type { SecondarySteps } from '../../federation/secondary-steps';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';
import type { StartGate } from '../start-gate';
import { publicEndpointSteps } from './public-endpoint-steps';

/**
 * Create: addresses, secrets, config, processes, leader, ACL check; then Running. A secondary
 * (made with a federation token) takes its CA and gossip key from its primary, has its tokens
 * made in the primary before its config, and is Running once the federation is whole.
 */
export class CreateClusterFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
    private readonly audit: AuditRepository,
    private readonly secondary: SecondarySteps,
    private readonly readyTimeoutMs: number,
    private readonly gate: StartGate,
  ) {}

  steps({ loaded, operation }: FlowContext): Step[] {
    // Only the local target's servers run on this machine: an Azure create waits on ARM, not here.
    const gated = loaded.cluster.target === 'local';
    const primaryId = loaded.cluster.primaryClusterId;
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
          if (primaryId === null) await this.target.secrets.ensure(loaded.spec);
          else await this.target.secrets.ensureSecondary(loaded.spec, primaryId);
          await loaded.reload();
          return primaryId === null ? 'CA, server certificates, gossip key, management token' : "server certificates from the primary's CA, its gossip key; a management token";
        },
      },
      ...(primaryId === null ? [] : [this.secondary.makeAcls(loaded)]),
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
          const waitedMs = gated ? await this.gate.enter(operation.id) : 0;
          const { running } = await this.target.startServers(loaded.spec, loaded.secrets);
          return `${running} of ${loaded.spec.servers.length} server processes running${waitedMs >= 1_000 ? ` (waited ${Math.round(waitedMs / 1_000)} s for its turn: at most ${this.gate.capacity} clusters start at once)` : ''}`;
        },
      },
      {
        name: 'wait-for-leader',
        run: async () => {
          const r = await loaded.consul.waitForLeader({ timeoutMs: this.readyTimeoutMs });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
      ...(primaryId === null ? [] : this.secondary.waitJoined(loaded)),
      {
        name: 'verify-acl',
        run: async () => {
          try {
            await loaded.consul.verifyAclEnforced();
          } finally {
            this.gate.leave(operation.id);
          }
          return 'anonymous writes are denied';
        },
      },
      // Last, once the servers serve: nothing public answers for a cluster that is not up yet.
      ...publicEndpointSteps(this.target, this.clusters, loaded),
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    if (await this.clusters.markRunningIfCreating(cluster.id)) {
      await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.running' });
    }
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    this.gate.leave(operation.id);
    const current = await this.clusters.get(cluster.id);
    if (current?.state === ClusterState.Creating) await this.clusters.setState(cluster.id, ClusterState.Failed, `create failed: ${reason}`);
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.create.failed', details: { reason } });
  }
}
