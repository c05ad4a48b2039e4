import { X509Certificate, randomBytes, randomUUID } from 'node:crypto';
import { caBundlePem, serverTlsName, type ServerCertificate } from '../pki';
import type { ClusterSecrets, ClusterSpec, ServerSpec } from '../cluster-spec';
import { serverCertificate } from '../server-files';
import { ALLOWED_SERVER_COUNTS, CONSUL_SERVER_PORTS, serverNodeName } from '../local/server-config';
import { ConsulHttpClient, describeBody, isAclNotFound, type ConsulRawRequest, type ConsulRequest, type ConsulResponse } from './consul-http';
import { PollAborted, poll } from './poll';
import { rpcHandshake, servedFingerprint } from './tls-probes';
import type { Endpoint } from '../target';

/**
 * The cluster's Consul API, whatever runs its servers: typed calls over
 * HTTPS (Consul's standard port on each server's address, or the route the
 * target gives to it), verified against the cluster's CA bundle and the
 * server's own address, authorized by the management token. Every wait
 * goes through `poll`.
 */

/** What the API needs to know of the hosts: which servers run, and why one does not. */
export interface ServerLiveness {
  /** Indexes of the cluster's servers that run now. */
  running(clusterId: string): Promise<ReadonlySet<number>>;
  /** Why server `index` is not running, for error messages (e.g. the end of its log). */
  explainDown(clusterId: string, index: number): Promise<string>;
}

export interface ConsulApiOptions {
  /** Without it every server of a spec is taken to be running. */
  liveness?: ServerLiveness;
  /**
   * Where to connect for a server's HTTPS API or RPC port when not at its own address and
   * Consul's port (undefined: there); its certificate is verified against its address either
   * way. A failure counts as the server not answering.
   */
  route?: ServerRoute;
}

export type ServerRoute = (clusterId: string, address: string, port: 'https' | 'rpc') => Promise<Endpoint | undefined>;

export interface WaitForLeaderOptions {
  timeoutMs: number;
  /** Default 100 ms. */
  pollIntervalMs?: number;
}

export interface WaitForHealthyOptions {
  timeoutMs: number;
}

export interface LeaderState {
  /** The leader's RPC address, e.g. `127.64.0.2:8300`. */
  leader: string;
  voters: number;
  elapsedMs: number;
}

export interface CreateTokenOptions {
  description: string;
  /**
   * Pass ids generated (and persisted) before the call to make retries
   * idempotent: if a token with this accessor id exists it is returned.
   * Generated when omitted.
   */
  accessorId?: string;
  secretId?: string;
}

export interface CreatedToken {
  accessorId: string;
  secretId: string;
}

export interface TokenInfo {
  accessorId: string;
  /** Names of the token's policies. */
  policies: string[];
}

const POLL_INTERVAL_MS = 100;
const LIVENESS_CHECK_INTERVAL_MS = 500;
const HTTP_TIMEOUT_MS = 5_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type ApiCall = Omit<ConsulRequest, 'address' | 'port' | 'via'>;

/**
 * The control plane's connections to every cluster's servers: one HTTPS pool
 * per cluster (trusting its CA bundle alone), what the hosts say of which
 * servers run, and the routes to them. `for` binds it to one cluster's spec
 * and secrets, the Consul API the flows call.
 */
export class ConsulConnections {
  private readonly clients = new Map<string, { caCertPem: string; client: ConsulHttpClient }>();
  readonly liveness: ServerLiveness | undefined;
  readonly route: ServerRoute;

  constructor(opts: ConsulApiOptions = {}) {
    this.liveness = opts.liveness;
    this.route = opts.route ?? (() => Promise.resolve(undefined));
  }

  /** The Consul API of the cluster of `spec`, authorized by `secrets.managementToken`, trusting `secrets.pki`'s CA bundle. */
  for(spec: ClusterSpec, secrets: ClusterSecrets): ConsulApi {
    return new ConsulApi(spec, secrets, this);
  }

  /** The cluster's pool; a new one when its CA bundle changed (a CA rotation), the old one closed. */
  client(clusterId: string, caBundle: string): ConsulHttpClient {
    const cached = this.clients.get(clusterId);
    if (cached && cached.caCertPem === caBundle) return cached.client;
    cached?.client.close();
    const client = new ConsulHttpClient(caBundle);
    this.clients.set(clusterId, { caCertPem: caBundle, client });
    return client;
  }

