import { Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { Counter, Histogram } from 'prom-client';
import {
  ClusterRepository, OperationRepository, OperationState, TERMINAL_OPERATION_STATES,
  type JobPayloads, type OperationKind, type OperationStep,
} from '../../../libs/core/src';
import { PermanentError, type Flow } from './flows/flow';

const finished = new Counter({ name: 'operations_finished_total', help: 'Operations that ended', labelNames: ['kind', 'state'] });
const stepSeconds = new Histogram({ name: 'operation_step_duration_seconds', help: 'Time per operation step', labelNames: ['kind', 'step'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30] });

/** How long a job waits before asking again for a cluster that another operation holds. */
const LOCK_RETRY_MS = 200;

/**
 * Runs one operation: takes the cluster's lock (mutating kinds, in order),
 * runs the flow's steps recording each on the row, and ends the operation.
 * Transient errors are thrown so BullMQ retries with backoff; a PermanentError,
 * or the last attempt, fails the operation with its reason.
 */
export class OperationRunner {
  private readonly log = new Logger('operations');

  constructor(
    private readonly operations: OperationRepository,
    private readonly clusters: ClusterRepository,
    private readonly flows: Record<OperationKind, Flow>,
  ) {}

  /** Closes the flows' connections to clusters (kept alive between steps). */
  close(): void {
    this.onClose?.();
  }

  onClose?: () => void;

  async run(job: Job<JobPayloads['run-operation']>, token: string | undefined): Promise<void> {
    const { operationId } = job.data;
    // One statement: still unfinished, the cluster's lock taken in seq order (mutating kinds), Running, attempt counted.
    const op = await this.operations.claim(operationId);
    if (!op) {
      const now = await this.operations.get(operationId);
      if (!now || TERMINAL_OPERATION_STATES.has(now.state)) return; // done already: a replayed job is a no-op
      if (!this.flows[now.kind as OperationKind]) throw new UnrecoverableError(`no flow for operation kind ${now.kind}`);
      // The cluster is held by another operation, or an earlier one of it is unfinished: ask again later.
      await job.moveToDelayed(Date.now() + LOCK_RETRY_MS, token);
      throw new DelayedError();
    }
    const flow = this.flows[op.kind as OperationKind];
    if (!flow) {
      await this.clusters.releaseLock(op.clusterId, op.id); // claimed, but it cannot run here
      throw new UnrecoverableError(`no flow for operation kind ${op.kind}`);
    }
    const cluster = await this.clusters.getRaw(op.clusterId);
    if (!cluster) throw new UnrecoverableError(`cluster ${op.clusterId} is gone`);
    const ctx = { operation: op, cluster };
    const steps = flow.steps(ctx);
    const log: OperationStep[] = (Array.isArray(op.steps) ? (op.steps as unknown as OperationStep[]) : []).filter((s) => s.state === 'Succeeded');
    const fields = { operationId: op.id, clusterId: cluster.id, kind: op.kind, attempt: op.attempts };
    this.log.log({ msg: op.attempts > 1 ? 'operation resumed' : 'operation started', ...fields });
    let ended = false;
    try {
      for (const [i, step] of steps.entries()) {
        const started = new Date();
        const entry: OperationStep = { name: step.name, state: 'Running', startedAt: started.toISOString() };
        const at = log.findIndex((s) => s.name === step.name);
        if (at >= 0) log.splice(at, 1);
        log.push(entry);
        await this.operations.saveSteps(op.id, log, Math.round((i / steps.length) * 100), step.name);
        const detail = await step.run();
        entry.state = 'Succeeded';
        entry.finishedAt = new Date().toISOString();
        entry.durationMs = Date.now() - started.getTime();
        if (detail) entry.detail = detail;
        stepSeconds.observe({ kind: op.kind, step: step.name }, entry.durationMs / 1000);
      }
      await this.operations.saveSteps(op.id, log, 100, null);
      const result = await flow.succeeded(ctx);
      await this.operations.succeed(op.id, result ?? undefined);
      ended = true; // and the lock freed with it
      finished.inc({ kind: op.kind, state: OperationState.Succeeded });
      this.log.log({ msg: 'operation succeeded', ...fields });
    } catch (e) {
      const current = log[log.length - 1];
      if (current?.state === 'Running') {
        current.state = 'Failed';
        current.finishedAt = new Date().toISOString();
        current.detail = (e as Error).message;
      }
      await this.operations.saveSteps(op.id, log, op.progress, current?.name ?? null).catch(() => undefined);
      const permanent = e instanceof PermanentError || e instanceof UnrecoverableError;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const error = { code: e instanceof PermanentError ? e.code : 'step_failed', message: `${current?.name ?? 'operation'}: ${(e as Error).message}` };
      if (!permanent && !lastAttempt) {
        await this.operations.noteRetry(op.id, error);
        this.log.warn({ msg: 'operation step failed; will retry', ...fields, error: error.message });
        throw e;
      }
      // The flow records what failed on the cluster before the operation ends and frees the cluster.
      await flow.failed(ctx, error.message).catch((err: unknown) => this.log.error({ msg: 'failure hook failed', ...fields, error: (err as Error).message }));
      await this.operations.fail(op.id, error);
      ended = true;
      finished.inc({ kind: op.kind, state: OperationState.Failed });
      this.log.error({ msg: 'operation failed', ...fields, error: error.message });
      throw new UnrecoverableError(error.message);
    } finally {
      // succeed/fail free the lock in their own statement; otherwise (a retry, or ending failed) check the row.
      if (!ended) await this.release(op);
    }
  }

  /** Frees the cluster's lock if the operation has ended (it is kept across retries). */
  private async release(op: { id: string; clusterId: string }): Promise<void> {
    const now = await this.operations.get(op.id);
    if (now && TERMINAL_OPERATION_STATES.has(now.state)) await this.clusters.releaseLock(op.clusterId, op.id);
  }
}
