import fs from 'node:fs';
import path from 'node:path';
import { UPGRADE_PINS, pinnedRange, type ClientConfig as ClientConfigView, type ClusterView, type OperationView } from '../../../../libs/contracts/src';

type Accepted = { operation: OperationView };
import { command, group, type CommandContext } from '../command';
import type { Output } from '../output';
import { followHint, waitForOperation } from '../operation-watch';
import { firstLine } from '../stdin';
import { federation, federationToken } from './federation';
import { clusterToken } from './tokens';

const wait = { type: 'boolean', description: 'wait until the operation ends, showing its progress' } as const;
const clusterPath = (id: string) => `/v1/clusters/${encodeURIComponent(id)}`;

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const hh = (h: number) => `${String(h).padStart(2, '0')}:00`;

/** `automatic, Sunday 02:00 UTC for 4 h` / `manual`, and the pin when there is one: `; pinned to 1.8.x`. */
function describeUpgradePolicy(p: NonNullable<ClusterView['upgradePolicy']>, version: string): string {
  const range = pinnedRange(p.pin, version);
  const pin = range ? `; pinned to ${range} (${p.pin})` : '';
  if (!p.window) return `${p.mode}${pin}`;
  const w = p.window;
  return `${p.mode}, ${DAYS[w.dayOfWeek] ?? `day ${w.dayOfWeek}`} ${hh(w.startHourUtc)} UTC for ${w.hours} h${p.mode === 'manual' ? ' (window not in use)' : ''}${pin}`;
}

/** `on, https://...:8501` / `on (being made)` / `off`, and whom it admits when the allowlist is empty. */
function describePublicEndpoint(c: ClusterView): string {
  if (!c.publicEndpoint) return c.ipAllowlist.length ? 'off (the allowlist below is kept for when it is on)' : 'off';
  const where = c.endpoints.public ? `on, ${c.endpoints.public} (UI: ${c.endpoints.public}/ui/)` : 'on (being made)';
  return c.ipAllowlist.length ? where : `${where}; the allowlist is empty: no source is admitted`;
}

/** `--allow CIDR[=description]`, repeatable: the allowlist's entries in order. */
function allowlistOf(a: CommandContext['args']): { cidr: string; description: string }[] {
  return a.strings('allow').map((v) => {
    const eq = v.indexOf('=');
    return eq < 0 ? { cidr: v.trim(), description: '' } : { cidr: v.slice(0, eq).trim(), description: v.slice(eq + 1) };
  });
}

const ALLOW = { type: 'string', value: 'CIDR[=DESCRIPTION]', multiple: true, description: 'a source network the public endpoint admits (IPv4 or IPv6), repeatable, e.g. --allow 203.0.113.0/24=office' } as const;
const ALLOW_ANY = { type: 'boolean', description: 'confirm an --allow of 0.0.0.0/0 or ::/0 (every address on the internet)' } as const;

const PIN_HELP = `${UPGRADE_PINS.join(', ')}: how far automatic upgrades and maintenance waves may move the version (patch: same major.minor; minor: same major)`;

export function printCluster(out: Output, c: ClusterView): void {
  out.fields([
    ['ID', c.id],
    ['Name', c.name],
    ['State', c.stateReason ? `${c.state} (${c.stateReason})` : c.state],
    ['Health', c.health ? (c.health.reason ? `${c.health.status} (${c.health.reason})` : c.health.status) : null],
    ['Tier', `${c.tier} (${c.servers} server${c.servers === 1 ? '' : 's'})`],
    ['Consul version', c.consulVersion],
    ['Region', c.region],
    ['Datacenter', c.datacenter],
    ...(c.primaryClusterId ? [['Federation', `secondary of ${c.primaryClusterId} ('hcs clusters federation ${c.id}')`] as const] : []),
    ['Subscription', c.subscriptionId],
    ['Resource group', c.resourceGroup],
    ['Managed resource group', c.managedResourceGroup],
    ['HTTPS', c.endpoints.https],
    ['UI', c.endpoints.ui],
    ['Public endpoint', describePublicEndpoint(c)],
    ['Allowed sources', c.ipAllowlist.length ? c.ipAllowlist.map((e) => (e.description ? `${e.cidr} (${e.description})` : e.cidr)).join(', ') : 'none'],
    ['Servers', c.serverAddresses.join(', ')],
    ['Snapshots', c.snapshotPolicy ? `every ${c.snapshotPolicy.intervalHours} h, keep ${c.snapshotPolicy.retention}` : null],
    ['Upgrades', c.upgradePolicy ? describeUpgradePolicy(c.upgradePolicy, c.consulVersion) : null],
    ['Deletion protection', c.deletionProtection ? 'on' : 'off'],
    ['Created', c.createdAt],
    ['Running since', c.runningSince],
  ]);
}

