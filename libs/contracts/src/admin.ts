import { z } from 'zod';
import { CLUSTER } from './clusters';
import { instant, nullableInstant, uuid } from './fields';
import { ROLE, because, body, params, query, route, type Catalog } from './route';

/** What a maintenance wave can do to each cluster it selects. */
export const WAVE_ACTIONS = ['snapshot', 'upgrade', 'rotate-gossip-key', 'rotate-certificates', 'rotate-management-token', 'rotate-ca', 'repair'] as const;
export type WaveAction = (typeof WAVE_ACTIONS)[number];

const count = (field: string, min: number, fallback: number) =>
  z.number({ error: `${field} must be a whole number of at least ${min}` }).int(`${field} must be a whole number of at least ${min}`)
    .min(min, `${field} must be a whole number of at least ${min}`).default(fallback);
const SELECTOR_KEYS = 'state, version, region, health, clusterIds';
const filter = (what: string) => z.string({ error: `selector.${what} must be a string` }).optional();

export const waveBody = (catalog: Catalog) =>
  body({
    action: z.enum(WAVE_ACTIONS, { error: `action must be one of ${WAVE_ACTIONS.join(', ')}` }),
    selector: z.strictObject({
      state: filter('state'), version: filter('version'), health: filter('health'), region: filter('region'),
      clusterIds: z.array(uuid('selector.clusterIds[]')).max(10_000).optional(),
    }, { error: (i) => (i.code === 'invalid_type' ? `selector is an object with any of ${SELECTOR_KEYS}` : undefined) }).default({}),
    params: z.strictObject({ consulVersion: z.string().optional() }).default({}),
    canaries: count('canaries', 0, 1).meta({ description: 'Clusters done first, alone; the wave stops if one fails' }),
    maxInFlight: count('maxInFlight', 1, 1),
    maxFailures: count('maxFailures', 0, 0),
  }).superRefine((b, ctx) => {
    if (b.action === 'upgrade' && !catalog.versions.some((v) => v.version === b.params.consulVersion)) {
      ctx.addIssue({ code: 'custom', path: ['params', 'consulVersion'], ...because('invalid_params', 'an upgrade wave needs params.consulVersion from GET /v1/versions') });
    }
  });
export type WaveCommand = z.output<ReturnType<typeof waveBody>>;

export const WAVE = z.strictObject({
  id: z.uuid(),
  action: z.string(),
  params: z.unknown(),
  selector: z.unknown(),
  canaries: z.number().int(),
  maxInFlight: z.number().int(),
  maxFailures: z.number().int(),
  state: z.string(),
  stateReason: z.string().nullable(),
  total: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
  clusters: z.array(z.strictObject({
    clusterId: z.string(), canary: z.boolean(), state: z.string(),
    reason: z.string().nullable().meta({ description: "Why a Skipped cluster was skipped: not Running at its turn, its upgrade pin excludes the wave's version, the wave halted" }),
    operationId: z.string().nullable(), startedAt: nullableInstant, finishedAt: nullableInstant,
  })),
  createdAt: instant,
  finishedAt: nullableInstant,
}).meta({ id: 'Wave' });
export type WaveView = z.output<typeof WAVE>;

const APPLICATION_FAILURE = z.strictObject({
  eventType: z.string(), provisioningState: z.string(), outcome: z.string(), reason: z.string().nullable(), error: z.unknown(), eventTime: instant,
});
export const FLEET_CLUSTER = CLUSTER.extend({
  tenantId: z.string(),
  managedApplication: z.strictObject({ id: z.string(), managedResourceGroupId: z.string().nullable(), failed: APPLICATION_FAILURE.nullable() }).nullable(),
}).meta({ id: 'FleetCluster' });
export type FleetClusterView = z.output<typeof FLEET_CLUSTER>;

const FILTER = z.string({ error: 'a filter is given once, as text' }).optional();

export const ADMIN_ROUTES = {
  fleet: route({
    id: 'fleet', method: 'GET', path: '/v1/admin/clusters', tag: 'admin', auth: 'bearer', roles: [ROLE.sre],
    summary: 'The whole fleet, all tenants; filter by state, version, health, region',
    query: query({ state: FILTER, version: FILTER, health: FILTER, region: FILTER }),
    answers: {
      200: z.strictObject({
        clusters: z.array(FLEET_CLUSTER),
        failedApplications: z.array(APPLICATION_FAILURE.extend({ id: z.string(), clusterId: z.string().nullable() }))
          .meta({ description: 'Managed applications that failed (or whose settings were refused) and have no cluster on this list' }),
      }),
    },
  }),
  startWave: route({
    id: 'startWave', method: 'POST', path: '/v1/admin/waves', tag: 'admin', auth: 'bearer', roles: [ROLE.sre],
    summary: 'Start a maintenance wave: { action, selector, params?, canaries, maxInFlight, maxFailures }', body: waveBody, answers: { 202: WAVE },
  }),
  getWave: route({
    id: 'getWave', method: 'GET', path: '/v1/admin/waves/{id}', tag: 'admin', auth: 'bearer', roles: [ROLE.sre],
    summary: 'A maintenance wave and each of its clusters', params: params({ id: uuid('the wave id') }), answers: { 200: WAVE },
  }),
  queuesSession: route({
    id: 'queuesSession', method: 'POST', path: '/admin/queues/session', tag: 'admin', auth: 'bearer', roles: [ROLE.sre],
    summary: 'Platform.SRE only: set the BullMQ dashboard session cookie (HttpOnly, Secure, SameSite=Strict, Path=/admin/queues, at most 1 h), then open /admin/queues',
    answers: { 200: z.strictObject({ expiresAt: instant }) },
  }),
};
