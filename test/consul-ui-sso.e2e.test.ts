/**
 * One-click sign-in into a cluster's Consul UI, end to end over HTTP (no browser): the console's
 * "Open Consul UI" (a one-time code), the UI proxy on the cluster's own origin, the user's own
 * Consul ACL token in a real cluster, and every way it is revoked.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { ConsulHttpClient, UI_POLICY_NAMES } from '../libs/provisioner/src';
import { ConsulUiRevoker } from '../apps/worker/src/consul-ui/consul-ui-revoker';
import { ConsulUiProxy } from '../apps/api/src/consul-ui/ui-proxy';
import { hashSecret } from '../apps/api/src/console/session-secret';
import { READ, SUBSCRIPTION, TENANT_A, TENANT_B, WRITE, startStack, testConfig, waitFor, type TestStack } from './support/stack';
import { manual, signIn, type ConsoleUser, type SignedIn } from './support/console';
import { startForwarder } from './support/tcp-forwarder';

interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string; json: any }

describe('single sign-on into the Consul UI', { timeout: 300_000 }, () => {
  let s: TestStack;
  let proxyPort: number;
  let bearer: string;
  let c1: { id: string; address: string; caPem: string };
  let c2: { id: string; address: string; caPem: string };
  let mgmt1: string;
  const writer: ConsoleUser = { user: 'wanda@contoso.example', tenantId: TENANT_A, roles: WRITE };
  const reader: ConsoleUser = { user: 'rita@contoso.example', tenantId: TENANT_A, roles: READ };

  /** A request to the UI proxy as the browser on http://<cluster>.ui.localhost:<port> would make it. */
  function ui(clusterId: string, path: string, o: { cookie?: string; method?: string; headers?: Record<string, string>; body?: string; host?: string } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: proxyPort, path, method: o.method ?? 'GET', headers: { host: o.host ?? `${clusterId}.ui.localhost:${proxyPort}`, ...(o.cookie ? { cookie: o.cookie } : {}), ...o.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end(o.body);
    });
  }

  /** A one-time code and the browser it was made for (its binding cookie on the UI origin, for a Cookie header). */
  interface Code { code: string; browser: string }

  /**
   * "Open Consul UI" as a browser follows it: GET /sso/clusters/{id} on the console sends it to the
   * UI origin's /_sso/start, which sets the origin's binding cookie and sends it back to the console
   * with the cookie's hash; the console answers with the code, bound to that hash.
   */
  async function codeFor(who: SignedIn, clusterId: string, browser?: string): Promise<Code> {
    const first = await manual(`${s.url}/sso/clusters/${clusterId}`, { headers: { cookie: who.cookie } });
    assert.equal(first.status, 302, await first.text());
    assert.equal(first.headers.get('location'), `http://${clusterId}.ui.localhost:${proxyPort}/_sso/start`);
    const start = await ui(clusterId, '/_sso/start', browser ? { cookie: browser } : {});
    assert.equal(start.status, 302, start.text);
    const back = new URL(String(start.headers.location));
    assert.equal(`${back.origin}${back.pathname}`, `${s.url}/sso/clusters/${clusterId}`);
    const set = String(start.headers['set-cookie']?.[0] ?? '');
    const value = /^__Host-mc_ui_login=([A-Za-z0-9_-]{43}); Path=\/; Max-Age=600; HttpOnly; Secure; SameSite=Lax$/.exec(set)?.[1];
    assert.ok(value, `the binding cookie: ${set}`);
    assert.equal(back.searchParams.get('bind'), hashSecret(value), 'the console gets the hash of the binding, not the binding');
    const res = await manual(back.toString(), { headers: { cookie: who.cookie } });
    assert.equal(res.status, 302, await res.text());
    const to = new URL(res.headers.get('location')!);
    assert.equal(to.origin, `http://${clusterId}.ui.localhost:${proxyPort}`);
    assert.equal(to.pathname, '/_sso/callback');
    return { code: to.searchParams.get('code')!, browser: `__Host-mc_ui_login=${value}` };
  }

  /** Redeems a code at the proxy from the browser it was made for: the UI session cookie. */
  async function redeem(clusterId: string, c: Code): Promise<{ cookie: string; setCookie: string }> {
    const res = await ui(clusterId, `/_sso/callback?code=${c.code}`, { cookie: c.browser });
    assert.equal(res.status, 302, res.text);
    assert.equal(res.headers.location, '/ui/');
    const setCookie = String(res.headers['set-cookie']?.[0] ?? '');
    const value = /^__Host-mc_ui_session=([^;]+)/.exec(setCookie)?.[1];
    assert.ok(value, setCookie);
    return { cookie: `__Host-mc_ui_session=${value}`, setCookie };
  }

  /** The callback of a code, from the browser it was made for. */
  const callback = (clusterId: string, c: Code, o: { headers?: Record<string, string> } = {}) => ui(clusterId, `/_sso/callback?code=${c.code}`, { cookie: c.browser, ...o });

  const openUi = async (who: SignedIn, clusterId: string) => redeem(clusterId, await codeFor(who, clusterId));
  const uiRow = (cookie: string) => s.db.consulUiSession.findUnique({ where: { tokenHash: hashSecret(cookie.split('=')[1]!) } });
  /** A user signed in to the console and to the cluster's UI: the UI session's row and the user's Consul token (read through the proxy). */
  const signedInUi = async (who: ConsoleUser, clusterId: string) => {
    const signedIn = await signIn(s.url, who);
    const { cookie } = await openUi(signedIn, clusterId);
    const row = (await uiRow(cookie))!;
    const secretId = (await ui(clusterId, '/v1/acl/token/self', { cookie })).json.SecretID as string;
    return { signedIn, cookie, row, secretId };
  };
  // One client (one kept-alive agent) per CA: a new one per call would leave its sockets open,
  // and a long poll would pile up past Consul's per-client connection limit.
  const clients = new Map<string, ConsulHttpClient>();
  const clientFor = (caPem: string) => clients.get(caPem) ?? clients.set(caPem, new ConsulHttpClient(caPem)).get(caPem)!;
  const direct = (c: { address: string; caPem: string }, token: string, method: 'GET' | 'PUT' = 'GET', path = '/v1/acl/token/self', body?: unknown) =>
    clientFor(c.caPem).request({ address: c.address, port: 8501, method, path, token, body });
  const events = async (clusterId: string) => (await s.request('GET', `/v1/clusters/${clusterId}/events`, { token: bearer })).body.events as { action: string; actor: string; details: any }[];

  async function createCluster(name: string, publicEndpoint: boolean) {
    const res = await s.request('POST', '/v1/clusters', { token: bearer, body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-sso', region: 'westeurope', tier: 'development', publicEndpoint } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return { id: res.body.cluster.id as string, op: res.body.operation.id as string };
  }
  async function ready(c: { id: string; op: string }) {
    const op = await waitFor(`create ${c.id}`, () => s.request('GET', `/v1/operations/${c.op}`, { token: bearer }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 120_000);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    const cc = await s.request('GET', `/v1/clusters/${c.id}/client-config`, { token: bearer });
    return { id: c.id, address: cc.body.retryJoin[0] as string, caPem: cc.body.caPem as string };
  }

  before(async () => {
    // The proxy reads a session's checks on every request, and the tests tick the worker's sweep themselves.
    s = await startStack({ worker: true, config: await testConfig({ CONSOLE_UI_RECHECK_MS: '0', CONSOLE_SWEEP_MS: '3600000' }) });
    proxyPort = s.api.get(ConsulUiProxy).port;
    bearer = s.token(TENANT_A, WRITE);
    const a = await createCluster('sso-one', true);
    const b = await createCluster('sso-two', false);
    c1 = await ready(a);
    c2 = await ready(b);
    mgmt1 = (await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).get(c1.id, SecretName.ManagementToken))!;
  });
  after(async () => {
    for (const c of clients.values()) c.close();
    await s?.close();
  });

  it('Open Consul UI: a hashed one-time code, a host-only UI cookie, the UI and its API through the proxy, and an audited token of the user\'s own', async () => {
    const w = await signIn(s.url, writer);
    const c = await codeFor(w, c1.id);
    const code = c.code;
    assert.match(code, /^[A-Za-z0-9_-]{43}$/);
    const row = await s.db.consoleSsoCode.findUnique({ where: { codeHash: hashSecret(code) } });
    assert.ok(row, 'stored under its hash');
    assert.equal(await s.db.consoleSsoCode.count({ where: { codeHash: code } }), 0, 'the code itself is not stored');
    assert.equal(row.browserHash, hashSecret(c.browser.split('=')[1]!), 'bound to the browser that asked');
    assert.equal(row.clusterId, c1.id);
    assert.equal(row.userId, w.session.user.userId);
    assert.ok(row.expiresAt.getTime() - Date.now() <= 30_000, 'valid for about 30 s');

    const { cookie, setCookie } = await redeem(c1.id, c);
    assert.match(setCookie, /^__Host-mc_ui_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Lax$/, '__Host- (Secure, Path=/, no Domain), HttpOnly, Lax');
    const page = await ui(c1.id, '/ui/', { cookie, headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(page.text, /consul/i);
    const nodes = await ui(c1.id, '/v1/catalog/nodes', { cookie });
    assert.equal(nodes.status, 200, nodes.text);
    assert.equal(nodes.json.length, 1, 'the development cluster\'s one server is listed');
    assert.equal((await ui(c1.id, '/', { cookie })).headers.location, '/ui/');

    const session = (await uiRow(cookie))!;
    assert.equal(session.access, 'write');
    const info = await direct(c1, mgmt1, 'GET', `/v1/acl/token/${session.accessorId}`);
    assert.equal(info.status, 200);
    const t = info.body as { Description: string; Policies: { Name: string }[]; ExpirationTime: string; ExpirationTTL: string };
    assert.ok(t.Description.includes(w.session.user.userId) && t.Description.includes(writer.user), t.Description);
    assert.deepEqual(t.Policies.map((p) => p.Name), [UI_POLICY_NAMES.write]);
    const expires = new Date(t.ExpirationTime).getTime();
    assert.ok(expires <= Date.now() + 8 * 3600_000, 'at most 8 h');
    assert.ok(expires <= new Date(w.session.expiresAt).getTime() + 1000, 'never past the console session');
    const sealed = await s.db.clusterSecret.findUniqueOrThrow({ where: { clusterId_name: { clusterId: c1.id, name: SecretName.consulUiToken(session.id) } } });
    const secretId = (await ui(c1.id, '/v1/acl/token/self', { cookie })).json.SecretID as string;
    assert.ok(!Buffer.from(sealed.ciphertext).includes(Buffer.from(secretId)), 'the token is sealed, not stored in the clear');
    const signedIn = (await events(c1.id)).find((e) => e.action === 'consul-ui.sso.signed-in' && e.details.uiSessionId === session.id);
    assert.ok(signedIn, 'the sign-in is in the cluster\'s audit events');
    assert.equal(signedIn.actor, w.session.user.userId);
    assert.equal(signedIn.details.name, writer.user);
    assert.equal(signedIn.details.access, 'write');
    assert.ok(!JSON.stringify(await events(c1.id)).includes(secretId), 'no token secret in the audit events');
  });

  it('a code is used once, expires, and is bound to its cluster and to its user\'s live session', async () => {
    const signIns = async () => (await events(c1.id)).filter((e) => e.action === 'consul-ui.sso.signed-in').length;
    const signInsBefore = await signIns();
    const w = await signIn(s.url, writer);
    const code = await codeFor(w, c1.id);
    await redeem(c1.id, code);
    const again = await callback(c1.id, code);
    assert.equal(again.status, 400);
    assert.equal(again.json.error.code, 'code_invalid');
    assert.equal(again.headers['set-cookie'], undefined);

    const old = await codeFor(w, c1.id);
    await s.db.consoleSsoCode.update({ where: { codeHash: hashSecret(old.code) }, data: { expiresAt: new Date(Date.now() - 1) } });
    const expired = await callback(c1.id, old, { headers: { accept: 'text/html' } });
    assert.equal(expired.status, 400);
    assert.match(expired.text, /code_expired/);
    assert.match(expired.text, new RegExp(`href="${s.url}/sso/clusters/${c1.id}"`), 'the page offers the way back');

    const forOne = await codeFor(w, c1.id);
    const elsewhere = await ui(c2.id, `/_sso/callback?code=${forOne.code}`, { cookie: forOne.browser });
    assert.equal(elsewhere.status, 400, 'a code for cluster one is refused on cluster two\'s origin');
    assert.match(elsewhere.json.error.message, /another cluster/);
    assert.equal((await callback(c1.id, forOne)).status, 400, 'and is used up');

    const pending = await codeFor(w, c1.id);
    const out = await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: w.cookie, 'x-csrf-token': w.csrfToken } });
    assert.equal(out.status, 204);
    const afterSignOut = await callback(c1.id, pending);
    assert.equal(afterSignOut.status, 400, 'the code went with its console session');

    const demoted = await signIn(s.url, { ...writer, user: 'dora@contoso.example' });
    const dCode = await codeFor(demoted, c1.id);
    await signIn(s.url, { ...writer, user: 'dora@contoso.example', roles: [] }); // the identity provider took her roles away
    const noRole = await callback(c1.id, dCode);
    assert.equal(noRole.status, 403, 'a user who lost the role meanwhile gets no UI session');
    assert.equal(await signIns(), signInsBefore + 1, 'no sign-in (no session, no token) came of any refused code');
    assert.equal(await s.db.consulUiSession.count({ where: { userId: demoted.session.user.userId } }), 0);
  });

  it('a user of another tenant, or without a cluster role, gets no code; not signed in, the console signs in first', async () => {
    const codes = await s.db.consoleSsoCode.count();
    const other = await signIn(s.url, { user: 'bob@fabrikam.example', tenantId: TENANT_B, roles: WRITE });
    const refused = await manual(`${s.url}/sso/clusters/${c1.id}`, { headers: { cookie: other.cookie, accept: 'text/html' } });
    assert.equal(refused.status, 404);
    assert.match(await refused.text(), /<h1>Not found<\/h1>/);
    const none = await signIn(s.url, { user: 'nobody@contoso.example', tenantId: TENANT_A, roles: [] });
    const forbidden = await manual(`${s.url}/sso/clusters/${c1.id}`, { headers: { cookie: none.cookie, accept: 'application/json' } });
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as { error: { code: string } }).error.code, 'forbidden');
    assert.equal(await s.db.consoleSsoCode.count(), codes, 'no code was made');
    const anonymous = await manual(`${s.url}/sso/clusters/${c1.id}`, { headers: { accept: 'text/html' } });
    assert.equal(anonymous.status, 302);
    assert.equal(anonymous.headers.get('location'), `${s.url}/auth/login?returnTo=${encodeURIComponent(`/sso/clusters/${c1.id}`)}`);
    const bind = 'B'.repeat(43);
    const anonymousBound = await manual(`${s.url}/sso/clusters/${c1.id}?bind=${bind}`, { headers: { accept: 'text/html' } });
    assert.equal(anonymousBound.headers.get('location'), `${s.url}/auth/login?returnTo=${encodeURIComponent(`/sso/clusters/${c1.id}?bind=${bind}`)}`, 'the binding survives the sign-in');
    assert.equal((await manual(`${s.url}/sso/clusters/${c1.id}?bind=short`, { headers: { cookie: other.cookie } })).status, 400, 'a malformed binding');
    assert.equal((await manual(`${s.url}/sso/clusters/${c1.id}`)).status, 401);
  });

  it('a sign-in link is honoured only in the browser it was made for: opened elsewhere it is refused, used up, and signs no one in', async () => {
    // The attacker opens the UI of a cluster they may use, and sends the callback URL (their code) to a victim.
    const attacker = await signIn(s.url, { ...writer, user: 'mallory@contoso.example' });
    const sessionsBefore = await s.db.consulUiSession.count();
    const stolen = await codeFor(attacker, c1.id);
    const victim = await callback(c1.id, { code: stolen.code, browser: '' }, { headers: { accept: 'text/html' } });
    assert.equal(victim.status, 400, 'a browser with no binding cookie on the UI origin');
    assert.match(victim.text, /sso_other_browser/);
    assert.equal(victim.headers['set-cookie'], undefined, 'no UI session cookie');
    assert.equal((await callback(c1.id, stolen)).status, 400, 'the code is used up: not even its own browser can use it after');

    // A victim who has a binding of their own on that origin (from an earlier sign-in) is refused as well.
    const mine = await codeFor(await signIn(s.url, writer), c1.id);
    const theirs = await codeFor(attacker, c1.id);
    assert.notEqual(mine.browser, theirs.browser);
    const crossed = await ui(c1.id, `/_sso/callback?code=${theirs.code}`, { cookie: mine.browser });
    assert.equal(crossed.status, 400);
    assert.equal(crossed.json.error.code, 'sso_other_browser');
    assert.equal(await s.db.consulUiSession.count(), sessionsBefore, 'no UI session (and no Consul token) came of it');

    // The same browser reuses its binding, so two tabs opening UIs at once both work.
    const tab1 = await codeFor(attacker, c1.id, theirs.browser);
    const tab2 = await codeFor(attacker, c1.id, theirs.browser);
    assert.equal(tab1.browser, theirs.browser);
    await redeem(c1.id, tab2);
    await redeem(c1.id, tab1);
  });

  it('the proxy sets its own safety headers on every family of answer, whatever Consul sends', async () => {
    const w = await signIn(s.url, writer);
    const { cookie } = await openUi(w, c1.id);
    const origin = `http://${c1.id}.ui.localhost:${proxyPort}`;
    const apiCsp = "sandbox; default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    const html = '<html><body><script>document.title = "pwned"</script>hello</body></html>';
    assert.equal((await ui(c1.id, '/v1/kv/page/html', { cookie, method: 'PUT', body: html, headers: { origin } })).status, 200);

    const json = await ui(c1.id, '/v1/catalog/nodes', { cookie });
    const raw = await ui(c1.id, '/v1/kv/page/html?raw', { cookie });
    const missing = await ui(c1.id, '/v1/no/such/endpoint', { cookie });
    for (const [what, a] of [['a JSON answer', json], ['a raw KV value', raw], ['a Consul 404', missing]] as const) {
      assert.equal(a.headers['x-content-type-options'], 'nosniff', what);
      assert.equal(a.headers['content-security-policy'], apiCsp, what);
      assert.doesNotMatch(String(a.headers['content-type']), /html|xml|svg/i, `${what}: never a type a browser renders`);
    }
    assert.match(String(json.headers['content-type']), /^application\/json/, 'a JSON answer keeps its type');
    assert.equal(raw.text, html, 'the value is served as it is, as text');

    const page = await ui(c1.id, '/ui/', { cookie, headers: { accept: 'text/html', 'accept-encoding': 'gzip' } });
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-encoding'], undefined, 'read whole to hash its scripts, sent as is');
    assert.equal(Number(page.headers['content-length']), Buffer.byteLength(page.text));
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, new RegExp(`frame-ancestors ${s.url.replace(/[.]/g, '\\.')}(;|$)`), `framed by the console only: ${csp}`);
    assert.match(csp, /script-src 'self'( 'sha256-[A-Za-z0-9+/=]+')+;/, `the UI's own inline scripts by hash, no unsafe-inline: ${csp}`);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe/);
    assert.match(csp, /connect-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(page.text)?.[1];
    assert.ok(asset, 'the UI page loads its scripts from /ui/assets');
    const script = await ui(c1.id, asset, { cookie });
    assert.equal(script.status, 200);
    assert.equal(script.headers['x-content-type-options'], 'nosniff', 'a UI asset');
    assert.match(String(script.headers['content-type']), /javascript/);

    // The proxy's own answers.
    for (const [what, a] of [
      ['no session', await ui(c1.id, '/v1/catalog/nodes')],
      ['an unknown host', await ui(c1.id, '/ui/', { host: 'x.ui.elsewhere.example' })],
      ['a redirect', await ui(c1.id, '/', { cookie })],
      ['a sign-in start', await ui(c1.id, '/_sso/start')],
      ['an error page', await ui(c1.id, '/_sso/callback?code=x', { headers: { accept: 'text/html' } })],
    ] as const) {
      assert.equal(a.headers['x-content-type-options'], 'nosniff', what);
    }
    const errorPage = await ui(c1.id, '/_sso/callback?code=x', { headers: { accept: 'text/html' } });
    assert.match(String(errorPage.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/);
    // And the console's API.
    const apiAnswer = await s.request('GET', '/v1/clusters', { token: bearer });
    assert.equal(apiAnswer.headers.get('x-content-type-options'), 'nosniff');
  });

  it('the proxy refuses requests without a UI session of that cluster', async () => {
    const plain = await ui(c1.id, '/v1/catalog/nodes');
    assert.equal(plain.status, 401);
    assert.equal(plain.json.error.code, 'not_signed_in');
    const forged = await ui(c1.id, '/v1/kv/x', { cookie: '__Host-mc_ui_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    assert.equal(forged.status, 401);
    assert.match(String(forged.headers['set-cookie']), /^__Host-mc_ui_session=; Path=\/; Max-Age=0/, 'a dead cookie is cleared');
    const pageNav = await ui(c1.id, '/ui/services', { headers: { accept: 'text/html' } });
    assert.equal(pageNav.status, 302);
    assert.equal(pageNav.headers.location, '/_sso/start', 'a page starts a new sign-in from this browser (through the console)');
    const w = await signIn(s.url, writer);
    const { cookie } = await openUi(w, c1.id);
    const crossed = await ui(c2.id, '/v1/catalog/nodes', { cookie });
    assert.equal(crossed.status, 401, 'cluster one\'s UI session is nothing on cluster two\'s origin');
    assert.equal((await ui(c1.id, '/v1/catalog/nodes', { cookie, host: `${c1.id}.ui.elsewhere.example` })).status, 404, 'an unknown host');
    assert.equal((await ui(c1.id, '/v1/kv/y', { cookie, method: 'PUT', body: 'x', headers: { origin: 'http://evil.example' } })).status, 403, 'a change from another origin');
    assert.equal((await ui(c1.id, '/admin/queues', { cookie })).status, 404, 'only /ui/ and /v1/');
  });

  it('never forwards the browser\'s own token: the request is made with the user\'s token only', async () => {
    const r = await signIn(s.url, reader);
    const { cookie } = await openUi(r, c1.id);
    const own = (await uiRow(cookie))!;
    const mgmtAccessor = ((await direct(c1, mgmt1)).body as { AccessorID: string }).AccessorID;
    const smuggled = { 'x-consul-token': mgmt1, authorization: `Bearer ${mgmt1}` };
    const self = await ui(c1.id, `/v1/acl/token/self?token=${mgmt1}`, { cookie, headers: smuggled });
    assert.equal(self.status, 200, self.text);
    assert.equal(self.json.AccessorID, own.accessorId, 'Consul saw the user\'s token');
    assert.notEqual(self.json.AccessorID, mgmtAccessor);
    assert.deepEqual(self.json.Policies.map((p: { Name: string }) => p.Name), [UI_POLICY_NAMES.read]);
    const put = await ui(c1.id, `/v1/kv/smuggled?token=${mgmt1}`, { cookie, method: 'PUT', body: 'x', headers: smuggled });
    assert.equal(put.status, 403, 'with the management token in every place a browser could put it, the read-only user still cannot write');
    assert.equal((await direct(c1, mgmt1, 'GET', '/v1/kv/smuggled')).status, 404);
  });

  it('a Read user\'s proxied KV PUT is refused by Consul (403), a ReadWrite user\'s works', async () => {
    const r = await signIn(s.url, reader);
    const rUi = await openUi(r, c1.id);
    const w = await signIn(s.url, writer);
    const wUi = await openUi(w, c1.id);
    const refused = await ui(c1.id, '/v1/kv/app/config', { cookie: rUi.cookie, method: 'PUT', body: 'from-reader' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /Permission denied/i);
    const written = await ui(c1.id, '/v1/kv/app/config', { cookie: wUi.cookie, method: 'PUT', body: 'from-writer', headers: { origin: `http://${c1.id}.ui.localhost:${proxyPort}` } });
    assert.equal(written.status, 200, written.text);
    assert.equal(written.text.trim(), 'true');
    const read = await ui(c1.id, '/v1/kv/app/config?raw', { cookie: rUi.cookie });
    assert.equal(read.status, 200);
    assert.equal(read.text, 'from-writer', 'the reader reads it');
  });

  it('sign-out revokes the Consul token: the cluster rejects it directly, the proxy at once, and it is audited', async () => {
    const w = await signIn(s.url, writer);
    const { cookie } = await openUi(w, c1.id);
    const row = (await uiRow(cookie))!;
    const secretId = (await ui(c1.id, '/v1/acl/token/self', { cookie })).json.SecretID as string;
    assert.equal((await direct(c1, secretId)).status, 200, 'the token works directly before');
    const out = await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: w.cookie, 'x-csrf-token': w.csrfToken } });
    assert.equal(out.status, 204);
    assert.equal((await ui(c1.id, '/v1/catalog/nodes', { cookie })).status, 401, 'the proxy refuses it at once');
    await waitFor('the cluster to reject the revoked token', () => direct(c1, secretId).then((r) => r.status), (status) => status === 403, 30_000);
    assert.match(JSON.stringify((await direct(c1, secretId)).body), /ACL not found/);
    await waitFor('the UI session row to go', () => s.db.consulUiSession.count({ where: { id: row.id } }), (n) => n === 0, 30_000);
    assert.equal(await s.db.clusterSecret.count({ where: { name: SecretName.consulUiToken(row.id) } }), 0, 'its sealed secret too');
    const revoked = (await events(c1.id)).filter((e) => e.action === 'consul-ui.sso.revoked' && e.details.uiSessionId === row.id);
    assert.equal(revoked.length, 1, 'audited once');
    assert.equal(revoked[0]!.details.reason, 'sign-out');
    assert.equal(revoked[0]!.details.consulToken, 'deleted');
    assert.equal(revoked[0]!.details.userId, w.session.user.userId);
  });

  it('a server row with an apiEndpoint: the sign-in, the proxy and the revocation reach the server there, its certificate checked against the server\'s address', async () => {
    // The endpoint listens on 127.0.0.1, which every server certificate names too: only a check against the row's address can refuse it.
    const forwarder = await startForwarder({ host: c1.address, port: 8501 });
    const server = await s.db.clusterServer.findFirstOrThrow({ where: { clusterId: c1.id } });
    const where = { clusterId_index: { clusterId: c1.id, index: server.index } };
    try {
      await s.db.clusterServer.update({ where, data: { apiEndpoint: `${forwarder.endpoint.host}:${forwarder.endpoint.port}` } });
      const w = await signIn(s.url, writer);
      const { cookie } = await openUi(w, c1.id);
      const afterSignIn = forwarder.connections;
      assert.ok(afterSignIn > 0, 'the user\'s token was made through the endpoint');
      const nodes = await ui(c1.id, '/v1/catalog/nodes', { cookie });
      assert.equal(nodes.status, 200, nodes.text);
      assert.ok(forwarder.connections > afterSignIn, 'the proxy forwarded through the endpoint');
      const secretId = (await ui(c1.id, '/v1/acl/token/self', { cookie })).json.SecretID as string;

      await s.db.clusterServer.update({ where, data: { address: c1.address.replace(/\.\d+$/, '.200') } });
      const refused = await ui(c1.id, '/v1/catalog/nodes', { cookie });
      assert.equal(refused.status, 502, 'a server whose certificate does not name its address is not served');
      assert.equal(refused.json.error.code, 'cluster_unavailable');
      await s.db.clusterServer.update({ where, data: { address: server.address } });

      const beforeSignOut = forwarder.connections;
      assert.equal((await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: w.cookie, 'x-csrf-token': w.csrfToken } })).status, 204);
      await waitFor('the cluster to reject the revoked token', () => direct(c1, secretId).then((r) => r.status), (status) => status === 403, 30_000);
      assert.ok(forwarder.connections > beforeSignOut, 'the worker deleted the token through the endpoint');
    } finally {
      await s.db.clusterServer.update({ where, data: { address: server.address, apiEndpoint: null } });
      await forwarder.close();
    }
  });

  it('loss of the role revokes the UI session on its next request, and its token', async () => {
    const user = { ...writer, user: 'lena@contoso.example' };
    const w = await signIn(s.url, user);
    const { cookie } = await openUi(w, c1.id);
    const row = (await uiRow(cookie))!;
    const secretId = (await ui(c1.id, '/v1/acl/token/self', { cookie })).json.SecretID as string;
    await signIn(s.url, { ...user, roles: READ }); // the identity provider now says Clusters.Read only
    const refused = await ui(c1.id, '/v1/catalog/nodes', { cookie });
    assert.equal(refused.status, 401);
    // The sign-in marked it role-lost and handed it to the worker, which may have finished it (its row gone) before this request.
    assert.match(refused.json.error.message, /role-lost|no Consul UI session/);
    await waitFor('the cluster to reject the token of the lost role', () => direct(c1, secretId).then((r) => r.status), (status) => status === 403, 30_000);
    await waitFor('the revocation to be audited', () => events(c1.id), (ev) => ev.some((e) => e.action === 'consul-ui.sso.revoked' && e.details.uiSessionId === row.id && e.details.reason === 'role-lost'), 30_000);
  });

  it('a sign-in with fewer roles revokes the user\'s UI tokens in Consul at once, even one used only outside the proxy', async () => {
    const user = { ...writer, user: 'otto@contoso.example' };
    const { row, secretId } = await signedInUi(user, c1.id);
    assert.equal((await direct(c1, secretId, 'PUT', '/v1/kv/otto', 'x')).status, 200, 'the write token works straight against the cluster');
    await signIn(s.url, { ...user, roles: READ }); // demoted; the UI session is not used through the proxy again
    await waitFor('the cluster to reject the demoted user\'s write token', () => direct(c1, secretId).then((r) => r.status), (status) => status === 403, 30_000);
    const ev = (await events(c1.id)).find((e) => e.action === 'consul-ui.sso.revoked' && e.details.uiSessionId === row.id);
    assert.equal(ev?.details.reason, 'role-lost');
  });

  it('the worker\'s sweep revokes the UI tokens of a console session that no longer holds their role', async () => {
    const user = { ...writer, user: 'sven@contoso.example' };
    const { row: wRow, secretId: wSecret } = await signedInUi(user, c1.id);
    const { row: rRow, secretId: rSecret } = await signedInUi({ ...reader, user: 'rolf@contoso.example' }, c1.id);
    // The roles changed under the sessions (another API replica's sign-in, cut short before it revoked anything).
    await s.db.consoleSession.update({ where: { id: wRow.consoleSessionId! }, data: { roles: READ } });
    await s.db.consoleSession.update({ where: { id: rRow.consoleSessionId! }, data: { roles: [] } });
    await s.worker!.get(ConsulUiRevoker).sweep();
    assert.equal((await direct(c1, wSecret)).status, 403, 'a write token once its session holds Clusters.Read only');
    assert.equal((await direct(c1, rSecret)).status, 403, 'a read token once its session holds no role');
    const reasons = (await events(c1.id)).filter((e) => e.action === 'consul-ui.sso.revoked' && [wRow.id, rRow.id].includes(e.details.uiSessionId)).map((e) => e.details.reason);
    assert.deepEqual(reasons, ['role-lost', 'role-lost']);
  });

  it('the worker\'s sweep revokes expired UI sessions and those whose console session expired', async () => {
    const { row: aRow, secretId: aSecret } = await signedInUi({ ...writer, user: 'exp1@contoso.example' }, c1.id);
    const { row: bRow, secretId: bSecret } = await signedInUi({ ...writer, user: 'exp2@contoso.example' }, c1.id);
    await s.db.consulUiSession.update({ where: { id: aRow.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await s.db.consoleSession.update({ where: { id: bRow.consoleSessionId! }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await s.worker!.get(ConsulUiRevoker).sweep();
    assert.equal(await s.db.consulUiSession.count({ where: { id: { in: [aRow.id, bRow.id] } } }), 0);
    assert.equal(await s.db.consoleSession.count({ where: { id: bRow.consoleSessionId! } }), 0, 'the expired console session went');
    assert.equal((await direct(c1, aSecret)).status, 403);
    assert.equal((await direct(c1, bSecret)).status, 403);
    const reasons = (await events(c1.id)).filter((e) => e.action === 'consul-ui.sso.revoked' && [aRow.id, bRow.id].includes(e.details.uiSessionId)).map((e) => e.details.reason).sort();
    assert.deepEqual(reasons, ['console-session-ended', 'expired']);
    await s.worker!.get(ConsulUiRevoker).sweep();
    assert.equal((await events(c1.id)).filter((e) => e.action === 'consul-ui.sso.revoked' && [aRow.id, bRow.id].includes(e.details.uiSessionId)).length, 2, 'a second sweep audits nothing again');
  });

  it('a cluster with publicEndpoint still serves its UI directly, with token login', async () => {
    const view = await s.request('GET', `/v1/clusters/${c1.id}`, { token: bearer });
    assert.equal(view.body.publicEndpoint, true);
    const res = await clientFor(c1.caPem).requestRaw({ address: c1.address, port: 8501, method: 'GET', path: '/ui/' });
    assert.equal(res.status, 200);
    assert.equal(view.body.endpoints.ui, `https://${c1.address}:8501/ui/`);
    assert.equal((await direct(c1, '00000000-0000-4000-8000-000000000000', 'GET', '/v1/kv/app/config')).status, 403, 'without a valid token, default-deny');
  });

  it('a restore brings no Consul UI token back: the revoked ones in the snapshot are deleted again, and live sessions end', async () => {
    const finish = async (opId: string) => (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token: bearer }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 120_000)).body;
    const before = await signIn(s.url, { ...writer, user: 'rosa@contoso.example' });
    const old = await openUi(before, c1.id);
    const oldSecret = (await ui(c1.id, '/v1/acl/token/self', { cookie: old.cookie })).json.SecretID as string;
    const snap = await s.request('POST', `/v1/clusters/${c1.id}/snapshots`, { token: bearer, body: { name: 'with-ui-token' } });
    assert.equal(snap.status, 202);
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    assert.equal((await manual(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: before.cookie, 'x-csrf-token': before.csrfToken } })).status, 204);
    await waitFor('the signed-out token to be deleted', () => direct(c1, oldSecret).then((r) => r.status), (status) => status === 403, 30_000);
    const now = await signIn(s.url, { ...writer, user: 'nora@contoso.example' });
    const live = await openUi(now, c1.id);
    const liveRow = (await uiRow(live.cookie))!;
    const liveSecret = (await ui(c1.id, '/v1/acl/token/self', { cookie: live.cookie })).json.SecretID as string;
    const restore = await s.request('POST', `/v1/clusters/${c1.id}/snapshots/${snap.body.snapshot.id}/restore`, { token: bearer, body: { takeSnapshot: false } });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    const done = await finish(restore.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.match(done.steps.find((x: { name: string }) => x.name === 'revoke-retired-tokens').detail, /Consul UI token\(s\) deleted/);
    assert.equal((await direct(c1, oldSecret)).status, 403, 'the revoked token the snapshot held is not back');
    assert.equal((await direct(c1, liveSecret)).status, 403);
    assert.equal((await ui(c1.id, '/v1/catalog/nodes', { cookie: live.cookie })).status, 401, 'the live session ended');
    const ended = (await events(c1.id)).find((e) => e.action === 'consul-ui.sso.revoked' && e.details.uiSessionId === liveRow.id);
    assert.equal(ended?.details.reason, 'cluster-restored');
    const again = await openUi(now, c1.id);
    assert.equal((await ui(c1.id, '/v1/catalog/nodes', { cookie: again.cookie })).status, 200, 'one click opens it again');
  });

  it('deleting the cluster ends its UI sessions at once, and the delete operation revokes their tokens first', async () => {
    const w = await signIn(s.url, writer);
    const { cookie } = await openUi(w, c2.id);
    const row = (await uiRow(cookie))!;
    assert.equal((await ui(c2.id, '/v1/catalog/nodes', { cookie })).status, 200);
    const del = await s.request('DELETE', `/v1/clusters/${c2.id}`, { token: bearer });
    assert.equal(del.status, 202);
    assert.equal((await ui(c2.id, '/v1/catalog/nodes', { cookie })).status, 401, 'refused from the moment the delete is asked for');
    const op = await waitFor('the delete', () => s.request('GET', `/v1/operations/${del.body.operation.id}`, { token: bearer }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 120_000);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    assert.equal(op.body.steps[0].name, 'revoke-consul-ui-sessions');
    const revoked = (await events(c2.id)).find((e) => e.action === 'consul-ui.sso.revoked' && e.details.uiSessionId === row.id);
    assert.ok(revoked);
    assert.equal(revoked.details.reason, 'cluster-deleted');
    assert.ok(['deleted', 'absent'].includes(revoked.details.consulToken), revoked.details.consulToken);
    assert.equal(await s.db.consulUiSession.count({ where: { clusterId: c2.id } }), 0);
  });
});
