import type { AppendBlobClient, ContainerClient, RestError } from '@azure/storage-blob';
import { loadSdk } from '../lazy-sdk';
import type { TokenCredential } from '@azure/identity';

/**
 * The customer's audit container, for the audit export: append blobs only. It reaches the URL the
 * API checked (checkContainerUrl in libs/contracts) and nothing else; its errors carry the service's
 * status and error code and a message of ours, never the SDK's message or request (they hold the
 * URL with its SAS).
 */
export class AuditStorageError extends Error {
  override name = 'AuditStorageError';
  constructor(readonly code: string, message: string, readonly statusCode?: number) {
    super(message);
  }
}

/** How to reach the container: its URL with a SAS, or its URL and the control plane's identity. */
export type AuditContainerAccess = { sasUrl: string } | { containerUrl: string; credential: TokenCredential };

/** Outcome of an append at a position: done, or the blob already had another length (HTTP 412). */
export type AppendResult = { appended: true } | { appended: false; length: number };

/** The storage SDK, loaded on first use: the API loads this file with the provisioner and may never reach a container (several MB of its memory). */
const blobSdk = () => loadSdk<typeof import('@azure/storage-blob')>('@azure/storage-blob');

/** The SDK's error of an answer from the service (the SDK is loaded: a container was made before anything failed). */
const isRestError = (e: unknown): e is RestError => e instanceof blobSdk().RestError;

const PIPELINE = { retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 5_000, tryTimeoutInMs: 30_000 } };

export class AuditContainer {
  // Private: the client holds the SAS, and util.inspect does not show #fields.
  readonly #container: ContainerClient;

  constructor(access: AuditContainerAccess) {
    const { AnonymousCredential, ContainerClient } = blobSdk();
    this.#container = 'sasUrl' in access
      ? new ContainerClient(access.sasUrl, new AnonymousCredential(), PIPELINE)
      : new ContainerClient(access.containerUrl, access.credential, PIPELINE);
  }

  #blob(name: string): AppendBlobClient {
    return this.#container.getAppendBlobClient(name);
  }

  /**
   * Makes the append blob unless it exists (If-None-Match: *): never overwrites what was appended.
   * https://learn.microsoft.com/rest/api/storageservices/put-blob (x-ms-blob-type: AppendBlob)
   */
  async ensureBlob(name: string): Promise<void> {
    // Looked up first: with Create (c) but not Write (w), a Put Blob on an existing blob is refused
    // (403) before its If-None-Match is weighed; Create allows new blobs only.
    if ((await this.lengthOrNull(name)) !== null) return;
    await this.#call(`start ${name}`, () => this.#blob(name).createIfNotExists({ blobHTTPHeaders: { blobContentType: 'application/x-ndjson' } }));
  }

  /**
   * Appends `chunk` only if the blob is exactly `position` bytes long (x-ms-blob-condition-appendpos);
   * otherwise answers the blob's length. https://learn.microsoft.com/rest/api/storageservices/append-block
   * (412 AppendPositionConditionNotMet when the condition fails).
   */
  async appendAt(name: string, position: number, chunk: Buffer): Promise<AppendResult> {
    try {
      await this.#blob(name).appendBlock(chunk, chunk.length, { conditions: { appendPosition: position } });
      return { appended: true };
    } catch (e) {
      if (isRestError(e) && e.statusCode === 412) return { appended: false, length: await this.length(name) };
      throw this.#wrap(e, `append to ${name}`);
    }
  }

  /** The blob's length in bytes; null when there is no such blob. */
  async lengthOrNull(name: string): Promise<number | null> {
    try {
      const p = await this.#blob(name).getProperties();
      return p.contentLength ?? 0;
    } catch (e) {
      if (isRestError(e) && e.statusCode === 404 && errorCodeOf(e) === 'BlobNotFound') return null;
      throw this.#wrap(e, `read the length of ${name}`);
    }
  }

  async length(name: string): Promise<number> {
    const n = await this.lengthOrNull(name);
    if (n === null) throw new AuditStorageError('blob_changed', `${name} is gone from the container; the export does not rewrite what was exported`, 404);
    return n;
  }

  /** Bytes [offset, offset + count) of the blob. */
  async read(name: string, offset: number, count: number): Promise<Buffer> {
    return this.#call(`read ${name}`, async () => {
      if (count === 0) return Buffer.alloc(0);
      return this.#blob(name).downloadToBuffer(offset, count);
    });
  }

  /**
   * Checks access the way the export uses it: start the probe blob, append a line, read its length.
   * Whatever the SAS or the identity lacks fails here, before the PUT saves anything.
   */
  async probe(name: string, line: string): Promise<void> {
    await this.ensureBlob(name);
    const data = Buffer.from(`${line}\n`);
    await this.#call(`append to ${name}`, () => this.#blob(name).appendBlock(data, data.length));
    await this.length(name);
  }

  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw this.#wrap(e, what);
    }
  }

  #wrap(e: unknown, what: string): AuditStorageError {
    if (e instanceof AuditStorageError) return e;
    if (!isRestError(e)) {
      // A token the identity could not get, a name that does not resolve, a refused connection.
      const name = e instanceof Error ? e.name : 'Error';
      if (name === 'CredentialUnavailableError' || name === 'AuthenticationError') {
        return new AuditStorageError('identity_unavailable', `could not ${what}: the control plane's Azure identity could not get a token for Storage`);
      }
      const code = (e as { code?: string }).code;
      return new AuditStorageError('storage_unreachable', `could not ${what}: the storage endpoint did not answer (${code ?? name})`);
    }
    return storageError(e.statusCode, errorCodeOf(e), what);
  }
}

function errorCodeOf(e: RestError): string | undefined {
  const fromDetails = (e.details as { errorCode?: string } | undefined)?.errorCode;
  return fromDetails ?? e.response?.headers.get('x-ms-error-code') ?? e.code;
}

/**
 * A refusal of Blob Storage as the export reports it: a code of ours with the service's, and what
 * to do. Codes: https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes and
 * https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
 */
export function storageError(status: number | undefined, serviceCode: string | undefined, what: string): AuditStorageError {
  const said = `(${status ?? '?'} ${serviceCode ?? 'no error code'})`;
  if (status === 404 && serviceCode === 'ContainerNotFound') {
    return new AuditStorageError('container_not_found', `could not ${what}: the container does not exist ${said}; create it or name another`, status);
  }
  if (status === 403 && serviceCode === 'AuthenticationFailed') {
    return new AuditStorageError('storage_authentication_failed', `could not ${what}: storage refused the signature ${said}: the SAS expired, was revoked or is not valid; PUT a new one`, status);
  }
  if (status === 403 && serviceCode === 'AuthorizationPermissionMismatch') {
    return new AuditStorageError('storage_permission_mismatch', `could not ${what}: ${said}: the SAS must allow read, add and create (sp=rac), or the identity needs Storage Blob Data Contributor on the container`, status);
  }
  if (status === 403) {
    return new AuditStorageError('storage_forbidden', `could not ${what}: storage refused it ${said}: the SAS is not valid for this container, or the account's network rules refuse the control plane`, status);
  }
  if (status === 404) return new AuditStorageError('storage_not_found', `could not ${what}: ${said}`, status);
  return new AuditStorageError('storage_error', `could not ${what}: storage answered ${said}`, status);
}
