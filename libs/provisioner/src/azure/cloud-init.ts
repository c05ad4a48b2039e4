import { ClusterLayout } from '../local/cluster-layout';
import { serverFiles, type ClusterServerSecrets, type ClusterServersSpec, type ServerFileSet } from '../server-files';

/**
 * The custom data of a cluster's scale set (`customData` of infra/arm/cluster.json):
 * a cloud-config that writes every server's public files (CA bundle, its
 * certificate), made by `serverFiles`, the same function the `local` target
 * writes its servers with, so a VM runs the very configuration a local server
 * runs. Nothing secret is in it: each server's secret files (its TLS key, its
 * config with the gossip key and ACL tokens) are one secret of the cluster's
 * Key Vault (`serverSecretName`), written there by the control plane before it
 * deploys the servers, and fetched at boot (and again by Run Command on a
 * rotation) by SECRETS_FETCHER with the scale set's managed identity through
 * the instance metadata service, as Microsoft advises for secrets on VMs
 * (https://learn.microsoft.com/azure/virtual-machines/custom-data: not for
 * secrets; https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/tutorial-linux-managed-identities-vm-access).
 *
 * Every instance of a scale set gets the same custom data, so it carries each
 * server's files in that server's own folder (the `local` target's layout under
 * AZURE_CLUSTERS_DIR) and a table from server address to folder; at boot the
 * instance runs the server whose address it holds. The Azure target plans the
 * addresses (`subnetPlan`): in the cluster's own subnet Azure hands out the
 * lowest free addresses, the internal load balancer's static frontend first.
 *
 * The document is JSON (YAML's subset), so no YAML library is needed either way.
 */

/** Root of the server folders on a VM: `<root>/<clusterId>/server-<i>/{config,data,tls}`. */
export const AZURE_CLUSTERS_DIR = '/var/lib/managed-consul/clusters';
/** One file per server address, holding that server's config folder. */
export const SERVER_TABLE_DIR = '/etc/managed-consul/servers';
export const SERVER_LAUNCHER = '/usr/local/sbin/managed-consul-server';
/** Mounts the scale set's data disk (LUN 0) on this VM's server data folder before Consul starts (as root). */
export const DATA_DISK_MOUNTER = '/usr/local/sbin/managed-consul-data-disk';
/** The scale set's data disk: a reimage renews the OS disk and keeps it, so Consul's raft data survives. */
export const DATA_DISK = '/dev/disk/azure/scsi1/lun0';
export const SERVER_UNIT = '/etc/systemd/system/managed-consul.service';
/**
 * The boot, one script that stops at its first failing step. cloud-init runs
 * `runcmd` as a /bin/sh script without `set -e` (a failed checksum would not
 * stop the unpack) and reports the VM provisioned before `runcmd` ends
 * (https://cloudinit.readthedocs.io/en/latest/reference/modules.html#runcmd;
 * https://learn.microsoft.com/azure/virtual-machines/linux/using-cloud-init),
 * so the script records its outcome in BOOT_STATUS for the control plane.
 */
export const BOOT_SCRIPT = '/usr/local/sbin/managed-consul-boot';
/** `ok`, or `failed <exit status> <step>`; absent while the boot runs. On the OS disk: a reimage boots anew. */
export const BOOT_STATUS = '/var/lib/managed-consul/boot-status';
export const CONSUL_INSTALL_DIR = '/opt/managed-consul/consul';
/** The cluster's vault, the identity that reads it, and each server's secret and where its files go. No secret in it. */
export const SECRETS_MANIFEST = '/etc/managed-consul/secrets.json';
/** Fetches this VM's server secrets from the vault and writes them (0600, the consul user's); its argument: how long to wait for them, seconds. */
export const SECRETS_FETCHER = '/usr/local/sbin/managed-consul-secrets';
/** How long the boot waits for its secrets (a role assignment takes minutes to apply: https://learn.microsoft.com/azure/role-based-access-control/troubleshooting#symptom---role-assignment-changes-are-not-being-detected). */
export const BOOT_SECRETS_WAIT_S = 600;

/** Where the servers' secrets are: the cluster's Key Vault, read with the scale set's user-assigned identity. */
export interface VaultAccess {
  /** The vault's URI, its `properties.vaultUri` (https://<name>.vault.azure.net/). */
  uri: string;
  /** The scale set's user-assigned identity, by resource id (the metadata service's `msi_res_id`). */
  identityId: string;
}

/** The vault secret of server `index`: its secret files. */
export function serverSecretName(index: number): string {
  return `consul-server-${index}`;
}

