import fs from 'node:fs';
import path from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ROUTES, openApiDocument } from '../../../../libs/contracts/src';
import { errorBody, type Config } from '../../../../libs/core/src';
import { SESSION_COOKIE } from '../console/console-sessions';
import { catalogOf } from '../validation/input';

const ASSETS = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js']);

/** OpenAPI document at /docs/openapi.json and Swagger UI at /docs (assets served from swagger-ui-dist). */
export function mountDocs(app: NestFastifyApplication, config: Config): void {
  // Generated from the routes' contracts (libs/contracts), with this deployment's catalog.
  const document = openApiDocument(Object.values(ROUTES), catalogOf(config), {
    title: 'Managed Consul API',
    description: 'Create and run secured Consul clusters. Authenticate with a Microsoft Entra ID bearer token, or the console session cookie (changes also need X-CSRF-Token).',
    version: '1',
    sessionCookie: SESSION_COOKIE,
  });
  const assetsDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const fastify = app.getHttpAdapter().getInstance();
  fastify.get('/docs/openapi.json', async () => document);
  fastify.get('/docs', async (_req, reply) => {
    reply.type('text/html');
    return `<!doctype html><html><head><title>Managed Consul API</title><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/docs/openapi.json', dom_id: '#ui' });</script></body></html>`;
  });
  fastify.get<{ Params: { file: string } }>('/docs/assets/:file', async (req, reply) => {
    if (!ASSETS.has(req.params.file)) return reply.status(404).send(errorBody('not_found', 'no such asset'));
    reply.type(req.params.file.endsWith('.css') ? 'text/css' : 'application/javascript');
    return fs.createReadStream(path.join(assetsDir, req.params.file));
  });
}
