import { z } from 'zod';
import { instant, nullableInstant, uuid } from './fields';
import { ROLE, params, route } from './route';

export const OPERATION_STATES = ['Queued', 'Running', 'Succeeded', 'Failed', 'Canceled'] as const;

export const OPERATION_STEP = z.strictObject({
  name: z.string(),
  state: z.enum(['Running', 'Succeeded', 'Failed']),
  startedAt: instant,
  finishedAt: instant.optional(),
  durationMs: z.number().optional(),
  detail: z.string().optional(),
}).meta({ id: 'OperationStep' });
export type OperationStep = z.output<typeof OPERATION_STEP>;

export const OPERATION_ERROR = z.looseObject({ code: z.string(), message: z.string() });
export type OperationError = z.output<typeof OPERATION_ERROR>;

export const OPERATION = z.strictObject({
  id: z.uuid(),
  kind: z.string(),
  state: z.enum(OPERATION_STATES),
  progress: z.number().int().min(0).max(100),
  clusterId: z.uuid(),
  currentStep: z.string().nullable(),
  steps: z.array(OPERATION_STEP),
  attempts: z.number().int(),
  error: OPERATION_ERROR.optional().meta({ description: 'Why it failed: { code, message }' }),
  createdAt: instant,
  startedAt: nullableInstant,
  finishedAt: nullableInstant,
}).meta({ id: 'Operation' });
export type OperationView = z.output<typeof OPERATION>;

export const AUDIT_EVENT = z.strictObject({
  id: z.string(),
  action: z.string(),
  actor: z.string(),
  operationId: z.string().nullable(),
  details: z.unknown(),
  createdAt: instant,
}).meta({ id: 'AuditEvent' });
export type AuditEventView = z.output<typeof AUDIT_EVENT>;

export const OPERATION_ID = params({ id: uuid('the operation id') });
/** A cluster's own routes (`/v1/clusters/{id}`...). */
export const CLUSTER_ID = params({ id: uuid('the cluster id') });
/** Routes under a cluster named `{clusterId}` (its operations, events, snapshots). */
export const CLUSTER_PATH = params({ clusterId: uuid('the cluster id') });
/** A 202 that answers with the operation doing the work. */
export const ACCEPTED = z.strictObject({ operation: OPERATION });

/** Idempotency-Key: 1 to 128 printable ASCII characters. */
export const IDEMPOTENCY_KEY = z.string().regex(/^[\x21-\x7e]{1,128}$/, 'Idempotency-Key must be 1 to 128 printable ASCII characters');
/**
 * The header of a POST that queues an operation: a client that lost the answer (a connection
 * reset, an API replica that died) sends the request again with the same key and gets the
 * first answer, the same operation, and nothing is done twice. Keys are per tenant.
 */
export const IDEMPOTENCY_HEADER = {
  'Idempotency-Key': { required: false, description: 'Retrying with the same key returns the same answer (the same operation); the same key with another request is a 422', schema: IDEMPOTENCY_KEY },
} as const;

export const OPERATION_ROUTES = {
  getOperation: route({
    id: 'getOperation', method: 'GET', path: '/v1/operations/{id}', tag: 'operations', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'An operation: its state, progress and steps', params: OPERATION_ID, answers: { 200: OPERATION },
  }),
  cancelOperation: route({
    id: 'cancelOperation', method: 'POST', path: '/v1/operations/{id}/cancel', tag: 'operations', auth: 'bearer', roles: [ROLE.write],
    summary: 'Cancel an operation that has not started yet (a running one says why it cannot)', params: OPERATION_ID, answers: { 200: OPERATION },
  }),
  listOperations: route({
    id: 'listOperations', method: 'GET', path: '/v1/clusters/{clusterId}/operations', tag: 'operations', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "The cluster's operations, newest first", params: CLUSTER_PATH, answers: { 200: z.strictObject({ operations: z.array(OPERATION) }) },
  }),
  listEvents: route({
    id: 'listEvents', method: 'GET', path: '/v1/clusters/{clusterId}/events', tag: 'operations', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "The cluster's audit events, oldest first", params: CLUSTER_PATH, answers: { 200: z.strictObject({ events: z.array(AUDIT_EVENT) }) },
  }),
};
