import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { generateClusterPki } from '../pki';
import { generateGossipKey, generateManagementToken } from '../secrets';
import { ConsulHttpClient } from '../consul/consul-http';
import { ConsulConnections } from '../consul/consul-api';
import { targetLiveness } from '../target';
import { LocalTarget, type LocalClusterSecrets, type LocalClusterSpec } from './local-target';
import { findBusyPorts } from './loopback-ports';
import { CONSUL_SERVER_BOUND_PORTS } from './server-config';

/**
 * Runs real Consul 1.8.7 servers. Addresses are in 127.99.0.0/16, apart from
 * the product's 127.64.0.0/10 range.
 */

const CONSUL_BINARY =
  process.env['CONSUL_BINARY'] ?? path.resolve(__dirname, '../../../../../.local/consul/usr/bin/consul');
const LEADER_TIMEOUT_MS = 60_000;
const run = promisify(execFile);

async function newCluster(
  clusterId: string,
  datacenter: string,
  addresses: string[],
): Promise<{ spec: LocalClusterSpec; secrets: LocalClusterSecrets; pkiMs: number }> {
  const started = performance.now();
  const pki = await generateClusterPki({ datacenter, serverAddresses: addresses });
  const pkiMs = performance.now() - started;
  return {
    spec: {
      clusterId,
      datacenter,
      consulVersion: '1.8.7',
      servers: addresses.map((address, i) => ({ index: i + 1, address })),
    },
    secrets: { pki, gossipKey: generateGossipKey(), managementToken: generateManagementToken() },
    pkiMs,
  };
}

/** The Consul API of clusters on `target`; one per target. */
const consulApis = new Map<LocalTarget, ConsulConnections>();
function consulOf(target: LocalTarget): ConsulConnections {
  let api = consulApis.get(target);
  if (!api) consulApis.set(target, (api = new ConsulConnections({ liveness: targetLiveness(target) })));
  return api;
}

function newTarget(clustersDir: string): LocalTarget {
  return new LocalTarget({
    clustersDir,
    consulBinary: (version) => {
      assert.equal(version, '1.8.7');
      return CONSUL_BINARY;
    },
  });
}

/** TLS 1.2 handshake on Consul's RPC port (first byte 0x03 = RPC over TLS). */
async function rpcTlsHandshake(
  address: string,
  datacenter: string,
  caPem: string,
  client?: { certPem: string; keyPem: string },
): Promise<'accepted' | 'rejected'> {
  const socket = netConnect({ host: address, port: 8300 });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(Buffer.from([0x03]));
  return new Promise((resolve) => {
    const secure = tlsConnect({
      socket,
      ca: caPem,
      servername: `server.${datacenter}.consul`,
      maxVersion: 'TLSv1.2', // so a missing client certificate fails the handshake itself
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    });
    secure.once('secureConnect', () => {
      secure.destroy();
      resolve('accepted');
    });
    secure.once('error', () => {
      secure.destroy();
      resolve('rejected');
    });
  });
}

async function assertPortsFree(addresses: string[]): Promise<void> {
  for (const address of addresses) {
    assert.deepEqual(await findBusyPorts(address, CONSUL_SERVER_BOUND_PORTS), [], `ports of ${address} are free`);
  }
}

