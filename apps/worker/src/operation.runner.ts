import { Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { Counter, Histogram } from 'prom-client';
import {
  ClusterRepository, Coalescer, OperationRepository, OperationState, TERMINAL_OPERATION_STATES, isRetryableConflict,
  type ClusterWithServers, type JobPayloads, type Operation, type OperationKind, type OperationStep,
} from '../../../libs/core/src';
import { PermanentError, type Flow } from './flows/flow';

const finished = new Counter({ name: 'operations_finished_total', help: 'Operations that ended', labelNames: ['kind', 'state'] });
const stepSeconds = new Histogram({ name: 'operation_step_duration_seconds', help: 'Time per operation step', labelNames: ['kind', 'step'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30] });

/** How long a job waits before asking again for a cluster that another operation holds. */
const LOCK_RETRY_MS = 200;
/**
 * A step still running after this long gets its "Running" entry written; a
 * quicker one is recorded with the next write (the next slow step, or the end).
 * The step log is what people watch: nothing reads it to decide what to run.
 */
const STEP_LOG_DELAY_MS = 100;
/** Operations started or ended together in one statement at most. */
const MAX_BATCH = 64;

/** Runs a statement again when PostgreSQL aborted it for a deadlock: it had no effect. */
async function retryingConflicts<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= 3 || !isRetryableConflict(e)) throw e;
    }
  }
}

/**
 * Runs one operation: takes the cluster's lock (mutating kinds, in order),
 * runs the flow's steps recording each on the row, and ends the operation.
 * Transient errors are thrown so BullMQ retries with backoff; a PermanentError,
 * or the last attempt, fails the operation with its reason.
 *
 * The statements that start an operation (claim and its cluster's row), write
 * a step log and end it successfully are shared by the operations this worker
 * runs at the same moment (Coalescer): each job still waits for its own write
 * to be committed before it goes on, so a crash loses or keeps exactly what it
 * would with a statement per operation.
 */
export class OperationRunner {
  private readonly log = new Logger('operations');
  private readonly starts: Coalescer<string, { op: Operation; cluster: ClusterWithServers | null } | null>;
  private readonly stepLogs: Coalescer<{ id: string; steps: string; progress: number; currentStep: string | null }, undefined>;
  private readonly successes: Coalescer<{ id: string; result: string | null; steps: string | null }, undefined>;

  constructor(
    private readonly operations: OperationRepository,
    private readonly clusters: ClusterRepository,
    private readonly flows: Record<OperationKind, Flow>,
  ) {
    // The claim and the cluster's row in one statement.
    this.starts = new Coalescer((ids) => retryingConflicts(() => operations.claimManyWithClusters(ids)), { maxBatch: MAX_BATCH });
    this.stepLogs = new Coalescer(async (entries) => {
      await retryingConflicts(() => operations.saveStepsMany(entries));
      return entries.map(() => undefined);
    }, { maxBatch: MAX_BATCH });
    this.successes = new Coalescer(async (entries) => {
      await retryingConflicts(() => operations.succeedMany(entries));
      return entries.map(() => undefined);
    }, { maxBatch: MAX_BATCH });
  }

  /** Called when an operation this runner ran has ended (succeeded or failed). */
  onEnded?: (op: Operation) => void;

  /** Closes the flows' connections to clusters (kept alive between steps). */
  close(): void {
    this.onClose?.();
  }

  onClose?: () => void;

