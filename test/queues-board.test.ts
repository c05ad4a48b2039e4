import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../infra/local/token';
import { OPERATOR_TENANT, TENANT_A, WRITE, createBody, startStack, type TestStack } from './support/stack';

const SRE = ['Platform.SRE'];
const QUEUES_API = '/admin/queues/api/queues?activeQueue=operations&status=latest&page=1&jobsPerPage=50';

interface BoardQueue {
  name: string;
  counts: Record<string, number>;
  jobs: { id: string; name: string; data: { operationId?: string } }[];
}

// The BullMQ dashboard at /admin/queues, without a worker (so enqueued jobs stay waiting).
describe('queues dashboard (/admin/queues)', () => {
  let s: TestStack;
  let sre: string;
  let customer: string;
  /** A path of one of the board's static assets, taken from its page. */
  let asset: string;

  before(async () => {
    s = await startStack();
    sre = s.sreToken();
    customer = s.token(TENANT_A, WRITE, 'customer');
    const page = await s.request('GET', '/admin/queues', { token: sre });
    const src = /src="(static\/js\/[^"]+\.js)"/.exec(String(page.body));
    assert.ok(src, `the board page loads its scripts from static/: ${page.status}`);
    asset = `/admin/queues/${src[1]}`;
  });
  after(() => s.close());

  /** GET with only a Cookie header (what a browser sends when it navigates). */
  const withCookie = (path: string, cookie: string) => s.request('GET', path, { headers: { cookie } });

  it('serves the board page and its assets to Platform.SRE', async () => {
    const page = await s.request('GET', '/admin/queues', { token: sre });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.body, /<base href="\/admin\/queues\/"/);
    assert.match(page.body, /Managed Consul queues/);
    const js = await s.request('GET', asset, { token: sre });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    const deepLink = await s.request('GET', '/admin/queues/queue/operations', { token: sre });
    assert.equal(deepLink.status, 200);
  });

  const protectedPaths = () => ['/admin/queues', '/admin/queues/', QUEUES_API, '/admin/queues/api/redis/stats', asset, '/admin/queues/no-such-route'];

  it('answers 401 in the API error shape without a token or with a bad one, for every route under it', async () => {
    const expired = mintToken({ tenantId: OPERATOR_TENANT, user: 'sre', roles: SRE, expiresInSeconds: -600 });
    const badlySigned = `${sre.slice(0, -8)}${sre.slice(-8) === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA'}`;
    const variants: [string, Record<string, string>][] = [
      ['no token', {}],
      ['not bearer', { authorization: 'Basic dXNlcjpwYXNz' }],
      ['expired', { authorization: `Bearer ${expired}` }],
      ['badly signed', { authorization: `Bearer ${badlySigned}` }],
      ['garbage cookie', { cookie: 'hcs_queues_session=not-a-token' }],
      ['expired cookie', { cookie: `hcs_queues_session=${expired}` }],
    ];
    for (const path of protectedPaths()) {
      for (const method of ['GET', 'PUT']) {
        for (const [name, headers] of variants) {
          const res = await s.request(method, path, { headers });
          assert.equal(res.status, 401, `${method} ${path} with ${name}`);
          assert.equal(res.body.error.code, 'unauthenticated', `${method} ${path} with ${name}`);
          assert.match(res.body.error.message, /^authentication failed: /);
          assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
          assert.ok(!JSON.stringify(res.body).includes('eyJ'), 'the token is not echoed');
        }
      }
    }
    // A cookie that no longer authenticates is cleared.
    const stale = await withCookie('/admin/queues', `hcs_queues_session=${expired}`);
    assert.match(stale.headers.get('set-cookie') ?? '', /^hcs_queues_session=; Path=\/admin\/queues; Max-Age=0/);
  });

  it('answers 403 to a customer token, page, assets and JSON API alike', async () => {
    for (const path of protectedPaths()) {
      const res = await s.request('GET', path, { token: customer });
      assert.equal(res.status, 403, path);
      assert.deepEqual(res.body, { error: { code: 'forbidden', message: 'this action needs one of the roles: Platform.SRE', details: { requiredRoles: ['Platform.SRE'] } } });
    }
    // Pausing the queue is one of the board's actions: refused, and the queue is not paused.
    const pause = await s.request('PUT', '/admin/queues/api/queues/operations/pause', { token: customer });
    assert.equal(pause.status, 403);
    const listed = await s.request('GET', QUEUES_API, { token: sre });
    assert.equal((listed.body.queues as { isPaused: boolean }[])[0]!.isPaused, false);
    // Unknown under /admin/queues: 404 in the API's shape, and only after the role check.
    const missing = await s.request('GET', '/admin/queues/no-such-route', { token: sre });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
  });

  it('lists the operations queue with the job a cluster create enqueued', async () => {
    const created = await s.request('POST', '/v1/clusters', { token: customer, body: createBody({ name: 'board-orders' }) });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const operationId = created.body.operation.id as string;

    const res = await s.request('GET', QUEUES_API, { token: sre });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const queues = res.body.queues as BoardQueue[];
    assert.deepEqual(queues.map((q) => q.name), ['operations']);
    const [operations] = queues;
    assert.ok(operations!.counts.waiting! >= 1, JSON.stringify(operations!.counts));
    const job = operations!.jobs.find((j) => j.data.operationId === operationId);
    assert.ok(job, `job of operation ${operationId} in ${JSON.stringify(operations!.jobs.map((j) => j.id))}`);
    assert.equal(job.id, `op-${operationId}`);
    assert.equal(job.name, 'run-operation');

    // The same job straight from the queue the API enqueues on (its Redis prefix is the stack's QUEUE_PREFIX).
    const one = await s.request('GET', `/admin/queues/api/queues/operations/op-${operationId}`, { token: sre });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.job.data.operationId, operationId);
    const described = await s.request('GET', QUEUES_API, { token: sre });
    assert.equal((described.body.queues as { description?: string }[])[0]!.description, `Redis key prefix ${s.config.QUEUE_PREFIX}`);
  });

  it('POST /admin/queues/session sets a short-lived HttpOnly, Secure, SameSite=Strict cookie the board accepts', async () => {
    const anonymous = await s.request('POST', '/admin/queues/session');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, 'unauthenticated');
    assert.equal(anonymous.headers.get('set-cookie'), null);
    const refused = await s.request('POST', '/admin/queues/session', { token: customer });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'forbidden');
    assert.equal(refused.headers.get('set-cookie'), null);

    const res = await s.request('POST', '/admin/queues/session', { token: sre });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const setCookie = res.headers.get('set-cookie') ?? '';
    const attributes = setCookie.split(';').map((a) => a.trim());
    assert.equal(attributes[0], `hcs_queues_session=${sre}`);
    for (const a of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/admin/queues']) assert.ok(attributes.includes(a), `${a} in the cookie`);
    const maxAge = Number(/^Max-Age=(\d+)$/.exec(attributes.find((a) => a.startsWith('Max-Age=')) ?? '')?.[1]);
    assert.ok(maxAge > 3000 && maxAge <= 3600, `Max-Age ${maxAge}`);
    assert.ok(Math.abs(Date.parse(res.body.expiresAt as string) - (Date.now() + maxAge * 1000)) < 5000);

    const cookie = attributes[0]!;
    const page = await withCookie('/admin/queues', `theme=dark; ${cookie}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /<base href="\/admin\/queues\/"/);
    const listed = await withCookie(QUEUES_API, cookie);
    assert.equal(listed.status, 200);
    assert.deepEqual((listed.body.queues as BoardQueue[]).map((q) => q.name), ['operations']);
    assert.equal((await withCookie(asset, cookie)).status, 200);

    // The cookie never outlives the token in it.
    const shortLived = mintToken({ tenantId: OPERATOR_TENANT, user: 'sre', roles: SRE, expiresInSeconds: 120 });
    const short = await s.request('POST', '/admin/queues/session', { token: shortLived });
    assert.equal(short.status, 200);
    const shortAge = Number(/Max-Age=(\d+)/.exec(short.headers.get('set-cookie') ?? '')?.[1]);
    assert.ok(shortAge > 0 && shortAge <= 120, `Max-Age ${shortAge}`);

    // A customer's token in the cookie is still a customer.
    const forged = await withCookie(QUEUES_API, `hcs_queues_session=${customer}`);
    assert.equal(forged.status, 403);
    // The session endpoint itself takes the Authorization header only.
    const renew = await s.request('POST', '/admin/queues/session', { headers: { cookie } });
    assert.equal(renew.status, 401);
  });

  it('leaves the OpenAPI document and Swagger UI working, with the session route and without the board', async () => {
    const doc = await s.request('GET', '/docs/openapi.json');
    assert.equal(doc.status, 200);
    assert.ok(doc.body.paths['/admin/queues/session']?.post, 'the session route is documented');
    assert.ok(doc.body.paths['/v1/clusters'], 'the API is still documented');
    assert.deepEqual(Object.keys(doc.body.paths).filter((p) => p.startsWith('/admin/queues/') && p !== '/admin/queues/session'), []);
    const ui = await s.request('GET', '/docs');
    assert.equal(ui.status, 200);
    assert.match(ui.body, /swagger-ui-bundle\.js/);
    const bundle = await fetch(`${s.url}/docs/assets/swagger-ui-bundle.js`);
    assert.equal(bundle.status, 200);
    assert.match(await bundle.text(), /SwaggerUIBundle/);
  });
});
