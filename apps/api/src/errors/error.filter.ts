import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, MethodNotAllowedError, errorBody, isDatabaseUnavailable } from '../../../../libs/core/src';

/** Seconds a client is asked to wait before repeating a request refused for an unreachable database. */
const DATABASE_RETRY_AFTER_S = 5;

const HTTP_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  410: 'gone',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
};

/**
 * The one place where errors become HTTP: `{ error: { code, message, details? } }`.
 * The database out of reach (down, restarting, connections cut) is a 503 with
 * Retry-After: the request may be repeated, and the API recovers by itself
 * when the database is back. Anything unexpected is a 500 with the request id
 * and no stack.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly log = new Logger('http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const request = ctx.getRequest<FastifyRequest>();
    let status = 500;
    let body: { code: string; message: string; details?: Record<string, unknown> };
    if (exception instanceof DomainError) {
      status = exception.status;
      body = { code: exception.code, message: exception.message, ...(exception.details ? { details: exception.details } : {}) };
      if (status === 401) reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      if (exception instanceof MethodNotAllowedError) reply.header('Allow', exception.allow);
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const res = exception.getResponse();
      const message = typeof res === 'string' ? res : String((res as { message?: unknown }).message ?? exception.message);
      body = { code: HTTP_CODES[status] ?? `http_${status}`, message: status === 404 ? `no route ${request.method} ${request.url.split('?')[0]}` : message };
    } else if (isDatabaseUnavailable(exception)) {
      status = 503;
      reply.header('Retry-After', String(DATABASE_RETRY_AFTER_S));
      this.log.warn({ msg: 'database unavailable', requestId: request.id, err: exception instanceof Error ? exception.message.split('\n').slice(-1)[0] : String(exception) });
      body = { code: 'database_unavailable', message: 'the control plane database cannot be reached right now, or is too busy; try again shortly (a create repeated with the same Idempotency-Key is never done twice)' };
    } else if (isFastifyClientError(exception)) {
      status = exception.statusCode;
      body = { code: HTTP_CODES[status] ?? 'bad_request', message: exception.message };
    } else {
      this.log.error({ msg: 'unhandled error', requestId: request.id, err: exception instanceof Error ? exception.message : String(exception) });
      body = { code: 'internal', message: `internal error (request ${request.id})` };
    }
    void reply.status(status).send(errorBody(body));
  }
}

function isFastifyClientError(e: unknown): e is { statusCode: number; message: string } {
  const code = (e as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' && code >= 400 && code < 500;
}
