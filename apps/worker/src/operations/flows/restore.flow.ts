import { AuditRepository, ClusterRepository, IssuedTokenRepository, OperationKind, SecretRepository, SnapshotKind, SnapshotRepository, SnapshotState } from '../../../../../libs/core/src';
import type { SecondarySteps } from '../../federation/secondary-steps';
import type { ClusterSnapshots } from '../cluster-snapshots';
import type { ConsulUiRevoker } from '../../consul-ui/consul-ui-revoker';
import { paramsOf, type Flow, type FlowContext, type Step } from './flow';
import { recordManagementTokenAccessors } from './rotate.flow';

/**
 * Restore: a pre-restore safety snapshot first (unless asked not to), then the
 * chosen snapshot is downloaded, checked against its recorded checksum and
 * restored; the cluster has its leader and voters again. Last, the management
 * tokens a rotation retired since the snapshot was taken are back in the
 * restored ACL state: each is deleted again (see ManagementTokenAccessors), and
 * so is every token a customer made through the control plane that was revoked
 * since (IssuedToken), and every Consul UI token (their sessions end; see
 * ConsulUiRevoker.afterRestore).
 */
export class RestoreFlow implements Flow {
  /** What verify-snapshot downloaded and checked, for the restore step of the same attempt (a resumed attempt downloads again). */
  private readonly verified = new Map<string, Buffer>();

  constructor(
    private readonly secrets: SecretRepository,
    private readonly snapshots: ClusterSnapshots,
    private readonly rows: SnapshotRepository,
    private readonly clusters: ClusterRepository,
    private readonly audit: AuditRepository,
    private readonly readyTimeoutMs: number,
    private readonly tokens: IssuedTokenRepository,
    private readonly uiSessions: ConsulUiRevoker,
    private readonly secondary: SecondarySteps,
  ) {}

  steps(ctx: FlowContext): Step[] {
    const p = paramsOf(ctx, OperationKind.Restore);
    const { loaded } = ctx;
    const id = ctx.cluster.id;
    const steps: Step[] = [];
    if (p.preRestoreSnapshotId) {
      const preId = p.preRestoreSnapshotId;
      steps.push({
        name: 'pre-restore-snapshot',
        run: async () => {
          await this.rows.ensurePending(ctx.cluster, preId, `before restoring ${p.snapshotId.slice(0, 8)}`, SnapshotKind.PreRestore, ctx.operation.id);
          return this.snapshots.take(preId, loaded);
        },
      });
    }
    steps.push(
      {
        name: 'verify-snapshot',
        run: async () => {
          const data = await this.snapshots.fetchVerified(p.snapshotId);
          this.verified.set(ctx.operation.id, data);
          return `${data.length} bytes, checksum verified`;
        },
      },
      {
        name: 'restore',
        run: async () => {
          const data = this.verified.get(ctx.operation.id) ?? (await this.snapshots.fetchVerified(p.snapshotId));
          this.verified.delete(ctx.operation.id);
          await loaded.consul.restoreSnapshot(data);
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
        name: 'revoke-retired-tokens',
        run: async () => {
          const { consul, secrets } = loaded;
          const timeout = { timeoutMs: this.readyTimeoutMs };
          // The configured master: in the restored state, or made again by the leader (under a new AccessorID) if it lacks it.
          const current = await consul.waitForTokenOnEveryServer(secrets.managementToken, timeout);
          const retiredManagement = (await recordManagementTokenAccessors(this.secrets, id, [current.accessorId])).filter((a) => a !== current.accessorId);
          // Revoke operations take the cluster's lock too: none runs beside this step.
          const revoked = await this.tokens.revokedAccessors(id);
          const deleted: string[] = [];
          const deletedRevoked: string[] = [];
          for (const accessorId of retiredManagement) {
            if ((await consul.deleteTokenByAccessor(accessorId)) === 'deleted') deleted.push(accessorId);
          }
          for (const accessorId of revoked) {
            if ((await consul.deleteTokenByAccessor(accessorId)) === 'deleted') deletedRevoked.push(accessorId);
          }
          const retired = [...retiredManagement, ...revoked];
          // Every server has applied the restore and the deletions before it is asked.
          await consul.waitForHealthy(timeout);
          await consul.waitForTokensAbsentOnEveryServer(retired, timeout);
          const back = [
            deleted.length > 0 ? `deleted ${deleted.length} retired management token(s) the snapshot brought back (${deleted.join(', ')})` : 'no retired management token came back',
            ...(deletedRevoked.length > 0 ? [`deleted ${deletedRevoked.length} revoked customer token(s) it brought back (${deletedRevoked.join(', ')})`] : []),
          ].join('; ');
          // Consul UI tokens of the snapshot's time (revoked ones too) are back, those made since are gone: all go, their sessions end.
          const ui = await this.uiSessions.afterRestore(id);
          return `${back}; every server rejects ${retired.length} retired token(s) and resolves the current one (${current.accessorId}); ${ui.deleted} Consul UI token(s) deleted, ${ui.sessions} UI session(s) ended`;
        },
      },
      // A primary's restore takes the federation's ACLs back to the snapshot's: its secondaries' tokens are made again.
      this.secondary.restoreAcls(loaded),
    );
    return steps;
  }

  async succeeded(ctx: FlowContext) {
    const p = paramsOf(ctx, OperationKind.Restore);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'cluster.restored', details: { ...p } });
    return { snapshotId: p.snapshotId, preRestoreSnapshotId: p.preRestoreSnapshotId ?? null };
  }

  async failed(ctx: FlowContext, reason: string) {
    this.verified.delete(ctx.operation.id);
    const p = paramsOf(ctx, OperationKind.Restore);
    if (p.preRestoreSnapshotId) {
      const pre = await this.rows.get(p.preRestoreSnapshotId);
      if (pre && pre.state === SnapshotState.Pending) await this.rows.setState(pre.id, SnapshotState.Failed);
    }
    // The cluster keeps serving; its state says what failed.
    await this.clusters.setState(ctx.cluster.id, ctx.cluster.state as never, `restore failed: ${reason}`);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: 'system', action: 'cluster.restore.failed', details: { reason } });
  }
}
