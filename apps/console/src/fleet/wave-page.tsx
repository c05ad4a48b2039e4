import { Link, useParams } from 'react-router';
import { useWave } from '../api/queries';
import { formatDate } from '../ui/format';
import { pageTitle } from '../ui/session';
import { Badge, ErrorState, Loading, TableRegion } from '../ui/states';

/** One maintenance wave, followed until it ends: counts and each cluster's item. */
export function WavePage() {
  const { id = '' } = useParams();
  const wave = useWave(id);
  if (wave.isPending) return <Loading what="the wave" />;
  if (wave.isError) return <ErrorState error={wave.error} what="the wave" onRetry={() => void wave.refetch()} />;
  const w = wave.data;
  const done = w.succeeded + w.failed + w.skipped;
  return (
    <>
      <title>{pageTitle(`Wave ${w.action}`)}</title>
      <p className="breadcrumb"><Link to="/fleet">Fleet</Link> / Wave</p>
      <h1>Wave: {w.action}</h1>
      <div className="card" aria-live="polite">
        <p><Badge value={w.state} /> {w.stateReason ? <span>{w.stateReason}</span> : null}</p>
        <progress max={w.total} value={done} aria-label="Wave progress">{done} of {w.total}</progress>
        <dl className="meta">
          <div><dt>Clusters</dt><dd>{w.total}: {w.succeeded} succeeded, {w.failed} failed, {w.running} running, {w.pending} pending, {w.skipped} skipped</dd></div>
          <div><dt>Rules</dt><dd>{w.canaries} canar{w.canaries === 1 ? 'y' : 'ies'} first, at most {w.maxInFlight} in flight, halt after {w.maxFailures} failure{w.maxFailures === 1 ? '' : 's'}</dd></div>
          <div><dt>Started</dt><dd>{formatDate(w.createdAt)}{w.finishedAt ? `, ended ${formatDate(w.finishedAt)}` : ''}</dd></div>
        </dl>
      </div>
      <TableRegion label="Clusters in this wave">
        <table>
          <caption className="visually-hidden">Clusters in this wave</caption>
          <thead><tr><th scope="col">Cluster</th><th scope="col">Canary</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Finished</th></tr></thead>
          <tbody>
            {w.clusters.map((i) => (
              <tr key={i.clusterId}>
                <th scope="row" className="code">{i.clusterId}</th>
                <td>{i.canary ? 'yes' : ''}</td>
                <td><Badge value={i.state} />{i.reason ? <span className="small"> {i.reason}</span> : null}</td>
                <td>{formatDate(i.startedAt)}</td>
                <td>{formatDate(i.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
    </>
  );
}
