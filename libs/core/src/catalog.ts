/** What customers can choose from: tiers, Azure regions, Consul versions. */

export const TIERS = {
  development: { name: 'development', servers: 1, description: 'One server, no fault tolerance; for development and tests' },
  standard: { name: 'standard', servers: 3, description: 'Three servers; tolerates the loss of one' },
  plus: { name: 'plus', servers: 5, description: 'Five servers; tolerates the loss of two' },
} as const;
export type TierName = keyof typeof TIERS;

/** The billing dimension a tier's hours are metered on (one per tier). */
/** A tier's billing dimension is its name and this (standard → standard_hours). */
export const DIMENSION_SUFFIX = '_hours';
export function dimensionForTier(tier: string): string {
  return `${tier}${DIMENSION_SUFFIX}`;
}
export const TIER_NAMES = Object.keys(TIERS) as TierName[];

/** Public Azure regions (name as ARM spells it, display name as the portal shows it). */
export const REGIONS: ReadonlyArray<{ name: string; displayName: string; geography: string }> = [
  { name: 'eastus', displayName: 'East US', geography: 'United States' },
  { name: 'eastus2', displayName: 'East US 2', geography: 'United States' },
  { name: 'southcentralus', displayName: 'South Central US', geography: 'United States' },
  { name: 'westus2', displayName: 'West US 2', geography: 'United States' },
  { name: 'westus3', displayName: 'West US 3', geography: 'United States' },
  { name: 'centralus', displayName: 'Central US', geography: 'United States' },
  { name: 'northcentralus', displayName: 'North Central US', geography: 'United States' },
  { name: 'westus', displayName: 'West US', geography: 'United States' },
  { name: 'westcentralus', displayName: 'West Central US', geography: 'United States' },
  { name: 'canadacentral', displayName: 'Canada Central', geography: 'Canada' },
  { name: 'canadaeast', displayName: 'Canada East', geography: 'Canada' },
  { name: 'brazilsouth', displayName: 'Brazil South', geography: 'Brazil' },
  { name: 'brazilsoutheast', displayName: 'Brazil Southeast', geography: 'Brazil' },
  { name: 'mexicocentral', displayName: 'Mexico Central', geography: 'Mexico' },
  { name: 'chilecentral', displayName: 'Chile Central', geography: 'Chile' },
  { name: 'northeurope', displayName: 'North Europe', geography: 'Europe' },
  { name: 'westeurope', displayName: 'West Europe', geography: 'Europe' },
  { name: 'uksouth', displayName: 'UK South', geography: 'United Kingdom' },
  { name: 'ukwest', displayName: 'UK West', geography: 'United Kingdom' },
  { name: 'francecentral', displayName: 'France Central', geography: 'France' },
  { name: 'francesouth', displayName: 'France South', geography: 'France' },
  { name: 'germanywestcentral', displayName: 'Germany West Central', geography: 'Germany' },
  { name: 'germanynorth', displayName: 'Germany North', geography: 'Germany' },
  { name: 'switzerlandnorth', displayName: 'Switzerland North', geography: 'Switzerland' },
  { name: 'switzerlandwest', displayName: 'Switzerland West', geography: 'Switzerland' },
  { name: 'norwayeast', displayName: 'Norway East', geography: 'Norway' },
  { name: 'norwaywest', displayName: 'Norway West', geography: 'Norway' },
  { name: 'swedencentral', displayName: 'Sweden Central', geography: 'Sweden' },
  { name: 'polandcentral', displayName: 'Poland Central', geography: 'Poland' },
  { name: 'italynorth', displayName: 'Italy North', geography: 'Italy' },
  { name: 'spaincentral', displayName: 'Spain Central', geography: 'Spain' },
  { name: 'austriaeast', displayName: 'Austria East', geography: 'Austria' },
  { name: 'belgiumcentral', displayName: 'Belgium Central', geography: 'Belgium' },
  { name: 'denmarkeast', displayName: 'Denmark East', geography: 'Denmark' },
  { name: 'southafricanorth', displayName: 'South Africa North', geography: 'South Africa' },
  { name: 'southafricawest', displayName: 'South Africa West', geography: 'South Africa' },
  { name: 'uaenorth', displayName: 'UAE North', geography: 'United Arab Emirates' },
  { name: 'uaecentral', displayName: 'UAE Central', geography: 'United Arab Emirates' },
  { name: 'qatarcentral', displayName: 'Qatar Central', geography: 'Qatar' },
  { name: 'israelcentral', displayName: 'Israel Central', geography: 'Israel' },
  { name: 'centralindia', displayName: 'Central India', geography: 'India' },
  { name: 'southindia', displayName: 'South India', geography: 'India' },
  { name: 'westindia', displayName: 'West India', geography: 'India' },
  { name: 'jioindiawest', displayName: 'Jio India West', geography: 'India' },
  { name: 'jioindiacentral', displayName: 'Jio India Central', geography: 'India' },
  { name: 'eastasia', displayName: 'East Asia', geography: 'Asia Pacific' },
  { name: 'southeastasia', displayName: 'Southeast Asia', geography: 'Asia Pacific' },
  { name: 'japaneast', displayName: 'Japan East', geography: 'Japan' },
  { name: 'japanwest', displayName: 'Japan West', geography: 'Japan' },
  { name: 'koreacentral', displayName: 'Korea Central', geography: 'Korea' },
  { name: 'koreasouth', displayName: 'Korea South', geography: 'Korea' },
  { name: 'indonesiacentral', displayName: 'Indonesia Central', geography: 'Indonesia' },
  { name: 'malaysiawest', displayName: 'Malaysia West', geography: 'Malaysia' },
  { name: 'newzealandnorth', displayName: 'New Zealand North', geography: 'New Zealand' },
  { name: 'australiaeast', displayName: 'Australia East', geography: 'Australia' },
  { name: 'australiasoutheast', displayName: 'Australia Southeast', geography: 'Australia' },
  { name: 'australiacentral', displayName: 'Australia Central', geography: 'Australia' },
  { name: 'australiacentral2', displayName: 'Australia Central 2', geography: 'Australia' },
];
export const REGION_NAMES: ReadonlySet<string> = new Set(REGIONS.map((r) => r.name));

