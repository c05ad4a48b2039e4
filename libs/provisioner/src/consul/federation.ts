import type { ConsulApi } from './consul-api';
import { describeBody, isAclNotFound } from './consul-http';

/**
 * WAN federation of Consul 1.8 datacenters without mesh gateways, as the control plane makes
 * and checks it: the ACL objects a secondary needs, made in the primary (the federation's ACL
 * datacenter), and what each side must show before the secondary is Running.
 */

/**
 * The replication token's policy: Consul's documented minimum with ACL token replication and
 * Connect (options `acl.tokens.replication`): acl write to replicate tokens, operator write for
 * the secondary's Connect CA (its intermediate is signed by the primary) and federation state,
 * service and intention read for config entries and intentions.
 */
export const REPLICATION_RULES = [
  'acl = "write"',
  'operator = "write"',
  'service_prefix "" { policy = "read" intentions = "read" }',
].join('\n');

/** The secondary's servers' agent token: their own node registrations, and reading services (anti-entropy). */
export function serverAgentRules(datacenter: string): string {
  // serverNodeName(datacenter, n) for every n.
  return [`node_prefix "${datacenter}-server-" { policy = "write" }`, 'service_prefix "" { policy = "read" }'].join('\n');
}

/** A token made in the primary for a secondary, with ids chosen (and sealed) before: a retry makes the same one. */
export interface FederationAclToken {
  accessorId: string;
  secretId: string;
  description: string;
  /** A policy of its own (made with the token), or Consul's built-in global-management. */
  policy: { name: string; rules: string } | 'global-management';
}

/** The names of the ACL objects of a secondary's datacenter (policies are global: one per secondary). */
export const federationPolicyName = (datacenter: string, what: 'replication' | 'server-agents') => `federation-${datacenter}-${what}`;

/** Makes the policy (if missing) and the token (if missing), in the primary. Idempotent. */
export async function ensureFederationToken(primary: ConsulApi, t: FederationAclToken): Promise<void> {
  if (t.policy !== 'global-management') await ensurePolicy(primary, t.policy.name, t.policy.rules);
  const existing = await primary.request({ method: 'GET', path: `/v1/acl/token/${t.accessorId}` });
  if (existing.status === 200) return;
  if (!isAclNotFound(existing)) throw new Error(`reading token ${t.accessorId} in the primary answered HTTP ${existing.status} ${describeBody(existing.body)}`);
  const res = await primary.request({
    method: 'PUT', path: '/v1/acl/token',
    body: { AccessorID: t.accessorId, SecretID: t.secretId, Description: t.description, Policies: [{ Name: t.policy === 'global-management' ? 'global-management' : t.policy.name }], Local: false },
  });
  if (res.status === 200) return;
  // An earlier attempt with the same ids may have made it meanwhile.
  const again = await primary.request({ method: 'GET', path: `/v1/acl/token/${t.accessorId}` });
  if (again.status !== 200) throw new Error(`creating token '${t.description}' in the primary answered HTTP ${res.status} ${describeBody(res.body)}`);
}

async function ensurePolicy(primary: ConsulApi, name: string, rules: string): Promise<void> {
  const found = await primary.request({ method: 'GET', path: `/v1/acl/policy/name/${encodeURIComponent(name)}` });
  if (found.status === 200) return;
  if (!isAclNotFound(found)) throw new Error(`reading policy ${name} in the primary answered HTTP ${found.status} ${describeBody(found.body)}`);
  const res = await primary.request({ method: 'PUT', path: '/v1/acl/policy', body: { Name: name, Rules: rules, Description: 'made by the control plane for a federation' } });
  if (res.status === 200) return;
  const again = await primary.request({ method: 'GET', path: `/v1/acl/policy/name/${encodeURIComponent(name)}` });
  if (again.status !== 200) throw new Error(`creating policy ${name} in the primary answered HTTP ${res.status} ${describeBody(res.body)}`);
}

