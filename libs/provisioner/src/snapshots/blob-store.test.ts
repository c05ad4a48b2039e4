import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  BlobSnapshotStore,
  ChecksumMismatchError,
  SnapshotNotFoundError,
  SnapshotStoreError,
} from './blob-store';

// Runs against the Azurite that infra/local/setup.sh starts (AZURE_STORAGE_CONNECTION_STRING
// is in .local/env). Each run uses a container of its own and deletes it at the end.
const connectionString = process.env.AZURE_STORAGE_CONNECTION_STRING;
if (!connectionString) {
  throw new Error(
    'AZURE_STORAGE_CONNECTION_STRING is not set: run `bash infra/local/setup.sh && source .local/env` first (it starts Azurite)',
  );
}
const containerName = `snapshots-test-${process.pid}-${randomBytes(4).toString('hex')}`;
const accountKey = /AccountKey=([^;]+)/.exec(connectionString)?.[1];

let store: BlobSnapshotStore;
let container: ContainerClient; // direct SDK access, for what the store must not allow

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const snapshotBytes = (n: number): Buffer => randomBytes(n);

before(async () => {
  // Small blocks so that multi-block uploads are exercised with small data.
  store = new BlobSnapshotStore({ connectionString, container: containerName, blockSize: 64 * 1024 });
  await store.ensureContainer();
  await store.ensureContainer(); // idempotent
  container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(containerName);
});

after(async () => {
  await container?.deleteIfExists();
});

test('put/get round trip: sha256, size, content type and metadata', async (t) => {
  for (const size of [0, 1, 64 * 1024, 300 * 1024 + 7]) {
    const key = `clusters/c-${size}/snapshots/2024-01-01T00-00-00Z.snap`;
    const data = snapshotBytes(size);
    const started = performance.now();
    const stored = await store.put(key, data, sha256(data).toUpperCase()); // hex in any case
    t.diagnostic(`${size} bytes: put in ${(performance.now() - started).toFixed(1)} ms`);
    assert.deepEqual(stored, { key, size, sha256: sha256(data) });
    assert.equal(await store.exists(key), true);

    const props = await container.getBlockBlobClient(key).getProperties();
    assert.equal(props.contentType, 'application/gzip');
    assert.equal(props.contentLength, size);
    assert.equal(props.metadata?.sha256, sha256(data));
    assert.equal(
      Buffer.from(props.contentMD5 ?? []).toString('hex'),
      createHash('md5').update(data).digest('hex'),
      'the whole content MD5 is stored as Content-MD5',
    );

    const back = await store.get(key);
    assert.ok(back.equals(data), `${size} bytes come back unchanged`);
    assert.ok((await store.get(key, sha256(data))).equals(data), 'get with the right expected sha256');
  }
});

test('put is idempotent for the same key and content, and replaces other content', async () => {
  const key = 'clusters/idem/snap';
  const data = snapshotBytes(100 * 1024);
  const first = await store.put(key, data);
  const second = await store.put(key, data);
  assert.deepEqual(second, first);
  assert.ok((await store.get(key)).equals(data));

  const other = snapshotBytes(10);
  await store.put(key, other);
  assert.ok((await store.get(key)).equals(other));
  const blocks = await container.getBlockBlobClient(key).getBlockList('all');
  assert.equal(blocks.uncommittedBlocks?.length ?? 0, 0, 'no blocks left uncommitted');
});

test('put with a wrong expectedSha256 throws ChecksumMismatchError and uploads nothing', async () => {
  const key = 'clusters/wrong-sha/snap';
  const data = snapshotBytes(1000);
  await assert.rejects(store.put(key, data, sha256(Buffer.from('something else'))), ChecksumMismatchError);
  assert.equal(await store.exists(key), false);
  const listed = [];
  for await (const b of container.listBlobsFlat({ prefix: 'clusters/wrong-sha/' })) listed.push(b.name);
  assert.deepEqual(listed, []);
  const blocks = await container
    .getBlockBlobClient(key)
    .getBlockList('all')
    .catch((err: { statusCode?: number }) => err.statusCode);
  assert.equal(blocks, 404, 'not even uncommitted blocks');

  await assert.rejects(store.put(key, data, 'not-a-sha'), TypeError);
  assert.equal(await store.exists(key), false);
});

