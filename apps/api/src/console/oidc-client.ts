import * as https from 'node:https';
import { getJson } from '../auth/bearer-authenticator';

/**
 * The console's side of OpenID Connect against the configured issuer (Entra ID, or the local
 * issuer): its endpoints from the discovery document, and the server-side code exchange of a
 * confidential client (client_secret_post, with the PKCE code_verifier).
 */

export interface IssuerEndpoints {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

export interface TokenResponse {
  accessToken: string;
  idToken: string;
  /** Seconds, as the issuer said (undefined if it did not). */
  expiresIn: number | undefined;
}

/** The issuer refused the exchange (an OAuth error answer: invalid_grant, invalid_client, ...). Safe to show: it names the error, never a secret. */
export class IssuerRefusedError extends Error {
  constructor(readonly error: string, readonly description: string | undefined) {
    super(`the identity provider refused the sign-in: ${error}${description ? ` (${description})` : ''}`);
    this.name = 'IssuerRefusedError';
  }
}

/** The issuer could not be reached or answered something that is not OAuth (5xx, not JSON, timeout). */
export class IssuerUnreachableError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`the identity provider cannot be reached: ${reason}`, options);
    this.name = 'IssuerUnreachableError';
  }
}

const DISCOVERY_TTL_MS = 30 * 60_000;
const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;

/** What an error_description may show: printable ASCII, short. */
function safeText(v: unknown, max = 300): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const clean = v.replace(/[^\x20-\x7e]/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export class OidcClient {
  private endpoints: { value: IssuerEndpoints; until: number } | undefined;

  constructor(private readonly metadataUrl: string, private readonly timeoutMs = 10_000) {}

  async discover(): Promise<IssuerEndpoints> {
    if (this.endpoints && Date.now() < this.endpoints.until) return this.endpoints.value;
    let doc: Record<string, unknown>;
    try {
      doc = (await getJson(this.metadataUrl, this.timeoutMs)) as Record<string, unknown>;
    } catch (e) {
      throw new IssuerUnreachableError((e as Error).message, { cause: e });
    }
    const { issuer, authorization_endpoint: authorizationEndpoint, token_endpoint: tokenEndpoint } = doc ?? {};
    if (typeof issuer !== 'string' || typeof authorizationEndpoint !== 'string' || typeof tokenEndpoint !== 'string') {
      throw new IssuerUnreachableError('the discovery document lacks issuer, authorization_endpoint or token_endpoint');
    }
    for (const u of [authorizationEndpoint, tokenEndpoint]) {
      if (!u.startsWith('https://')) throw new IssuerUnreachableError('the issuer\'s endpoints must be https');
    }
    const value = { issuer, authorizationEndpoint, tokenEndpoint };
    this.endpoints = { value, until: Date.now() + DISCOVERY_TTL_MS };
    return value;
  }

  /** Exchanges an authorization code at the token endpoint (RFC 6749 4.1.3, RFC 7636 4.5). */
  async exchangeCode(p: { code: string; codeVerifier: string; redirectUri: string; clientId: string; clientSecret: string }): Promise<TokenResponse> {
    const { tokenEndpoint } = await this.discover();
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: p.code,
      redirect_uri: p.redirectUri,
      code_verifier: p.codeVerifier,
      client_id: p.clientId,
      client_secret: p.clientSecret,
    }).toString();
    const { status, body } = await this.post(tokenEndpoint, form);
    let json: Record<string, unknown> | undefined;
    try {
      const v: unknown = JSON.parse(body);
      json = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      json = undefined;
    }
    if (status >= 400 && status < 500 && json && typeof json.error === 'string') {
      throw new IssuerRefusedError(safeText(json.error, 64) ?? 'error', safeText(json.error_description));
    }
    if (status !== 200 || !json) throw new IssuerUnreachableError(`the token endpoint answered HTTP ${status}${json ? '' : ' without JSON'}`);
    const { access_token: accessToken, id_token: idToken, expires_in: expiresIn } = json;
    if (typeof accessToken !== 'string' || typeof idToken !== 'string') {
      throw new IssuerRefusedError('invalid_response', 'the token endpoint did not return both an access token and an ID token (ask for the openid scope)');
    }
    const seconds = typeof expiresIn === 'number' ? expiresIn : typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) ? Number(expiresIn) : undefined;
    return { accessToken, idToken, expiresIn: seconds };
  }

  private post(url: string, form: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method: 'POST',
          signal: AbortSignal.timeout(this.timeoutMs),
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'content-length': Buffer.byteLength(form) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_TOKEN_RESPONSE_BYTES) req.destroy(new Error('the token response is too large'));
            else chunks.push(c);
          });
          res.on('error', (e) => reject(new IssuerUnreachableError(e.message, { cause: e })));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      // The request carries the client secret and the code: errors name neither.
      req.on('error', (e) => reject(new IssuerUnreachableError(e.name === 'AbortError' ? 'timed out' : (e as NodeJS.ErrnoException).code ?? e.message, { cause: e })));
      req.end(form);
    });
  }
}
