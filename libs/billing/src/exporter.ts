import type { ExportResult, ExportableUsage, UsageRepository } from '../../core/src';

/** Where usage records go. An exporter answers for every record it is given. */
export interface UsageExporter {
  readonly name: string;
  /** Records per call (the marketplace takes at most 25 events per batch). */
  readonly batchSize: number;
  export(records: ExportableUsage[], now: Date): Promise<ExportResult[]>;
}

export interface ExportRunResult {
  handed: number;
  byState: Record<string, number>;
  batches: number;
}

export interface ExportDriverOptions {
  /** Batches in flight at once. */
  concurrency: number;
  /** How long a claimed record is ours before another worker may take it. */
  leaseMs: number;
  /** Records a claim takes at once: default 16 batches. */
  batchesPerClaim?: number;
  /** Answers stored per statement: default 1,000. */
  recordEvery?: number;
}

/**
 * Drains pending usage records through an exporter, as a pipeline in which nobody waits on
 * anybody else's round trip:
 * - a producer hands over batches: first the records given to `run` (an hour's records as
 *   metering commits them, already leased to us), then records claimed with a lease (SKIP
 *   LOCKED: two workers never take the same one). It keeps at most `2 × concurrency` batches
 *   ready, so leases are taken just before they are used;
 * - `concurrency` senders hand batches to the exporter, never waiting on the database;
 * - one recorder stores the answers `recordEvery` at a time, in one statement each, while the
 *   senders go on; a record left Pending waits before its next attempt.
 * A worker that dies before storing answers leaves their leases to expire: those events are sent
 * again, and the marketplace answers a repeat with Duplicate (billed once).
 */
export class UsageExportDriver {
  constructor(private readonly usage: UsageRepository, private readonly exporter: UsageExporter, private readonly opts: ExportDriverOptions) {}

  /** When records leased to us now expire (for the records metering writes leased). */
  leaseUntil(now: Date): Date {
    return new Date(now.getTime() + this.opts.leaseMs);
  }

  async run(now: Date = new Date(), leased?: AsyncIterable<ExportableUsage[]>): Promise<ExportRunResult> {
    const result: ExportRunResult = { handed: 0, byState: {}, batches: 0 };
    const size = this.exporter.batchSize;
    const chunk = size * (this.opts.batchesPerClaim ?? 16);
    const recordEvery = this.opts.recordEvery ?? 1_000;
    const ready: ExportableUsage[][] = [];
    let producing = true;
    let failed = false;
    let wakeProducer: (() => void) | null = null;
    let wakeSenders: Array<() => void> = [];
    const notifySenders = () => {
      const w = wakeSenders;
      wakeSenders = [];
      for (const f of w) f();
    };
    const offer = async (records: ExportableUsage[]) => {
      for (let i = 0; i < records.length; i += size) ready.push(records.slice(i, i + size));
      notifySenders();
      while (ready.length >= 2 * this.opts.concurrency && !failed) await new Promise<void>((r) => (wakeProducer = r));
      if (failed) throw new Error('a sender failed');
    };
    const producer = (async () => {
      try {
        if (leased) for await (const records of leased) await offer(records);
        for (;;) {
          const claimed = await this.usage.claimPending(now, chunk, this.opts.leaseMs);
          if (claimed.length > 0) await offer(claimed);
          if (claimed.length < chunk) return;
        }
      } finally {
        producing = false;
        notifySenders();
      }
    })();

    let answers: ExportResult[] = [];
    let storing: Promise<void> = Promise.resolve();
    const store = (force: boolean) => {
      if (answers.length === 0 || (!force && answers.length < recordEvery)) return;
      const these = answers;
      answers = [];
      storing = storing.then(() => this.usage.recordResults(this.exporter.name, now, these));
    };
    const senders = Array.from({ length: this.opts.concurrency }, async () => {
      for (;;) {
        const records = ready.shift();
        if (!records) {
          if (!producing || failed) return;
          await new Promise<void>((r) => wakeSenders.push(r));
          continue;
        }
        if (ready.length < 2 * this.opts.concurrency && wakeProducer) {
          const w = wakeProducer;
          wakeProducer = null;
          w();
        }
        let got: ExportResult[];
        try {
          got = await this.exporter.export(records, now);
        } catch (e) {
          // Stop handing out work; what was answered so far is still stored below.
          failed = true;
          wakeProducer?.();
          notifySenders();
          throw e;
        }
        const byId = new Map(got.map((a) => [a.id, a]));
        for (const r of records) {
          // An exporter that forgot a record must not lose it: it stays Pending and is retried.
          const a = byId.get(r.id) ?? { id: r.id, state: 'Pending', status: 'NoAnswer', error: 'the exporter gave no answer' };
          // A record left Pending waits before its next attempt (never re-claimed within this run).
          const settled = a.state === 'Pending' && !(a.nextAttemptAt && a.nextAttemptAt.getTime() > now.getTime()) ? { ...a, nextAttemptAt: new Date(now.getTime() + 60_000) } : a;
          answers.push(settled);
          result.byState[settled.state] = (result.byState[settled.state] ?? 0) + 1;
        }
        result.handed += records.length;
        result.batches += 1;
        store(false);
      }
    });
    // Every sender finishes its batch before the last answers are stored, even after a failure.
    const ended = await Promise.allSettled([producer, ...senders]);
    store(true);
    await storing;
    // A sender's own error first: the producer's is only that a sender failed.
    const failure = [...ended.slice(1), ended[0]].find((e): e is PromiseRejectedResult => e?.status === 'rejected');
    if (failure) throw failure.reason;
    return result;
  }
}
