import { timingSafeEqual } from 'node:crypto';
import { cookieValue, setHostCookie, type HostCookieName } from '../auth/cookies';
import { hashSecret, isWellFormedSecret, newSecret } from './session-secret';

/**
 * Binding a sign-in to the browser that started it. Where a sign-in starts (the console's
 * /auth/login, a UI origin's /_sso/start), the browser gets a random value in a short-lived
 * `__Host-` cookie of that origin; the pending sign-in (login row, SSO code) keeps only its
 * SHA-256; the callback on the same origin is honoured only from a browser that sends the
 * value. A callback URL made in one browser and opened in another (an attacker's, sent to a
 * victim) is refused, before anything is exchanged or created.
 *
 * The value is reused while the cookie lives, so sign-ins started in two tabs both complete.
 */
export const BINDING_MAX_AGE_S = 10 * 60;

export interface Binding {
  /** SHA-256 of the cookie's value: what the pending sign-in keeps. */
  hash: string;
  /** The Set-Cookie header that (re)sets the cookie for BINDING_MAX_AGE_S. */
  setCookie: string;
}

/** The binding of this browser on this origin: the cookie's value when it has one, else a new one. */
export function bindBrowser(cookieHeader: string | string[] | undefined, name: HostCookieName): Binding {
  const present = cookieValue(cookieHeader, name);
  const value = isWellFormedSecret(present) ? present : newSecret();
  return { hash: hashSecret(value), setCookie: setHostCookie(name, value, { maxAgeS: BINDING_MAX_AGE_S, sameSite: 'Lax' }) };
}

/** Whether this request comes from the browser whose binding hash the pending sign-in kept (constant time). */
export function isSameBrowser(cookieHeader: string | string[] | undefined, name: HostCookieName, keptHash: string): boolean {
  const present = cookieValue(cookieHeader, name);
  if (!isWellFormedSecret(present)) return false;
  const got = Buffer.from(hashSecret(present));
  const want = Buffer.from(keptHash);
  return got.length === want.length && timingSafeEqual(got, want);
}
