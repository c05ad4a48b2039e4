import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IP_ALLOWLIST_MAX } from '../libs/contracts/src';
import { READ, TENANT_A, WRITE, createBody, startStack, type TestStack } from './support/stack';

// The public endpoint's setting through the API, without a worker: every rule of ipAllowlist on
// create and PATCH (a 4xx saying what to fix, nothing written on a refusal), the setting kept on
// the row and shown, a change queued as an update-endpoint operation and audited with before and after.
describe('public endpoint and IP allowlist (API)', () => {
  let s: TestStack;
  let writer: string;
  let clusterId: string;
  const manyNetworks = (n: number) => Array.from({ length: n }, (_, i) => ({ cidr: `198.${18 + (i >> 8)}.${i & 255}.0/24`, description: `branch office ${i}` }));

  /** Rows a refusal must not have touched. */
  const counts = async () => ({
    clusters: await s.db.cluster.count(), operations: await s.db.operation.count(), events: await s.db.auditEvent.count(),
    row: clusterId ? await s.db.cluster.findUnique({ where: { id: clusterId }, select: { publicEndpoint: true, ipAllowlist: true, deletionProtection: true } }) : null,
  });

  before(async () => {
    s = await startStack();
    writer = s.token(TENANT_A, WRITE);
    const res = await s.request('POST', '/v1/clusters', {
      token: writer,
      body: createBody({ name: 'edge', publicEndpoint: true, ipAllowlist: [{ cidr: '203.0.113.0/24', description: 'office' }, { cidr: '2001:DB8:0:0::/32', description: 'office v6' }] }),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
  });
  after(() => s?.close());

  it('create keeps the allowlist (IPv6 in RFC 5952 form) and shows it; no public URL before the worker made one', async () => {
    const res = await s.request('GET', `/v1/clusters/${clusterId}`, { token: s.token(TENANT_A, READ) });
    assert.equal(res.status, 200);
    assert.equal(res.body.publicEndpoint, true);
    assert.deepEqual(res.body.ipAllowlist, [{ cidr: '203.0.113.0/24', description: 'office' }, { cidr: '2001:db8::/32', description: 'office v6' }]);
    assert.equal(res.body.endpoints.public, null);
    const events = await s.request('GET', `/v1/clusters/${clusterId}/events`, { token: writer });
    const created = events.body.events.find((e: { action: string }) => e.action === 'cluster.create.requested');
    assert.equal(created.details.publicEndpoint, true);
    assert.equal(created.details.ipAllowlist.length, 2);
  });

  const refusals: [string, Record<string, unknown>, number, string, RegExp][] = [
    ['not a CIDR', { ipAllowlist: [{ cidr: '203.0.113.7', description: 'x' }] }, 400, 'invalid_ipAllowlist_cidr', /ipAllowlist\.0\.cidr '203\.0\.113\.7' is not an IPv4 or IPv6 network in CIDR notation.*203\.0\.113\.7\/32/],
    ['an IPv6 prefix past 128', { ipAllowlist: [{ cidr: '2001:db8::/129' }] }, 400, 'invalid_ipAllowlist_cidr', /ipAllowlist\.0\.cidr/],
    ['host bits set', { ipAllowlist: [{ cidr: '10.0.0.0/8' }, { cidr: '192.0.2.77/24', description: 'lab' }] }, 422, 'cidr_host_bits_set', /ipAllowlist\.1\.cidr '192\.0\.2\.77\/24' has host bits set; the network is 192\.0\.2\.0\/24: send that/],
    ['IPv6 host bits set', { ipAllowlist: [{ cidr: '2001:db8::1/64' }] }, 422, 'cidr_host_bits_set', /the network is 2001:db8::\/64/],
    ['a network twice', { ipAllowlist: [{ cidr: '2001:db8::/32' }, { cidr: '2001:0db8::/32' }] }, 422, 'duplicate_cidr', /ipAllowlist\.1\.cidr 2001:db8::\/32 is already entry 0/],
    ['0.0.0.0/0 unconfirmed', { ipAllowlist: [{ cidr: '0.0.0.0/0', description: 'everyone' }] }, 422, 'any_address_not_confirmed', /every address on the internet.*"allowAnyAddress": true/],
    ['::/0 unconfirmed', { ipAllowlist: [{ cidr: '::/0' }] }, 422, 'any_address_not_confirmed', /::\/0/],
    ['a description too long', { ipAllowlist: [{ cidr: '198.51.100.0/24', description: 'x'.repeat(141) }] }, 400, 'invalid_ipAllowlist_description', /at most 140 characters/],
    ['an unknown entry field', { ipAllowlist: [{ cidr: '198.51.100.0/24', note: 'x' }] }, 400, 'invalid_ipAllowlist', /unknown ipAllowlist\.0 field\(s\): note/],
    [`more than ${IP_ALLOWLIST_MAX} entries`, { ipAllowlist: manyNetworks(IP_ALLOWLIST_MAX + 1) }, 400, 'invalid_ipAllowlist', new RegExp(`at most ${IP_ALLOWLIST_MAX} entries`)],
    ['not an array', { ipAllowlist: '203.0.113.0/24' }, 400, 'invalid_ipAllowlist', /must be an array of \{ cidr, description \}/],
  ];

  for (const [what, change, status, code, message] of refusals) {
    it(`create and PATCH refuse ${what} (${status} ${code}), writing nothing`, async () => {
      const before = await counts();
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'refused', publicEndpoint: true, ...change }) });
      assert.equal(created.status, status, JSON.stringify(created.body));
      assert.equal(created.body.error.code, code);
      assert.match(created.body.error.message, message);
      const patched = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { deletionProtection: true, ...change } });
      assert.equal(patched.status, status, JSON.stringify(patched.body));
      assert.equal(patched.body.error.code, code);
      assert.deepEqual(await counts(), before, 'nothing written, not even the deletionProtection sent with it');
    });
  }

  it('PATCH: allowAnyAddress only with ipAllowlist; a tier and an endpoint change are two requests', async () => {
    const before = await counts();
    const alone = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { publicEndpoint: false, allowAnyAddress: true } });
    assert.equal(alone.status, 400);
    assert.equal(alone.body.error.code, 'invalid_allowAnyAddress');
    const both = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { tier: 'standard', publicEndpoint: false } });
    assert.equal(both.status, 400);
    assert.equal(both.body.error.code, 'one_operation_per_request');
    const reader = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: s.token(TENANT_A, READ), body: { publicEndpoint: false } });
    assert.equal(reader.status, 403);
    assert.deepEqual(await counts(), before);
  });

  it(`PATCH takes ${IP_ALLOWLIST_MAX} entries (at least the 100 asked for): 202 with an update-endpoint operation, audited before and after`, async () => {
    const list = manyNetworks(IP_ALLOWLIST_MAX);
    const res = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { ipAllowlist: list } });
    assert.equal(res.status, 202, JSON.stringify(res.body).slice(0, 500));
    assert.equal(res.body.operation.kind, 'update-endpoint');
    assert.equal(res.body.operation.state, 'Queued');
    assert.equal(res.body.cluster.ipAllowlist.length, IP_ALLOWLIST_MAX);
    assert.deepEqual(res.body.cluster.ipAllowlist[150], list[150]);
    const events = await s.request('GET', `/v1/clusters/${clusterId}/events`, { token: writer });
    const changed = events.body.events.filter((e: { action: string }) => e.action === 'cluster.endpoint.changed').at(-1);
    assert.equal(changed.operationId, res.body.operation.id);
    assert.deepEqual(changed.details.from, { publicEndpoint: true, ipAllowlist: [{ cidr: '203.0.113.0/24', description: 'office' }, { cidr: '2001:db8::/32', description: 'office v6' }] });
    assert.deepEqual(changed.details.to, { publicEndpoint: true, ipAllowlist: list });
  });

  it('the same setting again queues nothing (200); 0.0.0.0/0 confirmed is taken; off keeps the allowlist', async () => {
    const same = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { publicEndpoint: true } });
    assert.equal(same.status, 200, JSON.stringify(same.body).slice(0, 300));
    const any = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { ipAllowlist: [{ cidr: '0.0.0.0/0', description: 'anyone' }], allowAnyAddress: true } });
    assert.equal(any.status, 202, JSON.stringify(any.body));
    assert.deepEqual(any.body.cluster.ipAllowlist, [{ cidr: '0.0.0.0/0', description: 'anyone' }]);
    const off = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: writer, body: { publicEndpoint: false } });
    assert.equal(off.status, 202);
    assert.equal(off.body.cluster.publicEndpoint, false);
    assert.deepEqual(off.body.cluster.ipAllowlist, [{ cidr: '0.0.0.0/0', description: 'anyone' }], 'kept for when it is turned on again');
    const ops = await s.request('GET', `/v1/clusters/${clusterId}/operations`, { token: writer });
    assert.equal(ops.body.operations.filter((o: { kind: string }) => o.kind === 'update-endpoint').length, 3);
  });

  it('the OpenAPI document shows the new fields', async () => {
    const res = await s.request('GET', '/docs/openapi.json');
    const text = JSON.stringify(res.body);
    for (const field of ['ipAllowlist', 'allowAnyAddress', 'IpAllowlistEntry', 'update-endpoint operation']) assert.ok(text.includes(field), field);
  });
});
