import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';

/**
 * What the Consul UI proxy vouches for on every answer, whatever Consul sends or omits (Consul
 * 1.8.7 sends `nosniff` and `CSP: sandbox` on `?raw` KV values only; a later version or another
 * endpoint may not). Three families:
 * - `/v1/...`, Consul's API: never a document. A type that a browser would render (none, HTML,
 *   XML, SVG) becomes text/plain, and a CSP of `sandbox` with nothing allowed, so even a value
 *   opened as a page (`/v1/kv/<key>?raw`) runs no script and reaches no origin.
 * - `/ui/...`, the Consul UI: a CSP fitted to it (its own scripts, styles and calls; the inline
 *   scripts of its own index page by hash; framed by the console only).
 * - the proxy's own answers (errors, redirects): the console's error pages' CSP (pages.ts).
 * Everywhere: `nosniff`, and a referrer kept to the origin.
 */

const RENDERED = /html|xml|svg/i;

/** A CSP for an answer that must never act as a document. */
export const API_ANSWER_CSP = "sandbox; default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** Headers for every answer of the proxy. */
export function commonHeaders(): OutgoingHttpHeaders {
  return { 'x-content-type-options': 'nosniff', 'referrer-policy': 'same-origin' };
}

/** Consul's headers for an answer to `path`, made safe: the caller drops hop-by-hop headers and cookies. */
export function apiAnswerHeaders(upstream: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const type = upstream['content-type'];
  const rendered = typeof type !== 'string' || type.trim() === '' || RENDERED.test(type);
  return { ...upstream, ...commonHeaders(), ...(rendered ? { 'content-type': 'text/plain; charset=utf-8' } : {}), 'content-security-policy': API_ANSWER_CSP };
}

/** The inline scripts of an HTML page, by their CSP hash (`'sha256-...'`). */
export function inlineScriptHashes(html: string): string[] {
  const out = new Set<string>();
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi)) {
    if (/\bsrc\s*=/i.test(m[1] ?? '')) continue;
    out.add(`'sha256-${createHash('sha256').update(m[2] ?? '', 'utf8').digest('base64')}'`);
  }
  return [...out];
}

/**
 * The Consul UI's CSP: scripts from its own origin and, inline, only those its own index page
 * ships (hashed as served, so a script injected into the page later does not run), styles from
 * its origin (inline ones too: its components set style attributes), images and fonts from
 * its origin or data:, calls to its own origin only (its /v1, through this proxy), no plugins,
 * forms only to itself, and framing by the console alone.
 */
export function uiPageCsp(consoleOrigin: string, inlineScripts: readonly string[] = []): string {
  return [
    "default-src 'self'",
    `script-src 'self'${inlineScripts.map((h) => ` ${h}`).join('')}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    `frame-ancestors ${consoleOrigin}`,
  ].join('; ');
}

/** Consul's headers for an answer under /ui/, with the UI's CSP (for an HTML page, with its inline scripts' hashes). */
export function uiAnswerHeaders(upstream: OutgoingHttpHeaders, consoleOrigin: string, html?: string): OutgoingHttpHeaders {
  return { ...upstream, ...commonHeaders(), 'content-security-policy': uiPageCsp(consoleOrigin, html === undefined ? [] : inlineScriptHashes(html)) };
}

/** Whether an answer is an HTML page (its CSP needs its inline scripts' hashes, so its body is read first). */
export function isHtml(upstream: OutgoingHttpHeaders): boolean {
  const type = upstream['content-type'];
  return typeof type === 'string' && /^\s*text\/html\b/i.test(type);
}
