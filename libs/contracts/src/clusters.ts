import { z } from 'zod';
import { CONSUL_NAME, CONSUL_NAME_RULE, RESOURCE_GROUP, RESOURCE_GROUP_RULE, UUID_PATTERN, VNET_CIDR, VNET_CIDR_RULE, instant, nullableInstant } from './fields';
import { FEDERATION_TOKEN_PATTERN, FEDERATION_TOKEN_RULE } from './federation';
import { ALLOWLIST_ENTRY, ALLOW_ANY_ADDRESS, IP_ALLOWLIST, checkAllowlist } from './ip-allowlist';
import { ACCEPTED, CLUSTER_ID, IDEMPOTENCY_HEADER, OPERATION } from './operations';
import { ROLE, because, body, route, type Catalog } from './route';
import { UPGRADE_PINS, type UpgradePin } from './upgrade-pin';

export const CLUSTER_STATES = ['Creating', 'Running', 'Updating', 'Deleting', 'Deleted', 'Failed'] as const;
export const UPGRADE_MODES = ['manual', 'automatic'] as const;
export type UpgradeMode = (typeof UPGRADE_MODES)[number];
/** A weekly maintenance window in UTC: it opens on `dayOfWeek` (0 Sunday … 6 Saturday) at `startHourUtc`:00 and lasts `hours`. */
export type UpgradeWindow = { dayOfWeek: number; startHourUtc: number; hours: number };
export type UpgradePolicy = { mode: UpgradeMode; window: UpgradeWindow | null; pin: UpgradePin };
export type SnapshotPolicy = { intervalHours: number; retention: number };

export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = { intervalHours: 24, retention: 30 };
/** Default: manual upgrades, no window, no pin. An upgrade restarts every server, so it happens only when the customer asks for it or opts in to a window. */
export const DEFAULT_UPGRADE_POLICY: UpgradePolicy = { mode: 'manual', window: null, pin: 'none' };
/** POST /rotate's `what`. */
export const ROTATIONS = ['gossip-key', 'certificates', 'management-token', 'ca'] as const;
export type Rotation = (typeof ROTATIONS)[number];

const text = (field: string) => z.string({ error: `${field} must be a string` }).max(1024, `${field} is at most 1024 characters`);
/** A required text field: absent, null or empty is `missing_<field>`. */
const required = (field: string) =>
  z.string({ error: (i) => (i.input == null ? `${field} is required` : `${field} must be a string`) })
    .max(1024, `${field} is at most 1024 characters`)
    .refine((v) => v !== '', because(`missing_${field}`, `${field} is required`));
const whole = (field: string, min: number, max: number, what: string) =>
  z.number({ error: `${field} must be ${what}` }).int(`${field} must be ${what}`).min(min, `${field} must be ${what}`).max(max, `${field} must be ${what}`);

const WINDOW_SHAPE = '{ dayOfWeek: 0-6 (Sunday 0), startHourUtc: 0-23, hours: 1-24 }';
const windowMember = (key: keyof UpgradeWindow, min: number, max: number, what: string) =>
  z.number({ error: (i) => `upgradePolicy.window.${key} ${i.input === undefined ? 'is required: ' : 'must be '}${what}` })
    .int(`upgradePolicy.window.${key} must be ${what}`).min(min, `upgradePolicy.window.${key} must be ${what}`).max(max, `upgradePolicy.window.${key} must be ${what}`);

export const UPGRADE_WINDOW = z.strictObject({
  dayOfWeek: windowMember('dayOfWeek', 0, 6, 'a whole number from 0 (Sunday) to 6 (Saturday)').meta({ description: 'Day the window opens: 0 Sunday … 6 Saturday', example: 0 }),
  startHourUtc: windowMember('startHourUtc', 0, 23, 'a whole hour of the day in UTC, from 0 to 23').meta({ description: 'Hour (UTC) the window opens', example: 2 }),
  hours: windowMember('hours', 1, 24, 'a whole number of hours from 1 to 24').meta({ description: 'How long the window stays open', example: 4 }),
}, { error: (i) => (i.code === 'invalid_type' ? `upgradePolicy.window must be an object ${WINDOW_SHAPE}, or null for none` : undefined) })
  .meta({ id: 'UpgradeWindow', description: 'A weekly maintenance window in UTC; it may run past midnight and past Saturday into Sunday' });

