import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateClusterPki } from '../pki';
import { generateGossipKey, generateManagementToken } from '../secrets';
import { LocalTarget, type LocalClusterSpec } from '../local/local-target';
import { serverFiles } from '../server-files';
import { ClusterLayout } from '../local/cluster-layout';
import {
  AZURE_CLUSTERS_DIR, BOOT_SCRIPT, BOOT_STATUS, DATA_DISK, DATA_DISK_MOUNTER, SECRETS_FETCHER, SECRETS_MANIFEST, SERVER_TABLE_DIR, SERVER_UNIT,
  clusterCustomData, decodeCustomData, serverSecretName, serverSecretValue, subnetPlan, vaultResource, type ConsulPackage, type SecretsManifest, type VaultAccess,
} from './cloud-init';

const CONSUL: ConsulPackage = { version: '1.8.7', url: 'https://packages.example.test/consul_1.8.7_amd64.deb', sha256: 'ab'.repeat(32) };
const VAULT: VaultAccess = { uri: 'https://kvorders1.vault.azure.net/', identityId: '/subscriptions/s/resourceGroups/mrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-identity' };

async function filesUnder(dir: string): Promise<Map<string, { content: string; mode: number }>> {
  const out = new Map<string, { content: string; mode: number }>();
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.set(file, { content: await fs.readFile(file, 'utf8'), mode: (await fs.stat(file)).mode & 0o777 });
  }
  return out;
}

test('custom data: the public files the local target writes for a cluster, byte for byte and with their mode; the secret ones are vault secrets, none in the custom data', async () => {
  const clustersDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cloud-init-'));
  try {
    const addresses = ['127.99.40.1', '127.99.40.2', '127.99.40.3'];
    const spec: LocalClusterSpec = {
      clusterId: randomUUID(), datacenter: 'orders', consulVersion: '1.8.7',
      servers: addresses.map((address, i) => ({ index: i + 1, address })),
    };
    const secrets = { pki: await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: addresses }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() };
    const local = new LocalTarget({ clustersDir, consulBinary: () => '/nonexistent/consul' });
    await local.writeServerFiles(spec, secrets);
    local.close();
    const written = await filesUnder(path.join(clustersDir, spec.clusterId));
    assert.equal(written.size, 3 * 4, 'the local target wrote a CA bundle, certificate, key and config per server');

    const customData = clusterCustomData(spec, secrets, { consul: CONSUL, vault: VAULT, clustersDir });
    const decoded = decodeCustomData(customData);
    const fromCloudInit = new Map([...decoded.files].filter(([p]) => p.startsWith(clustersDir + path.sep)));
    const secret = (file: string) => /server-key\.pem$|server\.json$/.test(file);
    assert.deepEqual([...fromCloudInit.keys()].sort(), [...written.keys()].filter((f) => !secret(f)).sort(), 'the public files at the same paths');
    for (const [file, w] of written) {
      if (secret(file)) continue;
      const c = fromCloudInit.get(file)!;
      assert.ok(c.content === w.content, `${path.relative(clustersDir, file)}: byte-identical`);
      assert.equal(c.mode, w.mode, `${path.relative(clustersDir, file)}: mode`);
    }
    // Nothing secret anywhere in the custom data: not the gossip key, not the management token, not a private key.
    const plain = Buffer.from(customData, 'base64').toString('utf8') + [...decoded.files.values()].map((f) => f.content).join('\n');
    assert.ok(!plain.includes(secrets.gossipKey) && !plain.includes(secrets.managementToken) && !plain.includes('PRIVATE KEY'), 'no secret in the custom data');
    // Each server's secret files are its vault secret, byte for byte what the local target wrote.
    const manifest = JSON.parse(decoded.files.get(SECRETS_MANIFEST)!.content) as SecretsManifest;
    assert.deepEqual([manifest.vault, manifest.resource, manifest.identity], [VAULT.uri, 'https://vault.azure.net', VAULT.identityId]);
    const layout = new ClusterLayout(clustersDir);
    for (const s of spec.servers) {
      const entry = manifest.servers[s.address];
      assert.equal(entry.secret, serverSecretName(s.index));
      const value = JSON.parse(serverSecretValue(serverFiles(spec, secrets, s.index, layout.server(spec.clusterId, s.index)))) as { key: string; config: string };
      for (const role of ['key', 'config'] as const) {
        const w = written.get(entry[role].path)!;
        assert.ok(value[role] === w.content, `server ${s.index} ${role}: byte-identical in its vault secret`);
        assert.equal(entry[role].mode, w.mode, `server ${s.index} ${role}: mode`);
      }
    }
    const config = JSON.parse((JSON.parse(serverSecretValue(serverFiles(spec, secrets, 2, layout.server(spec.clusterId, 2)))) as { config: string }).config);
    assert.equal(config.acl.default_policy, 'deny');
    assert.equal(config.encrypt, secrets.gossipKey);
    // Each address leads its instance to that server's own folder.
    for (const s of spec.servers) {
      assert.equal(decoded.files.get(`${SERVER_TABLE_DIR}/${s.address}`)?.content, `${path.join(clustersDir, spec.clusterId, `server-${s.index}`, 'config')}\n`);
    }
  } finally {
    await fs.rm(clustersDir, { recursive: true, force: true });
  }
});

