import { Logger } from '@nestjs/common';
import type { TokenCredential } from '@azure/identity';
import { auditBlobName } from '../../../../libs/contracts/src';
import { SecretName, SecretUnreadableError, type AuditExportRepository, type ClaimedExport, type ExportCursor, type ExportedEvent, type SecretRepository } from '../../../../libs/core/src';
import { AuditContainer, AuditStorageError } from '../../../../libs/provisioner/src';
import { eventLine, landedIds } from './audit-lines';
import type { KillSwitch } from './kill-switch';

/** At most this many events per append (and 4 MiB, the smallest Append Block limit across service versions). */
const BATCH_EVENTS = 500;
const MAX_APPEND_BYTES = 4 * 1024 * 1024;

export interface AuditExporterOptions {
  leaseMs: number;
  retryMs: number;
  /** The control plane's own identity, for exports with auth managed-identity. */
  credential: () => TokenCredential;
  kill: KillSwitch;
}

/**
 * Writes each cluster's audit events into hourly append blobs of the customer's container, each
 * exactly once whatever retries and kills happen. The protocol (docs/audit-export.md):
 *
 * 1. Read the next final events after the cursor (their transactions ended before any still
 *    running, so nothing can later appear before the cursor), in (txid, seq) order; take the
 *    leading ones of one UTC hour: one hour blob per append.
 * 2. The database's committed length L of that blob (per container) is the truth. Append the
 *    lines with the condition "the blob is exactly L bytes" (x-ms-blob-condition-appendpos).
 * 3. Commit in one transaction: cursor to the last appended event, blob length to L + bytes,
 *    fenced by this worker's claim and the cursor it read.
 *
 * A kill between 2 and 3 leaves the blob longer than L. The next run's append at L then fails
 * with 412: it reads the bytes after L back, checks they are the lines of the events right after
 * the cursor, and commits them as if its own append had landed. So a line is never lost (the
 * cursor moves only past lines in the blob) and never written twice (an append lands only at
 * the committed length). Late events of an earlier hour go to that hour's blob at its own length.
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
    const { clusterId, containerUrl } = x.row;
    const storage = await this.container(x);
    let cursor: ExportCursor = { txid: x.row.cursorTxid, seq: x.row.cursorSeq };
    // Within half the lease, so the claim never lapses under a run; the next tick goes on.
    const until = Date.now() + this.options.leaseMs / 2;
    while (Date.now() < until) {
      const events = await this.exports.nextEvents(clusterId, cursor, BATCH_EVENTS);
      if (!events.length) {
        if ((await this.exports.clusterState(clusterId)) === 'Deleted') return this.exports.retire(x);
        break;
      }
      const { blob, batch } = leadingHour(clusterId, events);
      const chunk = Buffer.from(batch.map(eventLine).join(''));
      const at = await this.exports.blobLength(clusterId, containerUrl, blob);
      this.options.kill.at('before-append');
      if (at === 0) await storage.ensureBlob(blob);
      this.options.kill.at('after-create');
      const appended = await storage.appendAt(blob, at, chunk);
      let landed: ExportedEvent[];
      let length: number;
      if (appended.appended) {
        this.options.kill.at('after-append');
        [landed, length] = [batch, at + chunk.length];
      } else {
        [landed, length] = [await this.readBack(storage, x, cursor, blob, at, appended.length), appended.length];
        this.options.kill.at('after-readback');
      }
      const last = landed[landed.length - 1];
      const to = { txid: last.txid, seq: last.seq };
      const committed = await this.exports.commit(x, { from: cursor, to, last: { id: last.id, createdAt: last.createdAt }, container: containerUrl, blob, fromLength: at, toLength: length }, this.options.leaseMs);
      if (!committed) {
        this.log.warn({ msg: 'audit export claim lost; another worker goes on', clusterId });
        return;
      }
      this.options.kill.at('after-commit');
      cursor = to;
    }
    await this.exports.succeed(x);
  }

  /**
   * The blob is longer than the committed length: an earlier append landed and its commit did
   * not. Its bytes must be whole lines of the events right after the cursor, in order.
   */
  private async readBack(storage: AuditContainer, x: ClaimedExport, cursor: ExportCursor, blob: string, at: number, length: number): Promise<ExportedEvent[]> {
    if (length <= at) {
      throw new AuditStorageError('blob_changed', `${blob} is ${length} bytes, shorter than the ${at} the export wrote: someone changed it; name another container to go on`);
    }
    const ids = landedIds(await storage.read(blob, at, length - at));
    const expected = ids ? await this.exports.nextEvents(x.row.clusterId, cursor, ids.length) : [];
    if (!ids || expected.length !== ids.length || expected.some((e, i) => e.id !== ids[i])) {
      throw new AuditStorageError('blob_changed', `${blob} holds ${length - at} bytes after what the export wrote that are not the next events: someone wrote to it; name another container to go on`);
    }
    this.log.log({ msg: 'audit export found an append that landed before its commit', clusterId: x.row.clusterId, blob, events: ids.length });
    return expected;
  }
}

/** The first events that fall in the first one's hour, within an append's size. */
function leadingHour(clusterId: string, events: ExportedEvent[]): { blob: string; batch: ExportedEvent[] } {
  const blob = auditBlobName(clusterId, events[0].createdAt);
  const batch: ExportedEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = Buffer.byteLength(eventLine(e));
    if (auditBlobName(clusterId, e.createdAt) !== blob || (batch.length && bytes + size > MAX_APPEND_BYTES)) break;
    batch.push(e);
    bytes += size;
  }
  return { blob, batch };
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
