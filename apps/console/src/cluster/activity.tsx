import { useState } from 'react';
import { Link } from 'react-router';
import { useClusterEvents, useClusterOperations } from '../api/queries';
import { ENDED_OPERATION_STATES, type Cluster, type Operation } from '../api/types';
import { formatDate } from '../ui/format';
import { OperationProgress } from '../ui/operation-progress';
import { Badge, EmptyState, ErrorState, Loading, TableRegion } from '../ui/states';

/** Operations (newest first, the running ones with live progress) and the audit events. */
export function ActivityPanel({ cluster: c }: { cluster: Cluster }) {
  const ops = useClusterOperations(c.id);
  const busy = ops.data?.some((o) => !ENDED_OPERATION_STATES.has(o.state)) ?? false;
  const events = useClusterEvents(c.id, busy);
  return (
    <div>
      <section aria-labelledby="ops-title">
        <h2 id="ops-title">Operations</h2>
        {ops.isPending ? <Loading what="operations" /> : ops.isError ? <ErrorState error={ops.error} what="operations" onRetry={() => void ops.refetch()} />
          : ops.data.length === 0 ? <EmptyState title="No operations yet." />
            : <ul className="op-list">{ops.data.map((o) => <OperationItem key={o.id} op={o} />)}</ul>}
      </section>
      <section aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        {events.isPending ? <Loading what="events" /> : events.isError ? <ErrorState error={events.error} what="events" onRetry={() => void events.refetch()} />
          : events.data.length === 0 ? <EmptyState title="No events yet." /> : (
            <TableRegion label="Events">
              <table>
                <caption className="visually-hidden">Audit events of {c.name}, oldest first</caption>
                <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">By</th><th scope="col">Details</th></tr></thead>
                <tbody>
                  {events.data.map((e) => (
                    <tr key={e.id}>
                      <td>{formatDate(e.createdAt)}</td>
                      <td className="code">{e.action}</td>
                      <td>{e.actor}</td>
                      <td className="small code">{e.details && Object.keys(e.details as object).length ? JSON.stringify(e.details) : ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableRegion>
          )}
      </section>
    </div>
  );
}

function OperationItem({ op }: { op: Operation }) {
  const live = !ENDED_OPERATION_STATES.has(op.state);
  const [open, setOpen] = useState(live);
  return (
    <li className="op-item">
      <div className="op-item-head">
        <button type="button" className="button button-quiet" aria-expanded={open || live} onClick={() => setOpen(!open)}>
          <span className="op-kind">{op.kind}</span>
        </button>
        <Badge value={op.state} />
        <span className="muted small">{formatDate(op.createdAt)}{op.finishedAt ? ` → ${formatDate(op.finishedAt)}` : ''}</span>
        <Link to={`/deployments/${op.id}`} className="small">Follow<span className="visually-hidden"> the {op.kind} operation</span></Link>
      </div>
      {op.error && op.state === 'Failed' ? <p className="action-error">{op.error.message}</p> : null}
      {open || live ? <OperationProgress op={op} label={`${op.kind} progress`} /> : null}
    </li>
  );
}
