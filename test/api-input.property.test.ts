import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ROUTES } from '../libs/contracts/src';
import { ROUTE_CONTRACT } from '../apps/api/src/validation/input';
import { ClusterRepository, SecretName, TenantClusterRepository, SecretRepository, SecretBox } from '../libs/core/src';
import { routeHandlers } from './support/routes';
import { READ, SUBSCRIPTION, WRITE, startStack, type TestStack } from './support/stack';

const TENANT = 'f0220000-0000-4000-8000-0000000f0220';
const RUNS = Number(process.env.API_INPUT_RUNS ?? 2500);
const SEED = Number(process.env.API_INPUT_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Route { method: string; path: string }

/** Percent-encoding; a lone surrogate (not encodable) is sent as the invalid UTF-8 it would be. */
function enc(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return '%ED%A0%80';
  }
}

/** Every table's row count and the newest change of the rows a request may update: what a refused request must leave as it was. */
const FINGERPRINT = `SELECT json_build_object(
  'clusters', (SELECT count(*) FROM "Cluster"), 'clusterUpdated', (SELECT max("updatedAt") FROM "Cluster"),
  'servers', (SELECT count(*) FROM "ClusterServer"), 'operations', (SELECT count(*) FROM "Operation"),
  'operationUpdated', (SELECT max("updatedAt") FROM "Operation"), 'secrets', (SELECT count(*) FROM "ClusterSecret"),
  'idempotency', (SELECT count(*) FROM "IdempotencyRecord"), 'audit', (SELECT count(*) FROM "AuditEvent"),
  'snapshots', (SELECT count(*) FROM "Snapshot"), 'snapshotUpdated', (SELECT max("updatedAt") FROM "Snapshot"),
  'waves', (SELECT count(*) FROM "Wave"), 'segments', (SELECT count(*) FROM "BillingSegment"), 'usage', (SELECT count(*) FROM "UsageRecord")
)::text AS f`;

/** Path parameter values: malformed ones, and real ids so that requests get past the lookup to their body and query. */
function idValues(real: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom('-'.repeat(36), 'constructor', '__proto__', 'toString', 'hasOwnProperty', '00000000-0000-0000-0000-00000000000g',
      '%00', 'a%00b', '%2e%2e', "'; DROP TABLE x; --", 'ü'.repeat(40), '0'.repeat(300), '{id}', ' ', '%20', '1e9999'),
    fc.uuid(),
    fc.string({ maxLength: 50 }).map(enc).filter((s) => s.length > 0),
    fc.constantFrom(...real),
  );
}

/** Strings that have hurt such APIs: NUL (PostgreSQL refuses it in text), prototype names, huge, numeric-looking, unicode. */
const nasty = fc.oneof(
  fc.constantFrom('', '\u0000', 'a\u0000b', 'constructor', '__proto__', 'toString', 'x'.repeat(70_000), '-1', '1e400', 'NaN', '2026-13-45', '9999-99',
    '0000-00-00T00:00:00Z', 'gossip-key', 'certificates', 'standard', 'development', 'plus', '1.8.7', 'automatic', 'manual', '\ud800', '🙂'),
  fc.string({ maxLength: 40 }),
);
const nastyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    nasty, fc.integer(), fc.double(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 63, Number.MAX_SAFE_INTEGER + 2, 1e308), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(nasty, fc.constantFrom('__proto__', 'constructor', 'prototype')), tie('value'), { maxKeys: 3 })),
})).value;

const FIELDS = ['name', 'subscriptionId', 'resourceGroup', 'region', 'tier', 'datacenter', 'consulVersion', 'publicEndpoint', 'snapshotPolicy', 'upgradePolicy',
  'what', 'description', 'takeSnapshot', 'intervalHours', 'retention', 'mode', 'window', 'dayOfWeek', 'startHourUtc', 'hours', 'action', 'selector', 'params',
  'canaries', 'maxInFlight', 'maxFailures', 'deletionProtection', 'pin', 'ipAllowlist', 'allowAnyAddress', 'cidr', '__proto__', 'constructor'];

/** Bodies: an object of known and prototype field names with nasty values, or not an object at all, or not JSON. */
const bodies = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), nastyValue, { maxKeys: 6 }).map((o) => ({ json: o })),
  fc.record({ snapshotPolicy: fc.dictionary(fc.constantFrom('intervalHours', 'retention', '__proto__'), nastyValue, { maxKeys: 2 }) }).map((o) => ({ json: o })),
  fc.record({ ipAllowlist: fc.array(fc.dictionary(fc.constantFrom('cidr', 'description', '__proto__'), fc.oneof(nastyValue, fc.constantFrom('10.0.0.1/8', '::/0', '2001:db8::/129', '1.2.3.4/32')), { maxKeys: 2 }), { maxLength: 3 }) }).map((o) => ({ json: o })),
  nastyValue.map((v) => ({ json: v })),
  fc.constantFrom('{', '{"a":', 'null', '[]', '"x"', '\u0000', '{"__proto__": {"polluted": 1}}', '{"what": "constructor"}', '{"tier": "__proto__"}').map((raw) => ({ raw })),
);

const queries = fc.array(fc.tuple(fc.constantFrom('from', 'to', 'subscriptionId', 'state', 'version', 'health', 'region', '__proto__', 'x'), nasty), { maxLength: 4 });

