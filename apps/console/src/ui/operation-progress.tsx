import type { Operation } from '../api/types';
import { formatDuration } from './format';
import { Badge } from './states';

/** An operation's progress bar and its step log, as the worker records them. */
export function OperationProgress({ op, label }: { op: Operation; label: string }) {
  const steps = op.steps ?? [];
  return (
    <div className="op-progress">
      <div className="op-progress-head">
        <Badge value={op.state} />
        <span>{op.currentStep && op.state === 'Running' ? `Step: ${op.currentStep}` : op.state === 'Queued' ? 'Waiting for a worker' : null}</span>
      </div>
      <progress max={100} value={op.progress} aria-label={label}>{op.progress}%</progress>
      <span className="muted small">{op.progress}%{op.attempts > 1 ? ` · attempt ${op.attempts}` : ''}</span>
      {steps.length ? (
        <ol className="step-log" aria-label={`${label}: steps`}>
          {steps.map((s, i) => (
            <li key={`${s.name}-${i}`} className={`step-log-${s.state.toLowerCase()}`}>
              <span className="step-icon" aria-hidden="true">{s.state === 'Succeeded' ? '✓' : s.state === 'Failed' ? '✕' : '…'}</span>
              <span className="step-name">{s.name}</span>
              <span className="visually-hidden">: {s.state}</span>
              <span className="muted small">{formatDuration(s.durationMs)}{s.detail ? ` · ${s.detail}` : ''}</span>
            </li>
          ))}
        </ol>
      ) : null}
    </div>
  );
}