test('get verifies the content: a blob replaced under the old metadata is refused', async () => {
  const key = 'clusters/tampered/snap';
  const data = snapshotBytes(200 * 1024);
  await store.put(key, data);

  // Replace the content through the SDK, keeping the old sha256 metadata (no Content-MD5
  // given: Put Blob may compute one of the new content itself, so only sha256 stands in the way).
  const blob = container.getBlockBlobClient(key);
  const { metadata } = await blob.getProperties();
  const tampered = Buffer.from(data);
  tampered[12345] = (tampered[12345] ?? 0) ^ 0xff;
  await blob.upload(tampered, tampered.length, { metadata, blobHTTPHeaders: { blobContentType: 'application/gzip' } });
  assert.equal((await blob.getProperties()).metadata?.sha256, sha256(data), 'old metadata kept');

  await assert.rejects(store.get(key), (err: unknown) => {
    assert.ok(err instanceof ChecksumMismatchError, `got ${String(err)}`);
    assert.match(err.message, /sha256/);
    return true;
  });

  // The right content and sha256, but a Content-MD5 property that does not match it
  // (Set Blob Properties does not check it against the content): refused too.
  await blob.upload(data, data.length, { metadata });
  await store.get(key); // intact again
  await blob.setHTTPHeaders({ blobContentType: 'application/gzip', blobContentMD5: createHash('md5').update('x').digest() });
  await assert.rejects(store.get(key), /Content-MD5/);

  // No sha256 metadata at all: refused.
  await blob.upload(data, data.length);
  await assert.rejects(store.get(key), /no valid sha256/);
});

test('get with a wrong expectedSha256 throws ChecksumMismatchError; a missing key SnapshotNotFoundError', async () => {
  const key = 'clusters/expected/snap';
  const data = snapshotBytes(5000);
  await store.put(key, data);
  await assert.rejects(store.get(key, sha256(Buffer.from('other'))), ChecksumMismatchError);
  await assert.rejects(store.get('clusters/expected/missing'), SnapshotNotFoundError);
});

test('delete is idempotent; exists follows it', async () => {
  const key = 'clusters/delete/snap';
  await store.put(key, snapshotBytes(10));
  assert.equal(await store.exists(key), true);
  await store.delete(key);
  assert.equal(await store.exists(key), false);
  await store.delete(key); // missing: fine
  await store.delete('clusters/delete/never-existed');
  await assert.rejects(store.get(key), SnapshotNotFoundError);
});

test('keys that Azure or URL handling would alter are refused', async () => {
  for (const key of ['', '/abs', 'a//b', 'a/../b', 'a/./b', 'ends-with-dot.', 'back\\slash', 'nul\u0000', 'x'.repeat(1025)]) {
    await assert.rejects(store.put(key, Buffer.from('x')), TypeError, JSON.stringify(key));
  }
  assert.throws(() => new BlobSnapshotStore({ connectionString, container: 'Bad_Name' }), TypeError);
});

test('errors and the store itself never show the account key', async (t) => {
  assert.ok(accountKey, 'the connection string has an AccountKey');
  assert.ok(!inspect(store, { depth: 10, showHidden: true }).includes(accountKey), 'util.inspect(store)');

  const leaks = (err: unknown): string[] =>
    [String(err), (err as Error).stack ?? '', inspect(err, { depth: 10 }), JSON.stringify(err)].filter(
      (s) => s.includes(accountKey) || /SharedKey\s+\S+:/.test(s) || /AccountKey=(?!\[REDACTED\])/.test(s),
    );

  // Wrong key: the service answers 403.
  const wrongKey = randomBytes(64).toString('base64');
  const wrong = new BlobSnapshotStore({
    connectionString: connectionString.replace(accountKey, wrongKey),
    container: containerName,
  });
  await assert.rejects(wrong.put('clusters/leak/snap', Buffer.from('x')), (err: unknown) => {
    assert.ok(err instanceof SnapshotStoreError, `got ${String(err)}`);
    assert.equal(err.statusCode, 403);
    assert.deepEqual(leaks(err), []);
    for (const s of [String(err), inspect(err)]) assert.ok(!s.includes(wrongKey));
    t.diagnostic(`403: ${err.message}`);
    return true;
  });

  // Nothing listening: a network error.
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
  const closed = new BlobSnapshotStore({
    connectionString: connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`),
    container: containerName,
  });
  await assert.rejects(closed.exists('clusters/leak/snap'), (err: unknown) => {
    assert.ok(err instanceof SnapshotStoreError, `got ${String(err)}`);
    assert.deepEqual(leaks(err), []);
    t.diagnostic(`refused: ${err.message}`);
    return true;
  });

  // A malformed connection string is not echoed.
  assert.throws(
    () => new BlobSnapshotStore({ connectionString: `AccountKey=${accountKey};nonsense`, container: containerName }),
    (err: unknown) => {
      assert.deepEqual(leaks(err), []);
      return true;
    },
  );
});
