/**
 * Mints Entra-ID-shaped access tokens for local development, signed with the
 * local issuer's persisted key (no call to the issuer).
 *
 *   node dist/infra/local/token.js --tenant <tid> --user <name> [--roles Role,...]
 *        [--audience X] [--issuer X] [--expires-in SECONDS]
 *
 * Prints exactly one token (plus a newline) on stdout; errors go to stderr
 * (exit 2 for bad arguments, 1 for anything else).
 * Env: ISSUER_URL (default https://127.0.0.1:${ISSUER_PORT||8443}),
 *      AUTH_AUDIENCE (default api://managed-consul), LOCAL_DIR (key location).
 */
import { createHash, createSign } from 'node:crypto';
import { defaultKeyFile, loadOrCreateSigningKey, signingKeyFromJwk, type SigningJwk, type SigningKey } from './issuer';

export const DEFAULT_AUDIENCE = 'api://managed-consul';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Namespace for derived object ids (fixed; changing it changes every local user's oid). */
const OID_NAMESPACE = '6c3d1f0e-9a4b-5c2d-8e7f-0a1b2c3d4e5f';

export interface MintTokenOptions {
  /** `tid`: the customer's tenant id (a GUID; stored lowercase). */
  tenantId: string;
  /** `name` and `preferred_username`; with the tenant it also determines `oid`. */
  user: string;
  /** `roles` (app roles). Empty or absent: no `roles` claim, as Entra does. */
  roles?: readonly string[];
  /** `aud`, default env AUTH_AUDIENCE or api://managed-consul. */
  audience?: string | readonly string[];
  /** `iss`, default env ISSUER_URL or https://127.0.0.1:${ISSUER_PORT||8443}. */
  issuer?: string;
  /** Lifetime in seconds from now, default 3600; negative gives an already expired token. */
  expiresInSeconds?: number;
  /** Signing key; default: the persisted key at keyFile. */
  key?: SigningKey | SigningJwk;
  /** Key file, default $LOCAL_DIR/issuer/signing-key.json (created if missing). */
  keyFile?: string;
  /** Overrides the `kid` header (tests: a foreign key posing as ours). */
  kid?: string;
  /** Extra or replaced claims, applied last; a value of `undefined` removes the claim (e.g. `{ tid: undefined }`). */
  claims?: Record<string, unknown>;
  /** Current time in ms (default Date.now()). */
  now?: number;
}

export function defaultIssuerUrl(): string {
  return process.env.ISSUER_URL || `https://127.0.0.1:${process.env.ISSUER_PORT || '8443'}`;
}

export function defaultAudience(): string {
  return process.env.AUTH_AUDIENCE || DEFAULT_AUDIENCE;
}

/** Stable `oid` for a local user: a name-based (version 5, SHA-1) UUID of "<tenant>/<user>". */
export function deriveObjectId(tenantId: string, user: string): string {
  const ns = Buffer.from(OID_NAMESPACE.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(`${tenantId.toLowerCase()}/${user}`, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const keyCache = new Map<string, SigningKey>();

function resolveKey(opts: MintTokenOptions): SigningKey {
  if (opts.key) return 'privateKey' in opts.key ? opts.key : signingKeyFromJwk(opts.key);
  const file = opts.keyFile ?? defaultKeyFile();
  let key = keyCache.get(file);
  if (!key) {
    key = loadOrCreateSigningKey(file);
    keyCache.set(file, key);
  }
  return key;
}

/** Signs an RS256 access token shaped like an Entra ID one. Synchronous. */
export function mintToken(opts: MintTokenOptions): string {
  if (!GUID.test(opts.tenantId)) throw new Error('tenantId must be a GUID');
  if (!opts.user) throw new Error('user must not be empty');
  const key = resolveKey(opts);
  const nowS = Math.floor((opts.now ?? Date.now()) / 1000);
  const tid = opts.tenantId.toLowerCase();
  const roles = opts.roles ?? [];
  const exp = nowS + (opts.expiresInSeconds ?? 3600);
  // An already expired token was issued an hour before it expired: nbf < exp, so that
  // validators reject it for its expiry and not for an nbf/exp inconsistency.
  const issuedAt = exp > nowS ? nowS : exp - 3600;
  const payload: Record<string, unknown> = {
    aud: typeof opts.audience === 'string' || opts.audience === undefined ? opts.audience ?? defaultAudience() : [...opts.audience],
    iss: opts.issuer ?? defaultIssuerUrl(),
    iat: issuedAt,
    nbf: issuedAt,
    exp,
    tid,
    oid: deriveObjectId(tid, opts.user),
    sub: deriveObjectId(tid, `sub:${opts.user}`),
    name: opts.user,
    preferred_username: opts.user,
    ver: '2.0',
  };
  if (roles.length > 0) payload.roles = [...roles];
  if (opts.claims) {
    for (const [k, v] of Object.entries(opts.claims)) {
      if (v === undefined) delete payload[k];
      else payload[k] = v;
    }
  }
  const header = { alg: 'RS256', typ: 'JWT', kid: opts.kid ?? key.kid };
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key.privateKey, 'base64url');
  return `${input}.${signature}`;
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');
}

// ---------------------------------------------------------------- CLI

const USAGE =
  'usage: token --tenant <tenant-guid> --user <name> [--roles Role[,Role...]] [--audience X] [--issuer X] [--expires-in SECONDS]';

class UsageError extends Error {}

const FLAGS = new Set(['tenant', 'user', 'roles', 'audience', 'issuer', 'expires-in']);

export function parseCliArgs(argv: readonly string[]): MintTokenOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') throw new UsageError('help');
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!FLAGS.has(name)) throw new UsageError(`unknown option --${name}`);
    if (values.has(name)) throw new UsageError(`--${name} given twice`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      // a value may start with "-" only for --expires-in (negative numbers)
      if (value === undefined || (value.startsWith('--') && name !== 'expires-in')) throw new UsageError(`--${name} needs a value`);
      i++;
    }
    values.set(name, value);
  }
  const tenant = values.get('tenant');
  const user = values.get('user');
  if (!tenant) throw new UsageError('--tenant is required');
  if (!GUID.test(tenant)) throw new UsageError('--tenant must be a GUID (Entra tenant id)');
  if (!user) throw new UsageError('--user is required');

  const opts: MintTokenOptions = { tenantId: tenant, user };
  const roles = values.get('roles');
  if (roles !== undefined) {
    const list = roles.split(',').map((r) => r.trim()).filter((r) => r !== '');
    for (const r of list) if (!/^[A-Za-z0-9._-]+$/.test(r)) throw new UsageError(`invalid role ${JSON.stringify(r)}`);
    opts.roles = list;
  }
  const audience = values.get('audience');
  if (audience !== undefined) {
    if (audience === '') throw new UsageError('--audience must not be empty');
    opts.audience = audience;
  }
  const issuer = values.get('issuer');
  if (issuer !== undefined) {
    if (issuer === '') throw new UsageError('--issuer must not be empty');
    opts.issuer = issuer;
  }
  const exp = values.get('expires-in');
  if (exp !== undefined) {
    if (!/^-?\d+$/.test(exp)) throw new UsageError('--expires-in must be an integer number of seconds');
    opts.expiresInSeconds = Number(exp);
  }
  return opts;
}

function main(): void {
  let opts: MintTokenOptions;
  try {
    opts = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message === 'help') {
        process.stderr.write(`${USAGE}\n`);
        process.exit(0);
      }
      process.stderr.write(`token: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
  try {
    process.stdout.write(`${mintToken(opts)}\n`);
  } catch (err) {
    process.stderr.write(`token: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

if (require.main === module) {
  main();
}