/** As sent: members left out keep their current value (on create, the defaults). */
export const UPGRADE_POLICY_CHANGE = z.strictObject({
  mode: z.enum(UPGRADE_MODES, { error: `upgradePolicy.mode must be one of ${UPGRADE_MODES.join(', ')}` })
    .optional().meta({ description: 'automatic: the worker upgrades the cluster to the RECOMMENDED version (GET /v1/versions) once per window occurrence; manual: only POST /upgrade' }),
  window: UPGRADE_WINDOW.nullable().optional().meta({ description: 'Required for automatic; a missing member keeps its current value, null removes the window (manual only)' }),
  pin: z.enum(UPGRADE_PINS, { error: `upgradePolicy.pin must be one of ${UPGRADE_PINS.join(', ')}` }).optional()
    .meta({ description: "How far automatic upgrades and SRE upgrade waves may move the cluster from its version: patch (same major.minor), minor (same major) or none. A version outside the pin is skipped, with the reason in the cluster's events; the customer's own POST /upgrade is not bound by it" }),
}, { error: (i) => (i.code === 'invalid_type' ? `upgradePolicy must be an object { mode: automatic | manual, window: ${WINDOW_SHAPE}, pin: ${UPGRADE_PINS.join(' | ')} }` : undefined) })
  .meta({ id: 'UpgradePolicyChange', description: 'Members left out keep their current value (on create: mode manual, no window, pin none)' });

export const SNAPSHOT_POLICY_CHANGE = z.strictObject({
  intervalHours: whole('snapshotPolicy.intervalHours', 1, 24, 'a whole number of hours from 1 to 24').optional(),
  retention: whole('snapshotPolicy.retention', 1, 365, 'a whole number from 1 to 365').optional(),
}, { error: (i) => (i.code === 'invalid_type' ? 'snapshotPolicy must be an object { intervalHours, retention }' : undefined) })
  .meta({ description: 'Scheduled snapshots: { intervalHours: 1-24 (default 24), retention: 1-365 (default 30) }; left-out members keep their value', example: { intervalHours: 24, retention: 30 } });

/** A policy change applied to the current policy; automatic upgrades need a window (the one rule that needs both). */
export function applyUpgradePolicy(change: z.output<typeof UPGRADE_POLICY_CHANGE>, current: UpgradePolicy): UpgradePolicy | { problem: string } {
  const next = { mode: change.mode ?? current.mode, window: change.window === undefined ? current.window : change.window, pin: change.pin ?? current.pin };
  if (next.mode === 'automatic' && !next.window) return { problem: `automatic upgrades need a maintenance window: set upgradePolicy.window to ${WINDOW_SHAPE}` };
  return next;
}
export const applySnapshotPolicy = (change: z.output<typeof SNAPSHOT_POLICY_CHANGE>, current: SnapshotPolicy): SnapshotPolicy => ({
  intervalHours: change.intervalHours ?? current.intervalHours,
  retention: change.retention ?? current.retention,
});

const deletionProtection = () => z.boolean({ error: 'deletionProtection must be true or false' });
const publicEndpoint = () => z.boolean({ error: 'publicEndpoint must be true or false' });
/** What a refused delete of a protected cluster tells the caller to send first. */
export const DELETION_PROTECTION_OFF = { deletionProtection: false } as const;

const oneOf = (field: string, allowed: readonly string[], message: (v: string) => string) =>
  (v: string, ctx: z.RefinementCtx) => {
    if (!allowed.includes(v)) ctx.addIssue({ code: 'custom', message: message(v), params: { code: `invalid_${field}`, allowed } });
  };
export const tierOf = (catalog: Catalog) => z.string({ error: 'tier must be a string' })
  .superRefine(oneOf('tier', catalog.tiers, (v) => `unknown tier '${v}'; one of ${catalog.tiers.join(', ')}`))
  .meta({ enum: [...catalog.tiers] });
const versionOf = (catalog: Catalog) => {
  const known = catalog.versions.map((v) => v.version);
  return z.string({ error: `consulVersion must be one of ${known.join(', ')} (GET /v1/versions)` })
    .superRefine(oneOf('consulVersion', known, (v) => `unknown Consul version '${v}'; one of ${known.join(', ')} (GET /v1/versions)`))
    .meta({ enum: known });
};
const recommended = (catalog: Catalog) => (catalog.versions.find((v) => v.status === 'RECOMMENDED') ?? catalog.versions[0])?.version ?? '';

