import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from './config';
import { MissingKeyFileError, SecretBox, SealedValueError, requireKeyFile, secretBoxOf, type SealBinding } from './envelope';

const AT: SealBinding = { purpose: 'cluster-secret', fields: ['c1', 'gossip-key'] };

describe('SecretBox (envelope encryption)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kek-'));
  const file = path.join(dir, 'keys', 'kek.json');

  it('creates the key file with mode 0600 on first use and reuses it', () => {
    const a = SecretBox.fromKeyFile(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')) as object).sort(), ['id', 'key']);
    const sealed = a.seal('gossip-key-material', AT);
    const b = SecretBox.fromKeyFile(file);
    assert.equal(b.open(sealed, AT), 'gossip-key-material');
  });

  it('in production never makes a key: a missing KEK_FILE stops the process, naming it, and nothing is written', () => {
    const missing = path.join(dir, 'prod', 'kek.json');
    assert.throws(() => secretBoxOf({ KEK_FILE: missing, NODE_ENV: 'production' }), (e: unknown) =>
      e instanceof MissingKeyFileError && e instanceof ConfigError && /^KEK_FILE: no key-encryption key at .*prod\/kek\.json/.test(e.message) && /Key Vault/.test(e.message));
    assert.throws(() => requireKeyFile({ KEK_FILE: missing, NODE_ENV: 'production' }), MissingKeyFileError, 'the mains check it before anything starts');
    requireKeyFile({ KEK_FILE: missing, NODE_ENV: 'development' });
    assert.equal(fs.existsSync(path.dirname(missing)), false, 'no directory and no key made');
    // Outside production the first start makes it, as npm start does.
    const dev = path.join(dir, 'dev', 'kek.json');
    assert.ok(secretBoxOf({ KEK_FILE: dev, NODE_ENV: 'development' }).activeKekId.startsWith('local-'));
    assert.ok(fs.existsSync(dev));
    // A provisioned key is read in production as anywhere.
    assert.equal(secretBoxOf({ KEK_FILE: dev, NODE_ENV: 'production' }).activeKekId, SecretBox.fromKeyFile(dev).activeKekId);
  });

  it('narrows its own key file to 0600, and reads one another user owns (a read-only Key Vault mount) as it is', () => {
    const key = { id: 'mounted', key: Buffer.alloc(32, 3).toString('base64') };
    const own = path.join(dir, 'own.json');
    fs.writeFileSync(own, JSON.stringify(key), { mode: 0o644 });
    fs.chmodSync(own, 0o644);
    assert.equal(SecretBox.fromKeyFile(own).activeKekId, 'mounted');
    assert.equal(fs.statSync(own).mode & 0o777, 0o600, 'a key file of ours is made private');

    // The Secrets Store CSI driver's files are root's, 0644 by default, on a read-only mount: the
    // worker and the API run as another user (infra/k8s). The test runs as root and stands for that
    // user by giving the file to someone else.
    const mounted = path.join(dir, 'mounted.json');
    fs.writeFileSync(mounted, JSON.stringify(key), { mode: 0o644 });
    fs.chmodSync(mounted, 0o644);
    fs.chownSync(mounted, 4321, 4321);
    assert.equal(SecretBox.fromKeyFile(mounted).activeKekId, 'mounted');
    assert.equal(fs.statSync(mounted).mode & 0o777, 0o644, 'another owner\'s file is left as its owner made it');
  });

  it('uses a fresh data key per secret and never stores the plaintext', () => {
    const box = SecretBox.fromKeyFile(file);
    const one = box.seal('same secret', AT);
    const two = box.seal('same secret', AT);
    assert.notDeepEqual(Buffer.from(one.wrappedKey), Buffer.from(two.wrappedKey));
    assert.notDeepEqual(Buffer.from(one.ciphertext), Buffer.from(two.ciphertext));
    assert.ok(!Buffer.from(one.ciphertext).includes(Buffer.from('same secret')));
  });

  it('refuses a tampered ciphertext or wrapped key', () => {
    const box = SecretBox.fromKeyFile(file);
    const sealed = box.seal('management token', AT);
    const flipped = Buffer.from(sealed.ciphertext);
    flipped[0] ^= 1;
    assert.throws(() => box.open({ ...sealed, ciphertext: flipped }, AT), SealedValueError);
    const wrapped = Buffer.from(sealed.wrappedKey);
    wrapped[30] ^= 1;
    assert.throws(() => box.open({ ...sealed, wrappedKey: wrapped }, AT), SealedValueError);
  });

  it('binds the value to its purpose and fields', () => {
    const box = SecretBox.fromKeyFile(file);
    const sealed = box.seal('v', AT);
    assert.throws(() => box.open(sealed, { purpose: 'cluster-secret', fields: ['c2', 'gossip-key'] }), /integrity check failed/);
    assert.throws(() => box.open(sealed, { purpose: 'cluster-secret', fields: ['c1', 'ca-key'] }), /integrity check failed/);
    assert.throws(() => box.open(sealed, { purpose: 'snapshot', fields: ['c1', 'gossip-key'] }), /integrity check failed/);
    // Field boundaries are part of the binding: ["c1g","ossip-key"] is not ["c1","gossip-key"].
    assert.throws(() => box.open(sealed, { purpose: 'cluster-secret', fields: ['c1g', 'ossip-key'] }), /integrity check failed/);
  });

  it('refuses tags that are not 16 bytes', () => {
    const box = SecretBox.fromKeyFile(file);
    const sealed = box.seal('v', AT);
    for (const n of [0, 4, 12, 15, 17]) {
      const tag = Buffer.alloc(n);
      Buffer.from(sealed.tag).copy(tag);
      assert.throws(() => box.open({ ...sealed, tag }, AT), /tag is \d+ bytes, expected 16/);
    }
  });

  it('cannot open secrets sealed under another key', () => {
    const other = SecretBox.fromKeyFile(path.join(dir, 'other.json'));
    const sealed = SecretBox.fromKeyFile(file).seal('x', AT);
    assert.throws(() => other.open(sealed, AT), /sealed with key/);
  });

  it('reads a keyring file {active, keys} and seals with its active key', () => {
    const single = JSON.parse(fs.readFileSync(file, 'utf8')) as { id: string; key: string };
    const ring = path.join(dir, 'ring.json');
    const next = { id: 'next', key: Buffer.alloc(32, 7).toString('base64') };
    fs.writeFileSync(ring, JSON.stringify({ active: 'next', keys: [single, next] }), { mode: 0o600 });
    const box = SecretBox.fromKeyFile(ring);
    assert.equal(box.activeKekId, 'next');
    const old = SecretBox.fromKeyFile(file).seal('old', AT);
    assert.equal(box.open(old, AT), 'old');
    const moved = box.rewrap(old.kekId, old.wrappedKey, AT);
    assert.ok(moved);
    assert.equal(SecretBox.fromKeys('next', [next]).open({ ...old, ...moved }, AT), 'old');
    assert.equal(box.rewrap(moved.kekId, moved.wrappedKey, AT), null);
    assert.throws(() => SecretBox.fromKeys('missing', [next]), /active key missing/);
  });
});
