import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, errorBody } from '../../../../libs/core/src';

/**
 * Answers for the routes a browser navigates to (sign-in, its callback, Open Consul UI): a short
 * readable HTML page when the browser asks for HTML, otherwise the API's JSON error shape.
 * Never a stack, never a secret.
 */

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function wantsHtml(req: Pick<FastifyRequest, 'headers'>): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

const TITLES: Record<number, string> = {
  400: 'The sign-in did not work',
  401: 'Sign in first',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Not available right now',
  502: 'The cluster did not answer',
  503: 'Try again shortly',
};

/** An error page's CSP: its own inline style, nothing else; never framed. */
export const ERROR_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** An accessible page: a title, what happened, and where to go from here. */
export function errorPage(status: number, code: string, message: string, links: { href: string; label: string }[] = [{ href: '/', label: 'Back to the console' }]): string {
  const title = TITLES[status] ?? 'Something went wrong';
  const items = links.map((l) => `<li><a href="${escapeHtml(l.href)}">${escapeHtml(l.label)}</a></li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Managed Consul</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;background:#fff;line-height:1.5}
code{background:#f0f0f0;padding:0 .25rem}a{color:#0b5cad}a:focus{outline:3px solid #0b5cad;outline-offset:2px}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p>Error code: <code>${escapeHtml(code)}</code> (HTTP ${status})</p><ul>${items}</ul></main></body></html>`;
}

/** Sends a DomainError as a page or as JSON, whichever the caller asked for. */
export function sendError(req: FastifyRequest, reply: FastifyReply, e: DomainError, links?: { href: string; label: string }[]): FastifyReply {
  reply.status(e.status).header('cache-control', 'no-store');
  if (wantsHtml(req)) return reply.type('text/html; charset=utf-8').header('content-security-policy', ERROR_PAGE_CSP).send(errorPage(e.status, e.code, e.message, links));
  return reply.send(errorBody(e));
}

export function isDomainError(e: unknown): e is DomainError {
  return e instanceof DomainError;
}
