/** Reading and writing cookies (RFC 6265), for the console session, the Consul UI session and the queues board. */

/** The value of the first cookie of this name in a Cookie header, or undefined. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  const all = Array.isArray(header) ? header.join('; ') : header;
  if (!all) return undefined;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** A cookie name with the `__Host-` prefix. */
export type HostCookieName = `__Host-${string}`;

export interface CookieOptions {
  /** Seconds; 0 clears the cookie. */
  maxAgeS: number;
  sameSite: 'Strict' | 'Lax';
}

/**
 * A Set-Cookie value for a `__Host-` cookie: Secure, Path=/, no Domain, HttpOnly. Browsers keep
 * such a cookie only when the exact origin that set it did so (RFC 6265bis 4.1.3.2), so no
 * sibling host, not even another cluster's UI origin, can set, shadow or read it. Browsers
 * accept Secure cookies from https origins and from loopback http (localhost, *.localhost,
 * 127.0.0.1): the only http origins the configuration allows (libs/core config).
 */
export function setHostCookie(name: HostCookieName, value: string, o: CookieOptions): string {
  return `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(o.maxAgeS))}; HttpOnly; Secure; SameSite=${o.sameSite}`;
}
