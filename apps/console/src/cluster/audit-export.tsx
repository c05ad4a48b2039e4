import { useState } from 'react';
import { AUDIT_BLOB_PATTERN } from '../../../../libs/contracts/src';
import { ApiError } from '../api/client';
import { auditExportApi, useAuditExport, useClusterChange } from '../api/queries';
import type { AuditExport, Cluster } from '../api/types';
import { Field, FieldSet } from '../ui/field';
import { formatDate } from '../ui/format';
import { useSignedIn } from '../ui/session';
import { ActionError, Badge, ErrorState, Loading } from '../ui/states';

const STATE_LABEL: Record<AuditExport['status']['state'], string> = { off: 'Off', 'up-to-date': 'Up to date', exporting: 'Exporting', retrying: 'Retrying' };

/**
 * The audit export to the customer's own container: where it goes (never the SAS: it is not
 * answered), how far it has got, and its last failure, with the form to set, replace or turn it off.
 */
export function AuditExportPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  const current = useAuditExport(c.id);
  return (
    <section className="card" aria-labelledby="audit-title">
      <h2 id="audit-title">Audit export</h2>
      <p>
        Every audit event of {c.name} (operations, Consul UI sign-ins and revocations, tokens, configuration changes) is written, each exactly once,
        as JSON lines into hourly blobs of a container you name: <span className="code">{AUDIT_BLOB_PATTERN}</span>.
      </p>
      {current.isPending ? <Loading what="the audit export" />
        : current.isError ? <ErrorState error={current.error} what="the audit export" onRetry={() => void current.refetch()} />
          : <><Status value={current.data} />{canWrite ? <Configure cluster={c} current={current.data} /> : <p className="muted">Users with the Clusters.ReadWrite role set the container.</p>}</>}
    </section>
  );
}

function Status({ value: v }: { value: AuditExport }) {
  const st = v.status;
  return (
    <>
      {st.state === 'retrying' && st.lastError ? (
        <div className="action-error" role="alert">
          <p>The export failed at {formatDate(st.lastError.at)}: {st.lastError.message} <span className="code">({st.lastError.code})</span></p>
          <p>Retrying at {formatDate(st.nextAttemptAt)} (failed attempts: {st.attempts}). A new container URL or SAS below resumes it where it stopped.</p>
        </div>
      ) : null}
      <dl className="meta">
        <div><dt>State</dt><dd><Badge value={st.state === 'retrying' ? 'Failed' : st.state === 'off' ? 'Canceled' : st.state === 'exporting' ? 'Updating' : 'Running'} label={STATE_LABEL[st.state]} /></dd></div>
        <div><dt>Container</dt><dd className="code">{v.containerUrl ?? '—'}</dd></div>
        <div><dt>Access</dt><dd>{v.auth === 'managed-identity' ? 'The control plane’s managed identity' : v.auth === 'sas' ? `SAS${v.sasExpiresAt ? `, expires ${formatDate(v.sasExpiresAt)}` : ''}` : '—'}</dd></div>
        <div><dt>Last exported</dt><dd>{st.lastExportedEvent ? <>event {st.lastExportedEvent.seq} of {formatDate(st.lastExportedEvent.time)}, into <span className="code">{st.lastExportedBlob}</span></> : 'nothing yet'}</dd></div>
        <div><dt>Lag</dt><dd>{st.lag.events ? `${st.lag.events} event(s) waiting, the oldest for ${st.lag.seconds} s` : 'none'}</dd></div>
        {st.lastError && st.state !== 'retrying' ? <div><dt>Last error</dt><dd>{st.lastError.code} at {formatDate(st.lastError.at)} (since resolved)</dd></div> : null}
      </dl>
    </>
  );
}

function Configure({ cluster: c, current }: { cluster: Cluster; current: AuditExport }) {
  const [url, setUrl] = useState('');
  const [identity, setIdentity] = useState(current.auth === 'managed-identity');
  const save = useClusterChange(c.id, (body: { containerUrl: string; managedIdentity?: boolean }) => auditExportApi.put(c.id, body), { secret: true });
  const off = useClusterChange(c.id, () => auditExportApi.off(c.id));
  const fieldError = save.error instanceof ApiError && save.error.field === 'containerUrl' ? `${save.error.message} (${save.error.code})` : undefined;
  return (
    <form onSubmit={(e) => {
      e.preventDefault();
      // The SAS leaves the page's state once sent: it is never shown back.
      save.mutate(identity ? { containerUrl: url.trim(), managedIdentity: true } : { containerUrl: url.trim() }, { onSuccess: () => setUrl('') });
    }}>
      <FieldSet legend="Access" hint="Managed identity: assign the control plane’s identity the Storage Blob Data Contributor role on the container (Azure only).">
        <label className="checkbox"><input type="checkbox" checked={identity} onChange={(e) => setIdentity(e.target.checked)} /> Use the control plane’s managed identity instead of a SAS</label>
      </FieldSet>
      <Field label={identity ? 'Container URL' : 'Container URL with SAS'} error={fieldError}
        hint={identity ? 'https://<account>.blob.core.windows.net/<container>' : 'https://<account>.blob.core.windows.net/<container>?<SAS>: a container SAS with read, add and create (sp=rac). Checked by writing a probe blob; kept sealed, never shown again.'}>
        {(ids) => <input {...ids} type={identity ? 'url' : 'password'} autoComplete="off" spellCheck={false} required value={url} onChange={(e) => setUrl(e.target.value)} />}
      </Field>
      {fieldError ? null : <ActionError error={save.error} />}
      <ActionError error={off.error} />
      {save.isSuccess ? <p role="status" className="muted">Saved: access checked, the export goes on from its last exported event.</p> : null}
      <div className="actions">
        <button type="submit" className="button button-primary" disabled={save.isPending || !url.trim()}>{current.enabled ? 'Replace container or SAS' : 'Turn on audit export'}</button>
        {current.enabled ? <button type="button" className="button" disabled={off.isPending} onClick={() => { save.reset(); off.mutate(undefined); }}>Turn off audit export</button> : null}
      </div>
    </form>
  );
}
