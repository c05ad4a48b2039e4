import { OperationParamsError, parseOperationParams, type ClusterWithServers, type Operation, type OperationKind, type OperationParams } from '../../../../../libs/core/src';
import type { ClusterContext } from '../cluster-context';

/** One idempotent step: observe, then act on the difference. Returns a short detail for the step log. */
export interface Step {
  name: string;
  run(): Promise<string | void>;
}

export interface FlowContext {
  operation: Operation;
  /** The cluster's row as the claim read it. */
  cluster: ClusterWithServers;
  /** The cluster this attempt works on: row, secrets and Consul API, read once; reloaded by the steps that change them. */
  loaded: ClusterContext;
}

/** What an operation kind does, as a list of steps the runner records and can resume. */
export interface Flow {
  steps(ctx: FlowContext): Step[];
  /** After every step succeeded; returns the operation's result (never secrets). */
  succeeded(ctx: FlowContext): Promise<Record<string, unknown> | void>;
  /** After the operation failed for good. */
  failed(ctx: FlowContext, reason: string): Promise<void>;
}

/** A failure that retrying cannot fix: the operation fails at once with this message. */
export class PermanentError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The operation's params as its kind has them (libs/core's OPERATION_PARAMS); a row that holds another shape fails the operation for good. */
export function paramsOf<K extends OperationKind>(ctx: FlowContext, kind: K): OperationParams<K> {
  try {
    return parseOperationParams(kind, ctx.operation.params);
  } catch (e) {
    if (e instanceof OperationParamsError) throw new PermanentError('invalid_operation_params', e.message);
    throw e;
  }
}
