import { useState } from 'react';
import { updateClusterBody, type AllowlistEntry } from '../../../../libs/contracts/src';
import { ApiError } from '../api/client';
import { clusterApi, useClusterChange, useOperation } from '../api/queries';
import type { Cluster } from '../api/types';
import { FieldSet } from '../ui/field';
import { OperationProgress } from '../ui/operation-progress';
import { ActionError } from '../ui/states';
import { AllowlistEditor, allowlistBody } from './allowlist-editor';

/** PATCH's own rules (libs/contracts); an endpoint change names no tier, so no catalog is needed. */
const PATCH_BODY = updateClusterBody({ regions: [], tiers: [], versions: [] });

/** Where the public endpoint is, in words: its URL once made. */
export function publicEndpointText(c: Cluster): string {
  if (!c.publicEndpoint) return 'off';
  return c.endpoints.public ? `on: ${c.endpoints.public} (UI: ${c.endpoints.public}/ui/)` : 'on, being made';
}

/**
 * The settings tab's Public endpoint card: on or off and the allowlist, saved with one PATCH
 * (checked first with the API's schema), then the update-endpoint operation's progress and outcome.
 */
export function PublicEndpointCard({ cluster: c }: { cluster: Cluster }) {
  const [on, setOn] = useState(c.publicEndpoint);
  const [entries, setEntries] = useState<AllowlistEntry[]>(c.ipAllowlist);
  const [allowAny, setAllowAny] = useState(false);
  const [problem, setProblem] = useState<string | undefined>();
  const [operationId, setOperationId] = useState<string | null>(null);
  const save = useClusterChange(c.id, (body: unknown) => clusterApi.update(c.id, body));
  const serverField = save.error instanceof ApiError && (save.error.field?.startsWith('ipAllowlist') || save.error.field === 'allowAnyAddress') ? save.error.message : undefined;
  return (
    <section className="card" aria-labelledby="endpoint-title">
      <h2 id="endpoint-title">Public endpoint</h2>
      <p>Now {publicEndpointText(c)}. It serves the cluster's HTTPS API and Consul UI to the allowed sources only; the UI there asks for an ACL token (no single sign-on).</p>
      <form onSubmit={(e) => {
        e.preventDefault();
        const body = { publicEndpoint: on, ipAllowlist: allowlistBody(entries), ...(allowAny ? { allowAnyAddress: true } : {}) };
        const checked = PATCH_BODY.safeParse(body);
        setProblem(checked.success ? undefined : checked.error.issues[0]?.message);
        if (!checked.success) return;
        save.mutate(body, { onSuccess: (a) => setOperationId('operation' in a ? a.operation.id : null) });
      }}>
        <FieldSet legend="Endpoint">
          <label className="checkbox"><input type="checkbox" checked={on} onChange={(e) => setOn(e.target.checked)} /> Serve a public endpoint</label>
        </FieldSet>
        <AllowlistEditor entries={entries} onChange={(next) => { setEntries(next); setProblem(undefined); }} allowAnyAddress={allowAny} onAllowAnyAddress={setAllowAny}
          error={problem ?? serverField} />
        {serverField ? null : <ActionError error={save.error} />}
        <button type="submit" className="button button-primary" disabled={save.isPending}>Save public endpoint</button>
      </form>
      {save.isSuccess && !operationId ? <p role="status" className="muted">Nothing to change.</p> : null}
      {operationId ? <EndpointOperation id={operationId} /> : null}
    </section>
  );
}

function EndpointOperation({ id }: { id: string }) {
  const op = useOperation(id);
  if (!op.data) return null;
  return (
    <div role="status">
      <OperationProgress op={op.data} label="Public endpoint change" />
      {op.data.state === 'Succeeded' ? <p className="muted">Applied.</p> : op.data.state === 'Failed' ? <p className="field-error">Not applied: {op.data.error?.message}</p> : null}
    </div>
  );
}
