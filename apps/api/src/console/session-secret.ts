import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The random values behind the console's cookies, codes and logins. Only their SHA-256 is
 * stored, so a copy of the database opens no session. The CSRF token of a session is derived
 * from the cookie's value (an HMAC keyed by it): nothing to store, and it cannot be computed
 * without the cookie, which scripts cannot read (HttpOnly).
 */

/** 32 random bytes, base64url (43 characters): a session cookie, a state, a nonce, a one-time code. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** What the database holds in place of a secret. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** A PKCE code challenge (S256) of a verifier (RFC 7636 4.2). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** The session's CSRF token, sent back by the console in X-CSRF-Token on every change. */
export function csrfTokenFor(sessionSecret: string): string {
  return createHmac('sha256', sessionSecret).update('managed-consul console csrf v1').digest('base64url');
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(sessionSecret: string, presented: string | string[] | undefined): boolean {
  if (typeof presented !== 'string' || presented === '') return false;
  const expected = Buffer.from(csrfTokenFor(sessionSecret));
  const got = Buffer.from(presented);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Cookie values we issue: base64url only, so a cookie header can never smuggle anything else into a lookup. */
export function isWellFormedSecret(v: string | undefined): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{43}$/.test(v);
}