/** What a server's vault secret holds: its TLS key and its config (gossip key, ACL tokens), as JSON. */
export function serverSecretValue(files: ServerFileSet): string {
  return JSON.stringify({ key: files.key.content, config: files.config.content });
}

/** The token audience of a vault: its host without the vault's own label (https://vault.azure.net in the public cloud). */
export function vaultResource(vaultUri: string): string {
  const host = new URL(vaultUri).hostname;
  const dot = host.indexOf('.');
  if (dot < 0) throw new Error(`not a Key Vault URI: ${vaultUri}`);
  return `https://${host.slice(dot + 1)}`;
}

export interface ConsulPackage {
  version: string;
  /** HTTPS URL of the Debian package (.deb) holding usr/bin/consul. */
  url: string;
  /** Its SHA-256 (hex): checked before it is unpacked. */
  sha256: string;
}

export interface CloudInitOptions {
  consul: ConsulPackage;
  vault: VaultAccess;
  /** Default AZURE_CLUSTERS_DIR; tests that realise an instance on this machine choose a folder of their own. */
  clustersDir?: string;
}

export interface CloudConfigFile {
  path: string;
  permissions: string;
  owner: string;
  encoding: 'b64';
  content: string;
}

export interface CloudConfig {
  write_files: CloudConfigFile[];
  runcmd: (string | string[])[];
}

const HEADER = '#cloud-config\n';

export function clusterCloudConfig(spec: ClusterServersSpec, secrets: ClusterServerSecrets, opts: CloudInitOptions): CloudConfig {
  assertPackage(opts.consul);
  const layout = new ClusterLayout(opts.clustersDir ?? AZURE_CLUSTERS_DIR);
  const files: CloudConfigFile[] = [];
  const add = (path: string, mode: number, content: string) =>
    files.push({ path, permissions: `0${mode.toString(8)}`, owner: 'root:root', encoding: 'b64', content: Buffer.from(content, 'utf8').toString('base64') });
  const dataDirs: string[] = [];
  const manifest: SecretsManifest = { vault: opts.vault.uri, resource: vaultResource(opts.vault.uri), identity: opts.vault.identityId, servers: {} };
  for (const server of spec.servers) {
    const paths = layout.server(spec.clusterId, server.index);
    const set = serverFiles(spec, secrets, server.index, paths);
    for (const f of [set.ca, set.cert]) add(f.path, f.mode, f.content);
    manifest.servers[server.address] = { secret: serverSecretName(server.index), key: { path: set.key.path, mode: set.key.mode }, config: { path: set.config.path, mode: set.config.mode } };
    add(`${SERVER_TABLE_DIR}/${server.address}`, 0o644, `${paths.configDir}\n`);
    dataDirs.push(paths.dataDir);
  }
  add(SECRETS_MANIFEST, 0o644, `${JSON.stringify(manifest, null, 1)}\n`);
  add(SECRETS_FETCHER, 0o755, secretsFetcher());
  add(SERVER_LAUNCHER, 0o755, launcherScript());
  add(DATA_DISK_MOUNTER, 0o755, dataDiskScript());
  add(SERVER_UNIT, 0o644, systemdUnit());
  add(BOOT_SCRIPT, 0o755, bootScript(opts.consul, dataDirs, layout.clusterDir(spec.clusterId)));
  return { write_files: files, runcmd: [[BOOT_SCRIPT]] };
}

const q = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

export interface SecretsManifest {
  vault: string;
  resource: string;
  identity: string;
  servers: Record<string, { secret: string; key: { path: string; mode: number }; config: { path: string; mode: number } }>;
}

/**
 * The fetcher (Python 3, which Debian's cloud images carry for cloud-init): a
 * token for the vault from the instance metadata service with the scale set's
 * identity (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http),
 * then the secret of the server whose address this VM holds (Key Vault's REST
 * API, https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret), its
 * files written atomically, 0600 and the consul user's. Not found, forbidden
 * (a role assignment still propagating), throttled or unreachable: asked again
 * until the wait is over. Its errors name the status, never a value.
 */
