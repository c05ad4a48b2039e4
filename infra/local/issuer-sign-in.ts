/**
 * The local issuer's sign-in, standing in for Entra ID's: an authorization endpoint with a real
 * sign-in page (pick a test user, a tenant and app roles), and a token endpoint that does what
 * Entra ID's does for a confidential client using the authorization code flow:
 * - the client authenticates with its secret (client_secret_post or client_secret_basic);
 * - a code is used once, within a minute, by the client it was issued to, with the same redirect URI;
 * - PKCE S256 is required: the code_verifier must hash to the code_challenge of the authorization request;
 * - the access token is the API's (audience AUTH_AUDIENCE, tid, oid, name, roles), the ID token
 *   the client's (audience client id, the request's nonce): both signed with the issuer's key,
 *   so the API's BearerAuthenticator accepts them.
 * Authorization requests and codes live in memory (an issuer restart forgets sign-ins in flight).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SigningKey } from './issuer';
import { defaultAudience, mintToken } from './token';

export interface IssuerClient {
  clientId: string;
  clientSecret: string;
  /** Redirect URIs registered besides the local console's (http(s)://{127.0.0.1|localhost|[::1]}[:port]/auth/callback). */
  redirectUris?: readonly string[];
}

export interface SignInOptions {
  issuerUrl: () => string;
  key: SigningKey;
  clients: readonly IssuerClient[];
  /** `aud` of access tokens (default AUTH_AUDIENCE or api://managed-consul). */
  apiAudience?: string;
  /** Lifetime of the tokens, seconds (default 3600). */
  tokenLifetimeS?: number;
  /** Tenants offered on the sign-in page (any GUID may be typed). */
  tenants?: readonly { id: string; label: string }[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLE = /^[A-Za-z0-9._-]{1,64}$/;
const KNOWN_ROLES = ['Clusters.Read', 'Clusters.ReadWrite', 'Platform.SRE'] as const;
const USERS = ['alice@contoso.example', 'bob@contoso.example', 'carol@fabrikam.example', 'sre@operator.example'];
const REQUEST_TTL_MS = 10 * 60_000;
const CODE_TTL_MS = 60_000;
const MAX_BODY = 64 * 1024;

export const DEFAULT_TENANTS = [
  { id: '11111111-1111-1111-1111-111111111111', label: 'Contoso (customer)' },
  { id: '22222222-2222-4222-8222-222222222222', label: 'Fabrikam (customer)' },
];

interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  state: string | undefined;
  nonce: string | undefined;
  scope: string;
  codeChallenge: string;
  expiresAt: number;
}

interface IssuedCode extends Omit<AuthorizationRequest, 'state'> {
  user: string;
  tenantId: string;
  roles: string[];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function isLocalCallback(uri: string): boolean {
  try {
    const u = new URL(uri);
    return (u.protocol === 'http:' || u.protocol === 'https:') && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && u.pathname === '/auth/callback' && !u.search && !u.hash;
  } catch {
    return false;
  }
}

function prune<T extends { expiresAt: number }>(m: Map<string, T>): void {
  const now = Date.now();
  for (const [k, v] of m) if (v.expiresAt <= now) m.delete(k);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache', ...extra }).end(JSON.stringify(body));
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res
    .writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:" })
    .end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - local identity provider</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;background:#fff;line-height:1.5}
label{display:block;font-weight:600;margin-top:1rem}input[type=text]{width:100%;padding:.4rem;font-size:1rem;border:1px solid #555;border-radius:3px}
fieldset{margin-top:1rem;border:1px solid #555;border-radius:3px}fieldset label{font-weight:400;display:inline;margin:0 0 0 .3rem}
button{margin-top:1.5rem;margin-right:.5rem;padding:.5rem 1.2rem;font-size:1rem;border-radius:3px;border:1px solid #0b5cad}
button.primary{background:#0b5cad;color:#fff}button:focus,input:focus{outline:3px solid #0b5cad;outline-offset:2px}
.hint{color:#444;font-size:.9rem;margin:.2rem 0 0}</style></head>
<body><main>${body}</main></body></html>`);
}

/** The authorization and token endpoints of the local issuer. Returns whether it handled the request. */
export function createSignIn(opts: SignInOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const requests = new Map<string, AuthorizationRequest>();
  const codes = new Map<string, IssuedCode>();
  const tenants = opts.tenants ?? DEFAULT_TENANTS;
  const lifetime = opts.tokenLifetimeS ?? 3600;

  const clientById = (id: unknown) => (typeof id === 'string' ? opts.clients.find((c) => c.clientId === id) : undefined);
  const redirectAllowed = (client: IssuerClient, uri: string) => isLocalCallback(uri) || (client.redirectUris ?? []).includes(uri);

  /** Back to the client with an OAuth error (only once the redirect URI is known to be the client's). */
  const redirectError = (res: ServerResponse, r: Pick<AuthorizationRequest, 'redirectUri' | 'state'>, error: string, description: string) => {
    const url = new URL(r.redirectUri);
    url.searchParams.set('error', error);
    url.searchParams.set('error_description', description);
    if (r.state !== undefined) url.searchParams.set('state', r.state);
    res.writeHead(302, { location: url.toString(), 'cache-control': 'no-store' }).end();
  };

  function authorizeGet(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    const client = clientById(q.get('client_id'));
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!client) return page(res, 400, 'Unknown application', `<h1>Unknown application</h1><p>No application with client id <code>${escapeHtml(q.get('client_id') ?? '')}</code> is registered with this identity provider (it knows ${opts.clients.map((c) => `<code>${escapeHtml(c.clientId)}</code>`).join(', ') || 'none: set CONSOLE_CLIENT_ID and CONSOLE_CLIENT_SECRET'}).</p>`);
    if (!redirectAllowed(client, redirectUri)) return page(res, 400, 'Redirect URI not registered', `<h1>Redirect URI not registered</h1><p>The application asked to return to <code>${escapeHtml(redirectUri)}</code>, which is not one of its redirect URIs.</p>`);
    const state = q.get('state') ?? undefined;
    const base = { redirectUri, state };
    if (q.get('response_type') !== 'code') return redirectError(res, base, 'unsupported_response_type', 'only response_type=code is supported');
    const challenge = q.get('code_challenge');
    if (!challenge || !/^[A-Za-z0-9_-]{43}$/.test(challenge) || q.get('code_challenge_method') !== 'S256') {
      return redirectError(res, base, 'invalid_request', 'PKCE is required: code_challenge (S256, 43 base64url characters) and code_challenge_method=S256');
    }
    const scope = q.get('scope') ?? '';
    if (!scope.split(' ').includes('openid')) return redirectError(res, base, 'invalid_scope', 'the scope must include openid');
    prune(requests);
    const id = randomBytes(24).toString('base64url');
    requests.set(id, { clientId: client.clientId, redirectUri, state, nonce: q.get('nonce') ?? undefined, scope, codeChallenge: challenge, expiresAt: Date.now() + REQUEST_TTL_MS });
    const tenantOptions = tenants.map((t) => `<option value="${escapeHtml(t.id)}">${escapeHtml(t.label)}</option>`).join('');
    const userOptions = USERS.map((u) => `<option value="${escapeHtml(u)}"></option>`).join('');
    const roleBoxes = KNOWN_ROLES.map((r, i) => `<div><input type="checkbox" id="role-${i}" name="role" value="${r}"${r === 'Clusters.ReadWrite' ? ' checked' : ''}><label for="role-${i}">${r}</label></div>`).join('');
    return page(res, 200, 'Sign in', `<h1>Sign in</h1>
<p>Local identity provider (stands in for Microsoft Entra ID). Signing in to <strong>${escapeHtml(client.clientId)}</strong>.</p>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="${id}">
<label for="user">User</label>
<input type="text" id="user" name="user" list="users" value="${escapeHtml(USERS[0]!)}" required maxlength="128" autocomplete="username" aria-describedby="user-hint">
<p class="hint" id="user-hint">Any name; the same name in the same tenant is always the same user (object id).</p>
<datalist id="users">${userOptions}</datalist>
<label for="tenant">Tenant</label>
<input type="text" id="tenant" name="tenant" list="tenants" value="${escapeHtml(tenants[0]?.id ?? '')}" required pattern="[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" aria-describedby="tenant-hint">
<p class="hint" id="tenant-hint">A tenant id (GUID). Offered: ${tenants.map((t) => `${escapeHtml(t.label)} <code>${escapeHtml(t.id)}</code>`).join(', ')}.</p>
<datalist id="tenants">${tenantOptions}</datalist>
<fieldset><legend>Roles</legend>${roleBoxes}</fieldset>
<button type="submit" name="action" value="sign-in" class="primary">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>`);
  }

  async function authorizePost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    const id = form.get('request') ?? '';
    prune(requests);
    const r = requests.get(id);
    if (!r) return page(res, 400, 'Sign-in expired', '<h1>This sign-in has expired</h1><p>Go back to the application and sign in again.</p>');
    requests.delete(id);
    if (form.get('action') === 'cancel') return redirectError(res, r, 'access_denied', 'the user cancelled the sign-in');
    const user = (form.get('user') ?? '').trim();
    const tenantId = (form.get('tenant') ?? '').trim().toLowerCase();
    const roles = form.getAll('role').filter((x) => x !== '');
    if (!user || user.length > 128 || !GUID.test(tenantId) || roles.some((x) => !ROLE.test(x))) {
      return redirectError(res, r, 'invalid_request', 'user (1-128 characters), tenant (a GUID) and roles (names) are required');
    }
    prune(codes);
    const code = randomBytes(32).toString('base64url');
    codes.set(code, { ...r, expiresAt: Date.now() + CODE_TTL_MS, user, tenantId, roles });
    const url = new URL(r.redirectUri);
    url.searchParams.set('code', code);
    if (r.state !== undefined) url.searchParams.set('state', r.state);
    res.writeHead(302, { location: url.toString(), 'cache-control': 'no-store' }).end();
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      secret = decodeURIComponent(rest.join(':'));
    }
    const client = clientById(clientId);
    if (!client || secret === undefined || !sameSecret(secret, client.clientSecret)) {
      return json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed (client id and secret)' }, { 'www-authenticate': 'Basic realm="token"' });
    }
    if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type', error_description: 'only authorization_code is supported' });
    const code = form.get('code') ?? '';
    const issued = codes.get(code);
    codes.delete(code); // a code is used once, whatever the outcome
    if (!issued || issued.expiresAt <= Date.now() || issued.clientId !== client.clientId) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'the authorization code is unknown, expired, already used, or not this client\'s' });
    }
    if (form.get('redirect_uri') !== issued.redirectUri) return json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri differs from the authorization request\'s' });
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || !sameSecret(challenge, issued.codeChallenge)) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed: the code_verifier does not match the code_challenge' });
    }
    const common = { tenantId: issued.tenantId, user: issued.user, roles: issued.roles, issuer: opts.issuerUrl(), key: opts.key, expiresInSeconds: lifetime };
    json(res, 200, {
      token_type: 'Bearer',
      expires_in: lifetime,
      scope: issued.scope,
      access_token: mintToken({ ...common, audience: opts.apiAudience ?? defaultAudience(), claims: { scp: 'user_impersonation', azp: client.clientId } }),
      id_token: mintToken({ ...common, audience: client.clientId, claims: issued.nonce === undefined ? {} : { nonce: issued.nonce } }),
    });
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'https://issuer.invalid');
    const fail = (e: unknown) => {
      if (!res.headersSent) json(res, 400, { error: 'invalid_request', error_description: e instanceof Error ? e.message : 'bad request' });
    };
    if (url.pathname === '/authorize' && req.method === 'GET') {
      authorizeGet(url, res);
      return true;
    }
    if (url.pathname === '/authorize' && req.method === 'POST') {
      authorizePost(req, res).catch(fail);
      return true;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      token(req, res).catch(fail);
      return true;
    }
    return false;
  };
}
