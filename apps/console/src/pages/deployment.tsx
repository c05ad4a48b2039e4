import { Link, useParams } from 'react-router';
import { useCluster, useOperation } from '../api/queries';
import { OperationProgress } from '../ui/operation-progress';
import { pageTitle } from '../ui/session';
import { Badge, ErrorState, Loading } from '../ui/states';

/** Follows an operation (the create, after the wizard) until it ends: live progress and steps, then what next. */
export function DeploymentPage() {
  const { operationId = '' } = useParams();
  const op = useOperation(operationId);
  const clusterId = op.data?.clusterId ?? '';
  if (op.isPending) return <Loading what="the deployment" />;
  if (op.isError) return <ErrorState error={op.error} what="the deployment" onRetry={() => void op.refetch()} />;
  return <Deployment operation={op.data} clusterId={clusterId} />;
}

function Deployment({ operation: op, clusterId }: { operation: NonNullable<ReturnType<typeof useOperation>['data']>; clusterId: string }) {
  const cluster = useCluster(clusterId);
  const name = cluster.data?.name ?? 'the cluster';
  const kind = op.kind === 'create' ? 'Deployment' : `${op.kind[0].toUpperCase()}${op.kind.slice(1)}`;
  return (
    <>
      <title>{pageTitle(`${kind} of ${name}`)}</title>
      <p className="breadcrumb"><Link to="/clusters">Clusters</Link> / {cluster.data ? <Link to={`/clusters/${clusterId}`}>{name}</Link> : name} / {kind}</p>
      <h1>{kind} of {name}</h1>
      <div className="card" aria-live="polite">
        <dl className="meta">
          <div><dt>Operation</dt><dd className="code">{op.id}</dd></div>
          <div><dt>Cluster state</dt><dd>{cluster.data ? <Badge value={cluster.data.state} /> : '—'}</dd></div>
        </dl>
        <OperationProgress op={op} label={`${kind} progress`} />
      </div>
      {op.state === 'Succeeded' ? (
        <div className="card card-ok" role="status">
          <h2>{op.kind === 'create' ? `${name} is ${cluster.data?.state ?? 'ready'}` : 'Done'}</h2>
          <p>{op.kind === 'create' ? 'TLS, ACLs with default-deny and gossip encryption are on. Take it from here:' : 'The operation finished.'}</p>
          <p><Link className="button button-primary" to={`/clusters/${clusterId}`}>Go to the cluster</Link></p>
        </div>
      ) : op.state === 'Failed' ? (
        <div className="card card-bad" role="alert">
          <h2>The {kind.toLowerCase()} failed</h2>
          <p>{op.error?.message ?? 'No reason was recorded.'}{op.error?.code ? <span className="code"> ({op.error.code})</span> : null}</p>
          <p>
            What to do: the steps above show where it stopped. {op.kind === 'create'
              ? 'The cluster is left Failed and bills nothing; delete it from its page and create it again. If it fails the same way, contact support with the operation id above.'
              : 'The cluster was left as it was before, or rolled back; open its page to see its state and try again.'}
          </p>
          <p><Link className="button" to={`/clusters/${clusterId}`}>Open the cluster’s page</Link></p>
        </div>
      ) : op.state === 'Canceled' ? (
        <div className="card" role="status"><h2>Canceled</h2><p>{op.error?.message ?? 'The operation was canceled before it started.'}</p></div>
      ) : <p className="muted">This page follows the {kind.toLowerCase()} by itself; you may leave it, the work goes on.</p>}
    </>
  );
}
