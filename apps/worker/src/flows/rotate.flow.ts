import { AuditRepository, SecretName, SecretRepository } from '../../../../libs/core/src';
import { generateGossipKey, issueServerCertificate, type ClusterPki } from '../../../../libs/provisioner/src';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';

/**
 * Gossip key rotation. The next key is chosen and sealed first, so a retry
 * rotates to the same key; then Consul's keyring procedure (install, use,
 * remove the old, every member confirmed); then the stored key and the server
 * configs follow. No restart: the keyring is live.
 */
export class RotateGossipKeyFlow implements Flow {
  constructor(private readonly target: ClusterTarget, private readonly secrets: SecretRepository, private readonly audit: AuditRepository) {}

  steps({ cluster }: FlowContext): Step[] {
    const id = cluster.id;
    return [
      { name: 'choose-key', run: async () => void (await this.secrets.putIfAbsent(id, SecretName.NextGossipKey, () => generateGossipKey())) },
      {
        name: 'rotate-keyring',
        run: async () => {
          const next = await this.secrets.get(id, SecretName.NextGossipKey);
          if (!next) return 'already rotated';
          const r = await this.target.local.rotateGossipKey(await this.target.spec(id), await this.target.loadSecrets(id), next);
          return `new key in use on every member, ${r.removed} old key(s) removed`;
        },
      },
      {
        name: 'save-key',
        run: async () => {
          const next = await this.secrets.get(id, SecretName.NextGossipKey);
          if (next) {
            await this.secrets.replace(id, SecretName.GossipKey, next);
            await this.secrets.delete(id, SecretName.NextGossipKey);
          }
          await this.target.local.writeServerFiles(await this.target.spec(id), await this.target.loadSecrets(id));
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.gossip-key.rotated' });
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.gossip-key.rotation-failed', details: { reason } });
  }
}

/**
 * Certificate rotation: new server certificates from the same CA, chosen and
 * sealed first; each server in turn gets its files and reloads (SIGHUP), and
 * must serve its new certificate before the next one; the leader keeps serving.
 */
export class RotateCertificatesFlow implements Flow {
  constructor(private readonly target: ClusterTarget, private readonly secrets: SecretRepository, private readonly audit: AuditRepository) {}

  steps({ cluster }: FlowContext): Step[] {
    const id = cluster.id;
    return [
      {
        name: 'issue-certificates',
        run: async () => {
          await this.secrets.putIfAbsent(id, SecretName.NextPki, async () => {
            const { pki } = await this.target.loadSecrets(id);
            const spec = await this.target.spec(id);
            const servers = [];
            for (const s of spec.servers) servers.push(await issueServerCertificate({ caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem }, spec.datacenter, s.address));
            return JSON.stringify({ ...pki, servers } satisfies ClusterPki);
          });
        },
      },
      {
        name: 'roll-servers',
        run: async () => {
          const next = await this.secrets.get(id, SecretName.NextPki);
          if (!next) return 'already rolled';
          const pki = JSON.parse(next) as ClusterPki;
          const spec = await this.target.spec(id);
          const secrets = { ...(await this.target.loadSecrets(id)), pki };
          await this.target.local.writeServerFiles(spec, secrets);
          for (const s of spec.servers) {
            const cert = pki.servers.find((c) => c.address === s.address)!;
            await this.target.local.reloadServer(spec, secrets, s.index, cert.certPem);
          }
          await this.secrets.replace(id, SecretName.Pki, next);
          await this.secrets.delete(id, SecretName.NextPki);
          return `${spec.servers.length} server(s) serve their new certificate`;
        },
      },
      {
        name: 'verify-cluster',
        run: async () => {
          const r = await this.target.local.waitForLeader(await this.target.spec(id), await this.target.loadSecrets(id), { timeoutMs: 30_000 });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
    ];
  }

  async succeeded({ cluster, operation }: FlowContext) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.certificates.rotated' });
  }

  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.certificates.rotation-failed', details: { reason } });
  }
}
