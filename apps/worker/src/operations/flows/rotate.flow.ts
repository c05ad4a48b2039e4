import { AuditRepository, SecretName, SecretRepository } from '../../../../../libs/core/src';
import {
  generateGossipKey, planManagementTokenRotation, withManagementTokenAccessors,
  type ClusterPki, type ManagementTokenAccessors, type ManagementTokenRotation,
} from '../../../../../libs/provisioner/src';
import { issueServerCertificates } from '../cluster-secrets';
import type { SecondarySteps } from '../../federation/secondary-steps';
import type { ClusterTarget } from '../cluster-target';
import { describeRoll, restartServersOnOldConfig } from '../rolling-restart';
import { PermanentError, type Flow, type FlowContext, type Step } from './flow';

/**
 * Gossip key rotation. The next key is chosen and sealed first, so a retry
 * rotates to the same key; then Consul's keyring procedure (install, use,
 * remove the old, every member confirmed); then the stored key and the server
 * configs follow. No restart: the keyring is live. On a federation's primary
 * the keyring calls reach every datacenter (one WAN pool, one key), and the
 * secondaries' stored keys and configs follow too; a secondary's key is its
 * primary's (the API refuses a rotation there).
 */
export class RotateGossipKeyFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly secrets: SecretRepository,
    private readonly audit: AuditRepository,
    private readonly secondary: SecondarySteps,
  ) {}

  steps({ cluster, loaded }: FlowContext): Step[] {
    const id = cluster.id;
    return [
      { name: 'choose-key', run: async () => void (await this.secrets.putIfAbsent(id, SecretName.NextGossipKey, () => generateGossipKey())) },
      {
        name: 'rotate-keyring',
        run: async () => {
          const next = await this.secrets.get(id, SecretName.NextGossipKey);
          if (!next) return 'already rotated';
          const r = await loaded.consul.rotateGossipKey(next);
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
            await loaded.reload();
          }
          await this.target.writeServerConfig(loaded.spec, loaded.secrets);
        },
      },
      // The key is the federation's: a primary's secondaries keep it too (the keyring calls reached them already).
      this.secondary.shareGossipKey(loaded),
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

  steps({ cluster, loaded }: FlowContext): Step[] {
    const id = cluster.id;
    return [
      {
        name: 'issue-certificates',
        run: async () => {
          await this.secrets.putIfAbsent(id, SecretName.NextPki, async () => {
            const { secrets: { pki }, spec } = loaded;
            const servers = await issueServerCertificates(pki, spec.datacenter, spec.servers);
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
          const { spec } = loaded;
          const secrets = { ...loaded.secrets, pki };
          await this.target.writeServerConfig(spec, secrets);
          for (const s of spec.servers) {
            const cert = pki.servers.find((c) => c.address === s.address)!;
            await this.target.reloadServer(spec, secrets, s.index, cert.certPem);
          }
          await this.target.secrets.replacePki(id, pki);
          await this.secrets.delete(id, SecretName.NextPki);
          await loaded.reload();
          return `${spec.servers.length} server(s) serve their new certificate`;
        },
      },
      {
        name: 'verify-cluster',
        run: async () => {
          const r = await loaded.consul.waitForLeader({ timeoutMs: 30_000 });
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

/**
 * Management token rotation with no downtime. Consul 1.8 treats the token in
 * acl.tokens.master specially: a server that becomes leader creates it again
 * if it is missing, and reads it only at start (SIGHUP does not change it).
 * So deleting the old token is durable only once no running server has it in
 * its config. Steps, each safe to run again after a crash:
 *   1. choose the next token's ids and seal them with the list of tokens to
 *      revoke (a retry reuses them; a rotation that failed for good is carried on);
 *   2. create it with the global-management policy, authorized by the current token;
 *   3. check that every server resolves it and that it may write;
 *   4. write every server's config with it (acl.tokens.master and agent) and
 *      restart the servers still running an older config one at a time,
 *      followers first and the leader last, healthy before the next;
 *   5. make it the stored management token (everything the worker does uses it from now on);
 *   6. delete the old token(s) and wait until every server answers "ACL not found".
 * The AccessorIDs of the new token (at 5) and of the old ones (at 6, before
 * they are deleted) are recorded for good: a restore of a snapshot taken
 * before the rotation brings the old ones back, and deletes them again.
 */
export class RotateManagementTokenFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly secrets: SecretRepository,
    private readonly audit: AuditRepository,
    private readonly readyTimeoutMs: number,
  ) {}

  steps({ cluster, operation, loaded }: FlowContext): Step[] {
    const id = cluster.id;
    const timeout = { timeoutMs: this.readyTimeoutMs };
    const plan = async (): Promise<ManagementTokenRotation> => {
      const found = await this.readPlan(id);
      if (found?.operationId !== operation.id) throw new Error('the rotation record is not this operation\'s; choose-token runs first');
      return found;
    };
    return [
      {
        name: 'choose-token',
        run: async () => {
          const current = await this.secrets.get(id, SecretName.ManagementToken);
          if (!current) throw new PermanentError('cluster_not_ready', 'the cluster has no management token yet');
          const found = await this.readPlan(id);
          const next = planManagementTokenRotation(operation.id, current, found);
          if (next !== found) await this.secrets.replace(id, SecretName.ManagementTokenRotation, JSON.stringify(next));
          const carried = found !== null && found !== next && found.accessorId === next.accessorId;
          return `next token ${next.accessorId}${carried ? ` (carried on from operation ${found.operationId})` : ''}, ${next.revoke.length} to revoke`;
        },
      },
      {
        name: 'create-token',
        run: async () => {
          const p = await plan();
          // Created by an earlier attempt (or, after a snapshot restore, by a leader whose config names it)?
          const existing = await loaded.consul.tokenInfo(p.secretId);
          if (existing) return `token ${existing.accessorId} exists already`;
          const created = await loaded.consul.createToken({
            accessorId: p.accessorId, secretId: p.secretId, description: `Management token of the control plane (operation ${operation.id})`,
          });
          return `token ${created.accessorId} created`;
        },
      },
      {
        name: 'verify-token',
        run: async () => {
          const p = await plan();
          const next = loaded.consul.with({ ...loaded.secrets, managementToken: p.secretId });
          const info = await next.waitForTokenOnEveryServer(p.secretId, timeout);
          if (!info.policies.includes('global-management')) {
            throw new PermanentError('token_not_management', `token ${info.accessorId} does not have the global-management policy`);
          }
          await next.verifyAclEnforced();
          return `token ${info.accessorId} resolves on ${loaded.spec.servers.length} server(s) and may write`;
        },
      },
      {
        name: 'roll-servers',
        run: async () => {
          const p = await plan();
          const { spec } = loaded;
          const next = { ...loaded.secrets, managementToken: p.secretId };
          await this.target.writeServerConfig(spec, next);
          const r = await restartServersOnOldConfig(this.target, spec, next, timeout);
          const started = r.started.length ? `; started ${r.started.join(', ')}` : '';
          return r.restarted.length ? `restarted in order ${describeRoll(r)}${started}` : `every server runs the new config${started}`;
        },
      },
      {
        name: 'switch-token',
        run: async () => {
          const p = await plan();
          // Snapshots from now on hold it under this AccessorID (the planned one, unless a leader made it again under another).
          const info = await loaded.consul.tokenInfo(p.secretId);
          await recordManagementTokenAccessors(this.secrets, id, info ? [p.accessorId, info.accessorId] : [p.accessorId]);
          if (loaded.secrets.managementToken === p.secretId) return 'already switched';
          await this.secrets.replace(id, SecretName.ManagementToken, p.secretId);
          await loaded.reload();
        },
      },
      {
        name: 'revoke-old-token',
        run: async () => {
          const p = await plan();
          if (p.revoke.length === 0) return 'nothing left to revoke';
          const { spec, secrets, consul } = loaded;
          if (secrets.managementToken !== p.secretId) throw new Error('the stored management token is not the new one yet');
          // A server still running a config that names an old token would make it again on becoming leader.
          const old = await this.target.serversOnOldConfig(spec, secrets);
          if (old.length > 0) throw new Error(`server(s) ${old.join(', ')} still run a config naming an old token`);
          // Recorded before they go (a retry finds a deleted one gone, and recorded by the attempt that deleted it).
          const accessors: string[] = [];
          for (const secretId of p.revoke) {
            const info = await consul.tokenInfo(secretId);
            if (info) accessors.push(info.accessorId);
          }
          await recordManagementTokenAccessors(this.secrets, id, accessors);
          const revoked: string[] = [];
          for (const secretId of p.revoke) revoked.push((await consul.deleteTokenBySecret(secretId, timeout)) ?? 'one already gone');
          await this.secrets.replace(id, SecretName.ManagementTokenRotation, JSON.stringify({ ...p, revoke: [] } satisfies ManagementTokenRotation));
          return `revoked ${revoked.join(', ')}; every server answers "ACL not found"`;
        },
      },
    ];
  }

  private async readPlan(clusterId: string): Promise<ManagementTokenRotation | null> {
    const raw = await this.secrets.get(clusterId, SecretName.ManagementTokenRotation);
    return raw === null ? null : (JSON.parse(raw) as ManagementTokenRotation);
  }

  async succeeded({ cluster, operation }: FlowContext) {
    const accessorId = (await this.readPlan(cluster.id))?.accessorId;
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.management-token.rotated', details: { accessorId } });
  }

  /** The rotation record stays: the next rotation carries it on, so no token it made is left behind. */
  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.management-token.rotation-failed', details: { reason } });
  }
}

/**
 * Adds AccessorIDs to the cluster's durable list of its management tokens'
 * (see ManagementTokenAccessors); returns the whole list.
 */
export async function recordManagementTokenAccessors(secrets: SecretRepository, clusterId: string, add: readonly string[]): Promise<string[]> {
  const raw = await secrets.get(clusterId, SecretName.ManagementTokenAccessors);
  const stored = raw === null ? null : (JSON.parse(raw) as ManagementTokenAccessors);
  const next = withManagementTokenAccessors(stored, add);
  if (next) await secrets.replace(clusterId, SecretName.ManagementTokenAccessors, JSON.stringify(next));
  return (next ?? stored)?.accessorIds ?? [];
}
