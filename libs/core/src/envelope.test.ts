import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SecretBox } from './envelope';

describe('SecretBox (envelope encryption)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kek-'));
  const file = path.join(dir, 'keys', 'kek.json');

  it('creates the key file with mode 0600 on first use and reuses it', () => {
    const a = SecretBox.fromKeyFile(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const sealed = a.seal('gossip-key-material');
    const b = SecretBox.fromKeyFile(file);
    assert.equal(b.open(sealed), 'gossip-key-material');
  });

  it('uses a fresh data key per secret and never stores the plaintext', () => {
    const box = SecretBox.fromKeyFile(file);
    const one = box.seal('same secret');
    const two = box.seal('same secret');
    assert.notDeepEqual(Buffer.from(one.wrappedKey), Buffer.from(two.wrappedKey));
    assert.notDeepEqual(Buffer.from(one.ciphertext), Buffer.from(two.ciphertext));
    assert.ok(!Buffer.from(one.ciphertext).includes(Buffer.from('same secret')));
  });

  it('refuses a tampered ciphertext or wrapped key', () => {
    const box = SecretBox.fromKeyFile(file);
    const sealed = box.seal('management token');
    const flipped = Buffer.from(sealed.ciphertext);
    flipped[0] ^= 1;
    assert.throws(() => box.open({ ...sealed, ciphertext: flipped }));
    const wrapped = Buffer.from(sealed.wrappedKey);
    wrapped[30] ^= 1;
    assert.throws(() => box.open({ ...sealed, wrappedKey: wrapped }));
  });

  it('cannot open secrets sealed under another key', () => {
    const other = SecretBox.fromKeyFile(path.join(dir, 'other.json'));
    const sealed = SecretBox.fromKeyFile(file).seal('x');
    assert.throws(() => other.open(sealed), /sealed with key/);
  });
});
