import { setTimeout as delay } from 'node:timers/promises';
import { ApiError, ApiUnreachable } from './api-client';
import type { ProgressReporter, ProgressState } from './progress';

export const POLL_INTERVAL_MS = 500;
/** Consecutive failed polls tolerated (an API restart, a network blip) before giving up. */
const POLL_FAILURES_TOLERATED = 10;

/** Something long-running ended other than well: exit 1; under --json its last state is the command's output. */
export class Unsuccessful extends Error {
  constructor(
    message: string,
    readonly result: unknown,
  ) {
    super(message);
  }
}

export interface Watched<T> {
  load(): Promise<T>;
  progress(current: T): ProgressState;
  finished(current: T): boolean;
  reporter: ProgressReporter;
  intervalMs?: number;
}

function transient(e: unknown): boolean {
  return e instanceof ApiUnreachable || (e instanceof ApiError && e.status >= 500);
}

/** Polls until `finished`, showing progress after each answer; returns the last answer. */
export async function watch<T>(w: Watched<T>): Promise<T> {
  const interval = w.intervalMs ?? POLL_INTERVAL_MS;
  let failures = 0;
  try {
    for (;;) {
      let current: T;
      try {
        current = await w.load();
        failures = 0;
      } catch (e) {
        if (!transient(e) || ++failures >= POLL_FAILURES_TOLERATED) throw e;
        await delay(interval);
        continue;
      }
      w.reporter.show(w.progress(current));
      if (w.finished(current)) return current;
      await delay(interval);
    }
  } finally {
    w.reporter.end();
  }
}
