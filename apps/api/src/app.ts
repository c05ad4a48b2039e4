import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Histogram, collectDefaultMetrics, register } from 'prom-client';
import type { Config } from '../../../libs/core/src';
import { AppModule } from './app.module';
import { mountQueuesBoard } from './admin/queues-board';
import { mountDocs } from './docs/openapi';
import { createLogger } from '../../../libs/core/src/logger';

let metricsStarted = false;
const httpDuration = () =>
  (register.getSingleMetric('http_request_duration_seconds') as Histogram<string> | undefined) ??
  new Histogram({ name: 'http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });

/** Builds the API (not listening yet): used by main.ts, the tests and the benchmarks. */
export async function createApiApp(config: Config): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => (typeof req.headers['x-request-id'] === 'string' && req.headers['x-request-id'].length <= 128 ? req.headers['x-request-id'] : randomUUID()),
    bodyLimit: 256 * 1024,
    trustProxy: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: createLogger('api', config.LOG_FORMAT),
    abortOnError: false,
  });
  if (!metricsStarted) {
    collectDefaultMetrics();
    metricsStarted = true;
  }
  const histogram = httpDuration();
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onSend', async (req, reply, payload) => {
    reply.header('X-Request-Id', req.id);
    return payload;
  });
  fastify.addHook('onResponse', async (req, reply) => {
    histogram.observe({ method: req.method, route: req.routeOptions?.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  mountDocs(app);
  mountQueuesBoard(app);
  app.enableShutdownHooks();
  await app.init();
  return app;
}
