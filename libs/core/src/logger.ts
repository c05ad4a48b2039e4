import { ConsoleLogger, type LoggerService } from '@nestjs/common';

/** Structured logs: JSON lines in production, pretty in development. */
export function createLogger(app: string, format: 'json' | 'pretty'): LoggerService {
  return new ConsoleLogger(app, { json: format === 'json', colors: format === 'pretty' && process.stdout.isTTY, logLevels: process.env.NODE_ENV === 'test' ? ['error', 'warn', 'fatal'] : ['log', 'error', 'warn', 'fatal'] });
}
