import { z } from 'zod';

/**
 * A route of the API as its callers see it: method, path, who may call it, what its path, query
 * and body may hold, and what it answers with each status. The API serves and checks routes from
 * these (its controllers mount them, its input guard parses with them, its answers are checked
 * against them in tests), the OpenAPI document is generated from them, and the console and the
 * CLI type their calls with them. A rule of a request is written here and nowhere else.
 */
export interface RouteContract<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  A extends Answers = Answers,
> {
  /** A name for the OpenAPI operationId and for errors in tests: `createCluster`. */
  readonly id: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** OpenAPI style: `/v1/clusters/{id}`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  /** bearer: an Entra ID token (or the console session with CSRF on changes); session: the console cookie; none: public. */
  readonly auth: 'bearer' | 'session' | 'none';
  /** Roles of which the caller needs one (bearer routes); empty: any signed-in caller. */
  readonly roles: readonly string[];
  readonly params?: P;
  readonly query?: Q;
  /** A body schema that needs the catalog (known regions, tiers, versions) is a function of it. */
  readonly body?: B | ((catalog: Catalog) => B);
  /** What each success status answers with (errors always answer with ERROR_BODY). */
  readonly answers: A;
  /** Request headers the route reads, each checked (when sent) with its schema. */
  readonly headers?: Readonly<Record<string, { readonly required: boolean; readonly description: string; readonly schema: z.ZodType }>>;
  readonly deprecated?: boolean;
  /** Left out of the OpenAPI document (the identity provider's redirect back). */
  readonly hidden?: boolean;
}

/** The roles of an Entra ID token (app roles of the API's registration) that routes ask for. */
export const ROLE = { read: 'Clusters.Read', write: 'Clusters.ReadWrite', sre: 'Platform.SRE' } as const;
export type Role = (typeof ROLE)[keyof typeof ROLE];

/** JSON answers by status; `text` for a non-JSON body (CSV, Prometheus), `redirect` for a 302, `empty` for a 204. */
export type Answer = z.ZodType | { readonly text: string } | 'redirect' | 'empty';
export type Answers = Readonly<Partial<Record<number, Answer>>>;

/** What the catalog-dependent rules check against: GET /v1/regions, /v1/tiers and /v1/versions. */
export interface Catalog {
  readonly regions: readonly string[];
  readonly tiers: readonly string[];
  readonly versions: ReadonlyArray<{ readonly version: string; readonly status: string }>;
}

export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, A extends Answers>(
  c: Omit<RouteContract<P, Q, B, A>, 'roles'> & { roles?: readonly string[] },
): RouteContract<P, Q, B, A> {
  return { ...c, roles: c.roles ?? [] };
}

/** The body schema of a route, with the catalog where its rules need it. */
export function bodySchema(c: RouteContract, catalog: Catalog): z.ZodType | undefined {
  return typeof c.body === 'function' ? c.body(catalog) : c.body;
}

/** The path as a router writes it: `/v1/clusters/:id`. */
export const routerPath = (path: string) => path.replace(/\{([^}]+)\}/g, ':$1');

/** The parsed body a route's handler receives. */
export type BodyOf<C> = C extends RouteContract<z.ZodType, z.ZodType, infer B> ? z.output<B> : never;
/** The parsed query a route's handler receives. */
export type QueryOf<C> = C extends RouteContract<z.ZodType, infer Q> ? z.output<Q> : never;
/** The JSON a route answers with `status`. */
export type AnswerOf<C, S extends number = 200> =
  C extends RouteContract<z.ZodType, z.ZodType, z.ZodType, infer A> ? (S extends keyof A ? (A[S] extends z.ZodType ? z.output<A[S]> : never) : never) : never;

/** Path parameters: exactly these keys. */
export const params = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);
/** Query parameters: these (each given at most once), nothing else. */
export const query = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);
/** A JSON object body with exactly these fields. */
export const body = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, { error: (i) => (i.code === 'invalid_type' ? 'the request body must be a JSON object' : undefined) });
/** A body that may be absent or an object with these fields. */
export const optionalBody = <T extends z.ZodRawShape>(shape: T) => body(shape).optional();

/**
 * A refusal with a code of its own (and, where it helps, the values allowed): zod's custom issues
 * carry it in `params`, which the API turns into `{ error: { code, message, details } }`.
 */
export const because = (code: string, message: string, extra: Record<string, unknown> = {}) => ({ message, params: { code, ...extra } });
