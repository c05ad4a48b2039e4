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
