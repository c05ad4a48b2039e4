/**
 * Validates Microsoft Entra ID access tokens (or the local development
 * issuer's) with passport-azure-ad's BearerStrategy, driven directly (no
 * passport middleware), and maps them to a Principal.
 *
 * Token checks (signature, alg, iss, aud, exp, nbf) are the strategy's. The
 * discovery document and JWKS are loaded by MetadataSource below and handed to
 * the strategy through its `loadMetadata` hook (set per request, on the
 * per-request object), because the library's own loader, measured in 4.3.5:
 * - caches in a module-wide cache for 30 min (no refetch per request: fine), but
 * - has no timeout: a hanging IdP stalls every request, forever;
 * - JSON.parse()s a 200 response inside a stream handler: a discovery document
 *   that is not JSON (proxy error page) is an uncaughtException (process exit);
 * - on a non-200 JWKS answer calls back twice, the second time caching metadata
 *   without keys: one transient JWKS error means 30 min of 401 for every token;
 * - never refetches on an unknown kid (signing key rollover) before the TTL;
 * - rebuilds a PEM from the JWK and re-parses it on every request (the largest
 *   cost per request); MetadataSource hands over cached KeyObjects instead.
 *
 * Log noise: its bunyan loggers write to stdout AND stderr (so an error line
 * shows twice). With loggingLevel 'error' the only error-level line a bearer
 * request can produce is jws.decode throwing on a token whose payload is not
 * JSON: logged with its stack, and Node's JSON error message quotes part of the
 * token. Such tokens are rejected before the strategy sees them.
 *
 * The strategy also accepts `req.body.access_token`; it is handed a request
 * holding only our normalised Authorization header, so only the header counts.
 */

import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import * as https from 'node:https';

// passport-azure-ad ships no type declarations; the shapes used are declared below.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { BearerStrategy } = require('passport-azure-ad') as { BearerStrategy: BearerStrategyConstructor };

export interface Principal {
  /** `tid`, lowercase GUID. */
  tenantId: string;
  /** `oid`, lowercase GUID. */
  userId: string;
  /** `name`, else `preferred_username`, else the oid. */
  name: string;
  /** `roles` (app roles), e.g. Clusters.Read, Clusters.ReadWrite, Platform.SRE. */
  roles: ReadonlySet<string>;
}

export interface BearerAuthenticatorOptions {
  /** https URL of the OpenID discovery document, e.g.
   *  https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration
   *  or https://127.0.0.1:8443/.well-known/openid-configuration. */
  identityMetadata: string;
  /** Accepted `iss` value(s). */
  issuer: string | string[];
  /** The API's app id URI (`aud` of v1 tokens), e.g. api://managed-consul. */
  audience: string;
  /** The API's application (client) id (`aud` of v2 tokens); also accepted as audience. */
  clientId: string;
  /** Upper bound for one authenticate() call and for each metadata/JWKS fetch, ms (default 10000). */
  timeoutMs?: number;
  /** Metadata cache tuning (defaults suit production; tests shorten them). */
  metadataCache?: MetadataCacheOptions;
  /**
   * Verified tokens remembered (by the SHA-256 of their text, never the token itself) until their `exp`, so a client that sends
   * the same token again is not verified again (the RS256 check is most of an authenticated
   * read's CPU). At most this many at once, oldest forgotten first; 0 turns it off (default 10000).
   */
  verifiedTokenCacheSize?: number;
  /** The clock the remembered tokens' expiry is checked against, ms (tests). */
  now?: () => number;
}

export interface MetadataCacheOptions {
  /** Refetch discovery + JWKS after this long, ms (default 30 min, as passport-azure-ad). */
  ttlMs?: number;
  /** After a failed fetch, wait this long before trying again, ms (default 5 s); meanwhile the last good copy is used, or requests fail fast with 503. */
  retryMs?: number;
  /** A token whose kid is not in the JWKS triggers a refetch at most this often, ms (default 5 min). */
  unknownKeyRefreshMs?: number;
  /** A stale copy is still used while refetching fails, for at most this long after its TTL, ms (default 24 h). */
  staleIfErrorMs?: number;
}

