import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ClusterRepository, TenantClusterRepository, closeDb, createDb, type Config, type Db } from '../../../../libs/core/src';
import {
  READY, generateClusterPki, generateGossipKey, generateManagementToken, type ClusterSecrets, type ClusterSpec, type ServerRoutes, type Target, type TargetKind,
} from '../../../../libs/provisioner/src';
import { dropTestDatabase, testConfig } from '../../../../test/support/stack';
import { ClusterTarget } from './cluster-target';
import { ServerRouteCache } from './server-routes';

const TENANT = 'eeeeeeee-0000-4000-8000-000000000021';
const ADDRESSES = ['172.25.16.4', '172.25.16.5', '172.25.16.6'];

/** Hosts that do every change at once; with `routes`, a target that reaches its servers through them (as Azure's). */
function fakeHosts(kind: TargetKind, routes?: () => Map<string, ServerRoutes>): Target & { readonly asked: number } {
  const ready = () => Promise.resolve(READY);
  let asked = 0;
  return {
    kind,
    get asked() {
      return asked;
    },
    observe: () => Promise.resolve([]),
    ensureInfrastructure: ready, writeServerConfig: ready, startServers: ready, putServer: ready, reloadServer: ready, stopServer: ready, removeServer: ready, deleteAll: ready, updateEndpoint: ready,
    publicAddress: () => Promise.resolve(null),
    serverBinary: () => Promise.resolve(null),
    serversOnOldConfig: () => Promise.resolve([]),
    explainDown: () => Promise.resolve(''),
    close: () => undefined,
    ...(routes ? {
      routes: () => {
        asked++;
        return Promise.resolve(routes());
      },
    } : {}),
  };
}

