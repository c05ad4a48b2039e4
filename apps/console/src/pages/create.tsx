import { useQueryClient } from '@tanstack/react-query';
import { useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { createClusterBody } from '../../../../libs/contracts/src';
import { ApiError } from '../api/client';
import { clusterApi, keys, useClusters, useRegions, useTiers, useVersions } from '../api/queries';
import { formatPin, formatWindow } from '../ui/format';
import { pageTitle, useSignedIn } from '../ui/session';
import { ActionError, EmptyState, ErrorState, Loading } from '../ui/states';
import { allowlistBody } from '../cluster/allowlist-editor';
import { describeAllowlist } from '../ui/format';
import { FIELDS, INITIAL_DRAFT, WizardField, createBody, fieldFor, type Catalogs, type Draft, type FieldName } from './create-fields';

const STEPS = [
  { id: 'basics', label: 'Basics' },
  { id: 'consul', label: 'Consul settings' },
  { id: 'operations', label: 'Operations' },
  { id: 'review', label: 'Review + create' },
] as const;
type StepId = (typeof STEPS)[number]['id'];
const stepFields = (step: StepId) => (Object.keys(FIELDS) as FieldName[]).filter((f) => FIELDS[f] === step);

/** The portal blade's create wizard: Basics → Consul settings → Operations → Review + create. */
export function CreateWizard() {
  const { canWrite } = useSignedIn();
  const regions = useRegions();
  const versions = useVersions();
  const tiers = useTiers();
  const clusters = useClusters();
  const queries = [regions, versions, tiers, clusters];
  const failed = queries.find((q) => q.isError);
  return (
    <>
      <title>{pageTitle('Create a cluster')}</title>
      <p className="breadcrumb"><Link to="/clusters">Clusters</Link> / Create</p>
      <h1>Create a Consul cluster</h1>
      {!canWrite ? (
        <EmptyState title="Your role cannot create clusters.">
          <p>Creating a cluster needs the Clusters.ReadWrite role; yours is read-only. Ask an administrator of your tenant.</p>
        </EmptyState>
      ) : failed ? <ErrorState error={failed.error} what="the catalog of regions, versions and tiers" onRetry={() => queries.forEach((q) => void q.refetch())} />
        : regions.data && versions.data && tiers.data && clusters.data ? <Wizard catalogs={{ regions: regions.data, versions: versions.data, tiers: tiers.data, clusters: clusters.data }} />
          : <Loading what="the catalog of regions, versions and tiers" />}
    </>
  );
}

function Wizard({ catalogs }: { catalogs: Catalogs }) {
  const [step, setStep] = useState<StepId>('basics');
  const [draft, setDraft] = useState<Draft>(INITIAL_DRAFT);
  const [errors, setErrors] = useState<Partial<Record<FieldName, string>>>({});
  const [general, setGeneral] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  // One Idempotency-Key per request body: resending the same body (a lost answer) can never create twice.
  const attempt = useRef<{ body: string; key: string } | null>(null);
  const navigate = useNavigate();
  const qc = useQueryClient();
  const recommended = catalogs.versions.find((v) => v.status === 'RECOMMENDED')?.version;
  const index = STEPS.findIndex((s) => s.id === step);
  // The API's own rules for the body (libs/contracts), with the catalog this page loaded.
  const schema = useMemo(() => createClusterBody({
    regions: catalogs.regions.map((r) => r.name), tiers: catalogs.tiers.tiers.map((t) => t.name), versions: catalogs.versions,
  }), [catalogs]);

  /** What the API would refuse in these fields, by field (its own messages). */
  const problems = (fields: readonly FieldName[]): Partial<Record<FieldName, string>> => {
    const r = schema.safeParse(createBody(draft, recommended));
    const found: Partial<Record<FieldName, string>> = {};
    if (r.success) return found;
    for (const issue of r.error.issues) {
      const f = fieldFor(issue.path.map(String).join('.'));
      if (f && fields.includes(f) && !found[f]) found[f] = issue.message;
    }
    return found;
  };

  const go = (to: StepId) => {
    // Forward only from a step whose fields the API would take; a name already taken is the server's to say.
    if (STEPS.findIndex((s) => s.id === to) > index) {
      if (!form.current?.reportValidity()) return;
      const found = problems(stepFields(step));
      setErrors(found);
      if (Object.keys(found).length) return;
    }
    setStep(to);
    setGeneral(null);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (step !== 'review') {
      go(STEPS[index + 1].id);
      return;
    }
    const found = problems(Object.keys(FIELDS) as FieldName[]);
    if (Object.keys(found).length) {
      setErrors(found);
      return;
    }
    const body = createBody(draft, recommended);
    const json = JSON.stringify(body);
    if (attempt.current?.body !== json) attempt.current = { body: json, key: crypto.randomUUID() };
    setSubmitting(true);
    setGeneral(null);
    try {
      const answer = await clusterApi.create(body, attempt.current.key);
      await qc.invalidateQueries({ queryKey: keys.clusters });
      navigate(`/deployments/${answer.operation.id}`);
    } catch (err) {
      const field = err instanceof ApiError ? fieldFor(err.field) : undefined;
      if (field && err instanceof ApiError) {
        setErrors({ [field]: err.message });
      } else {
        setErrors({});
        setGeneral(err);
      }
    } finally {
      setSubmitting(false);
    }
  };

  const fieldProps = (name: FieldName) => ({
    name,
    draft,
    catalogs,
    error: errors[name],
    set: ((next) => {
      setDraft(next);
      // Editing a rejected field takes its error away; the server judges it again on Create.
      setErrors((es) => (es[name] ? { ...es, [name]: undefined } : es));
    }) as typeof setDraft,
  });

  return (
    <div className="wizard">
      <nav aria-label="Steps">
        <ol className="steps">
          {STEPS.map((s, i) => (
            <li key={s.id}>
              <button type="button" className="step-link" aria-current={s.id === step ? 'step' : undefined} onClick={() => go(s.id)}>
                <span className="step-number" aria-hidden="true">{i + 1}</span> {s.label}
                {stepFields(s.id).some((f) => errors[f]) ? <span className="visually-hidden"> (has an error)</span> : null}
              </button>
            </li>
          ))}
        </ol>
      </nav>
      <form ref={form} onSubmit={(e) => void submit(e)} noValidate={step === 'review'} aria-labelledby="wizard-step-title">
        <h2 id="wizard-step-title">{STEPS[index].label}</h2>
        {step === 'review' ? (
          <Review draft={draft} catalogs={catalogs} errors={errors} fieldProps={fieldProps} onEdit={(s) => setStep(s)} recommended={recommended} />
        ) : (
          stepFields(step).map((f) => <WizardField key={f} {...fieldProps(f)} />)
        )}
        <ActionError error={general} />
        <div className="actions wizard-actions">
          {index > 0 ? <button type="button" className="button" onClick={() => go(STEPS[index - 1].id)}>Previous</button> : null}
          {step === 'review' ? (
            <button type="submit" className="button button-primary" disabled={submitting}>{submitting ? 'Creating…' : 'Create'}</button>
          ) : (
            <button type="submit" className="button button-primary">Next: {STEPS[index + 1].label}</button>
          )}
          <Link to="/clusters" className="button button-quiet">Cancel</Link>
        </div>
      </form>
    </div>
  );
}

interface ReviewProps {
  draft: Draft;
  catalogs: Catalogs;
  errors: Partial<Record<FieldName, string>>;
  fieldProps: (name: FieldName) => Parameters<typeof WizardField>[0];
  onEdit: (step: StepId) => void;
  recommended: string | undefined;
}

/** Everything chosen, per step; a field the server rejected is editable right here, its message beside it. */
function Review({ draft, catalogs, errors, fieldProps, onEdit, recommended }: ReviewProps) {
  const tier = catalogs.tiers.tiers.find((t) => t.name === draft.tier);
  const region = catalogs.regions.find((r) => r.name === draft.region);
  const values: Record<FieldName, string> = {
    subscriptionId: draft.subscriptionId,
    resourceGroup: draft.resourceGroup,
    region: region ? `${region.displayName} (${region.name})` : draft.region,
    name: draft.name,
    datacenter: draft.datacenter || `${draft.name} (same as the name)`,
    consulVersion: draft.consulVersion || `${recommended ?? ''} (recommended)`,
    tier: tier ? `${tier.name}: ${tier.servers} server${tier.servers === 1 ? '' : 's'}, ${tier.billing.currency} ${tier.billing.pricePerHour} per hour` : draft.tier,
    publicEndpoint: draft.publicEndpoint ? 'On' : 'Off',
    ipAllowlist: draft.publicEndpoint ? describeAllowlist(allowlistBody(draft.ipAllowlist)) : 'No public endpoint',
    // The token is not shown again: it is a single-use secret of the primary.
    federationToken: draft.federationToken.trim() ? 'Given: joins its primary’s federation as a secondary' : 'None: a cluster on its own',
    'upgradePolicy.mode': draft.upgradeMode === 'automatic' ? 'Automatic' : 'Manual',
    'upgradePolicy.window': draft.upgradeMode === 'automatic'
      ? formatWindow({ dayOfWeek: Number(draft.windowDay), startHourUtc: Number(draft.windowStartHour), hours: Number(draft.windowHours) }) : 'none',
    'upgradePolicy.pin': formatPin(draft.upgradePin, draft.consulVersion || recommended || ''),
    deletionProtection: draft.deletionProtection ? 'On' : 'Off',
    'snapshotPolicy.intervalHours': `every ${draft.snapshotIntervalHours} h`,
    'snapshotPolicy.retention': `${draft.snapshotRetention} kept`,
  };
  const labels: Record<FieldName, string> = {
    subscriptionId: 'Subscription', resourceGroup: 'Resource group', region: 'Region', name: 'Cluster name', datacenter: 'Datacenter',
    consulVersion: 'Consul version', tier: 'Tier', publicEndpoint: 'External endpoint', ipAllowlist: 'Allowed sources', federationToken: 'Federation', 'upgradePolicy.mode': 'Upgrades',
    'upgradePolicy.window': 'Maintenance window', 'upgradePolicy.pin': 'Version pin', 'snapshotPolicy.intervalHours': 'Snapshot interval', 'snapshotPolicy.retention': 'Snapshots kept',
    deletionProtection: 'Deletion protection',
  };
  const count = Object.values(errors).filter(Boolean).length;
  return (
    <>
      {count ? <p className="review-alert" role="alert">{count === 1 ? 'A value was' : `${count} values were`} refused: fix {count === 1 ? 'it' : 'them'} below, then Create again.</p>
        : <p>Check your choices. The control plane validates them when you press Create.</p>}
      {STEPS.filter((s) => s.id !== 'review').map((s) => (
        <section key={s.id} className="review-section" aria-labelledby={`review-${s.id}`}>
          <div className="review-head">
            <h3 id={`review-${s.id}`}>{s.label}</h3>
            <button type="button" className="button button-quiet" onClick={() => onEdit(s.id)}>Edit {s.label}</button>
          </div>
          <dl className="review-list">
            {stepFields(s.id).map((f) => (errors[f] ? (
              <div key={f} className="review-row review-row-invalid"><dt className="visually-hidden">{labels[f]}</dt><dd><WizardField {...fieldProps(f)} /></dd></div>
            ) : (
              <div key={f} className="review-row"><dt>{labels[f]}</dt><dd>{values[f] || <span className="muted">not set</span>}</dd></div>
            )))}
          </dl>
        </section>
      ))}
    </>
  );
}
