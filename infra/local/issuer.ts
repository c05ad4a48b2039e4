/**
 * Local development OIDC issuer: stands in for Microsoft Entra ID.
 *
 * An HTTPS oauth2-mock-server whose only signing key is an RS256 key persisted
 * as a private JWK (mode 0600). The token CLI (token.ts) signs with the same
 * file without talking to this server, and passport-azure-ad validates those
 * tokens against this server's discovery document and JWKS.
 *
 * As a program: `node dist/infra/local/issuer.js`
 *   ISSUER_PORT (8443), ISSUER_HOST (127.0.0.1), LOCAL_DIR (<repo>/.local).
 *   TLS from $LOCAL_DIR/tls/{issuer.pem,issuer-key.pem}, key at
 *   $LOCAL_DIR/issuer/signing-key.json, pid at $LOCAL_DIR/run/issuer.pid.
 *   The console's client: CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET (no secret: no sign-in),
 *   CONSOLE_ORIGIN / CONSOLE_REDIRECT_URIS (redirect URIs besides loopback /auth/callback).
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { DEFAULT_TENANTS, createSignIn, type IssuerClient } from './issuer-sign-in';

/** An RS256 private key as persisted on disk (RFC 7517 JWK). */
export interface SigningJwk {
  kty: 'RSA';
  alg: 'RS256';
  use: 'sig';
  kid: string;
  n: string;
  e: string;
  d: string;
  p: string;
  q: string;
  dp: string;
  dq: string;
  qi: string;
}

/** A loaded signing key: the JWK (for the issuer's keystore) and a Node KeyObject (for signing). */
export interface SigningKey {
  readonly kid: string;
  readonly jwk: Readonly<SigningJwk>;
  readonly privateKey: KeyObject;
}

export interface IssuerOptions {
  /** TCP port; 0 picks a free one (the actual port is in the returned url). */
  port: number;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** Directory holding issuer.pem and issuer-key.pem. */
  tlsDir: string;
  /** Path of the persisted private JWK (created if missing). */
  keyFile: string;
  /** Confidential clients that may sign users in (the console). None: the sign-in page refuses every application. */
  clients?: readonly IssuerClient[];
  /** `aud` of the access tokens it issues (default AUTH_AUDIENCE or api://managed-consul). */
  apiAudience?: string;
  /** Tenants offered on the sign-in page. */
  tenants?: readonly { id: string; label: string }[];
}

export interface RunningIssuer {
  /** Issuer URL, e.g. https://127.0.0.1:8443 (no trailing slash); the `iss` of its tokens. */
  url: string;
  stop(): Promise<void>;
}

/** Repository root: the nearest ancestor of this file holding package.json (works from dist/ and from source). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** $LOCAL_DIR, default <repo>/.local. */
export function localDir(): string {
  return process.env.LOCAL_DIR || path.join(repoRoot(), '.local');
}

/** Default key file: $LOCAL_DIR/issuer/signing-key.json. */
export function defaultKeyFile(): string {
  return path.join(localDir(), 'issuer', 'signing-key.json');
}

/** RFC 7638 JWK thumbprint of an RSA public key, used as the kid. */
function rsaThumbprint(n: string, e: string): string {
  return createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url');
}

const PRIVATE_FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;

function parseSigningJwk(text: string, file: string): SigningJwk {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`signing key ${file} is not valid JSON`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.kty !== 'RSA' || o.alg !== 'RS256' || typeof o.kid !== 'string' || o.kid === '') {
    throw new Error(`signing key ${file} is not an RS256 RSA JWK with a kid`);
  }
  for (const f of PRIVATE_FIELDS) {
    if (typeof o[f] !== 'string' || o[f] === '') throw new Error(`signing key ${file} lacks the private field "${f}"`);
  }
  return { ...(o as unknown as SigningJwk), use: 'sig' };
}

function toSigningKey(jwk: SigningJwk): SigningKey {
  const privateKey = createPrivateKey({ key: { ...jwk }, format: 'jwk' });
  return { kid: jwk.kid, jwk: Object.freeze({ ...jwk }), privateKey };
}

/** Generates a fresh RS256 key (2048-bit) as a private JWK. Exported for tests (a "foreign" key). */
export function generateSigningJwk(kid?: string): SigningJwk {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const j = privateKey.export({ format: 'jwk' });
  const jwk: SigningJwk = {
    kty: 'RSA',
    alg: 'RS256',
    use: 'sig',
    kid: kid ?? rsaThumbprint(j.n as string, j.e as string),
    n: j.n as string,
    e: j.e as string,
    d: j.d as string,
    p: j.p as string,
    q: j.q as string,
    dp: j.dp as string,
    dq: j.dq as string,
    qi: j.qi as string,
  };
  return jwk;
}

/** Makes a SigningKey from a JWK held in memory (no file). */
export function signingKeyFromJwk(jwk: SigningJwk): SigningKey {
  return toSigningKey(parseSigningJwk(JSON.stringify(jwk), '<memory>'));
}

/**
 * Loads the persisted signing key, creating it (mode 0600) if the file does not exist.
 * Creation is race-free: the key is written to a temporary file and hard-linked into
 * place, so when the issuer and the token CLI start together exactly one key wins.
 */
