import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ExportResult, ExportableUsage } from '../../core/src';
import type { UsageExporter } from './exporter';
import { formatMicros, quantityHours } from './prices';

/** The line written for one usage record. `key` identifies the record across re-runs. */
export interface UsageLineJson {
  key: string;
  clusterId: string;
  clusterName: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  resourceId: string;
  dimension: string;
  effectiveStartTime: string;
  quantity: number;
  minutes: number;
  planId: string;
  unitPrice: string;
}

export function usageKey(r: Pick<ExportableUsage, 'clusterId' | 'dimension' | 'hour'>): string {
  return `${r.clusterId}/${r.dimension}/${r.hour.toISOString()}`;
}

/**
 * The local default exporter: usage appended to one JSON-lines file per UTC day
 * (usage-YYYY-MM-DD.jsonl). Idempotent on re-run: before appending, the file is
 * read from where this process last read it, and a record whose key is there
 * already is not written again (a crash between the append and the database
 * update, or another worker's append, cannot duplicate a line).
 */
export class FileUsageExporter implements UsageExporter {
  readonly name = 'file';
  readonly batchSize = 500;
  private readonly seen = new Map<string, { offset: number; keys: Set<string> }>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {}

  fileFor(hour: Date): string {
    return path.join(this.dir, `usage-${hour.toISOString().slice(0, 10)}.jsonl`);
  }

  export(records: ExportableUsage[]): Promise<ExportResult[]> {
    // One writer at a time in this process: appends to a file never interleave.
    const run = this.chain.then(() => this.write(records));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(records: ExportableUsage[]): Promise<ExportResult[]> {
    await fs.mkdir(this.dir, { recursive: true });
    const byFile = new Map<string, ExportableUsage[]>();
    const ordered = [...records].sort((a, b) => a.hour.getTime() - b.hour.getTime() || a.clusterId.localeCompare(b.clusterId) || a.dimension.localeCompare(b.dimension));
    for (const r of ordered) {
      const f = this.fileFor(r.hour);
      byFile.set(f, [...(byFile.get(f) ?? []), r]);
    }
    const results: ExportResult[] = [];
    for (const [file, rows] of byFile) {
      const keys = await this.catchUp(file);
      const fresh = rows.filter((r) => !keys.has(usageKey(r)));
      if (fresh.length) {
        const lines = fresh.map((r) => JSON.stringify(toLine(r))).join('\n') + '\n';
        const handle = await fs.open(file, 'a+');
        try {
          // A torn last line (a crash mid-append) is closed off so the next line stays whole.
          const { size } = await handle.stat();
          const lead = size > 0 && !(await endsWithNewline(handle, size)) ? '\n' : '';
          await handle.appendFile(lead + lines);
          await handle.sync();
        } finally {
          await handle.close();
        }
        for (const r of fresh) keys.add(usageKey(r));
      }
      for (const r of rows) results.push({ id: r.id, state: 'Accepted', status: fresh.includes(r) ? 'Written' : 'AlreadyWritten', usageEventId: usageKey(r) });
    }
    return results;
  }

  /** Reads what was appended to `file` since this process last looked; returns every key in it. */
  private async catchUp(file: string): Promise<Set<string>> {
    const state = this.seen.get(file) ?? { offset: 0, keys: new Set<string>() };
    this.seen.set(file, state);
    let text: Buffer;
    try {
      const handle = await fs.open(file, 'r');
      try {
        const { size } = await handle.stat();
        if (size <= state.offset) return state.keys;
        text = Buffer.alloc(size - state.offset);
        await handle.read(text, 0, text.length, state.offset);
      } finally {
        await handle.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return state.keys;
      throw e;
    }
    const lastNl = text.lastIndexOf(0x0a);
    if (lastNl < 0) return state.keys;
    for (const line of text.subarray(0, lastNl).toString('utf8').split('\n')) {
      try {
        const key = (JSON.parse(line) as { key?: unknown }).key;
        if (typeof key === 'string') state.keys.add(key);
      } catch {
        // a torn line: its record is written again whole
      }
    }
    state.offset += lastNl + 1;
    return state.keys;
  }
}

async function endsWithNewline(handle: fs.FileHandle, size: number): Promise<boolean> {
  const b = Buffer.alloc(1);
  await handle.read(b, 0, 1, size - 1);
  return b[0] === 0x0a;
}

export function toLine(r: ExportableUsage): UsageLineJson {
  return {
    key: usageKey(r),
    clusterId: r.clusterId,
    clusterName: r.clusterName,
    tenantId: r.tenantId,
    subscriptionId: r.subscriptionId,
    resourceGroup: r.resourceGroup,
    resourceId: r.resourceId,
    dimension: r.dimension,
    effectiveStartTime: r.hour.toISOString(),
    quantity: quantityHours(r.minutes),
    minutes: r.minutes,
    planId: r.planId,
    unitPrice: formatMicros(BigInt(r.unitPriceMicros)),
  };
}
