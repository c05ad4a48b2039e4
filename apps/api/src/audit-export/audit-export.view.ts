import { AUDIT_BLOB_PATTERN, type AuditExportView } from '../../../../libs/contracts/src';
import type { AuditExportState } from '../../../../libs/core/src';

/** The GET answer: the configuration without the SAS, and how far the export has got. */
export function auditExportView(state: AuditExportState | null, now = new Date()): AuditExportView {
  const off: AuditExportView['status'] = {
    state: 'off', lastExportedEvent: null, lastExportedBlob: null, lastExportedAt: null,
    lag: { events: state?.lag.events ?? 0, oldestAt: state?.lag.oldestAt?.toISOString() ?? null, seconds: 0 }, lastError: null, attempts: 0, nextAttemptAt: null,
  };
  if (!state) return { enabled: false, auth: null, containerUrl: null, sasExpiresAt: null, blobNames: AUDIT_BLOB_PATTERN, configuredAt: null, configuredBy: null, status: off };
  const { row, lag } = state;
  const lastError = row.lastErrorCode && row.lastErrorAt ? { code: row.lastErrorCode, message: row.lastErrorMessage ?? '', at: row.lastErrorAt.toISOString() } : null;
  const exported = row.lastEventId && row.lastEventAt ? { id: row.lastEventId, seq: Number(row.cursorSeq), time: row.lastEventAt.toISOString() } : null;
  const status: AuditExportView['status'] = {
    ...off,
    state: !row.enabled ? 'off' : row.attempts > 0 ? 'retrying' : lag.events > 0 ? 'exporting' : 'up-to-date',
    lastExportedEvent: exported,
    lastExportedBlob: row.lastBlob,
    lastExportedAt: row.lastExportedAt?.toISOString() ?? null,
    lag: { events: lag.events, oldestAt: lag.oldestAt?.toISOString() ?? null, seconds: lag.oldestAt ? Math.max(0, Math.floor((now.getTime() - lag.oldestAt.getTime()) / 1000)) : 0 },
    lastError,
    attempts: row.attempts,
    nextAttemptAt: row.enabled ? row.nextAttemptAt.toISOString() : null,
  };
  return {
    enabled: row.enabled, auth: row.auth === 'managed-identity' ? 'managed-identity' : 'sas', containerUrl: row.containerUrl,
    sasExpiresAt: row.sasExpiresAt?.toISOString() ?? null, blobNames: AUDIT_BLOB_PATTERN,
    configuredAt: row.configuredAt.toISOString(), configuredBy: row.configuredBy, status,
  };
}
