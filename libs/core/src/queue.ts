import { Queue, type ConnectionOptions } from 'bullmq';
import IORedis from 'ioredis';

/**
 * The job catalog: one union of job names with a payload per name. Payloads
 * carry ids only; the database row is the truth. Every name needs exactly one
 * handler in the worker (checked at start-up).
 */
export interface JobPayloads {
  'run-operation': { operationId: string };
}
export type JobName = keyof JobPayloads;
export const JOB_NAMES: readonly JobName[] = ['run-operation'];

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