test('custom data on a VM: the default layout, the package checked before it is unpacked, the server started by systemd', async () => {
  const { serverAddresses } = subnetPlan('172.25.16.0/24', 3);
  const spec = { clusterId: randomUUID(), datacenter: 'dc1', servers: serverAddresses.map((address, i) => ({ index: i, address })) };
  const secrets = { pki: await generateClusterPki({ datacenter: 'dc1', serverAddresses }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() };
  const { files, runcmd } = decodeCustomData(clusterCustomData(spec, secrets, { consul: CONSUL, vault: VAULT }));
  const paths = new ClusterLayout(AZURE_CLUSTERS_DIR).server(spec.clusterId, 0);
  const config = JSON.parse((JSON.parse(serverSecretValue(serverFiles(spec, secrets, 0, paths))) as { config: string }).config);
  assert.equal(config.bind_addr, '172.25.16.5');
  assert.deepEqual(config.retry_join, ['172.25.16.5:8301', '172.25.16.6:8301', '172.25.16.7:8301']);
  const manifest = JSON.parse(files.get(SECRETS_MANIFEST)!.content) as SecretsManifest;
  assert.deepEqual(manifest.servers['172.25.16.5'].key, { path: `${AZURE_CLUSTERS_DIR}/${spec.clusterId}/server-0/tls/server-key.pem`, mode: 0o600 });
  assert.equal(files.get(SECRETS_FETCHER)!.mode, 0o755);
  // One runcmd: the boot script, which stops at its first failure (cloud-init runs runcmd under /bin/sh without -e).
  assert.deepEqual(runcmd, [[BOOT_SCRIPT]]);
  const boot = files.get(BOOT_SCRIPT)!;
  assert.equal(boot.mode, 0o755);
  const lines = boot.content.split('\n');
  assert.equal(lines[2], 'set -eu', 'every step must succeed');
  const check = lines.findIndex((c) => c.includes(`${CONSUL.sha256}  /run/consul.deb' | sha256sum --check`));
  const unpack = lines.findIndex((c) => c.startsWith('dpkg-deb --extract /run/consul.deb'));
  assert.ok(check >= 0 && unpack > check, 'the package is checked against its sha256 before it is unpacked');
  const fetch = lines.indexOf(`${SECRETS_FETCHER} 600`);
  assert.ok(fetch > unpack && fetch < lines.indexOf('systemctl enable --now managed-consul.service'), 'the secrets are fetched from the vault before the server starts');
  assert.equal(lines.filter(Boolean).at(-1), 'systemctl enable --now managed-consul.service');
  assert.match(boot.content, new RegExp(`status=${BOOT_STATUS}\n[^]*trap '.*echo ok > "\\$status".*echo "failed \\$rc \\$step" > "\\$status"`), 'its outcome left for the control plane');
  // Consul's data is on the data disk, mounted on the server's data folder before Consul starts: a reimage keeps it.
  assert.match(files.get(SERVER_UNIT)!.content, new RegExp(`^ExecStartPre=\\+${DATA_DISK_MOUNTER}$`, 'm'));
  assert.match(files.get(DATA_DISK_MOUNTER)!.content, new RegExp(`disk=${DATA_DISK}\n[^]*mount -o noatime "\\$disk" "\\$data"`));
  assert.throws(() => clusterCustomData(spec, secrets, { consul: { ...CONSUL, url: 'http://insecure.example/consul.deb' }, vault: VAULT }), /must be https/);
  assert.equal(vaultResource('https://kv1.vault.usgovcloudapi.net/'), 'https://vault.usgovcloudapi.net', 'the audience of a sovereign cloud\'s vaults');
});

test('subnetPlan: the internal endpoint at host index 3, servers after it, the Private Link NAT address after the fifth; refuses what cannot hold them', () => {
  assert.deepEqual(subnetPlan('172.25.16.0/24', 5), {
    internalEndpoint: '172.25.16.4',
    serverAddresses: ['172.25.16.5', '172.25.16.6', '172.25.16.7', '172.25.16.8', '172.25.16.9'],
    managementNatAddress: '172.25.16.10',
  });
  // The NAT address does not move with the server count: a scale-up never meets it.
  assert.equal(subnetPlan('172.25.16.0/24', 1).managementNatAddress, '172.25.16.10');
  assert.deepEqual(subnetPlan('10.1.2.240/28', 5).serverAddresses.at(-1), '10.1.2.249');
  assert.equal(subnetPlan('10.1.2.240/28', 5).managementNatAddress, '10.1.2.250');
  assert.throws(() => subnetPlan('172.25.16.0/24', 6), /at most 5/);
  assert.throws(() => subnetPlan('10.1.2.3/24', 1), /host bits/);
  assert.throws(() => subnetPlan('10.1.2.0/29', 3), /too small/);
});
