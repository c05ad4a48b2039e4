import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config';

/** One sealed secret: its data key wrapped by the key-encryption key (KEK). */
export interface SealedSecret {
  kekId: string;
  wrappedKey: Uint8Array;
  iv: Uint8Array;
  tag: Uint8Array;
  ciphertext: Uint8Array;
}

/**
 * What a sealed value is bound to (authenticated as associated data): a purpose and the
 * identifiers of the row that holds it, e.g. `{ purpose: 'cluster-secret', fields: [clusterId, name] }`.
 * A value opened under any other binding fails its integrity check.
 */
export interface SealBinding {
  purpose: string;
  fields: readonly string[];
}

/** A sealed value that cannot be opened: wrong binding, tampered, truncated, or an unknown key. Never carries the value. */
export class SealedValueError extends Error {
  override name = 'SealedValueError';
}

/** The current format of sealed values (1: no associated data, refused since 2026-12-02). */
export const SEAL_FORMAT = 2;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_BYTES = IV_BYTES + TAG_BYTES + KEY_BYTES;

/** The single-key file (the format every checkout has): `{ "id": "...", "key": "<base64 of 32 bytes>" }`. */
interface KekFile {
  id: string;
  key: string;
}
/** The keyring file: several KEKs, one of them active for sealing and wrapping. */
interface KeyringFile {
  active: string;
  keys: KekFile[];
}

/** Unambiguous encoding of the associated data: a JSON array of strings and numbers. */
function aad(kind: 'data-key' | 'payload', format: number, binding: SealBinding, kekId?: string): Buffer {
  const parts: (string | number)[] = ['hcs-envelope', format, kind, binding.purpose, ...binding.fields];
  if (kekId !== undefined) parts.push(kekId);
  return Buffer.from(JSON.stringify(parts), 'utf8');
}

function describe(binding: SealBinding): string {
  return `${binding.purpose} ${binding.fields.join('/')}`;
}

/** A key file that must be there and is not (production never makes its own key). */
export class MissingKeyFileError extends ConfigError {
  override name = 'MissingKeyFileError';
  constructor(readonly file: string) {
    super(`KEK_FILE: no key-encryption key at ${file}. In production the key is provisioned (Key Vault through the Secrets Store CSI driver, docs/deployment.md), never made by a process: a key made per process would open nothing another one sealed`);
  }
}

/** Checked by the API's and the worker's main before anything starts: in production their key file must be there (else one clear line, no stack). */
export function requireKeyFile(config: { KEK_FILE: string; NODE_ENV: string }): void {
  if (config.NODE_ENV === 'production' && !fs.existsSync(config.KEK_FILE)) throw new MissingKeyFileError(config.KEK_FILE);
}

/** The process's SecretBox from its configuration: outside production the key file is made on first start. */
export function secretBoxOf(config: { KEK_FILE: string; NODE_ENV: string }): SecretBox {
  return SecretBox.fromKeyFile(config.KEK_FILE, { create: config.NODE_ENV !== 'production' });
}

/**
 * Envelope encryption: every secret gets a fresh AES-256-GCM data key; the data key is
 * itself encrypted (wrapped) with a key-encryption key (a local key file here, Key Vault
 * in Azure). The wrapped key is stored as iv(12) | tag(16) | encrypted key(32).
 *
 * Format 2 binds both layers: the payload's associated data is the format, the purpose and
 * the row's identifiers (for a cluster secret: cluster id and name); the wrap's associated
 * data adds the KEK id. A sealed value copied to another row, or a wrapped key relabelled
 * with another KEK id, fails to open. Tags must be exactly 16 bytes, IVs 12.
 *
 * Keyring: several KEKs by id, one active. Sealing uses the active KEK; opening uses the
 * KEK the value names. `rewrap` moves a data key to the active KEK without touching the
 * payload (its associated data does not name the KEK).
 */
export class SecretBox {
  private readonly activeKey: Buffer;

  private constructor(private readonly activeId: string, private readonly keys: ReadonlyMap<string, Buffer>) {
    const key = keys.get(activeId);
    if (!key) throw new Error(`the active key ${activeId} is not in the keyring`);
    this.activeKey = key;
  }

