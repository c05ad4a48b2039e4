import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import {
  AuditRepository, BadGatewayError, TenantClusterRepository, ConsoleSessionRepository, ConsulUiSessionRepository, ForbiddenError, NotFoundError, ROLES,
  SecretName, SecretRepository, UnauthenticatedError, ValidationError, ConflictError, ClusterState,
  type Config, type DomainError, type Role, type UiAccess, type UiRevokeReason, type UiSessionWithContext,
} from '../../../../libs/core/src';
import { serverHttps, type ConsulUiTokens, type ServerHttps } from '../../../../libs/provisioner/src';
import { missingRole } from '../auth/principal';
import { principalOf } from '../console/console-sessions';
import { hashSecret, isWellFormedSecret, newSecret } from '../console/session-secret';
import { isSameBrowser } from '../console/browser-binding';
import type { OperationDispatcher } from '../operation.dispatcher';

/** The Consul UI session cookie on a cluster's UI origin: `__Host-` (Secure, Path=/, host-only), HttpOnly, SameSite=Lax. */
export const UI_SESSION_COOKIE = '__Host-mc_ui_session';
/** The UI origin's sign-in binding (browser-binding.ts): set by /_sso/start, required by /_sso/callback. */
export const UI_LOGIN_COOKIE = '__Host-mc_ui_login';

/** Cluster states whose Consul answers: a UI session can start. */
export const UI_STATES: ReadonlySet<string> = new Set([ClusterState.Running, ClusterState.Updating]);

/** A Consul UI token lives at most this long (and never past its console session). */
export const UI_TOKEN_MAX_S = 8 * 3600;
/** Consul's shortest ExpirationTTL. */
const UI_TOKEN_MIN_S = 60;

/** What the proxy needs of a signed-in UI session for each request. */
export interface UiSessionEntry {
  id: string;
  clusterId: string;
  accessorId: string;
  /** The user's Consul token: sent as X-Consul-Token, never to the browser by us. */
  secretId: string;
  /** The cluster's servers: each one's address (what its certificate names) and where it is connected to when not there. */
  servers: ServerHttps[];
  caPem: string;
  expiresAtMs: number;
  checkedAtMs: number;
}

export type Authenticated = { entry: UiSessionEntry } | { refused: DomainError };

const ROLE_FOR: Record<UiAccess, Role[]> = { write: [ROLES.write], read: [ROLES.read, ROLES.write] };

