import { Logger } from '@nestjs/common';
import { IssuedTokenRepository, dispatchOperation, type OperationsQueue } from '../../../../libs/core/src';

export const TOKEN_SWEEPER_ACTOR = 'system:token-sweeper';

/**
 * A token whose secret nobody collected within TOKEN_COLLECT_WINDOW_MS (the
 * answer to POST /tokens was lost, or the caller never came back) is a live
 * management token that nobody holds: the sweeper queues a revoke-token
 * operation for it, as for one whose create failed. Each is decided under the
 * token's row lock (a collect at the last moment wins or loses cleanly), so
 * several workers may sweep at once. Runs on the reconciler's timer. Tokens
 * an earlier version left in that state (no row) are adopted and revoked too.
 */
export class TokenSweeper {
  private readonly log = new Logger('token-sweeper');
  private leftoversDone = false;

  constructor(private readonly tokens: IssuedTokenRepository, private readonly queue: OperationsQueue, private readonly attempts: number) {}

  async tick(): Promise<{ queued: number; released: number; adopted: number }> {
    // What an earlier version left is there at start only (this version never leaves it): looked for until one pass found none.
    const adopted = this.leftoversDone ? 0 : await this.tokens.adoptLeftovers();
    if (adopted === 0) this.leftoversDone = true;
    const released = await this.tokens.releaseEndedRevokes();
    let queued = 0;
    for (const due of await this.tokens.dueForRevoke()) {
      const r = await this.tokens.requestRevoke(due.accessorId, TOKEN_SWEEPER_ACTOR, due.reason, { sweep: true });
      if (r.outcome !== 'requested') continue;
      queued++;
      // The row is the truth: a job not added now is added by the reconciler.
      await dispatchOperation(this.queue, r.operation.id, this.attempts, this.log);
    }
    if (queued || released || adopted) this.log.log({ msg: 'revoking tokens nobody collected', queued, released, adopted });
    return { queued, released, adopted };
  }
}
