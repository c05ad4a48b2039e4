import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { CONSUL_TOKEN_HEADER, K8S_AUTH_METHOD_HOST_RULE, KUBERNETES_QUERY } from '../../../../libs/contracts/src';
import { call, get, type ApiError } from '../api/client';
import { clusterApi, useClusterChange } from '../api/queries';
import type { Cluster, CreatedToken, KubernetesConfig } from '../api/types';
import { Dialog } from '../ui/dialog';
import { useSignedIn } from '../ui/session';
import { CopyButton, ShownOnce } from '../ui/shown-once';
import { ActionError, ErrorState, Loading } from '../ui/states';
import { PendingToken } from './access';

/** What the chart's bootstrap token is for, recorded on the token (the tokens list shows it). */
const TOKEN_DESCRIPTION = 'consul helm chart: server-acl-init bootstrap token (console)';

const kubernetesPath = (id: string, host: string) => `/v1/clusters/${encodeURIComponent(id)}/kubernetes${host ? `?k8sAuthMethodHost=${encodeURIComponent(host)}` : ''}`;

/**
 * Kubernetes (AKS) onboarding beside the VM client config: the Consul Helm chart's values.yaml
 * (no secret in it) and the Secret it reads, whose bootstrap token is a management token made
 * for it here and which is shown once, like a token's secret.
 */
export function KubernetesPanel({ cluster: c }: { cluster: Cluster }) {
  const { canWrite } = useSignedIn();
  return (
    <section className="card" aria-labelledby="k8s-title">
      <h2 id="k8s-title">Kubernetes (AKS)</h2>
      <p>
        Consul client agents in your AKS cluster join {c.name}’s servers through HashiCorp’s Consul Helm chart: TLS with auto-encrypt,
        gossip encryption, ACLs the chart sets up with a bootstrap token, and Connect injection. Apply the Secret, then install the chart with these values.
      </p>
      {!canWrite ? <p className="muted">The Helm values and the Secret hold what joins {c.name}’s gossip pool: they are for users with the Clusters.ReadWrite role.</p>
        : c.state !== 'Running' ? <p className="muted">They are available once the cluster is Running (it is {c.state}).</p>
          : <Documents cluster={c} />}
    </section>
  );
}

function Documents({ cluster: c }: { cluster: Cluster }) {
  const [host, setHost] = useState('');
  const [draft, setDraft] = useState('');
  const hostId = useId();
  const hostHint = useId();
  // The contract's own rule, before anything is sent.
  const hostProblem = draft.trim() && !KUBERNETES_QUERY.safeParse({ k8sAuthMethodHost: draft.trim() }).success ? `Enter ${K8S_AUTH_METHOD_HOST_RULE}.` : null;
  const values = useQuery<KubernetesConfig, ApiError>({
    queryKey: ['cluster', c.id, 'kubernetes', host],
    queryFn: () => get<KubernetesConfig>(kubernetesPath(c.id, host)),
  });
  return (
    <>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!hostProblem) setHost(draft.trim());
        }}
      >
        <div className="field">
          <label htmlFor={hostId}>Kubernetes API server (optional)</label>
          <input id={hostId} value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="https://…azmk8s.io:443" aria-describedby={hostHint} aria-invalid={hostProblem ? true : undefined} />
          <p id={hostHint} className="muted small">{hostProblem ?? 'Reachable from the Consul servers: Connect’s auth method checks pods’ service account tokens there (externalServers.k8sAuthMethodHost).'}</p>
        </div>
        <button type="submit" className="button" disabled={hostProblem !== null}>Update the values</button>
      </form>
      {values.isPending ? <Loading what="the Helm values" />
        : values.isError ? <ErrorState error={values.error} what="the Helm values" onRetry={() => void values.refetch()} />
          : (
            <>
              <h3>Helm values (values.yaml)</h3>
              <p className="muted small">For {values.data.chart.name} {values.data.chart.version}, the chart release for Consul 1.8; it names the Secret {values.data.secretName}.</p>
              <pre className="document" role="region" tabIndex={0} aria-label="Helm values (values.yaml)"><code>{values.data.helmValues}</code></pre>
              <div className="actions"><CopyButton text={values.data.helmValues} label="Copy values.yaml" /></div>
              <h3>Secret (secret.yaml)</h3>
              <p className="muted small">The CA, the gossip key and a bootstrap token: a management token made for the chart’s server-acl-init job, which creates the ACL policies and tokens of the agents and of Connect with it.</p>
              <SecretButton cluster={c} />
              <h3>Install</h3>
              <ol className="steps-list">{values.data.steps.map((s) => <li key={s}><code>{s}</code></li>)}</ol>
            </>
          )}
    </>
  );
}

function SecretButton({ cluster: c }: { cluster: Cluster }) {
  const [open, setOpen] = useState(false);
  const [pending, setPending] = useState<string | null>(null);
  /** The Secret's YAML holds the gossip key and the token: kept only while the dialog is open. */
  const [secret, setSecret] = useState<string | null>(null);
  const fetchSecret = useClusterChange(c.id, async (t: CreatedToken) => {
    const res = await call<KubernetesConfig>('GET', kubernetesPath(c.id, ''), undefined, { [CONSUL_TOKEN_HEADER]: t.secretId });
    return res.body.secret ?? '';
  }, { secret: true });
  const create = useClusterChange(c.id, () => clusterApi.createToken(c.id, TOKEN_DESCRIPTION), { secret: true });
  const withToken = (t: CreatedToken) => fetchSecret.mutate(t, { onSuccess: setSecret });
  const close = () => {
    setOpen(false);
    setSecret(null);
    setPending(null);
    create.reset();
    fetchSecret.reset();
  };
  return (
    <>
      <div className="actions"><button type="button" className="button" onClick={() => setOpen(true)}>Create the Secret…</button></div>
      <Dialog title="Create the Kubernetes Secret" open={open} onClose={close}>
        {secret ? (
          <ShownOnce notice="Copy the Secret now: it holds the gossip key and a management token, and is shown once. Keep it out of source control." secret={secret} copyLabel="Copy secret.yaml" onDone={close}>
            <pre className="document" role="region" tabIndex={0} aria-label="The Secret (secret.yaml)"><code>{secret}</code></pre>
            <p className="muted small">Apply it with <code>kubectl apply -f secret.yaml</code> in the namespace you install the chart in. The token is listed among the cluster’s tokens: once the install has completed you may revoke it (a later helm upgrade needs a new one).</p>
          </ShownOnce>
        ) : pending ? (
          <PendingToken operationId={pending} onCollected={withToken} onCancel={close} />
        ) : (
          <>
            <p>This makes a management token on {c.name} for the chart’s server-acl-init job (recorded in the cluster’s audit log as “{TOKEN_DESCRIPTION}”), then shows the Secret holding it, the CA and the gossip key.</p>
            <ActionError error={create.error ?? fetchSecret.error} />
            <div className="actions">
              <button
                type="button"
                className="button button-primary"
                disabled={create.isPending || fetchSecret.isPending}
                onClick={() => create.mutate(undefined, { onSuccess: (r) => ('collect' in r ? setPending(r.operation.id) : withToken(r)) })}
              >
                {create.isPending || fetchSecret.isPending ? 'Creating…' : 'Create token and Secret'}
              </button>
              <button type="button" className="button" onClick={close}>Cancel</button>
            </div>
          </>
        )}
      </Dialog>
    </>
  );
}
