import { z } from 'zod';
import { instant, nullableInstant, uuid } from './fields';
import { CLUSTER_ID, OPERATION, OPERATION_ID } from './operations';
import { ROLE, optionalBody, route } from './route';

export const ISSUED_TOKEN = z.strictObject({
  accessorId: z.string(),
  description: z.string(),
  createdAt: instant,
  createdBy: z.string(),
  state: z.string().meta({ description: 'creating, active, revoking, revoked' }),
  operationId: z.string().nullable(),
  collected: z.boolean(),
  collectedAt: nullableInstant,
  collectBy: nullableInstant.meta({ description: 'Until then its secret may be collected; after it, an uncollected token is revoked' }),
  revokedAt: nullableInstant,
  revokeReason: z.string().nullable(),
}).meta({ id: 'IssuedToken' });
export type IssuedTokenView = z.output<typeof ISSUED_TOKEN>;

export const TOKEN_SECRET = z.strictObject({
  accessorId: z.string(),
  secretId: z.string().meta({ description: 'The ACL token: shown this once' }),
  description: z.string(),
  operationId: z.string().nullable(),
}).meta({ id: 'TokenSecret' });
export type TokenSecretView = z.output<typeof TOKEN_SECRET>;

export const PENDING_TOKEN = z.strictObject({
  operation: OPERATION,
  collect: z.string().meta({ description: 'POST here once the operation has Succeeded: the secret, once' }),
  message: z.string(),
}).meta({ id: 'PendingToken' });
export type PendingTokenView = z.output<typeof PENDING_TOKEN>;

export const TOKEN_ROUTES = {
  createToken: route({
    id: 'createToken', method: 'POST', path: '/v1/clusters/{id}/tokens', tag: 'tokens', auth: 'bearer', roles: [ROLE.write],
    summary: 'Create an ACL management token. 201 with its secret when it is made within TOKEN_WAIT_MS (default 30 s); else 202 with the operation and a collect link, where the secret is handed out once',
    params: CLUSTER_ID,
    body: optionalBody({ description: z.string({ error: 'description must be a string of at most 256 characters' }).max(256, 'description must be a string of at most 256 characters').optional() }),
    answers: { 201: TOKEN_SECRET, 202: PENDING_TOKEN },
  }),
  collectToken: route({
    id: 'collectToken', method: 'POST', path: '/v1/operations/{id}/token', tag: 'tokens', auth: 'bearer', roles: [ROLE.write, ROLE.sre],
    summary: "Collect the secret of the token a create-token operation made: once, by the user who asked for it (or an operator, Platform.SRE of the operator's tenant). "
      + 'A POST because it uses the secret up: with the console session it needs X-CSRF-Token like every change. A second collect, or one after the collection window '
      + '(TOKEN_COLLECT_WINDOW_MS, the token is then revoked), answers 410',
    params: OPERATION_ID, answers: { 200: TOKEN_SECRET },
  }),
  collectTokenByGet: route({
    id: 'collectTokenByGet', method: 'GET', path: '/v1/operations/{id}/token', tag: 'tokens', auth: 'bearer', roles: [ROLE.read, ROLE.write, ROLE.sre],
    summary: 'No longer collects: answers 405 with Allow: POST. Collect with POST /v1/operations/{id}/token', deprecated: true,
    params: OPERATION_ID, answers: { 405: 'empty' },
  }),
  listTokens: route({
    id: 'listTokens', method: 'GET', path: '/v1/clusters/{id}/tokens', tag: 'tokens', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'The tokens made through the control plane on this cluster, newest first (never their secrets)',
    params: CLUSTER_ID, answers: { 200: z.strictObject({ tokens: z.array(ISSUED_TOKEN) }) },
  }),
  revokeToken: route({
    id: 'revokeToken', method: 'DELETE', path: '/v1/clusters/{id}/tokens/{accessorId}', tag: 'tokens', auth: 'bearer', roles: [ROLE.write],
    summary: 'Revoke a token made through the control plane: 202 with a revoke-token operation that deletes it in Consul (repeated while it runs: the same operation). The management token and tokens made elsewhere are refused',
    params: CLUSTER_ID.extend({ accessorId: uuid('a token AccessorID (as GET /v1/clusters/{id}/tokens lists them)', 'invalid_accessor_id') }),
    answers: { 202: z.strictObject({ operation: OPERATION.optional(), token: ISSUED_TOKEN }) },
  }),
};
