import { CONSUL_SERVER_PORTS } from '../local/server-config';
import { ConsulHttpClient, describeBody, isAclNotFound, type ConsulResponse, type ServerHttps } from './consul-http';

/**
 * The Consul ACL tokens of people signed in to a cluster's UI through the console, made and
 * deleted through the cluster's HTTPS API (verified against the cluster's CA) with the
 * management token, which never leaves the control plane. Each token has one of two policies,
 * made once per cluster, and an ExpirationTTL, so Consul itself deletes it when it is due even
 * if the control plane never gets to it.
 */

export type UiAccess = 'read' | 'write';

/** How to reach one cluster's Consul API as its operator. */
export interface ClusterApi {
  clusterId: string;
  /** The servers' HTTPS APIs (8501 of each address, or its via), tried in turn. */
  servers: readonly ServerHttps[];
  /** The CA bundle the servers' certificates chain to. */
  caPem: string;
  managementToken: string;
}

export const UI_POLICY_NAMES: Readonly<Record<UiAccess, string>> = {
  read: 'managed-consul-ui-read',
  write: 'managed-consul-ui-write',
};

/**
 * Clusters.Read: read everything the UI shows. Clusters.ReadWrite: operator-level writes on KV,
 * services (with intentions), nodes, sessions, queries and events. Neither may touch ACLs, the
 * keyring, raft or the agents' configuration (`operator` and `agent` stay read): what changes the
 * cluster itself goes through the control plane's operations.
 */
export const UI_POLICY_RULES: Readonly<Record<UiAccess, string>> = {
  read: [
    'key_prefix "" { policy = "read" }',
    'service_prefix "" { policy = "read" intentions = "read" }',
    'node_prefix "" { policy = "read" }',
    'agent_prefix "" { policy = "read" }',
    'session_prefix "" { policy = "read" }',
    'query_prefix "" { policy = "read" }',
    'event_prefix "" { policy = "read" }',
    'operator = "read"',
  ].join('\n'),
  write: [
    'key_prefix "" { policy = "write" }',
    'service_prefix "" { policy = "write" intentions = "write" }',
    'node_prefix "" { policy = "write" }',
    'agent_prefix "" { policy = "read" }',
    'session_prefix "" { policy = "write" }',
    'query_prefix "" { policy = "write" }',
    'event_prefix "" { policy = "write" }',
    'operator = "read"',
  ].join('\n'),
};

export interface NewUiToken {
  accessorId: string;
  secretId: string;
  description: string;
  access: UiAccess;
  /** Whole seconds; Consul accepts 1 min to 24 h. */
  ttlSeconds: number;
}

const TIMEOUT_MS = 5_000;

export class ConsulUiTokens {
  private readonly clients = new Map<string, { caPem: string; client: ConsulHttpClient }>();
  /** Clusters whose policies this process has seen in place (made again if a restore lost them). */
  private readonly policiesReady = new Set<string>();

