import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { ROUTES, createClusterBody, openApiDocument, type RouteContract } from '../../../../libs/contracts/src';
import { VERSIONS } from '../../../../libs/core/src';
import { answerProblem, verifyAnswer } from './answers';
import { catalogOf, parseInput } from './input';

const catalog = catalogOf({ versions: VERSIONS });
const operation = {
  id: randomUUID(), kind: 'delete', state: 'Queued', progress: 0, clusterId: randomUUID(), currentStep: null, steps: [], attempts: 0,
  createdAt: new Date().toISOString(), startedAt: null, finishedAt: null,
};

test('an answer is checked against its route: a declared shape passes; a field more or less, another status or a non-JSON error does not', () => {
  const route: RouteContract = ROUTES.deleteCluster;
  const json = 'application/json; charset=utf-8';
  assert.equal(answerProblem(route, 202, json, JSON.stringify({ operation })), undefined);
  assert.match(answerProblem(route, 202, json, JSON.stringify({ operation: { ...operation, secret: 'x' } }))!, /operation/, 'an undeclared field');
  const { kind: _kind, ...withoutKind } = operation;
  assert.match(answerProblem(route, 202, json, JSON.stringify({ operation: withoutKind }))!, /operation\.kind/, 'a missing field');
  assert.match(answerProblem(route, 200, json, JSON.stringify({ operation }))!, /status 200/, 'a status the route does not answer with');
  assert.equal(answerProblem(route, 404, json, JSON.stringify({ error: { code: 'cluster_not_found', message: 'no cluster' } })), undefined);
  assert.match(answerProblem(route, 404, 'text/html', '<p>no</p>')!, /expected JSON/, 'a JSON route refuses in JSON');
  assert.equal(answerProblem(ROUTES.login, 400, 'text/html; charset=utf-8', '<p>no</p>'), undefined, 'a browser route refuses with a page');
  assert.equal(answerProblem(ROUTES.invoice, 200, 'text/csv; charset=utf-8', 'a,b'), undefined);
});

test('the answer check turns a mismatch into a 500 naming the route, and leaves other routes alone', async () => {
  const headers = new Map<string, string>([['content-type', 'application/json']]);
  const logged: object[] = [];
  const reply = {
    statusCode: 202,
    getHeader: (n: string) => headers.get(n),
    code(n: number) {
      this.statusCode = n;
      return this;
    },
    header(n: string, v: string) {
      headers.set(n, v);
      return this;
    },
  };
  const req = { method: 'DELETE', routeOptions: { url: '/v1/clusters/:id' }, log: { error: (o: object) => logged.push(o) } };
  const out = await verifyAnswer(req, reply, JSON.stringify({ operation, extra: true }));
  assert.equal(reply.statusCode, 500);
  assert.equal(JSON.parse(String(out)).error.code, 'answer_contract_violation');
  assert.equal(logged.length, 1);
  const other = await verifyAnswer({ ...req, routeOptions: { url: '/ui/*' } }, { ...reply, statusCode: 200 }, '<html>');
  assert.equal(other, '<html>');
});

test('one rule, one place: the create body parses into the command (defaults filled), and a refusal names the field with the API\'s code', () => {
  const schema = createClusterBody(catalog);
  const cmd = parseInput('body', schema, { name: 'orders', subscriptionId: '8A1A0E7C-6B1B-4F6A-9A8B-2B5C3C2D1E0F', resourceGroup: 'rg', region: 'westeurope', tier: 'standard' });
  assert.deepEqual(
    { datacenter: cmd.datacenter, subscriptionId: cmd.subscriptionId, publicEndpoint: cmd.publicEndpoint, deletionProtection: cmd.deletionProtection, snapshotPolicy: cmd.snapshotPolicy, upgradePolicy: cmd.upgradePolicy },
    { datacenter: 'orders', subscriptionId: '8a1a0e7c-6b1b-4f6a-9a8b-2b5c3c2d1e0f', publicEndpoint: false, deletionProtection: false, snapshotPolicy: { intervalHours: 24, retention: 30 }, upgradePolicy: { mode: 'manual', window: null, pin: 'none' } },
  );
  const refusal = (body: unknown) => {
    try {
      parseInput('body', schema, body);
    } catch (e) {
      const v = e as { code: string; details?: { field?: string } };
      return [v.code, v.details?.field];
    }
    return undefined;
  };
  const base = { name: 'orders', subscriptionId: randomUUID(), resourceGroup: 'rg', region: 'westeurope', tier: 'standard' };
  assert.deepEqual(refusal({ ...base, name: undefined }), ['missing_name', 'name']);
  assert.deepEqual(refusal({ ...base, name: '' }), ['missing_name', 'name']);
  assert.deepEqual(refusal({ ...base, name: 'Orders' }), ['invalid_name', 'name']);
  assert.deepEqual(refusal({ ...base, tier: 'gold' }), ['invalid_tier', 'tier']);
  assert.deepEqual(refusal({ ...base, region: 'atlantis' }), ['invalid_region', 'region']);
  assert.deepEqual(refusal({ ...base, snapshotPolicy: { retention: 0 } }), ['invalid_snapshotPolicy_retention', 'snapshotPolicy.retention']);
  assert.deepEqual(refusal({ ...base, snapshotPolicy: { every: 1 } }), ['invalid_snapshotPolicy', 'snapshotPolicy']);
  assert.deepEqual(refusal({ ...base, upgradePolicy: { mode: 'automatic' } }), ['invalid_upgradePolicy_window', 'upgradePolicy.window']);
  assert.deepEqual(refusal({ ...base, upgradePolicy: { mode: 'automatic', window: { dayOfWeek: 7, startHourUtc: 2, hours: 4 } } }), ['invalid_upgradePolicy_window_dayOfWeek', 'upgradePolicy.window.dayOfWeek']);
  assert.deepEqual(refusal({ ...base, upgradePolicy: { pin: 'major' } }), ['invalid_upgradePolicy_pin', 'upgradePolicy.pin']);
  assert.deepEqual(refusal({ ...base, deletionProtection: 'on' }), ['invalid_deletionProtection', 'deletionProtection']);
  assert.deepEqual(refusal({ ...base, color: 'blue' }), ['unknown_field', 'color']);
  assert.deepEqual(refusal([]), ['invalid_body', undefined]);
});

test('the OpenAPI document is generated from the contracts: every route, its body with the catalog, its answers, and no dangling reference', () => {
  const doc = openApiDocument(Object.values(ROUTES), catalog, { title: 't', description: 'd', version: '1', sessionCookie: 'session' }) as {
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { enum?: string[] }> } }> }; responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, unknown> };
  };
  for (const r of Object.values(ROUTES) as RouteContract[]) {
    if (r.hidden) continue;
    assert.ok(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path} is documented`);
  }
  const create = doc.paths['/v1/clusters']!.post!.requestBody!.content['application/json']!.schema;
  assert.deepEqual(create.properties.tier!.enum, ['development', 'standard', 'plus']);
  assert.ok(doc.paths['/v1/clusters/{id}']!.get!.responses['200']);
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length > 10);
  for (const ref of refs) assert.ok(doc.components.schemas[ref], `#/components/schemas/${ref} exists`);
});
