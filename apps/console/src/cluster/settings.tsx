import { useState } from 'react';
import { useNavigate } from 'react-router';
import { ApiError } from '../api/client';
import { clusterApi, useClusterChange, useTiers, useVersions } from '../api/queries';
import type { Cluster } from '../api/types';
import { Field, FieldSet } from '../ui/field';
import { DAYS, formatPin, pinChoices } from '../ui/format';
import { crossedPin, type UpgradePin } from '../../../../libs/contracts/src';
import { useSignedIn } from '../ui/session';
import { ActionError, ErrorState, Loading } from '../ui/states';
import { PublicEndpointCard } from './public-endpoint';

/** The server's message for a field it rejected (`details.field` starting with `prefix`). */
function fieldError(e: unknown, prefix: string): string | undefined {
  return e instanceof ApiError && e.field?.startsWith(prefix) ? e.message : undefined;
}

export function SettingsPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  if (!canWrite) {
    return <p>Your role (Clusters.Read) can see these settings on the Overview tab but not change them.</p>;
  }
  return (
    <div className="grid-2">
      <Upgrade cluster={c} />
      <Scale cluster={c} />
      <UpgradePolicy cluster={c} />
      <SnapshotPolicy cluster={c} />
      <DeletionProtection cluster={c} />
      <PublicEndpointCard cluster={c} />
    </div>
  );
}

function Upgrade({ cluster: c }: { cluster: Cluster }) {
  const versions = useVersions();
  const navigate = useNavigate();
  const others = versions.data?.filter((v) => v.version !== c.consulVersion) ?? [];
  const [version, setVersion] = useState('');
  const upgrade = useClusterChange(c.id, (v: string) => clusterApi.upgrade(c.id, v));
  const chosen = version || others[0]?.version || '';
  const crossed = chosen ? crossedPin(c.upgradePolicy.pin, c.consulVersion, chosen) : null;
  return (
    <section className="card" aria-labelledby="upgrade-title">
      <h2 id="upgrade-title">Upgrade Consul</h2>
      <p>Now on {c.consulVersion}. A rolling upgrade takes a snapshot first, upgrades the followers, then the leader, and rolls back on a health failure.</p>
      {versions.isPending ? <Loading what="versions" /> : versions.isError ? <ErrorState error={versions.error} what="versions" />
        : others.length === 0 ? <p className="muted">No other version is available; {c.consulVersion} is the only one in the catalog.</p> : (
          <form onSubmit={(e) => { e.preventDefault(); upgrade.mutate(chosen, { onSuccess: (a) => navigate(`/deployments/${a.operation.id}`) }); }}>
            <Field label="Version" error={fieldError(upgrade.error, 'consulVersion')}
              hint={crossed ? `The cluster is pinned to ${crossed}, which keeps automatic upgrades and maintenance waves inside it; an upgrade you ask for here goes ahead.` : undefined}>
              {(ids) => (
                <select {...ids} value={chosen} onChange={(e) => setVersion(e.target.value)}>
                  {others.map((v) => <option key={v.version} value={v.version}>{v.version} — {v.status}</option>)}
                </select>
              )}
            </Field>
            {fieldError(upgrade.error, 'consulVersion') ? null : <ActionError error={upgrade.error} />}
            <button type="submit" className="button button-primary" disabled={upgrade.isPending || c.state !== 'Running'}>Upgrade to {chosen}</button>
          </form>
        )}
    </section>
  );
}

function Scale({ cluster: c }: { cluster: Cluster }) {
  const tiers = useTiers();
  const navigate = useNavigate();
  const [tier, setTier] = useState(c.tier);
  const scale = useClusterChange(c.id, (t: string) => clusterApi.update(c.id, { tier: t }));
  return (
    <section className="card" aria-labelledby="scale-title">
      <h2 id="scale-title">Scale</h2>
      {tiers.isPending ? <Loading what="tiers" /> : tiers.isError ? <ErrorState error={tiers.error} what="tiers" /> : (
        <form onSubmit={(e) => {
          e.preventDefault();
          scale.mutate(tier, { onSuccess: (a) => { if ('operation' in a) navigate(`/deployments/${a.operation.id}`); } });
        }}>
          <FieldSet legend="Tier" hint="Servers are added or removed one at a time; data is kept." error={fieldError(scale.error, 'tier')}>
            {tiers.data.tiers.map((t) => (
              <label key={t.name} className="checkbox">
                <input type="radio" name="scale-tier" value={t.name} checked={tier === t.name} onChange={() => setTier(t.name)} />
                {t.name}: {t.servers} server{t.servers === 1 ? '' : 's'}, {t.billing.currency} {t.billing.pricePerHour} per hour{t.name === c.tier ? ' (current)' : ''}
              </label>
            ))}
          </FieldSet>
          {fieldError(scale.error, 'tier') ? null : <ActionError error={scale.error} />}
          <button type="submit" className="button button-primary" disabled={scale.isPending || tier === c.tier || c.state !== 'Running'}>Scale to {tier}</button>
        </form>
      )}
    </section>
  );
}

