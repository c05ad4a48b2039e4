/**
 * Errors a caller can cause. Each maps to one HTTP status in one place
 * (apps/api's error filter); the message says what to change.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  constructor(readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
  }
}

/** The error body every answer of ours carries: `{ error: { code, message, details? } }` (a DomainError, or its parts). */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export function errorBody(e: Pick<DomainError, 'code' | 'message' | 'details'>): ErrorBody;
export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody;
export function errorBody(a: string | Pick<DomainError, 'code' | 'message' | 'details'>, message?: string, details?: Record<string, unknown>): ErrorBody {
  const e = typeof a === 'string' ? { code: a, message: message ?? '', details } : a;
  return { error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
}

export class ValidationError extends DomainError {
  readonly status = 400;
}
export class UnauthenticatedError extends DomainError {
  readonly status = 401;
}
export class ForbiddenError extends DomainError {
  readonly status = 403;
}
export class NotFoundError extends DomainError {
  readonly status = 404;
}
/** The route exists, but not for this method; `allow` lists the methods it takes (sent as the Allow header). */
export class MethodNotAllowedError extends DomainError {
  readonly status = 405;
  constructor(readonly allow: string, code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}
export class ConflictError extends DomainError {
  readonly status = 409;
}
/** What was asked for existed but is gone for good (a secret handed out once, a token revoked). */
export class GoneError extends DomainError {
  readonly status = 410;
}
export class UnprocessableError extends DomainError {
  readonly status = 422;
}
export class UnavailableError extends DomainError {
  readonly status = 503;
}
/** Something we depend on (a cluster's Consul API) did not answer as it should. */
export class BadGatewayError extends DomainError {
  readonly status = 502;
}
