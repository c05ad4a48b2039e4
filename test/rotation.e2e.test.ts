import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AuditRepository, ClusterRepository, SecretBox, TenantClusterRepository, SecretName, SecretRepository, createOperationsQueue, createRedis, type Operation, type OperationsQueue,
} from '../libs/core/src';
import { LocalTarget, planManagementTokenRotation, withManagementTokenAccessors, type ManagementTokenRotation } from '../libs/provisioner/src';
import { ClusterTarget } from '../apps/worker/src/operations/cluster-target';
import { RotateManagementTokenFlow } from '../apps/worker/src/operations/flows/rotate.flow';
import { HealthMonitor } from '../apps/worker/src/health/health.monitor';
import { consul, servedFingerprint } from './support/consul-cli';
import { SUBSCRIPTION, WRITE, localTarget, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'bcbcbcbc-0000-4000-8000-00000000000b';


/** GET /v1/acl/token/self with a token: the status, and the body only when it is an error (a 200 body holds the secret). */
function tokenSelf(address: string, ca: string, token: string, path = '/v1/acl/token/self'): Promise<{ status: number; error: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: address, port: 8501, path, method: 'GET', ca, headers: { 'X-Consul-Token': token }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, error: res.statusCode === 200 ? '' : Buffer.concat(chunks).toString('utf8').slice(0, 200) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('token lookup timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('management token rotation plan', () => {
  const current = randomUUID();
  it('a retry of the same operation keeps its ids', () => {
    const first = planManagementTokenRotation('op-1', current, null);
    assert.ok(first.secretId !== current && first.accessorId !== first.secretId);
    assert.deepEqual(first.revoke.length, 1);
    assert.ok(first.revoke[0] === current, 'the current token is the one to revoke');
    assert.equal(planManagementTokenRotation('op-1', current, first), first);
  });
  it('a finished rotation is followed by a fresh one', () => {
    const done: ManagementTokenRotation = { operationId: 'op-1', accessorId: randomUUID(), secretId: current, revoke: [] };
    const next = planManagementTokenRotation('op-2', current, done);
    assert.equal(next.operationId, 'op-2');
    assert.ok(next.secretId !== current && next.accessorId !== done.accessorId);
    assert.ok(next.revoke.length === 1 && next.revoke[0] === current);
  });
  it('an unfinished rotation whose token is not in use yet is carried on', () => {
    const stuck: ManagementTokenRotation = { operationId: 'op-1', accessorId: randomUUID(), secretId: randomUUID(), revoke: [current] };
    const next = planManagementTokenRotation('op-2', current, stuck);
    assert.equal(next.operationId, 'op-2');
    assert.equal(next.accessorId, stuck.accessorId);
    assert.ok(next.secretId === stuck.secretId && next.revoke.length === 1 && next.revoke[0] === current);
  });
  it('the list of management token accessors only grows, and says when it did not', () => {
    const [a, b] = [randomUUID(), randomUUID()];
    assert.equal(withManagementTokenAccessors(null, []), null);
    assert.deepEqual(withManagementTokenAccessors(null, [a, a]), { accessorIds: [a] });
    assert.equal(withManagementTokenAccessors({ accessorIds: [a] }, [a]), null);
    assert.deepEqual(withManagementTokenAccessors({ accessorIds: [a] }, [b, a, b]), { accessorIds: [a, b] });
  });
  it('an unfinished rotation that switched already: a fresh token, and its leftovers are revoked too', () => {
    const older = randomUUID();
    const switched: ManagementTokenRotation = { operationId: 'op-1', accessorId: randomUUID(), secretId: current, revoke: [older] };
    const next = planManagementTokenRotation('op-2', current, switched);
    assert.ok(next.secretId !== current && next.accessorId !== switched.accessorId);
    assert.deepEqual([...next.revoke].sort(), [older, current].sort());
  });
});

// Rotation on a real 3-server cluster while it keeps serving.
describe('key rotation', { timeout: 600_000 }, () => {
  let s: TestStack;
  let token: string;
  let id: string;
  let cc: any;
  let caFile: string;
  let secret: string;
  let work: string;
  let target: LocalTarget;
  let clusterTarget: ClusterTarget;
  let secrets: SecretRepository;
  let clusters: ClusterRepository;
  let monitor: HealthMonitor;
  let queue: OperationsQueue;
  let redis: ReturnType<typeof createRedis>;
  /** Every management token the cluster had before the current one. */
  const retired: string[] = [];
  const cli = (args: string[], server?: string) => consul(args, { httpAddr: server ?? cc.httpsAddress, caFile, token: secret });
  const finish = async (opId: string, timeoutMs = 90_000) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), timeoutMs)).body;
  const serverConfig = (i: number) => JSON.parse(fs.readFileSync(path.join(s.config.LOCAL_DIR, 'clusters', id, `server-${i}`, 'config', 'server.json'), 'utf8'));
  const configMaster = (i: number): string => serverConfig(i).acl.tokens.master;
  const storedToken = async () => (await secrets.get(id, SecretName.ManagementToken))!;
  const leaderIndex = async (): Promise<number> => {
    for (const a of cc.retryJoin as string[]) {
      const r = await consul(['operator', 'raft', 'list-peers'], { httpAddr: `https://${a}:8501`, caFile, token: secret });
      const line = r.stdout.split('\n').find((l) => /\sleader\s/.test(l));
      if (r.code === 0 && line) return cc.retryJoin.indexOf(line.split(/\s+/)[2]!.split(':')[0]);
    }
    return -1;
  };
  /**
   * Every server rejects each retired token with "ACL not found", and accepts the current one. With `stale`, also
   * as each server answers from its own state (as it authorizes a request), not only through the leader.
   */
  const assertOnlyCurrentTokenWorks = async (addresses: string[], current: string, { stale = false } = {}) => {
    const paths = stale ? ['/v1/acl/token/self', '/v1/acl/token/self?stale', '/v1/kv/before?stale'] : ['/v1/acl/token/self'];
    for (const a of addresses) {
      for (const p of paths) {
        for (const old of retired) {
          const r = await tokenSelf(a, cc.caPem, old, p);
          assert.equal(r.status, 403, `server ${a}, ${p}: retired management token #${retired.indexOf(old)} answered ${r.status}`);
          assert.match(r.error, /ACL not found/);
        }
        assert.equal((await tokenSelf(a, cc.caPem, current, p)).status, 200, `server ${a}, ${p}: the current management token is refused`);
      }
    }
  };
  /** A writer that fails over between servers (as a client agent with retry_join does) until the operation ends. */
  const writeUntilDone = async (opId: string, prefix: string) => {
    let writes = 0;
    let failures = 0;
    let done: any;
    const deadline = Date.now() + 240_000;
    while (!done) {
      if (Date.now() > deadline) throw new Error(`operation ${opId} still running after 240 s`);
      let ok = false;
      for (let k = 0; k < 3 && !ok; k++) ok = (await cli(['kv', 'put', `${prefix}/${writes}`, String(writes)], `https://${cc.retryJoin[(writes + k) % 3]}:8501`)).code === 0;
      if (!ok) failures++;
      writes++;
      const op = await s.request('GET', `/v1/operations/${opId}`, { token });
      if (['Succeeded', 'Failed'].includes(op.body.state)) done = op.body;
    }
    return { writes, failures, done };
  };

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
    target = localTarget(s.config);
    clusters = new ClusterRepository(s.db);
    secrets = new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE));
    clusterTarget = new ClusterTarget(s.config, clusters, secrets);
    redis = createRedis(s.config.REDIS_URL, false);
    queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    monitor = new HealthMonitor(clusters, new TenantClusterRepository(s.db), target, queue, s.config.JOB_ATTEMPTS);
  });
  after(async () => {
    const del = await s.request('DELETE', `/v1/clusters/${id}`, { token });
    await finish(del.body.operation.id);
    target.close();
    clusterTarget.close();
    await queue.close();
    redis.disconnect();
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

  it('management token rotation: the new token is in every server config and used by the worker, the old one is revoked, writes keep succeeding', async () => {
    const oldMaster = configMaster(0);
    retired.push(oldMaster); // from here on, later tests check it stays revoked whatever happens in this one
    for (const i of [0, 1, 2]) assert.ok(configMaster(i) === oldMaster, `server ${i} names the same management token`);
    assert.ok((await storedToken()) === oldMaster, 'the stored management token is the one in the configs');
    for (const a of cc.retryJoin) assert.equal((await tokenSelf(a, cc.caPem, oldMaster)).status, 200);
    const leaderBefore = await leaderIndex();
    assert.ok(leaderBefore >= 0);

    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'management-token' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.operation.kind, 'rotate-management-token');
    const { writes, failures, done } = await writeUntilDone(res.body.operation.id, 'mt');
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    const roll = done.steps.find((x: { name: string }) => x.name === 'roll-servers');
    process.stdout.write(`# management-token rotation: ${writes} writes, ${failures} failed; roll-servers took ${roll.durationMs} ms: ${roll.detail}\n`);
    // The leader leaves gracefully, last: at most the write in flight at that one leader change may find no server to take it.
    assert.ok(failures <= 1, `${failures} of ${writes} writes failed; steps: ${JSON.stringify(done.steps.map((x: { name: string; durationMs: number }) => [x.name, x.durationMs]))}`);
    assert.deepEqual(done.steps.map((x: { name: string }) => x.name), ['choose-token', 'create-token', 'verify-token', 'roll-servers', 'switch-token', 'revoke-old-token']);
    const [, list, leftAsLeader] = roll.detail.match(/^restarted in order ([\d, ]+) \(the leader, (\d), last\)$/) ?? assert.fail(roll.detail);
    const order = list.split(', ').map(Number);
    assert.deepEqual([...order].sort(), [0, 1, 2], 'every server restarted once');
    // Leadership may move under the roll (a follower back from its restart can win an election): the leader of its turn goes last.
    assert.equal(order[2], Number(leftAsLeader), 'the leader restarted last');
    if (Number(leftAsLeader) !== leaderBefore) process.stdout.write(`# leadership moved during the roll: ${leaderBefore} → ${leftAsLeader}\n`);

    const newMaster = configMaster(0);
    assert.ok(newMaster !== oldMaster, 'the configs name a new token');
    for (const i of [0, 1, 2]) {
      assert.ok(configMaster(i) === newMaster && serverConfig(i).acl.tokens.agent === newMaster, `server ${i}: master and agent tokens are the new one`);
    }
    assert.ok((await storedToken()) === newMaster, 'the worker uses the new token');
    await assertOnlyCurrentTokenWorks(cc.retryJoin, newMaster);

    // Data: written before, and every acknowledged write during the rotation.
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation', 'a token issued before the rotation still works');
    const stored = await cli(['kv', 'get', '-recurse', 'mt/']);
    assert.equal(stored.stdout.trim().split('\n').length, writes - failures, 'every acknowledged write is there');

    // What the worker does with the management token uses the new one: issuing a token, a snapshot.
    const issued = await s.request('POST', `/v1/clusters/${id}/tokens`, { token });
    assert.equal(issued.status, 201, JSON.stringify(issued.body.error ?? {}));
    const withIssued = await consul(['kv', 'get', 'before'], { httpAddr: cc.httpsAddress, caFile, token: issued.body.secretId });
    assert.equal(withIssued.stdout.trim(), 'rotation');
    const snap = await s.request('POST', `/v1/clusters/${id}/snapshots`, { token, body: { name: 'after-rotation' } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    const events = (await s.request('GET', `/v1/clusters/${id}/events`, { token })).body.events;
    assert.ok(events.some((e: { action: string }) => e.action === 'cluster.management-token.rotated'));
  });

  it('after a leader change (the leader killed and repaired) the old token stays revoked', async () => {
    const current = await storedToken();
    const leaderBefore = await leaderIndex();
    const victim = (await target.observe(id)).find((p) => p.index === leaderBefore)!;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('the leader to be gone', () => target.observe(id), (procs) => !procs.some((p) => p.index === leaderBefore), 10_000, 50);
    // A new leader is elected among the other two: it establishes leadership, which re-creates a configured master token if missing.
    const leaderDuring = await waitFor('a new leader', leaderIndex, (i) => i >= 0 && i !== leaderBefore, 30_000, 200);
    await assertOnlyCurrentTokenWorks(cc.retryJoin.filter((_: string, i: number) => i !== leaderBefore), current);

    assert.equal((await monitor.tick()).repairs, 1);
    const ops = (await s.request('GET', `/v1/clusters/${id}/operations`, { token })).body.operations;
    const repair = ops.find((o: { kind: string; state: string }) => o.kind === 'repair' && !['Succeeded', 'Failed', 'Canceled'].includes(o.state));
    assert.ok(repair, 'a repair is queued');
    assert.equal((await finish(repair.id)).state, 'Succeeded');
    assert.deepEqual((await target.observe(id)).map((p) => p.index), [0, 1, 2]);
    process.stdout.write(`# leader ${leaderBefore} killed; server ${leaderDuring} took over; repaired\n`);
    await assertOnlyCurrentTokenWorks(cc.retryJoin, current);
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation');
  });

  it('a rotation cut short is carried on by the next one, and re-running its steps changes nothing', async () => {
    const oldMaster = await storedToken();
    retired.push(oldMaster);
    const cluster = (await clusters.get(id))!;
    const flow = new RotateManagementTokenFlow(clusterTarget, secrets, new AuditRepository(s.db), 60_000);
    // An operation whose worker stopped for good after rolling the servers, before switching the stored token.
    const cutShort = { id: randomUUID() } as Operation;
    for (const step of flow.steps({ operation: cutShort, cluster, loaded: await clusterTarget.open(cluster) })) {
      if (step.name === 'switch-token') break;
      await step.run();
    }
    const planA = JSON.parse((await secrets.get(id, SecretName.ManagementTokenRotation))!) as ManagementTokenRotation;
    assert.equal(planA.operationId, cutShort.id);
    for (const i of [0, 1, 2]) assert.ok(configMaster(i) === planA.secretId, `server ${i} names the planned token`);
    assert.ok((await storedToken()) === oldMaster, 'not switched yet');
    for (const a of cc.retryJoin) {
      assert.equal((await tokenSelf(a, cc.caPem, oldMaster)).status, 200, 'the old token works until it is revoked');
      assert.equal((await tokenSelf(a, cc.caPem, planA.secretId)).status, 200);
    }
    const pids = await target.observe(id);

    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'management-token' } });
    assert.equal(res.status, 202);
    const done = await finish(res.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.match(done.steps.find((x: { name: string }) => x.name === 'choose-token').detail, new RegExp(`carried on from operation ${cutShort.id}`));
    assert.equal(done.steps.find((x: { name: string }) => x.name === 'create-token').detail, `token ${planA.accessorId} exists already`);
    assert.equal(done.steps.find((x: { name: string }) => x.name === 'roll-servers').detail, 'every server runs the new config');
    assert.deepEqual(await target.observe(id), pids, 'no server restarted again');
    const planB = JSON.parse((await secrets.get(id, SecretName.ManagementTokenRotation))!) as ManagementTokenRotation;
    assert.equal(planB.operationId, res.body.operation.id);
    assert.equal(planB.accessorId, planA.accessorId);
    assert.equal(planB.revoke.length, 0, 'done');
    assert.ok((await storedToken()) === planA.secretId, 'the carried-on token is stored');
    await assertOnlyCurrentTokenWorks(cc.retryJoin, planA.secretId);

    // A job retried after a crash at its very end runs every step again: nothing changes.
    const details: string[] = [];
    for (const step of flow.steps({ operation: { id: res.body.operation.id } as Operation, cluster, loaded: await clusterTarget.open(cluster) })) details.push(`${step.name}: ${(await step.run()) ?? ''}`);
    assert.ok(details.includes('switch-token: already switched'), details.join('; '));
    assert.ok(details.includes('revoke-old-token: nothing left to revoke'), details.join('; '));
    assert.ok(details.includes('roll-servers: every server runs the new config'), details.join('; '));
    assert.deepEqual(await target.observe(id), pids, 'no server restarted');
    assert.ok((await storedToken()) === planA.secretId);
    await assertOnlyCurrentTokenWorks(cc.retryJoin, planA.secretId);
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation');
  });

  it('restoring a snapshot from before a rotation: the retired token stays revoked, the current one works, the data is the snapshot\'s', async () => {
    const snapshot = async (name: string): Promise<string> => {
      const r = await s.request('POST', `/v1/clusters/${id}/snapshots`, { token, body: { name } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.equal((await finish(r.body.operation.id)).state, 'Succeeded');
      return r.body.snapshot.id;
    };
    const rotate = async (): Promise<string> => {
      const before = await storedToken();
      const r = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'management-token' } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const done = await finish(r.body.operation.id, 180_000);
      assert.equal(done.state, 'Succeeded', JSON.stringify(done));
      retired.push(before);
      const after = await storedToken();
      assert.ok(after !== before, 'a new management token');
      return after;
    };
    const restore = async (snapshotId: string): Promise<string> => {
      const r = await s.request('POST', `/v1/clusters/${id}/snapshots/${snapshotId}/restore`, { token });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const done = await finish(r.body.operation.id, 180_000);
      assert.equal(done.state, 'Succeeded', JSON.stringify(done));
      assert.deepEqual(done.steps.map((x: { name: string }) => x.name), ['pre-restore-snapshot', 'verify-snapshot', 'restore', 'wait-for-leader', 'revoke-retired-tokens', 'ensure-federation-tokens']);
      const last = done.steps.find((x: { name: string }) => x.name === 'revoke-retired-tokens');
      return `${last.detail} [${last.durationMs} ms]`;
    };
    const get = async (key: string) => (await cli(['kv', 'get', key])).stdout.trim();

    assert.equal((await cli(['kv', 'put', 'restore/marker', 'one'])).code, 0);
    const first = await snapshot('before-rotation'); // holds the current management token
    const second = await rotate(); // the first one is retired
    assert.equal((await cli(['kv', 'put', 'restore/marker', 'two'])).code, 0);
    assert.equal((await cli(['kv', 'put', 'restore/later', 'x'])).code, 0);
    const middle = await snapshot('after-rotation'); // holds the second under the AccessorID the rotation gave it
    await assertOnlyCurrentTokenWorks(cc.retryJoin, second, { stale: true });

    // The first snapshot brings the first token back; it predates the second, which the leader makes again from its config.
    const detail = await restore(first);
    process.stdout.write(`# restore of a snapshot from before the rotation: ${detail}\n`);
    await assertOnlyCurrentTokenWorks(cc.retryJoin, second, { stale: true });
    assert.match(detail, /^deleted 1 retired management token\(s\) the snapshot brought back/);
    assert.equal(await get('restore/marker'), 'one', 'the data is the snapshot\'s');
    assert.equal((await cli(['kv', 'get', 'restore/later'])).code, 1, 'written after the snapshot: gone');
    assert.equal(await get('before'), 'rotation');
    const issued = await s.request('POST', `/v1/clusters/${id}/tokens`, { token });
    assert.equal(issued.status, 201, 'the worker still works with the current management token');

    // The second token now has the AccessorID the leader gave it; the middle snapshot holds it under the first one.
    const third = await rotate();
    const detail2 = await restore(middle);
    process.stdout.write(`# restore of a snapshot from between two rotations: ${detail2}\n`);
    await assertOnlyCurrentTokenWorks(cc.retryJoin, third, { stale: true });
    assert.match(detail2, /^deleted 1 retired management token\(s\) the snapshot brought back/);
    assert.equal(await get('restore/marker'), 'two', 'the data is the middle snapshot\'s');
    assert.equal(await get('restore/later'), 'x');
    for (const i of [0, 1, 2]) assert.ok(configMaster(i) === third, `server ${i} names the current management token`);
  });

  it('servers added by scaling after a rotation get the current token in their config', async () => {
    const current = await storedToken();
    const res = await s.request('PATCH', `/v1/clusters/${id}`, { token, body: { tier: 'plus' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await finish(res.body.operation.id, 180_000)).state, 'Succeeded');
    const addresses: string[] = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body.retryJoin;
    assert.equal(addresses.length, 5);
    for (const i of [0, 1, 2, 3, 4]) assert.ok(configMaster(i) === current, `server ${i} names the current management token`);
    await assertOnlyCurrentTokenWorks(addresses, current);
    assert.equal((await cli(['kv', 'get', 'before'])).stdout.trim(), 'rotation');
  });

  it('refuses an unknown rotation', async () => {
    const res = await s.request('POST', `/v1/clusters/${id}/rotate`, { token, body: { what: 'everything' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_what');
    assert.deepEqual(res.body.error.details.allowed, ['gossip-key', 'certificates', 'management-token', 'ca']);
  });
});
