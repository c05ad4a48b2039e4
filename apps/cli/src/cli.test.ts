import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { READ, SUBSCRIPTION, WRITE, startStack, waitFor, type TestStack } from '../../../test/support/stack';
import { BillingTicker } from '../../worker/src/billing/billing.ticker';
import { run } from './cli';

const TENANT = 'c1c1c1c1-0000-4000-8000-00000000000c';
// Billing: a tenant of its own with two subscriptions, and another tenant that only SREs see.
const BILLED_TENANT = 'c1c1c1c1-0000-4000-8000-0000000000b1';
const OTHER_TENANT = 'c1c1c1c1-0000-4000-8000-0000000000b2';
const SUBSCRIPTION_2 = '0abcd000-0000-4000-8000-000000000002';
const SUBSCRIPTION_3 = '0abcd000-0000-4000-8000-000000000003';

/** The rows of a table the CLI printed: the lines after the header up to the first blank one, split on its column gaps. */
function tableRows(stdout: string, header: RegExp): string[][] {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => header.test(l));
  assert.ok(at >= 0, `no table header ${header} in:\n${stdout}`);
  const end = lines.findIndex((l, i) => i > at && l === '');
  return lines.slice(at + 1, end < 0 ? undefined : end).map((l) => l.split(/ {2,}/));
}

const csvRows = (csv: string) => csv.trim().split('\r\n').map((r) => r.split(','));

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, columns: 120, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

