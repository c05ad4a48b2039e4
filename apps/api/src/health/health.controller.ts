import { ROUTES } from '../../../../libs/contracts/src';
import { Controller, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type IORedis from 'ioredis';
import { register } from 'prom-client';
import type { Db } from '../../../../libs/core/src';
import { DB, REDIS } from '../tokens';
import { Route } from '../validation/input';

@Controller()
export class HealthController {
  constructor(@Inject(DB) private readonly db: Db, @Inject(REDIS) private readonly redis: IORedis) {}

  @Route(ROUTES.healthz)
  healthz() {
    return { status: 'ok' };
  }

  /** Ready when the database and Redis answer. */
  @Route(ROUTES.readyz)
  async readyz(@Res({ passthrough: true }) reply: FastifyReply) {
    const [database, redis] = await Promise.all([
      this.probe(() => this.db.$queryRaw`SELECT 1`),
      this.probe(() => this.redis.ping()),
    ]);
    const ready = database === 'ok' && redis === 'ok';
    reply.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready', checks: { database, redis } };
  }

  @Route(ROUTES.metrics)
  async metrics(@Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('Content-Type', register.contentType);
    return register.metrics();
  }

  private async probe(fn: () => Promise<unknown>): Promise<string> {
    try {
      await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 2000).unref())]);
      return 'ok';
    } catch (e) {
      return `failing: ${(e as Error).message.split('\n')[0]}`;
    }
  }
}
