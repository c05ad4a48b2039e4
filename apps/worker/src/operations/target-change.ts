import { PermanentError } from './flows/flow';

/**
 * How long a step asks a target again about a change still in progress
 * (ClusterTarget.settle) before the job is handed back to the queue. Local
 * changes are done within it, so local flows run as one job as before; a
 * change of the azure target (an ARM deployment, 20-40 minutes; an instance
 * booting) is asked about again by whichever worker takes the job next,
 * holding neither a worker slot nor a lease meanwhile.
 */
export const TARGET_CHANGE_IN_STEP_WAIT_MS = 10_000;

/**
 * The longest one target change may stay in progress, counted from its first
 * in-progress answer (kept on the operation, so hand-backs, retries and worker
 * restarts do not restart it). An ARM deployment of a cluster's scale set takes
 * 20-40 minutes, more in a busy region; 2 hours is room for three times that,
 * and a change still running then is stuck: the operation fails, for a person
 * to look at, rather than holding the cluster's lock for ever. It fails for
 * good: a retry would resume the same deployment (the azure target never PUTs
 * it again) and be past the deadline at once.
 */
export const TARGET_CHANGE_DEADLINE_MS = 2 * 60 * 60_000;

/**
 * Thrown out of a step by ClusterTarget when a target's change is still in
 * progress after TARGET_CHANGE_IN_STEP_WAIT_MS: the runner hands the job back
 * to the queue, to run the step again (it asks again, never starts the change
 * twice) after `retryAfterMs`. Not a failure.
 */
export class TargetChangeInProgress extends Error {
  constructor(
    /** Which change: ClusterTarget's description of it, the same on every ask. */
    readonly change: string,
    /** What the target last said of it (shown in the step log as "waiting: ..."). */
    readonly detail: string,
    readonly retryAfterMs: number,
    /** When this step first saw it in progress (the deadline's start unless the operation kept an earlier one). */
    readonly firstSeenAt: Date,
  ) {
    super(`${change}: still in progress (${detail})`);
  }
}

/**
 * When the change began, for its deadline: the time the operation kept for
 * this same change, else when this step first saw it in progress. Past the
 * deadline, the error that fails the operation instead.
 */
export function targetChangeStart(
  e: TargetChangeInProgress, kept: { targetChange: string | null; targetChangeSince: Date | null }, now = Date.now(),
): { since: Date } | { timedOut: PermanentError } {
  const since = kept.targetChange === e.change && kept.targetChangeSince ? kept.targetChangeSince : e.firstSeenAt;
  const elapsed = now - since.getTime();
  if (elapsed < TARGET_CHANGE_DEADLINE_MS) return { since };
  return {
    timedOut: new PermanentError('target_change_timeout',
      `${e.change} still in progress after ${Math.floor(elapsed / 60_000)} min (${e.detail}); a target change may take at most ${TARGET_CHANGE_DEADLINE_MS / 60_000} min`),
  };
}
