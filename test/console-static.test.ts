/**
 * The built console as the API serves it: index.html for the console's own paths (the browser's
 * router shows the page), hashed assets cached for good, and nothing of the API shadowed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONSOLE_DIR } from '../apps/api/src/console/console.routes';
import { startStack, type TestStack } from './support/stack';

describe('the console served by the API', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('answers index.html with a strict CSP on every console path, deep links included', async () => {
    for (const p of ['/', '/clusters', '/clusters/new', '/clusters/3f1c2e7a-0000-4000-8000-000000000000?tab=snapshots', '/deployments/x', '/fleet', '/fleet/waves/y']) {
      const res = await fetch(`${s.url}${p}`);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/, p);
      const html = await res.text();
      assert.match(html, /<div id="root"><\/div>/, p);
      assert.match(html, /<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/, p);
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const d of ["script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'", "object-src 'none'"]) assert.ok(csp.includes(d), `${p}: ${d} in ${csp}`);
      assert.equal(res.headers.get('cache-control'), 'no-cache', p);
    }
  });

  it('serves the bundle from /assets/ with a long cache, and an unknown asset is a 404 in the API error shape', async () => {
    const files = fs.readdirSync(path.join(CONSOLE_DIR, 'assets')).filter((f) => f.endsWith('.js'));
    assert.ok(files.length > 0, 'the build wrote a bundle');
    const res = await fetch(`${s.url}/assets/${files[0]}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    const missing = await fetch(`${s.url}/assets/index-nothere.js`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
    const escape = await fetch(`${s.url}/assets/..%2f..%2fpackage.json`);
    assert.notEqual(escape.status, 200, 'no file outside the build');
  });

  it('never shadows the API: /v1, /auth, /sso, /docs, /healthz, /metrics and /admin answer as before', async () => {
    const v1 = await fetch(`${s.url}/v1/clusters`);
    assert.equal(v1.status, 401);
    assert.match(v1.headers.get('content-type') ?? '', /json/);
    const unknown = await fetch(`${s.url}/v1/nothing-here`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /json/);
    assert.equal((await fetch(`${s.url}/auth/session`)).status, 401);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /http_request_duration_seconds/);
    assert.equal(((await (await fetch(`${s.url}/docs/openapi.json`)).json()) as { openapi: string }).openapi.slice(0, 2), '3.');
    for (const p of ['/sso/clusters/3f1c2e7a-0000-4000-8000-000000000000', '/admin/queues', '/somewhere-else']) {
      const res = await fetch(`${s.url}${p}`, { redirect: 'manual' });
      assert.doesNotMatch(await res.text(), /<div id="root">/, `${p} is not the console`);
    }
  });
});