/** POST /v1/clusters. Parsed, it is the create command: defaults filled in, the subscription id lower-case. */
export const createClusterBody = (catalog: Catalog) =>
  body({
    name: required('name').refine((v) => CONSUL_NAME.test(v), `name must be ${CONSUL_NAME_RULE}`).meta({ example: 'orders', pattern: CONSUL_NAME.source }),
    subscriptionId: required('subscriptionId').refine((v) => UUID_PATTERN.test(v), 'subscriptionId must be a GUID').meta({ format: 'uuid' }),
    resourceGroup: required('resourceGroup').refine((v) => RESOURCE_GROUP.test(v), `resourceGroup must be ${RESOURCE_GROUP_RULE}`).meta({ example: 'rg-orders' }),
    region: required('region').superRefine(oneOf('region', catalog.regions, (v) => `unknown region '${v}'; GET /v1/regions lists them`)).meta({ enum: [...catalog.regions], example: 'westeurope' }),
    tier: required('tier').pipe(tierOf(catalog)).meta({ enum: [...catalog.tiers], example: 'standard' }),
    datacenter: text('datacenter').refine((v) => CONSUL_NAME.test(v), `datacenter must be ${CONSUL_NAME_RULE}`).optional().meta({ description: 'Consul datacenter name; defaults to the cluster name' }),
    consulVersion: versionOf(catalog).optional().meta({ description: `Default: the RECOMMENDED version (${recommended(catalog)})` }),
    publicEndpoint: publicEndpoint().default(false)
      .meta({ description: 'On: the HTTPS API and UI also answer on a public address, to the sources of ipAllowlist only. Default false' }),
    ipAllowlist: IP_ALLOWLIST.default([]),
    allowAnyAddress: ALLOW_ANY_ADDRESS.default(false),
    deletionProtection: deletionProtection().default(false)
      .meta({ description: 'On: DELETE /v1/clusters/{id} is refused (409 deletion_protected) until PATCH sets it false. Default false' }),
    vnetCidr: text('vnetCidr').refine((v) => VNET_CIDR.test(v), `vnetCidr must be ${VNET_CIDR_RULE}`).optional()
      .meta({ description: 'The VNet address space on the Azure target: a private /24 to /28 network address (default 172.25.16.0/24)' }),
    snapshotPolicy: SNAPSHOT_POLICY_CHANGE.optional(),
    upgradePolicy: UPGRADE_POLICY_CHANGE.optional().meta({ description: 'Default: { mode: manual, window: null, pin: none }' }),
    federationToken: text('federationToken').refine((v) => FEDERATION_TOKEN_PATTERN.test(v), `federationToken must be ${FEDERATION_TOKEN_RULE}`).optional()
      .meta({ description: "Joins the new cluster to that primary's federation as a secondary: its own datacenter name and address space, the primary's Consul version, CA and gossip key" }),
  }).transform((b, ctx) => {
    const upgradePolicy = applyUpgradePolicy(b.upgradePolicy ?? {}, DEFAULT_UPGRADE_POLICY);
    if ('problem' in upgradePolicy) {
      ctx.addIssue({ code: 'custom', path: ['upgradePolicy', 'window'], message: upgradePolicy.problem, params: { code: 'invalid_upgradePolicy_window' } });
      return z.NEVER;
    }
    const ipAllowlist = checkAllowlist(b.ipAllowlist, b.allowAnyAddress, ctx);
    if (ipAllowlist.length !== b.ipAllowlist.length) return z.NEVER;
    const { allowAnyAddress: _confirmed, ...rest } = b;
    return {
      ...rest,
      ipAllowlist,
      subscriptionId: b.subscriptionId.toLowerCase(),
      datacenter: b.datacenter ?? b.name,
      consulVersion: b.consulVersion ?? recommended(catalog),
      snapshotPolicy: applySnapshotPolicy(b.snapshotPolicy ?? {}, DEFAULT_SNAPSHOT_POLICY),
      upgradePolicy,
    };
  });
export type CreateClusterCommand = z.output<ReturnType<typeof createClusterBody>>;