  /** Creates the user's token with exactly these ids (a retry finds it instead of making a second). */
  async create(api: ClusterApi, t: NewUiToken): Promise<void> {
    if (!Number.isInteger(t.ttlSeconds) || t.ttlSeconds < 60 || t.ttlSeconds > 24 * 3600) throw new Error('a UI token lives 1 min to 24 h');
    if (!this.policiesReady.has(api.clusterId)) await this.ensurePolicies(api);
    const body = {
      AccessorID: t.accessorId,
      SecretID: t.secretId,
      Description: t.description,
      Policies: [{ Name: UI_POLICY_NAMES[t.access] }],
      ExpirationTTL: `${t.ttlSeconds}s`,
      Local: false,
    };
    let res = await this.call(api, 'PUT', '/v1/acl/token', body);
    if (res.status !== 200 && /policy/i.test(describeBody(res.body))) {
      // The policies went (a restore of an older snapshot): make them again, once.
      this.policiesReady.delete(api.clusterId);
      await this.ensurePolicies(api);
      res = await this.call(api, 'PUT', '/v1/acl/token', body);
    }
    if (res.status === 200) return;
    const existing = await this.call(api, 'GET', `/v1/acl/token/${encodeURIComponent(t.accessorId)}`);
    if (existing.status === 200) return; // an earlier attempt with the same ids got there
    throw new Error(`creating a UI token on cluster ${api.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
  }

  /** Deletes the token with this AccessorID; 'absent' when the cluster has none (expired, or deleted before). */
  async delete(api: ClusterApi, accessorId: string): Promise<'deleted' | 'absent'> {
    const res = await this.call(api, 'DELETE', `/v1/acl/token/${encodeURIComponent(accessorId)}`);
    if (res.status === 200) return res.body === false ? 'absent' : 'deleted';
    if (isAclNotFound(res)) return 'absent';
    throw new Error(`deleting UI token ${accessorId} on cluster ${api.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
  }

  /**
   * Deletes every token of either UI policy in the cluster, whatever made it (a restore brings
   * back the tokens of the snapshot's time, revoked ones too). Returns their AccessorIDs.
   */
  async deleteAll(api: ClusterApi): Promise<string[]> {
    const deleted: string[] = [];
    for (const name of Object.values(UI_POLICY_NAMES)) {
      const policy = await this.call(api, 'GET', `/v1/acl/policy/name/${name}`);
      if (isAclNotFound(policy)) continue;
      const id = (policy.body as { ID?: unknown } | undefined)?.ID;
      if (policy.status !== 200 || typeof id !== 'string') throw new Error(`reading policy ${name} on cluster ${api.clusterId} answered HTTP ${policy.status} ${describeBody(policy.body)}`);
      const list = await this.call(api, 'GET', `/v1/acl/tokens?policy=${encodeURIComponent(id)}`);
      if (list.status !== 200 || !Array.isArray(list.body)) throw new Error(`listing the UI tokens of cluster ${api.clusterId} answered HTTP ${list.status}`);
      for (const t of list.body as { AccessorID?: unknown }[]) {
        if (typeof t.AccessorID === 'string' && (await this.delete(api, t.AccessorID)) === 'deleted') deleted.push(t.AccessorID);
      }
    }
    return deleted;
  }

  /** Waits until `server` resolves the new token (it was made through the leader), at most `timeoutMs`. */
  async waitUntilResolved(api: ClusterApi, server: ServerHttps, secretId: string, timeoutMs = 3_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await this.client(api).request({ ...server, port: CONSUL_SERVER_PORTS.https, method: 'GET', path: '/v1/acl/token/self', token: secretId, timeoutMs: TIMEOUT_MS });
      if (res.status === 200) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private async ensurePolicies(api: ClusterApi): Promise<void> {
    for (const access of ['read', 'write'] as const) {
      const name = UI_POLICY_NAMES[access];
      const rules = UI_POLICY_RULES[access];
      const found = await this.call(api, 'GET', `/v1/acl/policy/name/${name}`);
      if (found.status === 200) {
        const p = found.body as { ID?: string; Rules?: string };
        if (p.Rules !== rules && p.ID) {
          const upd = await this.call(api, 'PUT', `/v1/acl/policy/${p.ID}`, { ID: p.ID, Name: name, Rules: rules, Description: policyDescription(access) });
          if (upd.status !== 200) throw new Error(`updating policy ${name} on cluster ${api.clusterId} answered HTTP ${upd.status} ${describeBody(upd.body)}`);
        }
        continue;
      }
      if (!isAclNotFound(found)) throw new Error(`reading policy ${name} on cluster ${api.clusterId} answered HTTP ${found.status} ${describeBody(found.body)}`);
      const made = await this.call(api, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules, Description: policyDescription(access) });
      if (made.status === 200) continue;
      // Made at the same moment by another sign-in: fine if it is there now.
      const again = await this.call(api, 'GET', `/v1/acl/policy/name/${name}`);
      if (again.status !== 200) throw new Error(`creating policy ${name} on cluster ${api.clusterId} answered HTTP ${made.status} ${describeBody(made.body)}`);
    }
    this.policiesReady.add(api.clusterId);
  }

  /** One call with the management token, to the first server that answers. */
  private async call(api: ClusterApi, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<ConsulResponse> {
    const client = this.client(api);
    let last: unknown = new Error(`cluster ${api.clusterId} has no servers`);
    for (const server of api.servers) {
      try {
        return await client.request({ ...server, port: CONSUL_SERVER_PORTS.https, method, path, body, token: api.managementToken, timeoutMs: TIMEOUT_MS });
      } catch (e) {
        last = e; // down or restarting: ask the next
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  private client(api: ClusterApi): ConsulHttpClient {
    const cached = this.clients.get(api.clusterId);
    if (cached && cached.caPem === api.caPem) return cached.client;
    cached?.client.close();
    const client = new ConsulHttpClient(api.caPem);
    this.clients.set(api.clusterId, { caPem: api.caPem, client });
    return client;
  }
}

function policyDescription(access: UiAccess): string {
  return `Consul UI sign-ins through the managed-consul console with Clusters.${access === 'write' ? 'ReadWrite' : 'Read'} (managed by the control plane)`;
}
