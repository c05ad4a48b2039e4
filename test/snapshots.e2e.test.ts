import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { BlobServiceClient } from '@azure/storage-blob';
import { SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { consul } from './support/consul-cli';
import { SUBSCRIPTION, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'ffffffff-0000-4000-8000-000000000006';

// Snapshots of a real cluster, stored in Azurite through @azure/storage-blob, and restored.
describe('snapshots and restore', { timeout: 240_000 }, () => {
  let s: TestStack;
  let token: string;
  let clusterId: string;
  let caFile: string;
  let httpAddr: string;
  let consulToken: string;
  let work: string;
  let firstSnapshot: any;

  const kv = (args: string[]) => consul(['kv', ...args], { httpAddr, caFile, token: consulToken });
  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 90_000)).body;
  const keys = async () => {
    const out = await kv(['export']);
    assert.equal(out.code, 0, out.stderr);
    return Object.fromEntries((JSON.parse(out.stdout) as { key: string; value: string }[]).map((e) => [e.key, Buffer.from(e.value, 'base64').toString()]));
  };

  before(async () => {
    s = await startStack({ worker: true, config: undefined });
    token = s.token(TENANT, WRITE);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-'));
    const res = await s.request('POST', '/v1/clusters', {
      token,
      body: { name: 'snappy', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-snap', region: 'westeurope', tier: 'development' },
    });
    clusterId = res.body.cluster.id;
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    const cc = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token });
    caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, cc.body.caPem);
    httpAddr = cc.body.httpsAddress;
    consulToken = (await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token })).body.secretId;
  });
  after(async () => {
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('write keys, snapshot, write more, restore: exactly the first keys', async () => {
    assert.equal((await kv(['put', 'app/a', 'one'])).code, 0);
    assert.equal((await kv(['put', 'app/b', 'two'])).code, 0);

    const snap = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token, body: { name: 'first' } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    assert.equal(snap.body.snapshot.state, 'Pending');
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    const list = await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token });
    firstSnapshot = list.body.snapshots.find((x: { id: string }) => x.id === snap.body.snapshot.id);
    assert.equal(firstSnapshot.state, 'Available');
    assert.equal(firstSnapshot.kind, 'manual');
    assert.equal(firstSnapshot.name, 'first');
    assert.ok(firstSnapshot.size > 0);
    assert.match(firstSnapshot.sha256, /^[0-9a-f]{64}$/);
    assert.ok(Number(firstSnapshot.consulIndex) > 0);

    assert.equal((await kv(['put', 'app/c', 'three'])).code, 0);
    assert.equal((await kv(['put', 'app/a', 'changed'])).code, 0);
    assert.deepEqual(await keys(), { 'app/a': 'changed', 'app/b': 'two', 'app/c': 'three' });

    const restore = await s.request('POST', `/v1/clusters/${clusterId}/snapshots/${firstSnapshot.id}/restore`, { token });
    assert.equal(restore.status, 202);
    const done = await finish(restore.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.deepEqual(done.steps.map((x: { name: string }) => x.name), ['pre-restore-snapshot', 'verify-snapshot', 'restore', 'wait-for-leader', 'revoke-retired-tokens', 'ensure-federation-tokens']);
    assert.deepEqual(await keys(), { 'app/a': 'one', 'app/b': 'two' });

    // The safety snapshot holds what was there before the restore.
    const after = await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token });
    const pre = after.body.snapshots.filter((x: { kind: string }) => x.kind === 'pre-restore');
    assert.equal(pre.length, 1);
    assert.equal(pre[0].state, 'Available');
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Running');
  });

  it('renames a snapshot, and refuses bad input without changing anything', async () => {
    const renamed = await s.request('PATCH', `/v1/clusters/${clusterId}/snapshots/${firstSnapshot.id}`, { token, body: { name: 'golden' } });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.name, 'golden');
    const bad = await s.request('PATCH', `/v1/clusters/${clusterId}/snapshots/${firstSnapshot.id}`, { token, body: { name: '' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_name');
    const badFlag = await s.request('POST', `/v1/clusters/${clusterId}/snapshots/${firstSnapshot.id}/restore`, { token, body: { takeSnapshot: 'no' } });
    assert.equal(badFlag.status, 400);
    const other = await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token: s.token('99999999-0000-4000-8000-000000000009', WRITE) });
    assert.equal(other.status, 404, 'another tenant sees no such cluster');
  });

  it('verifies the checksum before restoring: a tampered blob fails the restore and the cluster keeps serving', async () => {
    const snap = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token, body: { name: 'to-tamper' } });
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    const blobs = BlobServiceClient.fromConnectionString(s.config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(s.config.SNAPSHOT_CONTAINER);
    const blob = blobs.getBlockBlobClient(`${clusterId}/${snap.body.snapshot.id}.snap`);
    const props = await blob.getProperties();
    await blob.upload(Buffer.from('not a snapshot'), 14, { metadata: props.metadata });

    const restore = await s.request('POST', `/v1/clusters/${clusterId}/snapshots/${snap.body.snapshot.id}/restore`, { token, body: { takeSnapshot: false } });
    const done = await finish(restore.body.operation.id);
    assert.equal(done.state, 'Failed');
    assert.match(done.error.message, /checksum|sha256/i);
    assert.deepEqual(await keys(), { 'app/a': 'one', 'app/b': 'two' }, 'data untouched');
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Running');
    assert.match(cluster.body.stateReason, /restore failed/);
  });

  const blobOf = (snapshotId: string) =>
    BlobServiceClient.fromConnectionString(s.config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(s.config.SNAPSHOT_CONTAINER).getBlockBlobClient(`${clusterId}/${snapshotId}.snap`);
  const takeSnapshot = async (name: string) => {
    const snap = await s.request('POST', `/v1/clusters/${clusterId}/snapshots`, { token, body: { name } });
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    return snap.body.snapshot.id as string;
  };
  /** Replaces a blob and makes its checksums (blob metadata and the row's) match the new content: only the seal can tell. */
  const replaceBlob = async (snapshotId: string, content: Buffer) => {
    const sha256 = createHash('sha256').update(content).digest('hex');
    await blobOf(snapshotId).upload(content, content.length, { metadata: { sha256 } });
    await s.db.snapshot.update({ where: { id: snapshotId }, data: { sha256, size: BigInt(content.length) } });
  };

  it('stores the snapshot sealed: the blob holds neither a KV value nor the management token nor a customer token', async () => {
    const canary = `kv-canary-${Date.now()}-value`;
    assert.equal((await kv(['put', 'canary/secret', canary])).code, 0);
    const id = await takeSnapshot('sealed');
    assert.equal((await kv(['delete', 'canary/secret'])).code, 0);
    const raw = await blobOf(id).downloadToBuffer();
    const management = await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).get(clusterId, SecretName.ManagementToken);
    assert.ok(management);
    // A Consul snapshot is a gzipped tar: look into it if it still is one.
    let plain = raw;
    try {
      plain = Buffer.concat([raw, zlib.gunzipSync(raw)]);
    } catch {
      // not gzip: sealed
    }
    for (const [what, needle] of [['KV value', canary], ['management token', management], ['customer token', consulToken]] as const) {
      assert.ok(!plain.includes(Buffer.from(needle)), `the stored blob contains the ${what}`);
    }
    const row = await s.db.snapshot.findUniqueOrThrow({ where: { id } });
    assert.ok(row.kekId && row.wrappedKey && row.wrappedKey.length === 60, 'the row holds the wrapped data key');
  });

  it('a sealed blob that was altered, or is another snapshot\'s, fails the restore before anything reaches Consul', async () => {
    const victim = await takeSnapshot('victim');
    const other = await takeSnapshot('other');
    const before = await keys();
    const sealed = await blobOf(victim).downloadToBuffer();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 40] ^= 1;
    for (const [label, content] of [['one bit flipped', flipped], ['truncated', sealed.subarray(0, sealed.length - 17)], ["another snapshot's blob", await blobOf(other).downloadToBuffer()]] as const) {
      await replaceBlob(victim, content);
      const restore = await s.request('POST', `/v1/clusters/${clusterId}/snapshots/${victim}/restore`, { token, body: { takeSnapshot: false } });
      const done = await finish(restore.body.operation.id);
      assert.equal(done.state, 'Failed', label);
      assert.match(done.error.message, /cannot be opened/, label);
      assert.ok(!done.steps.some((x: { name: string; state?: string }) => x.name === 'restore' && x.state === 'Succeeded'), label);
      assert.deepEqual(await keys(), before, `${label}: data untouched`);
    }
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token });
    assert.equal(cluster.body.state, 'Running');
  });

  it('deletes a snapshot and its blob; deleting the cluster removes the rest', async () => {
    const blobs = BlobServiceClient.fromConnectionString(s.config.AZURE_STORAGE_CONNECTION_STRING).getContainerClient(s.config.SNAPSHOT_CONTAINER);
    const del = await s.request('DELETE', `/v1/clusters/${clusterId}/snapshots/${firstSnapshot.id}`, { token });
    assert.equal(del.status, 202);
    assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
    const list = await s.request('GET', `/v1/clusters/${clusterId}/snapshots`, { token });
    assert.ok(!list.body.snapshots.some((x: { id: string }) => x.id === firstSnapshot.id));
    assert.equal(await blobs.getBlockBlobClient(`${clusterId}/${firstSnapshot.id}.snap`).exists(), false);

    const gone = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token });
    assert.equal((await finish(gone.body.operation.id)).state, 'Succeeded');
    const left: string[] = [];
    for await (const b of blobs.listBlobsFlat({ prefix: `${clusterId}/` })) left.push(b.name);
    assert.deepEqual(left, []);
  });
});
