import { useMutation } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link } from 'react-router';
import type { ApiError } from '../api/client';
import { clusterApi, useClusterChange, useOperation } from '../api/queries';
import type { Cluster, CreatedToken } from '../api/types';
import { Dialog } from '../ui/dialog';
import { OperationProgress } from '../ui/operation-progress';
import { useSignedIn } from '../ui/session';
import { ShownOnce } from '../ui/shown-once';
import { ActionError } from '../ui/states';

/** Saves text as a file the browser downloads; nothing is kept once the link is clicked. */
function download(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

/** Client config download and a new ACL token (its secret shown once, held only while the dialog is open). */
export function AccessPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  const ready = c.state === 'Running' || c.state === 'Updating';
  const config = useClusterChange(c.id, () => clusterApi.clientConfig(c.id));
  return (
    <div className="access">
      <h3>Connect clients</h3>
      <p className="muted small">A Consul client agent needs the CA, the servers and the gossip key: save both files side by side, then add an agent token.</p>
      <div className="actions">
        <button
          type="button"
          className="button"
          disabled={!ready || config.isPending}
          onClick={() =>
            config.mutate(undefined, {
              onSuccess: (cfg) => {
                download(`${c.name}-client.json`, `${JSON.stringify(cfg.consulConfig, null, 2)}\n`, 'application/json');
                download('ca.pem', cfg.caPem, 'application/x-pem-file');
              },
            })
          }
        >
          {config.isPending ? 'Preparing…' : 'Download client config'}
        </button>
        {canWrite ? <TokenButton cluster={c} disabled={!ready} /> : null}
      </div>
      {config.data?.encryptOmitted ? <p className="muted small">{config.data.encryptOmitted}</p> : null}
      {canWrite ? <p className="muted small">Clients in Kubernetes (AKS): the Consul Helm chart’s values and Secret are in the <Link to={`/clusters/${c.id}?tab=kubernetes`}>Kubernetes tab</Link>.</p> : null}
      <ActionError error={config.error} />
    </div>
  );
}

function TokenButton({ cluster: c, disabled }: { cluster: Cluster; disabled: boolean }) {
  const [open, setOpen] = useState(false);
  const [description, setDescription] = useState('');
  const [token, setToken] = useState<CreatedToken | null>(null);
  /** The create-token operation, when the API stopped waiting for it (202): the secret is collected through it. */
  const [pending, setPending] = useState<string | null>(null);
  const descId = useId();
  const create = useClusterChange(c.id, (d: string) => clusterApi.createToken(c.id, d), { secret: true });
  const close = () => {
    setOpen(false);
    setToken(null); // the secret leaves memory with the dialog
    setPending(null);
    create.reset();
  };
  return (
    <>
      <button type="button" className="button" disabled={disabled} onClick={() => setOpen(true)}>Generate a token…</button>
      <Dialog title="Generate an ACL token" open={open} onClose={close}>
        {token ? (
          <ShownOnce notice="Copy the secret now: it is shown once and not kept anywhere, neither here nor by the control plane’s answers." secret={token.secretId} copyLabel="Copy the secret" onDone={close}>
            <dl className="meta">
              <div><dt>Accessor id</dt><dd className="code">{token.accessorId}</dd></div>
              <div><dt>Secret id</dt><dd><code className="secret" aria-label="Secret id">{token.secretId}</code></dd></div>
            </dl>
          </ShownOnce>
        ) : pending ? (
          <PendingToken operationId={pending} onCollected={setToken} onCancel={close} />
        ) : (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              create.mutate(description.trim(), { onSuccess: (r) => ('collect' in r ? setPending(r.operation.id) : setToken(r)) });
            }}
          >
            <p>A new token with the management policy on {c.name}. The event is recorded in the cluster’s audit log.</p>
            <label htmlFor={descId}>Description (optional)</label>
            <input id={descId} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={256} />
            <ActionError error={create.error} />
            <div className="actions">
              <button type="submit" className="button button-primary" disabled={create.isPending}>{create.isPending ? 'Generating…' : 'Generate'}</button>
              <button type="button" className="button" onClick={close}>Cancel</button>
            </div>
          </form>
        )}
      </Dialog>
    </>
  );
}

/**
 * A token still being made when the API stopped waiting: its operation's progress, then its
 * secret collected on request (a POST, once; only the user who asked for it may).
 */
export function PendingToken({ operationId, onCollected, onCancel }: { operationId: string; onCollected: (t: CreatedToken) => void; onCancel: () => void }) {
  const op = useOperation(operationId);
  const collect = useMutation<CreatedToken, ApiError>({ mutationFn: () => clusterApi.collectToken(operationId), onSuccess: onCollected });
  const state = op.data?.state;
  return (
    <>
      <p>The token is still being made. Its secret is handed out once, to you, when it is ready.</p>
      {op.data ? <OperationProgress op={op.data} label="Making the token" /> : null}
      <ActionError error={op.error ?? collect.error} />
      {state === 'Failed' || state === 'Canceled' ? <p role="alert">The token could not be made ({state}). Close this and generate a new one.</p> : null}
      <div className="actions">
        <button type="button" className="button button-primary" disabled={state !== 'Succeeded' || collect.isPending} onClick={() => collect.mutate()}>
          {collect.isPending ? 'Collecting…' : 'Show the secret'}
        </button>
        <button type="button" className="button" onClick={onCancel}>Cancel</button>
      </div>
    </>
  );
}
