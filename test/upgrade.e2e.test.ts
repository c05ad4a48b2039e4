import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalTarget } from '../libs/provisioner/src';
import { consul } from './support/consul-cli';
import { SUBSCRIPTION, WRITE, localTarget, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'dededede-0000-4000-8000-00000000000f';

// Only Consul 1.8.7 exists here. The test registers a second catalog entry for
// the same binary (through a link, so each server's binary path shows whether it
// was restarted), honestly reporting 1.8.7, and one whose binary cannot start.
describe('rolling upgrade', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let work: string;
  let target: LocalTarget;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'upgrade-'));
    const rolling = path.join(work, 'consul-rolling');
    fs.symlinkSync(process.env.CONSUL_BIN!, rolling);
    const broken = path.join(work, 'consul-broken');
    fs.writeFileSync(broken, '#!/bin/sh\necho "this build cannot start" >&2\nexit 1\n', { mode: 0o755 });
    const extra = [
      { version: '1.8.7-rolling', status: 'AVAILABLE', binary: rolling, reports: '1.8.7' },
      { version: '1.8.7-broken', status: 'PREVIEW', binary: broken, reports: '1.8.7' },
    ];
    s = await startStack({ worker: true, config: await testConfig({ EXTRA_CONSUL_VERSIONS: JSON.stringify(extra) }) });
    token = s.token(TENANT, WRITE);
    target = localTarget(s.config);
  });
  after(async () => {
    target.close();
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 180_000)).body;

  async function cluster(name: string) {
    const res = await s.request('POST', '/v1/clusters', { token, body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-up', region: 'westeurope', tier: 'standard' } });
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    const id: string = res.body.cluster.id;
    const cc = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body;
    const caFile = path.join(work, `${name}.pem`);
    fs.writeFileSync(caFile, cc.caPem);
    const secret = (await s.request('POST', `/v1/clusters/${id}/tokens`, { token })).body.secretId;
    return { id, cc, cli: (args: string[], server?: string) => consul(args, { httpAddr: server ?? cc.httpsAddress, caFile, token: secret }) };
  }

  it('upgrades one server at a time, leader last, while a writer loops; data kept', async () => {
    const versions = (await s.request('GET', '/v1/versions', { token })).body.versions.map((v: { version: string }) => v.version);
    assert.ok(versions.includes('1.8.7-rolling'));
    const { id, cc, cli } = await cluster('upgrade-me');
    const peers = await cli(['operator', 'raft', 'list-peers']);
    const leaderAddress = peers.stdout.split('\n').find((l) => /\sleader\s/.test(l))!.split(/\s+/)[2].split(':')[0];
    const leaderIndex = cc.retryJoin.indexOf(leaderAddress);

    const res = await s.request('POST', `/v1/clusters/${id}/upgrade`, { token, body: { consulVersion: '1.8.7-rolling' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    let writes = 0;
    let failures = 0;
    let done: any;
    // The writer fails over between servers, as a client agent with retry_join does; a write fails when no server takes it.
    while (!done) {
      let ok = false;
      for (let k = 0; k < 3 && !ok; k++) ok = (await cli(['kv', 'put', `w/${writes}`, String(writes)], `https://${cc.retryJoin[(writes + k) % 3]}:8501`)).code === 0;
      if (!ok) failures++;
      writes++;
      const op = await s.request('GET', `/v1/operations/${res.body.operation.id}`, { token });
      if (['Succeeded', 'Failed'].includes(op.body.state)) done = op.body;
    }
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    // Only around the one leader change may a write find no server to take it.
    assert.ok(failures <= 3, `${failures} of ${writes} writes failed; steps: ${JSON.stringify(done.steps.map((x: { name: string; durationMs: number }) => [x.name, x.durationMs]))}`);
    const roll = done.steps.find((x: { name: string }) => x.name === 'roll-servers');
    process.stdout.write(`# upgrade: ${writes} writes, ${failures} failed; roll-servers took ${roll.durationMs} ms\n`);
    const [, list, leftAsLeader] = roll.detail.match(/order ([\d, ]+) \(the leader, (\d), last\)/) ?? assert.fail(roll.detail);
    const order = list.split(', ').map(Number);
    assert.equal(order.length, 3);
    // Leadership may move under the roll (a follower back from its restart can win an election): the leader of its turn goes last.
    assert.equal(order[2], Number(leftAsLeader), 'the leader was upgraded last');
    if (Number(leftAsLeader) !== leaderIndex) process.stdout.write(`# leadership moved during the roll: ${leaderIndex} → ${leftAsLeader}\n`);
    assert.ok(done.steps.some((x: { name: string }) => x.name === 'pre-upgrade-snapshot'));
    const snaps = (await s.request('GET', `/v1/clusters/${id}/snapshots`, { token })).body.snapshots;
    assert.ok(snaps.some((x: { kind: string; state: string }) => x.kind === 'pre-upgrade' && x.state === 'Available'));

    const c = (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
    assert.equal(c.consulVersion, '1.8.7-rolling');
    assert.equal(c.state, 'Running');
    for (const i of [0, 1, 2]) assert.match((await target.serverBinary(id, i))!, /consul-rolling$/, `server ${i} runs the new binary`);
    const stored = await cli(['kv', 'get', '-recurse', 'w/']);
    assert.equal(stored.stdout.trim().split('\n').length, writes - failures, 'every acknowledged write is there');
  });

  it('a server that is not healthy on the new version is rolled back and the upgrade fails with the reason', async () => {
    const { id, cli } = await cluster('doomed');
    assert.equal((await cli(['kv', 'put', 'keep', 'me'])).code, 0);
    const res = await s.request('POST', `/v1/clusters/${id}/upgrade`, { token, body: { consulVersion: '1.8.7-broken' } });
    const done = await finish(res.body.operation.id);
    assert.equal(done.state, 'Failed');
    assert.equal(done.error.code, 'upgrade_health_failed');
    assert.match(done.error.message, /rolled back to 1\.8\.7/);
    const c = (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
    assert.equal(c.consulVersion, '1.8.7');
    assert.equal(c.state, 'Running');
    assert.match(c.stateReason, /upgrade to 1\.8\.7-broken failed/);
    assert.deepEqual((await target.observe(id)).map((p) => p.index), [0, 1, 2], 'all three servers run again');
    for (const i of [0, 1, 2]) assert.equal(await target.serverBinary(id, i), s.config.CONSUL_BIN);
    assert.equal((await cli(['kv', 'get', 'keep'])).stdout.trim(), 'me');
    const bad = await s.request('POST', `/v1/clusters/${id}/upgrade`, { token, body: { consulVersion: '9.9.9' } });
    assert.equal(bad.status, 400);
    const same = await s.request('POST', `/v1/clusters/${id}/upgrade`, { token, body: { consulVersion: '1.8.7' } });
    assert.equal(same.status, 409);
  });
});
