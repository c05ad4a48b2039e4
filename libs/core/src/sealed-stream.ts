import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { SealedValueError, type SealBinding } from './envelope';

/**
 * Chunked AES-256-GCM for large values (Consul snapshots), with a data key of their own
 * (from SecretBox.newDataKey, wrapped by the KEK and bound to the same binding).
 *
 * Layout: magic "HCSSEAL" + version byte (2), then frames, each
 *   u32 big-endian plaintext length L (at most MAX_CHUNK) | ciphertext (L) | tag (16).
 * Frame i is encrypted with nonce = 4 zero bytes | u64 big-endian i (a data key is used for
 * one value only, so nonces never repeat) and associated data naming the binding, the
 * index i and whether it is the last frame. Reordered, dropped, duplicated or truncated
 * frames, trailing bytes, another value's frames and a stream without its last frame all
 * fail. Every value ends with exactly one last frame (empty when the value is empty or a
 * multiple of the chunk size).
 */
const MAGIC = Buffer.from('HCSSEAL\x02', 'latin1');
const TAG_BYTES = 16;
const HEADER_BYTES = 4;
export const SEALED_CHUNK = 1024 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;

function nonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

function frameAad(binding: SealBinding, index: number, last: boolean): Buffer {
  return Buffer.from(JSON.stringify(['hcs-sealed-stream', 2, binding.purpose, ...binding.fields, index, last ? 1 : 0]), 'utf8');
}

function where(binding: SealBinding): string {
  return `${binding.purpose} ${binding.fields.join('/')}`;
}

/** Incremental sealer: `update` returns frames as full chunks accumulate, `final` the rest and the last frame. */
export class StreamSealer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  private started = false;

  constructor(private readonly dataKey: Buffer, private readonly binding: SealBinding, private readonly chunk = SEALED_CHUNK) {
    if (dataKey.length !== 32) throw new Error('a sealed stream needs a 256-bit data key');
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > MAX_CHUNK) throw new Error(`invalid chunk size ${chunk}`);
  }

  update(data: Buffer): Buffer[] {
    const out = this.start();
    this.pending.push(data);
    this.pendingBytes += data.length;
    // Keep at least one byte back: the last frame must be marked as such.
    if (this.pendingBytes <= this.chunk) return out;
    let all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    while (all.length > this.chunk) {
      out.push(this.frame(all.subarray(0, this.chunk), false));
      all = all.subarray(this.chunk);
    }
    this.pending = [all];
    this.pendingBytes = all.length;
    return out;
  }

  final(): Buffer[] {
    const out = this.start();
    out.push(this.frame(Buffer.concat(this.pending), true));
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  private start(): Buffer[] {
    if (this.started) return [];
    this.started = true;
    return [MAGIC];
  }

  private frame(plain: Buffer, last: boolean): Buffer {
    const c = createCipheriv('aes-256-gcm', this.dataKey, nonce(this.index), { authTagLength: TAG_BYTES });
    c.setAAD(frameAad(this.binding, this.index, last));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    this.index++;
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(plain.length);
    return Buffer.concat([head, ct, c.getAuthTag()]);
  }
}

/**
 * Incremental opener: `update` returns the plaintext of each frame once its tag checks;
 * `final` throws unless the last frame was seen and nothing follows it. A caller that must
 * not act on a partial value (a restore) collects everything and acts only after `final`.
 */
export class StreamOpener {
  private buf: Buffer = Buffer.alloc(0);
  private index = 0;
  private magicSeen = false;
  private done = false;

  constructor(private readonly dataKey: Buffer, private readonly binding: SealBinding) {
    if (dataKey.length !== 32) throw new Error('a sealed stream needs a 256-bit data key');
  }

  update(data: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const out: Buffer[] = [];
    if (!this.magicSeen) {
      if (this.buf.length < MAGIC.length) return out;
      if (!this.buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealedValueError(`${where(this.binding)}: not a sealed stream of version 2`);
      this.buf = this.buf.subarray(MAGIC.length);
      this.magicSeen = true;
    }
    for (;;) {
      if (this.buf.length === 0) return out;
      if (this.done) throw new SealedValueError(`${where(this.binding)}: bytes after the last frame`);
      if (this.buf.length < HEADER_BYTES) return out;
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_CHUNK) throw new SealedValueError(`${where(this.binding)}: frame ${this.index} claims ${len} bytes`);
      const total = HEADER_BYTES + len + TAG_BYTES;
      if (this.buf.length < total) return out;
      out.push(this.open(this.buf.subarray(HEADER_BYTES, HEADER_BYTES + len), this.buf.subarray(HEADER_BYTES + len, total)));
      this.buf = this.buf.subarray(total);
    }
  }

  final(): void {
    if (!this.magicSeen || !this.done || this.buf.length) throw new SealedValueError(`${where(this.binding)}: truncated (no last frame)`);
  }

  private open(ct: Buffer, tag: Buffer): Buffer {
    // Try as an inner frame first, then as the last one: the flag is authenticated, not stored.
    for (const last of [false, true]) {
      const d = createDecipheriv('aes-256-gcm', this.dataKey, nonce(this.index), { authTagLength: TAG_BYTES });
      d.setAAD(frameAad(this.binding, this.index, last));
      d.setAuthTag(tag);
      try {
        const plain = Buffer.concat([d.update(ct), d.final()]);
        this.index++;
        if (last) this.done = true;
        return plain;
      } catch {
        // next
      }
    }
    throw new SealedValueError(`${where(this.binding)}: frame ${this.index} failed its integrity check (tampered, reordered, or sealed for another value)`);
  }
}

/** Seals a whole buffer (the chunked format above). */
export function sealBuffer(dataKey: Buffer, binding: SealBinding, data: Buffer, chunk = SEALED_CHUNK): Buffer {
  const s = new StreamSealer(dataKey, binding, chunk);
  return Buffer.concat([...s.update(data), ...s.final()]);
}

/** Opens a whole buffer; throws SealedValueError before returning anything if any part fails. */
export function openBuffer(dataKey: Buffer, binding: SealBinding, sealed: Buffer): Buffer {
  const o = new StreamOpener(dataKey, binding);
  const parts = o.update(sealed);
  o.final();
  return Buffer.concat(parts);
}

/** A Transform that seals what flows through it. */
export function sealingStream(dataKey: Buffer, binding: SealBinding, chunk = SEALED_CHUNK): Transform {
  const s = new StreamSealer(dataKey, binding, chunk);
  return new Transform({
    transform(data: Buffer, _enc, cb: TransformCallback) {
      for (const f of s.update(data)) this.push(f);
      cb();
    },
    flush(cb: TransformCallback) {
      for (const f of s.final()) this.push(f);
      cb();
    },
  });
}

/** A Transform that opens what flows through it; errors on a bad frame or a missing end. */
export function openingStream(dataKey: Buffer, binding: SealBinding): Transform {
  const o = new StreamOpener(dataKey, binding);
  return new Transform({
    transform(data: Buffer, _enc, cb: TransformCallback) {
      try {
        for (const p of o.update(data)) this.push(p);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        o.final();
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
