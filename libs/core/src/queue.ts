import { Queue, type ConnectionOptions } from 'bullmq';
import IORedis from 'ioredis';

/**
 * The job catalog: one union of job names with a payload per name. Payloads
 * carry ids only; the database row is the truth. Every name needs exactly one
 * handler in the worker (checked at start-up).
 */
export interface JobPayloads {
  'run-operation': { operationId: string };
  /** Consul UI sessions marked revoked (sign-out, a lost role): the worker deletes their Consul tokens. */
  'revoke-consul-ui-sessions': { uiSessionIds: string[] };
}
export type JobName = keyof JobPayloads;
export const JOB_NAMES: readonly JobName[] = ['run-operation', 'revoke-consul-ui-sessions'];

export const OPERATIONS_QUEUE = 'operations';

export function createRedis(url: string, forWorker: boolean): IORedis {
  return new IORedis(url, {
    // BullMQ workers block on Redis; they must not give up on a command.
    maxRetriesPerRequest: forWorker ? null : 3,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
}

export type OperationsQueue = Queue<JobPayloads[JobName], unknown, JobName>;

export function createOperationsQueue(connection: ConnectionOptions, prefix: string): OperationsQueue {
  return new Queue<JobPayloads[JobName], unknown, JobName>(OPERATIONS_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 24 * 3600 } },
  });
}

/** The job id of an operation's job is the operation id: adding it twice is a no-op. */
export function operationJobId(operationId: string): string {
  return `op-${operationId}`;
}

/**
 * Puts an operation's job on the queue. Safe to call again: the job id is the
 * operation id. Failures are retried with exponential backoff.
 */
export async function enqueueOperation(queue: OperationsQueue, operationId: string, attempts: number): Promise<void> {
  await queue.add(
    'run-operation',
    { operationId },
    { jobId: operationJobId(operationId), attempts, backoff: { type: 'exponential', delay: 1000 } },
  );
}

/** Where a dispatch that could not reach Redis says so (a Nest Logger, or the worker's). */
export interface DispatchLog {
  warn(message: Record<string, unknown>): void;
}

/**
 * Puts a written operation on the queue, the one way every writer does it: the
 * rows are the truth, so when Redis cannot be reached the caller goes on and
 * the worker's reconciler enqueues the operation later. True when enqueued.
 */
export async function dispatchOperation(queue: OperationsQueue, operationId: string, attempts: number, log: DispatchLog): Promise<boolean> {
  try {
    await enqueueOperation(queue, operationId, attempts);
    return true;
  } catch (e) {
    log.warn({ msg: 'enqueue failed; the reconciler will retry', operationId, err: (e as Error).message });
    return false;
  }
}

/**
 * Asks the worker to finish revoking these Consul UI sessions (already marked revoked in the
 * database, which is the truth: the worker's sweep finishes any whose job is lost).
 */
export async function enqueueUiRevocation(queue: OperationsQueue, uiSessionIds: string[], attempts: number): Promise<void> {
  if (uiSessionIds.length === 0) return;
  await queue.add('revoke-consul-ui-sessions', { uiSessionIds }, { attempts, backoff: { type: 'exponential', delay: 1000 } });
}
