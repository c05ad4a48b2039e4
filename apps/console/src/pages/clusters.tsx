import { Link } from 'react-router';
import { useClusters } from '../api/queries';
import { ACTIVE_CLUSTER_STATES, type Cluster } from '../api/types';
import { formatDate } from '../ui/format';
import { pageTitle, useSignedIn } from '../ui/session';
import { Badge, EmptyState, ErrorState, Loading, TableRegion } from '../ui/states';

/** The tenant's clusters; polled quickly while one of them is changing, so it updates without a reload. */
export function ClustersPage() {
  const { canWrite } = useSignedIn();
  const clusters = useClusters();
  const busy = clusters.data?.some((c) => ACTIVE_CLUSTER_STATES.has(c.state)) ?? false;
  return (
    <>
      <title>{pageTitle('Clusters')}</title>
      <div className="page-head">
        <h1>Clusters</h1>
        {canWrite ? <Link className="button button-primary" to="/clusters/new">Create a cluster</Link> : null}
      </div>
      {clusters.isPending ? <Loading what="your clusters" />
        : clusters.isError ? <ErrorState error={clusters.error} what="your clusters" onRetry={() => void clusters.refetch()} />
          : clusters.data.length === 0 ? (
            <EmptyState title="No clusters yet.">
              {canWrite ? <p><Link to="/clusters/new">Create your first cluster</Link>: a development cluster (one server) is ready in under a minute.</p>
                : <p>Your role (Clusters.Read) can see clusters but not create them.</p>}
            </EmptyState>
          ) : <ClusterTable clusters={clusters.data} busy={busy} />}
    </>
  );
}

function ClusterTable({ clusters, busy }: { clusters: Cluster[]; busy: boolean }) {
  return (
    <>
      <p className="muted" aria-live="polite">{busy ? 'Some clusters are changing; this list updates by itself.' : `${clusters.length} cluster${clusters.length === 1 ? '' : 's'}`}</p>
      <TableRegion label="Clusters">
        <table>
          <caption className="visually-hidden">Your clusters</caption>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Version</th><th scope="col">Tier</th><th scope="col">Region</th><th scope="col">Created</th></tr>
          </thead>
          <tbody>
            {clusters.map((c) => (
              <tr key={c.id}>
                <th scope="row"><Link to={`/clusters/${c.id}`}>{c.name}</Link><div className="muted small">{c.resourceGroup}</div></th>
                <td><Badge value={c.state} /></td>
                <td><Badge value={c.health.status} /></td>
                <td>{c.consulVersion}</td>
                <td>{c.tier} <span className="muted">({c.servers} server{c.servers === 1 ? '' : 's'})</span></td>
                <td>{c.region}</td>
                <td>{formatDate(c.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
    </>
  );
}