/**
 * The request was not authenticated: answer 401. `reason` is short, safe to show, and one of:
 * 'missing bearer token', 'malformed authorization header', 'invalid token'
 * (signature, alg, kid, iss, aud, exp, nbf: not told apart, passport-azure-ad with
 * loggingNoPII does not say), 'token has no tenant id', 'token has no object id'.
 */
export class AuthenticationError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'AuthenticationError';
    this.reason = reason;
  }
}

/** The token could not be checked (metadata/JWKS unreachable or too slow): answer 503, not 401. */
export class IdentityProviderUnavailableError extends Error {
  readonly reason = 'identity provider unavailable';
  constructor(options?: { cause?: unknown }) {
    super('identity provider unavailable', options);
    this.name = 'IdentityProviderUnavailableError';
  }
}

export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
}

// ------------------------------------------------------------ passport-azure-ad typing (it ships none)

type VerifyDone = (err: unknown, user?: unknown, info?: unknown) => void;
interface StrategyInstance {
  authenticate(req: unknown, options: Record<string, unknown>): void;
}
type BearerStrategyConstructor = new (
  options: Record<string, unknown>,
  verify: (claims: Record<string, unknown>, done: VerifyDone) => void,
) => StrategyInstance;
/** What the strategy reads from the metadata it is given (see bearerstrategy.js: authenticate, jwtVerify). */
interface StrategyMetadata {
  oidc: { issuer: string; algorithms: string[] };
  /** Named for the library; returns a KeyObject, which jws/jwa accept as a verification key. */
  generateOidcPEM(kidOrX5t: string): KeyObject;
}
type MetadataCallback = (err: Error | null, metadata?: StrategyMetadata) => void;
interface StrategyAttempt extends StrategyInstance {
  loadMetadata(params: unknown, next: MetadataCallback): void;
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(err: unknown): void;
  pass(): void;
  redirect(url: string, status?: number): void;
}

// ------------------------------------------------------------ helpers

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BEARER = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i;
/** Entra tokens are a few KB; Node's default header limit is 16 KB in total. */
const MAX_TOKEN_LENGTH = 16 * 1024;

function headerValue(headers: AuthRequest['headers'], name: string): string | string[] | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The JOSE header of a compact JWS whose header and payload are JSON objects
 * (what jws.decode handles without throwing), else undefined.
 */
function wellFormedJwtHeader(token: string): Record<string, unknown> | undefined {
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return undefined;
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  const header = parseJsonObject(token.slice(0, dot1));
  return header && parseJsonObject(token.slice(dot1 + 1, dot2)) ? header : undefined;
}