  /**
   * Loads a KEK file, creating it (single-key format, mode 0600) on first start unless `create` is
   * false. The file is either the single-key format `{id,key}` or a keyring `{active, keys:[{id,key},...]}`.
   */
  static fromKeyFile(file: string, opts: { create?: boolean } = {}): SecretBox {
    if (!fs.existsSync(file)) {
      if (opts.create === false) throw new MissingKeyFileError(file);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const created: KekFile = { id: `local-${randomBytes(4).toString('hex')}`, key: randomBytes(32).toString('base64') };
      try {
        fs.writeFileSync(file, JSON.stringify(created), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    const stat = fs.statSync(file);
    // Ours (made here, or put here by an operator): readable by us alone. A file another user owns is
    // theirs to protect: Key Vault's KEK on Kubernetes, which the Secrets Store CSI driver mounts
    // read-only and root-owned in the pod's own tmpfs (docs/deployment.md); changing its mode would
    // fail (EPERM, EROFS) and stop the process.
    if ((stat.mode & 0o077) !== 0 && stat.uid === process.getuid?.()) fs.chmodSync(file, 0o600);
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<KekFile & KeyringFile>;
    if (Array.isArray(parsed.keys)) {
      if (typeof parsed.active !== 'string') throw new Error(`keyring ${file} names no active key`);
      return SecretBox.fromKeys(parsed.active, parsed.keys, file);
    }
    if (typeof parsed.id !== 'string' || typeof parsed.key !== 'string') throw new Error(`key file ${file} holds neither {id,key} nor {active,keys}`);
    return SecretBox.fromKeys(parsed.id, [{ id: parsed.id, key: parsed.key }], file);
  }

  /** A keyring from its keys (base64, 32 bytes each); `active` seals and wraps. */
  static fromKeys(active: string, keys: readonly KekFile[], source = 'keyring'): SecretBox {
    const map = new Map<string, Buffer>();
    for (const k of keys) {
      const key = Buffer.from(k.key, 'base64');
      if (typeof k.id !== 'string' || k.id === '' || key.length !== KEY_BYTES) throw new Error(`${source}: key ${String(k.id)} is not a named 256-bit key`);
      if (map.has(k.id)) throw new Error(`${source}: key ${k.id} appears twice`);
      map.set(k.id, key);
    }
    if (!map.has(active)) throw new Error(`${source}: the active key ${active} is not in the keyring`);
    return new SecretBox(active, map);
  }

  /** The id of the KEK new values are sealed with. */
  get activeKekId(): string {
    return this.activeId;
  }

  /** The ids of every KEK this box holds. */
  get kekIds(): string[] {
    return [...this.keys.keys()];
  }

  /** Seals with a fresh data key wrapped by the active KEK, bound to `binding`. */
  seal(plaintext: string | Buffer, binding: SealBinding): SealedSecret {
    const dataKey = randomBytes(KEY_BYTES);
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
    c.setAAD(aad('payload', SEAL_FORMAT, binding));
    const ciphertext = Buffer.concat([typeof plaintext === 'string' ? c.update(plaintext, 'utf8') : c.update(plaintext), c.final()]);
    return { kekId: this.activeId, wrappedKey: this.wrapDataKey(dataKey, binding), iv, tag: c.getAuthTag(), ciphertext };
  }

  /** Opens a format-2 value sealed for `binding`; SealedValueError otherwise. */
  open(s: SealedSecret, binding: SealBinding): string {
    return this.openBytes(s, binding).toString('utf8');
  }

  openBytes(s: SealedSecret, binding: SealBinding): Buffer {
    if (s.iv.length !== IV_BYTES) throw new SealedValueError(`${describe(binding)}: iv is ${s.iv.length} bytes, expected ${IV_BYTES}`);
    if (s.tag.length !== TAG_BYTES) throw new SealedValueError(`${describe(binding)}: tag is ${s.tag.length} bytes, expected ${TAG_BYTES}`);
    const dataKey = this.unwrapDataKey(s.kekId, s.wrappedKey, binding);
    const d = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(s.iv), { authTagLength: TAG_BYTES });
    d.setAAD(aad('payload', SEAL_FORMAT, binding));
    d.setAuthTag(Buffer.from(s.tag));
    try {
      return Buffer.concat([d.update(Buffer.from(s.ciphertext)), d.final()]);
    } catch {
      throw new SealedValueError(`${describe(binding)}: integrity check failed (tampered, or sealed for another row)`);
    }
  }

  /** A fresh data key for a caller that encrypts itself (snapshot streams), wrapped by the active KEK for `binding`. */
  newDataKey(binding: SealBinding): { kekId: string; dataKey: Buffer; wrappedKey: Buffer } {
    const dataKey = randomBytes(KEY_BYTES);
    return { kekId: this.activeId, dataKey, wrappedKey: this.wrapDataKey(dataKey, binding) };
  }

  /** Unwraps a data key wrapped for `binding` by the KEK `kekId`; SealedValueError otherwise. */
  unwrapDataKey(kekId: string, wrappedKey: Uint8Array, binding: SealBinding): Buffer {
    const kek = this.keys.get(kekId);
    if (!kek) throw new SealedValueError(`${describe(binding)}: sealed with key ${kekId}, which this keyring (${this.kekIds.join(', ')}) does not hold`);
    if (wrappedKey.length !== WRAPPED_BYTES) throw new SealedValueError(`${describe(binding)}: wrapped key is ${wrappedKey.length} bytes, expected ${WRAPPED_BYTES}`);
    const wk = Buffer.from(wrappedKey);
    const u = createDecipheriv('aes-256-gcm', kek, wk.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    u.setAAD(aad('data-key', SEAL_FORMAT, binding, kekId));
    u.setAuthTag(wk.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([u.update(wk.subarray(IV_BYTES + TAG_BYTES)), u.final()]);
    } catch {
      throw new SealedValueError(`${describe(binding)}: data key integrity check failed (tampered, or wrapped for another row or key)`);
    }
  }

  /**
   * Re-wraps a data key with the active KEK, same binding; the payload is untouched.
   * Returns null when it already is wrapped by the active KEK.
   */
  rewrap(kekId: string, wrappedKey: Uint8Array, binding: SealBinding): { kekId: string; wrappedKey: Buffer } | null {
    if (kekId === this.activeId) return null;
    const dataKey = this.unwrapDataKey(kekId, wrappedKey, binding);
    return { kekId: this.activeId, wrappedKey: this.wrapDataKey(dataKey, binding) };
  }

  /**
   * Opens a format-1 value (sealed before 2026-12-02: no associated data, so nothing says which
   * row it belongs to). Only for the operator's explicit re-seal of such rows
   * (SecretRepository.resealFormat1); nothing serves a value opened this way, and no process
   * calls it on its own.
   */
  openLegacy(s: SealedSecret, where: string): string {
    const kek = this.keys.get(s.kekId);
    if (!kek) throw new SealedValueError(`${where}: sealed with key ${s.kekId}, which this keyring does not hold`);
    if (s.wrappedKey.length !== WRAPPED_BYTES || s.iv.length !== IV_BYTES || s.tag.length !== TAG_BYTES) throw new SealedValueError(`${where}: malformed legacy value`);
    try {
      const wk = Buffer.from(s.wrappedKey);
      const u = createDecipheriv('aes-256-gcm', kek, wk.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      u.setAuthTag(wk.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const dataKey = Buffer.concat([u.update(wk.subarray(IV_BYTES + TAG_BYTES)), u.final()]);
      const d = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(s.iv), { authTagLength: TAG_BYTES });
      d.setAuthTag(Buffer.from(s.tag));
      return Buffer.concat([d.update(Buffer.from(s.ciphertext)), d.final()]).toString('utf8');
    } catch {
      throw new SealedValueError(`${where}: legacy value failed its integrity check`);
    }
  }

  private wrapDataKey(dataKey: Buffer, binding: SealBinding): Buffer {
    const wrapIv = randomBytes(IV_BYTES);
    const w = createCipheriv('aes-256-gcm', this.activeKey, wrapIv, { authTagLength: TAG_BYTES });
    w.setAAD(aad('data-key', SEAL_FORMAT, binding, this.activeId));
    const wrapped = Buffer.concat([w.update(dataKey), w.final()]);
    return Buffer.concat([wrapIv, w.getAuthTag(), wrapped]);
  }
}
