import fs from 'node:fs';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { errorBody } from '../../../../libs/core/src';

/**
 * The console's own paths: each answers the single-page app's index.html, and the browser's
 * router shows the page. Listed one by one, so the console never shadows /v1, /auth, /sso,
 * /docs, /healthz, /readyz, /metrics or /admin (keep in step with apps/console/src/routes.tsx).
 */
export const CONSOLE_PATHS = ['/', '/clusters', '/clusters/*', '/deployments/*', '/fleet', '/fleet/*'] as const;

/** Where `npm run build` writes the console (vite's outDir): dist/console beside dist/apps. */
export const CONSOLE_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'console');

/**
 * Only what the console loads may run in its pages: its own scripts and styles, calls to its own
 * origin. No inline script, no framing (clickjacking), forms post only here.
 */
const CONSOLE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'",
].join('; ');

const NOT_BUILT = errorBody('console_not_built', 'the console is not built: run `npm run build` (or npm start, which builds it)');

/** Serves the built console: hashed assets under /assets/ (cached for good) and index.html for its paths. */
export function mountConsole(app: NestFastifyApplication, dir = CONSOLE_DIR): void {
  const indexFile = path.join(dir, 'index.html');
  const assets = path.join(dir, 'assets');
  // Read again only when a build replaced it (its assets' names change with every build).
  let index: { mtimeMs: number; html: string } | undefined;
  const readIndex = (): string | undefined => {
    const stat = fs.statSync(indexFile, { throwIfNoEntry: false });
    if (!stat) return undefined;
    if (index?.mtimeMs !== stat.mtimeMs) index = { mtimeMs: stat.mtimeMs, html: fs.readFileSync(indexFile, 'utf8') };
    return index.html;
  };
  if (fs.existsSync(assets)) {
    app.useStaticAssets({ root: assets, prefix: '/assets/', decorateReply: false, immutable: true, maxAge: '365d', index: false, wildcard: true });
  }
  const fastify = app.getHttpAdapter().getInstance();
  for (const url of CONSOLE_PATHS) {
    fastify.get(url, async (_req, reply) => {
      const html = readIndex();
      if (!html) return reply.status(503).header('cache-control', 'no-store').send(NOT_BUILT);
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('content-security-policy', CONSOLE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'same-origin')
        .send(html);
    });
  }
}
