import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TENANT_A, TENANT_B, WRITE, createBody, startStack, type TestStack } from './support/stack';

// The day-2 POSTs that queue an operation (snapshot, rotate) take an Idempotency-Key as the create
// does: a client whose connection broke (an API replica killed under it) sends the request again
// with the same key, and gets the same operation; nothing is queued twice. The API alone, no worker.
describe('Idempotency-Key on day-2 requests', () => {
  let s: TestStack;
  let writer: string;
  let clusterId: string;
  let otherClusterId: string;

  const created = async (name: string) => {
    const res = await s.request('POST', '/v1/clusters', { token: writer, body: createBody({ name, resourceGroup: 'rg-idem' }) });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.cluster.id as string;
  };
  const running = (id: string) => s.db.cluster.update({ where: { id }, data: { state: 'Running', runningSince: new Date() } });
  const operations = (id: string, kind: string) => s.db.operation.count({ where: { clusterId: id, kind } });

  before(async () => {
    s = await startStack();
    writer = s.token(TENANT_A, WRITE);
    clusterId = await created('idem-a');
    otherClusterId = await created('idem-b');
    await running(otherClusterId);
  });
  after(() => s.close());

  it('a refused request leaves no record: the same key works once the cluster can take it', async () => {
    const headers = { 'idempotency-key': 'rotate-before-running' };
    const refused = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: writer, body: { what: 'gossip-key' }, headers });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'cluster_not_running');
    assert.equal(await s.db.idempotencyRecord.count({ where: { key: 'rotate-before-running' } }), 0);
    await running(clusterId);
    const accepted = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: writer, body: { what: 'gossip-key' }, headers });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    assert.equal(accepted.headers.get('location'), `/v1/operations/${accepted.body.operation.id}`);
  });

  it('a retried rotate with the same key answers the same operation, queued once', async () => {
    const headers = { 'idempotency-key': 'rotate-1' };
    const before = await operations(clusterId, 'rotate-gossip-key');
    const first = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: writer, body: { what: 'gossip-key' }, headers });
    const again = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: writer, body: { what: 'gossip-key' }, headers });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('location'), first.headers.get('location'));
    assert.equal(await operations(clusterId, 'rotate-gossip-key'), before + 1);
  });

  it('five concurrent snapshot requests with one key make one operation and one snapshot', async () => {
    const headers = { 'idempotency-key': 'snapshot-race' };
    const answers = await Promise.all(Array.from({ length: 5 }, () => s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token: writer, body: { name: 'raced' }, headers })));
    assert.deepEqual(answers.map((a) => a.status), [202, 202, 202, 202, 202], JSON.stringify(answers.map((a) => a.body)));
    assert.equal(new Set(answers.map((a) => a.body.operation.id)).size, 1);
    assert.equal(new Set(answers.map((a) => a.body.snapshot.id)).size, 1);
    assert.equal(await s.db.snapshot.count({ where: { clusterId, name: 'raced' } }), 1);
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'snapshot' } }), 1);
  });

  it('a snapshot without a name, retried, is the same snapshot (its default name was made once)', async () => {
    const headers = { 'idempotency-key': 'snapshot-unnamed' };
    const first = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token: writer, headers });
    const again = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token: writer, headers });
    assert.equal(first.status, 202);
    assert.deepEqual(again.body, first.body);
  });

  it('422 when a key is used again for another request (another cluster, body or route); nothing is written', async () => {
    const headers = { 'idempotency-key': 'rotate-2' };
    const first = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: writer, body: { what: 'certificates' }, headers });
    assert.equal(first.status, 202);
    const ops = await s.db.operation.count();
    const snaps = await s.db.snapshot.count();
    for (const [path, body] of [
      [`/v1/clusters/${otherClusterId}/rotate`, { what: 'certificates' }],
      [`/v1/clusters/${clusterId}/rotate`, { what: 'gossip-key' }],
      [`/v1/clusters/${clusterId}/snapshots`, {}],
    ] as const) {
      const res = await s.request('POST', path, { token: writer, body, headers });
      assert.equal(res.status, 422, `${path} ${JSON.stringify(body)}`);
      assert.equal(res.body.error.code, 'idempotency_key_reused');
      assert.equal(res.body.error.details.field, 'Idempotency-Key');
    }
    assert.equal(await s.db.operation.count(), ops);
    assert.equal(await s.db.snapshot.count(), snaps);
  });

  it('keys are per tenant, and a request without a key queues each time', async () => {
    const other = s.token(TENANT_B, WRITE);
    const res = await s.request('POST', `/v1/clusters/${clusterId}/rotate`, { token: other, body: { what: 'certificates' }, headers: { 'idempotency-key': 'rotate-2' } });
    assert.equal(res.status, 404, 'another tenant neither sees the cluster nor the key\'s answer');
    const before = await operations(otherClusterId, 'snapshot');
    for (let i = 0; i < 2; i++) assert.equal((await s.request('POST', `/v1/clusters/${otherClusterId}/snapshots`, { token: writer })).status, 202);
    assert.equal(await operations(otherClusterId, 'snapshot'), before + 2);
  });

  it('400 for a malformed key, before anything is read or written', async () => {
    const res = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token: writer, headers: { 'idempotency-key': 'has space' } });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(res.body.error), /Idempotency-Key/);
  });
});
