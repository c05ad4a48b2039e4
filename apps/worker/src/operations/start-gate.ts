import os from 'node:os';

/**
 * How many clusters of the local target start their servers and elect a leader at once in this
 * worker. Consul servers on this machine share its cores with each other and with the control
 * plane: 50 standard clusters started together (150 processes) starved each other's elections,
 * and creates gave up and retried for minutes. A create waits here before it starts its servers
 * and leaves once its ACLs are checked (or it failed), so work is admitted at the rate the
 * machine sustains and each cluster's start is short. A waiting create holds no database
 * connection and its lease is renewed as for any running step. Keyed by operation: a step run
 * again enters once. A holder that never leaves (its attempt ended between the steps) is let go
 * after `holdMaxMs`. Deletes and other operations never wait here.
 */
export class StartGate {
  private readonly holders = new Map<string, NodeJS.Timeout>();
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly capacity: number,
    private readonly holdMaxMs: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`the start gate needs a capacity of at least 1, not ${capacity}`);
  }

  /** Resolves once `key` holds a place (at once when it holds one already); how long it waited. */
  async enter(key: string): Promise<number> {
    const from = Date.now();
    while (!this.holders.has(key) && this.holders.size >= this.capacity) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (!this.holders.has(key)) this.holders.set(key, setTimeout(() => this.leave(key), this.holdMaxMs).unref());
    return Date.now() - from;
  }

  leave(key: string): void {
    const timer = this.holders.get(key);
    if (!timer) return;
    clearTimeout(timer);
    this.holders.delete(key);
    this.waiting.shift()?.();
  }

  /** Places held now, and creates waiting for one (for the worker's metrics and tests). */
  get usage(): { held: number; waiting: number } {
    return { held: this.holders.size, waiting: this.waiting.length };
  }
}

/** LOCAL_CONCURRENT_STARTS, 0 meaning twice the machine's cores. */
export function startGateCapacity(configured: number): number {
  return configured > 0 ? configured : Math.max(2, 2 * os.cpus().length);
}
