import { createHash, randomBytes } from 'node:crypto';
import type { BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { loadSdk } from '../lazy-sdk';

/** What `put` stored: the blob's key, its size in bytes and the hex sha256 of its content. */
export interface StoredSnapshot {
  key: string;
  size: number;
  sha256: string;
}

/** Content does not match the checksum it was stored with, or the one the caller expected. */
export class ChecksumMismatchError extends Error {
  override name = 'ChecksumMismatchError';
}

/** `get` of a key that holds no snapshot. */
export class SnapshotNotFoundError extends Error {
  override name = 'SnapshotNotFoundError';
}

/**
 * The storage service failed or refused a request. Carries the HTTP status and the
 * service's error code, never the service's message, the request, or the original
 * SDK error: those hold request signatures and URLs.
 */
export class SnapshotStoreError extends Error {
  override name = 'SnapshotStoreError';
  constructor(
    message: string,
    readonly statusCode?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface SnapshotStore {
  /**
   * Uploads; computes the sha256 of what it uploads; if `expectedSha256` is given and
   * differs, throws ChecksumMismatchError and leaves no blob. Stores the sha256 as blob
   * metadata. Idempotent for the same key and content.
   */
  put(key: string, data: Buffer, expectedSha256?: string): Promise<StoredSnapshot>;
  /**
   * Downloads and verifies the content against the stored sha256 (and against
   * `expectedSha256` if given); ChecksumMismatchError otherwise.
   */
  get(key: string, expectedSha256?: string): Promise<Buffer>;
  /** Idempotent: a missing key is fine. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
}

export interface BlobSnapshotStoreOptions {
  /** Azure Storage connection string; holds the account key: never logged nor put in an error. */
  connectionString: string;
  container: string;
  /** Size of the blocks a snapshot is uploaded in (default 8 MiB; Azure allows up to 4000 MiB). */
  blockSize?: number;
}

const SHA256_METADATA = 'sha256';
const CONTENT_TYPE = 'application/gzip';
const DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// Azure container names: 3-63 characters, lowercase letters, digits and single hyphens,
// starting and ending with a letter or digit.
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * Snapshots in one Azure Blob Storage container (Azurite locally), one block blob per key.
 *
 * Integrity: each block goes up with its MD5 as the transactional Content-MD5, which the
 * service checks on arrival; the commit stores the whole content's MD5 as the blob's
 * Content-MD5 and its sha256 as metadata, in one atomic request (content and metadata
 * never disagree, and a failed upload leaves no blob, only uncommitted blocks the service
 * discards). Reads check both hashes.
 */
export class BlobSnapshotStore implements SnapshotStore {
  // Private fields: the client holds the account key, and util.inspect (a logged
  // store, a logged error with the store in scope) does not show #fields.
  readonly #container: ContainerClient;
  readonly #containerName: string;
  readonly #blockSize: number;
  readonly #secrets: string[];

  constructor(opts: BlobSnapshotStoreOptions) {
    if (!CONTAINER_NAME.test(opts.container)) {
      throw new TypeError(`invalid Azure Blob container name: ${JSON.stringify(opts.container)}`);
    }
    this.#containerName = opts.container;
    this.#blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(this.#blockSize) || this.#blockSize < 1) {
      throw new TypeError(`invalid block size: ${this.#blockSize}`);
    }
    this.#secrets = connectionStringSecrets(opts.connectionString);
    let service: BlobServiceClient;
    try {
      const { BlobServiceClient } = loadSdk<typeof import('@azure/storage-blob')>('@azure/storage-blob');
      service = BlobServiceClient.fromConnectionString(opts.connectionString, {
        // Fail within about a minute, not the SDK's default of several.
        retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 5_000 },
      });
    } catch (err) {
      throw new SnapshotStoreError(`invalid Azure Storage connection string: ${this.#describe(err)}`);
    }
    this.#container = service.getContainerClient(opts.container);
  }

  /** Creates the container (private: no anonymous access) unless it exists. */
  async ensureContainer(): Promise<void> {
    try {
      await this.#container.createIfNotExists();
    } catch (err) {
      throw this.#wrap(err, `create container ${this.#containerName}`);
    }
  }

  async put(key: string, data: Buffer, expectedSha256?: string): Promise<StoredSnapshot> {
    const blob = this.#blob(key);
    const expected = expectedSha256 === undefined ? undefined : normaliseSha256(expectedSha256);
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (expected !== undefined && expected !== sha256) {
      // Checked before any request: nothing is uploaded.
      throw new ChecksumMismatchError(
        `snapshot ${key}: content has sha256 ${sha256}, expected ${expected}; not uploaded`,
      );
    }
    const md5 = createHash('md5').update(data).digest();
    try {
      const blockIds = await this.#stageBlocks(blob, data);
      await blob.commitBlockList(blockIds, {
        blobHTTPHeaders: { blobContentType: CONTENT_TYPE, blobContentMD5: md5 },
        metadata: { [SHA256_METADATA]: sha256 },
      });
    } catch (err) {
      throw this.#wrap(err, `upload snapshot ${key}`);
    }
    return { key, size: data.length, sha256 };
  }

  async get(key: string, expectedSha256?: string): Promise<Buffer> {
    const blob = this.#blob(key);
    const expected = expectedSha256 === undefined ? undefined : normaliseSha256(expectedSha256);
    // One GET returns content and metadata of the same blob version (the SDK's retries
    // of a broken body stream resume with If-Match on that version's ETag).
    let data: Buffer;
    let stored: string | undefined;
    let storedMd5: Uint8Array | undefined;
    try {
      const res = await blob.download(0);
      stored = res.metadata?.[SHA256_METADATA];
      storedMd5 = res.contentMD5;
      data = await readAll(res.readableStreamBody);
    } catch (err) {
      if (statusOf(err) === 404) throw new SnapshotNotFoundError(`snapshot ${key} not found in container ${this.#containerName}`);
      throw this.#wrap(err, `download snapshot ${key}`);
    }
    if (stored === undefined || !SHA256_HEX.test(stored)) {
      throw new ChecksumMismatchError(`snapshot ${key}: the blob carries no valid sha256 metadata`);
    }
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (sha256 !== stored) {
      throw new ChecksumMismatchError(`snapshot ${key}: content has sha256 ${sha256}, stored with ${stored}`);
    }
    if (storedMd5 !== undefined && storedMd5.length > 0) {
      const md5 = createHash('md5').update(data).digest();
      if (!md5.equals(Buffer.from(storedMd5))) {
        throw new ChecksumMismatchError(`snapshot ${key}: content does not match the blob's Content-MD5`);
      }
    }
    if (expected !== undefined && sha256 !== expected) {
      throw new ChecksumMismatchError(`snapshot ${key}: content has sha256 ${sha256}, expected ${expected}`);
    }
    return data;
  }

  async delete(key: string): Promise<void> {
    const blob = this.#blob(key);
    try {
      await blob.deleteIfExists({ deleteSnapshots: 'include' });
    } catch (err) {
      throw this.#wrap(err, `delete snapshot ${key}`);
    }
  }

  async exists(key: string): Promise<boolean> {
    const blob = this.#blob(key);
    try {
      return await blob.exists();
    } catch (err) {
      throw this.#wrap(err, `check snapshot ${key}`);
    }
  }

  #blob(key: string): BlockBlobClient {
    validateKey(key);
    return this.#container.getBlockBlobClient(key);
  }

  /** Stages `data` in blocks, UPLOAD_CONCURRENCY at a time, each with its transactional MD5. */
  async #stageBlocks(blob: BlockBlobClient, data: Buffer): Promise<string[]> {
    // Block ids unique to this upload: a concurrent put of the same key stages its own
    // blocks, so neither commit can pick up the other's content. All ids of a blob must
    // have the same length.
    const uploadId = randomBytes(8).toString('hex');
    const count = Math.ceil(data.length / this.#blockSize); // 0 for empty data: an empty blob
    const ids = Array.from({ length: count }, (_, i) =>
      Buffer.from(`${uploadId}-${String(i).padStart(6, '0')}`).toString('base64'),
    );
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < count && !failed) {
        const i = next++;
        const chunk = data.subarray(i * this.#blockSize, (i + 1) * this.#blockSize);
        try {
          await blob.stageBlock(ids[i] as string, chunk, chunk.length, {
            transactionalContentMD5: createHash('md5').update(chunk).digest(),
          });
        } catch (err) {
          failed = true; // the other workers stop after their current block
          throw err;
        }
      }
    };
    // Settle all before failing: put() never returns while a block is still going up.
    const results = await Promise.allSettled(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, count) }, worker));
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    return ids;
  }

  /** An SDK error as a SnapshotStoreError: status and code only, nothing that may hold a secret. */
  #wrap(err: unknown, what: string): SnapshotStoreError {
    const status = statusOf(err);
    const code = codeOf(err);
    if (status !== undefined) {
      return new SnapshotStoreError(
        `${what} (container ${this.#containerName}) failed: HTTP ${status}${code ? ` ${code}` : ''}`,
        status,
        code,
      );
    }
    return new SnapshotStoreError(
      `${what} (container ${this.#containerName}) failed: ${this.#describe(err)}`,
      undefined,
      code,
    );
  }

  /** First line of an error's message, with anything secret-looking removed. */
  #describe(err: unknown): string {
    const code = codeOf(err);
    let message = err instanceof Error ? err.message : String(err);
    message = (message.split('\n')[0] ?? '').slice(0, 300);
    for (const secret of this.#secrets) message = message.split(secret).join('[REDACTED]');
    message = message
      .replace(/(AccountKey|SharedAccessSignature|sig|signature)=[^;&\s]*/gi, '$1=[REDACTED]')
      .replace(/SharedKey(Lite)?\s+[^\s:]*:\S+/g, 'SharedKey$1 [REDACTED]');
    return code && !message.includes(code) ? `${code}: ${message}` : message;
  }
}

