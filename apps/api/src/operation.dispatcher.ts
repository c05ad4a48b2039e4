import { Inject, Injectable, Logger } from '@nestjs/common';
import { dispatchOperation, enqueueUiRevocation, type Config, type OperationsQueue } from '../../../libs/core/src';
import { CONFIG, QUEUE } from './tokens';

/**
 * Puts a written operation on the queue. The rows are the truth: when Redis
 * cannot be reached the request still succeeds, and the worker's reconciler
 * enqueues the operation later.
 */
@Injectable()
export class OperationDispatcher {
  private readonly log = new Logger('dispatch');

  constructor(@Inject(CONFIG) private readonly config: Config, @Inject(QUEUE) private readonly queue: OperationsQueue) {}

  async dispatch(operationId: string): Promise<void> {
    await dispatchOperation(this.queue, operationId, this.config.JOB_ATTEMPTS, this.log);
  }

  /** Hands revoked Consul UI sessions to the worker; if Redis is out of reach, its sweep finds them. */
  async revokeUiSessions(uiSessionIds: string[]): Promise<void> {
    try {
      await enqueueUiRevocation(this.queue, uiSessionIds, this.config.JOB_ATTEMPTS);
    } catch (e) {
      this.log.warn({ msg: 'enqueue failed; the worker\'s sweep will revoke them', uiSessionIds, err: (e as Error).message });
    }
  }
}
