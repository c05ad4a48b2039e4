import { AuditRepository, IssuedTokenRepository, SecretName, SecretRepository, isUuid } from '../../../../../libs/core/src';
import { PermanentError, type Flow, type FlowContext, type Step } from './flow';

interface RevokeParams {
  accessorId: string;
  reason: string;
}

/**
 * Revoke a token the customer made through the control plane: delete it in
 * Consul (a token already gone counts as deleted), then wait until every
 * running server rejects it. The cluster's own management token is never
 * deleted here. Runs under the cluster's lock, ordered with restores.
 */
export class RevokeTokenFlow implements Flow {
  constructor(
    private readonly secrets: SecretRepository,
    private readonly tokens: IssuedTokenRepository,
    private readonly audit: AuditRepository,
    private readonly readyTimeoutMs: number,
  ) {}

  steps({ operation, loaded }: FlowContext): Step[] {
    const { accessorId } = paramsOf(operation.params);
    return [
      {
        name: 'delete-acl-token',
        run: async () => {
          const outcome = await loaded.consul.deleteTokenByAccessor(accessorId);
          if (outcome === 'current') throw new PermanentError('management_token', `token ${accessorId} is the cluster's management token; it is rotated, never revoked`);
          return outcome === 'deleted' ? `token ${accessorId} deleted` : `token ${accessorId} was already gone`;
        },
      },
      {
        name: 'wait-until-rejected',
        run: async () => {
          await loaded.consul.waitForTokensAbsentOnEveryServer([accessorId], { timeoutMs: this.readyTimeoutMs });
          return `every running server (${loaded.spec.servers.length}) answers "ACL not found"`;
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    const { accessorId, reason } = paramsOf(operation.params);
    await this.tokens.markRevoked(accessorId, operation.id);
    const token = await this.tokens.get(accessorId);
    if (token) await this.secrets.delete(cluster.id, SecretName.issuedToken(token.operationId));
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.token.revoked', details: { accessorId, reason } });
    return { accessorId };
  }

  async failed({ cluster, operation }: FlowContext, why: string) {
    const { accessorId, reason } = paramsOf(operation.params);
    await this.tokens.revokeFailed(accessorId, operation.id);
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.token.revoke.failed', details: { accessorId, reason, why } });
  }
}

function paramsOf(raw: unknown): RevokeParams {
  const p = (raw ?? {}) as Partial<RevokeParams>;
  if (!isUuid(p.accessorId)) throw new PermanentError('invalid_params', 'a revoke-token operation needs the accessorId of the token');
  return { accessorId: p.accessorId, reason: String(p.reason ?? 'requested') };
}
