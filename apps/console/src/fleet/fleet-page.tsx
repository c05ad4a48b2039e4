import { useId, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { ApiError } from '../api/client';
import { clusterApi, useFleet, useRegions, useVersions } from '../api/queries';
import type { FleetCluster } from '../api/types';
import { Field } from '../ui/field';
import { formatDate } from '../ui/format';
import { pageTitle, useSignedIn } from '../ui/session';
import { ActionError, Badge, EmptyState, ErrorState, Loading, TableRegion } from '../ui/states';

const FILTERS = ['state', 'version', 'health', 'region'] as const;
const STATES = ['Creating', 'Running', 'Updating', 'Deleting', 'Failed'];
const HEALTH = ['healthy', 'degraded', 'unavailable', 'unknown'];
const ACTIONS = ['snapshot', 'upgrade', 'rotate-gossip-key', 'rotate-certificates', 'rotate-management-token', 'rotate-ca', 'repair'];

/** SREs: every tenant's clusters, filtered as GET /v1/admin/clusters filters, and maintenance waves over them. */
export function FleetPage() {
  const { operator } = useSignedIn();
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? '']));
  const fleet = useFleet(filters);
  const versions = useVersions();
  const regions = useRegions();
  if (!operator) {
    return <EmptyState title="The fleet is for SREs.">
      <p>It needs the Platform.SRE role in the operator’s tenant. <Link to="/clusters">Back to your clusters</Link></p>
    </EmptyState>;
  }
  const setFilter = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <>
      <title>{pageTitle('Fleet')}</title>
      <div className="page-head">
        <h1>Fleet</h1>
        <a className="button" href="/admin/queues">Queues dashboard</a>
      </div>
      <form className="filters" aria-label="Filter the fleet" onSubmit={(e) => e.preventDefault()}>
        <FilterSelect label="State" value={filters.state} options={STATES} onChange={(v) => setFilter('state', v)} />
        <FilterSelect label="Version" value={filters.version} options={versions.data?.map((v) => v.version) ?? []} onChange={(v) => setFilter('version', v)} />
        <FilterSelect label="Health" value={filters.health} options={HEALTH} onChange={(v) => setFilter('health', v)} />
        <FilterSelect label="Region" value={filters.region} options={regions.data?.map((r) => r.name) ?? []} onChange={(v) => setFilter('region', v)} />
      </form>
      {fleet.isPending ? <Loading what="the fleet" />
        : fleet.isError ? <ErrorState error={fleet.error} what="the fleet" onRetry={() => void fleet.refetch()} />
          : fleet.data.length === 0 ? <EmptyState title="No cluster matches these filters." />
            : <FleetTable clusters={fleet.data} />}
      <StartWave filters={filters} versions={versions.data?.map((v) => v.version) ?? []} />
    </>
  );
}

function FilterSelect({ label, value, options, onChange }: { label: string; value: string; options: string[]; onChange: (v: string) => void }) {
  return (
    <Field label={label}>
      {(ids) => (
        <select {...ids} value={value} onChange={(e) => onChange(e.target.value)}>
          <option value="">Any</option>
          {options.map((o) => <option key={o} value={o}>{o}</option>)}
        </select>
      )}
    </Field>
  );
}

function FleetTable({ clusters }: { clusters: FleetCluster[] }) {
  return (
    <TableRegion label="Fleet">
      <table>
        <caption>{clusters.length} cluster{clusters.length === 1 ? '' : 's'}</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Tenant</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Version</th><th scope="col">Tier</th><th scope="col">Region</th><th scope="col">Created</th></tr></thead>
        <tbody>
          {clusters.map((c) => (
            <tr key={c.id}>
              <th scope="row">{c.name}<div className="muted small code">{c.id}</div></th>
              <td className="code small">{c.tenantId}</td>
              <td><Badge value={c.state} /></td>
              <td><Badge value={c.health.status} />{c.health.reason ? <div className="muted small">{c.health.reason}</div> : null}</td>
              <td>{c.consulVersion}</td>
              <td>{c.tier}</td>
              <td>{c.region}</td>
              <td>{formatDate(c.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableRegion>
  );
}

/** A wave over the Running clusters the current filters select (the state filter aside: waves take Running ones). */
function StartWave({ filters, versions }: { filters: Record<string, string>; versions: string[] }) {
  const [action, setAction] = useState('snapshot');
  const [version, setVersion] = useState('');
  const [canaries, setCanaries] = useState('1');
  const [maxInFlight, setMaxInFlight] = useState('2');
  const [maxFailures, setMaxFailures] = useState('0');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const headingId = useId();
  const selector = Object.fromEntries(Object.entries(filters).filter(([k, v]) => v && k !== 'state'));
  const err = (f: string) => (error instanceof ApiError && error.field === f ? error.message : undefined);
  return (
    <section className="card" aria-labelledby={headingId}>
      <h2 id={headingId}>Start a maintenance wave</h2>
      <p>Over the Running clusters matching {Object.keys(selector).length ? Object.entries(selector).map(([k, v]) => `${k} = ${v}`).join(', ') : 'no filter (the whole fleet)'}: canaries first, then at most “in flight” at a time; it halts when failures pass the limit.</p>
      <form onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          const wave = await clusterApi.startWave({
            action, selector, ...(action === 'upgrade' ? { params: { consulVersion: version || versions[0] } } : {}),
            canaries: Number(canaries), maxInFlight: Number(maxInFlight), maxFailures: Number(maxFailures),
          });
          navigate(`/fleet/waves/${wave.id}`);
        } catch (x) {
          setError(x);
        } finally {
          setBusy(false);
        }
      }}>
        <div className="inline-fields">
          <Field label="Action" error={err('action')}>
            {(ids) => <select {...ids} value={action} onChange={(e) => setAction(e.target.value)}>{ACTIONS.map((a) => <option key={a} value={a}>{a}</option>)}</select>}
          </Field>
          {action === 'upgrade' ? (
            <Field label="To version" error={err('params.consulVersion')}>
              {(ids) => <select {...ids} value={version || versions[0]} onChange={(e) => setVersion(e.target.value)}>{versions.map((v) => <option key={v} value={v}>{v}</option>)}</select>}
            </Field>
          ) : null}
          <Field label="Canaries" error={err('canaries')}>{(ids) => <input {...ids} type="number" className="narrow" value={canaries} onChange={(e) => setCanaries(e.target.value)} />}</Field>
          <Field label="In flight" error={err('maxInFlight')}>{(ids) => <input {...ids} type="number" className="narrow" value={maxInFlight} onChange={(e) => setMaxInFlight(e.target.value)} />}</Field>
          <Field label="Failures allowed" error={err('maxFailures')}>{(ids) => <input {...ids} type="number" className="narrow" value={maxFailures} onChange={(e) => setMaxFailures(e.target.value)} />}</Field>
        </div>
        {error instanceof ApiError && error.field ? null : <ActionError error={error} />}
        <button type="submit" className="button button-primary" disabled={busy}>{busy ? 'Starting…' : 'Start the wave'}</button>
      </form>
    </section>
  );
}
