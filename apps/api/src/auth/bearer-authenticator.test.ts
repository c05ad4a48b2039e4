/**
 * BearerAuthenticator against the local development issuer (HTTPS, started in-process).
 *
 * Run: NODE_EXTRA_CA_CERTS=<repo>/.local/tls/ca.pem node --test dist/apps/api/src/auth/bearer-authenticator.test.js
 *
 * Every rejection case mints a token that differs from the accepted one in
 * exactly one respect, so each assertion fails if that check is removed.
 */
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import * as diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  generateSigningJwk,
  loadOrCreateSigningKey,
  localDir,
  signingKeyFromJwk,
  startIssuer,
  type RunningIssuer,
  type SigningJwk,
  type SigningKey,
} from '../../../../infra/local/issuer';
import { deriveObjectId, mintToken, type MintTokenOptions } from '../../../../infra/local/token';
import { AuthenticationError, BearerAuthenticator, IdentityProviderUnavailableError, type Principal } from './bearer-authenticator';

const TENANT = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const AUDIENCE = 'api://managed-consul';
const TLS_DIR = path.join(localDir(), 'tls');

// Node reads NODE_EXTRA_CA_CERTS only at start-up, so it cannot be set from here: check it holds the local CA.
{
  const caBody = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  const localCa = caBody(fs.readFileSync(path.join(TLS_DIR, 'ca.pem'), 'utf8'));
  if (!extra || !fs.existsSync(extra) || !caBody(fs.readFileSync(extra, 'utf8')).includes(localCa)) {
    throw new Error(`run with NODE_EXTRA_CA_CERTS=${path.join(TLS_DIR, 'ca.pem')} so that Node trusts the HTTPS development issuer`);
  }
}

let workDir: string;
let keyFile: string;
let key: SigningKey;
let issuer: RunningIssuer;
let auth: BearerAuthenticator;

/** Outgoing HTTP(S) requests made by this process (passport-azure-ad's metadata and JWKS fetches). */
const fetches: string[] = [];
const onRequest = (msg: unknown): void => {
  const req = (msg as { request: { getHeader(name: string): unknown; path?: string } }).request;
  fetches.push(`${String(req.getHeader('host'))}${req.path ?? ''}`); // host header: "127.0.0.1:<port>"
};

function metadataUrl(issuerUrl: string): string {
  return `${issuerUrl}/.well-known/openid-configuration`;
}

function mint(over: Partial<MintTokenOptions> = {}): string {
  return mintToken({
    tenantId: TENANT,
    user: 'alice@contoso.example',
    roles: ['Clusters.Read', 'Platform.SRE'],
    issuer: issuer.url,
    audience: AUDIENCE,
    key,
    ...over,
  });
}

function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

