import type { ExportResult, UsageRecord, UsageRepository } from '../../core/src';

/** Where usage records go. An exporter answers for every record it is given. */
export interface UsageExporter {
  readonly name: string;
  /** Records per call (the marketplace takes at most 25 events per batch). */
  readonly batchSize: number;
  export(records: UsageRecord[], now: Date): Promise<ExportResult[]>;
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
  /** Batches a lane claims (and stores the answers of) at once; default 16. */
  batchesPerClaim?: number;
}

/**
 * Drains pending usage records through an exporter: claims records with a
 * lease, hands them over in batches (several in flight), stores every answer.
 * A record an exporter could not settle stays Pending with a next attempt time.
 */
export class UsageExportDriver {
  constructor(private readonly usage: UsageRepository, private readonly exporter: UsageExporter, private readonly opts: ExportDriverOptions) {}

  async run(now: Date = new Date()): Promise<ExportRunResult> {
    const result: ExportRunResult = { handed: 0, byState: {}, batches: 0 };
    const size = this.exporter.batchSize;
    // Each lane claims several batches at once (fewer claims), then hands them over one by one.
    const chunk = size * (this.opts.batchesPerClaim ?? 16);
    const lanes = Array.from({ length: this.opts.concurrency }, async () => {
      for (;;) {
        const claimed = await this.usage.claimPending(now, chunk, this.opts.leaseMs);
        if (claimed.length === 0) return;
        // The answers of a claim's batches are stored together: a worker that dies before storing
        // them sends those events again, which the API answers with Duplicate (billed once).
        const complete: ExportResult[] = [];
        for (let i = 0; i < claimed.length; i += size) {
          const records = claimed.slice(i, i + size);
          const answers = await this.exporter.export(records, now);
          const byId = new Map(answers.map((a) => [a.id, a]));
          for (const r of records) {
            // An exporter that forgot a record must not lose it: it stays Pending and is retried.
            const a = byId.get(r.id) ?? { id: r.id, state: 'Pending', status: 'NoAnswer', error: 'the exporter gave no answer' };
            // A record left Pending waits before its next attempt (never re-claimed within this run).
            complete.push(a.state === 'Pending' && !(a.nextAttemptAt && a.nextAttemptAt.getTime() > now.getTime()) ? { ...a, nextAttemptAt: new Date(now.getTime() + 60_000) } : a);
          }
          result.batches += 1;
        }
        await this.usage.recordResults(this.exporter.name, now, complete);
        result.handed += claimed.length;
        for (const a of complete) result.byState[a.state] = (result.byState[a.state] ?? 0) + 1;
        if (claimed.length < chunk) return;
      }
    });
    await Promise.all(lanes);
    return result;
  }
}