function UpgradePolicy({ cluster: c }: { cluster: Cluster }) {
  const w = c.upgradePolicy.window;
  const [mode, setMode] = useState(c.upgradePolicy.mode);
  const [day, setDay] = useState(String(w?.dayOfWeek ?? 0));
  const [start, setStart] = useState(String(w?.startHourUtc ?? 2));
  const [hours, setHours] = useState(String(w?.hours ?? 4));
  const [pin, setPin] = useState<UpgradePin>(c.upgradePolicy.pin);
  const save = useClusterChange(c.id, (body: unknown) => clusterApi.update(c.id, body));
  const windowError = fieldError(save.error, 'upgradePolicy.window');
  return (
    <section className="card" aria-labelledby="upolicy-title">
      <h2 id="upolicy-title">Upgrade policy</h2>
      <form onSubmit={(e) => {
        e.preventDefault();
        save.mutate({ upgradePolicy: { mode, window: mode === 'automatic' ? { dayOfWeek: Number(day), startHourUtc: Number(start), hours: Number(hours) } : null, pin } });
      }}>
        <FieldSet legend="Upgrades" error={fieldError(save.error, 'upgradePolicy.mode')}>
          <label className="checkbox"><input type="radio" name="policy-mode" checked={mode === 'manual'} onChange={() => setMode('manual')} /> Manual</label>
          <label className="checkbox"><input type="radio" name="policy-mode" checked={mode === 'automatic'} onChange={() => setMode('automatic')} /> Automatic, in a weekly window</label>
        </FieldSet>
        {mode === 'automatic' ? (
          <FieldSet legend="Maintenance window (UTC)" error={windowError}>
            <div className="inline-fields">
              <label>Day <select value={day} onChange={(e) => setDay(e.target.value)}>{DAYS.map((d, i) => <option key={d} value={i}>{d}</option>)}</select></label>
              <label>Starts at (hour) <input type="number" inputMode="numeric" className="narrow" value={start} onChange={(e) => setStart(e.target.value)} /></label>
              <label>Lasts (hours) <input type="number" inputMode="numeric" className="narrow" value={hours} onChange={(e) => setHours(e.target.value)} /></label>
            </div>
          </FieldSet>
        ) : null}
        <FieldSet legend="Version pin" hint={`Now ${formatPin(c.upgradePolicy.pin, c.consulVersion)}. Automatic upgrades and maintenance waves skip a version outside the pin (the cluster's events say why); an upgrade you ask for is not held by it.`}
          error={fieldError(save.error, 'upgradePolicy.pin')}>
          {pinChoices(c.consulVersion).map((p) => (
            <label key={p.value} className="checkbox"><input type="radio" name="policy-pin" value={p.value} checked={pin === p.value} onChange={() => setPin(p.value)} /> {p.label}</label>
          ))}
        </FieldSet>
        {fieldError(save.error, 'upgradePolicy') ? null : <ActionError error={save.error} />}
        {save.isSuccess ? <p role="status" className="muted">Saved.</p> : null}
        <button type="submit" className="button button-primary" disabled={save.isPending}>Save upgrade policy</button>
      </form>
    </section>
  );
}

function SnapshotPolicy({ cluster: c }: { cluster: Cluster }) {
  const [interval, setIntervalHours] = useState(String(c.snapshotPolicy.intervalHours));
  const [retention, setRetention] = useState(String(c.snapshotPolicy.retention));
  const save = useClusterChange(c.id, (body: unknown) => clusterApi.update(c.id, body));
  return (
    <section className="card" aria-labelledby="spolicy-title">
      <h2 id="spolicy-title">Snapshot policy</h2>
      <form onSubmit={(e) => { e.preventDefault(); save.mutate({ snapshotPolicy: { intervalHours: Number(interval), retention: Number(retention) } }); }}>
        <Field label="Snapshot interval (hours)" hint="1 to 24" error={fieldError(save.error, 'snapshotPolicy.intervalHours')}>
          {(ids) => <input {...ids} type="number" inputMode="numeric" className="narrow" value={interval} onChange={(e) => setIntervalHours(e.target.value)} />}
        </Field>
        <Field label="Snapshots kept" hint="1 to 365" error={fieldError(save.error, 'snapshotPolicy.retention')}>
          {(ids) => <input {...ids} type="number" inputMode="numeric" className="narrow" value={retention} onChange={(e) => setRetention(e.target.value)} />}
        </Field>
        {fieldError(save.error, 'snapshotPolicy.') ? null : <ActionError error={save.error} />}
        {save.isSuccess ? <p role="status" className="muted">Saved.</p> : null}
        <button type="submit" className="button button-primary" disabled={save.isPending}>Save snapshot policy</button>
      </form>
    </section>
  );
}

function DeletionProtection({ cluster: c }: { cluster: Cluster }) {
  const [on, setOn] = useState(c.deletionProtection);
  const save = useClusterChange(c.id, (deletionProtection: boolean) => clusterApi.update(c.id, { deletionProtection }));
  return (
    <section className="card" aria-labelledby="protect-title">
      <h2 id="protect-title">Deletion protection</h2>
      <p>Now {c.deletionProtection ? 'on: the cluster cannot be deleted until it is turned off' : 'off'}.</p>
      <form onSubmit={(e) => { e.preventDefault(); save.mutate(on); }}>
        <FieldSet legend="Protection" hint="On: a delete (here, from the CLI or the API) is refused until protection is turned off again." error={fieldError(save.error, 'deletionProtection')}>
          <label className="checkbox"><input type="checkbox" checked={on} onChange={(e) => setOn(e.target.checked)} /> Protect this cluster from deletion</label>
        </FieldSet>
        {fieldError(save.error, 'deletionProtection') ? null : <ActionError error={save.error} />}
        {save.isSuccess ? <p role="status" className="muted">Saved.</p> : null}
        <button type="submit" className="button button-primary" disabled={save.isPending || on === c.deletionProtection}>Save deletion protection</button>
      </form>
    </section>
  );
}
