import { AuditRepository, ClusterRepository, OperationKind } from '../../../../../libs/core/src';
import type { ClusterTarget } from '../cluster-target';
import { paramsOf, type Flow, type FlowContext, type Step } from './flow';
import { publicEndpointSteps } from './public-endpoint-steps';

/**
 * update-endpoint: the public endpoint turned on or off, or its allowlist replaced (PATCH). The
 * API wrote the new setting on the cluster's row; this makes the target match it, in place (no
 * server restarts: the cluster stays Running and serves throughout).
 */
export class UpdateEndpointFlow implements Flow {
  constructor(private readonly target: ClusterTarget, private readonly clusters: ClusterRepository, private readonly audit: AuditRepository) {}

  steps(ctx: FlowContext): Step[] {
    paramsOf(ctx, OperationKind.UpdateEndpoint);
    return publicEndpointSteps(this.target, this.clusters, ctx.loaded);
  }

  async succeeded({ cluster, operation }: FlowContext) {
    const row = await this.clusters.get(cluster.id);
    const result = { publicEndpoint: row?.publicEndpoint ?? false, publicAddress: row?.publicAddress ?? null, allowed: Array.isArray(row?.ipAllowlist) ? row.ipAllowlist.length : 0 };
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.endpoint.applied', details: result });
    return result;
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.endpoint.failed', details: { reason } });
  }
}
