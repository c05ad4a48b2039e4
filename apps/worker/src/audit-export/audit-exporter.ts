import { Logger } from '@nestjs/common';
import type { TokenCredential } from '@azure/identity';
import { auditBlobName } from '../../../../libs/contracts/src';
import { SecretName, SecretUnreadableError, type AuditExportRepository, type BlobAppend, type ClaimedExport, type ExportCursor, type ExportedEvent, type SecretRepository } from '../../../../libs/core/src';
import { AuditContainer, AuditStorageError } from '../../../../libs/provisioner/src';
import { eventLine, landedIds } from './audit-lines';
import type { KillSwitch } from './kill-switch';

/** At most 4 MiB of lines per page, the smallest Append Block limit across service versions. */
const MAX_APPEND_BYTES = 4 * 1024 * 1024;

export interface AuditExporterOptions {
  leaseMs: number;
  /** Events read per page (AUDIT_EXPORT_PAGE_EVENTS). */
  pageEvents: number;
  retryMs: number;
  /** The control plane's own identity, for exports with auth managed-identity. */
  credential: () => TokenCredential;
  kill: KillSwitch;
}

/**
 * Writes each cluster's audit events into hourly append blobs of the customer's container, each
 * exactly once whatever retries and kills happen. The protocol (docs/audit-export.md):
 *
 * 1. Read a page of the next final events after the cursor (their transactions ended before any
 *    still running, so nothing can later appear before the cursor), in (txid, seq) order, and
 *    split it by UTC hour: one group of lines per hour blob.
 * 2. The database's committed length L of each blob (per container) is the truth. Each group is
 *    appended with the condition "the blob is exactly L bytes" (x-ms-blob-condition-appendpos).
 * 3. Commit in one transaction: the cursor to the page's last event and every blob's length to
 *    what was appended, fenced by this worker's claim, the cursor and the lengths it read.
 *
 * A kill between 2 and 3 leaves some blobs longer than L. The next attempt's append at L then
 * fails with 412: it reads the bytes after L back, checks they are whole lines of the first
 * events of that blob's group (a page read again from the same cursor starts with the same
 * events), and appends only the rest. So a line is never lost (the cursor moves only past lines
 * in their blobs) and never written twice (an append lands only at the length the lines before
 * it end at). Late events of an earlier hour go to that hour's blob at its own length.
 */
export class AuditExporter {
  private readonly log = new Logger('audit-export');

  constructor(private readonly exports: AuditExportRepository, private readonly secrets: SecretRepository, private readonly options: AuditExporterOptions) {}

  /** One pass: every due export not held by another worker. Returns how many it ran. */
  async tick(): Promise<number> {
    const claimed = await this.exports.claimDue(this.options.leaseMs);
    for (const x of claimed) await this.runOne(x);
    return claimed.length;
  }

  private async runOne(x: ClaimedExport): Promise<void> {
    try {
      await this.export(x);
    } catch (e) {
      const { code, message } = describeFailure(e, x);
      this.log.warn({ msg: 'audit export failed; will retry', clusterId: x.row.clusterId, code, error: message });
      await this.exports.fail(x, code, message, this.options.retryMs);
    }
  }

  private async container(x: ClaimedExport): Promise<AuditContainer> {
    if (x.row.auth === 'managed-identity') return new AuditContainer({ containerUrl: x.row.containerUrl, credential: this.options.credential() });
    const sasUrl = await this.secrets.get(x.row.clusterId, SecretName.AuditExportSas);
    if (!sasUrl) throw new AuditStorageError('sas_missing', 'the export has no SAS; PUT the container URL with a SAS again');
    return new AuditContainer({ sasUrl });
  }

  private async export(x: ClaimedExport): Promise<void> {
    const { clusterId } = x.row;
    const storage = await this.container(x);
    let cursor: ExportCursor = { txid: x.row.cursorTxid, seq: x.row.cursorSeq };
    // Within half the lease, so the claim never lapses under a run; the next tick goes on.
    const until = Date.now() + this.options.leaseMs / 2;
    while (Date.now() < until) {
      const page = withinAppendLimit(await this.exports.nextEvents(clusterId, cursor, this.options.pageEvents));
      if (!page.length) {
        if ((await this.exports.clusterState(clusterId)) === 'Deleted') return this.exports.retire(x);
        break;
      }
      const blobs: BlobAppend[] = [];
      for (const [blob, events] of byHourBlob(clusterId, page)) blobs.push(await this.appendGroup(storage, x, blob, events));
      const last = page[page.length - 1];
      const to = { txid: last.txid, seq: last.seq };
      const committed = await this.exports.commit(x, { from: cursor, to, last: { id: last.id, createdAt: last.createdAt }, container: x.row.containerUrl, blobs }, this.options.leaseMs);
      if (!committed) {
        this.log.warn({ msg: 'audit export claim lost; another worker goes on', clusterId });
        return;
      }
      this.options.kill.at('after-commit');
      cursor = to;
    }
    await this.exports.succeed(x);
  }

