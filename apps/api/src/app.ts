import { createLogger } from '../../../libs/core/src';
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Histogram, collectDefaultMetrics, register } from 'prom-client';
import type { Config } from '../../../libs/core/src';
import { AppModule } from './app.module';
import { mountQueuesBoard } from './admin/queues-board';
import { mountDocs } from './docs/openapi';
import { verifyAnswer } from './validation/answers';
import { mountConsole } from './console/console.routes';
import { errorBody } from '../../../libs/core/src';

let metricsStarted = false;
const httpDuration = () =>
  (register.getSingleMetric('http_request_duration_seconds') as Histogram<string> | undefined) ??
  new Histogram({ name: 'http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a URL or headers over the
 * 16 KB limit, a malformed request line): answered in the API's error shape, as Fastify's
 * default handler would answer them in its own.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) return;
  const [status, message] = err.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'the request line and headers are too large (16 KB at most together); shorten the URL, the query or the headers']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'the request was not received in time; send it again']
      : [400, 'the request is not well-formed HTTP/1.1; check the request line and headers'];
  const body = JSON.stringify(errorBody(status === 431 ? 'request_too_large' : status === 408 ? 'request_timeout' : 'bad_request', message));
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Fastify's router refusals (a malformed percent-encoding, a path segment over 100 characters), in the API's error shape. */
function routerRefusal(err: { code?: string }, _req: unknown, reply: { code(n: number): { send(b: unknown): unknown } }): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.code(414).send(errorBody('uri_too_long', 'a path segment is longer than 100 characters; ids are UUIDs (8-4-4-4-12 hexadecimal digits)'));
  } else {
    reply.code(400).send(errorBody('bad_url', 'the URL is not valid (check its percent-encoding)'));
  }
}

/** The first field (path, query or body) holding a NUL character, as a path like `query.region` or `body.name`. */
function nulField(where: string, v: unknown, depth = 0): string | undefined {
  if (typeof v === 'string') return v.includes('\u0000') ? where : undefined;
  if (depth > 32 || v === null || typeof v !== 'object') return undefined;
  for (const [k, x] of Object.entries(v)) {
    const key = k.includes('\u0000') ? `${where}[key]` : undefined;
    const found = key ?? nulField(`${where}.${k}`, x, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Builds the API (not listening yet): used by main.ts, the tests and the benchmarks. */
export async function createApiApp(config: Config): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => (typeof req.headers['x-request-id'] === 'string' && req.headers['x-request-id'].length <= 128 ? req.headers['x-request-id'] : randomUUID()),
    bodyLimit: 256 * 1024,
    trustProxy: false,
    clientErrorHandler: clientError,
    // (typed loosely: @nestjs/platform-fastify carries a Fastify of its own, whose types are not the top-level one's)
    frameworkErrors: routerRefusal as never,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: createLogger('api', config),
    abortOnError: false,
  });
  if (!metricsStarted) {
    collectDefaultMetrics();
    metricsStarted = true;
  }
  const histogram = httpDuration();
  const fastify = app.getHttpAdapter().getInstance();
  // The hooks every request runs are synchronous (callback style): no promise per hook per request.
  fastify.addHook('onSend', (req, reply, payload, done) => {
    reply.header('X-Request-Id', req.id);
    // No answer of ours is ever to be sniffed into another type (a JSON error rendered as HTML).
    reply.header('X-Content-Type-Options', 'nosniff');
    done(null, payload);
  });
  // PostgreSQL refuses NUL in text, and no name, id or date of ours holds one: refused here for
  // every route, in one place, before any handler (a 500 from the database otherwise).
  fastify.addHook('preHandler', (req, reply, done) => {
    const field = nulField('params', req.params) ?? nulField('query', req.query) ?? nulField('body', req.body);
    // Answered here, the hook does not go on (done is not called).
    if (field) void reply.code(400).send(errorBody('invalid_character', `${field} holds a NUL character (\\u0000); remove it`, { field }));
    else done();
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    histogram.observe({ method: req.method, route: req.routeOptions?.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
  if (config.API_VERIFY_ANSWERS) fastify.addHook('onSend', verifyAnswer);
  mountDocs(app, config);
  mountQueuesBoard(app);
  mountConsole(app);
  app.enableShutdownHooks();
  await app.init();
  return app;
}
