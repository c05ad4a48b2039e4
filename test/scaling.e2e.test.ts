import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { consul } from './support/consul-cli';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'cdcdcdcd-0000-4000-8000-00000000000d';

// Scaling real clusters between tiers: data kept, the right voters, nothing left of removed servers.
describe('scaling', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let work: string;
  let target: LocalTarget;

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-'));
    target = localTarget(s.config);
  });
  after(async () => {
    target.close();
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 120_000)).body;

  async function newCluster(name: string, tier: string) {
    const res = await s.request('POST', '/v1/clusters', { token, body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-scale', region: 'westeurope', tier } });
    assert.equal(res.status, 202);
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    const id: string = res.body.cluster.id;
    const cc = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body;
    const caFile = path.join(work, `${name}.pem`);
    fs.writeFileSync(caFile, cc.caPem);
    const secret = (await s.request('POST', `/v1/clusters/${id}/tokens`, { token })).body.secretId;
    const cli = (args: string[]) => consul(args, { httpAddr: cc.httpsAddress, caFile, token: secret });
    return { id, cli };
  }

  async function voters(cli: (a: string[]) => ReturnType<typeof consul>) {
    const out = await cli(['operator', 'raft', 'list-peers']);
    assert.equal(out.code, 0, out.stderr);
    return out.stdout.trim().split('\n').slice(1).filter((row) => /\s(leader|follower)\s+true\s/.test(row)).length;
  }

  async function scale(id: string, tier: string) {
    const res = await s.request('PATCH', `/v1/clusters/${id}`, { token, body: { tier } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.operation.kind, 'scale');
    const done = await finish(res.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    return (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
  }

  it('3 → 5 → 3 keeps all data with the right voters', async () => {
    const { id, cli } = await newCluster('grow', 'standard');
    for (let i = 0; i < 20; i++) assert.equal((await cli(['kv', 'put', `k/${i}`, `v${i}`])).code, 0);

    const five = await scale(id, 'plus');
    assert.equal(five.tier, 'plus');
    assert.equal(five.servers, 5);
    assert.equal(five.serverAddresses.length, 5);
    assert.equal(await voters(cli), 5);
    assert.deepEqual((await target.observe(id)).map((p) => p.index), [0, 1, 2, 3, 4]);
    for (let i = 20; i < 25; i++) assert.equal((await cli(['kv', 'put', `k/${i}`, `v${i}`])).code, 0);

    const three = await scale(id, 'standard');
    assert.equal(three.servers, 3);
    assert.deepEqual(three.serverAddresses, five.serverAddresses.slice(0, 3));
    assert.equal(await voters(cli), 3);
    assert.deepEqual((await target.observe(id)).map((p) => p.index), [0, 1, 2], 'removed servers stopped');
    for (const index of [3, 4]) assert.equal(fs.existsSync(path.join(s.config.LOCAL_DIR, 'clusters', id, `server-${index}`)), false);
    const keys = await cli(['kv', 'get', '-recurse', 'k/']);
    assert.equal(keys.stdout.trim().split('\n').length, 25, 'every key written before and during is there');
    const events = (await s.request('GET', `/v1/clusters/${id}/events`, { token })).body.events.map((e: { action: string }) => e.action);
    assert.equal(events.filter((a: string) => a === 'cluster.scaled').length, 2);
  });

  it('1 → 3 keeps all data and ends with three voters', async () => {
    const { id, cli } = await newCluster('solo', 'development');
    assert.equal((await cli(['kv', 'put', 'solo/key', 'kept'])).code, 0);
    const three = await scale(id, 'standard');
    assert.equal(three.servers, 3);
    assert.equal(await voters(cli), 3);
    assert.equal((await cli(['kv', 'get', 'solo/key'])).stdout.trim(), 'kept');
  });

  it('refuses a bad tier and a scale of a cluster that is not Running', async () => {
    const res = await s.request('GET', '/v1/clusters', { token });
    const id = res.body.clusters[0].id;
    const bad = await s.request('PATCH', `/v1/clusters/${id}`, { token, body: { tier: 'mega' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_tier');
    const same = await s.request('PATCH', `/v1/clusters/${id}`, { token, body: { tier: res.body.clusters[0].tier } });
    assert.equal(same.status, 200, 'the same tier changes nothing');
    for (const c of res.body.clusters) {
      const del = await s.request('DELETE', `/v1/clusters/${c.id}`, { token });
      assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
    }
  });
});
