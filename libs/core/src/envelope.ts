import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** One sealed secret: its data key wrapped by the key-encryption key (KEK). */
export interface SealedSecret {
  kekId: string;
  wrappedKey: Uint8Array;
  iv: Uint8Array;
  tag: Uint8Array;
  ciphertext: Uint8Array;
}

interface KekFile {
  id: string;
  key: string;
}

/**
 * Envelope encryption: every secret gets a fresh AES-256-GCM data key; the data
 * key is itself encrypted with the KEK (a local key file here, Key Vault in Azure).
 * The wrapped key is stored as iv(12) | tag(16) | encrypted key(32).
 */
export class SecretBox {
  private constructor(private readonly kekId: string, private readonly kek: Buffer) {}

  /** Loads the KEK file, creating it with mode 0600 on first start. */
  static fromKeyFile(file: string): SecretBox {
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const created: KekFile = { id: `local-${randomBytes(4).toString('hex')}`, key: randomBytes(32).toString('base64') };
      try {
        fs.writeFileSync(file, JSON.stringify(created), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    const stat = fs.statSync(file);
    if ((stat.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    const kek = JSON.parse(fs.readFileSync(file, 'utf8')) as KekFile;
    const key = Buffer.from(kek.key, 'base64');
    if (key.length !== 32) throw new Error(`key file ${file} does not hold a 256-bit key`);
    return new SecretBox(kek.id, key);
  }

  seal(plaintext: string): SealedSecret {
    const dataKey = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', dataKey, iv);
    const ciphertext = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    const tag = c.getAuthTag();
    const wrapIv = randomBytes(12);
    const w = createCipheriv('aes-256-gcm', this.kek, wrapIv);
    const wrapped = Buffer.concat([w.update(dataKey), w.final()]);
    return { kekId: this.kekId, wrappedKey: Buffer.concat([wrapIv, w.getAuthTag(), wrapped]), iv, tag, ciphertext };
  }

  open(s: SealedSecret): string {
    if (s.kekId !== this.kekId) throw new Error(`secret was sealed with key ${s.kekId}, this process holds ${this.kekId}`);
    const wk = Buffer.from(s.wrappedKey);
    const u = createDecipheriv('aes-256-gcm', this.kek, wk.subarray(0, 12));
    u.setAuthTag(wk.subarray(12, 28));
    const dataKey = Buffer.concat([u.update(wk.subarray(28)), u.final()]);
    const d = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(s.iv));
    d.setAuthTag(Buffer.from(s.tag));
    return Buffer.concat([d.update(Buffer.from(s.ciphertext)), d.final()]).toString('utf8');
  }
}