/** Deletes the tokens (by accessor) and the policies (by name) of a secondary, in the primary. Idempotent. */
export async function deleteFederationAcls(primary: ConsulApi, accessorIds: readonly string[], policyNames: readonly string[]): Promise<void> {
  for (const id of accessorIds) {
    const res = await primary.request({ method: 'DELETE', path: `/v1/acl/token/${id}` });
    if (res.status !== 200 && !isAclNotFound(res)) throw new Error(`deleting token ${id} in the primary answered HTTP ${res.status} ${describeBody(res.body)}`);
  }
  for (const name of policyNames) {
    const found = await primary.request({ method: 'GET', path: `/v1/acl/policy/name/${encodeURIComponent(name)}` });
    if (isAclNotFound(found)) continue;
    const id = (found.body as { ID?: string } | undefined)?.ID;
    if (found.status !== 200 || !id) throw new Error(`reading policy ${name} in the primary answered HTTP ${found.status} ${describeBody(found.body)}`);
    const res = await primary.request({ method: 'DELETE', path: `/v1/acl/policy/${id}` });
    if (res.status !== 200 && !isAclNotFound(res)) throw new Error(`deleting policy ${name} in the primary answered HTTP ${res.status} ${describeBody(res.body)}`);
  }
}

export interface WanMember {
  name: string;
  datacenter: string;
  /** Serf's status: alive, leaving, left, failed. */
  status: 'alive' | 'leaving' | 'left' | 'failed' | 'none';
}

const SERF_STATUS = ['none', 'alive', 'leaving', 'left', 'failed'] as const;

/** The WAN pool as one of `api`'s servers sees it (`/v1/agent/members?wan=1`). */
export async function wanMembers(api: ConsulApi): Promise<WanMember[]> {
  const res = await api.request({ method: 'GET', path: '/v1/agent/members?wan=1' });
  if (res.status !== 200 || !Array.isArray(res.body)) throw new Error(`WAN members answered HTTP ${res.status} ${describeBody(res.body)}`);
  return (res.body as { Name: string; Status: number; Tags?: Record<string, string> }[]).map((m) => ({
    name: m.Name, datacenter: m.Tags?.['dc'] ?? m.Name.split('.').pop() ?? '', status: SERF_STATUS[m.Status] ?? 'none',
  }));
}

/** The datacenters `api`'s cluster can route to (`/v1/catalog/datacenters`). */
export async function knownDatacenters(api: ConsulApi): Promise<string[]> {
  const res = await api.request({ method: 'GET', path: '/v1/catalog/datacenters' });
  if (res.status !== 200 || !Array.isArray(res.body)) throw new Error(`catalog/datacenters answered HTTP ${res.status} ${describeBody(res.body)}`);
  return res.body as string[];
}

/** A secondary's ACL replication (`/v1/acl/replication`): running token replication that has replicated. */
export async function aclReplication(secondary: ConsulApi): Promise<{ replicating: boolean; detail: string }> {
  const res = await secondary.request({ method: 'GET', path: '/v1/acl/replication' });
  if (res.status !== 200) return { replicating: false, detail: `HTTP ${res.status} ${describeBody(res.body)}` };
  const b = res.body as { Enabled?: boolean; Running?: boolean; ReplicationType?: string; ReplicatedTokenIndex?: number; LastError?: string };
  const replicating = b.Enabled === true && b.Running === true && b.ReplicationType === 'tokens' && (b.ReplicatedTokenIndex ?? 0) > 0;
  return { replicating, detail: `enabled ${b.Enabled}, running ${b.Running}, type ${b.ReplicationType}, token index ${b.ReplicatedTokenIndex}${b.LastError ? `, last error ${b.LastError}` : ''}` };
}

/** The trust domain of a cluster's Connect CA (`/v1/connect/ca/roots`): one for the whole federation. */
export async function connectTrustDomain(api: ConsulApi): Promise<string | undefined> {
  const res = await api.request({ method: 'GET', path: '/v1/connect/ca/roots' });
  if (res.status !== 200) return undefined;
  return (res.body as { TrustDomain?: string } | undefined)?.TrustDomain || undefined;
}
