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
/** A scheduler's period in ms: one run per period across every worker, recorded per period in the ScheduleRun ledger (an INTEGER column). */
const schedulePeriod = (min: number) => z.coerce.number().int().min(min).max(2_000_000_000);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('`test` logs errors and warnings only (the tests and the benchmarks set it); otherwise info lines too'),
  PORT: port.default(3000).describe('API listen port'),
  HOST: z.string().default('127.0.0.1').describe('API listen address'),
  WORKER_PORT: port.default(3001).describe('Worker\'s `/healthz` and `/metrics`'),
  DATABASE_URL: z.string().url().default('postgresql://consul_cloud:consul_cloud@127.0.0.1:55432/consul_cloud').describe('PostgreSQL (`npm start` and the tests point it at the project-local PostgreSQL, `PG_PORT`)'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10).describe('PostgreSQL connections per process (1-100). A transaction waits at most 10 s for one (then the API answers 503 with Retry-After) and runs at most 30 s'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:56379').describe('Redis (BullMQ)'),
  QUEUE_PREFIX: z.string().regex(/^[a-z0-9:_-]+$/i).default('mc').describe('BullMQ key prefix'),
  LOCAL_DIR: z.string().default(localDir).describe('Runtime folder (clusters\' data, logs, pid files)').meta({ shownDefault: '`.local`' }),
  CONSUL_BIN: z.string().default(path.join(localDir, 'consul', 'usr', 'bin', 'consul')).describe('The Consul 1.8.7 binary').meta({ shownDefault: '`.local/consul/usr/bin/consul`' }),
  CLUSTER_TARGET: z.enum(['local', 'azure']).optional().describe('What runs new clusters\' servers (`local`: Consul processes on this machine, `azure`: the customer\'s managed resource group), recorded on each cluster row (`target`); a worker whose default target it cannot run does not start').meta({ shownDefault: '`azure` when `AZURE_CONSUL_PACKAGES` is set, else `local`' }),
  LOCAL_NET_OCTET: z.coerce.number().int().min(2).max(254).default(64).describe('Clusters\' servers get `127.<octet>.<slot>.<n>` (the second octet of the loopback block the local target hands out, 2-254)'),
  KEK_FILE: z.string().default(path.join(localDir, 'keys', 'kek.json')).describe('Key-encryption key for secrets at rest (outside `NODE_ENV=production` created 0600 at first start, `{ "id", "key" }`; in production it must exist, provisioned from Key Vault, or the process does not start), or a keyring `{ "active": id, "keys": [{ "id", "key" }, ...] }` to rotate it (see [Rotating the key-encryption key](architecture.md#rotating-the-key-encryption-key))').meta({ shownDefault: '`.local/keys/kek.json`' }),
  AUTH_METADATA_URL: z.string().url().default('https://127.0.0.1:8443/.well-known/openid-configuration').describe('OpenID metadata; in production `https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration`'),
  AUTH_ISSUER: z.string().default('https://127.0.0.1:8443').describe('Accepted token issuer(s), comma-separated'),
  AUTH_AUDIENCE: z.string().default('api://managed-consul').describe('The API\'s app id URI'),
  AUTH_CLIENT_ID: z.string().default('api://managed-consul').describe('The API\'s client id'),
  CONSOLE_CLIENT_ID: z.string().min(1).default('managed-consul-console').describe('The console\'s app registration (a confidential client, OpenID Connect authorization code + PKCE): its client id'),
  CONSOLE_CLIENT_SECRET: z.string().min(16, 'at least 16 characters').optional().describe('The console\'s client secret, 16 characters at least; without it, `/auth/login` answers 503 `console_not_configured` (bearer tokens work regardless)').meta({ shownDefault: 'none (`npm start` and the tests make one)' }),
  CONSOLE_ORIGIN: z
    .string()
    .url()
    .refine((v) => /^https?:\/\/[^/?#]+$/.test(v), 'an origin: http(s)://host[:port], with no path, query or trailing slash')
    .optional().describe('The console\'s public origin (scheme://host[:port], no path); the redirect URI is `<origin>/auth/callback`; https, or http on a loopback host only (its cookies are `__Host-`, Secure)').meta({ shownDefault: '`http://<HOST>:<PORT>`' }),
  CONSOLE_SCOPES: z.string().optional().describe('What the console asks the issuer for (the access token must be the API\'s: its audience)').meta({ shownDefault: '`openid profile <AUTH_AUDIENCE>/.default`' }),
  CONSOLE_SESSION_MAX_HOURS: z.coerce.number().min(0.05).max(8).default(8).describe('The longest a console session lasts (never past its access token\'s expiry; 0.05-8)'),
  UI_PROXY_PORT: port.default(3002).describe('The Consul UI proxy\'s listener (in the API process), host-routed by `<cluster-id>.<CONSOLE_UI_HOST_SUFFIX>`; in production a wildcard DNS name and certificate for `*.<suffix>` in front of it'),
  UI_PROXY_HOST: z.string().optional().describe('The Consul UI proxy\'s listen address').meta({ shownDefault: '`HOST`' }),
  CONSOLE_UI_HOST_SUFFIX: z
    .string()
    .regex(/^(?=.{1,200}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'a DNS name in lowercase, such as ui.localhost or ui.console.example.com')
    .default('ui.localhost').describe('Each cluster\'s UI origin is `<cluster-id>.<suffix>` (a lowercase DNS name)'),
  CONSOLE_UI_SCHEME: z.enum(['http', 'https']).default('http').describe('Scheme of the UI origins as browsers see them (production: `https`; `http` only with a suffix under `localhost`)'),
  CONSOLE_UI_PUBLIC_PORT: port.optional().describe('Port of the UI origins as browsers see them (production: `443`)').meta({ shownDefault: 'the proxy\'s port' }),
  CONSOLE_SSO_CODE_TTL_S: z.coerce.number().int().min(5).max(120).default(30).describe('How long an *Open Consul UI* code may wait to be redeemed, seconds (5-120)'),
  CONSOLE_UI_RECHECK_MS: z.coerce.number().int().min(0).max(60_000).default(5000).describe('How long the proxy trusts its last read of a UI session (console session, roles, cluster state); `0`: every request'),
  CONSOLE_SWEEP_MS: z.coerce.number().int().min(200).default(30_000).describe('How often the worker ends expired console sessions and revokes due Consul UI tokens'),
  AZURE_TENANT_ID: z.string().optional().describe('The control plane\'s own app registration: the Entra ID tenant that owns it'),
  AZURE_CLIENT_ID: z.string().optional().describe('The control plane\'s own app registration\'s client id, used to read managed applications back (and by the Azure target); unset: `DefaultAzureCredential` (a managed identity in Azure)'),
  AZURE_CLIENT_SECRET: z.string().optional().describe('The control plane\'s own app registration\'s client secret; unset: `DefaultAzureCredential`'),
  AZURE_MANAGED_IDENTITY_CLIENT_ID: z.string().optional().describe('A user-assigned managed identity instead of a client secret, when the control plane runs in Azure'),
  AZURE_CONSUL_PACKAGES: z.string().optional().describe('The Azure target\'s Consul packages: `{ "<version>": { "url": "https://....deb", "sha256": "<hex>" } }`, what each scale-set instance installs (checked against the hash); set, `azure` is the default target'),
  AZURE_ADMIN_SSH_PUBLIC_KEY: z.string().optional().describe('Required with `AZURE_CONSUL_PACKAGES`: the operator\'s break-glass SSH public key (one line, `ssh-ed25519 ...` or `ssh-rsa ...` of 2048+ bits), put on every server VM\'s admin user: Azure requires a key when password login is disabled'),
  AZURE_MANAGEMENT_SUBNET_ID: z.string().optional().describe('Required with `AZURE_CONSUL_PACKAGES`: the subnet (resource id) of the control plane\'s VNet where the worker makes each cluster\'s private endpoint, the one path to its servers (their addresses overlap other customers\' and are never routed to); its subscription is the one the clusters\' Private Link services approve'),
  AZURE_VM_CLUSTERS_DIR: z.string().default('/var/lib/managed-consul/clusters').describe('Where the VMs\' custom data writes the server folders (tests choose their own)'),
  AZURE_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(5000).describe('How soon the worker asks ARM again about a running deployment or instance action'),
  AZURE_AUTHORITY_HOST: z.string().url().optional().describe('Token authority for the control plane\'s own credentials (sovereign clouds; tests point it at the fake)').meta({ shownDefault: 'Entra ID' }),
  ARM_ENDPOINT: z.string().url().default('https://management.azure.com').describe('Azure Resource Manager (managed applications are read back from it; its origin is the token audience)'),
  NOTIFICATION_SECRET: z.string().min(32, 'at least 32 characters (for example 32 random bytes, base64url)').optional().describe('Shared secret of `POST /resource` (the `sig` of the offer\'s notification URL), 32 characters at least; unset: the endpoint answers 404'),
  OPERATOR_TENANT_ID: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a tenant id (GUID)')
    .transform((v) => v.toLowerCase())
    .optional().describe('The operator\'s own Entra ID tenant: `Platform.SRE` counts only in tokens from it (a customer\'s admin can assign any app role in their own tenant); unset, no token has operator rights').meta({ shownDefault: 'none (`npm start`: `99999999-9999-4999-8999-999999999999`)' }),
  AZURE_STORAGE_CONNECTION_STRING: z
    .string()
    .default(
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;',
    ).describe('Blob Storage for snapshots of `local` clusters (an `azure` cluster\'s go to its own storage account); locally set in `.local/env`').meta({ shownDefault: 'Azurite\'s development account' }),
  SNAPSHOT_CONTAINER: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'a blob container name: 3-63 lowercase letters, digits and single hyphens').default('consul-snapshots').describe('Blob container for those snapshots'),
  EXTRA_CONSUL_VERSIONS: z.string().default('').describe('JSON list of extra catalog entries `{ version, status, binary, reports }` (tests register a second name for the same binary; `reports` stays the truth). At most one may be `RECOMMENDED`; it then replaces the built-in one as RECOMMENDED (the default for new clusters and the target of automatic upgrades)').meta({ shownDefault: 'empty' }),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('pretty').describe('`json` for structured logs'),
  WORKER_NAME: z.string().regex(/^[\w.-]{1,64}$/, 'letters, digits, dots, dashes and underscores, 64 at most').default('worker').describe('A worker process\'s name: its pid file (`<LOCAL_DIR>/run/<name>.pid`), so that several workers of one clone are stopped one by one'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(128).describe('Operations one worker runs at once (1-256). Operations mostly wait on Consul, storage and ARM, and the per-cluster lock keeps one per cluster (an operation waiting for its cluster gives its place back); the runner shares its start and end statements between the operations running at the same moment, so more at once means fewer, larger statements ([benchmarks log](benchmarks-log.md), session 5: a 1,000-cluster wave of no-op operations 313–392 ms at 32, 211–239 ms at 128). The operations\' own statements share `DATABASE_POOL_SIZE` connections'),
  JOB_LOCK_MS: z.coerce.number().int().min(1000).default(15000).describe('BullMQ\'s job lock: a killed (or stalled) worker\'s job is handed to another worker after about this long. The job lock only decides who *tries*; whether it may run is the operation\'s lease'),
  OPERATION_LEASE_MS: z.coerce.number().int().min(1000).default(30000).describe('An operation\'s claim lease (renewed every third of it while it runs, one statement per worker). A Running operation is claimed again only once its lease has lapsed, so a killed worker\'s operation resumes after about `max(JOB_LOCK_MS, OPERATION_LEASE_MS)`; a runner that lost its lease (paused longer than this, or cut off from the database) stops at its next step and writes nothing more'),
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8).describe('Attempts (exponential backoff from 1 s) before an operation fails'),
  RECONCILE_INTERVAL_MS: schedulePeriod(200).default(10000).describe('How often each worker\'s reconciler re-enqueues unfinished operations whose job was lost and frees locks held by ended operations; also the token sweeper\'s period (once per period across all workers)'),
  SNAPSHOT_TICK_MS: schedulePeriod(1000).default(60000).describe('How often the workers look for clusters whose scheduled snapshot is due (once per period across all workers, like every scheduler: see [architecture](architecture.md#schedulers-once-per-period-across-workers))'),
  HEALTH_TICK_MS: schedulePeriod(1000).default(10000).describe('How often the workers check every running cluster\'s servers for dead ones and queue repairs (once per period across all workers)'),
  UPGRADE_TICK_MS: schedulePeriod(1000).default(300000).describe('How often the workers look for automatic upgrades whose maintenance window is open (once per period across all workers)'),
  CERT_ROTATION_TICK_MS: schedulePeriod(1000).default(3_600_000).describe('How often the workers look for certificates near their expiry (once per period across all workers)'),
  CERT_ROTATION_THRESHOLD_DAYS: z.coerce.number().int().min(1).max(364).default(30).describe('Server certificates (1 year) are rotated when the earliest expires within this many days (1-364)'),
  CA_ROTATION_THRESHOLD_DAYS: z.coerce.number().int().min(1).max(1824).default(180).describe('The CA (5 years) is rolled when it expires within this many days (1-1824, at least `CERT_ROTATION_THRESHOLD_DAYS`: server certificates never outlive their CA)'),
  WAVE_TICK_MS: z.coerce.number().int().min(100).default(2000).describe('How often the worker advances maintenance waves'),
  LOCAL_CONCURRENT_STARTS: z.coerce.number().int().min(0).max(256).default(0).describe('Clusters of the local target one worker starts at once, from starting their servers to the ACL check; 0: twice the machine\'s cores. More creates than this wait their turn, holding no database connection: 50 standard clusters started together on 2 cores (150 Consul processes) starved each other\'s elections and retried for minutes ([benchmarks log](benchmarks-log.md), create-burst). Deletes and other operations never wait for it'),
  CLUSTER_READY_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60000).describe('How long create waits for a leader and all voters'),
  API_VERIFY_ANSWERS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true')
    .describe('`true`: every JSON answer of a route is checked against its contract (libs/contracts) and a mismatch answers 500 `answer_contract_violation` (the tests run so)'),
  TOKEN_WAIT_MS: z.coerce.number().int().min(0).max(120_000).default(30_000).describe('How long `POST /tokens` waits for its operation before answering 202 with a collect link (0-120000; 0: never waits)'),
  TOKEN_COLLECT_WINDOW_MS: z.coerce.number().int().min(1000).default(600_000).describe('A token\'s secret may be collected this long after the token was made; then the worker revokes it in Consul'),
  FEDERATION_TOKEN_TTL_MS: z.coerce.number().int().min(60_000).max(86_400_000).default(3_600_000).describe('How long a federation token (POST /v1/clusters/{id}/federation-token) may be used to create a secondary (1 min to 24 h)'),
  BILLING_TICK_MS: schedulePeriod(100).default(60000).describe('How often the workers close hours into usage records and export pending usage (once per period across all workers)'),
  METERING_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(300000).describe('An hour is closed this long after it ends (late state changes land first)'),
  BILLING_EXPORTER: z.enum(['file', 'marketplace']).default('file').describe('`file` (JSON lines per day, the local default) or `marketplace` (the metering API)'),
  BILLING_EXPORT_DIR: z.string().default(path.join(localDir, 'usage')).describe('The `file` exporter\'s folder').meta({ shownDefault: '`.local/usage`' }),
  BILLING_PLAN_ID: z.string().min(1).default('consul-payg').describe('The marketplace plan usage is reported under'),
  MARKETPLACE_METERING_URL: z.string().url().default('https://marketplaceapi.microsoft.com').describe('The metering API\'s base URL'),
  MARKETPLACE_TENANT_ID: z.string().optional().describe('The publisher app registration\'s tenant (client credentials; required with `marketplace`)'),
  MARKETPLACE_CLIENT_ID: z.string().optional().describe('The publisher app registration\'s client id (required with `marketplace`)'),
  MARKETPLACE_CLIENT_SECRET: z.string().optional().describe('The publisher app registration\'s client secret (required with `marketplace`)'),
  MARKETPLACE_AUTHORITY_HOST: z.string().url().optional().describe('Token authority of the metering credentials (sovereign clouds; tests point it at the fake)').meta({ shownDefault: 'Entra ID' }),
  AUDIT_EXPORT_TICK_MS: z.coerce.number().int().min(100).default(30_000).describe('How often the worker exports new audit events to the containers customers named (each export runs on one worker at a time)'),
  AUDIT_EXPORT_RETRY_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000).describe('A failed audit export is tried again after this long, doubled after each further failure, at most an hour'),
  AUDIT_EXPORT_PAGE_EVENTS: z.coerce.number().int().min(1).max(5000).default(500).describe('Audit events an export reads at a time (1-5000); each page is one append per hour blob it touches and one commit'),
  AUDIT_EXPORT_LEASE_MS: z.coerce.number().int().min(1000).default(60_000).describe('How long a worker holds an audit export it is writing (renewed after each append); a killed worker\'s export is taken over after this long'),
  AUDIT_EXPORT_BLOB_SUFFIXES: z
    .string()
    .regex(/^[a-z0-9.-]+(,[a-z0-9.-]+)*$/, 'comma-separated DNS suffixes such as blob.core.windows.net')
    .default('blob.core.windows.net')
    .describe('The blob endpoints an audit export\'s container URL may name: `https://<account>.<suffix>/<container>` (sovereign clouds: `blob.core.usgovcloudapi.net`, `blob.core.chinacloudapi.cn`); nothing else is ever connected to'),
  AUDIT_EXPORT_DEV_ENDPOINT: z
    .string()
    .url()
    .refine((v) => { const u = new URL(v); return isLoopbackHost(u.hostname) && /^\/[a-z0-9]{3,24}$/.test(u.pathname) && !u.search; }, 'a loopback Azurite blob endpoint such as http://127.0.0.1:10000/devstoreaccount1')
    .optional().describe('Local development only: an Azurite blob endpoint (`http://127.0.0.1:<port>/<account>`) an audit export\'s container URL may also name; `npm start` and the tests set it').meta({ shownDefault: 'none' }),
  AUDIT_EXPORT_KILL_AT: z
    .string()
    .regex(/^(before-append|after-create|after-append|after-readback|after-commit)(:[1-9]\d*)?$/, '<point>[:<n>], the point one of before-append, after-create, after-append, after-readback, after-commit')
    .optional().describe('Tests only (`NODE_ENV=test`): the worker SIGKILLs itself the n-th time (default 1st) its audit export reaches this point, to prove a kill there loses and repeats nothing').meta({ shownDefault: 'none' }),
  BILLING_EXPORT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4).describe('Batches of 25 in flight at once (1-64)'),
});

/** The schema itself: its descriptions render docs/configuration.md (config-docs.ts). */
export const configSchema = schema;

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
  if (parsed.data.AUDIT_EXPORT_KILL_AT && parsed.data.NODE_ENV !== 'test') {
    throw new ConfigError('invalid configuration:\n  AUDIT_EXPORT_KILL_AT: only with NODE_ENV=test (it kills the worker on purpose)');
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
