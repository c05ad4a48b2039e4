import type { Dispatch, SetStateAction } from 'react';
import type { AllowlistEntry, UpgradePin } from '../../../../libs/contracts/src';
import { AllowlistEditor, allowlistBody } from '../cluster/allowlist-editor';
import type { Cluster, Region, TierCatalog, Version } from '../api/types';
import { Field, FieldSet } from '../ui/field';
import { DAYS, pinChoices } from '../ui/format';

/** What the wizard collects; numbers stay text until sent, so the server's message says what is wrong with them. */
export interface Draft {
  subscriptionId: string;
  resourceGroup: string;
  region: string;
  name: string;
  datacenter: string;
  consulVersion: string;
  tier: string;
  publicEndpoint: boolean;
  /** The public endpoint's sources (sent with the endpoint on) and the confirmation an any-address entry needs. */
  ipAllowlist: AllowlistEntry[];
  allowAnyAddress: boolean;
  upgradeMode: 'manual' | 'automatic';
  windowDay: string;
  windowStartHour: string;
  windowHours: string;
  upgradePin: UpgradePin;
  deletionProtection: boolean;
  snapshotIntervalHours: string;
  snapshotRetention: string;
  /** A primary's federation token: the new cluster joins that federation as a secondary. */
  federationToken: string;
}

export const INITIAL_DRAFT: Draft = {
  subscriptionId: '', resourceGroup: '', region: 'westeurope', name: '', datacenter: '', consulVersion: '', tier: 'development', publicEndpoint: false, ipAllowlist: [], allowAnyAddress: false,
  upgradeMode: 'manual', windowDay: '0', windowStartHour: '2', windowHours: '4', upgradePin: 'none', deletionProtection: false,
  snapshotIntervalHours: '24', snapshotRetention: '30', federationToken: '',
};

/** The fields the server may name in `details.field`, and the steps they are on. */
export const FIELDS = {
  subscriptionId: 'basics', resourceGroup: 'basics', region: 'basics',
  name: 'consul', datacenter: 'consul', consulVersion: 'consul', tier: 'consul', publicEndpoint: 'consul', ipAllowlist: 'consul', federationToken: 'consul',
  'upgradePolicy.mode': 'operations', 'upgradePolicy.window': 'operations', 'upgradePolicy.pin': 'operations',
  'snapshotPolicy.intervalHours': 'operations', 'snapshotPolicy.retention': 'operations', deletionProtection: 'operations',
} as const;
export type FieldName = keyof typeof FIELDS;

/** The wizard's field for a path the server named (`upgradePolicy.window.hours` is on the window's field). */
export function fieldFor(serverField: string | undefined): FieldName | undefined {
  if (!serverField) return undefined;
  if (serverField in FIELDS) return serverField as FieldName;
  if (serverField.startsWith('ipAllowlist') || serverField === 'allowAnyAddress') return 'ipAllowlist';
  if (serverField.startsWith('upgradePolicy.window')) return 'upgradePolicy.window';
  if (serverField === 'upgradePolicy') return 'upgradePolicy.mode';
  if (serverField === 'snapshotPolicy') return 'snapshotPolicy.intervalHours';
  return undefined;
}

/** The request body of POST /v1/clusters, as the wizard checks it (createClusterBody, the API's own schema) and sends it. */
export function createBody(d: Draft, recommendedVersion: string | undefined): Record<string, unknown> {
  const num = (s: string) => (s.trim() === '' ? null : Number(s));
  return {
    name: d.name.trim(),
    subscriptionId: d.subscriptionId.trim(),
    resourceGroup: d.resourceGroup.trim(),
    region: d.region,
    tier: d.tier,
    ...(d.datacenter.trim() ? { datacenter: d.datacenter.trim() } : {}),
    ...((d.consulVersion || recommendedVersion) ? { consulVersion: d.consulVersion || recommendedVersion } : {}),
    publicEndpoint: d.publicEndpoint,
    ...(d.publicEndpoint ? { ipAllowlist: allowlistBody(d.ipAllowlist), ...(d.allowAnyAddress ? { allowAnyAddress: true } : {}) } : {}),
    deletionProtection: d.deletionProtection,
    upgradePolicy: {
      mode: d.upgradeMode,
      window: d.upgradeMode === 'automatic' ? { dayOfWeek: num(d.windowDay), startHourUtc: num(d.windowStartHour), hours: num(d.windowHours) } : null,
      pin: d.upgradePin,
    },
    snapshotPolicy: { intervalHours: num(d.snapshotIntervalHours), retention: num(d.snapshotRetention) },
    ...(d.federationToken.trim() ? { federationToken: d.federationToken.trim() } : {}),
  };
}

