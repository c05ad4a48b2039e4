import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { WRITE, createBody, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'eeeeeeee-0000-4000-8000-0000000000e1';
const FINISHED = ['Succeeded', 'Failed', 'Canceled'];

type Answer = { status: number; body: string } | { refused: string };

// A cluster's public endpoint on the local target, on a real cluster: its own loopback address
// (standing for the public IP) forwarding TCP to the servers' HTTPS, serving only sources in the
// allowlist. Requests are sent from different loopback source addresses (Linux routes all of
// 127.0.0.0/8 to lo): allowed ones get Consul's answers, others have their connection closed;
// the allowlist swapped by PATCH (in place, the same process, which outlives a worker restart);
// turned off (nothing answers, no process); deleted with the cluster.
describe('public endpoint with an IP allowlist (local target)', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let clusterId: string;
  let datacenter: string;
  let publicUrl: URL;
  let caPem: string;
  let allowed: string;
  let other: string;

  /** One HTTPS request to the public endpoint from `source`, verifying the servers' certificate against the cluster's CA. */
  const ask = (source: string, path: string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve) => {
      const req = https.request({
        host: publicUrl.hostname, port: Number(publicUrl.port), path, localAddress: source, ca: caPem, headers,
        // The servers' certificate names server.<dc>.consul (what clients verify, as with verify_server_hostname); TLS is end to end.
        servername: `server.${datacenter}.consul`, agent: false, timeout: 10_000,
      }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ refused: e.code ?? e.message }));
      req.end();
    });
  const waitForOperation = async (id: string) => {
    const op = await waitFor(`operation ${id} to end`, () => s.request('GET', `/v1/operations/${id}`, { token }), (r) => FINISHED.includes(r.body?.state), 180_000);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    return op.body;
  };
  const patch = async (body: Record<string, unknown>) => {
    const res = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.operation.kind, 'update-endpoint');
    await waitForOperation(res.body.operation.id);
  };
  const proxies = () => localTarget(s.config).endpoints.observe(clusterId);
  const assertServed = async (source: string) => {
    const leader = await ask(source, '/v1/status/leader');
    assert.ok('status' in leader, `${source} was refused: ${JSON.stringify(leader)}`);
    assert.equal(leader.status, 200);
    assert.match(leader.body, /^"127\.\d+\.\d+\.\d:8300"$/, "Consul's own answer: its leader's RPC address");
  };
  const assertRefused = async (source: string) => {
    const answer = await ask(source, '/v1/status/leader');
    assert.ok('refused' in answer, `${source} was served: ${JSON.stringify(answer)}`);
    assert.match(answer.refused, /ECONNRESET|socket hang up|EPIPE/, 'the connection is closed before TLS');
  };

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    const octet = s.config.LOCAL_NET_OCTET;
    allowed = `127.${octet}.250.1`;
    other = `127.${octet}.250.2`;
  });
  after(() => s?.close());

  it('a cluster created with the endpoint on serves an allowed source and refuses another', async () => {
    const res = await s.request('POST', '/v1/clusters', {
      token, body: createBody({ name: 'edge', resourceGroup: 'rg-edge', publicEndpoint: true, ipAllowlist: [{ cidr: `${allowed}/32`, description: 'the allowed source' }, { cidr: '2001:db8::/32', description: 'kept, applied to IPv6 sources' }] }),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    datacenter = res.body.cluster.datacenter;
    const op = await waitForOperation(res.body.operation.id);
    assert.ok(op.steps.some((st: { name: string; detail?: string }) => st.name === 'apply-public-endpoint' && st.detail === 'on, 2 allowed network(s)'), JSON.stringify(op.steps));
    const view = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    publicUrl = new URL(view.body.endpoints.public);
    const server = new URL(view.body.endpoints.https);
    assert.equal(publicUrl.port, '8501');
    assert.notEqual(publicUrl.hostname, server.hostname, 'an address of its own, not a server');
    assert.match(publicUrl.hostname, /^127\.\d+\.\d+\.200$/);
    caPem = (await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token })).body.caPem;

    await assertServed(allowed);
    await assertRefused(other);
    await assertRefused('127.0.0.1');
  });

  it('the public UI is the Consul UI itself: it asks for a token, a console sign-on cookie gets nothing', async () => {
    const ui = await ask(allowed, '/ui/');
    assert.ok('status' in ui);
    assert.equal(ui.status, 200);
    assert.match(ui.body, /<title>Consul/i);
    // No single sign-on here (the console's proxy is not in the path): without an ACL token Consul refuses, cookie or not.
    for (const headers of [{}, { cookie: 'consul_ui_session=anything; hcs_session=anything' }] as Record<string, string>[]) {
      const self = await ask(allowed, '/v1/acl/token/self', headers);
      assert.ok('status' in self);
      assert.equal(self.status, 403, self.body);
    }
  });

  it('PATCH swaps the allowlist in place: the other source is served, the first refused, the same process', async () => {
    const [before] = await proxies();
    assert.ok(before, 'the proxy runs');
    await patch({ ipAllowlist: [{ cidr: `${other}/32`, description: 'now this one' }] });
    await assertServed(other);
    await assertRefused(allowed);
    assert.deepEqual(await proxies(), [before], 'reconfigured, not restarted');
    const events = await s.request('GET', `/v1/clusters/${clusterId}/events`, { token });
    const changed = events.body.events.filter((e: { action: string }) => e.action === 'cluster.endpoint.changed').at(-1);
    assert.deepEqual(changed.details.to.ipAllowlist, [{ cidr: `${other}/32`, description: 'now this one' }]);
    assert.equal(changed.details.from.ipAllowlist[0].cidr, `${allowed}/32`);
  });

  it('outlives a worker restart, and the new worker changes the same process', async () => {
    const [running] = await proxies();
    await s.worker!.close();
    await assertServed(other);
    await s.startWorker();
    await patch({ ipAllowlist: [{ cidr: `${allowed}/32`, description: 'back' }, { cidr: `${other}/32`, description: 'both' }] });
    await assertServed(allowed);
    await assertServed(other);
    assert.deepEqual(await proxies(), [running]);
  });

  it('scaled to three servers, the same process forwards to all of them, and past a server that is down', async () => {
    const [running] = await proxies();
    const res = await s.request('PATCH', `/v1/clusters/${clusterId}`, { token, body: { tier: 'standard' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await waitForOperation(res.body.operation.id);
    assert.ok(op.steps.some((st: { name: string }) => st.name === 'apply-public-endpoint'), 'the scale brings the endpoint along');
    const config = JSON.parse(fs.readFileSync(`${localTarget(s.config).endpoints.dir(clusterId)}/endpoint.json`, 'utf8')) as { upstreams: { host: string }[] };
    const view = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.deepEqual(config.upstreams.map((u) => u.host), view.body.serverAddresses);
    assert.equal(config.upstreams.length, 3);
    assert.deepEqual(await proxies(), [running], 'reconfigured, not restarted');
    // The first server stopped: connections go on to the next ones (each request a new connection).
    const target = localTarget(s.config);
    await target.stopServer(clusterId, 0, { gracefulTimeoutMs: 5_000 });
    assert.deepEqual((await target.observe(clusterId)).map((p) => p.index), [1, 2]);
    // Each request a new connection, from a rotating first server: every one is served, none lands on the stopped one.
    for (let i = 0; i < 4; i++) {
      const answer = await waitFor('a leader answered through the endpoint', () => ask(allowed, '/v1/status/leader'), (a) => 'status' in a && a.status === 200 && a.body !== '""', 30_000);
      assert.ok('status' in answer && /:8300"$/.test(answer.body), JSON.stringify(answer));
    }
  });

  it('a repair (an SRE wave) starts the stopped server and a proxy that died again', async () => {
    const [dead] = await proxies();
    process.kill(dead!.pid, 'SIGKILL');
    await waitFor('the proxy to be gone', () => proxies(), (p) => p.length === 0, 10_000);
    assert.deepEqual(await ask(allowed, '/v1/status/leader'), { refused: 'ECONNREFUSED' });
    const sre = s.sreToken();
    const wave = await s.request('POST', '/v1/admin/waves', { token: sre, body: { action: 'repair', selector: { clusterIds: [clusterId] }, canaries: 0, maxInFlight: 1, maxFailures: 0 } });
    assert.equal(wave.status, 202, JSON.stringify(wave.body));
    const ended = await waitFor('the repair wave', () => s.request('GET', `/v1/admin/waves/${wave.body.id}`, { token: sre }), (r) => r.body.state !== 'Running', 120_000, 250);
    assert.equal(ended.body.state, 'Succeeded', JSON.stringify(ended.body));
    const [again] = await proxies();
    assert.ok(again && again.pid !== dead!.pid, 'a new proxy');
    assert.deepEqual((await localTarget(s.config).observe(clusterId)).map((p) => p.index), [0, 1, 2]);
    await assertServed(allowed);
    await assertRefused('127.0.0.1');
  });

  it('turned off: the address no longer answers and its process is gone; the allowlist is kept', async () => {
    await patch({ publicEndpoint: false });
    const answer = await ask(allowed, '/v1/status/leader');
    assert.deepEqual(answer, { refused: 'ECONNREFUSED' });
    assert.deepEqual(await proxies(), []);
    const view = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(view.body.endpoints.public, null);
    assert.equal(view.body.ipAllowlist.length, 2);
  });

  it('turned on again with the kept allowlist, then deleted with the cluster: no process, no files', async () => {
    await patch({ publicEndpoint: true });
    await assertServed(other);
    const dir = localTarget(s.config).endpoints.dir(clusterId);
    assert.ok(fs.existsSync(dir));
    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    assert.equal(del.status, 202);
    await waitForOperation(del.body.operation.id);
    assert.deepEqual(await proxies(), []);
    assert.ok(!fs.existsSync(dir));
    assert.deepEqual(await ask(other, '/v1/status/leader'), { refused: 'ECONNREFUSED' });
  });
});
