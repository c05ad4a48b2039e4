import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../infra/local/token';
import { OPERATOR_TENANT, TENANT_A, startStack, testConfig, type TestStack } from './support/stack';

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