  /** Drops the pooled connections of one cluster (it is deleted). */
  forget(clusterId: string): void {
    this.clients.get(clusterId)?.client.close();
    this.clients.delete(clusterId);
  }

  /** Closes pooled HTTPS connections (servers keep running). */
  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** One cluster's Consul API: its servers as `spec` names them, authorized by its management token. */
export class ConsulApi {
  constructor(private readonly spec: ClusterSpec, private readonly secrets: ClusterSecrets, private readonly connections: ConsulConnections) {}

  /** One call, with the management token, to the first server that answers: for calls made elsewhere in this folder (federation.ts). */
  request(req: Omit<ApiCall, 'token'>): Promise<ConsulResponse> {
    validateSpec(this.spec, this.secrets);
    return this.anyServer({ ...req, token: this.secrets.managementToken });
  }

  /** The same cluster's API with other secrets (a token or CA not stored yet). */
  with(secrets: ClusterSecrets): ConsulApi {
    return new ConsulApi(this.spec, secrets, this.connections);
  }

  /**
   * Polls until the cluster has a leader, its raft configuration holds
   * exactly the spec's servers, all voters, and every server has left Consul
   * 1.8's ACL legacy mode (so token APIs work). Fails early if a server is
   * not running (with the hosts' explanation), and on timeout with the last
   * observed state.
   */
  async waitForLeader(opts: WaitForLeaderOptions): Promise<LeaderState> {
    validateSpec(this.spec, this.secrets);
    const startedAt = Date.now();
    const deadline = startedAt + opts.timeoutMs;
    const expected = new Set(this.spec.servers.map((s) => rpcAddress(s)));
    let attempt = 0;
    let lastLivenessCheck = 0;
    let leader = '';
    let voters = 0;
    let members = '';
    const probe = async (): Promise<LeaderState | string> => {
      const address = this.spec.servers[attempt++ % this.spec.servers.length]!.address;
      const timeoutMs = Math.max(100, Math.min(HTTP_TIMEOUT_MS, deadline - Date.now()));
      const look = await this.leaderProbe(address, expected, timeoutMs).catch((e: Error) => e.message);
      if (typeof look !== 'string') {
        ({ leader, voters, members } = look);
        if (look.complete === true) return { leader, voters, elapsedMs: Date.now() - startedAt };
      }
      if (Date.now() - lastLivenessCheck >= LIVENESS_CHECK_INTERVAL_MS) {
        lastLivenessCheck = Date.now();
        await this.assertAllRunning();
      }
      const last = typeof look === 'string' ? look : look.complete;
      return `leader=${leader || 'none'}, voters=${voters}/${this.spec.servers.length} [${members}], last: ${last}`;
    };
    return poll(
      `Cluster ${this.spec.clusterId} had no leader with ${this.spec.servers.length} voters`,
      probe,
      (r) => (typeof r === 'string' ? r : true),
      { timeoutMs: opts.timeoutMs, intervalMs: opts.pollIntervalMs ?? POLL_INTERVAL_MS },
    ) as Promise<LeaderState>;
  }

  /** One look at the leader and the raft configuration from `address`; `complete` is true or why not. */
  private async leaderProbe(
    address: string, expected: Set<string>, timeoutMs: number,
  ): Promise<{ leader: string; voters: number; members: string; complete: true | string }> {
    const status = await this.call(address, { method: 'GET', path: '/v1/status/leader', timeoutMs });
    const leader = status.status === 200 && typeof status.body === 'string' ? status.body : '';
    if (status.status !== 200) throw new Error(`${address}: status/leader HTTP ${status.status} ${describeBody(status.body)}`);
    if (leader === '') return { leader, voters: 0, members: '', complete: `${address}: no leader yet` };
    const raft = await this.call(address, { method: 'GET', path: '/v1/operator/raft/configuration', token: this.secrets.managementToken, timeoutMs });
    if (raft.status !== 200) {
      return { leader, voters: 0, members: '', complete: `${address}: raft configuration HTTP ${raft.status} ${describeBody(raft.body)}` };
    }
    const servers = raftServers(raft.body);
    const voters = servers.filter((s) => s.Voter).length;
    const members = servers.map((s) => `${s.Node}@${s.Address}${s.Voter ? '' : '(non-voter)'}`).join(', ');
    const complete = servers.length === expected.size && servers.every((s) => s.Voter && expected.has(s.Address));
    if (!complete) return { leader, voters, members, complete: `${address}: raft configuration not complete yet` };
    return { leader, voters, members, complete: (await this.firstServerWithoutNewAcls(timeoutMs)) ?? true };
  }

