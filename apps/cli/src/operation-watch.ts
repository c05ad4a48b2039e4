import type { OperationView } from '../../../libs/contracts/src';
import type { CommandContext } from './command';
import { progressReporter, type ProgressState } from './progress';
import { Unsuccessful, watch } from './watch';

const FINISHED = new Set(['Succeeded', 'Failed', 'Canceled']);

export function operationProgress(op: OperationView): ProgressState {
  return { percent: op.progress, state: op.state, detail: op.currentStep ?? (op.state === 'Queued' ? 'waiting to start' : null) };
}

/** Polls GET /v1/operations/{id} until it ends; progress on stderr. Returns it when Succeeded, else throws Unsuccessful. */
export async function waitForOperation(ctx: CommandContext, id: string): Promise<OperationView> {
  const api = ctx.api();
  const op = await watch({
    load: () => api.get<OperationView>(`/v1/operations/${encodeURIComponent(id)}`),
    progress: operationProgress,
    finished: (o) => FINISHED.has(o.state),
    reporter: progressReporter(ctx.io.stderr),
  });
  if (op.state !== 'Succeeded') throw new Unsuccessful(`operation ${op.id} (${op.kind}) ${op.state}${op.error ? `: ${op.error.message}` : ''}`, op);
  return op;
}

/** What to say after a 202 when not waiting. */
export function followHint(op: OperationView): string {
  return `Operation ${op.id} is ${op.state}; follow it with 'hcs ops wait ${op.id}'.`;
}
