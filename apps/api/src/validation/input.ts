import { Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { z } from 'zod';
import { ValidationError } from '../../../../libs/core/src';

/**
 * One schema per route: what its path, query and body may hold, checked at the edge before the
 * handler runs (after authentication, so an anonymous caller learns nothing about a route's
 * inputs). A part a route does not declare must be empty: no query parameters, no body. The
 * handler receives the parsed values. Semantic rules that need the catalog or the database (a
 * known region, a free name) stay in the commands; this layer guarantees the shapes and types.
 */
export interface RouteInput {
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
}

export const ROUTE_INPUT = 'route:input';

/** Declares a route's inputs (see RouteInput). Every route has one; test/api-input.property.test.ts checks it. */
export const Input = (input: RouteInput) => SetMetadata(ROUTE_INPUT, input);

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** A strict UUID (RFC 4122 text form, any version), as every id in a path; `code` overrides the refusal's code. */
export const uuid = (what: string, code?: string) =>
  z.string().refine((v) => UUID.test(v), { message: `${what} must be a UUID (8-4-4-4-12 hexadecimal digits)`, params: code ? { code } : undefined });

/** Path parameters: exactly these keys. */
export const params = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);
/** Query parameters: optional strings, nothing else. */
export const query = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);
/** A JSON object body with exactly these (optional unless stated) fields. */
export const body = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape, { error: (i) => (i.code === 'invalid_type' ? 'the request body must be a JSON object' : undefined) });
/** A body that may be absent or an object with these fields. */
export const optionalBody = <T extends z.ZodRawShape>(shape: T) => body(shape).optional();

const NONE = z.strictObject({});
/** Path parameters of a route that declares none: Nest gives none. */
const ANY_PARAMS = z.object({});
const NO_BODY = z.union([z.undefined(), z.null(), z.strictObject({})], { error: 'this request takes no body' });

type Part = 'params' | 'query' | 'body';

/** Turns the first zod issue into the API's 400: a code, a message naming the field and what to send. */
function refusal(part: Part, issue: z.core.$ZodIssue, schema: z.ZodType, value: unknown): ValidationError {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => [...path, k].join('.'));
    if (part === 'query') return new ValidationError('unknown_parameter', `unknown query parameter(s): ${keys.join(', ')}; this route takes ${fieldsOf(schema).join(', ') || 'none'}`, { field: keys[0], allowed: fieldsOf(schema) });
    if (part === 'params') return new ValidationError('not_found', 'no such route');
    return new ValidationError('unknown_field', `unknown field(s): ${keys.join(', ')}`, { field: keys[0], ...(path.length === 0 ? { allowed: fieldsOf(schema) } : {}) });
  }
  const custom = issue.code === 'custom' ? (issue.params as { code?: string } | undefined)?.code : undefined;
  if (custom) return new ValidationError(custom, issue.message, { field: path.join('.') });
  if (path.length === 0) return new ValidationError(part === 'body' ? 'invalid_body' : `invalid_${part}`, issue.message);
  const field = path.join('.');
  const code = `invalid_${path.filter((p) => !/^\d+$/.test(p)).join('_')}`;
  const missing = issue.code === 'invalid_type' && valueAt(value, path) === undefined;
  return new ValidationError(missing ? `missing_${path[0]}` : code, missing ? `${field} is required` : `${field}: ${issue.message}`, { field });
}

/** Runs each route's RouteInput; registered after the AuthGuard. */
@Injectable()
export class InputGuard implements CanActivate {
  private readonly cache = new WeakMap<object, RouteInput | null>();
  constructor(private readonly reflector: Reflector) {}

  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const handler = ctx.getHandler();
    let input = this.cache.get(handler);
    if (input === undefined) {
      input = this.reflector.get<RouteInput | undefined>(ROUTE_INPUT, handler) ?? null;
      this.cache.set(handler, input);
    }
    // A route without a declaration is a programming error the route inventory test catches; at
    // run time it gets the strictest reading: no query, no body.
    const req = ctx.switchToHttp().getRequest<{ params?: unknown; query?: unknown; body?: unknown }>();
    req.params = check('params', input?.params ?? ANY_PARAMS, req.params ?? {});
    req.query = check('query', input?.query ?? NONE, req.query ?? {});
    req.body = check('body', input?.body ?? NO_BODY, req.body);
    return true;
  }
}

function check(part: Part, schema: z.ZodType, value: unknown): unknown {
  const r = schema.safeParse(value);
  if (!r.success) throw refusal(part, r.error.issues[0], schema, value);
  return r.data;
}

/** The top-level field names of an object schema (optional or not), for "allowed" in a refusal. */
function fieldsOf(schema: z.ZodType): string[] {
  const inner = schema instanceof z.ZodOptional ? schema.unwrap() : schema;
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

/** The value at a path (own properties only), undefined where it stops. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}
