import type { ExportResult, UsageRecord, UsageRepository } from '../../core/src/persistence/usage.repository';

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
    const lanes = Array.from({ length: this.opts.concurrency }, async () => {
      for (;;) {
        const records = await this.usage.claimPending(now, size, this.opts.leaseMs);
        if (records.length === 0) return;
        const answers = await this.exporter.export(records, now);
        const byId = new Map(answers.map((a) => [a.id, a]));
        // An exporter that forgot a record must not lose it: it stays Pending and is retried.
        const complete = records.map<ExportResult>((r) => {
          const a = byId.get(r.id) ?? { id: r.id, state: 'Pending', status: 'NoAnswer', error: 'the exporter gave no answer' };
          // A record left Pending waits before its next attempt (never re-claimed within this run).
          if (a.state === 'Pending' && !(a.nextAttemptAt && a.nextAttemptAt.getTime() > now.getTime())) return { ...a, nextAttemptAt: new Date(now.getTime() + 60_000) };
          return a;
        });
        await this.usage.recordResults(this.exporter.name, now, complete);
        result.handed += records.length;
        result.batches += 1;
        for (const a of complete) result.byState[a.state] = (result.byState[a.state] ?? 0) + 1;
        if (records.length < size) return;
      }
    });
    await Promise.all(lanes);
    return result;
  }
}