describe('every route refuses malformed input with a 4xx that says what to fix, and writes nothing', () => {
  let s: TestStack;
  let routes: Route[];
  let real: { cluster: string };
  before(async () => {
    s = await startStack();
    const docs = await s.request('GET', '/docs/openapi.json');
    assert.equal(docs.status, 200);
    routes = [];
    for (const [path, ops] of Object.entries(docs.body.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) routes.push({ method: method.toUpperCase(), path });
    }
    assert.ok(routes.length >= 25, `the OpenAPI document lists ${routes.length} routes`);
    // A Running cluster of the caller's, with its secrets, so day-2 routes reach their body checks.
    const clusters = new TenantClusterRepository(s.db);
    const { cluster } = await clusters.createWithOperation({
      tenantId: TENANT, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-input', name: 'input', region: 'westeurope', datacenter: 'input',
      consulVersion: '1.8.7', tier: 'development', serverCount: 1, publicEndpoint: false, createdBy: 'test',
    });
    await s.db.operation.updateMany({ where: { clusterId: cluster.id }, data: { state: 'Succeeded' } });
    await new ClusterRepository(s.db).markRunningIfCreating(cluster.id);
    const secrets = new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE));
    await secrets.replace(cluster.id, SecretName.Pki, JSON.stringify({ caCertPem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' }));
    await secrets.replace(cluster.id, SecretName.GossipKey, Buffer.alloc(32, 1).toString('base64'));
    real = { cluster: cluster.id };
  });
  after(async () => {
    await s?.close();
  });

  it('every route the API serves is mounted from its contract, and every contract is served once', () => {
    const handlers = routeHandlers(s.api);
    const missing = handlers.filter(({ handler }) => Reflect.getMetadata(ROUTE_CONTRACT, handler) === undefined).map((r) => r.route);
    assert.ok(handlers.length >= 30, `found ${handlers.length} routes`);
    assert.deepEqual(missing, [], 'routes without @Route(contract)');
    const served = handlers.map(({ handler }) => (Reflect.getMetadata(ROUTE_CONTRACT, handler) as { id: string }).id).sort();
    assert.deepEqual(served, Object.keys(ROUTES).sort(), 'each contract mounted by exactly one handler');
  });

  it('a query parameter a route does not take, or one given twice, is refused naming it', async () => {
    const token = s.token(TENANT, WRITE);
    const unknown = await s.request('GET', '/v1/clusters?color=blue', { token });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'unknown_parameter');
    assert.equal(unknown.body.error.details.field, 'color');
    const twice = await s.request('GET', '/v1/billing/usage?from=2026-11-01&from=2026-11-02', { token });
    assert.equal(twice.status, 400);
    assert.equal(twice.body.error.code, 'invalid_from');
    const body = await s.request('POST', `/v1/operations/${real.cluster}/cancel`, { token, body: { force: true } });
    assert.equal(body.status, 400);
    assert.equal(body.body.error.code, 'unknown_field');
  });

  it(`${RUNS} generated requests over every route (seed ${SEED})`, async () => {
    const tokens = { write: s.token(TENANT, WRITE), read: s.token(TENANT, READ), sre: s.sreToken(), none: s.token(TENANT, []) };
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const run = fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 10_000 }), idValues([real.cluster]), idValues([real.cluster]), queries, fc.option(bodies, { nil: undefined }),
        fc.constantFrom<keyof typeof tokens>('write', 'write', 'write', 'sre', 'read', 'none'),
        fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded'),
        async (r, id1, id2, query, body, who, contentType) => {
          const route = routes[r % routes.length]!;
          let n = 0;
          let path = route.path.replace(/\{[^}]+\}/g, () => (n++ === 0 ? id1 : id2));
          // Requests that would really act on the one real cluster are not malformed input: keep it for the others.
          if (path.includes(real.cluster) && ((route.method === 'DELETE' && route.path === '/v1/clusters/{id}') || route.path.endsWith('/tokens'))) {
            path = route.path.replace(/\{[^}]+\}/g, '-'.repeat(36));
          }
          const qs = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
          const url = qs ? `${path}?${qs}` : path;
          const before = (await s.db.$queryRawUnsafe<{ f: string }[]>(FINGERPRINT))[0]!.f;
          // fetch sends no body with a GET.
          const payload = body === undefined || route.method === 'GET' ? undefined : 'raw' in body ? body.raw : JSON.stringify(body.json);
          const res = await s.request(route.method, url, {
            token: tokens[who],
            body: payload,
            headers: payload === undefined ? {} : { 'content-type': contentType },
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const where = `${route.method} ${url.slice(0, 200)} as ${who} with ${String(payload).slice(0, 200)} (${contentType})`;
          if (res.status >= 500) {
            failures.push(`${res.status} for ${where}: ${JSON.stringify(res.body).slice(0, 300)}`);
            return false;
          }
          if (res.status >= 400) {
            const e = res.body?.error;
            if (typeof e?.code !== 'string' || typeof e?.message !== 'string' || e.message.length < 5) {
              failures.push(`${res.status} without the error shape for ${where}: ${JSON.stringify(res.body).slice(0, 300)}`);
              return false;
            }
            const afterF = (await s.db.$queryRawUnsafe<{ f: string }[]>(FINGERPRINT))[0]!.f;
            if (afterF !== before) {
              failures.push(`${res.status} for ${where} changed the database: ${before} -> ${afterF}`);
              return false;
            }
          }
          return true;
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    await run.catch((e: unknown) => assert.fail(`${failures.join('\n')}\n(replay with API_INPUT_SEED=${SEED}) ${(e as Error).message.slice(0, 1500)}`));
    assert.deepEqual(failures, []);
    // The run reached past authentication and lookups into validation, not only 404s.
    assert.ok((statuses.get(400) ?? 0) > RUNS / 20, `400s: ${JSON.stringify([...statuses])}`);
  });
});