/** PATCH /v1/clusters/{id}: one or more members; the policies change at once, a tier queues a scale, the endpoint an update-endpoint. */
export const updateClusterBody = (catalog: Catalog) =>
  body({
    snapshotPolicy: SNAPSHOT_POLICY_CHANGE.optional(),
    upgradePolicy: UPGRADE_POLICY_CHANGE.optional().meta({ description: 'Applied at once (200); audited as cluster.upgrade-policy.changed' }),
    deletionProtection: deletionProtection().optional().meta({ description: 'Applied at once (200); audited as cluster.deletion-protection.changed' }),
    tier: tierOf(catalog).optional().meta({ description: 'A different tier queues a scale operation (202 with it)' }),
    publicEndpoint: publicEndpoint().optional()
      .meta({ description: 'Turns the public endpoint on or off: queues an update-endpoint operation (202 with it); audited as cluster.endpoint.changed' }),
    ipAllowlist: IP_ALLOWLIST.optional()
      .meta({ description: 'Replaces the whole allowlist: queues an update-endpoint operation (202 with it); kept while the endpoint is off and applied when it is turned on' }),
    allowAnyAddress: ALLOW_ANY_ADDRESS.optional(),
  }).refine((b) => Object.keys(b).length > 0, because('empty_patch', 'nothing to change; send one of snapshotPolicy, upgradePolicy, deletionProtection, tier, publicEndpoint, ipAllowlist'))
    .refine((b) => b.allowAnyAddress === undefined || b.ipAllowlist !== undefined, { ...because('invalid_allowAnyAddress', 'allowAnyAddress confirms an ipAllowlist entry of 0.0.0.0/0 or ::/0: send it with ipAllowlist'), path: ['allowAnyAddress'] })
    .refine((b) => b.tier === undefined || (b.publicEndpoint === undefined && b.ipAllowlist === undefined),
      because('one_operation_per_request', 'a tier change and an endpoint change are two operations: send them in two PATCH requests'))
    .transform((b, ctx) => {
      if (b.ipAllowlist === undefined) return { ...b, ipAllowlist: undefined };
      const ipAllowlist = checkAllowlist(b.ipAllowlist, b.allowAnyAddress ?? false, ctx);
      return ipAllowlist.length === b.ipAllowlist.length ? { ...b, ipAllowlist } : z.NEVER;
    });

export const upgradeClusterBody = (catalog: Catalog) => body({ consulVersion: versionOf(catalog) });
export const ROTATE_BODY = body({
  what: z.enum(ROTATIONS, { error: `what must be one of ${ROTATIONS.join(', ')}` }),
});

export const CLUSTER = z.strictObject({
  id: z.uuid(),
  name: z.string(),
  state: z.enum(CLUSTER_STATES),
  stateReason: z.string().nullable(),
  tier: z.string(),
  servers: z.number().int().meta({ description: 'Number of servers' }),
  consulVersion: z.string(),
  region: z.string(),
  datacenter: z.string(),
  subscriptionId: z.string(),
  resourceGroup: z.string(),
  managedResourceGroup: z.string().nullable(),
  publicEndpoint: z.boolean().meta({ description: 'Whether the HTTPS API and UI answer on a public address (endpoints.public once it exists)' }),
  ipAllowlist: z.array(ALLOWLIST_ENTRY).meta({ description: 'The sources the public endpoint admits (kept while the endpoint is off)' }),
  deletionProtection: z.boolean().meta({ description: 'On: a delete is refused (409 deletion_protected) until PATCH sets it false' }),
  target: z.string(),
  endpoints: z.strictObject({
    https: z.string().nullable(),
    ui: z.string().nullable(),
    public: z.string().nullable().meta({ description: "The public endpoint's HTTPS URL (its UI at /ui/) once it exists; null while it is off or being made" }),
  }).meta({ example: { https: 'https://127.64.0.1:8501', ui: 'https://127.64.0.1:8501/ui/', public: 'https://127.64.0.200:8501' } }),
  serverAddresses: z.array(z.string()),
  createdAt: instant,
  updatedAt: instant,
  runningSince: nullableInstant,
  snapshotPolicy: z.strictObject({ intervalHours: z.number().int(), retention: z.number().int() }),
  upgradePolicy: z.strictObject({ mode: z.enum(UPGRADE_MODES), window: UPGRADE_WINDOW.nullable(), pin: z.enum(UPGRADE_PINS) }).meta({ id: 'UpgradePolicy' }),
  certificates: z.strictObject({ caNotAfter: nullableInstant, serverCertificatesNotAfter: nullableInstant })
    .meta({ description: 'When the CA and the earliest server certificate expire (null until recorded); rotated automatically before' }),
  health: z.strictObject({ status: z.string(), reason: z.string().nullable(), checkedAt: nullableInstant }),
  primaryClusterId: z.uuid().nullable().meta({ description: "The federation's primary when this cluster is a secondary (GET .../federation shows the federation)" }),
}).meta({ id: 'Cluster' });
export type ClusterView = z.output<typeof CLUSTER>;

