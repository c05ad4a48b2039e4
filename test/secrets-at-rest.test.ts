import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import path from 'node:path';
import { register } from 'prom-client';
import { SecretBox, SecretRepository, SnapshotRepository, createDb, openBuffer, sealBuffer, snapshotBinding, type Db } from '../libs/core/src';
import { SecretUnreadableError } from '../libs/core/src/persistence/secret.repository';
import { secretsAtRest } from '../apps/worker/src/secrets-at-rest/secrets-at-rest.command';
import { createTestDatabase, dropTestDatabase, startStack } from './support/stack';
import { workerEnv } from './support/worker-process';

const kek = (id: string) => ({ id, key: randomBytes(32).toString('base64') });

/** A row as the code before 2026-12-02 sealed it: AES-256-GCM, no associated data. */
function legacySeal(k: { id: string; key: string }, value: string) {
  const dataKey = randomBytes(32);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', dataKey, iv);
  const ciphertext = Buffer.concat([c.update(value, 'utf8'), c.final()]);
  const tag = c.getAuthTag();
  const wrapIv = randomBytes(12);
  const w = createCipheriv('aes-256-gcm', Buffer.from(k.key, 'base64'), wrapIv);
  const wrapped = Buffer.concat([w.update(dataKey), w.final()]);
  return { kekId: k.id, wrappedKey: Buffer.concat([wrapIv, w.getAuthTag(), wrapped]), iv, tag, ciphertext };
}