export function loadOrCreateSigningKey(keyFile: string): SigningKey {
  try {
    return loadExisting(keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
  const jwk = generateSigningJwk();
  const tmp = `${keyFile}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(jwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // someone else created it first: use theirs
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return loadExisting(keyFile);
}

function loadExisting(keyFile: string): SigningKey {
  const text = fs.readFileSync(keyFile, 'utf8');
  const st = fs.statSync(keyFile);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(keyFile, 0o600); // private key: owner only
  return toSigningKey(parseSigningJwk(text, keyFile));
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * Starts the HTTPS development issuer. Its discovery document is at
 * `<url>/.well-known/openid-configuration`, its JWKS at `<url>/jwks` (oauth2-mock-server's),
 * its sign-in page at `<url>/authorize` and its token endpoint at `<url>/token` (issuer-sign-in.ts).
 */
export async function startIssuer(opts: IssuerOptions): Promise<RunningIssuer> {
  const host = opts.host ?? '127.0.0.1';
  const certFile = path.join(opts.tlsDir, 'issuer.pem');
  const tlsKeyFile = path.join(opts.tlsDir, 'issuer-key.pem');
  for (const f of [certFile, tlsKeyFile]) {
    if (!fs.existsSync(f)) throw new Error(`missing TLS file ${f} (create the local CA and issuer certificate first)`);
  }
  const key = loadOrCreateSigningKey(opts.keyFile);

  const { HttpServer, OAuth2Issuer, OAuth2Service } = await import('oauth2-mock-server');
  const mockIssuer = new OAuth2Issuer();
  await mockIssuer.keys.add({ ...key.jwk });
  const mock = new OAuth2Service(mockIssuer);
  let url = '';
  const signIn = createSignIn({ issuerUrl: () => url, key, clients: opts.clients ?? [], apiAudience: opts.apiAudience, tenants: opts.tenants });
  const server = new HttpServer(
    (req, res) => {
      if (signIn(req, res)) return;
      if ((req.url ?? '').split('?')[0] === '/.well-known/openid-configuration' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discoveryDocument(url)));
        return;
      }
      mock.requestHandler(req, res); // the JWKS (and the mock's other endpoints)
    },
    { key: fs.readFileSync(tlsKeyFile), cert: fs.readFileSync(certFile) },
  );
  await server.start(opts.port, host);
  url = `https://${urlHost(host)}:${server.address().port}`;
  mockIssuer.url = url; // oauth2-mock-server would say "localhost"; we want the exact issuer string

  let stopped: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopped ??= server.listening ? server.stop() : Promise.resolve();
      return stopped;
    },
  };
}

/** What Entra ID's discovery document says, for what this issuer does. */
function discoveryDocument(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'tid', 'oid', 'name', 'preferred_username', 'roles'],
  };
}

/** The console's client registration, from CONSOLE_CLIENT_ID / CONSOLE_CLIENT_SECRET (and CONSOLE_REDIRECT_URIS). */
export function clientsFromEnv(env: NodeJS.ProcessEnv = process.env): IssuerClient[] {
  const secret = env.CONSOLE_CLIENT_SECRET;
  if (!secret) return [];
  const redirectUris = (env.CONSOLE_REDIRECT_URIS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (env.CONSOLE_ORIGIN) redirectUris.push(`${env.CONSOLE_ORIGIN}/auth/callback`);
  return [{ clientId: env.CONSOLE_CLIENT_ID || 'managed-consul-console', clientSecret: secret, redirectUris }];
}

/** Tenants offered on the sign-in page: two customers and, when set, the operator's own (OPERATOR_TENANT_ID). */
export function tenantsFromEnv(env: NodeJS.ProcessEnv = process.env): { id: string; label: string }[] {
  const operator = env.OPERATOR_TENANT_ID;
  return operator ? [...DEFAULT_TENANTS, { id: operator.toLowerCase(), label: 'Operator (Platform.SRE counts here)' }] : [...DEFAULT_TENANTS];
}

async function main(): Promise<void> {
  const portText = process.env.ISSUER_PORT || '8443';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`issuer: invalid ISSUER_PORT ${JSON.stringify(portText)}`);
    process.exit(2);
  }
  const dir = localDir();
  const pidFile = path.join(dir, 'run', `${process.env.PID_NAME || 'issuer'}.pid`);
  let issuer: RunningIssuer;
  try {
    issuer = await startIssuer({
      port,
      host: process.env.ISSUER_HOST || '127.0.0.1',
      tlsDir: path.join(dir, 'tls'),
      keyFile: path.join(dir, 'issuer', 'signing-key.json'),
      clients: clientsFromEnv(),
      tenants: tenantsFromEnv(),
    });
  } catch (err) {
    console.error(`issuer: failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  fs.mkdirSync(path.dirname(pidFile), { recursive: true });
  fs.writeFileSync(pidFile, `${process.pid}\n`);
  console.log(`issuer listening on ${issuer.url} (pid ${process.pid})`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    // keep-alive clients may hold sockets open: do not wait forever
    setTimeout(() => process.exit(0), 3000).unref();
    issuer
      .stop()
      .catch((err: unknown) => console.error(`issuer: stop failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        try {
          if (fs.readFileSync(pidFile, 'utf8').trim() === String(process.pid)) fs.rmSync(pidFile, { force: true });
        } catch {
          /* already gone */
        }
        console.log(`issuer stopped (${signal})`);
        process.exit(0);
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (require.main === module) {
  void main();
}
