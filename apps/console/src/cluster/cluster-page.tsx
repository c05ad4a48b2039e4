import { useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { clusterApi, useCluster, useClusterChange } from '../api/queries';
import type { Cluster } from '../api/types';
import { Dialog, TypedConfirm } from '../ui/dialog';
import { describeAllowlist, formatDate, formatPin, formatWindow } from '../ui/format';
import { pageTitle, useSignedIn } from '../ui/session';
import { ActionError, Badge, ErrorState, Loading } from '../ui/states';
import { Tabs } from '../ui/tabs';
import { AccessPanel } from './access';
import { ActivityPanel } from './activity';
import { AuditExportPanel } from './audit-export';
import { FederationPanel } from './federation';
import { KubernetesPanel } from './kubernetes';
import { SettingsPanel } from './settings';
import { publicEndpointText } from './public-endpoint';
import { SnapshotsPanel } from './snapshots';

const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'snapshots', label: 'Snapshots' },
  { id: 'kubernetes', label: 'Kubernetes' },
  { id: 'settings', label: 'Upgrade, scale and policies' },
  { id: 'audit', label: 'Audit export' },
  { id: 'activity', label: 'Operations and events' },
];

export function ClusterPage() {
  const { id = '' } = useParams();
  const cluster = useCluster(id);
  if (cluster.isPending) return <Loading what="the cluster" />;
  if (cluster.isError) return <ErrorState error={cluster.error} what="the cluster" onRetry={() => void cluster.refetch()} />;
  return <ClusterView cluster={cluster.data} />;
}

function ClusterView({ cluster: c }: { cluster: Cluster }) {
  const [params, setParams] = useSearchParams();
  const tab = TABS.some((t) => t.id === params.get('tab')) ? params.get('tab')! : 'overview';
  const { canWrite } = useSignedIn();
  const uiReady = c.state === 'Running' || c.state === 'Updating';
  return (
    <>
      <title>{pageTitle(c.name)}</title>
      <p className="breadcrumb"><Link to="/clusters">Clusters</Link> / {c.name}</p>
      <div className="page-head">
        <div>
          <h1>{c.name}</h1>
          <p className="head-badges"><Badge value={c.state} /> <Badge value={c.health.status} label={`health: ${c.health.status}`} /> <span className="muted">Consul {c.consulVersion} · {c.tier} · {c.region}</span></p>
          {c.stateReason ? <p className="muted">{c.stateReason}</p> : null}
        </div>
        <div className="actions">
          {uiReady ? (
            <a className="button button-primary" href={`/sso/clusters/${c.id}`} target="_blank" rel="noopener noreferrer">Open Consul UI<span className="visually-hidden"> (opens in a new tab)</span></a>
          ) : <span className="muted">The Consul UI opens once the cluster is Running.</span>}
          {canWrite ? <DeleteCluster cluster={c} /> : null}
        </div>
      </div>
      <Tabs tabs={TABS} selected={tab} onSelect={(t) => setParams(t === 'overview' ? {} : { tab: t }, { replace: true })} label="Cluster sections">
        {tab === 'overview' ? <><Overview cluster={c} /><FederationPanel cluster={c} /></>
          : tab === 'kubernetes' ? <KubernetesPanel cluster={c} />
          : tab === 'snapshots' ? <SnapshotsPanel cluster={c} />
            : tab === 'settings' ? <SettingsPanel cluster={c} />
            : tab === 'audit' ? <AuditExportPanel cluster={c} />
              : <ActivityPanel cluster={c} />}
      </Tabs>
    </>
  );
}

