/**
 * The console's sign-in against the local issuer (OpenID Connect, authorization code + PKCE, a
 * confidential client), its session cookie, the CSRF rule for changes made with the cookie, and
 * bearer tokens working exactly as before.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashSecret } from '../apps/api/src/console/session-secret';
import { OPERATOR_TENANT, READ, TENANT_A, TENANT_B, WRITE, createBody, startStack, type TestStack } from './support/stack';
import { loginCookieOf, manual, openSignInPage, signIn, submitSignIn } from './support/console';

const ALICE = { user: 'alice@contoso.example', tenantId: TENANT_A, roles: WRITE };

describe('console sign-in and session', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('GET /auth/login redirects to the issuer with code + PKCE S256, state and nonce, and keeps the pending login server-side', async () => {
    const res = await manual(`${s.url}/auth/login?returnTo=${encodeURIComponent('/clusters?view=all')}`);
    assert.equal(res.status, 302);
    const to = new URL(res.headers.get('location')!);
    assert.equal(`${to.origin}${to.pathname}`, `${process.env.AUTH_ISSUER}/authorize`);
    const q = to.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), s.config.CONSOLE_CLIENT_ID);
    assert.equal(q.get('redirect_uri'), `${s.url}/auth/callback`);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('scope')!, /(^| )openid( |$)/);
    const state = q.get('state')!;
    assert.match(state, /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('nonce')!, /^[A-Za-z0-9_-]{43}$/);
    const row = await s.db.consoleLogin.findUnique({ where: { stateHash: hashSecret(state) } });
    assert.ok(row, 'the pending login is found by the hash of its state');
    assert.equal(row.returnTo, '/clusters?view=all');
    assert.equal(createHash('sha256').update(row.codeVerifier).digest('base64url'), q.get('code_challenge'), 'the challenge is S256 of the stored verifier');
    assert.ok(row.expiresAt.getTime() - Date.now() <= 10 * 60_000, 'short-lived');
    assert.equal(await s.db.consoleLogin.count({ where: { stateHash: state } }), 0, 'the state itself is not stored');
  });

  it('refuses a returnTo that could leave the console (open redirect), storing nothing', async () => {
    const before = await s.db.consoleLogin.count();
    for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'evil.example', 'javascript:alert(1)', '/ok\u0007']) {
      const res = await manual(`${s.url}/auth/login?returnTo=${encodeURIComponent(bad)}`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 400, bad);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'invalid_returnTo', bad);
    }
    const twice = await manual(`${s.url}/auth/login?returnTo=/a&returnTo=/b`);
    assert.equal(twice.status, 400);
    assert.equal(await s.db.consoleLogin.count(), before);
  });

  it('no redirect after sign-in leaves the console: values that normalise to another host are refused, the Location is absolute on the console', async () => {
    // Reproduced before the fix: these were accepted at /auth/login, and the callback answered Location: //evil.example.
    for (const bad of ['/%2e%2e//evil.example', '/.//evil.example', '/..//x', '/%2e//x', '/a/..//x', '/%2E%2e/%2e//evil.example/', '/./\\evil.example', '/\t/evil.example']) {
      const res = await manual(`${s.url}/auth/login?returnTo=${encodeURIComponent(bad)}`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 400, `${JSON.stringify(bad)}: ${res.status}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_returnTo', bad);
    }
    // A value that normalises to a console path is kept normalised, and the redirect names the console's origin.
    const who = await signIn(s.url, { ...ALICE, user: 'dots@contoso.example' }, '/clusters');
    assert.ok(who.cookie);
    const { authorizeUrl, requestId, browser } = await openSignInPage(s.url, '/a/../clusters/%2e/x?q=1#top');
    const state = new URL(authorizeUrl).searchParams.get('state')!;
    assert.equal((await s.db.consoleLogin.findUniqueOrThrow({ where: { stateHash: hashSecret(state) } })).returnTo, '/clusters/x?q=1#top');
    const res = await manual(await submitSignIn(authorizeUrl, requestId, { ...ALICE, user: 'dots@contoso.example' }), { headers: { cookie: browser } });
    assert.equal(res.status, 302);
    const location = res.headers.get('location')!;
    assert.equal(location, `${s.url}/clusters/x?q=1#top`);
    assert.equal(new URL(location, `${s.url}/auth/callback`).origin, s.url);
  });

  it('a sign-in finishes only in the browser that started it: its callback opened anywhere else is refused, before the code is exchanged', async () => {
    const sessions = await s.db.consoleSession.count();
    // The attacker starts a sign-in, signs in as themselves at the issuer, and sends the callback URL to a victim.
    const { authorizeUrl, requestId } = await openSignInPage(s.url);
    const callback = await submitSignIn(authorizeUrl, requestId, { ...ALICE, user: 'mallory@contoso.example' });
    const victim = await manual(callback, { headers: { accept: 'text/html' } });
    assert.equal(victim.status, 400, 'a browser with no binding cookie');
    assert.match(await victim.text(), /started in another browser/);
    assert.equal(victim.headers.get('set-cookie'), null, 'no session cookie');
    assert.equal(await s.db.consoleSession.count(), sessions, 'no session was made');

    // A victim with a sign-in of their own under way holds another binding: refused as well.
    const other = await openSignInPage(s.url);
    const attacker = await openSignInPage(s.url);
    const second = await submitSignIn(attacker.authorizeUrl, attacker.requestId, { ...ALICE, user: 'mallory@contoso.example' });
    const crossed = await manual(second, { headers: { accept: 'application/json', cookie: other.browser } });
    assert.equal(crossed.status, 400);
    assert.equal(((await crossed.json()) as { error: { code: string } }).error.code, 'login_other_browser');
    assert.equal(await s.db.consoleSession.count(), sessions);
    assert.equal(await s.db.consoleLogin.count({ where: { stateHash: hashSecret(new URL(attacker.authorizeUrl).searchParams.get('state')!) } }), 0, 'the pending login is used up');

    // One browser, two tabs signing in at once: the binding is reused, both finish.
    const tab1 = await openSignInPage(s.url, '/', other.browser);
    const tab2 = await openSignInPage(s.url, '/clusters', other.browser);
    assert.equal(tab1.browser, other.browser);
    assert.equal(tab2.browser, other.browser);
    for (const t of [tab2, tab1]) {
      const res = await manual(await submitSignIn(t.authorizeUrl, t.requestId, { ...ALICE, user: 'tabs@contoso.example' }), { headers: { cookie: other.browser } });
      assert.equal(res.status, 302);
      assert.match(res.headers.get('set-cookie') ?? '', /^__Host-mc_session=/);
    }
    assert.equal(loginCookieOf(await manual(`${s.url}/auth/login`)).length, '__Host-mc_login='.length + 43);
  });

  it('the full round trip: the issuer form signs in, the callback sets an HttpOnly SameSite=Lax cookie whose value is not stored, /auth/session tells who', async () => {
    const who = await signIn(s.url, ALICE, '/clusters');
    assert.match(who.setCookie, /^__Host-mc_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Lax$/, '__Host- (Secure, Path=/, no Domain: no sibling host sets or shadows it), HttpOnly, Lax');
    const maxAge = Number(/Max-Age=(\d+)/.exec(who.setCookie)![1]);
    assert.ok(maxAge > 0 && maxAge <= 3600, `the session lasts no longer than the access token (1 h): ${maxAge}`);
    assert.equal(who.session.user.tenantId, TENANT_A);
    assert.equal(who.session.user.name, ALICE.user);
    assert.match(who.session.user.userId, /^[0-9a-f]{8}-/);
    assert.deepEqual(who.session.user.roles, WRITE);
    assert.equal(who.session.operator, false);
    assert.ok(new Date(who.session.expiresAt).getTime() <= Date.now() + 3600_000);
    const value = who.cookie.split('=')[1]!;
    const rows = await s.db.consoleSession.findMany({ where: { userId: who.session.user.userId } });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.tokenHash, hashSecret(value));
    assert.ok(!JSON.stringify(rows).includes(value), 'the cookie value is nowhere in the database');
    assert.ok(!JSON.stringify(rows).includes(who.csrfToken), 'nor the CSRF token');
    const none = await fetch(`${s.url}/auth/session`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'not_signed_in');
  });

  it('a callback is used once: the same code and state again is refused, with no second session', async () => {
    const { authorizeUrl, requestId, browser } = await openSignInPage(s.url);
    const callback = await submitSignIn(authorizeUrl, requestId, { ...ALICE, user: 'replay@contoso.example' });
    const first = await manual(callback, { headers: { cookie: browser } });
    assert.equal(first.status, 302);
    const again = await manual(callback, { headers: { accept: 'application/json', cookie: browser } });
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'login_not_found');
    assert.equal(again.headers.get('set-cookie'), null);
    assert.equal(await s.db.consoleSession.count({ where: { name: 'replay@contoso.example' } }), 1);
  });

  it('an expired pending login is refused', async () => {
    const { authorizeUrl, requestId, browser } = await openSignInPage(s.url);
    const state = new URL(authorizeUrl).searchParams.get('state')!;
    await s.db.consoleLogin.update({ where: { stateHash: hashSecret(state) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const callback = await submitSignIn(authorizeUrl, requestId, ALICE);
    const res = await manual(callback, { headers: { accept: 'application/json', cookie: browser } });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'login_expired');
  });

  it('an error from the issuer (the user cancels) is a readable 400 page, never a 500', async () => {
    const { authorizeUrl, requestId, browser } = await openSignInPage(s.url);
    const callback = await submitSignIn(authorizeUrl, requestId, 'cancel');
    assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
    const res = await manual(callback, { headers: { accept: 'text/html', cookie: browser } });
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type')!, /text\/html/);
    const html = await res.text();
    assert.match(html, /<h1>The sign-in did not work<\/h1>/);
    assert.match(html, /cancelled or refused at the identity provider/);
    assert.match(html, /href="\/auth\/login"/);
    const json = await manual(`${s.url}/auth/callback?error=server_error&error_description=${encodeURIComponent('<script>x</script>')}`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: { code: string } }).error.code, 'sign_in_refused');
    const html2 = await (await manual(`${s.url}/auth/callback?error=x&error_description=${encodeURIComponent('<script>x</script>')}`, { headers: { accept: 'text/html' } })).text();
    assert.ok(!html2.includes('<script>'), 'the description is escaped');
  });

  it('PKCE: the API sends the verifier of its own login, and a wrong code_verifier fails at the issuer', async () => {
    // Through the API: the stored verifier replaced by another one, the exchange is refused.
    const { authorizeUrl, requestId, browser } = await openSignInPage(s.url);
    const state = new URL(authorizeUrl).searchParams.get('state')!;
    await s.db.consoleLogin.update({ where: { stateHash: hashSecret(state) }, data: { codeVerifier: randomBytes(32).toString('base64url') } });
    const callback = await submitSignIn(authorizeUrl, requestId, ALICE);
    const res = await manual(callback, { headers: { accept: 'application/json', cookie: browser } });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'code_rejected');
    assert.match(body.error.message, /invalid_grant/);
    assert.equal(res.headers.get('set-cookie'), null);

    // At the issuer directly, as a client: right verifier works once, a wrong one does not.
    const issuer = process.env.AUTH_ISSUER!;
    const redirectUri = 'http://127.0.0.1:1/auth/callback';
    const codeFor = async (verifier: string) => {
      const u = new URL(`${issuer}/authorize`);
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      for (const [k, v] of Object.entries({ client_id: s.config.CONSOLE_CLIENT_ID, response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile', state: 'st', nonce: 'n1', code_challenge: challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
      const page = await (await fetch(u)).text();
      const id = /name="request" value="([^"]+)"/.exec(page)![1]!;
      const back = new URL(await submitSignIn(u, id, ALICE));
      assert.equal(back.searchParams.get('state'), 'st');
      return back.searchParams.get('code')!;
    };
    const token = (code: string, verifier: string, secret = s.config.CONSOLE_CLIENT_SECRET!) =>
      fetch(`${issuer}/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: s.config.CONSOLE_CLIENT_ID, client_secret: secret }),
      });
    const verifier = randomBytes(32).toString('base64url');
    const wrong = await token(await codeFor(verifier), randomBytes(32).toString('base64url'));
    assert.equal(wrong.status, 400);
    assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_grant');
    const badSecret = await token(await codeFor(verifier), verifier, 'not-the-secret-000000');
    assert.equal(badSecret.status, 401);
    const code = await codeFor(verifier);
    const ok = await token(code, verifier);
    assert.equal(ok.status, 200);
    const tokens = (await ok.json()) as { access_token: string; id_token: string };
    const idClaims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()) as { nonce: string; aud: string };
    assert.equal(idClaims.nonce, 'n1');
    assert.equal(idClaims.aud, s.config.CONSOLE_CLIENT_ID);
    const used = await token(code, verifier);
    assert.equal(used.status, 400, 'a code is used once');
    const asBearer = await s.request('GET', '/v1/clusters', { token: tokens.access_token });
    assert.equal(asBearer.status, 200, 'the issued access token is one the bearer path accepts');
  });

  it('a session of the operator tenant with Platform.SRE is an operator; the same role from a customer tenant is not (missingRole)', async () => {
    const sre = await signIn(s.url, { user: 'sre@operator.example', tenantId: OPERATOR_TENANT, roles: ['Platform.SRE'] });
    assert.equal(sre.session.operator, true);
    assert.equal((await s.request('GET', '/v1/admin/clusters', { headers: { cookie: sre.cookie } })).status, 200);
    const fake = await signIn(s.url, { user: 'admin@contoso.example', tenantId: TENANT_A, roles: ['Platform.SRE'] });
    assert.equal(fake.session.operator, false);
    const res = await s.request('GET', '/v1/admin/clusters', { headers: { cookie: fake.cookie } });
    assert.equal(res.status, 403);
    assert.match(res.body.error.message, /only in tokens from the operator's own tenant/);
  });

  it('the queues dashboard takes an operator\'s console session too; its changes must come from the console\'s origin', async () => {
    const sre = await signIn(s.url, { user: 'sre2@operator.example', tenantId: OPERATOR_TENANT, roles: ['Platform.SRE'] });
    assert.equal((await s.request('GET', '/admin/queues/api/queues', { headers: { cookie: sre.cookie } })).status, 200);
    const fake = await signIn(s.url, { user: 'admin2@contoso.example', tenantId: TENANT_A, roles: ['Platform.SRE'] });
    assert.equal((await s.request('GET', '/admin/queues/api/queues', { headers: { cookie: fake.cookie } })).status, 403);
    const pause = '/admin/queues/api/queues/operations/pause';
    const crossSite = await s.request('PUT', pause, { headers: { cookie: sre.cookie, origin: 'http://evil.example' } });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.body.error.code, 'csrf_required');
    assert.equal((await s.request('PUT', pause, { headers: { cookie: sre.cookie } })).status, 403, 'no Origin and no CSRF token');
    const sameOrigin = await s.request('PUT', pause, { headers: { cookie: sre.cookie, origin: s.url } });
    assert.ok(sameOrigin.status < 300, `from the console's origin: ${sameOrigin.status}`);
    assert.equal((await s.request('PUT', '/admin/queues/api/queues/operations/resume', { headers: { cookie: sre.cookie, 'x-csrf-token': sre.csrfToken } })).status < 300, true);
  });
});

describe('cookie-authenticated /v1 requests and CSRF', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('a POST with the cookie but without X-CSRF-Token is refused with 403 and creates nothing; a wrong token too; with it, it succeeds', async () => {
    const who = await signIn(s.url, ALICE);
    const without = await s.request('POST', '/v1/clusters', { headers: { cookie: who.cookie }, body: createBody({ name: 'csrf-a' }) });
    assert.equal(without.status, 403);
    assert.equal(without.body.error.code, 'csrf_required');
    const wrong = await s.request('POST', '/v1/clusters', { headers: { cookie: who.cookie, 'x-csrf-token': who.csrfToken.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }, body: createBody({ name: 'csrf-a' }) });
    assert.equal(wrong.status, 403);
    const other = await signIn(s.url, { ...ALICE, user: 'mallory@contoso.example' });
    const foreign = await s.request('POST', '/v1/clusters', { headers: { cookie: who.cookie, 'x-csrf-token': other.csrfToken }, body: createBody({ name: 'csrf-a' }) });
    assert.equal(foreign.status, 403, "another session's CSRF token does not count");
    assert.equal(await s.db.cluster.count(), 0, 'nothing was written');
    assert.equal(await s.db.operation.count(), 0);
    const ok = await s.request('POST', '/v1/clusters', { headers: { cookie: who.cookie, 'x-csrf-token': who.csrfToken }, body: createBody({ name: 'csrf-a' }) });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(ok.body.cluster.name, 'csrf-a');
    const row = await s.db.cluster.findUniqueOrThrow({ where: { id: ok.body.cluster.id } });
    assert.equal(row.tenantId, TENANT_A);
    assert.equal(row.createdBy, who.session.user.userId);
    // Every mutating method: DELETE and PATCH too.
    for (const [method, path] of [['DELETE', `/v1/clusters/${row.id}`], ['PATCH', `/v1/clusters/${row.id}`]] as const) {
      const r = await s.request(method, path, { headers: { cookie: who.cookie }, body: method === 'PATCH' ? { snapshotPolicy: { intervalHours: 2, retention: 3 } } : undefined });
      assert.equal(r.status, 403, method);
      assert.equal(r.body.error.code, 'csrf_required');
    }
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: row.id } })).snapshotIntervalHours, 24);
  });

  it('reads need no CSRF token, stay in the session\'s tenant, and role checks apply to the cookie as to a bearer token', async () => {
    const a = await signIn(s.url, ALICE);
    const list = await s.request('GET', '/v1/clusters', { headers: { cookie: a.cookie } });
    assert.equal(list.status, 200);
    assert.equal(list.body.clusters.length, 1);
    const b = await signIn(s.url, { user: 'bob@fabrikam.example', tenantId: TENANT_B, roles: WRITE });
    const theirs = await s.request('GET', '/v1/clusters', { headers: { cookie: b.cookie } });
    assert.equal(theirs.body.clusters.length, 0);
    assert.equal((await s.request('GET', `/v1/clusters/${list.body.clusters[0].id}`, { headers: { cookie: b.cookie } })).status, 404);
    const reader = await signIn(s.url, { user: 'reader@contoso.example', tenantId: TENANT_A, roles: READ });
    const refused = await s.request('POST', '/v1/clusters', { headers: { cookie: reader.cookie, 'x-csrf-token': reader.csrfToken }, body: createBody({ name: 'by-reader' }) });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'forbidden');
    assert.deepEqual(refused.body.error.details, { requiredRoles: WRITE });
  });

  it('bearer tokens work exactly as before, and an Authorization header is decided alone (a cookie does not rescue a bad token)', async () => {
    const token = s.token(TENANT_A, WRITE);
    assert.equal((await s.request('GET', '/v1/clusters', { token })).status, 200);
    const created = await s.request('POST', '/v1/clusters', { token, body: createBody({ name: 'by-bearer' }) });
    assert.equal(created.status, 202, 'no CSRF token needed with a bearer token');
    const a = await signIn(s.url, ALICE);
    const bad = await s.request('GET', '/v1/clusters', { headers: { cookie: a.cookie, authorization: 'Bearer not.a.jwt' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'unauthenticated');
    assert.equal((await s.request('GET', '/v1/clusters', {})).status, 401);
    assert.equal((await s.request('GET', '/v1/clusters', { headers: { cookie: '__Host-mc_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })).status, 401, 'an unknown session is no session');
  });

  it('a new sign-in brings the identity provider\'s latest roles to the user\'s other sessions (a removed role is lost everywhere)', async () => {
    const user = { user: 'carol@contoso.example', tenantId: TENANT_A, roles: WRITE };
    const first = await signIn(s.url, user);
    assert.deepEqual(first.session.user.roles, WRITE);
    await signIn(s.url, { ...user, roles: READ });
    const again = (await (await fetch(`${s.url}/auth/session`, { headers: { cookie: first.cookie } })).json()) as { user: { roles: string[] } };
    assert.deepEqual(again.user.roles, READ);
    const refused = await s.request('POST', '/v1/clusters', { headers: { cookie: first.cookie, 'x-csrf-token': first.csrfToken }, body: createBody({ name: 'after-demotion' }) });
    assert.equal(refused.status, 403);
  });

  it('sign-out needs the CSRF token, then ends the session and clears the cookie', async () => {
    const who = await signIn(s.url, ALICE);
    const noCsrf = await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: who.cookie } });
    assert.equal(noCsrf.status, 403);
    assert.equal(((await noCsrf.json()) as { error: { code: string } }).error.code, 'csrf_required');
    assert.equal((await fetch(`${s.url}/auth/session`, { headers: { cookie: who.cookie } })).status, 200, 'still signed in');
    const out = await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: who.cookie, 'x-csrf-token': who.csrfToken } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /^__Host-mc_session=; Path=\/; Max-Age=0; HttpOnly; Secure; SameSite=Lax$/);
    assert.equal((await fetch(`${s.url}/auth/session`, { headers: { cookie: who.cookie } })).status, 401);
    assert.equal((await s.request('GET', '/v1/clusters', { headers: { cookie: who.cookie } })).status, 401);
    assert.equal(await s.db.consoleSession.count({ where: { tokenHash: hashSecret(who.cookie.split('=')[1]!) } }), 0);
    const twice = await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: who.cookie, 'x-csrf-token': who.csrfToken } });
    assert.equal(twice.status, 401);
  });
});