export const CLIENT_CONFIG = z.strictObject({
  datacenter: z.string(),
  caPem: z.string(),
  encrypt: z.string().optional().meta({ description: 'The gossip key: Clusters.ReadWrite only' }),
  encryptOmitted: z.string().optional().meta({ description: 'Why the gossip key is not in the answer (Clusters.Read)' }),
  retryJoin: z.array(z.string()),
  httpsAddress: z.string(),
  autoEncrypt: z.literal(true),
  consulConfig: z.record(z.string(), z.unknown()).meta({ description: "A Consul client agent's JSON config (save caPem as ca.pem beside it)" }),
}).meta({ id: 'ClientConfig' });
export type ClientConfig = z.output<typeof CLIENT_CONFIG>;

const ACCEPTED_CLUSTER = z.strictObject({ cluster: CLUSTER, operation: OPERATION });

export const CLUSTER_ROUTES = {
  createCluster: route({
    id: 'createCluster', method: 'POST', path: '/v1/clusters', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: 'Create a cluster (202 with the create operation)',
    body: createClusterBody,
    headers: IDEMPOTENCY_HEADER,
    answers: { 202: ACCEPTED_CLUSTER },
  }),
  listClusters: route({
    id: 'listClusters', method: 'GET', path: '/v1/clusters', tag: 'clusters', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "List the caller's tenant's clusters", answers: { 200: z.strictObject({ clusters: z.array(CLUSTER) }) },
  }),
  getCluster: route({
    id: 'getCluster', method: 'GET', path: '/v1/clusters/{id}', tag: 'clusters', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'A cluster', params: CLUSTER_ID, answers: { 200: CLUSTER },
  }),
  updateCluster: route({
    id: 'updateCluster', method: 'PATCH', path: '/v1/clusters/{id}', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: 'Change a cluster: snapshotPolicy, upgradePolicy and deletionProtection (200) and/or tier (202 with a scale operation) or publicEndpoint and ipAllowlist (202 with an update-endpoint operation)',
    params: CLUSTER_ID, body: updateClusterBody,
    answers: { 200: CLUSTER, 202: ACCEPTED_CLUSTER },
  }),
  deleteCluster: route({
    id: 'deleteCluster', method: 'DELETE', path: '/v1/clusters/{id}', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: 'Delete a cluster (202 with the delete operation; repeated while it runs: the same operation). With deletion protection on: 409 deletion_protected, nothing changed',
    params: CLUSTER_ID, answers: { 202: ACCEPTED },
  }),
  upgradeCluster: route({
    id: 'upgradeCluster', method: 'POST', path: '/v1/clusters/{id}/upgrade', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: "Rolling upgrade to { consulVersion } from GET /v1/versions (202 with the operation); the customer's own choice, so the upgrade pin does not bind it", params: CLUSTER_ID, body: upgradeClusterBody, answers: { 202: ACCEPTED },
  }),
  rotateCluster: route({
    id: 'rotateCluster', method: 'POST', path: '/v1/clusters/{id}/rotate', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: 'Rotate { what: gossip-key | certificates | management-token | ca } with no downtime (202 with the operation)', params: CLUSTER_ID, body: ROTATE_BODY,
    headers: IDEMPOTENCY_HEADER, answers: { 202: ACCEPTED },
  }),
  clientConfig: route({
    id: 'clientConfig', method: 'GET', path: '/v1/clusters/{id}/client-config', tag: 'clusters', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'What a Consul client agent needs to join: CA, servers and (Clusters.ReadWrite only) the gossip key; ready to write as a client config',
    params: CLUSTER_ID, answers: { 200: CLIENT_CONFIG },
  }),
};
