import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

/** Loading: announced politely to screen readers, with a text that says what is loading. */
export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      Loading {what}…
    </div>
  );
}

/** What went wrong and what to do about it; a retry where one can help. */
export function ErrorState({ error, what, onRetry }: { error: unknown; what: string; onRetry?: () => void }) {
  const e = error instanceof ApiError ? error : null;
  const hint = !e ? 'Reload the page; if it keeps failing, the control plane may be down.'
    : e.status === 0 ? 'Check your network connection.'
      : e.status === 404 ? 'It may have been deleted, or it belongs to another tenant.'
        : e.status === 403 ? 'Your role does not allow this. Ask an administrator of your tenant for the Clusters.ReadWrite role.'
          : e.status === 503 ? 'The control plane is briefly unavailable; try again in a few seconds.'
            : null;
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">Could not load {what}.</p>
      <p>{e ? e.message : String(error)}{e?.code ? <span className="code"> ({e.code})</span> : null}</p>
      {hint ? <p>{hint}</p> : null}
      {onRetry ? <button type="button" className="button" onClick={onRetry}>Try again</button> : null}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children}
    </div>
  );
}

/** An error answered to an action the user took (a form's submit, a button). */
export function ActionError({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  return (
    <p className="action-error" role="alert">
      {e ? e.message : String(error)}
      {e?.code ? <span className="code"> ({e.code})</span> : null}
    </p>
  );
}

const TONES: Record<string, string> = {
  Running: 'ok', Succeeded: 'ok', Available: 'ok', healthy: 'ok',
  Creating: 'busy', Updating: 'busy', Deleting: 'busy', Queued: 'busy', Pending: 'busy',
  Failed: 'bad', unavailable: 'bad', Halted: 'bad', 'primary-missing': 'bad',
  degraded: 'warn', Canceled: 'muted', Deleted: 'muted', Skipped: 'muted', unknown: 'muted',
};

/** A state as a word with a shape beside it: colour is never the only sign. */
export function Badge({ value, label }: { value: string; label?: string }) {
  const tone = TONES[value] ?? 'muted';
  return (
    <span className={`badge badge-${tone}`}>
      <span className="badge-dot" aria-hidden="true" />
      {label ?? value}
    </span>
  );
}

/** A table that may scroll sideways on a narrow screen: a labelled region keyboard users can focus and scroll. */
export function TableRegion({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
