import { z } from 'zod';
import { ERROR_BODY } from './errors';
import { bodySchema, type Answer, type Catalog, type RouteContract } from './route';

type Json = Record<string, unknown>;

/** JSON Schema of one zod schema, its named parts (meta id) moved to `components`. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output', components: Json): Json {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', reused: 'inline', cycles: 'ref' }) as Json;
  const defs = (json.$defs ?? {}) as Record<string, Json>;
  delete json.$defs;
  delete json.$schema;
  for (const [id, def] of Object.entries(defs)) components[id] = relink(def);
  const root = relink(json);
  // A named schema at the root is itself a component: refer to it.
  const id = typeof root.id === 'string' ? root.id : undefined;
  if (id) {
    delete root.id;
    components[id] = root;
    return { $ref: `#/components/schemas/${id}` };
  }
  return root;
}

/** `#/$defs/X` (a schema's own definitions) becomes `#/components/schemas/X`; ids go (they are the component's name). */
function relink<T>(v: T): T {
  if (Array.isArray(v)) return v.map(relink) as T;
  if (v === null || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) {
    if (k === '$ref' && typeof x === 'string') out[k] = x.replace(/^#\/\$defs\//, '#/components/schemas/');
    else if (k === 'id' && typeof x === 'string') continue;
    else out[k] = relink(x);
  }
  return out as T;
}

function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query', components: Json): Json[] {
  if (!schema) return [];
  const json = schemaOf(schema, 'input', components);
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({
    name, in: where, required: where === 'path' || required.has(name), schema: s,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
  }));
}

function responseOf(answer: Answer, components: Json): Json {
  if (answer === 'redirect') return { description: 'A redirect (Location)' };
  if (answer === 'empty') return { description: 'No body' };
  if ('text' in answer) return { description: answer.text, content: { [answer.text]: { schema: { type: 'string' } } } };
  return { description: 'OK', content: { 'application/json': { schema: schemaOf(answer as z.ZodType, 'output', components) } } };
}

export interface DocumentInfo {
  title: string;
  description: string;
  version: string;
  /** The console session cookie's name (the session auth scheme). */
  sessionCookie: string;
}

/** The OpenAPI 3.1 document of these routes, from their contracts: nothing about a route is written for it alone. */
export function openApiDocument(routes: readonly RouteContract[], catalog: Catalog, info: DocumentInfo): Json {
  const components: Json = {};
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    if (r.hidden) continue;
    const body = bodySchema(r, catalog);
    const responses: Json = {};
    for (const [status, answer] of Object.entries(r.answers)) if (answer) responses[status] = responseOf(answer, components);
    responses['4XX'] = { description: 'Refused: what to fix is in error.message', content: { 'application/json': { schema: schemaOf(ERROR_BODY, 'output', components) } } };
    const op: Json = {
      operationId: r.id,
      summary: r.summary,
      tags: [r.tag],
      ...(r.deprecated ? { deprecated: true } : {}),
      parameters: [
        ...parametersOf(r.params, 'path', components),
        ...parametersOf(r.query, 'query', components),
        ...Object.entries(r.headers ?? {}).map(([name, h]) => ({ name, in: 'header', required: h.required, description: h.description, schema: { type: 'string' } })),
      ],
      ...(body ? { requestBody: { required: !body.safeParse(undefined).success, content: { 'application/json': { schema: schemaOf(body, 'input', components) } } } } : {}),
      responses,
      ...(r.auth === 'bearer' ? { security: [{ bearer: [] }, { session: [] }] } : r.auth === 'session' ? { security: [{ session: [] }] } : { security: [] }),
      ...(r.roles.length ? { 'x-roles': r.roles } : {}),
    };
    paths[r.path] = { ...(paths[r.path] ?? {}), [r.method.toLowerCase()]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, description: info.description, version: info.version },
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Microsoft Entra ID access token for the API' },
        session: { type: 'apiKey', in: 'cookie', name: info.sessionCookie, description: 'The console session (changes also need X-CSRF-Token from GET /auth/session)' },
      },
    },
  };
}