async function assertRejects(
  p: Promise<Principal>,
  reason: string,
  token?: string,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AuthenticationError, `expected AuthenticationError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    if (token !== undefined) {
      const [h, pl, sig] = token.split('.');
      for (const part of [h!, pl!, sig!]) {
        assert.ok(!String(err.message).includes(part), 'error message must not contain the token');
        assert.ok(!String(err.stack).includes(part), 'error stack must not contain the token');
      }
    }
    return true;
  });
}

/** Replaces one character in the middle of the signature (the last one may only carry padding bits). */
function flipSignatureChar(token: string): string {
  const i = token.lastIndexOf('.') + 20;
  const c = token[i] === 'A' ? 'B' : 'A';
  return token.slice(0, i) + c + token.slice(i + 1);
}

function b64json(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** A scriptable IdP (HTTPS, same TLS certificate as the issuer) for metadata failure modes. */
interface FakeIdp {
  url: string;
  hits: string[];
  discovery: 'ok' | 'not-json' | 503;
  jwks: { status: number; keys: SigningJwk[] };
  close(): Promise<void>;
}

async function startFakeIdp(keys: SigningJwk[]): Promise<FakeIdp> {
  const tls = { key: fs.readFileSync(path.join(TLS_DIR, 'issuer-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'issuer.pem')) };
  const idp: FakeIdp = {
    url: '',
    hits: [],
    discovery: 'ok',
    jwks: { status: 200, keys },
    close: async () => {},
  };
  const server = https.createServer(tls, (req, res) => {
    const p = (req.url ?? '').split('?')[0]!;
    idp.hits.push(p);
    if (p === '/.well-known/openid-configuration') {
      if (idp.discovery === 503) res.writeHead(503).end('{"error":"unavailable"}');
      else if (idp.discovery === 'not-json') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy error</html>');
      else res.end(JSON.stringify({ issuer: idp.url, jwks_uri: `${idp.url}/keys`, id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (p === '/keys') {
      // public halves only
      const pub = idp.jwks.keys.map(({ kty, kid, n, e, alg }) => ({ kty, kid, n, e, alg, use: 'sig' }));
      res.writeHead(idp.jwks.status).end(JSON.stringify(idp.jwks.status === 200 ? { keys: pub } : { error: 'temporarily unavailable' }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  idp.url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  idp.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return idp;
}

/** An authenticator that verifies every token afresh (no remembered tokens): the metadata tests count fetches per verification. */
function authFor(url: string, metadataCache: ConstructorParameters<typeof BearerAuthenticator>[0]['metadataCache']): BearerAuthenticator {
  return new BearerAuthenticator({ identityMetadata: metadataUrl(url), issuer: url, audience: AUDIENCE, clientId: AUDIENCE, metadataCache, verifiedTokenCacheSize: 0 });
}

before(async () => {
  diagnostics.subscribe('http.client.request.start', onRequest);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bearer-auth-test-'));
  keyFile = path.join(workDir, 'issuer', 'signing-key.json');
  issuer = await startIssuer({ port: 0, tlsDir: TLS_DIR, keyFile });
  key = loadOrCreateSigningKey(keyFile); // created by startIssuer; the token minter signs with it offline
  auth = new BearerAuthenticator({ identityMetadata: metadataUrl(issuer.url), issuer: issuer.url, audience: AUDIENCE, clientId: AUDIENCE });
});

after(async () => {
  diagnostics.unsubscribe('http.client.request.start', onRequest);
  await issuer?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

describe('local issuer', () => {
  test('persists its signing key as a private JWK with mode 0600 and serves only the public half', async () => {
    const st = fs.statSync(keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    const onDisk = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as Record<string, unknown>;
    assert.equal(onDisk.kid, key.kid);
    assert.equal(typeof onDisk.d, 'string');
    const res = await fetch(`${issuer.url}/jwks`);
    const jwks = (await res.json()) as { keys: Record<string, unknown>[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kid, key.kid);
    assert.equal(jwks.keys[0]!.d, undefined, 'JWKS must not leak the private exponent');
    const disco = (await (await fetch(metadataUrl(issuer.url))).json()) as Record<string, unknown>;
    assert.equal(disco.issuer, issuer.url);
    assert.equal(disco.jwks_uri, `${issuer.url}/jwks`);
    assert.deepEqual(disco.id_token_signing_alg_values_supported, ['RS256']);
  });

  test('a second start reuses the persisted key (tokens survive an issuer restart)', async () => {
    const again = await startIssuer({ port: 0, tlsDir: TLS_DIR, keyFile });
    try {
      const jwks = (await (await fetch(`${again.url}/jwks`)).json()) as { keys: { kid: string }[] };
      assert.deepEqual(jwks.keys.map((k) => k.kid), [key.kid]);
    } finally {
      await again.stop();
    }
  });
});

describe('BearerAuthenticator', () => {
  test('a valid token yields the principal from its claims', async () => {
    await auth.warmUp();
    const p = await auth.authenticate(bearer(mint()));
    assert.equal(p.tenantId, TENANT);
    assert.equal(p.userId, deriveObjectId(TENANT, 'alice@contoso.example'));
    assert.equal(p.name, 'alice@contoso.example');
    assert.deepEqual([...p.roles].sort(), ['Clusters.Read', 'Platform.SRE']);
  });

  test('name falls back to preferred_username; no roles claim gives an empty role set', async () => {
    const p = await auth.authenticate(bearer(mint({ roles: [], claims: { name: undefined, preferred_username: 'bob@x.example' } })));
    assert.equal(p.name, 'bob@x.example');
    assert.equal(p.roles.size, 0);
  });

  test('a mixed-case tenant id is normalised to lowercase', async () => {
    const p = await auth.authenticate(bearer(mint({ claims: { tid: TENANT.toUpperCase() } })));
    assert.equal(p.tenantId, TENANT);
  });

  test('the header name and the scheme are case-insensitive', async () => {
    const token = mint();
    const p = await auth.authenticate({ headers: { Authorization: `bearer ${token}` } });
    assert.equal(p.tenantId, TENANT);
  });

  test('no Authorization header: missing bearer token', async () => {
    await assertRejects(auth.authenticate({ headers: {} }), 'missing bearer token');
    await assertRejects(auth.authenticate({ headers: { authorization: undefined } }), 'missing bearer token');
    await assertRejects(auth.authenticate({ headers: { authorization: '' } }), 'missing bearer token');
  });

  test('malformed Authorization header', async () => {
    const good = mint();
    for (const value of [`Basic ${good}`, `Token ${good}`, 'Bearer', 'Bearer ', `Bearer ${good} extra`, `Bearer${good}`]) {
      await assertRejects(auth.authenticate({ headers: { authorization: value } }), 'malformed authorization header', good);
    }
    await assertRejects(
      auth.authenticate({ headers: { authorization: [`Bearer ${good}`, `Bearer ${good}`] } }),
      'malformed authorization header',
      good,
    );
  });

  test('not a JWT at all', async () => {
    for (const t of ['abc', 'a.b.c', `${b64json({ alg: 'RS256' })}.${b64json({})}`, `${b64json([1])}.${b64json({})}.c2ln`]) {
      await assertRejects(auth.authenticate(bearer(t)), 'invalid token');
    }
  });

  test('wrong audience', async () => {
    const t = mint({ audience: 'api://someone-else' });
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
  });

  test('the client id is accepted as audience too (Entra v2 tokens), nothing else is', async () => {
    const clientId = '0d5e7f3a-1b2c-4d5e-8f90-123456789abc';
    const a2 = new BearerAuthenticator({ identityMetadata: metadataUrl(issuer.url), issuer: issuer.url, audience: AUDIENCE, clientId });
    assert.equal((await a2.authenticate(bearer(mint({ audience: clientId })))).tenantId, TENANT);
    assert.equal((await a2.authenticate(bearer(mint({ audience: AUDIENCE })))).tenantId, TENANT);
    await assertRejects(a2.authenticate(bearer(mint({ audience: 'api://other' }))), 'invalid token');
  });

  test('wrong issuer', async () => {
    const t = mint({ issuer: 'https://login.microsoftonline.com/3f2504e0-4f89-41d3-9a0c-0305e82c3301/v2.0' });
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
    const t2 = mint({ issuer: `${issuer.url}/` }); // trailing slash: a different string
    await assertRejects(auth.authenticate(bearer(t2)), 'invalid token', t2);
  });

  test('expired (beyond the 5 minute clock skew)', async () => {
    const t = mint({ expiresInSeconds: -3600 });
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
  });

  test('not yet valid (nbf beyond the clock skew)', async () => {
    const now = Date.now();
    const t = mint({ claims: { nbf: Math.floor(now / 1000) + 1800, exp: Math.floor(now / 1000) + 7200 } });
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
  });

  test('a flipped character in the signature', async () => {
    const good = mint();
    const bad = flipSignatureChar(good);
    assert.notEqual(bad, good);
    assert.equal((await auth.authenticate(bearer(good))).tenantId, TENANT);
    await assertRejects(auth.authenticate(bearer(bad)), 'invalid token', bad);
  });

  test('signed by a different key that claims our kid', async () => {
    const foreign = generateSigningJwk(key.kid);
    const t = mint({ key: foreign });
    assert.equal(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).kid, key.kid);
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
  });

  test('signed by a key the issuer does not publish (unknown kid)', async () => {
    const t = mint({ key: generateSigningJwk() });
    await assertRejects(auth.authenticate(bearer(t)), 'invalid token', t);
  });

  test('algorithm confusion: HS256 keyed with the public key, and alg none', async () => {
    const header = b64json({ alg: 'HS256', typ: 'JWT', kid: key.kid });
    const payload = b64json(JSON.parse(Buffer.from(mint().split('.')[1]!, 'base64url').toString()));
    const pem = createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' });
    const hs = `${header}.${payload}.${createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url')}`;
    await assertRejects(auth.authenticate(bearer(hs)), 'invalid token', hs);
    const none = `${b64json({ alg: 'none', typ: 'JWT', kid: key.kid })}.${payload}.AA`;
    await assertRejects(auth.authenticate(bearer(none)), 'invalid token', none);
  });

  test('no tid claim (or not a GUID)', async () => {
    const t = mint({ claims: { tid: undefined } });
    await assertRejects(auth.authenticate(bearer(t)), 'token has no tenant id', t);
    const t2 = mint({ claims: { tid: 'contoso.onmicrosoft.com' } });
    await assertRejects(auth.authenticate(bearer(t2)), 'token has no tenant id', t2);
  });

  test('no oid claim', async () => {
    const t = mint({ claims: { oid: undefined } });
    await assertRejects(auth.authenticate(bearer(t)), 'token has no object id', t);
  });

  test('passport-azure-ad prints nothing (no token, no stack) for hostile tokens', async () => {
    const good = mint();
    const [h, p] = good.split('.');
    const hostile = [
      // typ JWT + a payload that is not JSON: jws.decode throws inside the strategy, which logs it with a stack
      `${b64json({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${Buffer.from('{"tid": not json').toString('base64url')}.${good.split('.')[2]}`,
      `${h}.${p}.${'A'.repeat(10)}`,
      flipSignatureChar(good),
      mint({ audience: 'x' }),
      mint({ expiresInSeconds: -3600 }),
      `${b64json({ alg: 'RS256', typ: 'JWT' })}.${p}.AAAA`, // no kid
    ];
    const written: string[] = [];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    // record, and still pass everything on (the test runner's own protocol also travels on stdout)
    const tap =
      (write: typeof process.stdout.write) =>
      (chunk: unknown, ...rest: unknown[]): boolean => {
        written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString());
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      };
    process.stdout.write = tap(out) as typeof process.stdout.write;
    process.stderr.write = tap(err) as typeof process.stderr.write;
    try {
      for (const t of hostile) {
        await assert.rejects(auth.authenticate(bearer(t)), AuthenticationError);
      }
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
    const text = written.join('');
    assert.doesNotMatch(text, /AzureAD/, `passport-azure-ad logged: ${text.slice(0, 300)}`);
    for (const t of hostile) for (const part of t.split('.')) assert.ok(!text.includes(part), 'token material was printed');
  });

  test('identity provider down: IdentityProviderUnavailableError (503), not a 401', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const url = `https://127.0.0.1:${closed}`;
    const down = new BearerAuthenticator({ identityMetadata: metadataUrl(url), issuer: url, audience: AUDIENCE, clientId: AUDIENCE });
    await assert.rejects(down.warmUp(), IdentityProviderUnavailableError);
    await assert.rejects(down.authenticate(bearer(mint({ issuer: url }))), (e: unknown) => {
      assert.ok(e instanceof IdentityProviderUnavailableError);
      assert.ok(!(e instanceof AuthenticationError));
      return true;
    });
    // a token problem is still reported as such without any metadata
    await assertRejects(down.authenticate({ headers: {} }), 'missing bearer token');
  });

  test('identity provider hangs: bounded by timeoutMs', async () => {
    const sockets = new Set<net.Socket>();
    const hang = net.createServer((s) => sockets.add(s)); // accepts, never answers the TLS handshake
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(hang.address() as net.AddressInfo).port}`;
    try {
      const slow = new BearerAuthenticator({ identityMetadata: metadataUrl(url), issuer: url, audience: AUDIENCE, clientId: AUDIENCE, timeoutMs: 300 });
      const t0 = Date.now();
      await assert.rejects(slow.authenticate(bearer(mint({ issuer: url }))), IdentityProviderUnavailableError);
      assert.ok(Date.now() - t0 < 2000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hang.close(() => r()));
    }
  });

  test('metadata and JWKS are fetched once (concurrent cold start included); throughput', async (t) => {
    // A fresh issuer URL is a fresh cache key in passport-azure-ad's module-wide cache.
    const cold = await startIssuer({ port: 0, tlsDir: TLS_DIR, keyFile });
    try {
      const host = new URL(cold.url).host;
      const mine = (): string[] => fetches.filter((f) => f.startsWith(host));
      const a = new BearerAuthenticator({ identityMetadata: metadataUrl(cold.url), issuer: cold.url, audience: AUDIENCE, clientId: AUDIENCE });
      const token = mint({ issuer: cold.url });

      const parallel = await Promise.all(Array.from({ length: 50 }, () => a.authenticate(bearer(token))));
      assert.equal(parallel.length, 50);
      assert.equal(mine().length, 2, `expected discovery + JWKS once, got ${mine().join(', ')}`);

      const n = 2000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await a.authenticate(bearer(token));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.equal(mine().length, 2, 'no refetch during sequential requests');
      assert.ok(mine()[0]!.includes('/.well-known/openid-configuration'));
      assert.ok(mine()[1]!.includes('/jwks'));
      t.diagnostic(`${n} sequential authenticate() calls: ${ms.toFixed(0)} ms, ${Math.round((n / ms) * 1000)} ops/s`);
    } finally {
      await cold.stop();
    }
  });
});

describe('metadata loading (failure modes of the IdP)', () => {
  const jwkA = generateSigningJwk();
  const jwkB = generateSigningJwk();
  const tokenFor = (idp: FakeIdp, jwk: SigningJwk): string => mint({ issuer: idp.url, key: signingKeyFromJwk(jwk) });

  test('a failed JWKS fetch is not cached: the next attempt after retryMs succeeds', async () => {
    const idp = await startFakeIdp([jwkA]);
    try {
      idp.jwks.status = 503;
      const a = authFor(idp.url, { retryMs: 50 });
      const t = tokenFor(idp, jwkA);
      await assert.rejects(a.authenticate(bearer(t)), IdentityProviderUnavailableError);
      // within retryMs: fail fast, no new fetch
      const hits = idp.hits.length;
      await assert.rejects(a.authenticate(bearer(t)), IdentityProviderUnavailableError);
      assert.equal(idp.hits.length, hits);
      idp.jwks.status = 200;
      await new Promise((r) => setTimeout(r, 60));
      assert.equal((await a.authenticate(bearer(t))).tenantId, TENANT);
    } finally {
      await idp.close();
    }
  });

  test('a discovery document that is not JSON is a 503, not a crash', async () => {
    const idp = await startFakeIdp([jwkA]);
    try {
      idp.discovery = 'not-json';
      const a = authFor(idp.url, {});
      await assert.rejects(a.warmUp(), IdentityProviderUnavailableError);
      await assert.rejects(a.authenticate(bearer(tokenFor(idp, jwkA))), IdentityProviderUnavailableError);
    } finally {
      await idp.close();
    }
  });

  test('signing key rollover: an unknown kid triggers a refetch, rate limited', async () => {
    const idp = await startFakeIdp([jwkA]);
    try {
      const limited = authFor(idp.url, { unknownKeyRefreshMs: 60_000 });
      const eager = authFor(idp.url, { unknownKeyRefreshMs: 0 });
      await limited.warmUp();
      await eager.warmUp();
      idp.jwks.keys = [jwkA, jwkB]; // the IdP starts publishing B
      const hits = idp.hits.length;
      // refetched at most once a minute: B stays unknown, and no fetch happens
      await assertRejects(limited.authenticate(bearer(tokenFor(idp, jwkB))), 'invalid token');
      assert.equal(idp.hits.length, hits);
      // refetch allowed: B is picked up on the first request that uses it
      assert.equal((await eager.authenticate(bearer(tokenFor(idp, jwkB)))).tenantId, TENANT);
      assert.equal(idp.hits.length, hits + 2);
      assert.equal((await eager.authenticate(bearer(tokenFor(idp, jwkA)))).tenantId, TENANT);
    } finally {
      await idp.close();
    }
  });

  test('after the TTL, metadata is refetched; while that fails the last good copy is used', async () => {
    const idp = await startFakeIdp([jwkA]);
    try {
      const a = authFor(idp.url, { ttlMs: 30, retryMs: 10_000 });
      const t = tokenFor(idp, jwkA);
      await a.authenticate(bearer(t));
      assert.equal(idp.hits.length, 2);
      await new Promise((r) => setTimeout(r, 40));
      idp.discovery = 503;
      assert.equal((await a.authenticate(bearer(t))).tenantId, TENANT, 'stale copy used while the IdP fails');
      assert.equal(idp.hits.length, 3, 'one refetch attempt after the TTL');
      assert.equal((await a.authenticate(bearer(t))).tenantId, TENANT);
      assert.equal(idp.hits.length, 3, 'no new attempt within retryMs');
    } finally {
      await idp.close();
    }
  });
});

describe('verified tokens remembered until they expire', () => {
  const jwk = generateSigningJwk();

  test('a token seen before is not verified again until its exp, then it is; a rejected one never is remembered', async () => {
    const idp = await startFakeIdp([jwk]);
    try {
      let clock = Date.now();
      // Metadata never reused (ttl 0: stale the moment it is fetched; 1 ms was a race on a quick machine), no stale copy: every verification needs the IdP.
      const a = new BearerAuthenticator({
        identityMetadata: metadataUrl(idp.url), issuer: idp.url, audience: AUDIENCE, clientId: AUDIENCE,
        metadataCache: { ttlMs: 0, retryMs: 0, staleIfErrorMs: 0 }, now: () => clock,
      });
      const signer = signingKeyFromJwk(jwk);
      const t = mint({ issuer: idp.url, key: signer, expiresInSeconds: 600 });
      const first = await a.authenticate(bearer(t));
      assert.equal(first.tenantId, TENANT);
      assert.equal(a.rememberedTokens, 1);

      // The IdP is gone: the token seen before still authenticates (from memory), a new one cannot be checked.
      idp.discovery = 503;
      const hits = idp.hits.length;
      assert.deepEqual(await a.authenticate(bearer(t)), first);
      assert.equal(idp.hits.length, hits, 'no metadata fetched for a remembered token');
      await assert.rejects(a.authenticate(bearer(mint({ issuer: idp.url, key: signer, user: 'bob' }))), IdentityProviderUnavailableError);

      // Past its exp it is no longer taken from memory: it goes to the verifier again (which now cannot reach the IdP).
      const exp = (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
      clock = exp * 1000;
      await assert.rejects(a.authenticate(bearer(t)), IdentityProviderUnavailableError);
      assert.equal(a.rememberedTokens, 0);

      // Rejected tokens are not remembered: a bad signature stays a 401 every time.
      idp.discovery = 'ok';
      clock = Date.now();
      const bad = flipSignatureChar(mint({ issuer: idp.url, key: signer, user: 'carol' }));
      await assertRejects(a.authenticate(bearer(bad)), 'invalid token', bad);
      await assertRejects(a.authenticate(bearer(bad)), 'invalid token', bad);
      assert.equal(a.rememberedTokens, 0);
    } finally {
      await idp.close();
    }
  });

  test('a token for another audience or issuer is never served from memory', async () => {
    const idp = await startFakeIdp([jwk]);
    try {
      const signer = signingKeyFromJwk(jwk);
      const ours = new BearerAuthenticator({ identityMetadata: metadataUrl(idp.url), issuer: idp.url, audience: AUDIENCE, clientId: AUDIENCE });
      const good = mint({ issuer: idp.url, key: signer });
      await ours.authenticate(bearer(good));
      assert.equal(ours.rememberedTokens, 1);
      // Same key, same claims but another audience / issuer: refused every time, never remembered.
      for (const t of [mint({ issuer: idp.url, key: signer, audience: 'api://someone-else' }), mint({ issuer: 'https://other.example/', key: signer })]) {
        await assertRejects(ours.authenticate(bearer(t)), 'invalid token', t);
        await assertRejects(ours.authenticate(bearer(t)), 'invalid token', t);
      }
      assert.equal(ours.rememberedTokens, 1);
      // An API configured for another audience refuses the token this one remembered.
      const theirs = new BearerAuthenticator({ identityMetadata: metadataUrl(idp.url), issuer: idp.url, audience: 'api://someone-else', clientId: 'api://someone-else' });
      await assertRejects(theirs.authenticate(bearer(good)), 'invalid token', good);
      assert.equal(theirs.rememberedTokens, 0);
    } finally {
      await idp.close();
    }
  });

  test('remembers at most verifiedTokenCacheSize tokens, and none with 0', async () => {
    const idp = await startFakeIdp([jwk]);
    try {
      const signer = signingKeyFromJwk(jwk);
      const make = (size: number) =>
        new BearerAuthenticator({ identityMetadata: metadataUrl(idp.url), issuer: idp.url, audience: AUDIENCE, clientId: AUDIENCE, verifiedTokenCacheSize: size });
      const two = make(2);
      for (const user of ['u1', 'u2', 'u3']) await two.authenticate(bearer(mint({ issuer: idp.url, key: signer, user })));
      assert.equal(two.rememberedTokens, 2);
      const off = make(0);
      await off.authenticate(bearer(mint({ issuer: idp.url, key: signer })));
      assert.equal(off.rememberedTokens, 0);
    } finally {
      await idp.close();
    }
  });
});