  /**
   * Consul 1.8 servers start with the ACL system in legacy mode and switch to
   * the new ACL system (tokens, policies) on their own some time after the
   * leader is elected; until then token endpoints answer 500 "The ACL system
   * is currently in legacy mode". A server is ready once it resolves the
   * management token through `/v1/acl/token/self`. Returns a description of
   * the first server not ready, or undefined if all are.
   */
  private async firstServerWithoutNewAcls(timeoutMs: number): Promise<string | undefined> {
    for (const server of this.spec.servers) {
      const res = await this.call(server.address, { method: 'GET', path: '/v1/acl/token/self', token: this.secrets.managementToken, timeoutMs });
      if (res.status !== 200) return `${server.address}: ACL system not ready: HTTP ${res.status} ${describeBody(res.body)}`;
    }
    return undefined;
  }

  /**
   * Waits until the cluster is whole after a server restarted: a leader, every
   * server a voter on the new ACL system (waitForLeader), every follower in
   * contact with the leader and its raft log applied up to the leader's commit
   * index, and autopilot reporting every server healthy.
   */
  async waitForHealthy(opts: WaitForHealthyOptions): Promise<LeaderState> {
    const startedAt = Date.now();
    const state = await this.waitForLeader({ timeoutMs: opts.timeoutMs });
    let commitIndex: number | undefined;
    const probe = async (): Promise<true | string> => {
      const stats = await Promise.all(this.spec.servers.map((s) => this.raftStats(s.address)));
      const leader = stats.find((x) => x.state === 'Leader');
      if (!leader) return 'no server reports itself leader';
      commitIndex ??= leader.commitIndex;
      const target = commitIndex;
      const behind = this.spec.servers.filter((_, i) => {
        const x = stats[i]!;
        return x.state !== 'Leader' && (x.state !== 'Follower' || x.lastContact === 'never' || x.appliedIndex < target);
      });
      if (behind.length > 0) return `server(s) ${behind.map((s) => s.index).join(', ')} not caught up with index ${target}`;
      const ap = await this.autopilotHealthy();
      return ap.healthy ? true : `autopilot: ${ap.detail || 'no servers'}`;
    };
    const remaining = Math.max(0, opts.timeoutMs - (Date.now() - startedAt));
    await poll(`Cluster ${this.spec.clusterId} not healthy`, probe, (v) => v, { timeoutMs: remaining, intervalMs: POLL_INTERVAL_MS });
    return { ...state, elapsedMs: Date.now() - startedAt };
  }

  /** Autopilot's view: every server healthy (alive, voter, caught up on the commit index). */
  async autopilotHealthy(): Promise<{ healthy: boolean; detail: string }> {
    const res = await this.anyServer({ method: 'GET', path: '/v1/operator/autopilot/health', token: this.secrets.managementToken });
    // 429 is Consul's answer for "not healthy".
    const body = res.body as { Healthy?: boolean; Servers?: { Name: string; Healthy: boolean; Voter: boolean; LastIndex: number }[] };
    const servers = body?.Servers ?? [];
    const detail = servers.map((s) => `${s.Name}:${s.Healthy ? 'healthy' : 'unhealthy'}${s.Voter ? '' : '(non-voter)'}@${s.LastIndex}`).join(', ');
    return { healthy: res.status === 200 && body?.Healthy === true && servers.length === this.spec.servers.length && servers.every((s) => s.Voter), detail };
  }

  /** The index of the current leader as the first answering server sees it; undefined while there is none. */
  async leaderIndex(): Promise<number | undefined> {
    validateSpec(this.spec, this.secrets);
    const res = await this.anyServer({ method: 'GET', path: '/v1/status/leader', timeoutMs: HTTP_TIMEOUT_MS });
    const leader = res.status === 200 && typeof res.body === 'string' ? res.body : '';
    return this.spec.servers.find((s) => leader === rpcAddress(s))?.index;
  }

