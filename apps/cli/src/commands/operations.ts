import type { OperationView } from '../../../../libs/contracts/src';
import { command, group } from '../command';
import type { Output } from '../output';
import { waitForOperation } from '../operation-watch';
import { Unsuccessful } from '../watch';

const operationPath = (id: string) => `/v1/operations/${encodeURIComponent(id)}`;

export function printOperation(out: Output, op: OperationView): void {
  out.fields([
    ['ID', op.id],
    ['Kind', op.kind],
    ['Cluster', op.clusterId],
    ['State', op.state],
    ['Progress', `${op.progress}%`],
    ['Current step', op.currentStep],
    ['Attempts', op.attempts],
    ['Error', op.error ? `${op.error.code}: ${op.error.message}` : null],
    ['Created', op.createdAt],
    ['Started', op.startedAt],
    ['Finished', op.finishedAt],
  ]);
  if (!op.steps.length) return;
  out.line();
  out.table(
    ['STEP', 'STATE', 'DURATION', 'DETAIL'],
    op.steps.map((s) => [s.name, s.state, s.durationMs === undefined ? null : `${(s.durationMs / 1000).toFixed(1)} s`, s.detail]),
  );
}

const get = command({
  name: 'get',
  summary: 'Show an operation: state, progress and its step log',
  positionals: ['OP'],
  async run(ctx) {
    const op = await ctx.api().get<OperationView>(operationPath(ctx.args.positionals[0]!));
    ctx.output.result(op, () => printOperation(ctx.output, op));
  },
});

const wait = command({
  name: 'wait',
  summary: 'Wait for an operation to end, showing its progress (exit 1 unless it Succeeded)',
  positionals: ['OP'],
  async run(ctx) {
    try {
      const op = await waitForOperation(ctx, ctx.args.positionals[0]!);
      ctx.output.result(op, () => printOperation(ctx.output, op));
    } catch (e) {
      // The step log says where it stopped.
      if (e instanceof Unsuccessful && !ctx.output.json) printOperation(ctx.output, e.result as OperationView);
      throw e;
    }
  },
});

const list = command({
  name: 'list',
  summary: "List a cluster's operations",
  positionals: ['CLUSTER'],
  async run(ctx) {
    const res = await ctx.api().get<{ operations: OperationView[] }>(`/v1/clusters/${encodeURIComponent(ctx.args.positionals[0]!)}/operations`);
    ctx.output.result(res, () => {
      if (!res.operations.length) return ctx.output.line('No operations.');
      ctx.output.table(
        ['ID', 'KIND', 'STATE', 'PROGRESS', 'CREATED', 'FINISHED'],
        res.operations.map((o) => [o.id, o.kind, o.state, `${o.progress}%`, o.createdAt, o.finishedAt]),
      );
    });
  },
});

const cancel = command({
  name: 'cancel',
  summary: 'Cancel an operation that has not started yet (a running one cannot be: exit 3 says why)',
  positionals: ['OP'],
  async run(ctx) {
    const body = await ctx.api().post<OperationView | { operation: OperationView }>(`${operationPath(ctx.args.positionals[0]!)}/cancel`);
    const operation = 'operation' in body ? body.operation : body;
    ctx.output.result(body, () => ctx.output.line(`Operation ${operation.id} is ${operation.state}.`));
  },
});

export const operations = group('ops', 'Follow and cancel operations (create, delete, snapshot, restore, scale, upgrade)', [get, list, wait, cancel]);
