import { Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { Counter, Histogram } from 'prom-client';
import {
  ClusterRepository, Coalescer, DEFAULT_CLAIM, OperationRepository, OperationState, TERMINAL_OPERATION_STATES, isRetryableConflict,
  type ClusterWithServers, type JobPayloads, type Operation, type OperationKind, type OperationStep,
} from '../../../../libs/core/src';
import { PermanentError, paramsOf, type Flow } from './flows/flow';
import { TargetRefusedError } from '../../../../libs/provisioner/src';
import { TargetChangeInProgress, targetChangeStart } from './target-change';
import type { ClusterContext } from './cluster-context';

const finished = new Counter({ name: 'operations_finished_total', help: 'Operations that ended', labelNames: ['kind', 'state'] });
const handedBack = new Counter({ name: 'operation_hand_backs_total', help: 'Jobs handed back to the queue while a target change ran', labelNames: ['kind', 'step'] });
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

/** The runner's claim on an operation: the fence every write names, and what it knows of the lease. */
interface Lease {
  id: string;
  claimId: string;
  /** Until when (this process's clock) the lease certainly holds: counted from when its last renewal was sent. */
  validUntil: number;
  lost: boolean;
}

/** Thrown at a step boundary when the claim was taken over (or could not be renewed in time): the runner stops. */
class LeaseLostError extends Error {}

export interface RunnerOptions {
  /** This worker's name, recorded on the operations it claims (for people; the claim id is the fence). */
  owner: string;
  /** How long a claim's lease lasts without renewal; renewed every third of it while the operation runs. */
  leaseMs: number;
  /** The cluster an attempt works on, from the row its claim read (ClusterTarget.open). */
  open: (cluster: ClusterWithServers) => Promise<ClusterContext>;
}

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
 *
 * Fencing: each claim has a claim id and a lease. One timer renews the leases
 * of every operation this runner holds in one statement (every third of the
 * lease); every write (step log, success, failure, retry note) names the claim
 * id and changes nothing once another claim took the operation over. Before
 * each step and before ending, a runner whose lease is lost, or not known to
 * hold (the last renewal is too old: the process was paused, the database
 * slow), renews it first or stops there, doing nothing more.
 *
 * Hand-backs: a step whose target change is still in progress after a short
 * wait (TargetChangeInProgress) does not hold its worker slot while the change
 * runs. The runner writes the step log ("waiting: ...") and the step to resume
 * at, and ends its claim, in one fenced statement; the operation stays Running
 * and keeps its cluster's lock; then the job is moved to delayed and comes back
 * after the target's retry-after, to any worker, without using an attempt. The
 * next claim resumes at that step, the steps before it done. Past the change's
 * deadline (TARGET_CHANGE_DEADLINE_MS, from its first in-progress answer, kept
 * on the row) the operation fails instead.
 */
export class OperationRunner {
  private readonly log = new Logger('operations');
  private readonly starts: Coalescer<string, { op: Operation; cluster: ClusterWithServers | null; resumeAt: string | null } | null>;
  private readonly stepLogs: Coalescer<{ id: string; claimId: string; steps: string; progress: number; currentStep: string | null }, boolean>;
  private readonly successes: Coalescer<{ id: string; claimId: string; result: string | null; steps: string | null }, boolean>;
  private readonly handBacks: Coalescer<{ id: string; claimId: string; steps: string; progress: number; step: string; change: string; changeSince: string }, boolean>;
  private readonly renewals: Coalescer<Lease, boolean>;
  /** The claims this runner holds, by claim id: what the heartbeat renews. */
  private readonly leases = new Map<string, Lease>();
  private heartbeat?: NodeJS.Timeout;
  private readonly options: RunnerOptions;

  constructor(
    private readonly operations: OperationRepository,
    private readonly clusters: ClusterRepository,
    private readonly flows: Record<OperationKind, Flow>,
    options: Partial<RunnerOptions> & Pick<RunnerOptions, 'open'>,
  ) {
    this.options = { owner: options.owner ?? DEFAULT_CLAIM.owner, leaseMs: options.leaseMs ?? DEFAULT_CLAIM.leaseMs, open: options.open };
    const claim = { owner: this.options.owner, leaseMs: this.options.leaseMs };
    // The claim and the cluster's row in one statement.
    this.starts = new Coalescer((ids) => retryingConflicts(() => operations.claimManyWithClusters(ids, claim)), { maxBatch: MAX_BATCH });
    this.stepLogs = new Coalescer(async (entries) => {
      const saved = await retryingConflicts(() => operations.saveStepsMany(entries));
      return entries.map((e) => saved.has(e.claimId));
    }, { maxBatch: MAX_BATCH });
    this.successes = new Coalescer(async (entries) => {
      const ended = await retryingConflicts(() => operations.succeedMany(entries));
      return entries.map((e) => ended.has(e.claimId));
    }, { maxBatch: MAX_BATCH });
    this.handBacks = new Coalescer(async (entries) => {
      const handed = await retryingConflicts(() => operations.handBackMany(entries));
      return entries.map((e) => handed.has(e.claimId));
    }, { maxBatch: MAX_BATCH });
    this.renewals = new Coalescer(async (leases) => {
      const sent = Date.now();
      const renewed = await retryingConflicts(() => operations.renewLeases(leases, this.options.leaseMs));
      return leases.map((l) => {
        if (renewed.has(l.claimId)) l.validUntil = Math.max(l.validUntil, sent + this.options.leaseMs);
        else l.lost = true;
        return !l.lost;
      });
    }, { maxBatch: 1000 });
  }

  /** Holds a new claim: the heartbeat renews it until it is let go. */
  private hold(op: Operation, claimedAt: number): Lease {
    const lease: Lease = { id: op.id, claimId: op.claimId!, validUntil: claimedAt + this.options.leaseMs, lost: false };
    this.leases.set(lease.claimId, lease);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => {
        for (const l of this.leases.values()) {
          void this.renewals.submit(l).catch((e: unknown) => this.log.warn({ msg: 'lease renewal failed', operationId: l.id, error: (e as Error).message }));
        }
      }, Math.max(100, Math.floor(this.options.leaseMs / 3)));
      this.heartbeat.unref();
    }
    return lease;
  }

  private letGo(lease: Lease): void {
    this.leases.delete(lease.claimId);
    if (this.leases.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  /**
   * A step boundary: goes on only while the claim certainly holds; renews
   * first when that is not known. Taken over (the database says so): the
   * runner stops quietly. Not known after a few renewals (the database too
   * slow to answer within the lease): a transient error, so the attempt ends
   * through the retry path, whose writes are fenced too.
   */
  private async ensureLease(lease: Lease): Promise<void> {
    for (let tries = 0; ; tries++) {
      if (lease.lost) throw new LeaseLostError('the operation\'s lease was lost (another worker took it over)');
      if (Date.now() + this.options.leaseMs / 3 < lease.validUntil) return;
      if (tries === 3) throw new Error('the operation\'s lease could not be renewed in time');
      await this.renewals.submit(lease).catch(() => undefined);
    }
  }

  /** Called when an operation this runner ran has ended (succeeded or failed). */
  onEnded?: (op: Operation) => void;

  /** Closes the flows' connections to clusters (kept alive between steps). */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.onClose?.();
  }

  onClose?: () => void;

  async run(job: Job<JobPayloads['run-operation']>, token: string | undefined): Promise<void> {
    const { operationId } = job.data;
    // Still unfinished, the cluster's lock taken in seq order (mutating kinds), Running, attempt counted, and the cluster's row.
    const claimedAt = Date.now();
    const claimed = await this.starts.submit(operationId);
    if (!claimed) {
      const now = await this.operations.get(operationId);
      if (!now || TERMINAL_OPERATION_STATES.has(now.state)) return; // done already: a replayed job is a no-op
      if (!this.flows[now.kind as OperationKind]) throw new UnrecoverableError(`no flow for operation kind ${now.kind}`);
      // Another runner's live lease holds it (a lost or lapsed job came back): ask again when that lease would lapse.
      const leased = now.state === OperationState.Running && now.leaseUntil ? now.leaseUntil.getTime() - Date.now() : 0;
      // Otherwise the cluster is held by another operation, or an earlier one of it is unfinished: ask again later.
      await job.moveToDelayed(Date.now() + Math.min(Math.max(LOCK_RETRY_MS, leased), this.options.leaseMs), token);
      throw new DelayedError();
    }
    const { op, cluster, resumeAt } = claimed;
    const lease = this.hold(op, claimedAt);
    try {
      await this.runClaimed(job, token, op, cluster, lease, resumeAt);
    } finally {
      this.letGo(lease);
    }
  }

  private async runClaimed(
    job: Job<JobPayloads['run-operation']>, token: string | undefined, op: Operation, cluster: ClusterWithServers | null, lease: Lease, resumeAt: string | null,
  ): Promise<void> {
    const flow = this.flows[op.kind as OperationKind];
    if (!flow) {
      await this.clusters.releaseLock(op.clusterId, op.id); // claimed, but it cannot run here
      throw new UnrecoverableError(`no flow for operation kind ${op.kind}`);
    }
    if (!cluster) throw new UnrecoverableError(`cluster ${op.clusterId} is gone`);
    // Once per attempt: a retry or a hand-back reads the cluster again.
    const ctx = { operation: op, cluster, loaded: await this.options.open(cluster) };
    const steps = flow.steps(ctx);
    const saved = Array.isArray(op.steps) ? (op.steps as unknown as OperationStep[]) : [];
    const log: OperationStep[] = saved.filter((s) => s.state === 'Succeeded');
    const first = resumeIndex(steps, log, resumeAt);
    const fields = { operationId: op.id, clusterId: cluster.id, kind: op.kind, attempt: op.attempts };
    this.log.log({ msg: resumeAt ? `operation resumed at ${steps[first]?.name} (handed back)` : op.attempts > 1 ? 'operation resumed' : 'operation started', ...fields });
    const progressAt = (i: number) => Math.round((i / steps.length) * 100);
    const saveLog = async (progress: number, currentStep: string | null) => {
      if (!(await this.stepLogs.submit({ id: op.id, claimId: lease.claimId, steps: JSON.stringify(log), progress, currentStep }))) lease.lost = true;
    };
    let ended = false;
    let at = first;
    try {
      // Its params as its kind has them, checked before any step acts (a row of another shape fails for good).
      paramsOf(ctx, op.kind as OperationKind);
      for (const [i, step] of steps.entries()) {
        if (i < first) continue; // done before the job was handed back
        at = i;
        await this.ensureLease(lease);
        // A step the job was handed back in keeps its start and what it last said.
        const waited = i === first && resumeAt === step.name ? saved.find((s) => s.name === step.name && s.state === 'Running') : undefined;
        const started = waited ? new Date(waited.startedAt) : new Date();
        const entry: OperationStep = { name: step.name, state: 'Running', startedAt: started.toISOString(), ...(waited?.detail ? { detail: waited.detail } : {}) };
        const prior = log.findIndex((s) => s.name === step.name);
        if (prior >= 0) log.splice(prior, 1);
        log.push(entry);
        // A slow step shows as Running on the row; the write is awaited before anything else is written.
        let logged: Promise<void> | undefined;
        const timer = setTimeout(() => {
          logged = saveLog(progressAt(i), step.name);
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
        else delete entry.detail;
        stepSeconds.observe({ kind: op.kind, step: step.name }, entry.durationMs / 1000);
      }
      await this.ensureLease(lease);
      const result = await flow.succeeded(ctx);
      // The whole step log, the result, Succeeded and the cluster's lock freed: one write, if the claim still holds.
      if (!(await this.successes.submit({ id: op.id, claimId: lease.claimId, result: result ? JSON.stringify(result) : null, steps: JSON.stringify(log) }))) {
        lease.lost = true;
        throw new LeaseLostError('the operation\'s lease was lost before its end was written');
      }
      ended = true;
      finished.inc({ kind: op.kind, state: OperationState.Succeeded });
      this.log.log({ msg: 'operation succeeded', ...fields });
      this.notifyEnded(op);
    } catch (e) {
      if (e instanceof LeaseLostError || lease.lost) {
        // Another claim runs it now: this runner writes nothing more, and its job ends quietly.
        ended = true;
        this.log.warn({ msg: 'operation lease lost; stopped', ...fields, error: (e as Error).message });
        return;
      }
      const current = log[log.length - 1];
      let failure = e;
      if (e instanceof TargetChangeInProgress && current?.state === 'Running') {
        const start = targetChangeStart(e, op);
        if ('since' in start) {
          ended = true; // handed back or taken over: the lock stays with the operation either way
          await this.handBack(job, token, { op, lease, log, step: current, progress: progressAt(at) }, e, start.since, fields);
          return;
        }
        failure = start.timedOut;
      }
      if (current?.state === 'Running') {
        current.state = 'Failed';
        current.finishedAt = new Date().toISOString();
        current.detail = (failure as Error).message;
      }
      await saveLog(op.progress, current?.name ?? null).catch(() => undefined);
      const permanent = failure instanceof PermanentError || failure instanceof UnrecoverableError || failure instanceof TargetRefusedError;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const code = failure instanceof PermanentError || failure instanceof TargetRefusedError ? failure.code : 'step_failed';
      const error = { code, message: `${current?.name ?? 'operation'}: ${(failure as Error).message}` };
      if (!permanent && !lastAttempt) {
        if (await this.operations.noteRetry(op.id, lease.claimId, error)) {
          this.log.warn({ msg: 'operation step failed; will retry', ...fields, error: error.message });
          throw failure;
        }
        ended = true;
        this.log.warn({ msg: 'operation lease lost; stopped', ...fields, error: error.message });
        return;
      }
      if (Date.now() >= lease.validUntil) await this.renewals.submit(lease).catch(() => undefined);
      if (lease.lost) {
        ended = true;
        this.log.warn({ msg: 'operation lease lost; stopped', ...fields, error: error.message });
        return;
      }
      // The flow records what failed on the cluster before the operation ends and frees the cluster.
      await flow.failed(ctx, error.message).catch((err: unknown) => this.log.error({ msg: 'failure hook failed', ...fields, error: (err as Error).message }));
      if (!(await this.operations.fail(op.id, error, lease.claimId))) {
        ended = true;
        this.log.warn({ msg: 'operation lease lost; stopped', ...fields, error: error.message });
        return;
      }
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

  /**
   * Gives the job back to the queue while a target change runs: the step log
   * ("waiting: ..."), the step to resume at and the change's start are written
   * and the claim ended in one fenced statement, then the job waits in the
   * delayed set for the target's retry-after. A runner stopped between the two
   * leaves an operation any claim takes at once (no lease): its job, still
   * active, is found stalled once its lock lapses and runs again; one stopped
   * after them leaves a delayed job any worker runs when due.
   */
  private async handBack(
    job: Job<JobPayloads['run-operation']>, token: string | undefined,
    run: { op: Operation; lease: Lease; log: OperationStep[]; step: OperationStep; progress: number },
    e: TargetChangeInProgress, since: Date, fields: Record<string, unknown>,
  ): Promise<void> {
    const { op, lease, log, step } = run;
    step.detail = `waiting: ${e.detail}`;
    const handed = await this.handBacks.submit({
      id: op.id, claimId: lease.claimId, steps: JSON.stringify(log), progress: run.progress, step: step.name, change: e.change, changeSince: since.toISOString(),
    });
    if (!handed) {
      lease.lost = true;
      this.log.warn({ msg: 'operation lease lost; stopped', ...fields, error: 'the claim was taken over before the hand-back was written' });
      return;
    }
    handedBack.inc({ kind: op.kind, step: step.name });
    this.log.log({ msg: 'operation handed back to the queue while its target change runs', ...fields, step: step.name, detail: e.detail, retryAfterMs: e.retryAfterMs });
    await job.moveToDelayed(Date.now() + e.retryAfterMs, token);
    throw new DelayedError();
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

/**
 * Where a claim starts: at the step the job was handed back in, when every
 * step before it Succeeded (the log says so); else at the first step (a first
 * run, or a retry: steps are idempotent and run again).
 */
function resumeIndex(steps: readonly { name: string }[], log: readonly OperationStep[], resumeAt: string | null): number {
  const at = resumeAt === null ? -1 : steps.findIndex((s) => s.name === resumeAt);
  if (at <= 0) return 0;
  const done = new Set(log.filter((s) => s.state === 'Succeeded').map((s) => s.name));
  return steps.slice(0, at).every((s) => done.has(s.name)) ? at : 0;
}