function stringClaim(claims: Record<string, unknown>, name: string): string | undefined {
  const v = claims[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function toPrincipal(claims: Record<string, unknown>): Principal {
  const tid = stringClaim(claims, 'tid');
  if (tid === undefined || !GUID.test(tid)) throw new AuthenticationError('token has no tenant id');
  const oid = stringClaim(claims, 'oid');
  if (oid === undefined || !GUID.test(oid)) throw new AuthenticationError('token has no object id');
  const name = stringClaim(claims, 'name') ?? stringClaim(claims, 'preferred_username') ?? oid.toLowerCase();
  const roles = new Set<string>();
  if (Array.isArray(claims.roles)) for (const r of claims.roles) if (typeof r === 'string' && r !== '') roles.add(r);
  return { tenantId: tid.toLowerCase(), userId: oid.toLowerCase(), name, roles };
}

// ------------------------------------------------------------ metadata (discovery document + JWKS)

const MAX_METADATA_BYTES = 1024 * 1024;
/** passport-azure-ad turns JWKs into RSA public keys only, so only RSA algorithms can verify. */
const RSA_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512']);

/** GET of a JSON document over https only, with a timeout and a size limit (also the console's OpenID discovery). */
export function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new Error('invalid metadata URL'));
      return;
    }
    if (u.protocol !== 'https:') {
      reject(new Error('metadata URLs must be https'));
      return;
    }
    const req = https.get(u, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_METADATA_BYTES) req.destroy(new Error(`${u.pathname}: response too large`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`${u.pathname}: HTTP ${String(res.statusCode)}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error(`${u.pathname}: response is not JSON`));
        }
      });
    });
    req.on('error', reject);
  });
}

class Snapshot implements StrategyMetadata {
  readonly oidc: { issuer: string; algorithms: string[] };
  constructor(
    issuer: string,
    algorithms: string[],
    private readonly keys: ReadonlyMap<string, KeyObject>,
    readonly fetchedAt: number,
    readonly expiresAt: number,
  ) {
    this.oidc = { issuer, algorithms };
  }
  hasKey(id: string): boolean {
    return this.keys.has(id);
  }
  generateOidcPEM(kidOrX5t: string): KeyObject {
    const key = this.keys.get(kidOrX5t);
    if (!key) throw new Error('a key with the specific kid cannot be found');
    return key;
  }
}

/**
 * Discovery document + JWKS for one metadata URL: fetched once and shared by
 * concurrent callers, refreshed after ttlMs or on an unknown key id (rate
 * limited), last good copy kept while the IdP fails, failures rate limited.
 */
class MetadataSource {
  private current: Snapshot | undefined;
  private inflight: Promise<Snapshot> | undefined;
  private lastFailure: { at: number; error: Error } | undefined;
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly unknownKeyRefreshMs: number;
  private readonly staleIfErrorMs: number;

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    tuning: MetadataCacheOptions = {},
  ) {
    this.ttlMs = tuning.ttlMs ?? 30 * 60_000;
    this.retryMs = tuning.retryMs ?? 5_000;
    this.unknownKeyRefreshMs = tuning.unknownKeyRefreshMs ?? 5 * 60_000;
    this.staleIfErrorMs = tuning.staleIfErrorMs ?? 24 * 60 * 60_000;
  }

  /** The cached snapshot if it can be used for this key id without a fetch. */
  peek(keyId: string | undefined): Snapshot | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    const now = Date.now();
    if (now >= cur.expiresAt) return undefined;
    if (keyId !== undefined && !cur.hasKey(keyId) && now - cur.fetchedAt >= this.unknownKeyRefreshMs) return undefined;
    return cur;
  }

  async get(keyId: string | undefined): Promise<Snapshot> {
    const fresh = this.peek(keyId);
    if (fresh) return fresh;
    const cur = this.current;
    const usableStale = cur && Date.now() < cur.expiresAt + this.staleIfErrorMs ? cur : undefined;
    const failure = this.lastFailure;
    if (failure && Date.now() - failure.at < this.retryMs) {
      if (usableStale) return usableStale;
      throw failure.error;
    }
    try {
      return await this.refresh();
    } catch (err) {
      if (usableStale) return usableStale;
      throw err;
    }
  }

  private refresh(): Promise<Snapshot> {
    this.inflight ??= this.fetchSnapshot().then(
      (snap) => {
        this.current = snap;
        this.lastFailure = undefined;
        this.inflight = undefined;
        return snap;
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        this.lastFailure = { at: Date.now(), error };
        this.inflight = undefined;
        throw error;
      },
    );
    return this.inflight;
  }

  private async fetchSnapshot(): Promise<Snapshot> {
    const doc = (await getJson(this.url, this.timeoutMs)) as Record<string, unknown> | null;
    if (typeof doc !== 'object' || doc === null) throw new Error('discovery document is not an object');
    const issuer = doc.issuer;
    const jwksUri = doc.jwks_uri;
    if (typeof issuer !== 'string' || typeof jwksUri !== 'string') throw new Error('discovery document lacks issuer or jwks_uri');
    const advertised = doc.id_token_signing_alg_values_supported;
    const algorithms = Array.isArray(advertised)
      ? advertised.filter((a): a is string => typeof a === 'string' && RSA_ALGORITHMS.has(a))
      : ['RS256'];
    if (algorithms.length === 0) throw new Error('discovery document advertises no RSA signing algorithm');

    const jwks = (await getJson(jwksUri, this.timeoutMs)) as { keys?: unknown } | null;
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys)) throw new Error('JWKS lacks keys');
    const keys = new Map<string, KeyObject>();
    for (const k of jwks.keys as Record<string, unknown>[]) {
      if (typeof k !== 'object' || k === null || k.kty !== 'RSA' || (k.use !== undefined && k.use !== 'sig')) continue;
      if (typeof k.n !== 'string' || typeof k.e !== 'string') continue;
      let key: KeyObject;
      try {
        key = createPublicKey({ key: { kty: 'RSA', n: k.n, e: k.e }, format: 'jwk' });
      } catch {
        continue;
      }
      // The strategy looks a key up by the token's x5t, else its kid; Entra keys carry both (equal).
      for (const id of [k.kid, k.x5t]) if (typeof id === 'string' && id !== '') keys.set(id, key);
    }
    if (keys.size === 0) throw new Error('JWKS holds no usable RSA signing key');
    const now = Date.now();
    return new Snapshot(issuer, algorithms, keys, now, now + this.ttlMs);
  }
}

// ------------------------------------------------------------ the authenticator

type Outcome = { kind: 'success'; claims: Record<string, unknown> } | { kind: 'fail' };

/**
 * Tokens the strategy accepted, keyed by the SHA-256 of their text (the token itself is not
 * kept), each until its `exp` (never longer: a
 * token without a numeric exp is not remembered). Only successes are kept, so a rejected
 * token is checked afresh every time; a remembered one is not re-checked against a newer
 * JWKS (a signing key withdrawn by the IdP stays honoured for the tokens already seen, at most
 * until they expire, as Entra ID's own guidance for access tokens allows).
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { principal: Principal; expiresAtMs: number }>();
  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  static keyOf(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get(key: string): Principal | undefined {
    if (this.maxEntries <= 0) return undefined;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() < e.expiresAtMs) return e.principal;
    this.entries.delete(key);
    return undefined;
  }

  remember(key: string, principal: Principal, claims: Record<string, unknown>): void {
    if (this.maxEntries <= 0 || typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return;
    const expiresAtMs = claims.exp * 1000;
    if (this.now() >= expiresAtMs) return;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { principal, expiresAtMs });
  }

  get size(): number {
    return this.entries.size;
  }
}

export class BearerAuthenticator {
  private readonly strategy: StrategyInstance;
  private readonly metadata: MetadataSource;
  private readonly timeoutMs: number;
  private readonly verified: VerifiedTokens;

  constructor(opts: BearerAuthenticatorOptions) {
    const audience = [...new Set([opts.audience, opts.clientId].filter((a) => a !== ''))];
    const issuer = Array.isArray(opts.issuer) ? [...opts.issuer] : [opts.issuer];
    if (issuer.length === 0 || issuer.some((i) => typeof i !== 'string' || i === '')) {
      throw new Error('BearerAuthenticator: issuer must be a non-empty string or list of strings');
    }
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    // passport-azure-ad mutates its options object: give it a fresh one.
    this.strategy = new BearerStrategy(
      {
        identityMetadata: opts.identityMetadata, // must be https (the strategy throws otherwise)
        clientID: opts.clientId,
        audience,
        // Always explicit: with a /common/ metadata URL the strategy cannot take it from metadata.
        validateIssuer: true,
        issuer,
        passReqToCallback: false,
        allowMultiAudiencesInToken: false,
        isB2C: false,
        loggingLevel: 'error',
        loggingNoPII: true,
      },
      // Accept every token the strategy verified; claims are mapped (and tid enforced) below,
      // so the reason survives (with loggingNoPII the strategy would replace it by "invalid_token").
      (claims, done) => done(null, claims),
    );
    this.metadata = new MetadataSource(opts.identityMetadata, this.timeoutMs, opts.metadataCache);
    this.verified = new VerifiedTokens(opts.verifiedTokenCacheSize ?? 10_000, opts.now ?? Date.now);
  }

  /** How many verified tokens are remembered right now (metrics, tests). */
  get rememberedTokens(): number {
    return this.verified.size;
  }

  /**
   * Authenticates a request by its `Authorization: Bearer <jwt>` header.
   * Rejects with AuthenticationError (401) or IdentityProviderUnavailableError (503).
   */
  authenticate(req: AuthRequest): Promise<Principal> {
    const raw = headerValue(req.headers, 'authorization');
    if (raw === undefined || raw === '') return Promise.reject(new AuthenticationError('missing bearer token'));
    if (typeof raw !== 'string') return Promise.reject(new AuthenticationError('malformed authorization header'));
    const m = BEARER.exec(raw);
    if (!m) return Promise.reject(new AuthenticationError('malformed authorization header'));
    const token = m[1]!;
    const cacheKey = VerifiedTokens.keyOf(token);
    const known = this.verified.get(cacheKey);
    if (known) return Promise.resolve(known);
    const header = wellFormedJwtHeader(token);
    if (!header) return Promise.reject(new AuthenticationError('invalid token'));
    // the key id the strategy will look up: x5t first, then kid
    const keyId = typeof header.x5t === 'string' ? header.x5t : typeof header.kid === 'string' ? header.kid : undefined;

    return this.drive(`Bearer ${token}`, keyId).then((outcome) => {
      if (outcome.kind !== 'success') throw new AuthenticationError('invalid token');
      const principal = toPrincipal(outcome.claims);
      this.verified.remember(cacheKey, principal, outcome.claims);
      return principal;
    });
  }

  /**
   * Fetches the discovery document and JWKS now (call at startup), so the first
   * request does not pay for it and a wrong metadata URL shows up at once.
   * Rejects with IdentityProviderUnavailableError.
   */
  async warmUp(): Promise<void> {
    try {
      await this.metadata.get(undefined);
    } catch (err) {
      throw new IdentityProviderUnavailableError({ cause: err });
    }
  }

  private drive(authorization: string, keyId: string | undefined): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(
        () => settle(() => reject(new IdentityProviderUnavailableError({ cause: new Error('timed out') }))),
        this.timeoutMs,
      );
      timer.unref();
      function settle(f: () => void): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      }

      const attempt = Object.create(this.strategy) as StrategyAttempt;
      attempt.loadMetadata = (_params, next) => {
        const cached = this.metadata.peek(keyId);
        if (cached) {
          next(null, cached);
          return;
        }
        this.metadata
          .get(keyId)
          .then(
            (snap) => next(null, snap),
            (err: unknown) => next(err instanceof Error ? err : new Error(String(err))),
          )
          .catch((err: unknown) => settle(() => reject(err))); // a throw inside the strategy: not a 401
      };
      attempt.success = (user) => settle(() => resolve({ kind: 'success', claims: user as Record<string, unknown> }));
      attempt.fail = (challenge) =>
        settle(() => {
          // The strategy reports a metadata failure as fail(Error); token problems as fail(string).
          if (challenge instanceof Error) reject(new IdentityProviderUnavailableError({ cause: challenge }));
          else resolve({ kind: 'fail' });
        });
      attempt.error = (err) => settle(() => reject(new IdentityProviderUnavailableError({ cause: err })));
      attempt.pass = () => settle(() => resolve({ kind: 'fail' }));
      attempt.redirect = () => settle(() => resolve({ kind: 'fail' }));

      // Only the normalised header: no body (the strategy would also read body.access_token), no query.
      try {
        attempt.authenticate({ headers: { authorization } }, {});
      } catch (err) {
        settle(() => reject(err));
      }
    });
  }
}
