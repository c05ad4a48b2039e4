import { useState, type ReactNode } from 'react';

/** Copies a value shown once (a secret) to the clipboard and says whether it worked; the value stays selectable either way. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <>
      <button type="button" className="button" onClick={() => void copy()}>{copied === 'yes' ? 'Copied' : label}</button>
      {copied === 'failed' ? <span className="muted small" role="status">The browser did not allow copying: select the text and copy it.</span> : null}
    </>
  );
}

/**
 * A secret shown this once: the warning, what it is (children), then copy and Done. Done is where
 * the caller drops it from memory.
 */
export function ShownOnce({ notice, secret, copyLabel, onDone, children }: { notice: string; secret: string; copyLabel: string; onDone: () => void; children: ReactNode }) {
  return (
    <>
      <p className="review-alert" role="status">{notice}</p>
      {children}
      <div className="actions">
        <CopyButton text={secret} label={copyLabel} />
        <button type="button" className="button button-primary" onClick={onDone}>Done</button>
      </div>
    </>
  );
}