function secretsFetcher(): string {
  return [
    '#!/usr/bin/python3',
    "# Writes this VM's Consul server secrets from the cluster's Key Vault (managed-consul).",
    'import json, os, pwd, subprocess, sys, time, urllib.error, urllib.parse, urllib.request',
    `m = json.load(open(${JSON.stringify(SECRETS_MANIFEST)}))`,
    'deadline = time.time() + (int(sys.argv[1]) if len(sys.argv) > 1 else 60)',
    "mine = [m['servers'][a] for a in subprocess.run(['hostname', '-I'], capture_output=True, text=True, check=True).stdout.split() if a in m['servers']]",
    'if not mine:',
    "    sys.exit('managed-consul-secrets: no server of this cluster holds an address of this VM')",
    'server = mine[0]',
    "query = urllib.parse.urlencode({'api-version': '2018-02-01', 'resource': m['resource'], 'msi_res_id': m['identity']})",
    'def get(url, headers):',
    '    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:',
    '        return json.load(r)',
    'while True:',
    '    try:',
    "        token = get('http://169.254.169.254/metadata/identity/oauth2/token?' + query, {'Metadata': 'true'})['access_token']",
    "        value = json.loads(get(m['vault'] + 'secrets/' + server['secret'] + '?api-version=7.4', {'Authorization': 'Bearer ' + token})['value'])",
    '        break',
    '    except urllib.error.HTTPError as e:',
    "        where = e.url.split('?')[0] if e.url else 'the vault'",
    '        if (e.code not in (401, 403, 404, 408, 429) and e.code < 500) or time.time() > deadline:',
    "            sys.exit('managed-consul-secrets: HTTP %d from %s' % (e.code, where))",
    '    except (urllib.error.URLError, OSError) as e:',
    '        if time.time() > deadline:',
    "            sys.exit('managed-consul-secrets: %s' % getattr(e, 'reason', e))",
    '    time.sleep(3)',
    "consul = pwd.getpwnam('consul')",
    "for role in ('key', 'config'):",
    '    f = server[role]',
    "    tmp = f['path'] + '.new'",
    "    os.makedirs(os.path.dirname(f['path']), exist_ok=True)",
    "    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f['mode'])",
    '    os.write(fd, value[role].encode())',
    '    os.close(fd)',
    "    os.chmod(tmp, f['mode'])",
    '    os.chown(tmp, consul.pw_uid, consul.pw_gid)',
    "    os.replace(tmp, f['path'])",
    '',
  ].join('\n');
}

function bootScript(consul: ConsulPackage, dataDirs: string[], clusterDir: string): string {
  return [
    '#!/bin/sh',
    '# The boot of a Consul server VM: every step must succeed (set -e); the outcome is left in the boot status file.',
    'set -eu',
    `status=${BOOT_STATUS}`,
    'step=begin',
    'mkdir -p "$(dirname "$status")"',
    'rm -f "$status"',
    'trap \'rc=$?; if [ "$rc" -eq 0 ]; then echo ok > "$status"; else echo "failed $rc $step" > "$status"; fi\' EXIT',
    'step=user',
    'id -u consul >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin consul',
    'step=download',
    `curl --fail --silent --show-error --location --proto =https --output /run/consul.deb ${q(consul.url)}`,
    'step=checksum',
    `echo '${consul.sha256}  /run/consul.deb' | sha256sum --check --strict -`,
    'step=unpack',
    `mkdir -p ${CONSUL_INSTALL_DIR}`,
    `dpkg-deb --extract /run/consul.deb ${CONSUL_INSTALL_DIR}`,
    'rm -f /run/consul.deb',
    'step=secrets',
    `${SECRETS_FETCHER} ${BOOT_SECRETS_WAIT_S}`,
    'step=folders',
    ...dataDirs.map((d) => `install -d -m 0700 ${q(d)}`),
    // Keys and configs are 0600: only the consul user reads them, and only its folders are open to it.
    `chown -R consul:consul ${q(clusterDir)}`,
    `find ${q(clusterDir)} -type d -exec chmod 0700 '{}' +`,
    'step=service',
    'systemctl daemon-reload',
    'systemctl enable --now managed-consul.service',
    '',
  ].join('\n');
}

/** The cloud-config document (a `#cloud-config` header, then JSON). */
export function renderCloudInit(config: CloudConfig): string {
  return HEADER + JSON.stringify(config, null, 1) + '\n';
}

/** The scale set's `customData` template parameter: the document, base64 encoded. */
export function clusterCustomData(spec: ClusterServersSpec, secrets: ClusterServerSecrets, opts: CloudInitOptions): string {
  return Buffer.from(renderCloudInit(clusterCloudConfig(spec, secrets, opts)), 'utf8').toString('base64');
}

/** Reads custom data back: the files it writes (path → content and mode) and its commands. */
export function decodeCustomData(customData: string): { files: Map<string, { content: string; mode: number }>; runcmd: CloudConfig['runcmd'] } {
  const text = Buffer.from(customData, 'base64').toString('utf8');
  if (!text.startsWith(HEADER)) throw new Error('custom data is not a #cloud-config document');
  const doc = JSON.parse(text.slice(HEADER.length)) as CloudConfig;
  const files = new Map<string, { content: string; mode: number }>();
  for (const f of doc.write_files) {
    if (f.encoding !== 'b64') throw new Error(`${f.path}: unexpected encoding ${String(f.encoding)}`);
    files.set(f.path, { content: Buffer.from(f.content, 'base64').toString('utf8'), mode: parseInt(f.permissions, 8) });
  }
  return { files, runcmd: doc.runcmd };
}

