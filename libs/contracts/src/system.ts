import { z } from 'zod';
import { ROLE, query, route } from './route';

export const REGION = z.strictObject({ name: z.string(), displayName: z.string(), geography: z.string() }).meta({ id: 'Region' });
export const VERSION = z.strictObject({ version: z.string(), status: z.enum(['RECOMMENDED', 'AVAILABLE', 'PREVIEW']) }).meta({ id: 'Version' });
export const TIER = z.strictObject({
  name: z.string(),
  servers: z.number().int(),
  description: z.string(),
  billing: z.strictObject({ dimension: z.string(), unitOfMeasure: z.string(), pricePerHour: z.string(), currency: z.string() }),
}).meta({ id: 'Tier' });
export const TIER_CATALOG = z.strictObject({ planId: z.string(), currency: z.string(), tiers: z.array(TIER) });
export type RegionView = z.output<typeof REGION>;
export type VersionView = z.output<typeof VERSION>;
export type TierView = z.output<typeof TIER>;
export type TierCatalogView = z.output<typeof TIER_CATALOG>;

const READINESS = z.strictObject({ status: z.string(), checks: z.strictObject({ database: z.string(), redis: z.string() }) });
const CATALOG_ROLES = [ROLE.read, ROLE.write, ROLE.sre];

export const SYSTEM_ROUTES = {
  regions: route({
    id: 'regions', method: 'GET', path: '/v1/regions', tag: 'catalog', auth: 'bearer', roles: CATALOG_ROLES,
    summary: 'The Azure regions a cluster can be created in', answers: { 200: z.strictObject({ regions: z.array(REGION) }) },
  }),
  versions: route({
    id: 'versions', method: 'GET', path: '/v1/versions', tag: 'catalog', auth: 'bearer', roles: CATALOG_ROLES,
    summary: 'The Consul versions offered; RECOMMENDED is the default and the automatic upgrades’ target', answers: { 200: z.strictObject({ versions: z.array(VERSION) }) },
  }),
  tiers: route({
    id: 'tiers', method: 'GET', path: '/v1/tiers', tag: 'catalog', auth: 'bearer', roles: CATALOG_ROLES,
    summary: 'The tiers, their servers and their price per hour (pay as you go: one billing dimension per tier)', answers: { 200: TIER_CATALOG },
  }),
  healthz: route({
    id: 'healthz', method: 'GET', path: '/healthz', tag: 'health', auth: 'none', summary: 'The process is alive', answers: { 200: z.strictObject({ status: z.literal('ok') }) },
  }),
  readyz: route({
    id: 'readyz', method: 'GET', path: '/readyz', tag: 'health', auth: 'none', summary: 'Ready when the database and Redis answer (503 otherwise, with the same body)',
    answers: { 200: READINESS, 503: READINESS },
  }),
  metrics: route({
    id: 'metrics', method: 'GET', path: '/metrics', tag: 'health', auth: 'none', summary: 'Prometheus metrics', answers: { 200: { text: 'text/plain' } },
  }),
  notification: route({
    id: 'notification', method: 'POST', path: '/resource', tag: 'marketplace', auth: 'none',
    summary: 'Managed application notification from Azure (?sig= the shared secret): PUT creates, DELETE deletes, Failed is shown to SREs; a repeat changes nothing',
    query: query({ sig: z.string().max(512).optional() }),
    // Checked after the signature (notification.ts, Azure's documented shape): a caller without the secret learns nothing of its rules.
    body: z.unknown(),
    answers: {
      200: z.strictObject({ status: z.enum(['processed', 'duplicate']), outcome: z.string(), clusterId: z.string().optional(), operationId: z.string().optional() }),
    },
  }),
};
