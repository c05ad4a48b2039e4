import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type IORedis from 'ioredis';
import { register } from 'prom-client';
import type { Db } from '../../../../libs/core/src';
import { Public } from '../auth/principal';
import { DB, REDIS } from '../tokens';
import { Input } from '../validation/input';

@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  constructor(@Inject(DB) private readonly db: Db, @Inject(REDIS) private readonly redis: IORedis) {}

  @Get('healthz')
  @Input({})
  healthz() {
    return { status: 'ok' };
  }

  /** Ready when the database and Redis answer. */
  @Get('readyz')
  @Input({})
  async readyz(@Res({ passthrough: true }) reply: FastifyReply) {
    const [database, redis] = await Promise.all([
      this.probe(() => this.db.$queryRaw`SELECT 1`),
      this.probe(() => this.redis.ping()),
    ]);
    const ready = database === 'ok' && redis === 'ok';
    reply.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready', checks: { database, redis } };
  }

  @Get('metrics')
  @Input({})
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
