import type { QueryOf, ROUTES } from '../../../../libs/contracts/src';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ConsoleSessionRepository, ConsulUiSessionRepository, ROLES, UnavailableError, ValidationError, type Config, type ConsoleSession,
} from '../../../../libs/core/src';
import { AuthenticationError, IdentityProviderUnavailableError, type BearerAuthenticator, type Principal } from '../auth/bearer-authenticator';
import { missingRole } from '../auth/principal';
import { AUTHENTICATOR, CONFIG, ID_TOKEN_AUTHENTICATOR, OIDC_CLIENT } from '../tokens';
import { UI_SESSION_GATE } from '../consul-ui/consul-ui.tokens';
import type { UiSessionGate } from '../consul-ui/ui-session-gate';
import { bindBrowser, isSameBrowser } from './browser-binding';
import { ConsoleOrigin, LOGIN_COOKIE, principalOf } from './console-sessions';
import { IssuerRefusedError, IssuerUnreachableError, type OidcClient } from './oidc-client';
import { safeReturnTo } from './return-to';
import { csrfTokenFor, hashSecret, newSecret, pkceChallenge } from './session-secret';

/** How long a sign-in may take between /auth/login and /auth/callback. */
const LOGIN_TTL_MS = 10 * 60_000;

export interface SessionView {
  user: { tenantId: string; userId: string; name: string; roles: string[] };
  csrfToken: string;
  expiresAt: string;
  operator: boolean;
}

