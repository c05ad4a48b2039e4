import { createLogger } from '../../../libs/core/src';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import type { Config } from '../../../libs/core/src';
import { WorkerModule } from './worker.module';

/** Builds and starts the worker (used by main.ts and in-process by tests). */
export async function startWorker(config: Config): Promise<INestApplicationContext> {
  const ctx = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { logger: createLogger('worker', config), abortOnError: false });
  ctx.enableShutdownHooks();
  await ctx.init();
  return ctx;
}
