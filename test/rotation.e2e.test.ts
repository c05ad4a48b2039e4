import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { consul } from './support/consul-cli';
import { SUBSCRIPTION, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'bcbcbcbc-0000-4000-8000-00000000000b';

function servedFingerprint(host: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: 8501, ca }, () => {
      const fp = socket.getPeerX509Certificate()!.fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

// Rotation on a real 3-server cluster while it keeps serving.
describe('key rotation', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let id: string;
  let cc: any;
  let caFile: string;
  let secret: string;
  let work: string;
  const cli = (args: string[]) => consul(args, { httpAddr: cc.httpsAddress, caFile, token: secret });
  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000)).body;

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rotate-'));
    const res = await s.request('POST', '/v1/clusters', { token, body: { name: 'rotor', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-rot', region: 'westeurope', tier: 'standard' } });
    id = res.body.cluster.id;
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    cc = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body;
    caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, cc.caPem);
    secret = (await s.request('POST', `/v1/clusters/${id}/tokens`, { token })).body.secretId;
    assert.equal((await cli(['kv', 'put', 'before', 'rotation'])).code, 0);
  });
  after(async () => {
    const del = await s.request('DELETE', `/v1/clusters/${id}`, { token });
    await finish(del.body.operation.id);
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('gossip key rotation ends with one new key on all servers', async () => {
    const oldKey = cc.encrypt;
    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'gossip-key' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    const newKey = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body.encrypt;
    assert.notEqual(newKey, oldKey);
    const ring = await cli(['keyring', '-list']);
    assert.equal(ring.code, 0, ring.stderr);
    assert.ok(!ring.stdout.includes(oldKey), 'the old key is gone everywhere');
    const lan = ring.stdout.split(/\n\s*\n|==>/).find((x) => /\(LAN\)/.test(x))!;
    assert.equal(lan.trim().split('\n').length, 2, 'one key');
    assert.ok(lan.includes(`${newKey} [3/3]`), ring.stdout);
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation');
  });

  it('certificate rotation keeps the cluster serving, with new certificates from the same CA', async () => {
    const before = await Promise.all(cc.retryJoin.map((a: string) => servedFingerprint(a, cc.caPem)));
    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'certificates' } });
    assert.equal(res.status, 202);
    // A writer loops while the servers reload one by one.
    let failures = 0;
    let writes = 0;
    let done: any;
    while (!done) {
      const w = await cli(['kv', 'put', `during/${writes}`, 'x']);
      writes++;
      if (w.code !== 0) failures++;
      const op = await s.request('GET', `/v1/operations/${res.body.operation.id}`, { token });
      if (['Succeeded', 'Failed'].includes(op.body.state)) done = op.body;
    }
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.equal(failures, 0, `${failures} of ${writes} writes failed during rotation`);
    const afterFps = await Promise.all(cc.retryJoin.map((a: string) => servedFingerprint(a, cc.caPem)));
    for (let i = 0; i < before.length; i++) assert.notEqual(afterFps[i], before[i], `server ${i} serves a new certificate`);
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation');
    const peers = await cli(['operator', 'raft', 'list-peers']);
    assert.equal(peers.stdout.trim().split('\n').slice(1).length, 3);
  });

  it('refuses an unknown rotation', async () => {
    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'everything' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_what');
  });
});