/** The payload of a JWT whose signature was already verified. */
function claimsOf(jwt: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The console's sign-in: OpenID Connect authorization code flow with PKCE (S256), state and
 * nonce, as a confidential client. The pending login is a database row (single use, 10 min);
 * the code is exchanged server-side; the access token is checked by the same BearerAuthenticator
 * as every bearer request and becomes the session's principal, the ID token (checked the same
 * way, for the console's client id) must carry the login's nonce and the same user. Tokens are
 * not kept: the session holds the principal and an expiry no later than the access token's.
 */
@Injectable()
export class ConsoleAuthService {
  private readonly log = new Logger('console-auth');

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(OIDC_CLIENT) private readonly oidc: OidcClient,
    @Inject(AUTHENTICATOR) private readonly accessTokens: BearerAuthenticator,
    @Inject(ID_TOKEN_AUTHENTICATOR) private readonly idTokens: BearerAuthenticator,
    private readonly repo: ConsoleSessionRepository,
    private readonly origin: ConsoleOrigin,
    private readonly uiSessions: ConsulUiSessionRepository,
    @Inject(UI_SESSION_GATE) private readonly gate: UiSessionGate,
  ) {}

  private clientSecret(): string {
    const secret = this.config.CONSOLE_CLIENT_SECRET;
    if (!secret) {
      throw new UnavailableError('console_not_configured', 'console sign-in is not configured: set CONSOLE_CLIENT_ID and CONSOLE_CLIENT_SECRET (the console\'s app registration); bearer tokens keep working');
    }
    return secret;
  }

  private scopes(): string {
    return this.config.CONSOLE_SCOPES ?? `openid profile ${this.config.AUTH_AUDIENCE.replace(/\/+$/, '')}/.default`;
  }

  /**
   * Starts a sign-in: the pending login is stored, bound to this browser (the login cookie's
   * hash), and the browser goes to the issuer's authorization endpoint with the cookie set.
   */
  async login(rawReturnTo: unknown, cookieHeader: string | string[] | undefined): Promise<{ url: string; setCookie: string }> {
    const returnTo = safeReturnTo(rawReturnTo);
    const browser = bindBrowser(cookieHeader, LOGIN_COOKIE);
    this.clientSecret();
    const endpoints = await this.discover();
    const state = newSecret();
    const nonce = newSecret();
    const codeVerifier = newSecret(); // 43 characters of the unreserved set (RFC 7636 4.1)
    const redirectUri = this.origin.redirectUri;
    await this.repo.createLogin({ stateHash: hashSecret(state), browserHash: browser.hash, codeVerifier, nonce, returnTo, redirectUri, expiresAt: new Date(Date.now() + LOGIN_TTL_MS) });
    const url = new URL(endpoints.authorizationEndpoint);
    for (const [k, v] of Object.entries({
      client_id: this.config.CONSOLE_CLIENT_ID,
      response_type: 'code',
      response_mode: 'query',
      redirect_uri: redirectUri,
      scope: this.scopes(),
      state,
      nonce,
      code_challenge: pkceChallenge(codeVerifier),
      code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    return { url: url.toString(), setCookie: browser.setCookie };
  }

  /**
   * Finishes a sign-in: the session's secret (the cookie's value), the session and where to
   * go. Every refusal is a 400 that says what happened (503 when the issuer cannot be reached).
   * Only the browser that started the sign-in may finish it: a callback URL opened anywhere
   * else is refused before the code is exchanged.
   */
  async callback(query: QueryOf<typeof ROUTES.callback>, cookieHeader: string | string[] | undefined): Promise<{ secret: string; session: ConsoleSession; returnTo: string }> {
    const { error, state, code } = query;
    // The pending login is used up whatever the outcome: a callback is never replayed.
    const taken = state ? await this.repo.takeLogin(hashSecret(state)) : null;
    if (error !== undefined) {
      const description = (query.error_description ?? '').replace(/[^\x20-\x7e]/g, ' ').slice(0, 300);
      const what = error === 'access_denied' ? 'the sign-in was cancelled or refused at the identity provider' : 'the identity provider refused the sign-in';
      throw new ValidationError('sign_in_refused', `${what} (${error.replace(/[^\x20-\x7e]/g, '').slice(0, 64)}${description ? `: ${description}` : ''}); start again from the console`, { error });
    }
    if (!state) throw new ValidationError('invalid_callback', 'the callback has no state; start the sign-in again from the console', { field: 'state' });
    if (!taken) throw new ValidationError('login_not_found', 'this sign-in is unknown or was already used; start again from the console', { field: 'state' });
    if (taken.expired) throw new ValidationError('login_expired', 'this sign-in took longer than 10 minutes; start again from the console', { field: 'state' });
    if (!isSameBrowser(cookieHeader, LOGIN_COOKIE, taken.login.browserHash)) {
      this.log.warn({ msg: 'console sign-in callback from another browser refused' });
      throw new ValidationError('login_other_browser', 'this sign-in was started in another browser (or its cookies were cleared): a sign-in link is never to be followed from a message; start again from the console', { field: 'state' });
    }
    if (!code) throw new ValidationError('invalid_callback', 'the callback has no code; start the sign-in again from the console', { field: 'code' });
    const { login } = taken;

    let tokens;
    try {
      tokens = await this.oidc.exchangeCode({ code, codeVerifier: login.codeVerifier, redirectUri: login.redirectUri, clientId: this.config.CONSOLE_CLIENT_ID, clientSecret: this.clientSecret() });
    } catch (e) {
      if (e instanceof IssuerRefusedError) throw new ValidationError('code_rejected', `${e.message}; start the sign-in again from the console`, { error: e.error });
      if (e instanceof IssuerUnreachableError) throw new UnavailableError('identity_provider_unavailable', `${e.message}; try again shortly`);
      throw e;
    }
    const principal = await this.verify(tokens.accessToken, this.accessTokens, 'access token');
    const idPrincipal = await this.verify(tokens.idToken, this.idTokens, 'ID token');
    const idClaims = claimsOf(tokens.idToken);
    if (idClaims.nonce !== login.nonce) throw new ValidationError('sign_in_failed', 'the ID token does not carry this sign-in\'s nonce; start again from the console');
    if (idPrincipal.tenantId !== principal.tenantId || idPrincipal.userId !== principal.userId) {
      throw new ValidationError('sign_in_failed', 'the ID token and the access token name different users; start again from the console');
    }

    const now = Date.now();
    const exp = claimsOf(tokens.accessToken).exp;
    const limits = [now + this.config.CONSOLE_SESSION_MAX_HOURS * 3600_000];
    if (typeof exp === 'number') limits.push(exp * 1000);
    if (tokens.expiresIn !== undefined) limits.push(now + tokens.expiresIn * 1000);
    const expiresAt = new Date(Math.min(...limits));
    if (expiresAt.getTime() <= now + 60_000) throw new ValidationError('sign_in_failed', 'the access token expires within a minute; start the sign-in again');

    const secret = newSecret();
    const session = await this.repo.createSession({
      tokenHash: hashSecret(secret), tenantId: principal.tenantId, userId: principal.userId, name: principal.name, roles: [...principal.roles], expiresAt,
    });
    // Fewer roles than before: the UI tokens this user holds beyond them go now, not when next used through the proxy.
    const roleLost = await this.uiSessions.markRoleLost(session.tenantId, session.userId);
    if (roleLost.length > 0) await this.gate.revoked(roleLost);
    this.log.log({ msg: 'console sign-in', tenantId: session.tenantId, userId: session.userId, sessionId: session.id, expiresAt: expiresAt.toISOString(), consulUiSessionsRevoked: roleLost.length });
    return { secret, session, returnTo: login.returnTo };
  }

  view(session: ConsoleSession, secret: string): SessionView {
    const principal = principalOf(session);
    return {
      user: { tenantId: session.tenantId, userId: session.userId, name: session.name, roles: [...session.roles] },
      csrfToken: csrfTokenFor(secret),
      expiresAt: session.expiresAt.toISOString(),
      operator: missingRole(principal, [ROLES.sre], this.config.OPERATOR_TENANT_ID) === undefined,
    };
  }

  /**
   * Signs out: the session row goes and, in the same transaction, every Consul UI session it
   * opened is marked revoked (no proxy serves them from then on); the worker deletes their
   * Consul tokens. The caller clears the cookie.
   */
  async logout(secret: string): Promise<ConsoleSession | null> {
    const { session, uiSessionIds } = await this.uiSessions.endConsoleSession(hashSecret(secret));
    if (!session) return null;
    await this.gate.revoked(uiSessionIds);
    this.log.log({ msg: 'console sign-out', tenantId: session.tenantId, userId: session.userId, sessionId: session.id, consulUiSessions: uiSessionIds.length });
    return session;
  }

  private async discover() {
    try {
      return await this.oidc.discover();
    } catch (e) {
      if (e instanceof IssuerUnreachableError) throw new UnavailableError('identity_provider_unavailable', `${e.message}; try again shortly`);
      throw e;
    }
  }

  private async verify(token: string, authenticator: BearerAuthenticator, what: string): Promise<Principal> {
    try {
      return await authenticator.authenticate({ headers: { authorization: `Bearer ${token}` } });
    } catch (e) {
      if (e instanceof AuthenticationError) throw new ValidationError('sign_in_failed', `the identity provider's ${what} was not accepted (${e.reason}); check the console's app registration (audience, issuer)`);
      if (e instanceof IdentityProviderUnavailableError) throw new UnavailableError('identity_provider_unavailable', 'tokens cannot be checked right now; try again shortly');
      throw e;
    }
  }
}