/** After a change was accepted: with --wait, wait and show the cluster as it ended up; else say how to follow. */
async function settle(ctx: CommandContext, clusterId: string, accepted: unknown, op: OperationView, intro: string): Promise<void> {
  if (!ctx.args.flag('wait')) {
    ctx.output.result(accepted, () => ctx.output.line(`${intro} ${followHint(op)}`));
    return;
  }
  await waitForOperation(ctx, op.id);
  const cluster = await ctx.api().get<ClusterView>(clusterPath(clusterId));
  ctx.output.result(cluster, () => printCluster(ctx.output, cluster));
}

const create = command({
  name: 'create',
  summary: 'Create a cluster, secured by default (TLS, ACLs default-deny, gossip encryption)',
  options: {
    name: { type: 'string', value: 'NAME', required: true, description: 'lowercase letters, digits, hyphens; starts with a letter' },
    subscription: { type: 'string', value: 'GUID', required: true, description: 'the Azure subscription id' },
    'resource-group': { type: 'string', value: 'RG', required: true, description: 'the resource group the cluster belongs to' },
    region: { type: 'string', value: 'REGION', required: true, description: 'an Azure region, e.g. westeurope (see GET /v1/regions)' },
    tier: { type: 'string', value: 'TIER', required: true, description: 'development (1 server), standard (3) or plus (5)' },
    datacenter: { type: 'string', value: 'DC', description: 'the Consul datacenter name (default: the cluster name); a secondary needs one no member of its federation has' },
    version: { type: 'string', value: 'VERSION', description: 'the Consul version (default: the RECOMMENDED one; see GET /v1/versions); a secondary needs its primary\'s' },
    'public-endpoint': { type: 'boolean', description: 'the HTTPS API and UI also on a public address, for the --allow sources only' },
    allow: ALLOW,
    'allow-any-address': ALLOW_ANY,
    'deletion-protection': { type: 'boolean', description: "refuse deletes until it is turned off ('clusters update ID --deletion-protection off')" },
    'upgrade-pin': { type: 'string', value: 'PIN', description: `${PIN_HELP} (default: none)` },
    'federation-token': { type: 'string', value: 'TOKEN', description: "join that primary's federation as a secondary: a token from 'clusters federation-token PRIMARY'; '-' reads it from stdin" },
    wait,
  },
  async run(ctx) {
    const a = ctx.args;
    const body: Record<string, unknown> = {
      name: a.required('name'),
      subscriptionId: a.required('subscription'),
      resourceGroup: a.required('resource-group'),
      region: a.required('region'),
      tier: a.required('tier'),
    };
    if (a.string('datacenter') !== undefined) body.datacenter = a.string('datacenter');
    if (a.string('version') !== undefined) body.consulVersion = a.string('version');
    if (a.flag('public-endpoint')) body.publicEndpoint = true;
    if (a.strings('allow').length) body.ipAllowlist = allowlistOf(a);
    if (a.flag('allow-any-address')) body.allowAnyAddress = true;
    if (a.flag('deletion-protection')) body.deletionProtection = true;
    if (a.string('upgrade-pin') !== undefined) body.upgradePolicy = { pin: a.string('upgrade-pin') };
    const fed = a.string('federation-token');
    if (fed !== undefined) body.federationToken = (fed === '-' ? await firstLine(ctx.io.stdin ?? process.stdin) : fed).trim();
    const res = await ctx.api().post<Accepted & { cluster: ClusterView }>('/v1/clusters', body);
    await settle(ctx, res.cluster.id, res, res.operation, `Creating cluster ${res.cluster.name} (${res.cluster.id}).`);
  },
});