  /** The Consul version a running server reports of itself, and the current leader's address. */
  async serverStatus(index: number): Promise<{ version: string; leader: string }> {
    const server = serverOf(this.spec, index);
    const self = await this.call(server.address, { method: 'GET', path: '/v1/agent/self', token: this.secrets.managementToken });
    if (self.status !== 200) throw new Error(`agent/self on server ${index} answered HTTP ${self.status}`);
    const leader = await this.call(server.address, { method: 'GET', path: '/v1/status/leader', token: this.secrets.managementToken });
    return { version: String((self.body as { Config?: { Version?: string } }).Config?.Version ?? ''), leader: String(leader.body ?? '') };
  }

  /**
   * Server `index` leaves the cluster gracefully: raft drops it from its peers
   * (a leader steps down cleanly). Answers once the leave is done; a server
   * that does not answer (down already) is left to the caller.
   */
  async leave(index: number): Promise<void> {
    const server = serverOf(this.spec, index);
    await this.call(server.address, { method: 'PUT', path: '/v1/agent/leave', token: this.secrets.managementToken, timeoutMs: 30_000 }).catch(() => undefined);
  }

  /**
   * Removes server `index` from the raft peers through the first other server
   * that answers, if it is still one (it crashed, or its leave did not
   * finish). Idempotent.
   */
  async removeRaftPeer(index: number): Promise<void> {
    const peer = rpcAddress(serverOf(this.spec, index));
    for (const other of this.spec.servers.filter((s) => s.index !== index)) {
      const raft = await this.call(other.address, { method: 'GET', path: '/v1/operator/raft/configuration', token: this.secrets.managementToken }).catch(() => undefined);
      if (!raft || raft.status !== 200) continue;
      if (raftServers(raft.body).some((s) => s.Address === peer)) {
        const res = await this.call(other.address, {
          method: 'DELETE', path: `/v1/operator/raft/peer?address=${encodeURIComponent(peer)}`, token: this.secrets.managementToken,
        });
        if (res.status !== 200) throw new Error(`removing raft peer ${peer} answered HTTP ${res.status} ${describeBody(res.body)}`);
      }
      return;
    }
  }

  /** Anonymous writes must be denied (403) and the management token must be allowed. */
  async verifyAclEnforced(): Promise<void> {
    validateSpec(this.spec, this.secrets);
    const address = await this.answeringAddress();
    const path = `/v1/kv/provisioner/acl-probe-${randomBytes(8).toString('hex')}`;
    const call = (method: 'PUT' | 'DELETE', token?: string): Promise<ConsulResponse> =>
      this.call(address, { method, path, token, body: method === 'PUT' ? 'probe' : undefined });
    const anonymous = await call('PUT');
    if (anonymous.status !== 403) {
      throw new Error(`ACLs not enforced on cluster ${this.spec.clusterId}: anonymous KV write answered HTTP ${anonymous.status} (expected 403)`);
    }
    const managed = await call('PUT', this.secrets.managementToken);
    if (managed.status !== 200) {
      throw new Error(`Management token rejected on cluster ${this.spec.clusterId}: KV write answered HTTP ${managed.status} ${describeBody(managed.body)}`);
    }
    const cleanup = await call('DELETE', this.secrets.managementToken);
    if (cleanup.status !== 200) throw new Error(`Could not delete ACL probe key on cluster ${this.spec.clusterId}: HTTP ${cleanup.status}`);
  }

