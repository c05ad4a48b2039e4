import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BillingTicker } from '../apps/worker/src/billing/billing.ticker';
import { READ, SUBSCRIPTION, TENANT_B, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'b111b111-0000-4000-8000-00000000000b';
const T = (iso: string) => new Date(iso);

// A real cluster's life (create → scale → delete through the worker) recorded as billing
// segments, then metered and exported by the worker's own billing ticker on a clock the test drives.
describe('metered billing', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let clusterId: string;
  let ticker: BillingTicker;
  const times: Record<string, number> = {};

  const finish = (opId: string) =>
    waitFor('operation to end', () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 120_000).then((r) => r.body);

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    ticker = s.worker!.get(BillingTicker);
  });
  after(async () => {
    await s?.close();
    if (s) await fs.rm(s.config.BILLING_EXPORT_DIR, { recursive: true, force: true });
  });

  it('bills a cluster from when it first runs, on its tier, until its delete is requested', async () => {
    const res = await s.request('POST', '/v1/clusters', { token, body: { name: 'billed', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-bill', region: 'westeurope', tier: 'development' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    const created = await finish(res.body.operation.id);
    assert.equal(created.state, 'Succeeded', JSON.stringify(created));
    const running = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    times.running = Date.parse(running.body.runningSince);

    const scaled = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body: { tier: 'standard' } });
    assert.equal(scaled.status, 202, JSON.stringify(scaled.body));
    const scaleOp = await finish(scaled.body.operation.id);
    assert.equal(scaleOp.state, 'Succeeded', JSON.stringify(scaleOp));

    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    assert.equal(del.status, 202);
    const requestedAt = Date.parse(del.body.operation.createdAt);
    assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');

    const segs = await s.db.billingSegment.findMany({ where: { clusterId }, orderBy: { startedAt: 'asc' } });
    assert.deepEqual(segs.map((x) => x.dimension), ['development_hours', 'standard_hours']);
    assert.equal(segs[0].startedAt.getTime(), times.running, 'billing starts when the cluster first runs');
    assert.equal(segs[0].endedAt!.getTime(), segs[1].startedAt.getTime(), 'the tier change splits at one instant');
    assert.ok(segs[1].startedAt.getTime() >= Date.parse(scaleOp.startedAt) && segs[1].startedAt.getTime() <= Date.parse(scaleOp.finishedAt), 'the split is when the scale completed');
    assert.ok(Math.abs(segs[1].endedAt!.getTime() - requestedAt) < 2_000, 'billing stops when the delete is requested, not when it finishes');
    assert.ok(segs[1].endedAt!.getTime() < Date.parse((await s.request('GET', `/v1/operations/${del.body.operation.id}`, { token })).body.finishedAt));
  });

  it('meters closed hours by the minute, exports them to the daily file once, and shows usage and the invoice', async () => {
    // Move the recorded life to a known day: development 10:07:30 → 11:30:45, standard → 13:45:10.
    const segs = await s.db.billingSegment.findMany({ where: { clusterId }, orderBy: { startedAt: 'asc' } });
    await s.db.billingSegment.update({ where: { id: segs[0].id }, data: { startedAt: T('2026-11-02T10:07:30Z'), endedAt: T('2026-11-02T11:30:45Z') } });
    await s.db.billingSegment.update({ where: { id: segs[1].id }, data: { startedAt: T('2026-11-02T11:30:45Z'), endedAt: T('2026-11-02T13:45:10Z') } });

    // 14:03 is inside the 5-minute grace after 14:00: hour 13 is not closed yet.
    const early = await ticker.tick(T('2026-11-02T14:03:00Z'));
    assert.equal(early.closedThrough.toISOString(), '2026-11-02T13:00:00.000Z');
    const r1 = await ticker.tick(T('2026-11-02T14:06:00Z'));
    assert.equal(r1.closedThrough.toISOString(), '2026-11-02T14:00:00.000Z');
    const records = await s.db.usageRecord.findMany({ where: { clusterId }, orderBy: [{ hour: 'asc' }, { dimension: 'asc' }] });
    assert.deepEqual(
      records.map((r) => [r.hour.toISOString().slice(11, 16), r.dimension, r.minutes, r.exportState]),
      [
        ['10:00', 'development_hours', 53, 'Accepted'],
        ['11:00', 'development_hours', 30, 'Accepted'],
        ['11:00', 'standard_hours', 30, 'Accepted'],
        ['12:00', 'standard_hours', 60, 'Accepted'],
        ['13:00', 'standard_hours', 45, 'Accepted'],
      ],
    );
    // Billed against the cluster's own billing identity, never the address the caller typed.
    const { billingResourceId } = await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } });
    assert.match(billingResourceId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(records.every((r) => r.resourceId === billingResourceId));

    const file = path.join(s.config.BILLING_EXPORT_DIR, 'usage-2026-11-02.jsonl');
    const readLines = async () => (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const lines = await readLines();
    assert.equal(lines.length, 5);
    // Each hour as one line; the exporter's senders append concurrently, so the file's order is not the hours' order.
    const byHour = (a: string[], b: string[]) => a.join(' ').localeCompare(b.join(' '));
    assert.deepEqual(lines.map((l) => [l.effectiveStartTime, l.dimension, l.quantity]).sort(byHour), [
      ['2026-11-02T10:00:00.000Z', 'development_hours', 0.883333],
      ['2026-11-02T11:00:00.000Z', 'development_hours', 0.5],
      ['2026-11-02T11:00:00.000Z', 'standard_hours', 0.5],
      ['2026-11-02T12:00:00.000Z', 'standard_hours', 1],
      ['2026-11-02T13:00:00.000Z', 'standard_hours', 0.75],
    ]);

    // Re-runs write nothing twice: another tick, and records put back to Pending as if the
    // worker died between the append and the database update.
    await ticker.tick(T('2026-11-02T15:06:00Z'));
    await s.db.usageRecord.updateMany({ where: { clusterId }, data: { exportState: 'Pending', leaseUntil: null, nextAttemptAt: null } });
    const again = await ticker.tick(T('2026-11-02T15:07:00Z'));
    assert.equal(again.export.handed, 5);
    assert.equal((await readLines()).length, 5, 'no line written twice');
    assert.equal(await s.db.usageRecord.count({ where: { clusterId } }), 5, 'no hour metered twice');

    const usage = await s.request('GET', '/v1/billing/usage?from=2026-11-01&to=2026-12-01', { token: s.token(TENANT, READ) });
    assert.equal(usage.status, 200, JSON.stringify(usage.body));
    assert.deepEqual(
      usage.body.lines.map((l: Record<string, unknown>) => [l.clusterName, l.dimension, l.minutes, l.hours, l.unitPrice, l.amount]),
      [
        ['billed', 'development_hours', 83, '1.383333', '0.027', '0.04'],
        ['billed', 'standard_hours', 135, '2.25', '0.56', '1.26'],
      ],
    );
    assert.equal(usage.body.total, '1.30');
    assert.equal(usage.body.currency, 'USD');

    const other = await s.request('GET', '/v1/billing/usage?from=2026-11-01&to=2026-12-01', { token: s.token(TENANT_B, READ) });
    assert.deepEqual(other.body.lines, [], "another tenant's usage is not shown");

    const invoice = await s.request('GET', '/v1/billing/invoices/2026-11', { token });
    assert.equal(invoice.status, 200);
    assert.match(invoice.headers.get('content-type') ?? '', /^text\/csv/);
    const rows = (invoice.body as string).trim().split('\r\n').map((r) => r.split(','));
    assert.deepEqual(rows[0], ['subscription_id', 'cluster', 'cluster_id', 'resource_group', 'dimension', 'hours', 'unit_price', 'amount', 'currency']);
    assert.deepEqual(rows.slice(1).map((r) => [r[1], r[4], r[5], r[6], r[7]]), [
      ['billed', 'development_hours', '1.383333', '0.027', '0.04'],
      ['billed', 'standard_hours', '2.25', '0.56', '1.26'],
      ['TOTAL', '', '', '', '1.30'],
    ]);
    const sum = rows.slice(1, -1).reduce((n, r) => n + Math.round(Number(r[7]) * 100), 0);
    assert.equal(sum, Math.round(Number(rows.at(-1)![7]) * 100), 'the total is the sum of the lines to the cent');

    const all = await s.request('GET', '/v1/admin/billing/invoices/2026-11', { token: s.sreToken() });
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.invoices.map((i: { subscriptionId: string; total: string }) => [i.subscriptionId, i.total]), [[SUBSCRIPTION, '1.30']]);
    assert.equal((await s.request('GET', '/v1/admin/billing/invoices/2026-11', { token })).status, 403, 'customers cannot read every invoice');
  });

  it('publishes prices and refuses bad billing queries with what to fix', async () => {
    const tiers = await s.request('GET', '/v1/tiers', { token });
    assert.deepEqual(
      tiers.body.tiers.map((t: { name: string; billing: { dimension: string; pricePerHour: string } }) => [t.name, t.billing.dimension, t.billing.pricePerHour]),
      [['development', 'development_hours', '0.027'], ['standard', 'standard_hours', '0.56'], ['plus', 'plus_hours', '1.12']],
    );
    assert.equal(tiers.body.planId, s.config.BILLING_PLAN_ID);
    const cases: Array<[string, string]> = [
      ['/v1/billing/usage?from=yesterday', 'invalid_from'],
      ['/v1/billing/usage?from=2026-11-02&to=2026-11-01', 'invalid_range'],
      ['/v1/billing/usage?from=2020-01-01&to=2026-01-01', 'invalid_range'],
      ['/v1/billing/usage?cluster=x', 'unknown_parameter'],
      ['/v1/billing/invoices/2026-13', 'invalid_month'],
      ['/v1/billing/invoices/2026-11?subscriptionId=nope', 'invalid_subscriptionId'],
    ];
    for (const [url, code] of cases) {
      const r = await s.request('GET', url, { token });
      assert.equal(r.status, 400, url);
      assert.equal(r.body.error.code, code, url);
    }
    assert.equal((await s.request('GET', '/v1/billing/usage')).status, 401);
  });
});