// Cluster secrets at rest, against a real PostgreSQL: bound to their row, 16-byte tags, KEK rotation.
describe('cluster secrets at rest', () => {
  let url: string;
  let db: Db;

  before(async () => {
    url = await createTestDatabase();
    db = createDb(url, 2);
  });
  // Each test starts from an empty table of its own database: maintainAtRest passes over every row.
  beforeEach(async () => {
    await db.clusterSecret.deleteMany({});
  });
  after(async () => {
    await db.$disconnect();
    await dropTestDatabase(url);
  });

  const row = (clusterId: string, name: string) => db.clusterSecret.findUniqueOrThrow({ where: { clusterId_name: { clusterId, name } } });
  const copy = async (from: { clusterId: string; name: string }, to: { clusterId: string; name: string }) => {
    const r = await row(from.clusterId, from.name);
    await db.clusterSecret.upsert({
      where: { clusterId_name: to },
      create: { ...r, ...to },
      update: { format: r.format, kekId: r.kekId, wrappedKey: r.wrappedKey, iv: r.iv, tag: r.tag, ciphertext: r.ciphertext },
    });
  };

  it('refuses a sealed value copied into another cluster or under another name, naming the row but not the value', async () => {
    const k = kek('k1');
    const secrets = new SecretRepository(db, SecretBox.fromKeys(k.id, [k]));
    const victim = randomUUID();
    const attacker = randomUUID();
    await secrets.replace(victim, 'management-token', 'victim-management-token-value');
    await secrets.replace(attacker, 'gossip-key', 'attacker-gossip');
    // Another cluster's row, same name.
    await copy({ clusterId: victim, name: 'management-token' }, { clusterId: attacker, name: 'management-token' });
    await assert.rejects(secrets.get(attacker, 'management-token'), (e: Error) => {
      assert.ok(e instanceof SecretUnreadableError, e.message);
      assert.match(e.message, new RegExp(`management-token of cluster ${attacker}`));
      assert.ok(!e.message.includes('victim-management-token-value'));
      return true;
    });
    // Same cluster, another name.
    await copy({ clusterId: victim, name: 'management-token' }, { clusterId: victim, name: 'gossip-key' });
    await assert.rejects(secrets.get(victim, 'gossip-key'), SecretUnreadableError);
    // The original still opens.
    assert.equal(await secrets.get(victim, 'management-token'), 'victim-management-token-value');
  });

  it('refuses 12-byte, truncated or padded tags and wrapped keys of the wrong size', async () => {
    const k = kek('k1');
    const secrets = new SecretRepository(db, SecretBox.fromKeys(k.id, [k]));
    const id = randomUUID();
    await secrets.replace(id, 'ca-key', 'ca-private-key');
    const r = await row(id, 'ca-key');
    for (const tag of [r.tag.subarray(0, 12), r.tag.subarray(0, 4), Buffer.alloc(0), Buffer.concat([r.tag, Buffer.alloc(1)])]) {
      await db.clusterSecret.update({ where: { clusterId_name: { clusterId: id, name: 'ca-key' } }, data: { tag } });
      await assert.rejects(secrets.get(id, 'ca-key'), /tag is \d+ bytes, expected 16/);
    }
    await db.clusterSecret.update({ where: { clusterId_name: { clusterId: id, name: 'ca-key' } }, data: { tag: r.tag, wrappedKey: r.wrappedKey.subarray(0, 40) } });
    await assert.rejects(secrets.get(id, 'ca-key'), /wrapped key is 40 bytes/);
    await db.clusterSecret.update({ where: { clusterId_name: { clusterId: id, name: 'ca-key' } }, data: { wrappedKey: r.wrappedKey } });
    assert.equal(await secrets.get(id, 'ca-key'), 'ca-private-key');
  });

  it('refuses a wrapped key relabelled with another KEK id of the keyring', async () => {
    const k1 = kek('k1');
    const k2 = { id: 'k2', key: k1.key };
    const secrets = new SecretRepository(db, SecretBox.fromKeys('k1', [k1, k2]));
    const id = randomUUID();
    await secrets.replace(id, 'gossip-key', 'g');
    await db.clusterSecret.update({ where: { clusterId_name: { clusterId: id, name: 'gossip-key' } }, data: { kekId: 'k2' } });
    await assert.rejects(secrets.get(id, 'gossip-key'), /data key integrity check failed/);
  });

  it('never opens format 1 at worker start: a legacy value moved into another cluster or name stays refused, naming the row and not the value', async () => {
    const k = kek('k1');
    const secrets = new SecretRepository(db, SecretBox.fromKeys(k.id, [k]));
    const victim = randomUUID();
    const attacker = randomUUID();
    await db.clusterSecret.create({ data: { clusterId: victim, name: 'management-token', ...legacySeal(k, 'victim-legacy-token') } });
    // Someone with write access to the table (not to the KEK) moves the unbound value.
    await copy({ clusterId: victim, name: 'management-token' }, { clusterId: attacker, name: 'management-token' });
    await copy({ clusterId: victim, name: 'management-token' }, { clusterId: victim, name: 'gossip-key' });
    await secrets.maintainAtRest();
    for (const [clusterId, name] of [[victim, 'management-token'], [attacker, 'management-token'], [victim, 'gossip-key']] as const) {
      assert.equal((await row(clusterId, name)).format, 1, `${name} of ${clusterId} is left as it is`);
      await assert.rejects(secrets.get(clusterId, name), (e: Error) => {
        assert.ok(e instanceof SecretUnreadableError, e.message);
        assert.match(e.message, new RegExp(`${name} of cluster ${clusterId} .*format 1`));
        assert.ok(!e.message.includes('victim-legacy-token'), 'the value is not in the error');
        return true;
      });
    }
  });

  it("the operator's check lists format-1 rows (cluster and name, never the value) and exits 1; the explicit re-seal, by cluster, then serves them; check exits 0 when none is left", async () => {
    const k = kek('k1');
    const secrets = new SecretRepository(db, SecretBox.fromKeys(k.id, [k]));
    const [a, b] = [randomUUID(), randomUUID()].sort();
    await db.clusterSecret.create({ data: { clusterId: a, name: 'gossip-key', ...legacySeal(k, 'old-gossip-a') } });
    await db.clusterSecret.create({ data: { clusterId: b, name: 'ca-key', ...legacySeal(k, 'old-ca-b') } });
    await secrets.replace(a, 'management-token', 'bound-already');
    assert.equal((await secrets.maintainAtRest()).unbound, 2, 'the start-up step counts them and leaves them');
    const lines: string[] = [];
    const run = async (...argv: string[]) => {
      lines.length = 0;
      return secretsAtRest(argv, secrets, (l) => lines.push(l));
    };

    assert.equal(await run('check'), 1);
    assert.match(lines[0]!, new RegExp(`^format 1: cluster ${a} secret gossip-key \\(stored \\d{4}-`));
    assert.match(lines[1]!, new RegExp(`^format 1: cluster ${b} secret ca-key `));
    assert.match(lines.at(-1)!, /^2 cluster secret\(s\) sealed in format 1/);
    assert.ok(!lines.join('\n').includes('old-'), 'no value in the output');

    assert.equal(await run('reseal-format-1'), 2, 'the scope is never implied');
    assert.equal(await run('reseal-format-1', '--cluster', 'not-a-uuid'), 2);
    assert.equal(await run('reseal-format-1', '--cluster', a), 0);
    assert.deepEqual(lines, [`re-sealed: cluster ${a} secret gossip-key`, '1 re-sealed, 0 failed']);
    assert.equal((await row(a, 'gossip-key')).format, 2);
    assert.equal(await secrets.get(a, 'gossip-key'), 'old-gossip-a');
    await assert.rejects(secrets.get(b, 'ca-key'), /format 1/, 'the other cluster was not touched');

    assert.equal(await run('reseal-format-1', '--all'), 0);
    assert.equal(await secrets.get(b, 'ca-key'), 'old-ca-b');
    assert.equal(await run('check'), 0);
    assert.deepEqual(lines, ['no cluster secret is sealed in format 1: every one is bound to its row']);
    assert.equal(await secrets.countUnbound(), 0);
  });

  it('the re-seal leaves a row it cannot open as it is and says so, without the value', async () => {
    const k = kek('k1');
    const other = kek('k-gone');
    const secrets = new SecretRepository(db, SecretBox.fromKeys(k.id, [k]));
    const id = randomUUID();
    await db.clusterSecret.create({ data: { clusterId: id, name: 'gossip-key', ...legacySeal(other, 'unreadable') } });
    const lines: string[] = [];
    assert.equal(await secretsAtRest(['reseal-format-1', '--all'], secrets, (l) => lines.push(l)), 1);
    assert.match(lines[0]!, new RegExp(`^left as it is: cluster ${id} secret gossip-key: .*sealed with key k-gone`));
    assert.equal((await row(id, 'gossip-key')).format, 1);
  });

  it('rotates the KEK: seal with KEK1, add KEK2 active, re-wrap, remove KEK1, everything still opens', async () => {
    const k1 = kek('kek-1');
    const k2 = kek('kek-2');
    const one = new SecretRepository(db, SecretBox.fromKeys('kek-1', [k1]));
    const clusters = [randomUUID(), randomUUID()];
    const names = ['gossip-key', 'management-token', 'ca-key'];
    for (const c of clusters) for (const n of names) await one.replace(c, n, `${n}@${c}`);
    const before = await db.clusterSecret.findMany({ where: { clusterId: { in: clusters } } });

    const both = new SecretRepository(db, SecretBox.fromKeys('kek-2', [k1, k2]));
    // Before the re-wrap both keys are needed; reads work throughout.
    assert.equal(await both.get(clusters[0], 'ca-key'), `ca-key@${clusters[0]}`);
    // A new value is sealed with the active KEK.
    await both.replace(clusters[1], 'new-one', 'fresh');
    assert.equal((await row(clusters[1], 'new-one')).kekId, 'kek-2');

    const report = await both.maintainAtRest();
    assert.equal(report.rewrapped, clusters.length * names.length);
    assert.deepEqual(report.failed, []);
    // Idempotent: nothing left to do.
    assert.deepEqual(await both.maintainAtRest(), { rewrapped: 0, unbound: 0, failed: [] });

    const afterRows = await db.clusterSecret.findMany({ where: { clusterId: { in: clusters } } });
    for (const b of before) {
      const a = afterRows.find((r) => r.clusterId === b.clusterId && r.name === b.name)!;
      assert.equal(a.kekId, 'kek-2');
      // Payload untouched, data key re-wrapped.
      assert.deepEqual(Buffer.from(a.ciphertext), Buffer.from(b.ciphertext));
      assert.deepEqual(Buffer.from(a.iv), Buffer.from(b.iv));
      assert.deepEqual(Buffer.from(a.tag), Buffer.from(b.tag));
      assert.notDeepEqual(Buffer.from(a.wrappedKey), Buffer.from(b.wrappedKey));
    }

    const only2 = new SecretRepository(db, SecretBox.fromKeys('kek-2', [k2]));
    for (const c of clusters) for (const n of names) assert.equal(await only2.get(c, n), `${n}@${c}`);
    assert.equal(await only2.get(clusters[1], 'new-one'), 'fresh');
  });

  it('rotates the KEK under sealed snapshots: their data keys move to the new KEK, the blobs stay as they are and still open', async () => {
    const k1 = kek('s-1');
    const k2 = kek('s-2');
    const clusterId = randomUUID();
    await db.cluster.create({
      data: {
        id: clusterId, tenantId: 't', subscriptionId: 's', resourceGroup: 'rg', managedResourceGroup: 'mrg', name: `c-${clusterId.slice(0, 8)}`, region: 'westeurope',
        datacenter: 'dc1', consulVersion: '1.8.7', tier: 'development', serverCount: 1, state: 'Running', createdBy: 'test',
      },
    });
    const box1 = SecretBox.fromKeys('s-1', [k1]);
    const blobs = new Map<string, Buffer>();
    for (let i = 0; i < 3; i++) {
      const id = randomUUID();
      const binding = snapshotBinding(clusterId, id);
      const dk = box1.newDataKey(binding);
      blobs.set(id, sealBuffer(dk.dataKey, binding, Buffer.from(`snapshot ${i}`)));
      await db.snapshot.create({
        data: { id, tenantId: 't', clusterId, name: `s${i}`, kind: 'manual', state: 'Available', blobKey: `${clusterId}/${id}.snap`, operationId: randomUUID(), kekId: dk.kekId, wrappedKey: Buffer.from(dk.wrappedKey) },
      });
    }
    const rows = new SnapshotRepository(db);
    const both = SecretBox.fromKeys('s-2', [k1, k2]);
    assert.deepEqual(await rows.rewrapKeys(both), { rewrapped: 3, failed: [] });
    assert.deepEqual(await rows.rewrapKeys(both), { rewrapped: 0, failed: [] });
    const only2 = SecretBox.fromKeys('s-2', [k2]);
    let i = 0;
    for (const [id, sealed] of blobs) {
      const row = await db.snapshot.findUniqueOrThrow({ where: { id } });
      assert.equal(row.kekId, 's-2');
      const binding = snapshotBinding(clusterId, id);
      assert.equal(openBuffer(only2.unwrapDataKey(row.kekId!, row.wrappedKey!, binding), binding, sealed).toString(), `snapshot ${i++}`);
    }
  });

  it('a re-wrap interrupted half-way resumes: rows already moved are skipped, the rest are moved', async () => {
    const k1 = kek('r-1');
    const k2 = kek('r-2');
    const one = new SecretRepository(db, SecretBox.fromKeys('r-1', [k1]));
    const c = randomUUID();
    for (const n of ['a', 'b', 'c']) await one.replace(c, n, n);
    const box = SecretBox.fromKeys('r-2', [k1, k2]);
    // "Interrupted": only row a was moved (as one iteration of the pass does it).
    const a = await row(c, 'a');
    const moved = box.rewrap(a.kekId, a.wrappedKey, { purpose: 'cluster-secret', fields: [c, 'a'] })!;
    await db.clusterSecret.update({ where: { clusterId_name: { clusterId: c, name: 'a' } }, data: { kekId: moved.kekId, wrappedKey: Buffer.from(moved.wrappedKey) } });
    const report = await new SecretRepository(db, box).maintainAtRest();
    assert.equal(report.rewrapped, 2);
    const only2 = new SecretRepository(db, SecretBox.fromKeys('r-2', [k2]));
    for (const n of ['a', 'b', 'c']) assert.equal(await only2.get(c, n), n);
  });
});