  /** Creates an ACL token with the global-management policy. */
  async createToken(opts: CreateTokenOptions): Promise<CreatedToken> {
    validateSpec(this.spec, this.secrets);
    const accessorId = opts.accessorId ?? randomUUID();
    const secretId = opts.secretId ?? randomUUID();
    if (!UUID.test(accessorId) || !UUID.test(secretId)) throw new Error('Token accessor and secret ids must be UUIDs');
    const address = await this.answeringAddress();
    const token = this.secrets.managementToken;
    const readExisting = async (): Promise<CreatedToken | undefined> => {
      const res = await this.call(address, { method: 'GET', path: `/v1/acl/token/${accessorId}`, token });
      if (res.status === 200) return tokenIds(res.body);
      if (isAclNotFound(res)) return undefined;
      throw new Error(`Reading token on cluster ${this.spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
    };
    if (opts.accessorId !== undefined) {
      const existing = await readExisting();
      if (existing) return existing;
    }
    const res = await this.call(address, {
      method: 'PUT',
      path: '/v1/acl/token',
      token,
      body: { AccessorID: accessorId, SecretID: secretId, Description: opts.description, Policies: [{ Name: 'global-management' }], Local: false },
    });
    if (res.status === 200) return tokenIds(res.body);
    // A concurrent or earlier attempt with the same ids may have won the race.
    const existing = opts.accessorId !== undefined ? await readExisting() : undefined;
    if (existing) return existing;
    throw new Error(`Creating token on cluster ${this.spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
  }

  /**
   * What Consul knows of the token with this secret, asked with the token
   * itself (`/v1/acl/token/self`) of server `index`, or of the first server
   * that answers when omitted; undefined when it answers "ACL not found".
   */
  async tokenInfo(secretId: string, index?: number): Promise<TokenInfo | undefined> {
    validateSpec(this.spec, this.secrets);
    const servers = index === undefined ? this.spec.servers : this.spec.servers.filter((s) => s.index === index);
    if (servers.length === 0) throw new Error(`cluster ${this.spec.clusterId} has no server ${index}`);
    let lastError = '';
    for (const server of servers) {
      let res: ConsulResponse;
      try {
        res = await this.call(server.address, { method: 'GET', path: '/v1/acl/token/self', token: secretId, timeoutMs: HTTP_TIMEOUT_MS });
      } catch (e) {
        lastError = (e as Error).message; // down or restarting: ask the next
        continue;
      }
      if (res.status === 200) {
        const body = res.body as { AccessorID?: unknown; Policies?: { Name?: unknown }[] } | undefined;
        if (typeof body?.AccessorID !== 'string') throw new Error(`server ${server.index}: token lookup answered without an AccessorID`);
        return { accessorId: body.AccessorID, policies: (body.Policies ?? []).map((p) => String(p.Name)) };
      }
      if (isAclNotFound(res)) return undefined;
      // Only error answers reach here, and they never hold the token.
      lastError = `server ${server.index}: token lookup answered HTTP ${res.status} ${describeBody(res.body)}`;
    }
    throw new Error(lastError);
  }

  /** Waits until every running server resolves the token (it was just created through the leader); returns it. */
  async waitForTokenOnEveryServer(secretId: string, opts: WaitForHealthyOptions): Promise<TokenInfo> {
    return this.pollEveryServer(secretId, opts, 'resolve the token', (info) => info !== undefined) as Promise<TokenInfo>;
  }

  /**
   * Deletes the token with this secret (its accessor is looked up with the
   * token itself), authorized by `secrets.managementToken`, then waits until
   * every running server answers "ACL not found" for it. Returns the deleted accessor,
   * or undefined if the token was gone already. Idempotent.
   */
  async deleteTokenBySecret(secretId: string, opts: WaitForHealthyOptions): Promise<string | undefined> {
    validateSpec(this.spec, this.secrets);
    if (secretId === this.secrets.managementToken) throw new Error('refusing to delete the management token the request is made with');
    const found = await this.tokenInfo(secretId);
    if (found) {
      const accessorId = found.accessorId;
      const res = await this.anyServer({ method: 'DELETE', path: `/v1/acl/token/${encodeURIComponent(accessorId)}`, token: this.secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS });
      if (res.status !== 200 && !isAclNotFound(res)) {
        throw new Error(`deleting token ${accessorId} on cluster ${this.spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
      }
    }
    await this.pollEveryServer(secretId, opts, 'reject the token', (info) => info === undefined);
    return found?.accessorId;
  }

  /**
   * Deletes the token with this AccessorID, authorized by `secrets.managementToken`,
   * unless it is that token itself ('current': left alone). 'absent' when the
   * cluster has no such token. Idempotent.
   */
  async deleteTokenByAccessor(accessorId: string): Promise<'deleted' | 'absent' | 'current'> {
    validateSpec(this.spec, this.secrets);
    if (!UUID.test(accessorId)) throw new Error('a token accessor id must be a UUID');
    const path = `/v1/acl/token/${encodeURIComponent(accessorId)}`;
    const call = (method: 'GET' | 'DELETE'): Promise<ConsulResponse> =>
      this.anyServer({ method, path, token: this.secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS });
    const found = await call('GET');
    if (isAclNotFound(found)) return 'absent';
    // A 200 answer holds the token's secret: compared, never described.
    if (found.status !== 200) throw new Error(`reading token ${accessorId} on cluster ${this.spec.clusterId} answered HTTP ${found.status} ${describeBody(found.body)}`);
    if (tokenIds(found.body).secretId === this.secrets.managementToken) return 'current';
    const res = await call('DELETE');
    if (res.status !== 200 && !isAclNotFound(res)) {
      throw new Error(`deleting token ${accessorId} on cluster ${this.spec.clusterId} answered HTTP ${res.status} ${describeBody(res.body)}`);
    }
    return 'deleted';
  }

  /**
   * Waits until every running server, each answering from its own state
   * (`?stale`, as when it authorizes a request), resolves
   * `secrets.managementToken` and answers "ACL not found" for each of
   * `absentAccessorIds`. The management token is asked about first, so an
   * "ACL not found" after it is about the token looked up, not the one the
   * request is made with.
   */
  async waitForTokensAbsentOnEveryServer(
    absentAccessorIds: readonly string[], opts: WaitForHealthyOptions,
  ): Promise<void> {
    validateSpec(this.spec, this.secrets);
    const probe = async (): Promise<string[]> => {
      const servers = await this.runningServers();
      const waiting: string[] = servers.length === 0 ? ['no server is running'] : [];
      for (const s of servers) {
        const get = (path: string): Promise<ConsulResponse> =>
          this.call(s.address, { method: 'GET', path, token: this.secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS });
        try {
          const self = await get('/v1/acl/token/self?stale');
          if (self.status !== 200) {
            waiting.push(`server ${s.index}: the management token answered HTTP ${self.status} ${describeBody(self.body)}`);
            continue;
          }
          for (const accessorId of absentAccessorIds) {
            const res = await get(`/v1/acl/token/${encodeURIComponent(accessorId)}?stale`);
            if (res.status === 200) waiting.push(`server ${s.index}: token ${accessorId} exists`);
            else if (!isAclNotFound(res)) waiting.push(`server ${s.index}: token ${accessorId} answered HTTP ${res.status} ${describeBody(res.body)}`);
          }
        } catch (e) {
          waiting.push(`server ${s.index}: ${(e as Error).message}`);
        }
      }
      return waiting;
    };
    await poll(
      `cluster ${this.spec.clusterId}: not every server rejects the retired tokens and resolves the management token`,
      probe,
      (waiting) => (waiting.length === 0 ? true : waiting.join('; ')),
      { timeoutMs: opts.timeoutMs, intervalMs: POLL_INTERVAL_MS },
    );
  }

  /** Asks every running server about a token until `done` holds for all of them. */
  private async pollEveryServer(
    secretId: string, opts: WaitForHealthyOptions, what: string, done: (info: TokenInfo | undefined) => boolean,
  ): Promise<TokenInfo | undefined> {
    validateSpec(this.spec, this.secrets);
    const probe = async (): Promise<{ first: TokenInfo | undefined; waiting: string[] }> => {
      // A server that is down learns what it missed from the raft log when it starts.
      const servers = await this.runningServers();
      let first: TokenInfo | undefined;
      const waiting: string[] = servers.length === 0 ? ['no server is running'] : [];
      for (const s of servers) {
        try {
          const info = await this.tokenInfo(secretId, s.index);
          if (!done(info)) waiting.push(`server ${s.index}`);
          if (s === servers[0]) first = info;
        } catch (e) {
          waiting.push((e as Error).message);
        }
      }
      return { first, waiting };
    };
    const r = await poll(`cluster ${this.spec.clusterId}: not every server would ${what}`, probe, (v) => (v.waiting.length === 0 ? true : v.waiting.join('; ')), {
      timeoutMs: opts.timeoutMs, intervalMs: POLL_INTERVAL_MS,
    });
    return r.first;
  }

  /**
   * Gossip key rotation by Consul's keyring procedure: install the new key on
   * every member, make it the primary, remove every other key. Each keyring call
   * answers only when all members have acted on it. Idempotent.
   */
  async rotateGossipKey(newKey: string): Promise<{ removed: number }> {
    validateSpec(this.spec, this.secrets);
    const keyring = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', body?: unknown): Promise<unknown> => {
      const res = await this.anyServer({ method, path: '/v1/operator/keyring', token: this.secrets.managementToken, body, timeoutMs: 30_000 });
      if (res.status !== 200) throw new Error(`keyring ${method} answered HTTP ${res.status} ${describeBody(res.body)}`);
      return res.body;
    };
    await keyring('POST', { Key: newKey });
    await keyring('PUT', { Key: newKey });
    const pools = (await keyring('GET')) as { Keys: Record<string, number>; NumNodes: number }[];
    const old = new Set(pools.flatMap((p) => Object.keys(p.Keys)).filter((k) => k !== newKey));
    for (const k of old) await keyring('DELETE', { Key: k });
    const after = (await keyring('GET')) as { Keys: Record<string, number>; NumNodes: number; WAN: boolean }[];
    for (const p of after) {
      const keys = Object.keys(p.Keys);
      if (keys.length !== 1 || keys[0] !== newKey || p.Keys[newKey] !== p.NumNodes) {
        throw new Error(`keyring not converged on the new key (${p.WAN ? 'WAN' : 'LAN'}: ${keys.length} key(s), ${p.Keys[newKey] ?? 0}/${p.NumNodes} members)`);
      }
    }
    return { removed: old.size };
  }

  /** The SHA-256 fingerprint of the certificate server `index` serves on HTTPS, verified against the trusted CA bundle. */
  async servedCertificateFingerprint(index: number): Promise<string> {
    const { address } = serverOf(this.spec, index);
    return servedFingerprint(address, CONSUL_SERVER_PORTS.https, caBundlePem(this.secrets.pki), await this.connections.route(this.spec.clusterId, address, 'https'));
  }

  /** Waits until server `index` serves `expectedCertPem` on HTTPS (after a reload). */
  async waitForServedCertificate(index: number, expectedCertPem: string, timeoutMs = 30_000): Promise<void> {
    const want = new X509Certificate(expectedCertPem).fingerprint256;
    await poll(
      `server ${index} still serves another certificate after reload`,
      () => this.servedCertificateFingerprint(index),
      (seen) => (seen === want ? true : seen.slice(0, 40)),
      { timeoutMs, intervalMs: POLL_INTERVAL_MS },
    );
  }

  /**
   * Whether server `index` accepts `client` as a client certificate on its RPC
   * port (verify_incoming_rpc): a TLS handshake as another server would make
   * it, so it tells which CAs the running process trusts right now (not what
   * its files say). TLS 1.2, so that a refusal ends the handshake.
   */
  async acceptsClientCertificate(index: number, client: Pick<ServerCertificate, 'certPem' | 'keyPem'>): Promise<boolean> {
    const { address } = serverOf(this.spec, index);
    const via = await this.connections.route(this.spec.clusterId, address, 'rpc');
    return rpcHandshake(address, CONSUL_SERVER_PORTS.server, caBundlePem(this.secrets.pki), serverTlsName(this.spec.datacenter), client, via);
  }

  /**
   * Takes a snapshot through Consul's snapshot API (served by the leader): a
   * gzipped archive of the raft state, with the raft index it was taken at.
   */
  async saveSnapshot(): Promise<{ data: Buffer; index: bigint }> {
    validateSpec(this.spec, this.secrets);
    const res = await this.anyServerRaw({ method: 'GET', path: '/v1/snapshot', token: this.secrets.managementToken, timeoutMs: 60_000, maxBytes: 1024 * 1024 * 1024 });
    if (res.status !== 200) throw new Error(`snapshot of cluster ${this.spec.clusterId} answered HTTP ${res.status} ${res.data.toString('utf8').slice(0, 200)}`);
    return { data: res.data, index: BigInt(String(res.headers['x-consul-index'] ?? '0')) };
  }

  /** Restores a snapshot taken with saveSnapshot: the cluster's state becomes exactly the snapshot's. */
  async restoreSnapshot(data: Buffer): Promise<void> {
    validateSpec(this.spec, this.secrets);
    const res = await this.anyServerRaw({ method: 'PUT', path: '/v1/snapshot', token: this.secrets.managementToken, rawBody: data, timeoutMs: 120_000 });
    if (res.status !== 200) throw new Error(`restore on cluster ${this.spec.clusterId} answered HTTP ${res.status} ${res.data.toString('utf8').slice(0, 200)}`);
  }


  /** The address of the first server whose HTTPS API answers (one may be down or restarting). */
  private answeringAddress(): Promise<string> {
    return this.firstAnswering(async (address) => {
      await this.call(address, { method: 'GET', path: '/v1/status/leader', timeoutMs: HTTP_TIMEOUT_MS });
      return address;
    });
  }

  private anyServer(req: ApiCall): Promise<ConsulResponse> {
    return this.firstAnswering((address) => this.call(address, req));
  }

  private anyServerRaw(req: Omit<ConsulRawRequest, 'address' | 'port' | 'via'>) {
    return this.firstAnswering(async (address) => this.client().requestRaw({ ...req, ...(await this.https(address)) }));
  }

  /** Asks each server in turn until one answers (a server may be down or restarting). */
  private async firstAnswering<T>(call: (address: string) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const server of this.spec.servers) {
      try {
        return await call(server.address);
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  /** A server's own raft view (`/v1/agent/self` Stats.raft). */
  private async raftStats(address: string): Promise<RaftStats> {
    const res = await this.call(address, { method: 'GET', path: '/v1/agent/self', token: this.secrets.managementToken, timeoutMs: HTTP_TIMEOUT_MS });
    if (res.status !== 200) throw new Error(`${address}: agent/self answered HTTP ${res.status} ${describeBody(res.body)}`);
    const raft = (res.body as { Stats?: { raft?: Record<string, string> } } | undefined)?.Stats?.raft ?? {};
    return {
      state: raft['state'] ?? '',
      appliedIndex: Number(raft['applied_index'] ?? 0),
      commitIndex: Number(raft['commit_index'] ?? 0),
      lastContact: raft['last_contact'] ?? 'never',
    };
  }

  private async runningServers(): Promise<ServerSpec[]> {
    const { liveness } = this.connections;
    if (!liveness) return this.spec.servers;
    const running = await liveness.running(this.spec.clusterId);
    return this.spec.servers.filter((s) => running.has(s.index));
  }

  private async assertAllRunning(): Promise<void> {
    const { liveness } = this.connections;
    if (!liveness) return;
    const running = await liveness.running(this.spec.clusterId);
    for (const server of this.spec.servers) {
      if (running.has(server.index)) continue;
      throw new PollAborted(
        `${serverNodeName(this.spec.datacenter, server.index)} of cluster ${this.spec.clusterId} is not running; ${await liveness.explainDown(this.spec.clusterId, server.index)}`,
      );
    }
  }

  private async call(address: string, req: ApiCall): Promise<ConsulResponse> {
    return this.client().request({ ...req, ...(await this.https(address)) });
  }

  /** Where a request to a server's HTTPS API goes: its address and Consul's port, through the route when there is one. */
  private async https(address: string): Promise<Pick<ConsulRequest, 'address' | 'port' | 'via'>> {
    return { address, port: CONSUL_SERVER_PORTS.https, via: await this.connections.route(this.spec.clusterId, address, 'https') };
  }

  private client(): ConsulHttpClient {
    return this.connections.client(this.spec.clusterId, caBundlePem(this.secrets.pki));
  }
}

interface RaftServer {
  Node: string;
  Address: string;
  Voter: boolean;
  Leader: boolean;
}

interface RaftStats {
  state: string;
  appliedIndex: number;
  commitIndex: number;
  lastContact: string;
}

function raftServers(body: unknown): RaftServer[] {
  const servers = (body as { Servers?: unknown } | undefined)?.Servers;
  return Array.isArray(servers) ? (servers as RaftServer[]) : [];
}

function rpcAddress(server: ServerSpec): string {
  return `${server.address}:${CONSUL_SERVER_PORTS.server}`;
}

function serverOf(spec: ClusterSpec, index: number): ServerSpec {
  const server = spec.servers.find((s) => s.index === index);
  if (!server) throw new Error(`cluster ${spec.clusterId} has no server ${index}`);
  return server;
}

function tokenIds(body: unknown): CreatedToken {
  const b = body as { AccessorID?: unknown; SecretID?: unknown } | undefined;
  if (typeof b?.AccessorID !== 'string' || typeof b.SecretID !== 'string') {
    throw new Error('Consul answered a token without AccessorID/SecretID');
  }
  return { accessorId: b.AccessorID, secretId: b.SecretID };
}

/** The shape every target shares: an allowed server count, distinct indexes and addresses, a certificate for each. */
export function validateSpec(spec: ClusterSpec, secrets: ClusterSecrets): void {
  const n = spec.servers.length;
  if (!ALLOWED_SERVER_COUNTS.includes(n)) {
    throw new Error(`Cluster ${spec.clusterId}: ${n} servers; must be one of ${ALLOWED_SERVER_COUNTS.join(', ')}`);
  }
  if (new Set(spec.servers.map((s) => s.index)).size !== n) throw new Error(`Cluster ${spec.clusterId}: duplicate server index`);
  if (new Set(spec.servers.map((s) => s.address)).size !== n) throw new Error(`Cluster ${spec.clusterId}: duplicate server address`);
  for (const s of spec.servers) serverCertificate(secrets.pki, s.address);
}