const list = command({
  name: 'list',
  summary: "List your tenant's clusters",
  async run(ctx) {
    const res = await ctx.api().get<{ clusters: ClusterView[] }>('/v1/clusters');
    ctx.output.result(res, () => {
      if (!res.clusters.length) return ctx.output.line('No clusters.');
      ctx.output.table(
        ['ID', 'NAME', 'STATE', 'TIER', 'VERSION', 'REGION', 'CREATED'],
        res.clusters.map((c) => [c.id, c.name, c.state, c.tier, c.consulVersion, c.region, c.createdAt]),
      );
    });
  },
});

const get = command({
  name: 'get',
  summary: 'Show one cluster',
  positionals: ['ID'],
  async run(ctx) {
    const c = await ctx.api().get<ClusterView>(clusterPath(ctx.args.positionals[0]!));
    ctx.output.result(c, () => printCluster(ctx.output, c));
  },
});

const remove = command({
  name: 'delete',
  summary: 'Delete a cluster and its servers',
  positionals: ['ID'],
  options: { wait },
  async run(ctx) {
    const id = ctx.args.positionals[0]!;
    const res = await ctx.api().delete<Accepted>(clusterPath(id));
    if (!ctx.args.flag('wait')) return ctx.output.result(res, () => ctx.output.line(`Deleting cluster ${id}. ${followHint(res.operation)}`));
    const op = await waitForOperation(ctx, res.operation.id);
    ctx.output.result(op, () => ctx.output.line(`Cluster ${id} deleted.`));
  },
});

const scale = command({
  name: 'scale',
  summary: 'Change the tier (number of servers) of a cluster',
  positionals: ['ID'],
  options: { tier: { type: 'string', value: 'TIER', required: true, description: 'development, standard or plus' }, wait },
  async run(ctx) {
    const id = ctx.args.positionals[0]!;
    const res = await ctx.api().patch<Partial<Accepted> & Partial<ClusterView>>(clusterPath(id), { tier: ctx.args.required('tier') });
    // Nothing to do (already that tier) may come back as the cluster itself.
    if (!res.operation) return ctx.output.result(res, () => printCluster(ctx.output, res as ClusterView));
    await settle(ctx, id, res, res.operation, `Scaling cluster ${id} to ${ctx.args.required('tier')}.`);
  },
});

const upgrade = command({
  name: 'upgrade',
  summary: 'Upgrade the Consul version of a cluster, one server at a time',
  positionals: ['ID'],
  options: { version: { type: 'string', value: 'VERSION', required: true, description: 'the Consul version to move to (see GET /v1/versions)' }, wait },
  async run(ctx) {
    const id = ctx.args.positionals[0]!;
    const res = await ctx.api().post<Accepted>(`${clusterPath(id)}/upgrade`, { consulVersion: ctx.args.required('version') });
    await settle(ctx, id, res, res.operation, `Upgrading cluster ${id} to Consul ${ctx.args.required('version')}.`);
  },
});

const ON_OFF: Readonly<Record<string, boolean>> = { on: true, off: false };

const update = command({
  name: 'update',
  summary: 'Change settings: deletion protection and the upgrade pin (at once); the public endpoint and its allowlist (an operation)',
  positionals: ['ID'],
  options: {
    'deletion-protection': { type: 'string', value: 'on|off', description: 'on: deletes are refused until it is turned off again' },
    'upgrade-pin': { type: 'string', value: 'PIN', description: PIN_HELP },
    'public-endpoint': { type: 'string', value: 'on|off', description: 'the HTTPS API and UI on a public address (for the allowlist only), or not' },
    allow: { ...ALLOW, description: 'replaces the whole allowlist with these sources, repeatable: --allow CIDR[=description] ...' },
    'allow-any-address': ALLOW_ANY,
    wait,
  },
  async run(ctx) {
    const a = ctx.args;
    const id = a.positionals[0]!;
    const body: Record<string, unknown> = {};
    const protection = a.string('deletion-protection');
    if (protection !== undefined) {
      if (!Object.hasOwn(ON_OFF, protection)) throw a.fail(`--deletion-protection takes on or off, not '${protection}'`);
      body.deletionProtection = ON_OFF[protection];
    }
    if (a.string('upgrade-pin') !== undefined) body.upgradePolicy = { pin: a.string('upgrade-pin') };
    const endpoint = a.string('public-endpoint');
    if (endpoint !== undefined) {
      if (!Object.hasOwn(ON_OFF, endpoint)) throw a.fail(`--public-endpoint takes on or off, not '${endpoint}'`);
      body.publicEndpoint = ON_OFF[endpoint];
    }
    if (a.strings('allow').length) body.ipAllowlist = allowlistOf(a);
    if (a.flag('allow-any-address')) body.allowAnyAddress = true;
    if (!Object.keys(body).length) throw a.fail('nothing to change: give --deletion-protection, --upgrade-pin, --public-endpoint and/or --allow');
    const res = await ctx.api().patch<ClusterView | (Accepted & { cluster: ClusterView })>(clusterPath(id), body);
    // An endpoint change is an operation (202); the other settings apply at once (200, the cluster).
    if ('operation' in res) return settle(ctx, id, res, res.operation, `Changing the public endpoint of cluster ${id}.`);
    ctx.output.result(res, () => printCluster(ctx.output, res));
  },
});

