/**
 * The one way this library waits for a condition: ask `probe` every
 * `intervalMs` until `done` accepts its answer, or fail after `timeoutMs`
 * with the last reason it was not done. A probe that throws counts as "not
 * yet" (a server may be restarting), unless `failOnError`, and except a
 * `PollAborted`, which ends the wait at once (the condition can no longer
 * come true, e.g. a server died).
 */

export interface PollOptions {
  timeoutMs: number;
  /** Default 100 ms; a function is asked before each wait (a target's Retry-After). */
  intervalMs?: number | (() => number);
  /** A probe that throws ends the wait with its error (default: it counts as "not yet"). */
  failOnError?: boolean;
}

/** `true` when done, else why not yet (kept for the timeout message). */
export type PollVerdict = true | string;

export class PollAborted extends Error {}

export class PollTimeout extends Error {
  constructor(readonly what: string, readonly elapsedMs: number, readonly lastReason: string) {
    super(`${what} after ${elapsedMs} ms (${lastReason})`);
  }
}

const DEFAULT_INTERVAL_MS = 100;

export async function poll<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => PollVerdict,
  opts: PollOptions,
): Promise<T> {
  const startedAt = Date.now();
  const interval = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
  for (;;) {
    let reason: string;
    try {
      const value = await probe();
      const verdict = done(value);
      if (verdict === true) return value;
      reason = verdict;
    } catch (e) {
      if (e instanceof PollAborted || opts.failOnError) throw e;
      reason = (e as Error).message;
    }
    const elapsed = Date.now() - startedAt;
    const intervalMs = typeof interval === 'function' ? interval() : interval;
    if (elapsed + intervalMs > opts.timeoutMs) throw new PollTimeout(what, elapsed, reason);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
