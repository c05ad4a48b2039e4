import { REGION_NAMES, TIER_NAMES, TIERS, UPGRADE_MODES, ValidationError, VERSIONS, VNET_CIDR, VNET_CIDR_RULE, recommendedVersion, type TierName, type UpgradePolicy, type UpgradeWindow, type VersionStatus } from '../../../../libs/core/src';

/** Consul datacenter and node naming: lowercase letters, digits, hyphens; starts with a letter; 1 to 36 chars. */
export const CONSUL_NAME = /^[a-z][a-z0-9-]{0,35}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Azure resource group names: 1-90 chars of letters, digits, underscores, hyphens, periods and parentheses, not ending in a period. */
const RESOURCE_GROUP = /^[-\w.()]{0,89}[-\w()]$/u;

export interface CreateClusterCommand {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  region: string;
  tier: TierName;
  datacenter: string;
  consulVersion: string;
  publicEndpoint: boolean;
  /** The VNet address space on the Azure target (default DEFAULT_VNET_CIDR). */
  vnetCidr?: string;
  snapshotPolicy: SnapshotPolicy;
  upgradePolicy: UpgradePolicy;
}

export interface SnapshotPolicy {
  intervalHours: number;
  retention: number;
}

export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = { intervalHours: 24, retention: 30 };

/** `{ intervalHours: 1-24, retention: 1-365 }`; missing members keep `current`. */
export function parseSnapshotPolicy(raw: unknown, current: SnapshotPolicy): SnapshotPolicy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('snapshotPolicy', 'invalid_snapshotPolicy', 'snapshotPolicy must be an object { intervalHours, retention }');
  const p = raw as Record<string, unknown>;
  const unknown = Object.keys(p).filter((k) => k !== 'intervalHours' && k !== 'retention');
  if (unknown.length) fail('snapshotPolicy', 'invalid_snapshotPolicy', `unknown snapshotPolicy field(s): ${unknown.join(', ')}`);
  const out = { ...current };
  if (p.intervalHours !== undefined) {
    if (!Number.isInteger(p.intervalHours) || (p.intervalHours as number) < 1 || (p.intervalHours as number) > 24) {
      fail('snapshotPolicy.intervalHours', 'invalid_snapshotPolicy_intervalHours', 'snapshotPolicy.intervalHours must be a whole number of hours from 1 to 24');
    }
    out.intervalHours = p.intervalHours as number;
  }
  if (p.retention !== undefined) {
    if (!Number.isInteger(p.retention) || (p.retention as number) < 1 || (p.retention as number) > 365) {
      fail('snapshotPolicy.retention', 'invalid_snapshotPolicy_retention', 'snapshotPolicy.retention must be a whole number from 1 to 365');
    }
    out.retention = p.retention as number;
  }
  return out;
}

/**
 * Default: manual upgrades and no window. An upgrade restarts every server,
 * so it happens only when the customer asks for it or opts in to a window.
 */
export const DEFAULT_UPGRADE_POLICY: UpgradePolicy = { mode: 'manual', window: null };

const WINDOW_SHAPE = '{ dayOfWeek: 0-6 (Sunday 0), startHourUtc: 0-23, hours: 1-24 }';
const WINDOW_MEMBERS: ReadonlyArray<{ key: keyof UpgradeWindow; min: number; max: number; what: string }> = [
  { key: 'dayOfWeek', min: 0, max: 6, what: 'a whole number from 0 (Sunday) to 6 (Saturday)' },
  { key: 'startHourUtc', min: 0, max: 23, what: 'a whole hour of the day in UTC, from 0 to 23' },
  { key: 'hours', min: 1, max: 24, what: 'a whole number of hours from 1 to 24' },
];

function parseUpgradeWindow(raw: unknown): UpgradeWindow {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('upgradePolicy.window', 'invalid_upgradePolicy_window', `upgradePolicy.window must be an object ${WINDOW_SHAPE}, or null for none`);
  }
  const w = raw as Record<string, unknown>;
  const unknown = Object.keys(w).filter((k) => !WINDOW_MEMBERS.some((m) => m.key === k));
  if (unknown.length) fail('upgradePolicy.window', 'invalid_upgradePolicy_window', `unknown upgradePolicy.window field(s): ${unknown.join(', ')}; a window is ${WINDOW_SHAPE}`);
  const out: Partial<UpgradeWindow> = {};
  for (const m of WINDOW_MEMBERS) {
    const v = w[m.key];
    if (v === undefined) fail(`upgradePolicy.window.${m.key}`, `invalid_upgradePolicy_window_${m.key}`, `upgradePolicy.window.${m.key} is required: ${m.what}`);
    if (!Number.isInteger(v) || (v as number) < m.min || (v as number) > m.max) {
      fail(`upgradePolicy.window.${m.key}`, `invalid_upgradePolicy_window_${m.key}`, `upgradePolicy.window.${m.key} must be ${m.what}`, { min: m.min, max: m.max });
    }
    out[m.key] = v as number;
  }
  return out as UpgradeWindow;
}

/**
 * `{ mode: automatic | manual, window: { dayOfWeek, startHourUtc, hours } | null }`;
 * missing members keep `current`. Automatic upgrades need a window.
 */
