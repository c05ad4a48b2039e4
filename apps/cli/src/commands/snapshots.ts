import type { OperationView, SnapshotView } from '../../../../libs/contracts/src';

type Accepted = { operation: OperationView };
import { command, group } from '../command';
import type { Output } from '../output';
import { followHint, waitForOperation } from '../operation-watch';

const wait = { type: 'boolean', description: 'wait until the operation ends, showing its progress' } as const;
const snapshotsPath = (clusterId: string) => `/v1/clusters/${encodeURIComponent(clusterId)}/snapshots`;

function size(bytes: number | null): string | null {
  if (bytes === null) return null;
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function printSnapshot(out: Output, s: SnapshotView): void {
  out.fields([
    ['ID', s.id],
    ['Name', s.name],
    ['Kind', s.kind],
    ['State', s.state],
    ['Size', size(s.size)],
    ['SHA-256', s.sha256],
    ['Consul index', s.consulIndex],
    ['Created', s.createdAt],
  ]);
}

const create = command({
  name: 'create',
  summary: 'Take a snapshot of a cluster now',
  positionals: ['CLUSTER'],
  options: { name: { type: 'string', value: 'NAME', description: 'a name for it (default: manual <time>)' }, wait },
  async run(ctx) {
    const clusterId = ctx.args.positionals[0]!;
    const name = ctx.args.string('name');
    const api = ctx.api();
    const res = await api.post<Accepted & { snapshot: SnapshotView }>(snapshotsPath(clusterId), name === undefined ? {} : { name });
    if (!ctx.args.flag('wait')) {
      return ctx.output.result(res, () => ctx.output.line(`Taking snapshot ${res.snapshot.name} (${res.snapshot.id}). ${followHint(res.operation)}`));
    }
    await waitForOperation(ctx, res.operation.id);
    const { snapshots } = await api.get<{ snapshots: SnapshotView[] }>(snapshotsPath(clusterId));
    const taken = snapshots.find((s) => s.id === res.snapshot.id) ?? res.snapshot;
    ctx.output.result(taken, () => printSnapshot(ctx.output, taken));
  },
});

const list = command({
  name: 'list',
  summary: "List a cluster's snapshots",
  positionals: ['CLUSTER'],
  async run(ctx) {
    const res = await ctx.api().get<{ snapshots: SnapshotView[] }>(snapshotsPath(ctx.args.positionals[0]!));
    ctx.output.result(res, () => {
      if (!res.snapshots.length) return ctx.output.line('No snapshots.');
      ctx.output.table(
        ['ID', 'NAME', 'KIND', 'STATE', 'SIZE', 'CREATED'],
        res.snapshots.map((s) => [s.id, s.name, s.kind, s.state, size(s.size), s.createdAt]),
      );
    });
  },
});

const restore = command({
  name: 'restore',
  summary: "Restore a snapshot over the cluster's data (a safety snapshot is taken first)",
  positionals: ['CLUSTER', 'SNAPSHOT'],
  options: { 'no-safety-snapshot': { type: 'boolean', description: 'skip the snapshot taken just before restoring' }, wait },
  async run(ctx) {
    const [clusterId, snapshotId] = ctx.args.positionals as [string, string];
    const body = ctx.args.flag('no-safety-snapshot') ? { takeSnapshot: false } : {};
    const res = await ctx.api().post<Accepted>(`${snapshotsPath(clusterId)}/${encodeURIComponent(snapshotId)}/restore`, body);
    if (!ctx.args.flag('wait')) return ctx.output.result(res, () => ctx.output.line(`Restoring snapshot ${snapshotId}. ${followHint(res.operation)}`));
    const op = await waitForOperation(ctx, res.operation.id);
    ctx.output.result(op, () => ctx.output.line(`Restored snapshot ${snapshotId} to cluster ${clusterId}.`));
  },
});

export const snapshots = group('snapshots', "Take, list and restore a cluster's snapshots", [create, list, restore]);