function Overview({ cluster: c }: { cluster: Cluster }) {
  return (
    <div className="grid-2">
      <section className="card" aria-labelledby="meta-title">
        <h2 id="meta-title">Details</h2>
        <dl className="meta">
          <div><dt>Cluster id</dt><dd className="code">{c.id}</dd></div>
          <div><dt>Subscription</dt><dd className="code">{c.subscriptionId}</dd></div>
          <div><dt>Resource group</dt><dd>{c.resourceGroup}</dd></div>
          <div><dt>Managed resource group</dt><dd>{c.managedResourceGroup}</dd></div>
          <div><dt>Region</dt><dd>{c.region}</dd></div>
          <div><dt>Datacenter</dt><dd>{c.datacenter}</dd></div>
          <div><dt>Tier</dt><dd>{c.tier} ({c.servers} server{c.servers === 1 ? '' : 's'})</dd></div>
          <div><dt>Consul version</dt><dd>{c.consulVersion}</dd></div>
          <div><dt>Created</dt><dd>{formatDate(c.createdAt)}</dd></div>
          <div><dt>Running since</dt><dd>{formatDate(c.runningSince)}</dd></div>
          <div><dt>Health</dt><dd><Badge value={c.health.status} />{c.health.reason ? ` ${c.health.reason}` : ''} <span className="muted small">checked {formatDate(c.health.checkedAt)}</span></dd></div>
          <div><dt>Upgrades</dt><dd>{c.upgradePolicy.mode}{c.upgradePolicy.mode === 'automatic' ? `, ${formatWindow(c.upgradePolicy.window)}` : ''}; {formatPin(c.upgradePolicy.pin, c.consulVersion)}</dd></div>
          <div><dt>Deletion protection</dt><dd>{c.deletionProtection ? 'on' : 'off'}</dd></div>
          <div><dt>Snapshots</dt><dd>every {c.snapshotPolicy.intervalHours} h, {c.snapshotPolicy.retention} kept</dd></div>
          <div><dt>Certificates</dt><dd>CA until {formatDate(c.certificates.caNotAfter)}; servers until {formatDate(c.certificates.serverCertificatesNotAfter)}</dd></div>
        </dl>
      </section>
      <section className="card" aria-labelledby="endpoints-title">
        <h2 id="endpoints-title">Endpoints</h2>
        <dl className="meta">
          <div><dt>Consul UI (signed in)</dt><dd>{c.state === 'Running' || c.state === 'Updating'
            ? <a href={`/sso/clusters/${c.id}`} target="_blank" rel="noopener noreferrer">through the control plane</a> : 'once the cluster is Running'}</dd></div>
          <div><dt>HTTPS API</dt><dd className="code">{c.endpoints.https ?? 'not yet'}</dd></div>
          <div><dt>Public endpoint</dt><dd className={c.endpoints.public ? 'code' : undefined}>{publicEndpointText(c)}</dd></div>
          <div><dt>Allowed sources</dt><dd>{describeAllowlist(c.ipAllowlist)}{c.publicEndpoint ? '' : ' (applied when the endpoint is on)'}</dd></div>
          <div><dt>Servers</dt><dd className="code">{c.serverAddresses.join(', ') || '—'}</dd></div>
        </dl>
        <AccessPanel cluster={c} />
      </section>
    </div>
  );
}

function DeleteCluster({ cluster: c }: { cluster: Cluster }) {
  const [open, setOpen] = useState(false);
  const navigate = useNavigate();
  const del = useClusterChange(c.id, () => clusterApi.delete(c.id));
  if (c.state === 'Deleting' || c.state === 'Deleted') return null;
  return (
    <>
      {/* A refusal from an earlier try is not shown again: the cluster may have changed since (protection turned off). */}
      <button type="button" className="button button-danger-quiet" onClick={() => { del.reset(); setOpen(true); }}>Delete…</button>
      <Dialog title={`Delete ${c.name}?`} open={open} onClose={() => setOpen(false)}>
        <TypedConfirm word={c.name} action="Delete the cluster" busy={del.isPending} onCancel={() => setOpen(false)}
          onConfirm={() => del.mutate(undefined, { onSuccess: (a) => navigate(`/deployments/${a.operation.id}`) })}>
          {c.deletionProtection ? (
            <p className="notice">
              Deletion protection is on: the control plane refuses to delete {c.name}. To delete it, first turn protection off
              under <Link to={`/clusters/${c.id}?tab=settings`} onClick={() => setOpen(false)}>Upgrade, scale and policies</Link> (or
              send <span className="code">PATCH {`{ "deletionProtection": false }`}</span>).
            </p>
          ) : null}
          <p>Its servers, data and snapshots go; billing stops. This cannot be undone.</p>
          <ActionError error={del.error} />
        </TypedConfirm>
      </Dialog>
    </>
  );
}