/** ClusterTarget on the given hosts instead of the registry's. */
class ClusterTargetOn extends ClusterTarget {
  constructor(config: Config, clusters: ClusterRepository, private readonly fake: Target) {
    super(config, clusters, undefined as never);
  }
  override hosts(): Promise<Target> {
    return Promise.resolve(this.fake);
  }
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('the worker\'s routes to servers', () => {
  let config: Config;
  let db: Db;
  let clusters: ClusterRepository;

  before(async () => {
    config = await testConfig();
    db = createDb(config.DATABASE_URL, 2);
    clusters = new ClusterRepository(db);
  });
  after(async () => {
    await closeDb(db);
    await dropTestDatabase(config.DATABASE_URL);
  });

  async function newCluster(target: TargetKind): Promise<{ spec: ClusterSpec; secrets: ClusterSecrets }> {
    const { cluster } = await new TenantClusterRepository(db).createWithOperation({
      tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', name: `routes-${target}`, region: 'westeurope', datacenter: 'dc1',
      consulVersion: '1.8.7', tier: 'standard', serverCount: 3, publicEndpoint: false, createdBy: 'test', target,
    });
    await clusters.assignAddresses(cluster.id, ADDRESSES);
    return {
      spec: { clusterId: cluster.id, datacenter: 'dc1', consulVersion: '1.8.7', servers: ADDRESSES.map((address, index) => ({ index, address })) },
      secrets: { pki: await generateClusterPki({ datacenter: 'dc1', serverAddresses: ADDRESSES }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() },
    };
  }
  const endpoints = async (clusterId: string) => (await clusters.get(clusterId))!.servers.map((s) => s.apiEndpoint);

  it('a target with routes: the HTTPS endpoints go to the server rows after each change settled, again when they change, and the Consul API connects through them', async () => {
    const { spec, secrets } = await newCluster('azure');
    const port = await closedPort();
    let nat = [50001, 50002, 50003];
    const hosts = fakeHosts('azure', () => new Map(ADDRESSES.map((a, i) => [a, { https: { host: '127.0.0.1', port: i === 0 ? port : nat[i]! }, rpc: { host: '127.0.0.1', port: 60000 + i } }])));
    const target = new ClusterTargetOn(config, clusters, hosts);
    try {
      assert.deepEqual(await endpoints(spec.clusterId), [null, null, null]);
      await target.writeServerConfig(spec, secrets);
      assert.equal(hosts.asked, 1, 'asked once the change settled');
      assert.deepEqual(await endpoints(spec.clusterId), [`127.0.0.1:${port}`, '127.0.0.1:50002', '127.0.0.1:50003']);

      // The Consul API goes through the route (here to a port nothing listens on), never to the server's own address.
      await assert.rejects(target.consul.for(spec, secrets).servedCertificateFingerprint(0), new RegExp(`^Error: https://172\\.25\\.16\\.4:8501 via 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
      assert.equal(hosts.asked, 1, 'the kept routes served the call');

      // A server replaced: its NAT port changes; the next settled change finds it and writes only that row.
      nat = [50001, 50012, 50003];
      await target.putServer(spec, secrets, 1);
      assert.equal(hosts.asked, 2);
      assert.deepEqual(await endpoints(spec.clusterId), [`127.0.0.1:${port}`, '127.0.0.1:50012', '127.0.0.1:50003']);
      for (const change of [() => target.startServers(spec, secrets), () => target.stopServer(spec, secrets, 2, { leave: false }), () => target.removeServer(spec, secrets, 2)]) {
        const asked = hosts.asked;
        await change();
        assert.ok(hosts.asked > asked, 'routes asked again after the change');
      }
      await target.deleteAll(spec.clusterId);
    } finally {
      target.close();
    }
  });

  it('the repository writes only the rows whose endpoint changes', async () => {
    const { spec } = await newCluster('azure');
    const id = spec.clusterId;
    assert.equal(await clusters.setServerApiEndpoints(id, new Map([[ADDRESSES[0]!, '10.0.0.4:50001'], [ADDRESSES[1]!, '10.0.0.4:50002']])), 2);
    assert.equal(await clusters.setServerApiEndpoints(id, new Map([[ADDRESSES[0]!, '10.0.0.4:50001'], [ADDRESSES[1]!, '10.0.0.4:50009']])), 1);
    assert.equal(await clusters.setServerApiEndpoints(id, new Map([[ADDRESSES[0]!, null], ['10.9.9.9', '10.0.0.4:1']])), 1, 'a server of no row is not written');
    assert.deepEqual(await endpoints(id), [null, '10.0.0.4:50009', null]);
  });

  it('a server without a route: the target is asked again (at most every interval) and the call fails rather than go to its address', async () => {
    const { spec } = await newCluster('azure');
    let routed = ADDRESSES.slice(0, 2);
    const hosts = fakeHosts('azure', () => new Map(routed.map((a, i) => [a, { https: { host: '10.0.0.4', port: 50001 + i }, rpc: { host: '10.0.0.4', port: 60001 + i } }])));
    const cache = new ServerRouteCache(() => Promise.resolve(hosts), clusters, { missIntervalMs: 0, maxAgeMs: 3_600_000 });
    assert.deepEqual(await cache.route(spec.clusterId, ADDRESSES[0]!, 'rpc'), { host: '10.0.0.4', port: 60001 });
    assert.equal(hosts.asked, 1);
    await assert.rejects(cache.route(spec.clusterId, ADDRESSES[2]!, 'https'), /server 172\.25\.16\.6 of cluster .* has no route from the control plane yet/);
    assert.equal(hosts.asked, 2, 'a miss asks again');
    routed = ADDRESSES;
    assert.deepEqual(await cache.route(spec.clusterId, ADDRESSES[2]!, 'https'), { host: '10.0.0.4', port: 50003 });
    assert.deepEqual(await endpoints(spec.clusterId), ['10.0.0.4:50001', '10.0.0.4:50002', '10.0.0.4:50003']);

    const patient = new ServerRouteCache(() => Promise.resolve(hosts), clusters, { missIntervalMs: 3_600_000, maxAgeMs: 3_600_000 });
    routed = ADDRESSES.slice(0, 1);
    await patient.refresh(spec.clusterId);
    const asked = hosts.asked;
    await assert.rejects(patient.route(spec.clusterId, ADDRESSES[1]!, 'https'), /no route/);
    assert.equal(hosts.asked, asked, 'not asked again within the interval');
  });

  it('a target without routes (local): no route, and nothing written', async () => {
    const { spec, secrets } = await newCluster('local');
    const hosts = fakeHosts('local');
    const target = new ClusterTargetOn(config, clusters, hosts);
    try {
      await target.writeServerConfig(spec, secrets);
      await target.startServers(spec, secrets);
      assert.deepEqual(await endpoints(spec.clusterId), [null, null, null]);
      const cache = new ServerRouteCache(() => Promise.resolve(hosts), clusters);
      assert.equal(await cache.route(spec.clusterId, ADDRESSES[0]!, 'https'), undefined);
    } finally {
      target.close();
    }
  });
});
