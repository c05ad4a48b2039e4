import path from 'node:path';
import { z } from 'zod';
import { versionCatalog, type ConsulVersionEntry } from './catalog';

/**
 * Configuration is read once at start-up and validated; a wrong value stops the
 * process with a message naming the variable. Defaults make a fresh `npm start`
 * work on one machine.
 */
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');
const localDir = process.env.LOCAL_DIR ?? path.join(repoRoot, '.local');

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port.default(3000),
  HOST: z.string().default('127.0.0.1'),
  WORKER_PORT: port.default(3001),
  DATABASE_URL: z.string().url().default('postgresql://consul_cloud:consul_cloud@127.0.0.1:55432/consul_cloud'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:56379'),
  QUEUE_PREFIX: z.string().regex(/^[a-z0-9:_-]+$/i).default('mc'),
  LOCAL_DIR: z.string().default(localDir),
  CONSUL_BIN: z.string().default(path.join(localDir, 'consul', 'usr', 'bin', 'consul')),
  /**
   * Where new clusters run: `local` (Consul processes on this machine) or `azure` (the customer's managed
   * resource group). Unset: `local` (see defaultTargetOf).
   */
  CLUSTER_TARGET: z.enum(['local', 'azure']).optional(),
  /** Second octet of the loopback block the local target hands out (127.<n>.x.y). */
  LOCAL_NET_OCTET: z.coerce.number().int().min(2).max(254).default(64),
  KEK_FILE: z.string().default(path.join(localDir, 'keys', 'kek.json')),
  AUTH_METADATA_URL: z.string().url().default('https://127.0.0.1:8443/.well-known/openid-configuration'),
  AUTH_ISSUER: z.string().default('https://127.0.0.1:8443'),
  AUTH_AUDIENCE: z.string().default('api://managed-consul'),
  AUTH_CLIENT_ID: z.string().default('api://managed-consul'),
  /**
   * The console's sign-in (OpenID Connect authorization code + PKCE, a confidential client): its
   * app registration's client id and secret. Without a secret the console cannot sign anyone in
   * (GET /auth/login answers 503 naming CONSOLE_CLIENT_SECRET); bearer tokens work regardless.
   */
  CONSOLE_CLIENT_ID: z.string().min(1).default('managed-consul-console'),
  CONSOLE_CLIENT_SECRET: z.string().min(16, 'at least 16 characters').optional(),
  /** The console's public origin (scheme://host[:port], no path): the redirect URI is <origin>/auth/callback. Default: http://<HOST>:<the API's port>. */
  CONSOLE_ORIGIN: z
    .string()
    .url()
    .refine((v) => /^https?:\/\/[^/?#]+$/.test(v), 'an origin: http(s)://host[:port], with no path, query or trailing slash')
    .optional(),
  /** The scopes the console asks for; the access token must be one the API accepts (its audience). Default: openid profile <AUTH_AUDIENCE>/.default. */
  CONSOLE_SCOPES: z.string().optional(),
  /** The longest a console session lasts (never longer than the access token it came from). */
  CONSOLE_SESSION_MAX_HOURS: z.coerce.number().min(0.05).max(8).default(8),
  /**
   * The Consul UI proxy: a listener of its own in the API process, host-routed by
   * <cluster-id>.<CONSOLE_UI_HOST_SUFFIX>. Each cluster's UI origin is
   * <CONSOLE_UI_SCHEME>://<cluster-id>.<suffix>[:<CONSOLE_UI_PUBLIC_PORT, default the listening port>].
   * In production: a wildcard DNS name and certificate for *.<suffix> in front of it.
   */
  UI_PROXY_PORT: port.default(3002),
  UI_PROXY_HOST: z.string().optional(),
  CONSOLE_UI_HOST_SUFFIX: z
    .string()
    .regex(/^(?=.{1,200}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'a DNS name in lowercase, such as ui.localhost or ui.console.example.com')
    .default('ui.localhost'),
  CONSOLE_UI_SCHEME: z.enum(['http', 'https']).default('http'),
  CONSOLE_UI_PUBLIC_PORT: port.optional(),
  /** How long an "Open Consul UI" code may wait to be redeemed, seconds. */
  CONSOLE_SSO_CODE_TTL_S: z.coerce.number().int().min(5).max(120).default(30),
  /** How long the UI proxy trusts what it last read of a UI session (console session, roles, cluster state) before reading it again; 0: every request. */
  CONSOLE_UI_RECHECK_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** How often the worker ends expired console sessions and revokes the Consul UI tokens that are due. */
  CONSOLE_SWEEP_MS: z.coerce.number().int().min(200).default(30_000),
  /** In production: the Entra ID tenant that owns the app registration. */
  AZURE_TENANT_ID: z.string().optional(),
  /**
   * The control plane's own Azure credentials (client secret), used to read managed applications
   * back (and by the Azure target). Unset: DefaultAzureCredential (a managed identity in Azure).
   */
  AZURE_CLIENT_ID: z.string().optional(),
  AZURE_CLIENT_SECRET: z.string().optional(),
  /** A user-assigned managed identity's client id, when the control plane runs in Azure without a client secret. */
  AZURE_MANAGED_IDENTITY_CLIENT_ID: z.string().optional(),
  /**
   * The Azure target's Consul packages: JSON { "<version>": { "url": "https://....deb", "sha256": "<hex>" } },
   * what each scale-set instance installs (checked against the hash). Setting it makes `azure` the default target.
   */
  AZURE_CONSUL_PACKAGES: z.string().optional(),
  /**
   * The operator's break-glass SSH public key (one line, `ssh-ed25519 ...` or `ssh-rsa ...` of 2048+ bits), put on
   * every server VM's admin user: Azure requires a key when password login is disabled. Required with the Azure target.
   */
  AZURE_ADMIN_SSH_PUBLIC_KEY: z.string().optional(),
  /**
   * The subnet of the control plane's own VNet where the worker makes one private endpoint per cluster, to
   * the cluster's Private Link service: the one path to its servers (their addresses overlap other customers'
   * and are never routed to). A subnet resource id; its subscription is the one every cluster's Private Link
   * service is visible to and approves. Required with the Azure target.
   */
  AZURE_MANAGEMENT_SUBNET_ID: z.string().optional(),
  /** Root of the server folders on the VMs (their custom data writes there); tests that realise instances here choose their own. */
  AZURE_VM_CLUSTERS_DIR: z.string().default('/var/lib/managed-consul/clusters'),
  /** How soon the worker asks ARM again about a running deployment or instance action. */
  AZURE_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(5000),
  /** Entra ID authority host; only changed for sovereign clouds and local tests. */
  AZURE_AUTHORITY_HOST: z.string().url().optional(),
  /** Azure Resource Manager's endpoint (its origin is also the token audience). */
  ARM_ENDPOINT: z.string().url().default('https://management.azure.com'),
  /**
   * The shared secret of the managed application notification endpoint: Azure calls
   * POST /resource?sig=<it> (the offer's notification URL carries it). Unset: the endpoint answers 404.
   */
  NOTIFICATION_SECRET: z.string().min(32, 'at least 32 characters (for example 32 random bytes, base64url)').optional(),
  /**
   * The operator's own Entra ID tenant: Platform.SRE counts only in tokens from it (a customer's
   * admin can assign any app role in their own tenant). Unset: no SRE rights at all.
   */
  OPERATOR_TENANT_ID: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a tenant id (GUID)')
    .transform((v) => v.toLowerCase())
    .optional(),
  /** Azure Blob Storage for snapshots; locally Azurite's development account (set in .local/env). */
  AZURE_STORAGE_CONNECTION_STRING: z
    .string()
    .default(
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;',
    ),
  SNAPSHOT_CONTAINER: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'a blob container name: 3-63 lowercase letters, digits and single hyphens').default('consul-snapshots'),
  /** JSON list of extra version catalog entries { version, status, binary, reports } (tests). */
  EXTRA_CONSUL_VERSIONS: z.string().default(''),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('pretty'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(128),
  /** How long a job lock lasts without renewal; a killed worker's job is picked up after this. */
  JOB_LOCK_MS: z.coerce.number().int().min(1000).default(15000),
  /**
   * How long an operation's claim lasts without renewal (renewed every third of it while it runs). Another worker
   * takes a Running operation over only once its lease has lapsed, and a runner that lost its lease stops.
   */
  OPERATION_LEASE_MS: z.coerce.number().int().min(1000).default(30000),
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(200).default(10000),
  /** How often the worker looks for clusters whose scheduled snapshot is due. */
  SNAPSHOT_TICK_MS: z.coerce.number().int().min(1000).default(60000),
  /** How often the worker checks every running cluster's server processes (and queues repairs). */
  HEALTH_TICK_MS: z.coerce.number().int().min(1000).default(10000),
  /** How often the worker looks for clusters with automatic upgrades whose maintenance window is open. */
  UPGRADE_TICK_MS: z.coerce.number().int().min(1000).default(300000),
  /** How often the worker looks for clusters whose certificates near their expiry. */
  CERT_ROTATION_TICK_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /** Server certificates (1 year) are rotated when the earliest expires within this many days. */
  CERT_ROTATION_THRESHOLD_DAYS: z.coerce.number().int().min(1).max(364).default(30),
  /** The CA (5 years) is rolled when it expires within this many days; at least CERT_ROTATION_THRESHOLD_DAYS. */
  CA_ROTATION_THRESHOLD_DAYS: z.coerce.number().int().min(1).max(1824).default(180),
  /** How often the worker advances maintenance waves. */
  WAVE_TICK_MS: z.coerce.number().int().min(100).default(2000),
  CLUSTER_READY_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60000),
  /** How long POST /tokens waits for its operation before answering 202 with a collect link (0: never waits). */
  TOKEN_WAIT_MS: z.coerce.number().int().min(0).max(120_000).default(30_000),
  /** A token's secret not collected within this long after the token was made is revoked in Consul by the worker. */
  TOKEN_COLLECT_WINDOW_MS: z.coerce.number().int().min(1000).default(600_000),
  /** How often the worker closes finished hours into usage records and exports pending usage. */
  BILLING_TICK_MS: z.coerce.number().int().min(100).default(60000),
  /** An hour is closed this long after it ends (late state changes land first). */
  METERING_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(300000),
  /** Where usage goes: `file` (JSON lines per day, the local default) or `marketplace` (the metering API). */
  BILLING_EXPORTER: z.enum(['file', 'marketplace']).default('file'),
  BILLING_EXPORT_DIR: z.string().default(path.join(localDir, 'usage')),
  /** The marketplace plan every usage event is reported under. */
  BILLING_PLAN_ID: z.string().min(1).default('consul-payg'),
  MARKETPLACE_METERING_URL: z.string().url().default('https://marketplaceapi.microsoft.com'),
  /** Entra ID client credentials of the publisher's app registration (marketplace exporter only). */
  MARKETPLACE_TENANT_ID: z.string().optional(),
  MARKETPLACE_CLIENT_ID: z.string().optional(),
  MARKETPLACE_CLIENT_SECRET: z.string().optional(),
  /** Entra ID authority host; only changed for sovereign clouds and local tests. */
  MARKETPLACE_AUTHORITY_HOST: z.string().url().optional(),
  /** Batches of 25 events in flight at once. */
  BILLING_EXPORT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  METRICS: bool.default(true),
});

export type Config = z.infer<typeof schema> & {
  readonly repoRoot: string;
  readonly versions: ConsulVersionEntry[];
  /** The target new clusters are recorded with (the cluster row's `target`). */
  readonly defaultTarget: 'local' | 'azure';
};

export class ConfigError extends Error {}

/**
 * The target new clusters are recorded with: CLUSTER_TARGET, else `azure`
 * when the Azure target's own setting (AZURE_CONSUL_PACKAGES) is given, else
 * `local`. AZURE_CLIENT_ID alone does not decide it: it is also the API's
 * identity for reading managed applications back.
 */
function defaultTargetOf(settings: Pick<z.infer<typeof schema>, 'CLUSTER_TARGET' | 'AZURE_CONSUL_PACKAGES'>): 'local' | 'azure' {
  return settings.CLUSTER_TARGET ?? (settings.AZURE_CONSUL_PACKAGES ? 'azure' : 'local');
}

export interface ConsulPackageEntry {
  url: string;
  sha256: string;
}

/** AZURE_CONSUL_PACKAGES parsed: version -> package (an https URL and its SHA-256). */
export function azureConsulPackages(raw: string | undefined): Record<string, ConsulPackageEntry> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('must be JSON: { "<version>": { "url": "https://...", "sha256": "<64 hex digits>" } }');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('must be a JSON object keyed by Consul version');
  for (const [version, p] of Object.entries(parsed as Record<string, unknown>)) {
    const e = p as Partial<ConsulPackageEntry> | null;
    if (!e || typeof e.url !== 'string' || !/^https:\/\/\S+$/.test(e.url)) throw new Error(`${version}: url must be an https URL`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw new Error(`${version}: sha256 must be 64 lowercase hex digits`);
  }
  return parsed as Record<string, ConsulPackageEntry>;
}

/** Hosts a browser treats as secure over plain http (potentially trustworthy origins): their Secure cookies stick. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '[::1]' || h === '::1';
}

/** A subnet's resource id (its subscription, group, VNet and subnet). */
export const MANAGEMENT_SUBNET_ID = /^\/subscriptions\/([0-9a-f-]{36})\/resourceGroups\/([-\w._()]+)\/providers\/Microsoft\.Network\/virtualNetworks\/([-\w._]+)\/subnets\/([-\w._]+)$/i;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof z.infer<typeof schema>, string>> = {}): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) input[key] = overrides[key as keyof typeof overrides] ?? env[key];
  for (const k of Object.keys(input)) if (input[k] === '') delete input[k];
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  let versions: ConsulVersionEntry[];
  try {
    versions = versionCatalog(parsed.data.EXTRA_CONSUL_VERSIONS);
  } catch (e) {
    throw new ConfigError(`invalid configuration:\n  EXTRA_CONSUL_VERSIONS: ${(e as Error).message}`);
  }
  if (parsed.data.CA_ROTATION_THRESHOLD_DAYS < parsed.data.CERT_ROTATION_THRESHOLD_DAYS) {
    // Server certificates never outlive their CA: with a CA closer to its expiry than the server threshold, every new one would be due at once.
    throw new ConfigError(
      `invalid configuration:\n  CA_ROTATION_THRESHOLD_DAYS: must be at least CERT_ROTATION_THRESHOLD_DAYS (${parsed.data.CERT_ROTATION_THRESHOLD_DAYS}), got ${parsed.data.CA_ROTATION_THRESHOLD_DAYS}`,
    );
  }
  // The console's and the UI's cookies are __Host- cookies (Secure): browsers keep them from https
  // origins, and from http only on loopback (localhost, *.localhost, 127/8, [::1]).
  const origin = parsed.data.CONSOLE_ORIGIN;
  if (origin?.startsWith('http://') && !isLoopbackHost(new URL(origin).hostname)) {
    throw new ConfigError('invalid configuration:\n  CONSOLE_ORIGIN: must be https (the console\'s session cookie is a __Host- cookie, which browsers keep only from https or a loopback host)');
  }
  if (parsed.data.CONSOLE_UI_SCHEME === 'http' && !isLoopbackHost(`x.${parsed.data.CONSOLE_UI_HOST_SUFFIX}`)) {
    throw new ConfigError('invalid configuration:\n  CONSOLE_UI_SCHEME: must be https unless CONSOLE_UI_HOST_SUFFIX is under localhost (the UI session cookie is a __Host- cookie)');
  }
  try {
    azureConsulPackages(parsed.data.AZURE_CONSUL_PACKAGES);
  } catch (e) {
    throw new ConfigError(`invalid configuration:\n  AZURE_CONSUL_PACKAGES: ${(e as Error).message}`);
  }
  const sshKey = parsed.data.AZURE_ADMIN_SSH_PUBLIC_KEY;
  if (parsed.data.AZURE_CONSUL_PACKAGES && !sshKey) {
    throw new ConfigError('invalid configuration:\n  AZURE_ADMIN_SSH_PUBLIC_KEY: required with the Azure target (AZURE_CONSUL_PACKAGES): Azure refuses a Linux VM with password login disabled and no SSH key');
  }
  const subnet = parsed.data.AZURE_MANAGEMENT_SUBNET_ID;
  if (parsed.data.AZURE_CONSUL_PACKAGES && !subnet) {
    throw new ConfigError('invalid configuration:\n  AZURE_MANAGEMENT_SUBNET_ID: required with the Azure target (AZURE_CONSUL_PACKAGES): the subnet of the control plane\'s VNet where the worker makes each cluster\'s private endpoint');
  }
  if (subnet && !MANAGEMENT_SUBNET_ID.test(subnet)) {
    throw new ConfigError('invalid configuration:\n  AZURE_MANAGEMENT_SUBNET_ID: must be a subnet\'s resource id, /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>');
  }
  if (sshKey && !/^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]+={0,2}( \S.*)?$/.test(sshKey.trim())) {
    throw new ConfigError('invalid configuration:\n  AZURE_ADMIN_SSH_PUBLIC_KEY: must be one OpenSSH public key line (ssh-ed25519 or ssh-rsa, as in id_ed25519.pub)');
  }
  if (parsed.data.BILLING_EXPORTER === 'marketplace') {
    const missing = (['MARKETPLACE_TENANT_ID', 'MARKETPLACE_CLIENT_ID', 'MARKETPLACE_CLIENT_SECRET'] as const).filter((k) => !parsed.data[k]);
    if (missing.length) throw new ConfigError(`invalid configuration:\n${missing.map((k) => `  ${k}: required when BILLING_EXPORTER=marketplace`).join('\n')}`);
  }
  return { ...parsed.data, repoRoot, versions, defaultTarget: defaultTargetOf(parsed.data) };
}