  /** Appends one hour's lines at the blob's committed length, after whatever of them an interrupted attempt left there. */
  private async appendGroup(storage: AuditContainer, x: ClaimedExport, blob: string, events: ExportedEvent[]): Promise<BlobAppend> {
    const from = await this.exports.blobLength(x.row.clusterId, x.row.containerUrl, blob);
    this.options.kill.at('before-append');
    if (from === 0) await storage.ensureBlob(blob);
    this.options.kill.at('after-create');
    let chunk = lines(events);
    const first = await storage.appendAt(blob, from, chunk);
    if (first.appended) {
      this.options.kill.at('after-append');
      return { blob, fromLength: from, toLength: from + chunk.length };
    }
    const landed = await this.readBack(storage, blob, events, from, first.length);
    this.options.kill.at('after-readback');
    const rest = events.slice(landed);
    if (!rest.length) return { blob, fromLength: from, toLength: first.length };
    chunk = lines(rest);
    const second = await storage.appendAt(blob, first.length, chunk);
    if (!second.appended) throw new AuditStorageError('blob_changed', `${blob} changed while the export appended to it: someone else writes to it; name another container to go on`);
    this.options.kill.at('after-append');
    return { blob, fromLength: from, toLength: first.length + chunk.length };
  }

  /**
   * The blob is longer than the committed length: an earlier attempt's append landed and its
   * commit did not. Its bytes must be whole lines of the first events of this blob's group, in
   * order; answers how many.
   */
  private async readBack(storage: AuditContainer, blob: string, events: ExportedEvent[], at: number, length: number): Promise<number> {
    if (length <= at) {
      throw new AuditStorageError('blob_changed', `${blob} is ${length} bytes, shorter than the ${at} the export wrote: someone changed it; name another container to go on`);
    }
    const ids = landedIds(await storage.read(blob, at, length - at));
    if (!ids || ids.length > events.length || ids.some((id, i) => id !== events[i].id)) {
      throw new AuditStorageError('blob_changed', `${blob} holds ${length - at} bytes after what the export wrote that are not the next events: someone wrote to it; name another container to go on`);
    }
    this.log.log({ msg: 'audit export found an append that landed before its commit', blob, events: ids.length });
    return ids.length;
  }
}

const lines = (events: ExportedEvent[]) => Buffer.from(events.map(eventLine).join(''));

/** The page's events by hour blob, each group in export order (the blobs in the order their first event comes). */
function byHourBlob(clusterId: string, page: ExportedEvent[]): Map<string, ExportedEvent[]> {
  const groups = new Map<string, ExportedEvent[]>();
  for (const e of page) {
    const blob = auditBlobName(clusterId, e.createdAt);
    const group = groups.get(blob);
    if (group) group.push(e);
    else groups.set(blob, [e]);
  }
  return groups;
}

/** The longest prefix of the page whose lines fit one append (at least one event). */
function withinAppendLimit(page: ExportedEvent[]): ExportedEvent[] {
  let bytes = 0;
  for (let i = 0; i < page.length; i++) {
    bytes += Buffer.byteLength(eventLine(page[i]));
    if (i > 0 && bytes > MAX_APPEND_BYTES) return page.slice(0, i);
  }
  return page;
}

/** What the export row shows: a code and a message that never holds the SAS. */
function describeFailure(e: unknown, x: ClaimedExport): { code: string; message: string } {
  if (e instanceof AuditStorageError) {
    const expired = x.row.sasExpiresAt && x.row.sasExpiresAt.getTime() <= Date.now();
    if (e.statusCode === 403 && expired) return { code: 'sas_expired', message: `the SAS expired at ${x.row.sasExpiresAt?.toISOString()}; PUT the container URL with a new one` };
    return { code: e.code, message: e.message };
  }
  if (e instanceof SecretUnreadableError) return { code: 'sas_unreadable', message: 'the stored SAS cannot be opened; PUT the container URL with its SAS again' };
  return { code: 'export_error', message: `the export stopped: ${(e as Error).name}` };
}
