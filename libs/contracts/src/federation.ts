import { z } from 'zod';
import { instant, nullableInstant } from './fields';
import { CLUSTER_ID } from './operations';
import { ROLE, route } from './route';

/**
 * A federation token as POST /v1/clusters/{id}/federation-token hands it out: `mcf1.` and 43
 * base64url characters (32 random bytes). Only its hash is kept; it names its primary.
 */
export const FEDERATION_TOKEN_PATTERN = /^mcf1\.[A-Za-z0-9_-]{43}$/;
export const FEDERATION_TOKEN_RULE = 'the token POST /v1/clusters/{primaryId}/federation-token handed out (mcf1. and 43 characters)';

export const FEDERATION_TOKEN = z.strictObject({
  token: z.string().meta({ description: 'Pass as federationToken when creating the secondary (POST /v1/clusters). Shown this once; single-use' }),
  primaryClusterId: z.uuid(),
  primaryDatacenter: z.string(),
  expiresAt: instant,
}).meta({ id: 'FederationToken' });
export type FederationTokenView = z.output<typeof FEDERATION_TOKEN>;

export const FEDERATION_ROLES = ['primary', 'secondary', 'none'] as const;
/**
 * healthy: every member Running and healthy; degraded: a member is not (its state says which);
 * primary-missing: a secondary whose primary was deleted (HCS's PRIMARY_DATACENTER_MISSING); none: no federation.
 */
export const FEDERATION_STATES = ['healthy', 'degraded', 'primary-missing', 'none'] as const;

export const FEDERATION_MEMBER = z.strictObject({
  clusterId: z.uuid(),
  name: z.string(),
  datacenter: z.string(),
  region: z.string(),
  state: z.string(),
  health: z.string(),
  runningSince: nullableInstant,
}).meta({ id: 'FederationMember' });
export type FederationMemberView = z.output<typeof FEDERATION_MEMBER>;

export const FEDERATION = z.strictObject({
  role: z.enum(FEDERATION_ROLES).meta({ description: 'What this cluster is in its federation' }),
  state: z.enum(FEDERATION_STATES),
  primary: FEDERATION_MEMBER.nullable().meta({ description: 'null for a cluster on its own' }),
  secondaries: z.array(FEDERATION_MEMBER).meta({ description: 'The live secondaries (not deleted), oldest first' }),
}).meta({ id: 'Federation' });
export type FederationView = z.output<typeof FEDERATION>;

export const FEDERATION_ROUTES = {
  createFederationToken: route({
    id: 'createFederationToken', method: 'POST', path: '/v1/clusters/{id}/federation-token', tag: 'federation', auth: 'bearer', roles: [ROLE.write],
    summary: 'A federation token of this (Running) cluster: create a cluster with it (federationToken) and that cluster joins this one\'s federation as a secondary. '
      + 'Single-use, valid for FEDERATION_TOKEN_TTL_MS (default 1 h), only in this tenant; a secondary cannot issue one',
    params: CLUSTER_ID, answers: { 201: FEDERATION_TOKEN },
  }),
  getFederation: route({
    id: 'getFederation', method: 'GET', path: '/v1/clusters/{id}/federation', tag: 'federation', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'The federation this cluster belongs to: its primary, the live secondaries and their state',
    params: CLUSTER_ID, answers: { 200: FEDERATION },
  }),
};
