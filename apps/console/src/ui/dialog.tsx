import { useEffect, useId, useRef, useState, type ReactNode } from 'react';

/**
 * A modal on the native <dialog>: the browser traps focus, Escape closes it, and focus
 * returns to what opened it.
 */
export function Dialog({ title, open, onClose, children }: { title: string; open: boolean; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId} onClose={onClose}>
      {open ? (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
        </>
      ) : null}
    </dialog>
  );
}

/** Asks the user to type a word (the cluster's name) before a destructive action goes ahead. */
export function TypedConfirm({ word, action, busy, onConfirm, onCancel, children }: {
  word: string; action: string; busy: boolean; onConfirm: () => void; onCancel: () => void; children?: ReactNode;
}) {
  const [typed, setTyped] = useState('');
  const id = useId();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (typed === word) onConfirm();
      }}
    >
      {children}
      <label htmlFor={id}>Type <strong className="code">{word}</strong> to confirm</label>
      <input id={id} value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} />
      <div className="actions">
        <button type="submit" className="button button-danger" disabled={typed !== word || busy}>{busy ? 'Working…' : action}</button>
        <button type="button" className="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