export interface Catalogs {
  regions: Region[];
  versions: Version[];
  tiers: TierCatalog;
  clusters: Cluster[];
}

interface Props {
  name: FieldName;
  draft: Draft;
  set: Dispatch<SetStateAction<Draft>>;
  error?: string;
  catalogs: Catalogs;
}

/** One field of the wizard, the same control on its step and on Review (where a rejected one is fixed). */
export function WizardField({ name, draft, set, error, catalogs }: Props) {
  const text = (key: keyof Draft) => ({
    value: String(draft[key]),
    onChange: (e: { target: { value: string } }) => set((d) => ({ ...d, [key]: e.target.value })),
  });
  const toggle = (key: 'publicEndpoint' | 'deletionProtection', legend: string, hint: string, label: string) => (
    <FieldSet legend={legend} hint={hint} error={error}>
      <label className="checkbox">
        <input type="checkbox" checked={draft[key]} onChange={(e) => set((d) => ({ ...d, [key]: e.target.checked }))} />
        {label}
      </label>
    </FieldSet>
  );
  switch (name) {
    case 'subscriptionId': {
      const known = [...new Set(catalogs.clusters.map((c) => c.subscriptionId))];
      return (
        <Field label="Subscription" hint="The Azure subscription (its GUID) billed for the cluster." error={error}>
          {(ids) => (
            <>
              <input {...ids} {...text('subscriptionId')} required autoComplete="off" spellCheck={false} list="known-subscriptions" placeholder="00000000-0000-0000-0000-000000000000" />
              <datalist id="known-subscriptions">{known.map((s) => <option key={s} value={s} />)}</datalist>
            </>
          )}
        </Field>
      );
    }
    case 'resourceGroup':
      return (
        <Field label="Resource group" hint="Your resource group for the cluster's managed application; the servers go in a managed resource group only we change." error={error}>
          {(ids) => <input {...ids} {...text('resourceGroup')} required autoComplete="off" spellCheck={false} />}
        </Field>
      );
    case 'region': {
      const byGeo = new Map<string, Region[]>();
      for (const r of catalogs.regions) byGeo.set(r.geography, [...(byGeo.get(r.geography) ?? []), r]);
      return (
        <Field label="Region" hint={`${catalogs.regions.length} public Azure regions.`} error={error}>
          {(ids) => (
            <select {...ids} {...text('region')} required>
              {[...byGeo].map(([geo, rs]) => (
                <optgroup key={geo} label={geo}>
                  {rs.map((r) => <option key={r.name} value={r.name}>{r.displayName} ({r.name})</option>)}
                </optgroup>
              ))}
            </select>
          )}
        </Field>
      );
    }
    case 'name':
      return (
        <Field label="Cluster name" hint="Lowercase letters, digits and hyphens, starting with a letter; unique in its resource group." error={error}>
          {(ids) => <input {...ids} {...text('name')} required autoComplete="off" spellCheck={false} />}
        </Field>
      );
    case 'datacenter':
      return (
        <Field label="Datacenter" hint="Consul's datacenter name; empty means the same as the cluster name." error={error}>
          {(ids) => <input {...ids} {...text('datacenter')} autoComplete="off" spellCheck={false} placeholder={draft.name || 'same as the cluster name'} />}
        </Field>
      );
    case 'consulVersion': {
      const recommended = catalogs.versions.find((v) => v.status === 'RECOMMENDED')?.version ?? '';
      const value = draft.consulVersion || recommended;
      const status = catalogs.versions.find((v) => v.version === value)?.status;
      return (
        <Field label="Consul version" hint={status ? `Status of ${value}: ${status}` : undefined} error={error}>
          {(ids) => (
            <select {...ids} value={value} onChange={(e) => set((d) => ({ ...d, consulVersion: e.target.value }))}>
              {catalogs.versions.map((v) => <option key={v.version} value={v.version}>{v.version} — {v.status}</option>)}
            </select>
          )}
        </Field>
      );
    }
    case 'tier':
      return (
        <FieldSet legend="Tier" hint="Billed per hour, by the minute, on your Azure invoice. You can scale later." error={error}>
          <div className="choice-grid">
            {catalogs.tiers.tiers.map((t) => (
              <label key={t.name} className={`choice${draft.tier === t.name ? ' choice-selected' : ''}`}>
                <input type="radio" name="tier" value={t.name} checked={draft.tier === t.name} onChange={() => set((d) => ({ ...d, tier: t.name }))} />
                <span className="choice-title">{t.name}</span>
                <span className="choice-meta">{t.servers} server{t.servers === 1 ? '' : 's'} · {t.billing.currency} {t.billing.pricePerHour} per hour</span>
                <span className="choice-desc">{t.description}</span>
              </label>
            ))}
          </div>
        </FieldSet>
      );
    case 'publicEndpoint':
      return toggle('publicEndpoint', 'External endpoint', "On: the cluster's HTTPS API and UI also answer on a public address of their own, to the allowed sources only (TLS, ACL token required; no single sign-on there). Off: only through the control plane.",
        'Expose a public endpoint');
    case 'ipAllowlist':
      if (!draft.publicEndpoint) return null;
      return (
        <AllowlistEditor entries={draft.ipAllowlist} onChange={(ipAllowlist) => set((d) => ({ ...d, ipAllowlist }))} error={error}
          allowAnyAddress={draft.allowAnyAddress} onAllowAnyAddress={(allowAnyAddress) => set((d) => ({ ...d, allowAnyAddress }))} />
      );
    case 'federationToken':
      return (
        <Field
          label="Federation token (optional)"
          hint="To join an existing cluster's federation as a secondary: a token from the primary's page (Federation, Create federation token). The secondary needs a datacenter name of its own and the primary's Consul version. Empty: a cluster on its own."
          error={error}
        >
          {(ids) => <input {...ids} {...text('federationToken')} autoComplete="off" spellCheck={false} placeholder="mcf1.…" />}
        </Field>
      );
    case 'upgradePolicy.mode':
      return (
        <FieldSet legend="Upgrades" hint="An upgrade restarts every server one at a time, after a snapshot." error={error}>
          <label className="checkbox">
            <input type="radio" name="upgradeMode" value="manual" checked={draft.upgradeMode === 'manual'} onChange={() => set((d) => ({ ...d, upgradeMode: 'manual' }))} />
            Manual: only when I ask
          </label>
          <label className="checkbox">
            <input type="radio" name="upgradeMode" value="automatic" checked={draft.upgradeMode === 'automatic'} onChange={() => set((d) => ({ ...d, upgradeMode: 'automatic' }))} />
            Automatic: to the recommended version, in a weekly maintenance window
          </label>
        </FieldSet>
      );
    case 'upgradePolicy.window':
      if (draft.upgradeMode !== 'automatic') return null;
      return (
        <FieldSet legend="Maintenance window (UTC)" hint="Weekly; it may run past midnight." error={error}>
          <div className="inline-fields">
            <label>Day <select value={draft.windowDay} onChange={(e) => set((d) => ({ ...d, windowDay: e.target.value }))}>{DAYS.map((day, i) => <option key={day} value={i}>{day}</option>)}</select></label>
            <label>Starts at (hour) <input type="number" inputMode="numeric" className="narrow" {...text('windowStartHour')} /></label>
            <label>Lasts (hours) <input type="number" inputMode="numeric" className="narrow" {...text('windowHours')} /></label>
          </div>
        </FieldSet>
      );
    case 'upgradePolicy.pin': {
      const version = draft.consulVersion || catalogs.versions.find((v) => v.status === 'RECOMMENDED')?.version;
      return (
        <FieldSet legend="Version pin" hint="How far automatic upgrades and maintenance waves may move the cluster from its version; a version outside the pin is skipped. Upgrades you ask for are not held by it." error={error}>
          {pinChoices(version).map((p) => (
            <label key={p.value} className="checkbox">
              <input type="radio" name="upgradePin" value={p.value} checked={draft.upgradePin === p.value} onChange={() => set((d) => ({ ...d, upgradePin: p.value }))} />
              {p.label}
            </label>
          ))}
        </FieldSet>
      );
    }
    case 'deletionProtection':
      return toggle('deletionProtection', 'Deletion protection', "On: a delete is refused until you turn protection off in the cluster's settings.", 'Protect the cluster from deletion');
    case 'snapshotPolicy.intervalHours':
      return (
        <Field label="Snapshot interval (hours)" hint="How often a scheduled snapshot is taken: 1 to 24 hours." error={error}>
          {(ids) => <input {...ids} type="number" inputMode="numeric" className="narrow" {...text('snapshotIntervalHours')} required />}
        </Field>
      );
    case 'snapshotPolicy.retention':
      return (
        <Field label="Snapshots kept" hint="How many scheduled snapshots are kept: 1 to 365. Manual ones stay until you delete them." error={error}>
          {(ids) => <input {...ids} type="number" inputMode="numeric" className="narrow" {...text('snapshotRetention')} required />}
        </Field>
      );
  }
}