function printable(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

/**
 * The Consul UI sessions as the UI proxy sees them: redeeming a one-time code into a session
 * (and the user's own Consul token), checking a session on each request, and revoking. A
 * session's checks (console session alive, the role its token was made for still held, same
 * tenant, cluster not being deleted) are read from the database at most every
 * CONSOLE_UI_RECHECK_MS; a failed check revokes the session at once (marked, so no proxy
 * serves it) and hands the Consul token to the worker to delete.
 */
export class UiSessionGate {
  private readonly log = new Logger('consul-ui-sso');
  private readonly cache = new Map<string, UiSessionEntry>();

  constructor(
    private readonly config: Config,
    private readonly repo: ConsulUiSessionRepository,
    private readonly consoleSessions: ConsoleSessionRepository,
    private readonly clusters: TenantClusterRepository,
    private readonly secrets: SecretRepository,
    private readonly audit: AuditRepository,
    private readonly tokens: ConsulUiTokens,
    private readonly dispatcher: OperationDispatcher,
  ) {}

  /**
   * /_sso/callback: redeems the code (once), makes the user's Consul token and the UI session.
   * Only from the browser the code was made for (its binding cookie on this origin): the code is
   * used up either way, so one seen elsewhere is worth nothing. Returns the UI cookie's value and lifetime.
   */
  async signIn(rawCode: unknown, hostClusterId: string, cookieHeader: string | string[] | undefined): Promise<{ secret: string; maxAgeS: number }> {
    if (typeof rawCode !== 'string' || !isWellFormedSecret(rawCode)) {
      throw new ValidationError('code_invalid', 'this sign-in link has no valid code; open the Consul UI from the console again', { field: 'code' });
    }
    const redeemed = await this.repo.redeemCode(hashSecret(rawCode));
    if (!redeemed) throw new ValidationError('code_invalid', 'this sign-in link was already used or is unknown; open the Consul UI from the console again', { field: 'code' });
    const { code, expired } = redeemed;
    if (expired) throw new ValidationError('code_expired', `this sign-in link is older than ${this.config.CONSOLE_SSO_CODE_TTL_S} s; open the Consul UI from the console again`, { field: 'code' });
    if (code.clusterId !== hostClusterId) throw new ValidationError('code_invalid', 'this sign-in link is for another cluster; open the Consul UI from the console again', { field: 'code' });
    if (!isSameBrowser(cookieHeader, UI_LOGIN_COOKIE, code.browserHash)) {
      this.log.warn({ msg: 'Consul UI sign-in from another browser refused', clusterId: code.clusterId });
      throw new ValidationError('sso_other_browser', 'this sign-in link was made for another browser (a sign-in link is never to be followed from a message); open the Consul UI from the console', { field: 'code' });
    }
    const session = await this.consoleSessions.findSessionById(code.sessionId);
    if (!session || session.userId !== code.userId || session.tenantId !== code.tenantId) {
      throw new UnauthenticatedError('not_signed_in', 'the console session that opened this link has ended; sign in to the console again');
    }
    const cluster = await this.clusters.findForTenant(session.tenantId, code.clusterId);
    if (!cluster) throw new NotFoundError('cluster_not_found', `you have no cluster ${code.clusterId}`);
    if (!UI_STATES.has(cluster.state)) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; its Consul UI opens once it is Running`);
    const principal = principalOf(session);
    const access: UiAccess | undefined = !missingRole(principal, ROLE_FOR.write, this.config.OPERATOR_TENANT_ID) ? 'write'
      : !missingRole(principal, ROLE_FOR.read, this.config.OPERATOR_TENANT_ID) ? 'read' : undefined;
    if (!access) throw new ForbiddenError('forbidden', `the Consul UI needs one of the roles: ${ROLE_FOR.read.join(', ')}`, { requiredRoles: ROLE_FOR.read });
    const ttlS = Math.min(UI_TOKEN_MAX_S, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000));
    if (ttlS < UI_TOKEN_MIN_S) throw new UnauthenticatedError('session_ending', 'the console session ends within a minute; sign in to the console again');
    const managementToken = await this.secrets.get(cluster.id, SecretName.ManagementToken);
    const caPem = cluster.caCertPem;
    const servers = cluster.servers.map(serverHttps);
    if (!managementToken || !caPem || servers.length === 0) throw new ConflictError('cluster_not_ready', 'the cluster is not ready yet; try again once it is Running');
    const api = { clusterId: cluster.id, servers, caPem, managementToken };

    // The ids are chosen and written (the secret sealed) before the token exists, so nothing
    // in Consul is ever without its row: a sign-in cut short leaves a row the sweep revokes.
    const id = randomUUID();
    const accessorId = randomUUID();
    const secretId = randomUUID();
    const secret = newSecret();
    const expiresAt = new Date(Date.now() + ttlS * 1000);
    await this.secrets.replace(cluster.id, SecretName.consulUiToken(id), secretId);
    await this.repo.create({
      id, tokenHash: hashSecret(secret), clusterId: cluster.id, consoleSessionId: session.id, tenantId: session.tenantId, userId: session.userId,
      userName: printable(session.name, 128), access, accessorId, expiresAt,
    });
    const description = `Consul UI sign-in of ${printable(session.name, 128)} (object id ${session.userId}) through the managed-consul console; UI session ${id}`;
    try {
      await this.tokens.create(api, { accessorId, secretId, description, access, ttlSeconds: ttlS });
      await this.tokens.waitUntilResolved(api, servers[0]!, secretId);
    } catch (e) {
      this.log.warn({ msg: 'Consul UI token not created', clusterId: cluster.id, uiSessionId: id, err: (e as Error).message });
      await this.revoke({ id }, 'sign-in-failed');
      throw new BadGatewayError('cluster_unavailable', "the cluster's Consul API did not answer; try again shortly");
    }
    await this.audit.record({
      tenantId: cluster.tenantId, clusterId: cluster.id, actor: session.userId, action: 'consul-ui.sso.signed-in',
      details: { uiSessionId: id, userId: session.userId, name: session.name, access, accessorId, expiresAt: expiresAt.toISOString() },
    });
    this.log.log({ msg: 'Consul UI sign-in', clusterId: cluster.id, uiSessionId: id, userId: session.userId, access });
    return { secret, maxAgeS: ttlS };
  }

  /** The UI session behind a cookie value on this cluster's origin, checked (at most every CONSOLE_UI_RECHECK_MS). */
  async authenticate(cookie: string | undefined, hostClusterId: string): Promise<Authenticated> {
    const none = (message: string): Authenticated => ({ refused: new UnauthenticatedError('not_signed_in', message) });
    if (!isWellFormedSecret(cookie)) return none('no Consul UI session: open the Consul UI from the console');
    const hash = hashSecret(cookie);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.clusterId === hostClusterId && now < cached.expiresAtMs && now - cached.checkedAtMs < this.config.CONSOLE_UI_RECHECK_MS) return { entry: cached };
    this.cache.delete(hash);
    const row = await this.repo.findByTokenHash(hash);
    if (!row || row.clusterId !== hostClusterId) return none('no Consul UI session: open the Consul UI from the console');
    if (row.revokedAt) return none(`this Consul UI session was ended (${row.revokeReason ?? 'revoked'}); open the Consul UI from the console again`);
    const reason = this.revocationReason(row, now);
    if (reason) {
      await this.revoke({ id: row.id }, reason);
      return none(`this Consul UI session was ended (${reason}); open the Consul UI from the console again`);
    }
    const secretId = await this.secrets.get(row.clusterId, SecretName.consulUiToken(row.id));
    if (!secretId || !row.cluster.caCertPem) return none('this Consul UI session has no token; open the Consul UI from the console again');
    const entry: UiSessionEntry = {
      id: row.id, clusterId: row.clusterId, accessorId: row.accessorId, secretId, servers: row.cluster.servers.map(serverHttps),
      caPem: row.cluster.caCertPem!, expiresAtMs: row.expiresAt.getTime(), checkedAtMs: now,
    };
    this.cache.set(hash, entry);
    return { entry };
  }

  /** Consul said the session's token is not there (revoked meanwhile): read the session again next time. */
  forget(entry: UiSessionEntry): void {
    for (const [k, v] of this.cache) if (v.id === entry.id) this.cache.delete(k);
  }

  /** Marks sessions revoked (refused from now on), forgets them here, and hands their tokens to the worker. */
  async revoke(where: { id: string } | { consoleSessionId: string } | { clusterId: string }, reason: UiRevokeReason): Promise<string[]> {
    const ids = await this.repo.markRevoked(where, reason);
    await this.revoked(ids);
    return ids;
  }

  /** Sessions marked revoked elsewhere (a sign-out's transaction): forgotten here, handed to the worker. */
  async revoked(ids: string[]): Promise<void> {
    this.invalidate(ids);
    await this.dispatcher.revokeUiSessions(ids);
  }

  /** Drops what this process remembers of these sessions (a sign-out or a cluster deletion here). */
  invalidate(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const gone = new Set(ids);
    for (const [k, v] of this.cache) if (gone.has(v.id)) this.cache.delete(k);
  }

  private revocationReason(row: UiSessionWithContext, now: number): UiRevokeReason | undefined {
    if (row.expiresAt.getTime() <= now) return 'expired';
    const cs = row.consoleSession;
    if (!cs || cs.expiresAt.getTime() <= now) return 'console-session-ended';
    if (row.cluster.state === ClusterState.Deleting || row.cluster.state === ClusterState.Deleted) return 'cluster-deleted';
    if (cs.tenantId !== row.cluster.tenantId || missingRole(principalOf(cs), ROLE_FOR[row.access as UiAccess] ?? ROLE_FOR.write, this.config.OPERATOR_TENANT_ID)) return 'role-lost';
    return undefined;
  }
}