export function parseUpgradePolicy(raw: unknown, current: UpgradePolicy): UpgradePolicy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('upgradePolicy', 'invalid_upgradePolicy', `upgradePolicy must be an object { mode: automatic | manual, window: ${WINDOW_SHAPE} }`);
  }
  const p = raw as Record<string, unknown>;
  const unknown = Object.keys(p).filter((k) => k !== 'mode' && k !== 'window');
  if (unknown.length) fail('upgradePolicy', 'invalid_upgradePolicy', `unknown upgradePolicy field(s): ${unknown.join(', ')}; allowed: mode, window`);
  let mode = current.mode;
  if (p.mode !== undefined) {
    if (typeof p.mode !== 'string' || !(UPGRADE_MODES as readonly string[]).includes(p.mode)) {
      fail('upgradePolicy.mode', 'invalid_upgradePolicy_mode', `upgradePolicy.mode must be one of ${UPGRADE_MODES.join(', ')}`, { allowed: UPGRADE_MODES });
    }
    mode = p.mode as UpgradePolicy['mode'];
  }
  let window = current.window;
  if (p.window !== undefined) window = p.window === null ? null : parseUpgradeWindow(p.window);
  if (mode === 'automatic' && !window) {
    fail('upgradePolicy.window', 'invalid_upgradePolicy_window', `automatic upgrades need a maintenance window: set upgradePolicy.window to ${WINDOW_SHAPE}`);
  }
  return { mode, window };
}

const KNOWN_FIELDS = new Set(['name', 'subscriptionId', 'resourceGroup', 'region', 'tier', 'datacenter', 'consulVersion', 'publicEndpoint', 'vnetCidr', 'snapshotPolicy', 'upgradePolicy']);

function fail(field: string, code: string, message: string, extra: Record<string, unknown> = {}): never {
  throw new ValidationError(code, message, { field, ...extra });
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (v === undefined || v === null || v === '') fail(field, `missing_${field}`, `${field} is required`);
  if (typeof v !== 'string') fail(field, `invalid_${field}`, `${field} must be a string`);
  return v;
}

/** Validates a create request on construction: a use case never sees invalid input. */
export function parseCreateCluster(raw: unknown, versions: ReadonlyArray<{ version: string; status: VersionStatus }> = VERSIONS): CreateClusterCommand {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError('invalid_body', 'the request body must be a JSON object');
  }
  const body = raw as Record<string, unknown>;
  const unknown = Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length) throw new ValidationError('unknown_field', `unknown field(s): ${unknown.join(', ')}`, { field: unknown[0], allowed: [...KNOWN_FIELDS] });

  const name = requiredString(body, 'name');
  if (!CONSUL_NAME.test(name)) {
    fail('name', 'invalid_name', 'name must be 1 to 36 lowercase letters, digits or hyphens, starting with a letter');
  }
  const subscriptionId = requiredString(body, 'subscriptionId');
  if (!GUID.test(subscriptionId)) fail('subscriptionId', 'invalid_subscriptionId', 'subscriptionId must be a GUID');
  const resourceGroup = requiredString(body, 'resourceGroup');
  if (!RESOURCE_GROUP.test(resourceGroup)) {
    fail('resourceGroup', 'invalid_resourceGroup', 'resourceGroup must be 1 to 90 letters, digits, underscores, hyphens, periods or parentheses, not ending in a period');
  }
  const region = requiredString(body, 'region');
  if (!REGION_NAMES.has(region)) fail('region', 'invalid_region', `unknown region '${region}'; GET /v1/regions lists them`);
  const tier = requiredString(body, 'tier');
  if (!(TIER_NAMES as string[]).includes(tier)) fail('tier', 'invalid_tier', `unknown tier '${tier}'; one of ${TIER_NAMES.join(', ')}`, { allowed: TIER_NAMES });

  let datacenter = name;
  if (body.datacenter !== undefined) {
    if (typeof body.datacenter !== 'string' || !CONSUL_NAME.test(body.datacenter)) {
      fail('datacenter', 'invalid_datacenter', 'datacenter must be 1 to 36 lowercase letters, digits or hyphens, starting with a letter');
    }
    datacenter = body.datacenter;
  }
  let consulVersion = recommendedVersion(versions);
  if (body.consulVersion !== undefined) {
    if (typeof body.consulVersion !== 'string' || !versions.some((v) => v.version === body.consulVersion)) {
      fail('consulVersion', 'invalid_consulVersion', `unknown Consul version '${String(body.consulVersion)}'; GET /v1/versions lists them`, {
        allowed: versions.map((v) => v.version),
      });
    }
    consulVersion = body.consulVersion;
  }
  let publicEndpoint = false;
  if (body.publicEndpoint !== undefined) {
    if (typeof body.publicEndpoint !== 'boolean') fail('publicEndpoint', 'invalid_publicEndpoint', 'publicEndpoint must be true or false');
    publicEndpoint = body.publicEndpoint;
  }
  let vnetCidr: string | undefined;
  if (body.vnetCidr !== undefined) {
    if (typeof body.vnetCidr !== 'string' || !VNET_CIDR.test(body.vnetCidr)) fail('vnetCidr', 'invalid_vnetCidr', `vnetCidr must be ${VNET_CIDR_RULE}`);
    vnetCidr = body.vnetCidr;
  }
  const snapshotPolicy = body.snapshotPolicy === undefined ? DEFAULT_SNAPSHOT_POLICY : parseSnapshotPolicy(body.snapshotPolicy, DEFAULT_SNAPSHOT_POLICY);
  const upgradePolicy = body.upgradePolicy === undefined ? DEFAULT_UPGRADE_POLICY : parseUpgradePolicy(body.upgradePolicy, DEFAULT_UPGRADE_POLICY);
  return {
    name, subscriptionId: subscriptionId.toLowerCase(), resourceGroup, region, tier: tier as TierName, datacenter, consulVersion, publicEndpoint, snapshotPolicy, upgradePolicy,
    ...(vnetCidr ? { vnetCidr } : {}),
  };
}

export function serverCountFor(tier: TierName): number {
  return TIERS[tier].servers;
}
