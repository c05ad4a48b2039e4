import { randomBytes, randomUUID } from 'node:crypto';

/** Consul gossip encryption key: 32 random bytes, base64 (AES-256). */
export function generateGossipKey(): string {
  return randomBytes(32).toString('base64');
}

/** A UUID v4, the format Consul expects for ACL secret IDs. */
export function generateManagementToken(): string {
  return randomUUID();
}