// The CLI in-process against a real API + worker + Consul stack.
describe('hcs, the command line', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let work: string;
  let clusterId: string | undefined;
  let deleted = false;

  const hcs = async (argv: string[], o: { env?: Record<string, string | undefined>; stdin?: string; ttyStderr?: boolean } = {}): Promise<Captured> => {
    const stdout = sink(false);
    const stderr = sink(o.ttyStderr ?? false);
    const env = { HOME: work, HCS_CONFIG: path.join(work, 'default', 'config.json'), HCS_API: s.url, HCS_TOKEN: token, ...o.env };
    const code = await run(argv, { stdout, stderr, env, stdin: o.stdin === undefined ? undefined : Readable.from([o.stdin]) });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  };
  const createArgs = (name: string) => ['clusters', 'create', '--name', name, '--subscription', SUBSCRIPTION, '--resource-group', 'rg-cli', '--region', 'westeurope', '--tier', 'development'];

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'hcs-'));
  });
  after(async () => {
    if (clusterId && !deleted) {
      const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
      if (del.status === 202) {
        await waitFor('cleanup delete', () => s.request('GET', `/v1/operations/${del.body.operation.id}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000);
      }
    }
    await s.close();
    fs.rmSync(s.config.BILLING_EXPORT_DIR, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /**
   * October 2026's usage, made once as the worker makes it: cluster rows (no Consul behind them; billing
   * reads rows only) with billing segments at known times, metered by the worker's own BillingTicker.
   */
  let metered: Promise<void> | undefined;
  const october = () =>
    (metered ??= (async () => {
      const cluster = async (tenantId: string, subscriptionId: string, resourceGroup: string, name: string, segments: [string, string, string][]) => {
        const id = randomUUID();
        await s.db.cluster.create({
          data: {
            id, tenantId, subscriptionId, resourceGroup, managedResourceGroup: `mrg-${name}`, name, region: 'westeurope', datacenter: 'dc1',
            consulVersion: '1.8.7', tier: 'standard', serverCount: 3, state: 'Deleted', deletedAt: new Date(segments.at(-1)![2]), createdBy: 'test',
          },
        });
        for (const [dimension, start, end] of segments) {
          await s.db.billingSegment.create({ data: { id: randomUUID(), clusterId: id, dimension, startedAt: new Date(start), endedAt: new Date(end) } });
        }
      };
      // 83 min development (10:07 → 11:30), then 135 min standard (11:30 → 13:45).
      await cluster(BILLED_TENANT, SUBSCRIPTION, 'rg-bill', 'ledger', [
        ['development_hours', '2026-10-05T10:07:30Z', '2026-10-05T11:30:45Z'],
        ['standard_hours', '2026-10-05T11:30:45Z', '2026-10-05T13:45:10Z'],
      ]);
      await cluster(BILLED_TENANT, SUBSCRIPTION_2, 'rg-two', 'audit', [['plus_hours', '2026-10-20T00:00:00Z', '2026-10-20T03:00:00Z']]);
      await cluster(OTHER_TENANT, SUBSCRIPTION_3, 'rg-other', 'stranger', [['development_hours', '2026-10-31T22:00:00Z', '2026-10-31T23:00:00Z']]);
      const ticked = await s.worker!.get(BillingTicker).tick(new Date('2026-11-01T00:06:00Z'));
      assert.equal(ticked.closedThrough.toISOString(), '2026-11-01T00:00:00.000Z');
      assert.equal(ticked.recordsWritten, 2 + 3 + 3 + 1, 'a record per cluster, dimension and hour: ledger 2 + 3, audit 3, stranger 1');
    })());

  it('login saves the API and token owner-only and never prints the token; logout forgets them', async () => {
    const config = path.join(work, 'login', 'hcs', 'config.json');
    const env = { HCS_CONFIG: config, HCS_API: undefined, HCS_TOKEN: undefined };
    const login = await hcs(['login', '--token', token, '--api', s.url], { env });
    assert.equal(login.code, 0, login.stderr);
    assert.ok(!login.stdout.includes(token) && !login.stderr.includes(token), 'the token is not printed');
    assert.match(login.stdout, /Logged in to http:\/\/127\.0\.0\.1:\d+ as tester/);
    assert.equal(fs.statSync(config).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(config)).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(fs.readFileSync(config, 'utf8')), { api: s.url, token });

    const listed = await hcs(['clusters', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /No clusters/);

    // From stdin, keeping it out of the process list; the saved API stays.
    const other = s.token(TENANT, WRITE, 'bob');
    const fromStdin = await hcs(['login', '--token', '-'], { env, stdin: `${other}\n` });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.ok(!fromStdin.stdout.includes(other) && !fromStdin.stderr.includes(other));
    assert.deepEqual(JSON.parse(fs.readFileSync(config, 'utf8')), { api: s.url, token: other });
    assert.equal(fs.statSync(config).mode & 0o777, 0o600);

    const logout = await hcs(['logout'], { env });
    assert.equal(logout.code, 0, logout.stderr);
    assert.equal(fs.existsSync(config), false);
    const unauthenticated = await hcs(['clusters', 'list'], { env });
    assert.equal(unauthenticated.code, 2);
    assert.match(unauthenticated.stderr, /not logged in/);
  });

  it('usage errors exit 2 with a usage line', async () => {
    const missing = await hcs(['clusters', 'create', '--name', 'x']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--subscription is required/);
    assert.match(missing.stderr, /usage: hcs clusters create --name NAME --subscription GUID/);
    const unknownOption = await hcs(['clusters', 'list', '--bogus']);
    assert.equal(unknownOption.code, 2);
    assert.match(unknownOption.stderr, /Unknown option '--bogus'[\s\S]*usage: hcs clusters list/);
    const unknownCommand = await hcs(['clusters', 'frob']);
    assert.equal(unknownCommand.code, 2);
    assert.match(unknownCommand.stderr, /unknown command 'clusters frob'/);
    const badNumber = await hcs(['admin', 'waves', 'start', '--action', 'snapshot', '--selector', '{}', '--canaries', 'x', '--max-in-flight', '1', '--max-failures', '0']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--canaries must be a whole number/);
    const help = await hcs(['clusters', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /client-config/);
  });

  it('a refused request exits 3 with the API error code; an unreachable API exits 4', async () => {
    const invalid = await hcs(createArgs('Not_A_Valid_Name'));
    assert.equal(invalid.code, 3, invalid.stderr);
    assert.match(invalid.stderr, /invalid_name: name must be/);
    const badToken = await hcs(['clusters', 'list'], { env: { HCS_TOKEN: 'not-a-token' } });
    assert.equal(badToken.code, 3);
    assert.match(badToken.stderr, /unauthenticated: /);

    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((r) => closed.close(r));
    const down = await hcs(['clusters', 'list'], { env: { HCS_API: `http://127.0.0.1:${port}` } });
    assert.equal(down.code, 4);
    assert.match(down.stderr, /cannot reach the API/);
  });

  it('admin waves start sends --params and --consul-version as params; bad JSON is a usage error', async () => {
    // A stand-in API that records what the CLI posts.
    const posted: unknown[] = [];
    const standIn = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { action: string };
        posted.push(body);
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'w-1', action: body.action, state: 'Running', total: 1, succeeded: 0, failed: 0, clusters: [] }));
      });
    });
    await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', r));
    const waveArgs = (action: string, ...extra: string[]) => ['admin', 'waves', 'start', '--action', action, '--selector', '{"region":"westeurope"}', '--canaries', '1', '--max-in-flight', '2', '--max-failures', '0', ...extra];
    try {
      const env = { HCS_API: `http://127.0.0.1:${(standIn.address() as net.AddressInfo).port}` };
      const upgrade = await hcs(waveArgs('upgrade', '--consul-version', '1.8.7'), { env });
      assert.equal(upgrade.code, 0, upgrade.stderr);
      assert.match(upgrade.stdout, /Wave w-1 \(upgrade\) is Running over 1 clusters/);
      const rotate = await hcs(waveArgs('rotate-certificates', '--params', '{"reason":"ca-renewal","servers":[1]}'), { env });
      assert.equal(rotate.code, 0, rotate.stderr);
      const both = await hcs(waveArgs('upgrade', '--params', '{"consulVersion":"1.8.7","note":"x"}', '--consul-version', '1.8.7'), { env });
      assert.equal(both.code, 0, both.stderr);
      const none = await hcs(waveArgs('snapshot'), { env });
      assert.equal(none.code, 0, none.stderr);
      assert.deepEqual(posted, [
        { action: 'upgrade', selector: { region: 'westeurope' }, params: { consulVersion: '1.8.7' }, canaries: 1, maxInFlight: 2, maxFailures: 0 },
        { action: 'rotate-certificates', selector: { region: 'westeurope' }, params: { reason: 'ca-renewal', servers: [1] }, canaries: 1, maxInFlight: 2, maxFailures: 0 },
        { action: 'upgrade', selector: { region: 'westeurope' }, params: { consulVersion: '1.8.7', note: 'x' }, canaries: 1, maxInFlight: 2, maxFailures: 0 },
        { action: 'snapshot', selector: { region: 'westeurope' }, canaries: 1, maxInFlight: 2, maxFailures: 0 },
      ]);

      const refused: [string[], RegExp][] = [
        [waveArgs('rotate-gossip-key', '--params', '{consulVersion: 1.8.7}'), /--params is not valid JSON \(.+\); give an object, e\.g\. --params '\{"consulVersion":"1\.8\.7"\}'/],
        [waveArgs('rotate-gossip-key', '--params', '["1.8.7"]'), /--params must be a JSON object/],
        [waveArgs('upgrade', '--params', 'null'), /--params must be a JSON object/],
        [waveArgs('upgrade'), /an upgrade wave needs --consul-version V/],
        [waveArgs('upgrade', '--params', '{"consulVersion":"1.8.6"}', '--consul-version', '1.8.7'), /--consul-version 1\.8\.7 contradicts params\.consulVersion "1\.8\.6"/],
      ];
      for (const [argv, message] of refused) {
        const r = await hcs(argv, { env });
        assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /usage: hcs admin waves start --action ACTION .*\[--params JSON\] \[--consul-version V\]/);
      }
      assert.equal(posted.length, 4, 'a usage error sends nothing');
    } finally {
      await new Promise((r) => standIn.close(r));
    }

    // The real API gets params.consulVersion: with it, an upgrade wave gets past the version check
    // to the selection (no Running cluster yet: 422); without it, the API would answer invalid_params.
    const versions = await s.request('GET', '/v1/versions', { token });
    const version = (versions.body.versions as { version: string }[])[0]!.version;
    const sre = s.sreToken();
    const real = await hcs(waveArgs('upgrade', '--consul-version', version), { env: { HCS_TOKEN: sre } });
    assert.equal(real.code, 3, real.stderr);
    assert.match(real.stderr, /empty_selection: /);
  });

  it('waiting on an operation that ends Failed exits 1 with its error message', async () => {
    // A stand-in API whose operation fails on the second poll: the real worker never fails on demand.
    let polls = 0;
    const failing = http.createServer((req, res) => {
      polls++;
      const op = { id: 'op-1', kind: 'restore', state: polls < 2 ? 'Running' : 'Failed', progress: 50, clusterId: 'c-1', currentStep: 'verify-snapshot', steps: [], attempts: 1 };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(polls < 2 ? op : { ...op, error: { code: 'step_failed', message: 'verify-snapshot: sha256 mismatch' } }));
    });
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
    try {
      const api = `http://127.0.0.1:${(failing.address() as net.AddressInfo).port}`;
      const waited = await hcs(['ops', 'wait', 'op-1', '--json'], { env: { HCS_API: api } });
      assert.equal(waited.code, 1);
      assert.match(waited.stderr, /^ 50% {2}Running {2}verify-snapshot$/m);
      assert.match(waited.stderr, /operation op-1 \(restore\) Failed: verify-snapshot: sha256 mismatch/);
      assert.equal(JSON.parse(waited.stdout).state, 'Failed', 'under --json the failed operation is the output');
    } finally {
      await new Promise((r) => failing.close(r));
    }
  });

  it('billing usage prints the metered hours, unit prices and amounts with their total; --json is the API body', async () => {
    await october();
    const reader = s.token(BILLED_TENANT, READ, 'reader');
    const env = { HCS_TOKEN: reader };
    const used = await hcs(['billing', 'usage', '--from', '2026-10-01', '--to', '2026-11-01'], { env });
    assert.equal(used.code, 0, used.stderr);
    assert.match(used.stdout, /^From:\s+2026-10-01T00:00:00\.000Z$/m);
    assert.match(used.stdout, /^To:\s+2026-11-01T00:00:00\.000Z$/m);
    assert.deepEqual(tableRows(used.stdout, /^CLUSTER\s+DIMENSION\s+HOURS\s+UNIT PRICE \(USD\/h\)\s+AMOUNT \(USD\)$/), [
      ['ledger', 'development_hours', '1.383333', '0.027', '0.04'],
      ['ledger', 'standard_hours', '2.25', '0.56', '1.26'],
      ['audit', 'plus_hours', '3', '1.12', '3.36'],
    ]);
    assert.match(used.stdout, /^Total: 4\.66 USD$/m);
    assert.doesNotMatch(used.stdout, /stranger/, "another tenant's usage is not shown");

    const json = await hcs(['billing', 'usage', '--from', '2026-10-01', '--to', '2026-11-01', '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    const api = await s.request('GET', '/v1/billing/usage?from=2026-10-01&to=2026-11-01', { token: reader });
    assert.equal(api.status, 200);
    assert.deepEqual(JSON.parse(json.stdout), api.body);

    const half = await hcs(['billing', 'usage', '--from', '2026-10-05T11:00:00Z', '--to', '2026-10-05T12:00:00Z'], { env });
    assert.equal(half.code, 0, half.stderr);
    assert.deepEqual(tableRows(half.stdout, /^CLUSTER\s+DIMENSION/), [
      ['ledger', 'development_hours', '0.5', '0.027', '0.01'],
      ['ledger', 'standard_hours', '0.5', '0.56', '0.28'],
    ]);
    assert.match(half.stdout, /^Total: 0\.29 USD$/m);

    const thisMonth = await hcs(['billing', 'usage'], { env });
    assert.equal(thisMonth.code, 0, thisMonth.stderr);
    assert.match(thisMonth.stdout, /^No usage in this period\.$/m);
    assert.match(thisMonth.stdout, /^Total: 0\.00 USD$/m);

    const bad = await hcs(['billing', 'usage', '--from', 'yesterday'], { env });
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /invalid_from: from must be a date/);
  });

  it('billing invoice prints the CSV as the API gives it, or writes it to --out with its totals; a bad month is a usage error', async () => {
    await october();
    const reader = s.token(BILLED_TENANT, READ, 'reader');
    const env = { HCS_TOKEN: reader };
    const printed = await hcs(['billing', 'invoice', '2026-10'], { env });
    assert.equal(printed.code, 0, printed.stderr);
    const api = await s.request('GET', '/v1/billing/invoices/2026-10', { token: reader });
    assert.equal(api.status, 200);
    assert.equal(printed.stdout, api.body, 'the CSV exactly as the API answers it');
    assert.deepEqual(csvRows(printed.stdout).map((r) => [r[0], r[1], r[4], r[5], r[6], r[7], r[8]]), [
      ['subscription_id', 'cluster', 'dimension', 'hours', 'unit_price', 'amount', 'currency'],
      [SUBSCRIPTION, 'ledger', 'development_hours', '1.383333', '0.027', '0.04', 'USD'],
      [SUBSCRIPTION, 'ledger', 'standard_hours', '2.25', '0.56', '1.26', 'USD'],
      [SUBSCRIPTION, 'TOTAL', '', '', '', '1.30', 'USD'],
      [SUBSCRIPTION_2, 'audit', 'plus_hours', '3', '1.12', '3.36', 'USD'],
      [SUBSCRIPTION_2, 'TOTAL', '', '', '', '3.36', 'USD'],
    ]);

    const file = path.join(work, 'customer', 'october', 'invoice.csv');
    const one = await hcs(['billing', 'invoice', '2026-10', '--subscription', SUBSCRIPTION_2, '--out', file], { env });
    assert.equal(one.code, 0, one.stderr);
    const apiOne = await s.request('GET', `/v1/billing/invoices/2026-10?subscriptionId=${SUBSCRIPTION_2}`, { token: reader });
    assert.equal(fs.readFileSync(file, 'utf8'), apiOne.body);
    assert.deepEqual(csvRows(apiOne.body).map((r) => [r[0], r[1], r[7]]), [['subscription_id', 'cluster', 'amount'], [SUBSCRIPTION_2, 'audit', '3.36'], [SUBSCRIPTION_2, 'TOTAL', '3.36']]);
    assert.ok(one.stdout.split('\n').includes(`Wrote the 2026-10 invoice to ${file}.`), one.stdout);
    assert.deepEqual(tableRows(one.stdout, /^SUBSCRIPTION\s+TOTAL$/), [[SUBSCRIPTION_2, '3.36 USD']]);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['invoice.csv'], 'no temporary file left beside it');

    const json = await hcs(['billing', 'invoice', '2026-10', '--out', file, '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { month: '2026-10', file, subscriptions: [{ subscriptionId: SUBSCRIPTION, total: '1.30', currency: 'USD' }, { subscriptionId: SUBSCRIPTION_2, total: '3.36', currency: 'USD' }] });
    assert.equal(fs.readFileSync(file, 'utf8'), api.body, 'replaced whole by the second invoice');

    for (const month of ['2026-13', '2026-1', 'october']) {
      const bad = await hcs(['billing', 'invoice', month], { env });
      assert.equal(bad.code, 2, `${month}: ${bad.stderr}`);
      assert.match(bad.stderr, new RegExp(`the month must be written YYYY-MM, e\\.g\\. 2026-11, not '${month}'`));
      assert.match(bad.stderr, /usage: hcs billing invoice YYYY-MM \[--subscription ID\] \[--out FILE\]/);
    }
    const folder = await hcs(['billing', 'invoice', '2026-10', '--out', work], { env });
    assert.equal(folder.code, 2);
    assert.match(folder.stderr, /is a folder; name a file/);
    const badSubscription = await hcs(['billing', 'invoice', '2026-10', '--subscription', 'nope'], { env });
    assert.equal(badSubscription.code, 3);
    assert.match(badSubscription.stderr, /invalid_subscriptionId: /);
  });

  it("admin billing invoices writes DIR/<month>/<subscription>.csv for every subscription with the API's totals; customers get 403", async () => {
    await october();
    const sre = s.sreToken();
    const dir = path.join(work, 'finance');
    const wrote = await hcs(['admin', 'billing', 'invoices', '2026-10', '--out', dir], { env: { HCS_TOKEN: sre } });
    assert.equal(wrote.code, 0, wrote.stderr);

    const api = await s.request('GET', '/v1/admin/billing/invoices/2026-10', { token: sre });
    assert.equal(api.status, 200);
    const invoices = api.body.invoices as { subscriptionId: string; lines: number; total: string; csv: string }[];
    assert.deepEqual(invoices.map((i) => [i.subscriptionId, i.lines, i.total]), [[SUBSCRIPTION, 2, '1.30'], [SUBSCRIPTION_2, 1, '3.36'], [SUBSCRIPTION_3, 1, '0.03']]);
    const monthDir = path.join(dir, '2026-10');
    assert.deepEqual(fs.readdirSync(monthDir).sort(), [SUBSCRIPTION, SUBSCRIPTION_2, SUBSCRIPTION_3].map((id) => `${id}.csv`));
    const rows = tableRows(wrote.stdout, /^SUBSCRIPTION\s+LINES\s+TOTAL\s+FILE$/);
    assert.deepEqual(rows, invoices.map((i) => [i.subscriptionId, String(i.lines), `${i.total} USD`, path.join(monthDir, `${i.subscriptionId}.csv`)]));
    for (const i of invoices) {
      const csv = fs.readFileSync(path.join(monthDir, `${i.subscriptionId}.csv`), 'utf8');
      assert.equal(csv, i.csv);
      assert.deepEqual(csvRows(csv).at(-1)!.slice(0, 2).concat(csvRows(csv).at(-1)![7]!), [i.subscriptionId, 'TOTAL', i.total], 'the file ends with the total the API shows');
    }
    assert.ok(wrote.stdout.split('\n').includes(`Wrote 3 invoices for 2026-10 to ${monthDir}; together 4.69 USD.`), wrote.stdout);

    const again = await hcs(['admin', 'billing', 'invoices', '2026-10', '--out', dir, '--json'], { env: { HCS_TOKEN: sre } });
    assert.equal(again.code, 0, again.stderr);
    const body = JSON.parse(again.stdout) as { directory: string; total: string; invoices: { subscriptionId: string; file: string; csv: string }[] };
    assert.equal(body.directory, monthDir);
    assert.equal(body.total, '4.69');
    assert.deepEqual(body.invoices.map((i) => [i.subscriptionId, i.file, i.csv]), invoices.map((i) => [i.subscriptionId, path.join(monthDir, `${i.subscriptionId}.csv`), i.csv]));
    assert.equal(fs.readdirSync(monthDir).length, 3, 'written again in place, no temporary files left');

    const empty = await hcs(['admin', 'billing', 'invoices', '2026-09', '--out', dir], { env: { HCS_TOKEN: sre } });
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^No usage in 2026-09: no invoices to write/m);
    assert.deepEqual(fs.readdirSync(path.join(dir, '2026-09')), []);

    const badDir = path.join(work, 'finance-bad-month');
    const bad = await hcs(['admin', 'billing', 'invoices', '2026-00', '--out', badDir], { env: { HCS_TOKEN: sre } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /the month must be written YYYY-MM, e\.g\. 2026-11, not '2026-00'/);
    assert.match(bad.stderr, /usage: hcs admin billing invoices YYYY-MM --out DIR/);
    assert.equal(fs.existsSync(badDir), false, 'nothing created for a bad month');
    const noOut = await hcs(['admin', 'billing', 'invoices', '2026-10'], { env: { HCS_TOKEN: sre } });
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /--out is required/);

    const customerDir = path.join(work, 'finance-customer');
    const customer = await hcs(['admin', 'billing', 'invoices', '2026-10', '--out', customerDir]);
    assert.equal(customer.code, 3, customer.stderr);
    assert.match(customer.stderr, /forbidden: this action needs one of the roles: Platform\.SRE/);
    assert.equal(fs.existsSync(customerDir), false, 'a refused request writes nothing');
  });

  it('admin billing reconcile against a file-exporting API shows the 409 and exits non-zero; customers get 403', async () => {
    const sre = s.sreToken();
    const unavailable = await hcs(['admin', 'billing', 'reconcile', '--from', '2026-10-01', '--to', '2026-11-01'], { env: { HCS_TOKEN: sre } });
    assert.equal(unavailable.code, 3, unavailable.stderr);
    assert.match(unavailable.stderr, /^hcs: reconciliation_unavailable: .*\(BILLING_EXPORTER=file\)$/m);
    assert.equal(unavailable.stdout, '');
    const customer = await hcs(['admin', 'billing', 'reconcile']);
    assert.equal(customer.code, 3, customer.stderr);
    assert.match(customer.stderr, /forbidden: this action needs one of the roles: Platform\.SRE/);

    const help = await hcs(['admin', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}billing\s+Every subscription's invoices/m);
    const top = await hcs(['--help']);
    assert.match(top.stdout, /^ {2}billing\s+Your tenant's metered usage and monthly invoices$/m);
  });

  it('admin billing reconcile exits 1 when anything is missing, extra or mismatched, and 0 when everything matches', async () => {
    // A stand-in API answering with a report: the test stack exports usage to files, so the real one answers 409.
    const asked: string[] = [];
    let report: Record<string, unknown> = {};
    const entry = (dimension: string, day: string, ours: number, theirs: number, name = 'alpha') => ({
      resourceId: `bill-${name}`, dimension, day, ours, theirs,
    });
    const standIn = http.createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(report));
    });
    await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', r));
    try {
      const env = { HCS_API: `http://127.0.0.1:${(standIn.address() as net.AddressInfo).port}` };
      const base = { from: '2026-11-10T00:00:00.000Z', to: '2026-11-13T00:00:00.000Z', compared: { ours: 3, theirs: 3 }, matched: 1 };
      report = {
        ...base,
        missing: [entry('plus_hours', '2026-11-12', 1, 0)],
        extra: [entry('standard_hours', '2026-11-11', 0, 2, 'stranger')],
        mismatched: [entry('standard_hours', '2026-11-12', 2.75, 2.25)],
        unbilled: { Late: 1, Failed: 1 },
      };
      const differing = await hcs(['admin', 'billing', 'reconcile', '--from', '2026-11-10', '--to', '2026-11-13'], { env });
      assert.equal(differing.code, 1, differing.stderr);
      assert.deepEqual(asked, ['/v1/admin/billing/reconciliation?from=2026-11-10&to=2026-11-13']);
      assert.match(differing.stderr, /^hcs: reconciliation found 3 differences: 1 missing, 1 extra, 1 mismatched$/m);
      assert.match(differing.stdout, /^Matched:\s+1$/m);
      assert.match(differing.stdout, /^Missing:\s+1 /m);
      assert.match(differing.stdout, /^Unbilled:\s+Late 1, Failed 1$/m);
      assert.deepEqual(tableRows(differing.stdout, /^DIFFERENCE\s+DAY\s+DIMENSION\s+OURS \(h\)\s+THEIRS \(h\)\s+RESOURCE$/).map((r) => r.slice(0, 5)), [
        ['missing', '2026-11-12', 'plus_hours', '1', '0'],
        ['extra', '2026-11-11', 'standard_hours', '0', '2'],
        ['mismatched', '2026-11-12', 'standard_hours', '2.75', '2.25'],
      ]);
      const asJson = await hcs(['admin', 'billing', 'reconcile', '--json'], { env });
      assert.equal(asJson.code, 1);
      assert.deepEqual(JSON.parse(asJson.stdout), report, 'under --json the report is the output');

      report = { ...base, matched: 3, missing: [], extra: [], mismatched: [entry('plus_hours', '2026-11-12', 1, 1.5)], unbilled: {} };
      const oneMismatch = await hcs(['admin', 'billing', 'reconcile'], { env });
      assert.equal(oneMismatch.code, 1, 'a mismatch alone fails the run');
      assert.match(oneMismatch.stderr, /reconciliation found 1 difference: 0 missing, 0 extra, 1 mismatched/);

      report = { ...base, matched: 3, missing: [], extra: [], mismatched: [], unbilled: { Pending: 2 } };
      const clean = await hcs(['admin', 'billing', 'reconcile'], { env });
      assert.equal(clean.code, 0, clean.stderr);
      assert.equal(clean.stderr, '');
      assert.match(clean.stdout, /^Matched:\s+3$/m);
      assert.match(clean.stdout, /^Unbilled:\s+Pending 2$/m);
      assert.doesNotMatch(clean.stdout, /DIFFERENCE/);
      assert.equal(asked.at(-1), '/v1/admin/billing/reconciliation', 'no period given: the API picks this month');
    } finally {
      await new Promise((r) => standIn.close(r));
    }
  });

  it('clusters create --wait shows progress and ends with the cluster Running, protected and pinned as asked', async () => {
    const source = `127.${s.config.LOCAL_NET_OCTET}.251.1`;
    const created = await hcs([...createArgs('cli-orders'), '--deletion-protection', '--upgrade-pin', 'minor', '--public-endpoint', '--allow', `${source}/32=build agent`, '--allow', '2001:DB8::/32', '--wait'], { ttyStderr: true });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^State:\s+Running$/m);
    assert.match(created.stdout, /^Public endpoint:\s+on, https:\/\/127\.\d+\.\d+\.200:8501 \(UI: https:\/\/127\.\d+\.\d+\.200:8501\/ui\/\)$/m);
    assert.ok(created.stdout.includes(`Allowed sources:         ${source}/32 (build agent), 2001:db8::/32`), created.stdout);
    assert.match(created.stdout, /^Tier:\s+development \(1 server\)$/m);
    assert.match(created.stdout, /^Deletion protection:\s+on$/m);
    assert.match(created.stdout, /^Upgrades:\s+manual; pinned to 1\.x \(minor\)$/m);
    assert.ok(created.stderr.includes(`\r\u001b[K[${'#'.repeat(24)}] 100%  Succeeded`), `a progress bar on a terminal: ${JSON.stringify(created.stderr.slice(-300))}`);

    const list = await hcs(['clusters', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const cluster = (JSON.parse(list.stdout) as { clusters: { id: string; name: string; state: string }[] }).clusters.find((c) => c.name === 'cli-orders');
    assert.ok(cluster, list.stdout);
    assert.equal(cluster.state, 'Running');
    clusterId = cluster.id;

    const table = await hcs(['clusters', 'list']);
    assert.match(table.stdout, new RegExp(`^${clusterId}\\s+cli-orders\\s+Running\\s+development`, 'm'));
  });

  it('clusters upgrade-policy sets automatic upgrades in a window; a half-given window is a usage error', async () => {
    assert.ok(clusterId);
    const shown = await hcs(['clusters', 'get', clusterId]);
    assert.match(shown.stdout, /^Upgrades:\s+manual; pinned to 1\.x \(minor\)$/m);
    const set = await hcs(['clusters', 'upgrade-policy', clusterId, '--mode', 'automatic', '--window-day', '0', '--window-start-hour', '2', '--window-hours', '4']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^Upgrades:\s+automatic, Sunday 02:00 UTC for 4 h; pinned to 1\.x \(minor\)$/m, 'the pin is kept');
    const half = await hcs(['clusters', 'upgrade-policy', clusterId, '--window-day', '1']);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /give --window-day, --window-start-hour and --window-hours together/);
    const refused = await hcs(['clusters', 'upgrade-policy', clusterId, '--window-day', '1', '--window-start-hour', '2', '--window-hours', '30']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /invalid_upgradePolicy_window_hours: /);
    const manual = await hcs(['clusters', 'upgrade-policy', clusterId, '--mode', 'manual', '--json']);
    assert.equal(manual.code, 0, manual.stderr);
    assert.deepEqual(JSON.parse(manual.stdout).upgradePolicy, { mode: 'manual', window: { dayOfWeek: 0, startHourUtc: 2, hours: 4 }, pin: 'minor' });
  });

  it('clusters update sets deletion protection and the upgrade pin; a protected cluster\'s delete exits 3 saying how to turn it off', async () => {
    assert.ok(clusterId);
    const refused = await hcs(['clusters', 'delete', clusterId, '--wait']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, new RegExp(`^hcs: deletion_protected: .*hcs clusters update ${clusterId} --deletion-protection off`, 'm'));
    assert.equal(refused.stdout, '');
    assert.equal((await s.request('GET', `/v1/clusters/${clusterId}`, { token })).body.state, 'Running', 'nothing was deleted');

    const typo = await hcs(['clusters', 'update', clusterId, '--deletion-protection', 'yes']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--deletion-protection takes on or off, not 'yes'[\s\S]*usage: hcs clusters update ID/);
    const nothing = await hcs(['clusters', 'update', clusterId]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to change: give --deletion-protection, --upgrade-pin, --public-endpoint and\/or --allow/);
    const badPin = await hcs(['clusters', 'update', clusterId, '--upgrade-pin', 'major']);
    assert.equal(badPin.code, 3, badPin.stderr);
    assert.match(badPin.stderr, /invalid_upgradePolicy_pin: upgradePolicy\.pin must be one of none, patch, minor/);
    const help = await hcs(['clusters', 'update', '--help']);
    assert.match(help.stdout, /--deletion-protection on\|off/);
    assert.match(help.stdout, /--upgrade-pin PIN\s+none, patch, minor: how far automatic upgrades and maintenance waves may move the version/);

    const pinned = await hcs(['clusters', 'update', clusterId, '--upgrade-pin', 'patch']);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.match(pinned.stdout, /^Upgrades:\s+manual, Sunday 02:00 UTC for 4 h \(window not in use\); pinned to 1\.8\.x \(patch\)$/m);
    assert.match(pinned.stdout, /^Deletion protection:\s+on$/m, 'the other setting is kept');
    const off = await hcs(['clusters', 'update', clusterId, '--deletion-protection', 'off', '--upgrade-pin', 'none', '--json']);
    assert.equal(off.code, 0, off.stderr);
    const c = JSON.parse(off.stdout);
    assert.deepEqual([c.deletionProtection, c.upgradePolicy.pin], [false, 'none']);
    const events = (await s.request('GET', `/v1/clusters/${clusterId}/events`, { token })).body.events as { action: string; details: unknown }[];
    assert.deepEqual(events.filter((e) => e.action === 'cluster.deletion-protection.changed').map((e) => e.details), [{ from: true, to: false }]);
  });

  it('clusters update --public-endpoint and --allow: an operation (waited for), refusals exit 3 saying what to send, get shows them', async () => {
    assert.ok(clusterId);
    const hostBits = await hcs(['clusters', 'update', clusterId, '--allow', '10.1.2.3/8=lab']);
    assert.equal(hostBits.code, 3, hostBits.stderr);
    assert.match(hostBits.stderr, /cidr_host_bits_set: ipAllowlist\.0\.cidr '10\.1\.2\.3\/8' has host bits set; the network is 10\.0\.0\.0\/8: send that/);
    const anyone = await hcs(['clusters', 'update', clusterId, '--allow', '0.0.0.0/0']);
    assert.equal(anyone.code, 3);
    assert.match(anyone.stderr, /any_address_not_confirmed: .*"allowAnyAddress": true/);
    const typo = await hcs(['clusters', 'update', clusterId, '--public-endpoint', 'yes']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--public-endpoint takes on or off, not 'yes'/);

    const swapped = await hcs(['clusters', 'update', clusterId, '--allow', '198.51.100.0/24=office', '--allow', '0.0.0.0/0=anyone', '--allow-any-address', '--wait']);
    assert.equal(swapped.code, 0, swapped.stderr);
    assert.match(swapped.stdout, /^Allowed sources:\s+198\.51\.100\.0\/24 \(office\), 0\.0\.0\.0\/0 \(anyone\)$/m);
    const off = await hcs(['clusters', 'update', clusterId, '--public-endpoint', 'off', '--wait']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /^Public endpoint:\s+off \(the allowlist below is kept for when it is on\)$/m);
    const shown = await hcs(['clusters', 'get', clusterId, '--json']);
    const c = JSON.parse(shown.stdout);
    assert.deepEqual([c.publicEndpoint, c.endpoints.public, c.ipAllowlist.length], [false, null, 2]);
    const help = await hcs(['clusters', 'update', '--help']);
    assert.match(help.stdout, /--allow CIDR\[=DESCRIPTION\]/);
    assert.match(help.stdout, /--public-endpoint on\|off/);
  });

  it('client-config writes ca.pem and an owner-only client.json; token prints the secret once', async () => {
    assert.ok(clusterId);
    const out = path.join(work, 'client');
    const cc = await hcs(['clusters', 'client-config', clusterId, '--out', out]);
    assert.equal(cc.code, 0, cc.stderr);
    assert.match(fs.readFileSync(path.join(out, 'ca.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    const client = JSON.parse(fs.readFileSync(path.join(out, 'client.json'), 'utf8'));
    assert.equal(client.ca_file, path.join(out, 'ca.pem'));
    assert.equal(client.verify_server_hostname, true);
    assert.equal(client.retry_join.length, 1);
    assert.equal(fs.statSync(path.join(out, 'client.json')).mode & 0o777, 0o600);
    assert.equal(typeof client.encrypt, 'string', 'Clusters.ReadWrite gets the gossip key');
    // Clusters.Read: the same files without the gossip key, and the CLI says why.
    const readOut = path.join(work, 'client-read');
    const read = await hcs(['clusters', 'client-config', clusterId, '--out', readOut], { env: { HCS_TOKEN: s.token(TENANT, READ, 'reader') } });
    assert.equal(read.code, 0, read.stderr);
    assert.equal(JSON.parse(fs.readFileSync(path.join(readOut, 'client.json'), 'utf8')).encrypt, undefined);
    assert.match(read.stdout, /No gossip key in .*client\.json: the gossip key is given only to Clusters\.ReadWrite/);

    const issued = await hcs(['clusters', 'token', clusterId, '--json']);
    assert.equal(issued.code, 0, issued.stderr);
    const t = JSON.parse(issued.stdout);
    assert.match(t.accessorId, /^[0-9a-f-]{36}$/);
    assert.match(t.secretId, /^[0-9a-f-]{36}$/);
  });

  it('kubernetes prints the Helm values or the Secret as YAML; --secret makes a management token for the chart, or takes one with --token-file -', async () => {
    assert.ok(clusterId);
    const values = await hcs(['kubernetes', clusterId, '--helm-values', '--k8s-auth-method-host', 'https://aks.example:443']);
    assert.equal(values.code, 0, values.stderr);
    assert.match(values.stdout, /^# hashicorp\/consul 0\.26\.0 values/, 'the chart version to install heads the values');
    const v = YAML.parse(values.stdout);
    assert.deepEqual([v.global.enabled, v.server.enabled, v.client.enabled, v.externalServers.k8sAuthMethodHost], [false, false, true, 'https://aks.example:443']);

    const listTokens = async () => (await s.request('GET', `/v1/clusters/${clusterId}/tokens`, { token })).body.tokens as { accessorId: string; description: string }[];
    const earlier = await listTokens();
    const made = await hcs(['kubernetes', clusterId, '--secret']);
    assert.equal(made.code, 0, made.stderr);
    const secret = YAML.parse(made.stdout) as { kind: string; data: Record<string, string> };
    assert.equal(secret.kind, 'Secret');
    const later = await listTokens();
    assert.equal(later.length, earlier.length + 1, 'one management token made for the chart');
    const chartToken = later.find((t) => !earlier.some((b) => b.accessorId === t.accessorId))!;
    assert.match(chartToken.description, /server-acl-init/);
    assert.match(made.stderr, new RegExp(`hcs tokens revoke ${clusterId} ${chartToken.accessorId}`), 'says which token it made and how to revoke it');
    const bootstrap = Buffer.from(secret.data.bootstrapToken!, 'base64').toString('utf8');
    assert.ok(/^[0-9a-f-]{36}$/.test(bootstrap), 'the Secret holds a SecretID');
    assert.ok(!made.stderr.includes(bootstrap), 'the token is in the Secret only, not in the messages');

    const given = '0f0e0d0c-0b0a-4908-8706-050403020100';
    const piped = await hcs(['kubernetes', clusterId, '--secret', '--token-file', '-'], { stdin: `${given}\n` });
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(Buffer.from(YAML.parse(piped.stdout).data.bootstrapToken, 'base64').toString('utf8') === given, 'the Secret holds the token given');
    assert.equal((await listTokens()).length, later.length, 'no token made when one is given');

    const neither = await hcs(['kubernetes', clusterId]);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /choose one document: --helm-values or --secret[\s\S]*usage: hcs kubernetes ID/);
    const reader = await hcs(['kubernetes', clusterId, '--helm-values'], { env: { HCS_TOKEN: s.token(TENANT, READ, 'reader') } });
    assert.equal(reader.code, 3, reader.stderr);
    assert.match(reader.stderr, /forbidden: .*Clusters\.ReadWrite/);
  });

  it('clusters federation-token, create --federation-token and federation: a secondary joins the cluster, both show the federation', async () => {
    assert.ok(clusterId);
    const alone = await hcs(['clusters', 'federation', clusterId]);
    assert.equal(alone.code, 0, alone.stderr);
    assert.match(alone.stdout, new RegExp(`^Cluster ${clusterId} is not federated\\.$`, 'm'));

    const shown = await hcs(['clusters', 'federation-token', clusterId]);
    assert.equal(shown.code, 0, shown.stderr);
    // Checked with the token masked: a failure's output holds no secret.
    const printed = shown.stdout.replace(/mcf1\.[\w-]{43}/g, 'mcf1.<token>');
    assert.match(printed, /^Token:\s+mcf1\.<token>$/m);
    assert.match(printed, /^Expires:\s+\d{4}-\d\d-\d\dT/m);
    assert.match(printed, new RegExp(`^Primary:\\s+${clusterId} \\(datacenter cli-orders\\)$`, 'm'));
    assert.match(printed, /shown this once and works once/);
    const quiet = await hcs(['clusters', 'federation-token', clusterId, '--quiet']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.ok(/^mcf1\.[\w-]{43}\n$/.test(quiet.stdout), 'the token alone, on one line');
    const both = await hcs(['clusters', 'federation-token', clusterId, '--quiet', '--json']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give --quiet or --json, not both/);
    const reader = await hcs(['clusters', 'federation-token', clusterId], { env: { HCS_TOKEN: s.token(TENANT, READ, 'reader') } });
    assert.equal(reader.code, 3, reader.stderr);
    assert.match(reader.stderr, /forbidden: /);
    assert.equal(reader.stdout, '');

    const unknown = await hcs([...createArgs('cli-west'), '--datacenter', 'cli-west', '--federation-token', `mcf1.${'A'.repeat(43)}`]);
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.match(unknown.stderr, /invalid_federation_token: the federation token is unknown, used or expired/);
    // Piped in from the primary's --quiet (kept out of the process list); the primary's datacenter is refused, the token stays usable.
    const token = quiet.stdout.trim();
    const sameDc = await hcs([...createArgs('cli-west'), '--datacenter', 'cli-orders', '--federation-token', '-'], { stdin: `${token}\n` });
    assert.equal(sameDc.code, 3, sameDc.stderr);
    assert.match(sameDc.stderr, /datacenter_taken: datacenter 'cli-orders' is cli-orders's/);
    const joined = await hcs([...createArgs('cli-west'), '--datacenter', 'cli-west', '--federation-token', '-', '--wait'], { stdin: `${token}\n` });
    assert.equal(joined.code, 0, joined.stderr);
    assert.match(joined.stdout, /^State:\s+Running$/m);
    assert.match(joined.stdout, new RegExp(`^Federation:\\s+secondary of ${clusterId} `, 'm'));
    const secondaryId = /^ID:\s+(\S+)$/m.exec(joined.stdout)?.[1];
    assert.ok(secondaryId, joined.stdout);

    const primaryView = await hcs(['clusters', 'federation', clusterId]);
    assert.equal(primaryView.code, 0, primaryView.stderr);
    assert.match(primaryView.stdout, /^Role:\s+primary$/m);
    assert.deepEqual(tableRows(primaryView.stdout, /^ROLE\s+ID\s+NAME\s+DATACENTER\s+REGION\s+STATE\s+HEALTH$/).map((r) => r.slice(0, 6)), [
      ['primary (this one)', clusterId, 'cli-orders', 'cli-orders', 'westeurope', 'Running'],
      ['secondary', secondaryId, 'cli-west', 'cli-west', 'westeurope', 'Running'],
    ]);
    const secondaryView = await hcs(['clusters', 'federation', secondaryId, '--json']);
    assert.equal(secondaryView.code, 0, secondaryView.stderr);
    const f = JSON.parse(secondaryView.stdout) as { role: string; primary: { clusterId: string }; secondaries: { clusterId: string }[] };
    assert.deepEqual([f.role, f.primary.clusterId, f.secondaries.map((m) => m.clusterId)], ['secondary', clusterId, [secondaryId]]);

    const refused = await hcs(['clusters', 'delete', clusterId]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /federation_has_secondaries: cli-orders is the primary of a federation; delete its secondaries first: cli-west/);
    const gone = await hcs(['clusters', 'delete', secondaryId, '--wait']);
    assert.equal(gone.code, 0, gone.stderr);
    const after = await hcs(['clusters', 'federation', clusterId]);
    assert.match(after.stdout, /is not federated/, 'on its own again once its secondary is deleted');
  });

  it('clusters scale --wait moves the cluster to three servers', async () => {
    assert.ok(clusterId);
    const scaled = await hcs(['clusters', 'scale', clusterId, '--tier', 'standard', '--wait']);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.match(scaled.stdout, /^State:\s+Running$/m);
    assert.match(scaled.stdout, /^Tier:\s+standard \(3 servers\)$/m);
    const same = await hcs(['clusters', 'scale', clusterId, '--tier', 'standard', '--json']);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(JSON.parse(same.stdout).tier, 'standard', 'the same tier again changes nothing');
  });

  it('snapshots create --wait, then snapshots list shows it Available; ops wait and get follow an operation', async () => {
    assert.ok(clusterId);
    const taken = await hcs(['snapshots', 'create', clusterId, '--name', 'first', '--wait']);
    assert.equal(taken.code, 0, taken.stderr);
    assert.match(taken.stdout, /^State:\s+Available$/m);
    assert.match(taken.stderr, /^100% {2}Succeeded$/m, 'plain progress lines when stderr is not a terminal');

    const list = await hcs(['snapshots', 'list', clusterId]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+NAME\s+KIND\s+STATE/m);
    assert.match(list.stdout, /\sfirst\s+manual\s+Available\s/);

    const started = await hcs(['snapshots', 'create', clusterId, '--name', 'second', '--json']);
    assert.equal(started.code, 0, started.stderr);
    const opId = JSON.parse(started.stdout).operation.id as string;
    const waited = await hcs(['ops', 'wait', opId]);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /^State:\s+Succeeded$/m);
    const got = await hcs(['ops', 'get', opId, '--json']);
    assert.equal(got.code, 0);
    assert.equal(JSON.parse(got.stdout).state, 'Succeeded');
    const ops = await hcs(['ops', 'list', clusterId]);
    assert.equal(ops.code, 0, ops.stderr);
    assert.match(ops.stdout, new RegExp(`^${opId}\\s+snapshot\\s+Succeeded\\s+100%`, 'm'));
    const cancel = await hcs(['ops', 'cancel', opId]);
    assert.equal(cancel.code, 3, 'an operation that ended cannot be canceled');
    assert.match(cancel.stderr, /operation_finished: /);
    const missing = await hcs(['ops', 'get', '00000000-0000-4000-8000-000000000000']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /operation_not_found: /);
  });

  it('clusters delete --wait exits 0 and the cluster is gone from the list', async () => {
    assert.ok(clusterId);
    const del = await hcs(['clusters', 'delete', clusterId, '--wait']);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, new RegExp(`Cluster ${clusterId} deleted`));
    deleted = true;
    const list = await hcs(['clusters', 'list', '--json']);
    assert.ok(!(JSON.parse(list.stdout) as { clusters: { id: string }[] }).clusters.some((c) => c.id === clusterId));
  });
});
