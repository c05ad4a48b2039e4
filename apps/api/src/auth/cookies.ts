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

export interface CookieOptions {
  /** Seconds; 0 clears the cookie. */
  maxAgeS: number;
  path: string;
  secure: boolean;
  sameSite: 'Strict' | 'Lax';
}

/** A Set-Cookie value: always HttpOnly and host-only (no Domain attribute, so no other host receives it). */
export function setCookie(name: string, value: string, o: CookieOptions): string {
  return `${name}=${value}; Path=${o.path}; Max-Age=${Math.max(0, Math.floor(o.maxAgeS))}; HttpOnly;${o.secure ? ' Secure;' : ''} SameSite=${o.sameSite}`;
}
