import { useId, useState } from 'react';
import { clusterApi, useClusterChange, useSnapshots } from '../api/queries';
import type { Cluster, Snapshot } from '../api/types';
import { Dialog, TypedConfirm } from '../ui/dialog';
import { formatBytes, formatDate } from '../ui/format';
import { useSignedIn } from '../ui/session';
import { ActionError, Badge, EmptyState, ErrorState, Loading, TableRegion } from '../ui/states';

export function SnapshotsPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  const snapshots = useSnapshots(c.id);
  return (
    <section aria-labelledby="snapshots-title">
      <h2 id="snapshots-title">Snapshots</h2>
      {canWrite ? <TakeSnapshot cluster={c} /> : null}
      {snapshots.isPending ? <Loading what="snapshots" />
        : snapshots.isError ? <ErrorState error={snapshots.error} what="snapshots" onRetry={() => void snapshots.refetch()} />
          : snapshots.data.length === 0 ? (
            <EmptyState title="No snapshots yet.">
              <p>Scheduled snapshots are taken every {c.snapshotPolicy.intervalHours} h once the cluster runs{canWrite ? '; or take one now.' : '.'}</p>
            </EmptyState>
          ) : (
            <TableRegion label="Snapshots">
              <table>
                <caption className="visually-hidden">Snapshots of {c.name}</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Size</th><th scope="col">Consul index</th><th scope="col">Taken</th>{canWrite ? <th scope="col"><span className="visually-hidden">Actions</span></th> : null}</tr></thead>
                <tbody>{snapshots.data.map((s) => <SnapshotRow key={s.id} cluster={c} snapshot={s} canWrite={canWrite} />)}</tbody>
              </table>
            </TableRegion>
          )}
    </section>
  );
}

function TakeSnapshot({ cluster: c }: { cluster: Cluster }) {
  const [name, setName] = useState('');
  const id = useId();
  const take = useClusterChange(c.id, (n: string) => clusterApi.takeSnapshot(c.id, n));
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        take.mutate(name.trim(), { onSuccess: () => setName('') });
      }}
    >
      <label htmlFor={id}>Snapshot name (optional)</label>
      <input id={id} value={name} onChange={(e) => setName(e.target.value)} maxLength={128} />
      <button type="submit" className="button button-primary" disabled={take.isPending || c.state !== 'Running'}>{take.isPending ? 'Starting…' : 'Take a snapshot'}</button>
      {c.state !== 'Running' ? <span className="muted small">Snapshots can be taken once the cluster is Running.</span> : null}
      {take.isSuccess ? <span className="muted small" role="status">Snapshot started; it appears below.</span> : null}
      <ActionError error={take.error} />
    </form>
  );
}

function SnapshotRow({ cluster: c, snapshot: s, canWrite }: { cluster: Cluster; snapshot: Snapshot; canWrite: boolean }) {
  const [dialog, setDialog] = useState<'rename' | 'delete' | 'restore' | null>(null);
  const label = s.name ?? `${s.kind} snapshot`;
  return (
    <tr>
      <th scope="row">{label}<div className="muted small code">{s.sha256 ? `sha256 ${s.sha256.slice(0, 12)}…` : ''}</div></th>
      <td>{s.kind}</td>
      <td><Badge value={s.state} /></td>
      <td>{formatBytes(s.size)}</td>
      <td>{s.consulIndex ?? '—'}</td>
      <td>{formatDate(s.createdAt)}</td>
      {canWrite ? (
        <td className="row-actions">
          {s.state === 'Available' ? (
            <>
              <button type="button" className="button button-small" onClick={() => setDialog('rename')} aria-label={`Rename ${label}`}>Rename</button>
              <button type="button" className="button button-small" onClick={() => setDialog('restore')} aria-label={`Restore ${label}`}>Restore…</button>
              <button type="button" className="button button-small button-danger-quiet" onClick={() => setDialog('delete')} aria-label={`Delete ${label}`}>Delete…</button>
            </>
          ) : null}
          <Dialog title={dialog === 'rename' ? `Rename ${label}` : dialog === 'delete' ? `Delete ${label}?` : `Restore ${label}?`} open={dialog !== null} onClose={() => setDialog(null)}>
            {dialog === 'rename' ? <Rename cluster={c} snapshot={s} done={() => setDialog(null)} />
              : dialog === 'delete' ? <DeleteSnapshot cluster={c} snapshot={s} done={() => setDialog(null)} />
                : dialog === 'restore' ? <Restore cluster={c} snapshot={s} done={() => setDialog(null)} /> : null}
          </Dialog>
        </td>
      ) : null}
    </tr>
  );
}

function Rename({ cluster: c, snapshot: s, done }: { cluster: Cluster; snapshot: Snapshot; done: () => void }) {
  const [name, setName] = useState(s.name ?? '');
  const id = useId();
  const rename = useClusterChange(c.id, (n: string) => clusterApi.renameSnapshot(c.id, s.id, n));
  return (
    <form onSubmit={(e) => { e.preventDefault(); rename.mutate(name.trim(), { onSuccess: done }); }}>
      <label htmlFor={id}>New name</label>
      <input id={id} value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} />
      <ActionError error={rename.error} />
      <div className="actions">
        <button type="submit" className="button button-primary" disabled={rename.isPending}>Rename</button>
        <button type="button" className="button" onClick={done}>Cancel</button>
      </div>
    </form>
  );
}

function DeleteSnapshot({ cluster: c, snapshot: s, done }: { cluster: Cluster; snapshot: Snapshot; done: () => void }) {
  const del = useClusterChange(c.id, () => clusterApi.deleteSnapshot(c.id, s.id));
  return (
    <>
      <p>The snapshot’s blob is deleted from storage; it cannot be restored afterwards.</p>
      <ActionError error={del.error} />
      <div className="actions">
        <button type="button" className="button button-danger" disabled={del.isPending} onClick={() => del.mutate(undefined, { onSuccess: done })}>Delete the snapshot</button>
        <button type="button" className="button" onClick={done}>Cancel</button>
      </div>
    </>
  );
}

function Restore({ cluster: c, snapshot: s, done }: { cluster: Cluster; snapshot: Snapshot; done: () => void }) {
  const [safety, setSafety] = useState(true);
  const restore = useClusterChange(c.id, () => clusterApi.restoreSnapshot(c.id, s.id, safety));
  return (
    <TypedConfirm word={c.name} action="Restore" busy={restore.isPending} onCancel={done} onConfirm={() => restore.mutate(undefined, { onSuccess: done })}>
      <p>Every key, service and ACL of {c.name} goes back to how it was at {formatDate(s.createdAt)}. Changes since then are lost.</p>
      <label className="checkbox">
        <input type="checkbox" checked={safety} onChange={(e) => setSafety(e.target.checked)} />
        Take a safety snapshot first (recommended)
      </label>
      <ActionError error={restore.error} />
    </TypedConfirm>
  );
}
