import { ClusterLayout } from '../local/cluster-layout';
import { serverFileList, serverFiles, type ClusterServerSecrets, type ClusterServersSpec } from '../server-files';

/**
 * The custom data of a cluster's scale set (`customData` of infra/arm/cluster.json):
 * a cloud-config that writes every server's files, made by `serverFiles`, the
 * same function the `local` target writes its servers with, so a VM runs the
 * very configuration a local server runs.
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

export interface ConsulPackage {
  version: string;
  /** HTTPS URL of the Debian package (.deb) holding usr/bin/consul. */
  url: string;
  /** Its SHA-256 (hex): checked before it is unpacked. */
  sha256: string;
}

export interface CloudInitOptions {
  consul: ConsulPackage;
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
  for (const server of spec.servers) {
    const paths = layout.server(spec.clusterId, server.index);
    for (const f of serverFileList(serverFiles(spec, secrets, server.index, paths))) add(f.path, f.mode, f.content);
    add(`${SERVER_TABLE_DIR}/${server.address}`, 0o644, `${paths.configDir}\n`);
    dataDirs.push(paths.dataDir);
  }
  add(SERVER_LAUNCHER, 0o755, launcherScript());
  add(DATA_DISK_MOUNTER, 0o755, dataDiskScript());
  add(SERVER_UNIT, 0o644, systemdUnit());
  add(BOOT_SCRIPT, 0o755, bootScript(opts.consul, dataDirs, layout.clusterDir(spec.clusterId)));
  return { write_files: files, runcmd: [[BOOT_SCRIPT]] };
}

const q = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

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