const upgradePolicy = command({
  name: 'upgrade-policy',
  summary: 'Set the upgrade policy: automatic upgrades to the recommended version inside a weekly window (UTC), or manual',
  positionals: ['ID'],
  options: {
    mode: { type: 'string', value: 'MODE', description: 'automatic or manual (default: unchanged)' },
    'window-day': { type: 'string', value: 'N', description: 'day the window opens: 0 Sunday ... 6 Saturday' },
    'window-start-hour': { type: 'string', value: 'H', description: 'hour (UTC, 0-23) the window opens' },
    'window-hours': { type: 'string', value: 'N', description: 'how long the window stays open (1-24)' },
  },
  async run(ctx) {
    const a = ctx.args;
    const id = a.positionals[0]!;
    const window = [a.integer('window-day', 0), a.integer('window-start-hour', 0), a.integer('window-hours', 0)];
    const given = window.filter((v) => v !== undefined).length;
    if (given !== 0 && given !== 3) throw a.fail('give --window-day, --window-start-hour and --window-hours together');
    const policy: Record<string, unknown> = {};
    if (a.string('mode') !== undefined) policy.mode = a.string('mode');
    if (given === 3) policy.window = { dayOfWeek: window[0], startHourUtc: window[1], hours: window[2] };
    if (!Object.keys(policy).length) throw a.fail('nothing to change: give --mode and/or the window');
    const c = await ctx.api().patch<ClusterView>(clusterPath(id), { upgradePolicy: policy });
    ctx.output.result(c, () => printCluster(ctx.output, c));
  },
});

const clientConfig = command({
  name: 'client-config',
  summary: 'Write ca.pem and client.json for a Consul client agent joining the cluster',
  positionals: ['ID'],
  options: { out: { type: 'string', value: 'DIR', description: 'the folder to write them to (default: the current one)' } },
  async run(ctx) {
    const cc = await ctx.api().get<ClientConfigView>(`${clusterPath(ctx.args.positionals[0]!)}/client-config`);
    const dir = path.resolve(ctx.args.string('out') ?? '.');
    fs.mkdirSync(dir, { recursive: true });
    const caFile = path.join(dir, 'ca.pem');
    const configFile = path.join(dir, 'client.json');
    fs.writeFileSync(caFile, cc.caPem);
    // Consul reads a relative ca_file from its working directory, not the config's: point at the file written here.
    // The gossip key is a secret: owner-only.
    fs.writeFileSync(configFile, `${JSON.stringify({ ...cc.consulConfig, ca_file: caFile }, null, 2)}\n`, { mode: 0o600 });
    ctx.output.result(cc, () => {
      ctx.output.line(`Wrote ${caFile} and ${configFile} (datacenter ${cc.datacenter}).`);
      if (cc.encrypt === undefined) ctx.output.line(`No gossip key in ${configFile}: ${cc.encryptOmitted ?? 'the API did not give one'}.`);
      ctx.output.line(`A client agent also needs acl.tokens.agent: a token from 'hcs tokens create ${ctx.args.positionals[0]}'.`);
      ctx.output.line(`The consul CLI: CONSUL_HTTP_ADDR=${cc.httpsAddress} CONSUL_CACERT=${caFile} CONSUL_HTTP_TOKEN=<secret>`);
    });
  },
});

export const clusters = group('clusters', 'Create, inspect, change and delete Consul clusters', [
  create, list, get, update, remove, scale, upgrade, upgradePolicy, clientConfig, clusterToken, federationToken, federation,
]);
