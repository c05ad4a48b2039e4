import { randomBytes, randomUUID } from 'node:crypto';

/** Consul gossip encryption key: 32 random bytes, base64 (AES-256). */
export function generateGossipKey(): string {
  return randomBytes(32).toString('base64');
}

/** A UUID v4, the format Consul expects for ACL secret IDs. */
export function generateManagementToken(): string {
  return randomUUID();
}

/**
 * A management token rotation, sealed as a cluster secret before anything
 * changes so that a retried step carries on with the same ids.
 */
export interface ManagementTokenRotation {
  /** The operation carrying it out. */
  operationId: string;
  /** The next management token, chosen before it exists in Consul. */
  accessorId: string;
  secretId: string;
  /**
   * Secrets of the tokens to delete once no server's config names them: the
   * token in use when the rotation began, and any an unfinished rotation left.
   * Empty once they are gone.
   */
  revoke: string[];
}

/**
 * The rotation an operation carries out, given the stored management token
 * and the rotation record found (if any):
 * - the operation's own record (a retry): unchanged;
 * - an unfinished record of another operation (one that failed for good) whose
 *   token is not in use yet: carried on with the same next token, which may
 *   exist in Consul and in some servers' configs already;
 * - otherwise a new next token; the current one, and any an unfinished
 *   rotation did not delete, are to be revoked.
 */
export function planManagementTokenRotation(
  operationId: string,
  current: string,
  found: ManagementTokenRotation | null,
): ManagementTokenRotation {
  if (found?.operationId === operationId) return found;
  const unfinished = found !== null && found.revoke.length > 0;
  const next =
    unfinished && found.secretId !== current
      ? { accessorId: found.accessorId, secretId: found.secretId }
      : { accessorId: randomUUID(), secretId: generateManagementToken() };
  const revoke = [...new Set([...(unfinished ? found.revoke : []), current])].filter((s) => s !== next.secretId);
  return { operationId, ...next, revoke };
}

/**
 * Every AccessorID the cluster's management tokens have had, sealed as a
 * cluster secret (never their secrets). A snapshot holds the ACL state of when
 * it was taken, so restoring one from before a rotation brings the retired
 * token back under the AccessorID it had then; the restore then deletes every
 * token listed here that exists again, except the current management token.
 * Recorded: a token's AccessorID when it becomes the management token and
 * again before it is revoked, and after every restore the one the current
 * token has then (a leader re-creates the configured master token under a
 * random AccessorID when the restored state lacks it, so a token may have had
 * several). The list only grows; its ids are random UUIDs of these tokens only.
 */
export interface ManagementTokenAccessors {
  accessorIds: string[];
}

/** The list stored (null: none yet) with `add` appended; null when it holds them all already. */
export function withManagementTokenAccessors(stored: ManagementTokenAccessors | null, add: readonly string[]): ManagementTokenAccessors | null {
  const known = stored?.accessorIds ?? [];
  const fresh = [...new Set(add)].filter((a) => !known.includes(a));
  return fresh.length === 0 ? null : { accessorIds: [...known, ...fresh] };
}