/** The values in a connection string that must never appear in an error. */
function connectionStringSecrets(connectionString: string): string[] {
  const secrets: string[] = [];
  for (const part of connectionString.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if ((name === 'accountkey' || name === 'sharedaccesssignature') && value.length >= 8) secrets.push(value);
  }
  return secrets;
}

function normaliseSha256(value: string): string {
  const hex = value.toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new TypeError('expectedSha256 must be 64 hexadecimal characters');
  return hex;
}

/**
 * Keys are blob names made of "/"-separated segments. Rejects what Azure or URL
 * handling would silently change: empty, "." or ".." segments (URL normalisation), a
 * trailing ".", control characters and backslashes, names over 1024 characters.
 */
function validateKey(key: string): void {
  const bad = (why: string): never => {
    throw new TypeError(`invalid snapshot key ${JSON.stringify(key)}: ${why}`);
  };
  if (key.length === 0 || key.length > 1024) bad('must be 1 to 1024 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(key)) bad('control characters and backslashes are not allowed');
  if (key.split('/').some((s) => s === '' || s === '.' || s === '..')) bad('empty, "." and ".." segments are not allowed');
  if (key.endsWith('.')) bad('must not end with "."');
}

async function readAll(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (stream === undefined) throw new Error('download returned no body');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;
}
