import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startForwarder, type TcpForwarder } from '../../../../test/support/tcp-forwarder';
import { dropTestDatabase, testConfig } from '../../../../test/support/stack';
import type { ClusterSecrets, ClusterSpec } from '../cluster-spec';
import { LocalTarget } from '../local/local-target';
import { caBundlePem, generateClusterPki } from '../pki';
import { generateGossipKey, generateManagementToken } from '../secrets';
import { targetLiveness } from '../target';
import { ConsulConnections } from './consul-api';
import { ConsulHttpClient } from './consul-http';
import { servedFingerprint } from './tls-probes';

/**
 * A server reached through a via (what a target's route gives: Azure's private endpoint and a NAT
 * port per server and port), against a real Consul 1.8.7 server behind TCP forwarders. The
 * forwarders listen on 127.0.0.1, which every server certificate names too: a check against the
 * host connected to would pass where the check against the server's own address must fail.
 */
describe('Consul servers reached through a via', { timeout: 180_000 }, () => {
  let databaseUrl: string;
  let clustersDir: string;
  let target: LocalTarget;
  let spec: ClusterSpec;
  let secrets: ClusterSecrets;
  let address: string;
  /** An address of the same block that no certificate of the cluster names. */
  let unnamed: string;
  let https: TcpForwarder;
  let rpc: TcpForwarder;
  const forwarders: TcpForwarder[] = [];

  before(async () => {
    const config = await testConfig();
    databaseUrl = config.DATABASE_URL;
    address = `127.${config.LOCAL_NET_OCTET}.240.1`;
    unnamed = `127.${config.LOCAL_NET_OCTET}.240.2`;
    clustersDir = await fs.mkdtemp(path.join(os.tmpdir(), 'consul-routes-test-'));
    target = new LocalTarget({ clustersDir, consulBinary: () => config.CONSUL_BIN });
    spec = { clusterId: 'routes', datacenter: 'dc-routes', consulVersion: '1.8.7', servers: [{ index: 0, address }] };
    secrets = {
      pki: await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: [address] }),
      gossipKey: generateGossipKey(),
      managementToken: generateManagementToken(),
    };
    await target.writeServerFiles(spec, secrets);
    await target.startServers(spec, secrets);
    https = await startForwarder({ host: address, port: 8501 });
    rpc = await startForwarder({ host: address, port: 8300 });
    forwarders.push(https, rpc);
  });

  after(async () => {
    await target?.stopAndRemove(spec.clusterId, { gracefulTimeoutMs: 5_000 });
    for (const f of forwarders) await f.close();
    if (clustersDir) await fs.rm(clustersDir, { recursive: true, force: true });
    if (databaseUrl) await dropTestDatabase(databaseUrl);
  });

  it('ConsulApi with a route makes its calls through it: the HTTPS API, the served certificate, the RPC handshake, a snapshot', async () => {
    const asked: string[] = [];
    const connections = new ConsulConnections({
      liveness: targetLiveness(target),
      route: async (clusterId, server, port) => {
        asked.push(`${clusterId} ${server} ${port}`);
        return port === 'https' ? https.endpoint : rpc.endpoint;
      },
    });
    const api = connections.for(spec, secrets);
    try {
      const before = https.connections;
      await api.waitForLeader({ timeoutMs: 60_000 });
      await api.verifyAclEnforced();
      assert.ok(https.connections > before, 'the HTTPS calls went through the via');
      assert.ok(asked.length > 0 && asked.every((a) => a === `routes ${address} https`), asked.join(', '));

      const served = await api.servedCertificateFingerprint(0);
      assert.equal(served, new X509Certificate(secrets.pki.servers[0]!.certPem).fingerprint256);

      const rpcBefore = rpc.connections;
      assert.equal(await api.acceptsClientCertificate(0, secrets.pki.servers[0]!), true);
      assert.equal(rpc.connections, rpcBefore + 1, 'the RPC handshake went through the RPC via');
      assert.ok(asked.includes(`routes ${address} rpc`));

      const snapshot = await api.saveSnapshot();
      assert.ok(snapshot.data.length > 0 && snapshot.index > 0n);
    } finally {
      connections.close();
    }
  });

  it('a route that fails is a server that does not answer: the call fails, it never goes to the address instead', async () => {
    const connections = new ConsulConnections({ route: () => Promise.reject(new Error('no route to this server yet')) });
    const api = connections.for(spec, secrets);
    try {
      await assert.rejects(api.leaderIndex(), /no route to this server yet/);
      await assert.rejects(api.servedCertificateFingerprint(0), /no route to this server yet/);
    } finally {
      connections.close();
    }
  });

  it('a via is verified against the server\'s own address: a certificate that does not name it is refused through the forwarder, kept-alive connection or not', async () => {
    const client = new ConsulHttpClient(caBundlePem(secrets.pki));
    const via = https.endpoint;
    try {
      const ok = await client.request({ address, port: 8501, via, method: 'GET', path: '/v1/status/leader' });
      assert.equal(ok.status, 200);
      // The pool now holds a verified connection to the forwarder: a request for another server through it must not reuse it.
      await assert.rejects(
        client.request({ address: unnamed, port: 8501, via, method: 'GET', path: '/v1/status/leader' }),
        (e: Error) => {
          assert.ok(e.message.startsWith(`GET https://${unnamed}:8501/v1/status/leader via ${via.host}:${via.port}: `), e.message);
          assert.match(e.message, /does not match certificate's altnames/);
          return true;
        },
      );
      await assert.rejects(servedFingerprint(unnamed, 8501, caBundlePem(secrets.pki), via), new RegExp(`^Error: https://${unnamed.replaceAll('.', '\\.')}:8501 via .*does not match certificate's altnames`));
      assert.equal(await servedFingerprint(address, 8501, caBundlePem(secrets.pki), via), new X509Certificate(secrets.pki.servers[0]!.certPem).fingerprint256);
    } finally {
      client.close();
    }
    // Another cluster's CA is refused through the via as directly.
    const foreign = await generateClusterPki({ datacenter: spec.datacenter, serverAddresses: [address] });
    const stranger = new ConsulHttpClient(foreign.caCertPem);
    try {
      await assert.rejects(stranger.request({ address, port: 8501, via, method: 'GET', path: '/v1/status/leader' }), /certificate/i);
    } finally {
      stranger.close();
    }
  });

  it('connections through different vias are kept apart: a request through each via opens its own', async () => {
    const second = await startForwarder({ host: address, port: 8501 });
    forwarders.push(second);
    const client = new ConsulHttpClient(caBundlePem(secrets.pki));
    try {
      const first = https.connections;
      assert.equal((await client.request({ address, port: 8501, via: https.endpoint, method: 'GET', path: '/v1/status/leader' })).status, 200);
      assert.equal((await client.request({ address, port: 8501, via: second.endpoint, method: 'GET', path: '/v1/status/leader' })).status, 200);
      assert.equal((await client.request({ address, port: 8501, method: 'GET', path: '/v1/status/leader' })).status, 200);
      assert.equal(https.connections, first + 1);
      assert.equal(second.connections, 1, 'the second via got a connection of its own');
    } finally {
      client.close();
    }
  });
});