/** `npm run secrets-at-rest -- check`, as an operator runs it. */
function npmCheck(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'secrets-at-rest', '--', 'check'], { cwd: path.resolve(__dirname, '..', '..'), env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

// What an operator watches: the worker's gauge of format-1 rows, counted at each scrape.
describe("the worker's cluster_secrets_unbound gauge", () => {
  it('counts the rows sealed in format 1 at each scrape: 0, then 1 once such a row appears, 0 once it is gone', async () => {
    const s = await startStack({ worker: true });
    try {
      const gauge = async () => {
        const text = await register.getSingleMetricAsString('cluster_secrets_unbound');
        return Number(/^cluster_secrets_unbound (\d+)$/m.exec(text)?.[1]);
      };
      assert.equal(await gauge(), 0);
      // A format-1 row written behind the control plane's back (it writes format 2 only).
      const clusterId = randomUUID();
      await s.db.clusterSecret.create({ data: { clusterId, name: 'gossip-key', ...legacySeal(kek('elsewhere'), 'g') } });
      assert.equal(await gauge(), 1);
      // The same check as the operator runs it, with the worker's settings.
      const check = await npmCheck(workerEnv(s.config, 'secrets-check'));
      assert.equal(check.code, 1, check.stderr);
      assert.match(check.stdout, new RegExp(`format 1: cluster ${clusterId} secret gossip-key`));
      await s.db.clusterSecret.delete({ where: { clusterId_name: { clusterId, name: 'gossip-key' } } });
      assert.equal(await gauge(), 0);
      assert.equal((await npmCheck(workerEnv(s.config, 'secrets-check'))).code, 0);
    } finally {
      await s.close();
    }
  });
});