describe('LocalTarget with real Consul 1.8.7 servers', () => {
  // npm test installs Consul first; a missing binary is a failure, not a skip.
  assert.ok(existsSync(CONSUL_BINARY), `no Consul binary at ${CONSUL_BINARY}`);
  let clustersDir: string;
  let target: LocalTarget;
  const created: string[] = [];

  before(async () => {
    clustersDir = await fs.mkdtemp(path.join(os.tmpdir(), 'provisioner-local-test-'));
    target = newTarget(clustersDir);
  });

  after(async () => {
    for (const id of created) await target.stopAndRemove(id, { gracefulTimeoutMs: 5_000 });
    target.close();
    consulOf(target).close();
    await fs.rm(clustersDir, { recursive: true, force: true });
  });

  test('3-server cluster: leader, ACLs, tokens, CLI, no duplicates, clean removal', async (t) => {
    const addresses = ['127.99.1.1', '127.99.1.2', '127.99.1.3'];
    const { spec, secrets, pkiMs } = await newCluster('c3', 'dc-three', addresses);
    created.push(spec.clusterId);
    t.diagnostic(`PKI (CA + 3 server certs): ${pkiMs.toFixed(1)} ms`);
    await assertPortsFree(addresses);

    await target.writeServerFiles(spec, secrets);
    const paths = path.join(clustersDir, 'c3', 'server-1');
    assert.equal((await fs.stat(path.join(paths, 'tls', 'server-key.pem'))).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.join(paths, 'config', 'server.json'))).mode & 0o777, 0o600);
    const before = await fs.stat(path.join(paths, 'config', 'server.json'));
    await target.writeServerFiles(spec, secrets); // unchanged content: no rewrite
    const again = await fs.stat(path.join(paths, 'config', 'server.json'));
    assert.equal(again.ino, before.ino);
    assert.equal(again.mtimeMs, before.mtimeMs);

    const spawnedAt = performance.now();
    const start = await target.startServers(spec, secrets);
    assert.deepEqual(start.started.map((s) => s.index), [1, 2, 3]);
    assert.deepEqual(start.alreadyRunning, []);

    // Too short a timeout: a clear error with the last observed state and no token.
    const early = await consulOf(target).for(spec, secrets).waitForLeader({ timeoutMs: 50 }).then(
      () => assert.fail('no leader can exist 50 ms after spawn'),
      (err: Error) => err,
    );
    assert.match(early.message, /Cluster c3 had no leader with 3 voters after \d+ ms \(leader=.*voters=\d\/3.*last: /);
    assert.ok(!early.message.includes(secrets.managementToken), 'no token in errors');

    const leader = await consulOf(target).for(spec, secrets).waitForLeader({ timeoutMs: LEADER_TIMEOUT_MS });
    const spawnToLeaderMs = performance.now() - spawnedAt;
    t.diagnostic(`spawn -> leader with 3 voters: ${spawnToLeaderMs.toFixed(0)} ms (waitForLeader elapsedMs ${leader.elapsedMs})`);
    assert.equal(leader.voters, 3);
    assert.ok(addresses.map((a) => `${a}:8300`).includes(leader.leader), `leader ${leader.leader}`);

    await consulOf(target).for(spec, secrets).verifyAclEnforced();

    // A new management token works for KV.
    const token = await consulOf(target).for(spec, secrets).createToken({ description: 'test token' });
    assert.notEqual(token.secretId, secrets.managementToken);
    const client = new ConsulHttpClient(secrets.pki.caCertPem);
    try {
      const put = await client.request({ address: addresses[1]!, port: 8501, method: 'PUT', path: '/v1/kv/test/hello', token: token.secretId, body: 'world' });
      assert.equal(put.status, 200);
      const get = await client.request({ address: addresses[2]!, port: 8501, method: 'GET', path: '/v1/kv/test/hello?raw', token: token.secretId });
      assert.equal(get.status, 200);
      assert.equal(get.body, 'world'); // stored as the JSON text "world", parsed back by the client
      const anon = await client.request({ address: addresses[0]!, port: 8501, method: 'GET', path: '/v1/kv/test/hello' });
      assert.equal(anon.status, 403, 'anonymous read denied (default deny)');
      const ui = await client.request({ address: addresses[0]!, port: 8501, method: 'GET', path: '/ui/' });
      assert.equal(ui.status, 200, 'UI served on HTTPS');
    } finally {
      client.close();
    }

    // createToken with caller-chosen ids is idempotent.
    const ids = { accessorId: randomUUID(), secretId: randomUUID() };
    const first = await consulOf(target).for(spec, secrets).createToken({ description: 'idempotent', ...ids });
    const retry = await consulOf(target).for(spec, secrets).createToken({ description: 'idempotent', ...ids });
    assert.deepEqual(first, ids);
    assert.deepEqual(retry, ids);

    // The real CLI over HTTPS sees 3 voters.
    const caFile = path.join(paths, 'tls', 'ca.pem');
    const { stdout } = await run(CONSUL_BINARY, ['operator', 'raft', 'list-peers', `-http-addr=https://${addresses[0]}:8501`, `-ca-file=${caFile}`], {
      env: { PATH: process.env['PATH'] ?? '', CONSUL_HTTP_TOKEN: secrets.managementToken },
      timeout: 20_000,
    });
    const peers = stdout.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/));
    t.diagnostic(`consul operator raft list-peers:\n${stdout.trim()}`);
    assert.equal(peers.length, 3);
    assert.equal(peers.filter((cols) => cols[4] === 'true').length, 3, 'three voters');
    assert.equal(peers.filter((cols) => cols[3] === 'leader').length, 1, 'one leader');

    // RPC demands a client certificate signed by the cluster CA.
    assert.equal(await rpcTlsHandshake(addresses[0]!, spec.datacenter, secrets.pki.caCertPem), 'rejected');
    assert.equal(await rpcTlsHandshake(addresses[0]!, spec.datacenter, secrets.pki.caCertPem, secrets.pki.servers[1]), 'accepted');

    // No duplicates, also from a fresh instance (as after a worker restart).
    const observed = await target.observe(spec.clusterId);
    assert.deepEqual(observed.map((o) => o.index), [1, 2, 3]);
    const restarted = newTarget(clustersDir);
    const startAgain = await restarted.startServers(spec, secrets);
    restarted.close();
    assert.deepEqual(startAgain.started, []);
    assert.deepEqual(startAgain.alreadyRunning, observed);
    assert.deepEqual(await target.observe(spec.clusterId), observed);

    const stopStarted = performance.now();
    await target.stopAndRemove(spec.clusterId);
    t.diagnostic(`stopAndRemove (3 servers): ${(performance.now() - stopStarted).toFixed(0)} ms`);
    assert.deepEqual(await target.observe(spec.clusterId), []);
    for (const o of observed) assert.throws(() => process.kill(o.pid, 0), { code: 'ESRCH' });
    assert.equal(existsSync(path.join(clustersDir, 'c3')), false);
    await assertPortsFree(addresses);
    await target.stopAndRemove(spec.clusterId); // idempotent
  });

  test('1-server cluster: leader, ACLs, only the cluster CA is trusted, clean removal', async (t) => {
    const addresses = ['127.99.2.1'];
    const { spec, secrets } = await newCluster('c1', 'dc-one', addresses);
    created.push(spec.clusterId);
    await target.writeServerFiles(spec, secrets);
    const spawnedAt = performance.now();
    await target.startServers(spec, secrets);
    const leader = await consulOf(target).for(spec, secrets).waitForLeader({ timeoutMs: LEADER_TIMEOUT_MS });
    t.diagnostic(`1 server: spawn -> leader ${(performance.now() - spawnedAt).toFixed(0)} ms`);
    assert.deepEqual(leader.voters, 1);
    assert.equal(leader.leader, '127.99.2.1:8300');
    await consulOf(target).for(spec, secrets).verifyAclEnforced();

    const foreign = await generateClusterPki({ datacenter: 'dc-one', serverAddresses: addresses });
    const stranger = new ConsulHttpClient(foreign.caCertPem);
    try {
      await assert.rejects(
        stranger.request({ address: addresses[0]!, port: 8501, method: 'GET', path: '/v1/status/leader' }),
        /certificate/i,
      );
    } finally {
      stranger.close();
    }

    await target.stopAndRemove(spec.clusterId);
    assert.deepEqual(await target.observe(spec.clusterId), []);
    assert.equal(existsSync(path.join(clustersDir, 'c1')), false);
    await assertPortsFree(addresses);
  });

  test('servers outlive a worker SIGKILLed right after spawning them; no duplicate on retry', async (t) => {
    const { spec, secrets } = await newCluster('orphan', 'dc-orphan', ['127.99.6.1']);
    created.push(spec.clusterId);
    const input = path.join(clustersDir, 'orphan-input.json');
    await fs.writeFile(input, JSON.stringify({ clustersDir, binary: CONSUL_BINARY, spec, secrets }), { mode: 0o600 });
    const index = require.resolve('../index');
    const workerScript = `
      const { LocalTarget } = require(${JSON.stringify(index)});
      const { clustersDir, binary, spec, secrets } = JSON.parse(require('fs').readFileSync(${JSON.stringify(input)}, 'utf8'));
      const target = new LocalTarget({ clustersDir, consulBinary: () => binary });
      target.writeServerFiles(spec, secrets)
        .then(() => target.startServers(spec, secrets))
        .then((r) => { process.stdout.write(JSON.stringify(r) + '\\n'); setInterval(() => {}, 1000); });
    `;
    const worker = spawn(process.execPath, ['-e', workerScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(worker.stdout!, 'data')) as [Buffer];
    const spawned = JSON.parse(line.toString()) as { started: { index: number; pid: number }[] };
    worker.kill('SIGKILL');
    await once(worker, 'exit');
    t.diagnostic(`worker killed after spawning server pid ${spawned.started[0]?.pid}`);

    assert.deepEqual(await target.observe(spec.clusterId), spawned.started, 'the server survived its worker');
    const retry = await target.startServers(spec, secrets);
    assert.deepEqual(retry.started, []);
    await consulOf(target).for(spec, secrets).waitForLeader({ timeoutMs: LEADER_TIMEOUT_MS });
    await target.stopAndRemove(spec.clusterId);
    assert.deepEqual(await target.observe(spec.clusterId), []);
    await assertPortsFree(['127.99.6.1']);
  });

  test('startServers fails clearly, spawning nothing, when a port is held by another process', async () => {
    const addresses = ['127.99.3.1', '127.99.3.2', '127.99.3.3'];
    const { spec, secrets } = await newCluster('busy', 'dc-busy', addresses);
    created.push(spec.clusterId);
    await target.writeServerFiles(spec, secrets);
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(8501, '127.99.3.3', resolve));
    try {
      await assert.rejects(
        target.startServers(spec, secrets),
        /Cannot start dc-busy-server-3 of cluster busy: port\(s\) 127\.99\.3\.3:8501\/tcp in use by another process/,
      );
      assert.deepEqual(await target.observe(spec.clusterId), []);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    await target.stopAndRemove(spec.clusterId);
  });

  test('startServers refuses to start from files of another spec', async () => {
    const { spec, secrets } = await newCluster('stale', 'dc-stale', ['127.99.4.1']);
    created.push(spec.clusterId);
    await assert.rejects(target.startServers(spec, secrets), /missing; call writeServerFiles first/);
    await target.writeServerFiles(spec, secrets);
    await assert.rejects(
      target.startServers(spec, { ...secrets, gossipKey: generateGossipKey() }),
      /not the one of this spec/,
    );
    assert.deepEqual(await target.observe(spec.clusterId), []);
    await target.stopAndRemove(spec.clusterId);
  });

  test('waitForLeader fails fast, with the log, when a server died', async () => {
    const { spec, secrets } = await newCluster('dies', 'dc-dies', ['127.99.5.1']);
    created.push(spec.clusterId);
    await target.writeServerFiles(spec, secrets);
    const { started } = await target.startServers(spec, secrets);
    process.kill(started[0]!.pid, 'SIGKILL');
    const began = performance.now();
    await assert.rejects(consulOf(target).for(spec, secrets).waitForLeader({ timeoutMs: LEADER_TIMEOUT_MS }), /dc-dies-server-1 of cluster dies is not running; end of .*consul\.log/);
    assert.ok(performance.now() - began < 5_000, 'failed well before the timeout');
    await target.stopAndRemove(spec.clusterId);
    assert.equal(existsSync(path.join(clustersDir, 'dies')), false);
  });
});
