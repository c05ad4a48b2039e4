import { AuditRepository, OperationKind, SnapshotKind, SnapshotRepository, SnapshotState } from '../../../../../libs/core/src';
import type { ClusterSnapshots } from '../cluster-snapshots';
import { paramsOf, type Flow, type FlowContext, type Step } from './flow';

function snapshotIdOf(ctx: FlowContext): string {
  return paramsOf(ctx, OperationKind.Snapshot).snapshotId;
}

/** Snapshot: take it through Consul's snapshot API, store it, then prune scheduled ones past retention. */
export class SnapshotFlow implements Flow {
  constructor(private readonly snapshots: ClusterSnapshots, private readonly rows: SnapshotRepository, private readonly audit: AuditRepository) {}

  steps(ctx: FlowContext): Step[] {
    const id = snapshotIdOf(ctx);
    return [
      { name: 'take-snapshot', run: () => this.snapshots.take(id, ctx.loaded) },
      {
        name: 'apply-retention',
        run: async () => {
          const old = await this.rows.beyondRetention(ctx.cluster.id, SnapshotKind.Scheduled, ctx.cluster.snapshotRetention);
          for (const s of old) await this.snapshots.remove(s.id);
          return `${old.length} scheduled snapshot(s) past retention removed`;
        },
      },
    ];
  }

  async succeeded(ctx: FlowContext) {
    const row = await this.rows.get(snapshotIdOf(ctx));
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'snapshot.created', details: { snapshotId: row?.id, kind: row?.kind, size: Number(row?.size ?? 0) } });
    return { snapshotId: row?.id };
  }

  async failed(ctx: FlowContext, reason: string) {
    await this.rows.setState(snapshotIdOf(ctx), SnapshotState.Failed);
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: 'system', action: 'snapshot.failed', details: { reason } });
  }
}

/** Delete a snapshot: its blob, then its row. */
export class DeleteSnapshotFlow implements Flow {
  constructor(private readonly snapshots: ClusterSnapshots, private readonly audit: AuditRepository) {}

  steps(ctx: FlowContext): Step[] {
    return [{ name: 'delete-blob', run: () => this.snapshots.remove(snapshotIdOf(ctx)) }];
  }

  async succeeded(ctx: FlowContext) {
    await this.audit.record({ tenantId: ctx.cluster.tenantId, clusterId: ctx.cluster.id, operationId: ctx.operation.id, actor: ctx.operation.requestedBy, action: 'snapshot.deleted', details: { snapshotId: snapshotIdOf(ctx) } });
  }

  async failed() {}
}
