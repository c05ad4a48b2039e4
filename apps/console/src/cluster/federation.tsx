import { useState } from 'react';
import { Link } from 'react-router';
import { clusterApi, useClusterChange, useFederation } from '../api/queries';
import type { Cluster, Federation, FederationMember, FederationToken } from '../api/types';
import { Dialog } from '../ui/dialog';
import { formatDate } from '../ui/format';
import { useSignedIn } from '../ui/session';
import { ShownOnce } from '../ui/shown-once';
import { ActionError, Badge, EmptyState, ErrorState, Loading, TableRegion } from '../ui/states';

/** The cluster's WAN federation: on its own, the primary of secondaries, or a secondary of a primary. */
export function FederationPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  const federation = useFederation(c.id);
  const f = federation.data;
  return (
    <section className="card" aria-labelledby="federation-title">
      <h2 id="federation-title">Federation</h2>
      {federation.isError ? <ErrorState error={federation.error} what="the federation" onRetry={() => void federation.refetch()} />
        : !f ? <Loading what="the federation" />
          : f.role === 'none' ? (
            <EmptyState title="Not federated">
              <p>{c.name} is on its own. A federation joins clusters of your tenant over Consul’s WAN: one primary and its secondaries, sharing one CA and one gossip key, with ACLs replicated from the primary.</p>
              {canWrite ? <p>To make {c.name} a primary, create a federation token, then create a cluster with it.</p> : null}
            </EmptyState>
          ) : <Members cluster={c} federation={f} />}
      {canWrite && f && f.role !== 'secondary' ? <IssueToken cluster={c} /> : null}
    </section>
  );
}

const FEDERATION_STATE: Record<Federation['state'], string> = {
  healthy: 'Every member is Running and healthy.',
  degraded: 'A member is not Running and healthy: its row says which.',
  'primary-missing': 'The primary is gone: ACLs no longer replicate to this datacenter.',
  none: '',
};

function Members({ cluster: c, federation: f }: { cluster: Cluster; federation: Federation }) {
  const members = [...(f.primary ? [{ role: 'primary', m: f.primary }] : []), ...f.secondaries.map((m) => ({ role: 'secondary', m }))];
  return (
    <>
      <p>
        {f.role === 'primary' ? <>{c.name} is the primary of {f.secondaries.length} secondar{f.secondaries.length === 1 ? 'y' : 'ies'}.</>
          : f.primary ? <>{c.name} is a secondary of <MemberName member={f.primary} self={c.id} />.</>
            : <>{c.name} is a secondary; its primary is gone.</>}
      </p>
      <p><Badge value={f.state} label={`federation: ${f.state}`} /> <span className="muted small">{FEDERATION_STATE[f.state]}</span></p>
      <TableRegion label="Federation members">
        <table>
          <caption className="visually-hidden">Members of {c.name}’s federation</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Datacenter</th><th scope="col">Region</th><th scope="col">State</th><th scope="col">Health</th></tr></thead>
          <tbody>
            {members.map(({ role, m }) => (
              <tr key={m.clusterId}>
                <th scope="row"><MemberName member={m} self={c.id} /></th>
                <td>{role}</td>
                <td>{m.datacenter}</td>
                <td>{m.region}</td>
                <td><Badge value={m.state} /></td>
                <td><Badge value={m.health} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
    </>
  );
}

/** A member's name: a link to its page, except for this cluster and a deleted one. */
function MemberName({ member: m, self }: { member: FederationMember; self: string }) {
  if (m.clusterId === self) return <>{m.name} <span className="muted small">(this cluster)</span></>;
  if (m.state === 'Deleted') return <>{m.name} <span className="muted small">(deleted)</span></>;
  return <Link to={`/clusters/${m.clusterId}`}>{m.name}</Link>;
}

/** A single-use token for a new secondary: shown in a dialog once, dropped when it closes. */
function IssueToken({ cluster: c }: { cluster: Cluster }) {
  const [open, setOpen] = useState(false);
  const issue = useClusterChange(c.id, () => clusterApi.createFederationToken(c.id), { secret: true });
  const close = () => {
    setOpen(false);
    issue.reset(); // the token leaves memory with the dialog
  };
  const running = c.state === 'Running';
  return (
    <>
      <div className="actions">
        <button type="button" className="button" disabled={!running || issue.isPending} onClick={() => issue.mutate(undefined, { onSuccess: () => setOpen(true) })}>
          {issue.isPending ? 'Creating…' : 'Create federation token'}
        </button>
        {running ? null : <span className="muted small">Federation tokens can be made once the cluster is Running.</span>}
      </div>
      {open ? null : <ActionError error={issue.error} />}
      <Dialog title="Federation token" open={open && issue.data !== undefined} onClose={close}>
        {issue.data ? <TokenShown cluster={c} token={issue.data} onDone={close} /> : null}
      </Dialog>
    </>
  );
}

function TokenShown({ cluster: c, token: t, onDone }: { cluster: Cluster; token: FederationToken; onDone: () => void }) {
  return (
    <ShownOnce notice="Copy the token now: it is shown this once, and the control plane keeps only its hash." secret={t.token} copyLabel="Copy the token" onDone={onDone}>
      <dl className="meta">
        <div><dt>Token</dt><dd><code className="secret" aria-label="Federation token">{t.token}</code></dd></div>
        <div><dt>Expires</dt><dd>{formatDate(t.expiresAt)}</dd></div>
        <div><dt>Primary</dt><dd>{c.name} (datacenter {t.primaryDatacenter})</dd></div>
      </dl>
      <p>
        To add a secondary, <a href="/clusters/new" target="_blank" rel="noopener noreferrer">create a cluster<span className="visually-hidden"> (opens in a new tab)</span></a> with
        this token in <strong>Federation token</strong> (Consul settings) before it expires. Give the new cluster a datacenter name of its own and
        Consul {c.consulVersion}, like {c.name}. The token works once.
      </p>
    </ShownOnce>
  );
}
