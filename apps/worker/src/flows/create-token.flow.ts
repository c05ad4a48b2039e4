import { randomUUID } from 'node:crypto';
import { AuditRepository, SecretName, SecretRepository } from '../../../../libs/core/src';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';

interface IssuedToken {
  accessorId: string;
  secretId: string;
}

/**
 * Issue a management token. The ids are chosen and sealed first, then the token
 * is created in Consul with exactly those ids: a retry after a crash creates the
 * same token, never a second one.
 */
export class CreateTokenFlow implements Flow {
  constructor(private readonly target: ClusterTarget, private readonly secrets: SecretRepository, private readonly audit: AuditRepository) {}

  steps({ cluster, operation }: FlowContext): Step[] {
    const name = SecretName.issuedToken(operation.id);
    const description = String((operation.params as { description?: string } | null)?.description ?? 'created through the control plane');
    return [
      {
        name: 'choose-token-ids',
        run: async () => {
          await this.secrets.putIfAbsent(cluster.id, name, () => JSON.stringify({ accessorId: randomUUID(), secretId: randomUUID() } satisfies IssuedToken));
        },
      },
      {
        name: 'create-acl-token',
        run: async () => {
          const sealed = await this.secrets.get(cluster.id, name);
          if (!sealed) return 'already handed out';
          const ids = JSON.parse(sealed) as IssuedToken;
          await this.target.local.createToken(await this.target.spec(cluster.id), await this.target.loadSecrets(cluster.id), { description, ...ids });
          return `accessor ${ids.accessorId}`;
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    const sealed = await this.secrets.get(cluster.id, SecretName.issuedToken(operation.id));
    const accessorId = sealed ? (JSON.parse(sealed) as IssuedToken).accessorId : undefined;
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.token.created', details: { accessorId } });
    return { accessorId };
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.secrets.delete(cluster.id, SecretName.issuedToken(operation.id));
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.token.failed', details: { reason } });
  }
}
