import { HttpCode, Inject, Injectable, RequestMapping, RequestMethod, SetMetadata, applyDecorators, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { z } from 'zod';
import { bodySchema, routerPath, type Catalog, type RouteContract } from '../../../../libs/contracts/src';
import { REGIONS, TIER_NAMES, UnprocessableError, ValidationError, type Config, type ConsulVersionEntry, type Role } from '../../../../libs/core/src';
import { AnyRole, Public } from '../auth/principal';
import { CONFIG } from '../tokens';

/**
 * Every route is mounted from its contract (libs/contracts): its method and path, who may call
 * it, and what its path, query and body may hold, checked at the edge before the handler runs
 * (after authentication, so an anonymous caller learns nothing about a route's inputs). A part a
 * route does not declare must be empty: no query parameters, no body. The handler receives the
 * parsed values. Rules that need the state of a cluster (it is Running, a name is free) stay in
 * the services.
 */
export const ROUTE_CONTRACT = 'route:contract';

const METHODS: Record<RouteContract['method'], RequestMethod> = {
  GET: RequestMethod.GET, POST: RequestMethod.POST, PATCH: RequestMethod.PATCH, PUT: RequestMethod.PUT, DELETE: RequestMethod.DELETE,
};

/** Mounts a handler as the route its contract describes. */
export function Route(contract: RouteContract): MethodDecorator {
  const success = Object.keys(contract.answers).map(Number).filter((s) => s >= 200 && s < 300).sort((a, b) => a - b)[0];
  return applyDecorators(
    RequestMapping({ path: routerPath(contract.path), method: METHODS[contract.method] }),
    SetMetadata(ROUTE_CONTRACT, contract),
    ...(success ? [HttpCode(success)] : []),
    // Session routes read the console cookie themselves; the bearer guard does not apply to them.
    ...(contract.auth === 'bearer' ? [] : [Public()]),
    ...(contract.roles.length ? [AnyRole(...(contract.roles as Role[]))] : []),
  );
}

/** The catalog the API checks requests against: its regions and tiers, and the versions its configuration offers. */
export const catalogOf = (config: { readonly versions: Config['versions'] | readonly ConsulVersionEntry[] }): Catalog => ({
  regions: REGIONS.map((r) => r.name),
  tiers: TIER_NAMES,
  versions: config.versions.map(({ version, status }) => ({ version, status })),
});

const NONE = z.strictObject({});
/** Path parameters of a route that declares none: Nest gives none. */
const ANY_PARAMS = z.object({});
const NO_BODY = z.union([z.undefined(), z.null(), z.strictObject({})], { error: 'this request takes no body' });

type Part = 'params' | 'query' | 'body';

/** Turns the first zod issue into the API's 400: a code, a message naming the field and what to send. */
function refusal(part: Part, issue: z.core.$ZodIssue, schema: z.ZodType, value: unknown): ValidationError | UnprocessableError {
  const path = issue.path.map(String);
  const field = path.join('.');
  const nested = path.filter((p) => !/^\d+$/.test(p)).join('_');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => [...path, k].join('.'));
    if (part === 'query') return new ValidationError('unknown_parameter', `unknown query parameter(s): ${keys.join(', ')}; this route takes ${fieldsOf(schema).join(', ') || 'none'}`, { field: keys[0], allowed: fieldsOf(schema) });
    if (part === 'params') return new ValidationError('not_found', 'no such route');
    if (path.length > 0) return new ValidationError(`invalid_${nested}`, `unknown ${field} field(s): ${issue.keys.join(', ')}`, { field });
    return new ValidationError('unknown_field', `unknown field(s): ${keys.join(', ')}`, { field: keys[0], allowed: fieldsOf(schema) });
  }
  const custom = issue.code === 'custom' ? (issue.params as { code?: string; allowed?: unknown; status?: number } | undefined) : undefined;
  const allowed = custom?.allowed ?? (issue.code === 'invalid_value' ? issue.values : undefined);
  const details = { field, ...(allowed ? { allowed } : {}) };
  if (custom?.code && custom.status === 422) {
    // Well formed but refused for what it asks (a CIDR with host bits set): 422, with what the rule knows (the network to send).
    const { code, status: _status, ...known } = custom;
    return new UnprocessableError(code, issue.message, { field, ...known });
  }
  if (custom?.code) return new ValidationError(custom.code, issue.message, details);
  if (path.length === 0) return new ValidationError(part === 'body' ? 'invalid_body' : `invalid_${part}`, issue.message);
  // A required top-level field left out (or null) is missing; anything else is invalid, named by its path.
  const missing = path.length === 1 && issue.code === 'invalid_type' && valueAt(value, path) == null;
  const message = issue.message.startsWith(field) ? issue.message : `${field}: ${issue.message}`;
  return new ValidationError(missing ? `missing_${path[0]}` : `invalid_${nested}`, missing ? `${field} is required` : message, details);
}

/** Parses `value` with a route's schema, or throws the 400 its first problem calls for. */
export function parseInput<S extends z.ZodType>(part: Part, schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw refusal(part, r.error.issues[0]!, schema, value);
  return r.data;
}

/** Runs each route's contract; registered after the AuthGuard. */
@Injectable()
export class InputGuard implements CanActivate {
  private readonly bodies = new WeakMap<object, z.ZodType | null>();
  private readonly catalog: Catalog;
  constructor(private readonly reflector: Reflector, @Inject(CONFIG) config: Config) {
    this.catalog = catalogOf(config);
  }

  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const contract = this.reflector.get<RouteContract | undefined>(ROUTE_CONTRACT, ctx.getHandler());
    // A route without a contract is a programming error the route inventory test catches; at run
    // time it gets the strictest reading: no query, no body.
    const req = ctx.switchToHttp().getRequest<{ params?: unknown; query?: unknown; body?: unknown }>();
    req.params = parseInput('params', contract?.params ?? ANY_PARAMS, req.params ?? {});
    // The common cases skip zod: no query where none is taken, no body where none is taken.
    if (contract?.query || !isEmpty(req.query)) req.query = parseInput('query', contract?.query ?? NONE, req.query ?? {});
    for (const [name, h] of Object.entries(contract?.headers ?? {})) {
      const value = (req as { headers?: Record<string, unknown> }).headers?.[name.toLowerCase()];
      if (value === undefined) continue;
      const r = h.schema.safeParse(value);
      if (!r.success) throw new ValidationError(`invalid_${name.toLowerCase().replace(/-/g, '_')}`, r.error.issues[0]!.message, { field: name });
    }
    const body = contract ? this.bodyOf(contract) : undefined;
    if (body || req.body != null) req.body = parseInput('body', body ?? NO_BODY, req.body);
    return true;
  }

  private bodyOf(contract: RouteContract): z.ZodType | undefined {
    let s = this.bodies.get(contract);
    if (s === undefined) {
      s = bodySchema(contract, this.catalog) ?? null;
      this.bodies.set(contract, s);
    }
    return s ?? undefined;
  }
}

/** The top-level field names of an object schema (optional or not), for "allowed" in a refusal. */
function fieldsOf(schema: z.ZodType): string[] {
  let inner: z.ZodType = schema;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodPipe) inner = inner instanceof z.ZodOptional ? (inner.unwrap() as z.ZodType) : (inner.in as z.ZodType);
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

function isEmpty(v: unknown): boolean {
  if (v == null) return true;
  for (const _ in v as object) return false;
  return true;
}
