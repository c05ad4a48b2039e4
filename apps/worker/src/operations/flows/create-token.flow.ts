import { randomUUID } from 'node:crypto';
import { AuditRepository, IssuedTokenRepository, SecretName, SecretRepository } from '../../../../../libs/core/src';
import type { Flow, FlowContext, Step } from './flow';

interface IssuedToken {
  accessorId: string;
  secretId: string;
}

/**
 * Issue a management token. The ids are chosen and sealed first, and the token
 * recorded (Creating, without its secret), then it is created in Consul with
 * exactly those ids: a retry after a crash creates the same token, never a
 * second one. Once it exists its secret may be collected, once, for
 * TOKEN_COLLECT_WINDOW_MS; the worker's token sweeper revokes it after that,
 * and revokes one whose create failed (it may exist in Consul all the same).
 */
export class CreateTokenFlow implements Flow {
  constructor(
    private readonly secrets: SecretRepository,
    private readonly tokens: IssuedTokenRepository,
    private readonly audit: AuditRepository,
    private readonly collectWindowMs: number,
  ) {}

  steps({ cluster, operation, loaded }: FlowContext): Step[] {
    const name = SecretName.issuedToken(operation.id);
    const description = descriptionOf(operation.params);
    return [
      {
        name: 'choose-token-ids',
        run: async () => {
          const sealed = await this.secrets.putIfAbsent(cluster.id, name, () => JSON.stringify({ accessorId: randomUUID(), secretId: randomUUID() } satisfies IssuedToken));
          const { accessorId } = JSON.parse(sealed) as IssuedToken;
          await this.tokens.recordCreating({ accessorId, clusterId: cluster.id, tenantId: cluster.tenantId, operationId: operation.id, description, createdBy: operation.requestedBy });
          return `accessor ${accessorId}`;
        },
      },
      {
        name: 'create-acl-token',
        run: async () => {
          const sealed = await this.secrets.get(cluster.id, name);
          // Gone only when the token is being revoked (its row says so): nothing to create then.
          if (!sealed) return 'its secret is gone (the token is being revoked)';
          const ids = JSON.parse(sealed) as IssuedToken;
          await loaded.consul.createToken({ description, ...ids });
          return `accessor ${ids.accessorId}`;
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    await this.tokens.activate(operation.id, this.collectWindowMs);
    const accessorId = (await this.tokens.findByOperation(operation.id))?.accessorId;
    await this.audit.record({
      tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.token.created',
      details: { accessorId, description: descriptionOf(operation.params) },
    });
    return { accessorId };
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    // The row stays Creating: the sweeper revokes the token, which may exist in Consul though the operation failed.
    await this.secrets.delete(cluster.id, SecretName.issuedToken(operation.id));
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.token.failed', details: { reason } });
  }
}

function descriptionOf(params: unknown): string {
  return String((params as { description?: string } | null)?.description ?? 'created through the control plane');
}