  async run(job: Job<JobPayloads['run-operation']>, token: string | undefined): Promise<void> {
    const { operationId } = job.data;
    // Still unfinished, the cluster's lock taken in seq order (mutating kinds), Running, attempt counted, and the cluster's row.
    const claimed = await this.starts.submit(operationId);
    if (!claimed) {
      const now = await this.operations.get(operationId);
      if (!now || TERMINAL_OPERATION_STATES.has(now.state)) return; // done already: a replayed job is a no-op
      if (!this.flows[now.kind as OperationKind]) throw new UnrecoverableError(`no flow for operation kind ${now.kind}`);
      // The cluster is held by another operation, or an earlier one of it is unfinished: ask again later.
      await job.moveToDelayed(Date.now() + LOCK_RETRY_MS, token);
      throw new DelayedError();
    }
    const { op, cluster } = claimed;
    const flow = this.flows[op.kind as OperationKind];
    if (!flow) {
      await this.clusters.releaseLock(op.clusterId, op.id); // claimed, but it cannot run here
      throw new UnrecoverableError(`no flow for operation kind ${op.kind}`);
    }
    if (!cluster) throw new UnrecoverableError(`cluster ${op.clusterId} is gone`);
    const ctx = { operation: op, cluster };
    const steps = flow.steps(ctx);
    const log: OperationStep[] = (Array.isArray(op.steps) ? (op.steps as unknown as OperationStep[]) : []).filter((s) => s.state === 'Succeeded');
    const fields = { operationId: op.id, clusterId: cluster.id, kind: op.kind, attempt: op.attempts };
    this.log.log({ msg: op.attempts > 1 ? 'operation resumed' : 'operation started', ...fields });
    const saveLog = (progress: number, currentStep: string | null) => this.stepLogs.submit({ id: op.id, steps: JSON.stringify(log), progress, currentStep });
    let ended = false;
    try {
      for (const [i, step] of steps.entries()) {
        const started = new Date();
        const entry: OperationStep = { name: step.name, state: 'Running', startedAt: started.toISOString() };
        const at = log.findIndex((s) => s.name === step.name);
        if (at >= 0) log.splice(at, 1);
        log.push(entry);
        // A slow step shows as Running on the row; the write is awaited before anything else is written.
        let logged: Promise<void> | undefined;
        const timer = setTimeout(() => {
          logged = saveLog(Math.round((i / steps.length) * 100), step.name);
        }, STEP_LOG_DELAY_MS);
        let detail: string | void;
        try {
          detail = await step.run();
        } finally {
          clearTimeout(timer);
          await logged?.catch(() => undefined);
        }
        entry.state = 'Succeeded';
        entry.finishedAt = new Date().toISOString();
        entry.durationMs = Date.now() - started.getTime();
        if (detail) entry.detail = detail;
        stepSeconds.observe({ kind: op.kind, step: step.name }, entry.durationMs / 1000);
      }
      const result = await flow.succeeded(ctx);
      // The whole step log, the result, Succeeded and the cluster's lock freed: one write.
      await this.successes.submit({ id: op.id, result: result ? JSON.stringify(result) : null, steps: JSON.stringify(log) });
      ended = true;
      finished.inc({ kind: op.kind, state: OperationState.Succeeded });
      this.log.log({ msg: 'operation succeeded', ...fields });
      this.notifyEnded(op);
    } catch (e) {
      const current = log[log.length - 1];
      if (current?.state === 'Running') {
        current.state = 'Failed';
        current.finishedAt = new Date().toISOString();
        current.detail = (e as Error).message;
      }
      await saveLog(op.progress, current?.name ?? null).catch(() => undefined);
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
      this.notifyEnded(op);
      throw new UnrecoverableError(error.message);
    } finally {
      // succeed/fail free the lock in their own statement; otherwise (a retry, or ending failed) check the row.
      if (!ended) await this.release(op);
    }
  }

  private notifyEnded(op: Operation): void {
    try {
      this.onEnded?.(op);
    } catch (e) {
      this.log.warn({ msg: 'operation end listener failed', operationId: op.id, error: (e as Error).message });
    }
  }

  /** Frees the cluster's lock if the operation has ended (it is kept across retries). */
  private async release(op: { id: string; clusterId: string }): Promise<void> {
    const now = await this.operations.get(op.id);
    if (now && TERMINAL_OPERATION_STATES.has(now.state)) await this.clusters.releaseLock(op.clusterId, op.id);
  }
}