/** The most servers a cluster has (the plus tier): the Private Link service's NAT address comes after theirs. */
const MAX_SERVERS = 5;

/**
 * Where things go in a cluster's subnet (the whole VNet prefix): Azure keeps
 * the first four addresses, the internal load balancer's static frontend takes
 * the next (host index 3, `cidrHost(vnetCidr, 3)` in cluster.json), the
 * servers get the following ones in order, and the Private Link service's
 * static NAT address follows the last a server may take (host index 9).
 */
export function subnetPlan(vnetCidr: string, serverCount: number): { internalEndpoint: string; serverAddresses: string[]; managementNatAddress: string } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(vnetCidr);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255)) throw new Error(`not an IPv4 CIDR: ${vnetCidr}`);
  const prefix = Number(m[5]);
  const base = m.slice(1, 5).reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new Error(`${vnetCidr} has host bits set`);
  // Azure keeps the network address, three more and the broadcast address.
  if (serverCount > MAX_SERVERS) throw new Error(`a cluster has at most ${MAX_SERVERS} servers, not ${serverCount}`);
  if (4 + 1 + MAX_SERVERS + 1 + 1 > size) throw new Error(`${vnetCidr} is too small for ${MAX_SERVERS} servers and the Private Link service's NAT address`);
  const ip = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return {
    internalEndpoint: ip(base + 4),
    serverAddresses: Array.from({ length: serverCount }, (_, i) => ip(base + 5 + i)),
    managementNatAddress: ip(base + 5 + MAX_SERVERS),
  };
}

function assertPackage(p: ConsulPackage): void {
  if (!/^https:\/\/[^\s'"]+$/.test(p.url)) throw new Error(`the Consul package URL must be https, got ${p.url}`);
  if (!/^[0-9a-f]{64}$/.test(p.sha256)) throw new Error('the Consul package sha256 must be 64 lowercase hex digits');
}

function launcherScript(): string {
  return [
    '#!/bin/sh',
    '# Every instance of the scale set has every server\'s files: run the one whose address this VM holds.',
    'set -eu',
    'for ip in $(hostname -I); do',
    `  if [ -f "${SERVER_TABLE_DIR}/$ip" ]; then`,
    `    exec ${CONSUL_INSTALL_DIR}/usr/bin/consul agent "-config-dir=$(cat "${SERVER_TABLE_DIR}/$ip")"`,
    '  fi',
    'done',
    'echo "managed-consul: no server of this cluster has an address of this VM ($(hostname -I))" >&2',
    'exit 1',
    '',
  ].join('\n');
}

function dataDiskScript(): string {
  return [
    '#!/bin/sh',
    '# Consul\'s data lives on the data disk (LUN 0), which a reimage keeps: mounted on this VM\'s server data folder.',
    'set -eu',
    `disk=${DATA_DISK}`,
    'for ip in $(hostname -I); do',
    `  if [ -f "${SERVER_TABLE_DIR}/$ip" ]; then`,
    `    data="$(dirname "$(cat "${SERVER_TABLE_DIR}/$ip")")/data"`,
    '    mountpoint -q "$data" && exit 0',
    '    [ -e "$disk" ] || { echo "managed-consul: no data disk at $disk" >&2; exit 1; }',
    '    blkid "$disk" >/dev/null 2>&1 || mkfs.ext4 -q -L consul-data "$disk"',
    '    install -d -m 0700 "$data"',
    '    mount -o noatime "$disk" "$data"',
    '    chown consul:consul "$data"',
    '    chmod 0700 "$data"',
    '    exit 0',
    '  fi',
    'done',
    'echo "managed-consul: no server of this cluster has an address of this VM ($(hostname -I))" >&2',
    'exit 1',
    '',
  ].join('\n');
}

function systemdUnit(): string {
  return [
    '[Unit]',
    'Description=Consul server (managed)',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'User=consul',
    'Group=consul',
    // '+': as root (formats and mounts the data disk); Consul itself runs as the consul user.
    `ExecStartPre=+${DATA_DISK_MOUNTER}`,
    `ExecStart=${SERVER_LAUNCHER}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'KillSignal=SIGTERM',
    'Restart=on-failure',
    'RestartSec=2',
    'LimitNOFILE=65536',
    'NoNewPrivileges=true',
    'ProtectSystem=full',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
