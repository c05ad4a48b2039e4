import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { SealedValueError } from './envelope';
import { StreamOpener, openBuffer, openingStream, sealBuffer, sealingStream } from './sealed-stream';

const B = { purpose: 'snapshot', fields: ['cluster-1', 'snap-1'] };
const CHUNK = 64;

/** Splits a sealed value into its magic and frames (u32 length | ciphertext | 16-byte tag). */
function frames(sealed: Buffer): { magic: Buffer; frames: Buffer[] } {
  const out: Buffer[] = [];
  let at = 8;
  while (at < sealed.length) {
    const len = sealed.readUInt32BE(at);
    out.push(sealed.subarray(at, at + 4 + len + 16));
    at += 4 + len + 16;
  }
  return { magic: sealed.subarray(0, 8), frames: out };
}

describe('sealed streams (chunked AES-256-GCM)', () => {
  const key = randomBytes(32);

  it('round-trips values of every size around the chunk boundary, and hides them', () => {
    for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5]) {
      const data = Buffer.alloc(n, 'a');
      const sealed = sealBuffer(key, B, data, CHUNK);
      assert.deepEqual(openBuffer(key, B, sealed), data, `size ${n}`);
      if (n >= 16) assert.ok(!sealed.includes(data.subarray(0, 16)));
    }
  });

  it('refuses reordered, dropped, duplicated or truncated frames, trailing bytes, another binding or key', () => {
    const data = randomBytes(3 * CHUNK + 5);
    const sealed = sealBuffer(key, B, data, CHUNK);
    const { magic, frames: f } = frames(sealed);
    assert.equal(f.length, 4);
    const bad: [string, Buffer][] = [
      ['reordered', Buffer.concat([magic, f[1], f[0], f[2], f[3]])],
      ['middle frame dropped', Buffer.concat([magic, f[0], f[2], f[3]])],
      ['last frame dropped', Buffer.concat([magic, f[0], f[1], f[2]])],
      ['frame duplicated', Buffer.concat([magic, f[0], f[0], f[1], f[2], f[3]])],
      ['cut inside a frame', sealed.subarray(0, sealed.length - 3)],
      ['trailing bytes', Buffer.concat([sealed, Buffer.from([0])])],
      ['bit flipped', Buffer.from(sealed.map((b, i) => (i === 20 ? b ^ 1 : b)))],
      ['no magic', sealed.subarray(8)],
    ];
    for (const [label, value] of bad) assert.throws(() => openBuffer(key, B, value), SealedValueError, label);
    assert.throws(() => openBuffer(key, { purpose: 'snapshot', fields: ['cluster-2', 'snap-1'] }, sealed), SealedValueError);
    assert.throws(() => openBuffer(key, { purpose: 'snapshot', fields: ['cluster-1', 'snap-2'] }, sealed), SealedValueError);
    assert.throws(() => openBuffer(randomBytes(32), B, sealed), SealedValueError);
    // A frame claiming more than the largest chunk is refused before it is buffered.
    const huge = Buffer.concat([magic, Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    assert.throws(() => new StreamOpener(key, B).update(huge), /claims/);
  });

  it('seals and opens as streams, in pieces of any size', async () => {
    const data = randomBytes(10 * CHUNK + 7);
    const sealedParts: Buffer[] = [];
    const pieces = [];
    for (let i = 0; i < data.length; i += 13) pieces.push(data.subarray(i, i + 13));
    await pipeline(Readable.from(pieces), sealingStream(key, B, CHUNK), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) sealedParts.push(c);
    });
    const sealed = Buffer.concat(sealedParts);
    assert.deepEqual(sealed.length, sealBuffer(key, B, data, CHUNK).length);
    const opened: Buffer[] = [];
    const shards = [];
    for (let i = 0; i < sealed.length; i += 7) shards.push(sealed.subarray(i, i + 7));
    await pipeline(Readable.from(shards), openingStream(key, B), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) opened.push(c);
    });
    assert.deepEqual(Buffer.concat(opened), data);
    await assert.rejects(
      pipeline(Readable.from([sealed.subarray(0, sealed.length - 20)]), openingStream(key, B), async (src: AsyncIterable<Buffer>) => {
        for await (const c of src) void c;
      }),
      SealedValueError,
    );
  });
});
