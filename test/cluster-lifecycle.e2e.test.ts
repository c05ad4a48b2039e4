import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { consul, startClientAgent, tcpOpen, type ClientAgent } from './support/consul-cli';
import { READ, SUBSCRIPTION, startStack, waitFor, type TestStack } from './support/stack';

const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
const TENANT = 'cccccccc-0000-4000-8000-000000000003';

function npmToken(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['run', '--silent', 'token', '--', ...args], { cwd: path.resolve(__dirname, '..', '..') }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`npm run token failed: ${stderr}`));
      resolve(stdout);
    });
  });
}

// A standard cluster created through the API, checked from outside with the stock consul binary.
describe('a standard cluster, end to end', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let clusterId: string;
  let addresses: string[];
  let work: string;
  let caFile: string;
  let clientConfig: any;
  let customerToken: string;
  const agents: ClientAgent[] = [];

  before(async () => {
    s = await startStack({ worker: true });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-'));
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('npm run token prints exactly one token', async () => {
    const out = await npmToken(['--tenant', TENANT, '--user', 'e2e', '--roles', 'Clusters.ReadWrite']);
    assert.match(out, /^[\w-]+\.[\w-]+\.[\w-]+\n?$/);
    token = out.trim();
  });

  it('creates the cluster and reaches Running', async () => {
    const res = await s.request('POST', '/v1/clusters', {
      token,
      body: { name: 'e2e', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-e2e', region: 'westeurope', tier: 'standard' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    const op = await waitFor('create to finish', () => s.request('GET', `/v1/operations/${res.body.operation.id}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    assert.equal(op.body.progress, 100);
    assert.deepEqual(op.body.steps.map((x: { name: string }) => x.name), ['allocate-addresses', 'generate-secrets', 'write-config', 'start-servers', 'wait-for-leader', 'verify-acl', 'apply-public-endpoint', 'record-public-address']);
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Running');
    addresses = cluster.body.serverAddresses;
    assert.equal(addresses.length, 3);
    assert.equal(cluster.body.endpoints.https, `https://${addresses[0]}:8501`);
  });

  it('hands out a client config', async () => {
    const res = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token });
    assert.equal(res.status, 200);
    clientConfig = res.body;
    assert.equal(clientConfig.datacenter, 'e2e');
    assert.equal(clientConfig.autoEncrypt, true);
    assert.deepEqual(clientConfig.retryJoin, addresses);
    assert.match(clientConfig.caPem, /BEGIN CERTIFICATE/);
    assert.equal(Buffer.from(clientConfig.encrypt, 'base64').length, 32);
    // Secrets are sealed at rest: the gossip key is nowhere in the database rows.
    const rows = await s.db.clusterSecret.findMany({ where: { clusterId } });
    assert.deepEqual(rows.map((r) => r.name).sort(), ['gossip-key', 'management-token', 'pki']);
    for (const r of rows) {
      assert.ok(!Buffer.from(r.ciphertext).includes(Buffer.from(clientConfig.encrypt)), `${r.name} is not stored in the clear`);
      assert.ok(!Buffer.from(r.ciphertext).includes(Buffer.from('PRIVATE KEY')), `${r.name} holds no clear private key`);
    }
    caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, clientConfig.caPem);
    assert.equal(res.headers.get('cache-control'), 'no-store', 'an answer with the gossip key is never cached');
  });

  it('gives a read-only user the client config without the gossip key', async () => {
    const res = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token: s.token(TENANT, READ, 'reader') });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.encrypt, undefined);
    assert.equal(res.body.consulConfig.encrypt, undefined);
    assert.ok(!JSON.stringify(res.body).includes(clientConfig.encrypt), 'the key is nowhere in the answer');
    assert.match(res.body.encryptOmitted, /Clusters\.ReadWrite/);
    assert.equal(res.body.caPem, clientConfig.caPem);
    assert.deepEqual(res.body.retryJoin, addresses);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  it('refuses plaintext HTTP', async () => {
    for (const a of addresses) assert.equal(await tcpOpen(a, 8500), false, `no plaintext HTTP port on ${a}`);
    const plain = await fetch(`http://${addresses[0]}:8501/v1/status/leader`).then((r) => r.status, () => 0);
    assert.notEqual(plain, 200, 'plaintext HTTP to the HTTPS port does not work');
  });

  it('denies an anonymous KV write (403) and allows one with a token from POST /tokens', async () => {
    const httpAddr = clientConfig.httpsAddress;
    const anon = await consul(['kv', 'put', 'hello', 'world'], { httpAddr, caFile });
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /403|Permission denied/);

    const created = await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: 'e2e token' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.headers.get('cache-control'), 'no-store', 'a token secret is never cached');
    assert.match(created.body.accessorId, /^[0-9a-f-]{36}$/);
    customerToken = created.body.secretId;
    const put = await consul(['kv', 'put', 'hello', 'world'], { httpAddr, caFile, token: customerToken });
    assert.equal(put.code, 0, put.stderr);
    const get = await consul(['kv', 'get', 'hello'], { httpAddr: `https://${addresses[2]}:8501`, caFile, token: customerToken });
    assert.equal(get.stdout.trim(), 'world');

    const events = await s.db.auditEvent.findMany({ where: { clusterId, action: 'cluster.token.created' } });
    assert.equal(events.length, 1);
    assert.equal((events[0].details as { accessorId: string }).accessorId, created.body.accessorId);
    assert.ok(!JSON.stringify(events, bigints).includes(customerToken), 'the audit log never holds the secret');
    const op = await s.db.operation.findFirst({ where: { clusterId, kind: 'create-token' } });
    assert.ok(!JSON.stringify(op, bigints).includes(customerToken), 'the operation row never holds the secret');
  });

  it('has three voters in raft list-peers', async () => {
    const peers = await consul(['operator', 'raft', 'list-peers'], { httpAddr: clientConfig.httpsAddress, caFile, token: customerToken });
    assert.equal(peers.code, 0, peers.stderr);
    const rows = peers.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 3, peers.stdout);
    for (const row of rows) assert.match(row, /\s(leader|follower)\s+true\s/, 'every server is a voter');
    assert.equal(rows.filter((r) => /\bleader\b/.test(r)).length, 1);
  });

  it('uses the client config gossip key on every server', async () => {
    const ring = await consul(['keyring', '-list'], { httpAddr: clientConfig.httpsAddress, caFile, token: customerToken });
    assert.equal(ring.code, 0, ring.stderr);
    const lan = ring.stdout.split(/\n\s*\n|==>/).find((section) => /\(LAN\)/.test(section));
    assert.ok(lan, ring.stdout);
    assert.match(lan, new RegExp(`${clientConfig.encrypt.replace(/[+/=]/g, (c: string) => `\\${c}`)} \\[3/3\\]`));
    assert.equal(lan.trim().split('\n').length, 2, 'exactly one key installed');
  });

  it('lets a client agent join with the client config, and keeps one with a wrong gossip key out', async () => {
    const octets = addresses[0].split('.');
    const clientAddress = `127.${octets[1]}.${octets[2]}.200`;
    const badAddress = `127.${octets[1]}.${octets[2]}.201`;
    // As a customer would: the client config as handed out, plus an agent token made with POST /tokens.
    const acl = { ...clientConfig.consulConfig.acl, tokens: { agent: customerToken } };
    const base = { ...clientConfig.consulConfig, acl, ports: { http: -1, https: -1, dns: -1, grpc: -1 }, disable_update_check: true, retry_interval: '1s' };
    agents.push(startClientAgent(path.join(work, 'good'), { ...base, node_name: 'customer-vm', bind_addr: clientAddress }, clientConfig.caPem));
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    const bad = startClientAgent(path.join(work, 'bad'), { ...base, node_name: 'intruder-vm', bind_addr: badAddress, encrypt: wrongKey }, clientConfig.caPem);
    agents.push(bad);

    const httpAddr = clientConfig.httpsAddress;
    const good = agents[0];
    const members = await waitFor(
      'the client agent to join',
      () => consul(['members'], { httpAddr, caFile, token: customerToken }),
      (r) => /customer-vm\s+\S+\s+alive\s+client/.test(r.stdout),
      60_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nclient agent log:\n${good.log().slice(-3000)}`);
    });
    assert.match(members.stdout, /customer-vm\s+\S+\s+alive\s+client/);
    // The wrong key is refused: wait until the agent reports its failed join attempts, then look.
    await waitFor('the bad agent to fail joining', async () => bad.log(), (log) => /Join LAN: error|failed to join|No installed keys could decrypt/i.test(log), 60_000, 250);
    const after = await consul(['members'], { httpAddr, caFile, token: customerToken });
    assert.doesNotMatch(after.stdout, /intruder-vm/);
  });

  it('deletes the cluster and leaves no process, port or data behind', async () => {
    const clustersDir = path.join(s.config.LOCAL_DIR, 'clusters');
    const target = new LocalTarget({ clustersDir, consulBinary: () => s.config.CONSUL_BIN });
    assert.equal((await target.observe(clusterId)).length, 3);
    for (const a of agents) await a.stop();

    const res = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    assert.equal(res.status, 202);
    const op = await waitFor('delete to finish', () => s.request('GET', `/v1/operations/${res.body.operation.id}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state));
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Deleted');
    assert.deepEqual(await target.observe(clusterId), []);
    for (const a of addresses) for (const port of [8300, 8301, 8501]) assert.equal(await tcpOpen(a, port), false, `${a}:${port} closed`);
    assert.equal(fs.existsSync(path.join(clustersDir, clusterId)), false, 'data directory removed');
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId } }), 0, 'secrets removed');
    assert.equal(await s.db.clusterServer.count({ where: { clusterId } }), 0, 'addresses released');
    const list = await s.request('GET', '/v1/clusters', { token });
    assert.ok(!list.body.clusters.some((c: { id: string }) => c.id === clusterId));
    target.close();
  });
});