/**
 * The catalog's regions with availability zones (three each), from Azure's list
 * of regions and their zone support (2025-03-21):
 * https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/reliability/regions-list.md
 * (https://learn.microsoft.com/azure/reliability/regions-list). A region of the
 * catalog missing from that list (chilecentral, belgiumcentral, denmarkeast,
 * malaysiawest, the Jio India regions) counts as without zones: a cluster there
 * is deployed without zones, which Azure accepts everywhere. The Azure target
 * deploys with these zones, the managed application's template asks ARM's own
 * `pickZones`, and the local ARM refuses zones in any other region.
 */
export const REGIONS_WITH_ZONES: ReadonlySet<string> = new Set([
  'australiaeast', 'brazilsouth', 'canadacentral', 'centralindia', 'centralus', 'eastasia', 'eastus', 'eastus2',
  'francecentral', 'germanywestcentral', 'indonesiacentral', 'israelcentral', 'italynorth', 'japaneast', 'japanwest',
  'koreacentral', 'mexicocentral', 'newzealandnorth', 'northeurope', 'norwayeast', 'polandcentral', 'qatarcentral',
  'southafricanorth', 'southcentralus', 'southeastasia', 'spaincentral', 'swedencentral', 'switzerlandnorth',
  'uaenorth', 'uksouth', 'westeurope', 'westus2', 'westus3',
]);

/** The availability zones a cluster's servers spread across in a region: none where it has none. */
export function availabilityZones(region: string): string[] {
  return REGIONS_WITH_ZONES.has(region) ? ['1', '2', '3'] : [];
}

export type VersionStatus = 'RECOMMENDED' | 'AVAILABLE' | 'PREVIEW';
export interface ConsulVersionEntry {
  version: string;
  status: VersionStatus;
  /** Where the local target finds the binary: relative to the Consul install folder, or absolute. */
  binary: string;
  /** The version the binary itself reports (`consul version`, /v1/agent/self): checked after every start. */
  reports: string;
}

/**
 * The version catalog. Only Consul 1.8.7 exists on these machines (Debian
 * bullseye's package); an entry always names the binary that really is that version.
 */
export const VERSIONS: ReadonlyArray<ConsulVersionEntry> = [{ version: '1.8.7', status: 'RECOMMENDED', binary: 'usr/bin/consul', reports: '1.8.7' }];

/**
 * The catalog in force: the built-in entries plus any registered through
 * EXTRA_CONSUL_VERSIONS (tests register a second name for the same binary to
 * exercise upgrades; its `reports` still says what the binary really is).
 * Exactly one entry is RECOMMENDED: an extra entry marked RECOMMENDED takes
 * that place, and the built-in one is then listed as AVAILABLE.
 */
export function versionCatalog(extraJson: string): ConsulVersionEntry[] {
  if (!extraJson) return [...VERSIONS];
  const extra = JSON.parse(extraJson) as ConsulVersionEntry[];
  for (const e of extra) {
    if (!e.version || !e.binary || !e.reports || !['RECOMMENDED', 'AVAILABLE', 'PREVIEW'].includes(e.status)) {
      throw new Error('EXTRA_CONSUL_VERSIONS entries need version, status (RECOMMENDED|AVAILABLE|PREVIEW), binary and reports');
    }
  }
  const recommended = extra.filter((e) => e.status === 'RECOMMENDED');
  if (recommended.length > 1) throw new Error('EXTRA_CONSUL_VERSIONS: at most one entry may be RECOMMENDED');
  const builtIn = recommended.length ? VERSIONS.map((v) => (v.status === 'RECOMMENDED' ? { ...v, status: 'AVAILABLE' as const } : v)) : VERSIONS;
  return [...builtIn, ...extra];
}
export const DEFAULT_VERSION = VERSIONS.find((v) => v.status === 'RECOMMENDED')!.version;

/** The catalog's RECOMMENDED version: what new clusters get by default and what automatic upgrades move to. */
export function recommendedVersion(versions: ReadonlyArray<{ version: string; status: VersionStatus }>): string {
  return versions.find((v) => v.status === 'RECOMMENDED')?.version ?? DEFAULT_VERSION;
}

export { ROLE as ROLES, type Role } from '../../contracts/src';
