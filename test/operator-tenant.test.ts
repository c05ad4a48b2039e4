import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../infra/local/token';
import { ConfigError, loadConfig } from '../libs/core/src';
import { OPERATOR_TENANT, TENANT_A, WRITE, createBody, startStack, testConfig, type TestStack } from './support/stack';

/** Every operator route: the fleet, every invoice, the reconciliation, waves and the queues board (page, JSON API, session). */
const OPERATOR_ROUTES: [string, string, unknown?][] = [
  ['GET', '/v1/admin/clusters'],
  ['GET', '/v1/admin/billing/invoices/2026-11'],
  ['GET', '/v1/admin/billing/reconciliation?from=2026-11-01&to=2026-11-02'],
  ['POST', '/v1/admin/waves', { action: 'snapshot', selector: {}, canaries: 0, maxInFlight: 1, maxFailures: 0 }],
  ['GET', '/v1/admin/waves/00000000-0000-4000-8000-000000000000'],
  ['POST', '/admin/queues/session'],
  ['GET', '/admin/queues'],
  ['GET', '/admin/queues/api/queues'],
];

const sreFrom = (tenantId: string) => mintToken({ tenantId, user: 'admin', roles: ['Platform.SRE'] });

// A customer's own admin can assign any app role of a multi-tenant app in their tenant:
// Platform.SRE must count only in tokens from the operator's own tenant.
describe("operator rights come only from the operator's tenant", () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('refuses Platform.SRE from a customer tenant on every operator route, saying why', async () => {
    for (const [method, path, body] of OPERATOR_ROUTES) {
      const res = await s.request(method, path, { token: sreFrom(TENANT_A), body });
      assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'forbidden');
      assert.match(res.body.error.message, /only in tokens from the operator's own tenant: the token's tenant is not the operator's/);
    }
  });

  it("serves the same routes to Platform.SRE from the operator's tenant", async () => {
    for (const [method, path, body] of OPERATOR_ROUTES) {
      const res = await s.request(method, path, { token: sreFrom(OPERATOR_TENANT), body });
      assert.notEqual(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.notEqual(res.status, 401, `${method} ${path}`);
      assert.ok(res.status < 500, `${method} ${path}: ${res.status}`);
    }
  });

  it("refuses a customer admin's Platform.SRE in the board cookie and on the board's actions too; its customer roles still count", async () => {
    const admin = mintToken({ tenantId: TENANT_A, user: 'admin', roles: ['Platform.SRE', ...WRITE] });
    const created = await s.request('POST', '/v1/clusters', { token: admin, body: createBody({ name: 'own-cluster' }) });
    assert.equal(created.status, 202, 'Clusters.ReadWrite still counts in its own tenant');
    for (const path of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/api/redis/stats']) {
      const res = await s.request('GET', path, { headers: { cookie: `hcs_queues_session=${admin}` } });
      assert.equal(res.status, 403, `${path} with the token in the board cookie`);
    }
    const pause = await s.request('PUT', '/admin/queues/api/queues/operations/pause', { token: admin });
    assert.equal(pause.status, 403);
    const queues = await s.request('GET', '/admin/queues/api/queues?activeQueue=operations', { token: sreFrom(OPERATOR_TENANT) });
    assert.equal((queues.body.queues as { isPaused: boolean }[])[0]!.isPaused, false, 'the refused pause did nothing');
  });

  it('refuses an OPERATOR_TENANT_ID that is not a GUID, naming the variable; compares it without case', () => {
    assert.throws(() => loadConfig({}, { OPERATOR_TENANT_ID: 'contoso.onmicrosoft.com' }), (e: unknown) => e instanceof ConfigError && /OPERATOR_TENANT_ID: a tenant id \(GUID\)/.test(e.message));
    assert.equal(loadConfig({}, { OPERATOR_TENANT_ID: OPERATOR_TENANT.toUpperCase() }).OPERATOR_TENANT_ID, OPERATOR_TENANT);
  });

  it('gives no operator rights at all when no operator tenant is configured', async () => {
    const none = await startStack({ config: await testConfig({ OPERATOR_TENANT_ID: '' }) });
    try {
      assert.equal(none.config.OPERATOR_TENANT_ID, undefined);
      for (const [method, path, body] of OPERATOR_ROUTES) {
        const res = await none.request(method, path, { token: sreFrom(OPERATOR_TENANT), body });
        assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.error.message, /no operator tenant is configured \(OPERATOR_TENANT_ID\)/);
      }
    } finally {
      await none.close();
    }
  });
});
