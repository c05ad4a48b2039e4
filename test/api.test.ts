import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PUBLIC_ROUTE, REQUIRED_ROLES } from '../apps/api/src/auth/principal';
import { mintToken } from '../infra/local/token';
import { routeHandlers } from './support/routes';
import { READ, TENANT_A, TENANT_B, WRITE, createBody, startStack, type TestStack } from './support/stack';

// The API without a worker: authentication, authorization, validation, tenancy and idempotency.
describe('API', () => {
  let s: TestStack;
  let writer: string;
  before(async () => {
    s = await startStack();
    writer = s.token(TENANT_A, WRITE);
  });
  after(() => s.close());

  describe('authentication', () => {
    const cases: [string, () => Record<string, string>][] = [
      ['no token', () => ({})],
      ['not a bearer token', () => ({ authorization: 'Basic dXNlcjpwYXNz' })],
      ['wrong audience', () => ({ authorization: `Bearer ${mintToken({ tenantId: TENANT_A, user: 'u', roles: WRITE, audience: 'api://someone-else' })}` })],
      ['wrong issuer', () => ({ authorization: `Bearer ${mintToken({ tenantId: TENANT_A, user: 'u', roles: WRITE, issuer: 'https://login.example.invalid/v2.0' })}` })],
      ['expired', () => ({ authorization: `Bearer ${mintToken({ tenantId: TENANT_A, user: 'u', roles: WRITE, expiresInSeconds: -600 })}` })],
      [
        'badly signed',
        () => {
          const t = mintToken({ tenantId: TENANT_A, user: 'u', roles: WRITE });
          const [h, p, sig] = t.split('.');
          const flipped = (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11);
          return { authorization: `Bearer ${h}.${p}.${sig.slice(0, 10)}${flipped}` };
        },
      ],
    ];
    for (const [name, headers] of cases) {
      it(`401 with ${name}`, async () => {
        const res = await s.request('GET', '/v1/clusters', { headers: headers() });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'unauthenticated');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
        assert.ok(!JSON.stringify(res.body).includes('eyJ'), 'the token is not echoed');
      });
    }

    it('accepts a valid token and scopes to its tenant', async () => {
      const res = await s.request('GET', '/v1/clusters', { token: s.token(TENANT_A, READ) });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.clusters, []);
    });
  });

  describe('authorization', () => {
    it('403 for a Read-only token on create, and nothing is written', async () => {
      const res = await s.request('POST', '/v1/clusters', { token: s.token(TENANT_A, READ), body: createBody({ name: 'readonly' }) });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'forbidden');
      const list = await s.request('GET', '/v1/clusters', { token: writer });
      assert.ok(!list.body.clusters.some((c: { name: string }) => c.name === 'readonly'));
    });

    it('403 for a token with no roles on reads', async () => {
      const res = await s.request('GET', '/v1/clusters', { token: s.token(TENANT_A, []) });
      assert.equal(res.status, 403);
    });
  });

  describe('validation', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['name with uppercase', { name: 'Orders' }, 'invalid_name'],
      ['name starting with a digit', { name: '1orders' }, 'invalid_name'],
      ['name of 37 chars', { name: 'a'.repeat(37) }, 'invalid_name'],
      ['name with underscore', { name: 'my_cluster' }, 'invalid_name'],
      ['unknown region', { region: 'moon-1' }, 'invalid_region'],
      ['unknown tier', { tier: 'huge' }, 'invalid_tier'],
      ['unknown version', { consulVersion: '9.9.9' }, 'invalid_consulVersion'],
      ['bad subscription id', { subscriptionId: 'not-a-guid' }, 'invalid_subscriptionId'],
      ['bad datacenter', { datacenter: 'DC_1' }, 'invalid_datacenter'],
      ['non-boolean publicEndpoint', { publicEndpoint: 'yes' }, 'invalid_publicEndpoint'],
      ['unknown field', { color: 'blue' }, 'unknown_field'],
    ];
    for (const [what, over, code] of cases) {
      it(`400 ${code} for ${what}`, async () => {
        const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody(over) });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        assert.ok(res.body.error.message.length > 10);
      });
    }
    for (const field of ['name', 'subscriptionId', 'resourceGroup', 'region', 'tier']) {
      it(`400 missing_${field} when ${field} is absent`, async () => {
        const body = createBody();
        delete body[field];
        const res = await s.request('POST', '/v1/clusters', { token: writer, body });
        assert.equal(res.status, 400);
        assert.equal(res.body.error.code, `missing_${field}`);
        assert.equal(res.body.error.details.field, field);
      });
    }
    it('400 for a body that is not JSON, without a stack trace', async () => {
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: '{"name":', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
      assert.ok(res.body.error.code);
      assert.ok(!JSON.stringify(res.body).includes('at '), 'no stack trace');
    });
    it('400 for a JSON array body', async () => {
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: [] });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'invalid_body');
    });
    it('refused requests wrote nothing', async () => {
      const rows = await s.db.cluster.count();
      const ops = await s.db.operation.count();
      assert.equal(rows, 0);
      assert.equal(ops, 0);
    });
  });

  describe('create, idempotency and conflicts', () => {
    it('202 with cluster, operation and Location', async () => {
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'alpha', tier: 'standard' }) });
      assert.equal(res.status, 202);
      assert.equal(res.body.cluster.name, 'alpha');
      assert.equal(res.body.cluster.state, 'Creating');
      assert.equal(res.body.cluster.servers, 3);
      assert.equal(res.body.cluster.datacenter, 'alpha');
      assert.equal(res.body.cluster.consulVersion, '1.8.7');
      assert.equal(res.body.operation.kind, 'create');
      assert.equal(res.body.operation.state, 'Queued');
      assert.equal(res.headers.get('location'), `/v1/operations/${res.body.operation.id}`);
      const op = await s.request('GET', res.headers.get('location')!, { token: writer });
      assert.equal(op.status, 200);
      assert.equal(op.body.clusterId, res.body.cluster.id);
    });

    it('a retried create with the same Idempotency-Key returns the same answer and creates one cluster', async () => {
      const headers = { 'idempotency-key': 'create-beta-1' };
      const first = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'beta' }), headers });
      const second = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'beta' }), headers });
      assert.equal(first.status, 202);
      assert.equal(second.status, 202);
      assert.equal(second.body.cluster.id, first.body.cluster.id);
      assert.equal(second.body.operation.id, first.body.operation.id);
      assert.equal(second.headers.get('location'), first.headers.get('location'));
      assert.equal(await s.db.cluster.count({ where: { name: 'beta' } }), 1);
      assert.equal(await s.db.operation.count({ where: { clusterId: first.body.cluster.id } }), 1);
    });

    it('concurrent creates with one Idempotency-Key make one cluster', async () => {
      const headers = { 'idempotency-key': 'create-gamma-race' };
      const answers = await Promise.all(Array.from({ length: 5 }, () => s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'gamma' }), headers })));
      assert.deepEqual(answers.map((a) => a.status), [202, 202, 202, 202, 202]);
      assert.equal(new Set(answers.map((a) => a.body.cluster.id)).size, 1);
      assert.equal(await s.db.cluster.count({ where: { name: 'gamma' } }), 1);
    });

    it('422 when an Idempotency-Key is reused with a different body', async () => {
      const headers = { 'idempotency-key': 'create-delta' };
      await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'delta' }), headers });
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'delta2' }), headers });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, 'idempotency_key_reused');
      assert.equal(await s.db.cluster.count({ where: { name: 'delta2' } }), 0);
    });

    it('409 for a second cluster with the same name in the same tenant, subscription and resource group', async () => {
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'alpha' }) });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'cluster_name_taken');
      const otherRg = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'alpha', resourceGroup: 'rg-other' }) });
      assert.equal(otherRg.status, 202);
      const otherTenant = await s.request('POST', '/v1/clusters', { token: s.token(TENANT_B, WRITE), body: createBody({ name: 'alpha' }) });
      assert.equal(otherTenant.status, 202);
    });
  });

  describe('tenancy', () => {
    it("404 on every cluster and operation route for another tenant's cluster", async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'private' }) });
      const id = created.body.cluster.id;
      const opId = created.body.operation.id;
      const other = s.token(TENANT_B, [...WRITE, ...READ]);
      const routes: [string, string][] = [
        ['GET', `/v1/clusters/${id}`],
        ['DELETE', `/v1/clusters/${id}`],
        ['GET', `/v1/clusters/${id}/client-config`],
        ['POST', `/v1/clusters/${id}/tokens`],
        ['GET', `/v1/clusters/${id}/tokens`],
        ['DELETE', `/v1/clusters/${id}/tokens/${opId}`],
        ['POST', `/v1/operations/${opId}/token`],
        ['GET', `/v1/operations/${opId}`],
        ['GET', `/v1/clusters/${id}/snapshots`],
        ['POST', `/v1/clusters/${id}/snapshots`],
        ['PATCH', `/v1/clusters/${id}/snapshots/${opId}`],
        ['DELETE', `/v1/clusters/${id}/snapshots/${opId}`],
        ['POST', `/v1/clusters/${id}/snapshots/${opId}/restore`],
        ['GET', `/v1/clusters/${id}/operations`],
        ['GET', `/v1/clusters/${id}/events`],
        ['POST', `/v1/operations/${opId}/cancel`],
        ['PATCH', `/v1/clusters/${id}`],
      ];
      for (const [method, path] of routes) {
        // Well-formed requests (a malformed one is refused at the edge with 400 before any lookup).
        const snapshotNamed = (method === 'POST' && path.endsWith('/snapshots')) || (method === 'PATCH' && path.includes('/snapshots/'));
        const body = snapshotNamed ? { name: 'x' } : method === 'PATCH' ? { tier: 'plus' } : undefined;
        const res = await s.request(method, path, { token: other, body });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.match(res.body.error.code, /not_found$/);
      }
      const list = await s.request('GET', '/v1/clusters', { token: other });
      assert.ok(!list.body.clusters.some((c: { id: string }) => c.id === id));
      // The owner still sees it, and nothing was changed by the refused calls.
      const mine = await s.request('GET', `/v1/clusters/${id}`, { token: writer });
      assert.equal(mine.body.state, 'Creating');
      assert.equal(await s.db.operation.count({ where: { clusterId: id } }), 1);
    });

    it('the hot read with a remembered token: another tenant still 404, a deletion seen at once (nothing cached)', async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'hot-read' }) });
      const id = created.body.cluster.id;
      const other = s.token(TENANT_B, [...WRITE, ...READ]);
      // Each token is used several times, so later answers come from the remembered token.
      for (let i = 0; i < 3; i++) {
        assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token: writer })).status, 200);
        assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token: other })).status, 404);
      }
      // The product answers a deleted cluster's GET with its tombstone (state Deleted, as the lifecycle e2e
      // test expects); what matters here is that the very next read shows it, not a remembered copy.
      await s.db.cluster.update({ where: { id }, data: { state: 'Deleted', deletedAt: new Date() } });
      const gone = await s.request('GET', `/v1/clusters/${id}`, { token: writer });
      assert.equal(gone.status, 200);
      assert.equal(gone.body.state, 'Deleted');
      assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token: other })).status, 404);
      // A DELETE of it is a 404 (it was deleted), and it is gone from the list.
      assert.equal((await s.request('DELETE', `/v1/clusters/${id}`, { token: writer })).status, 404);
      const list = await s.request('GET', '/v1/clusters', { token: writer });
      assert.ok(!list.body.clusters.some((c: { id: string }) => c.id === id));
    });

    it('the hot read under concurrency: reads gathered into one statement each answer their own tenant', async () => {
      const mine = await Promise.all(['batch-a1', 'batch-a2'].map((name) => s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name }) })));
      const theirsToken = s.token(TENANT_B, [...WRITE, ...READ]);
      const theirs = await s.request('POST', '/v1/clusters', { token: theirsToken, body: createBody({ name: 'batch-b1' }) });
      const a = mine.map((r) => r.body.cluster.id as string);
      const b = theirs.body.cluster.id as string;
      const missing = '0f0f0f0f-0000-4000-8000-00000000beef';
      // Sixty at once (the API gathers the reads that arrive while two statements are in flight).
      const asks = Array.from({ length: 60 }, (_, i) => {
        const [token, id, expected] = ([[writer, a[0], 200], [writer, a[1], 200], [writer, b, 404], [theirsToken, b, 200], [theirsToken, a[0], 404], [writer, missing, 404]] as const)[i % 6]!;
        return { token, id, expected };
      });
      const answers = await Promise.all(asks.map((q) => s.request('GET', `/v1/clusters/${q.id}`, { token: q.token })));
      answers.forEach((res, i) => {
        assert.equal(res.status, asks[i]!.expected, `read ${i} of ${asks[i]!.id}`);
        if (res.status === 200) assert.equal(res.body.id, asks[i]!.id, `read ${i} answered its own cluster`);
      });
    });

    it('400 naming the id for ids that are not UUIDs', async () => {
      for (const bad of ['not-a-uuid', '-'.repeat(36), 'constructor']) {
        const res = await s.request('GET', `/v1/clusters/${bad}`, { token: writer });
        assert.equal(res.status, 400);
        assert.equal(res.body.error.code, 'invalid_id');
        assert.match(res.body.error.message, /the cluster id must be a UUID/);
      }
    });

    it('409 for client config of a cluster that is not Running', async () => {
      const list = await s.request('GET', '/v1/clusters', { token: writer });
      const res = await s.request('GET', `/v1/clusters/${list.body.clusters[0].id}/client-config`, { token: writer });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'cluster_not_running');
    });
  });

  describe('operations: list, cancel, events', () => {
    it('cancels a queued create, marks the cluster, and says why a second cancel cannot', async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'cancel-me' }) });
      const opId = created.body.operation.id;
      const canceled = await s.request('POST', `/v1/operations/${opId}/cancel`, { token: writer });
      assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
      assert.equal(canceled.body.state, 'Canceled');
      const cluster = await s.request('GET', `/v1/clusters/${created.body.cluster.id}`, { token: writer });
      assert.equal(cluster.body.state, 'Failed');
      assert.match(cluster.body.stateReason, /canceled/);
      const again = await s.request('POST', `/v1/operations/${opId}/cancel`, { token: writer });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'operation_finished');
      const reader = await s.request('POST', `/v1/operations/${opId}/cancel`, { token: s.token(TENANT_A, READ) });
      assert.equal(reader.status, 403);
    });

    it('refuses to cancel a running operation, naming its step', async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'busy' }) });
      const opId = created.body.operation.id;
      await s.db.operation.update({ where: { id: opId }, data: { state: 'Running', currentStep: 'start-servers' } });
      const res = await s.request('POST', `/v1/operations/${opId}/cancel`, { token: writer });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'operation_running');
      assert.match(res.body.error.message, /start-servers/);
      assert.equal((await s.db.operation.findUniqueOrThrow({ where: { id: opId } })).state, 'Running', 'nothing changed');
    });

    it("lists a cluster's operations and audit events", async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'history' }) });
      const id = created.body.cluster.id;
      await s.request('POST', `/v1/operations/${created.body.operation.id}/cancel`, { token: writer });
      const ops = await s.request('GET', `/v1/clusters/${id}/operations`, { token: s.token(TENANT_A, READ) });
      assert.equal(ops.status, 200);
      assert.deepEqual(ops.body.operations.map((o: { kind: string; state: string }) => [o.kind, o.state]), [['create', 'Canceled']]);
      const events = await s.request('GET', `/v1/clusters/${id}/events`, { token: writer });
      assert.deepEqual(events.body.events.map((e: { action: string }) => e.action), ['cluster.create.requested', 'operation.canceled']);
    });
  });

  describe('deletion protection', () => {
    const events = async (id: string) => (await s.request('GET', `/v1/clusters/${id}/events`, { token: writer })).body.events as { action: string; actor: string; details: any }[];

    it('is off by default, on when created so, and shown in the cluster view and the list', async () => {
      const plain = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'unguarded' }) });
      assert.equal(plain.status, 202, JSON.stringify(plain.body));
      assert.equal(plain.body.cluster.deletionProtection, false);
      const guarded = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'guarded-at-birth', deletionProtection: true }) });
      assert.equal(guarded.status, 202, JSON.stringify(guarded.body));
      assert.equal(guarded.body.cluster.deletionProtection, true);
      assert.equal((await s.request('GET', `/v1/clusters/${guarded.body.cluster.id}`, { token: writer })).body.deletionProtection, true, 'the hot read shows it');
      const listed = (await s.request('GET', '/v1/clusters', { token: writer })).body.clusters.find((c: { id: string }) => c.id === guarded.body.cluster.id);
      assert.equal(listed.deletionProtection, true);
      const created = (await events(guarded.body.cluster.id)).find((e) => e.action === 'cluster.create.requested')!;
      assert.equal(created.details.deletionProtection, true);
    });

    it('400 naming the field for a value that is not a boolean, and nothing written', async () => {
      const clusters = await s.db.cluster.count();
      const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'guard-typo', deletionProtection: 'yes' }) });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'invalid_deletionProtection');
      assert.equal(res.body.error.details.field, 'deletionProtection');
      assert.match(res.body.error.message, /deletionProtection must be true or false/);
      assert.equal(await s.db.cluster.count(), clusters);
    });

    it('a protected cluster: DELETE is 409 deletion_protected saying how to turn it off, and writes nothing; PATCH off (audited), then DELETE works', async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'guarded' }) });
      const id: string = created.body.cluster.id;
      const on = await s.request('PATCH', `/v1/clusters/${id}`, { token: writer, body: { deletionProtection: true } });
      assert.equal(on.status, 200, JSON.stringify(on.body));
      assert.equal(on.body.deletionProtection, true);
      const history = await events(id);
      const caller = history.find((e) => e.action === 'cluster.create.requested')!.actor;
      const turnedOn = history.filter((e) => e.action === 'cluster.deletion-protection.changed');
      assert.deepEqual(turnedOn.map((e) => [e.actor, e.details]), [[caller, { from: false, to: true }]], 'audited, as the caller who changed it');
      // The same value again is no change: no second event.
      assert.equal((await s.request('PATCH', `/v1/clusters/${id}`, { token: writer, body: { deletionProtection: true } })).status, 200);
      assert.equal((await events(id)).filter((e) => e.action === 'cluster.deletion-protection.changed').length, 1);

      const before = { ops: await s.db.operation.count({ where: { clusterId: id } }), audit: await s.db.auditEvent.count({ where: { clusterId: id } }), row: await s.db.cluster.findUniqueOrThrow({ where: { id } }) };
      const refused = await s.request('DELETE', `/v1/clusters/${id}`, { token: writer });
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'deletion_protected');
      assert.ok(refused.body.error.message.includes(`PATCH /v1/clusters/${id} {"deletionProtection":false}`), `the message says how to turn it off: ${refused.body.error.message}`);
      assert.match(refused.body.error.message, /--deletion-protection off/);
      assert.equal(await s.db.operation.count({ where: { clusterId: id } }), before.ops, 'no delete operation');
      assert.equal(await s.db.auditEvent.count({ where: { clusterId: id } }), before.audit, 'no audit event');
      const after = await s.db.cluster.findUniqueOrThrow({ where: { id } });
      assert.deepEqual([after.state, after.updatedAt], [before.row.state, before.row.updatedAt], 'the cluster row is untouched');
      // Refused again, and at once by concurrent requests alike.
      const again = await Promise.all([1, 2, 3].map(() => s.request('DELETE', `/v1/clusters/${id}`, { token: writer })));
      assert.deepEqual(again.map((r) => r.status), [409, 409, 409]);

      const off = await s.request('PATCH', `/v1/clusters/${id}`, { token: writer, body: { deletionProtection: false } });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.deletionProtection, false);
      const changes = (await events(id)).filter((e) => e.action === 'cluster.deletion-protection.changed').map((e) => e.details);
      assert.deepEqual(changes, [{ from: false, to: true }, { from: true, to: false }]);
      const deleted = await s.request('DELETE', `/v1/clusters/${id}`, { token: writer });
      assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
      assert.equal(deleted.body.operation.kind, 'delete');
      assert.equal((await s.request('GET', `/v1/clusters/${id}`, { token: writer })).body.state, 'Deleting');
      // A deleting cluster's protection cannot be turned back on.
      const late = await s.request('PATCH', `/v1/clusters/${id}`, { token: writer, body: { deletionProtection: true } });
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'cluster_deleting');
    });

    it('a Read-only token cannot change it (403), and a refused PATCH changes no other setting either', async () => {
      const created = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name: 'guard-read' }) });
      const id: string = created.body.cluster.id;
      const reader = await s.request('PATCH', `/v1/clusters/${id}`, { token: s.token(TENANT_A, READ), body: { deletionProtection: true } });
      assert.equal(reader.status, 403);
      const mixed = await s.request('PATCH', `/v1/clusters/${id}`, { token: writer, body: { deletionProtection: true, snapshotPolicy: { intervalHours: 99 } } });
      assert.equal(mixed.status, 400);
      assert.equal(mixed.body.error.code, 'invalid_snapshotPolicy_intervalHours');
      const row = await s.db.cluster.findUniqueOrThrow({ where: { id } });
      assert.deepEqual([row.deletionProtection, row.snapshotIntervalHours], [false, 24]);
    });
  });

  describe('SRE fleet view', () => {
    it('lists every tenant\'s clusters for Platform.SRE, filtered; customers get 403', async () => {
      const sre = s.sreToken();
      const all = await s.request('GET', '/v1/admin/clusters', { token: sre });
      assert.equal(all.status, 200);
      const tenants = new Set(all.body.clusters.map((c: { tenantId: string }) => c.tenantId));
      assert.ok(tenants.has(TENANT_A) && tenants.has(TENANT_B), 'all tenants');
      const failed = await s.request('GET', '/v1/admin/clusters?state=Failed', { token: sre });
      assert.ok(failed.body.clusters.length >= 1);
      assert.ok(failed.body.clusters.every((c: { state: string }) => c.state === 'Failed'));
      const none = await s.request('GET', '/v1/admin/clusters?region=eastus', { token: sre });
      assert.deepEqual(none.body.clusters, []);
      const bad = await s.request('GET', '/v1/admin/clusters?colour=red', { token: sre });
      assert.equal(bad.status, 400);
      const customer = await s.request('GET', '/v1/admin/clusters', { token: s.token(TENANT_A, [...WRITE, ...READ]) });
      assert.equal(customer.status, 403);
    });
  });

  describe('catalog and service endpoints', () => {
    it('lists regions, versions and tiers', async () => {
      const regions = await s.request('GET', '/v1/regions', { token: writer });
      assert.ok(regions.body.regions.length >= 50);
      assert.ok(regions.body.regions.some((r: { name: string; displayName: string }) => r.name === 'westeurope' && r.displayName === 'West Europe'));
      const versions = await s.request('GET', '/v1/versions', { token: writer });
      assert.deepEqual(versions.body.versions, [{ version: '1.8.7', status: 'RECOMMENDED' }]);
      const tiers = await s.request('GET', '/v1/tiers', { token: writer });
      assert.deepEqual(tiers.body.tiers.map((t: { name: string; servers: number }) => [t.name, t.servers]), [['development', 1], ['standard', 3], ['plus', 5]]);
    });

    it('serves the catalogs only to a token with one of our roles (Clusters.Read, Clusters.ReadWrite, Platform.SRE of the operator)', async () => {
      const noRole = mintToken({ tenantId: TENANT_A, user: 'someone', roles: [] });
      const otherApp = mintToken({ tenantId: TENANT_A, user: 'someone', roles: ['Some.OtherRole'] });
      const customerSre = mintToken({ tenantId: TENANT_A, user: 'admin', roles: ['Platform.SRE'] });
      for (const path of ['/v1/regions', '/v1/versions', '/v1/tiers']) {
        for (const [who, t] of [['no role', noRole], ['another app role', otherApp], ["a customer's Platform.SRE", customerSre]] as const) {
          const res = await s.request('GET', path, { token: t });
          assert.equal(res.status, 403, `${path} with ${who}`);
          assert.equal(res.body.error.code, 'forbidden');
        }
        for (const [who, t] of [['Clusters.Read', s.token(TENANT_A, READ)], ['Clusters.ReadWrite', writer], ['an operator', s.sreToken()]] as const) {
          const res = await s.request('GET', path, { token: t });
          assert.equal(res.status, 200, `${path} with ${who}: ${JSON.stringify(res.body?.error)}`);
        }
      }
    });

    it('every route says who may call it, @Public() or @AnyRole(...): a token with no role of ours reaches none', () => {
      const routes = routeHandlers(s.api);
      const undeclared = routes
        .filter(({ controller, handler }) => ![PUBLIC_ROUTE, REQUIRED_ROLES].some((key) => Reflect.getMetadata(key, handler) !== undefined || Reflect.getMetadata(key, controller) !== undefined))
        .map((r) => r.route);
      assert.ok(routes.length >= 30, `found ${routes.length} routes`);
      assert.deepEqual(undeclared, [], 'routes open to any signed-in token');
    });

    it('serves healthz, readyz, metrics and docs without a token', async () => {
      assert.equal((await s.request('GET', '/healthz')).status, 200);
      const ready = await s.request('GET', '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.checks, { database: 'ok', redis: 'ok' });
      const metrics = await s.request('GET', '/metrics');
      assert.match(metrics.body, /http_request_duration_seconds_bucket/);
      const docs = await s.request('GET', '/docs/openapi.json');
      assert.equal(docs.status, 200);
      assert.ok(docs.body.paths['/v1/clusters']);
      assert.ok(docs.body.paths['/v1/clusters/{id}/client-config']);
      assert.match((await s.request('GET', '/docs')).body, /swagger-ui/);
    });

    it('answers unknown routes with the error shape', async () => {
      const res = await s.request('GET', '/v1/nope', { token: writer });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'not_found');
    });
  });
});
