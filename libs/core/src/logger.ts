import { ConsoleLogger, type LoggerService } from '@nestjs/common';

/** Structured logs: JSON lines in production, pretty in development. */
export function createLogger(app: string, config: { LOG_FORMAT: 'json' | 'pretty'; NODE_ENV: string }): LoggerService {
  const format = config.LOG_FORMAT;
  return new ConsoleLogger(app, { json: format === 'json', colors: format === 'pretty' && process.stdout.isTTY, logLevels: config.NODE_ENV === 'test' ? ['error', 'warn', 'fatal'] : ['log', 'error', 'warn', 'fatal'] });
}
