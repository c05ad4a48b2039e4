import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterWithServers } from '../../../../libs/core/src';
import { ConsulConnections, type ClusterSecrets } from '../../../../libs/provisioner/src';
import { ClusterContext, type ClusterSources } from './cluster-context';

const ID = 'cccccccc-0000-4000-8000-000000000021';

function row(addresses: string[], serverCount = 3): ClusterWithServers {
  return {
    id: ID, datacenter: 'dc1', consulVersion: '1.8.7', serverCount, target: 'local',
    servers: addresses.map((address, index) => ({ clusterId: ID, index, address, apiEndpoint: null })),
  } as ClusterWithServers;
}

const secretsOf = (managementToken: string): ClusterSecrets => ({ pki: { caCertPem: 'ca', caKeyPem: 'key', servers: [] }, gossipKey: 'gossip', managementToken });

/** Sources whose row and secrets the test changes, counting the reads. */
function sources(start: ClusterWithServers, secrets: ClusterSecrets | null) {
  const state = { row: start, secrets, rowReads: 0, secretReads: 0 };
  const s: ClusterSources = {
    cluster: () => {
      state.rowReads++;
      return Promise.resolve(state.row);
    },
    secrets: () => {
      state.secretReads++;
      return state.secrets ? Promise.resolve(state.secrets) : Promise.reject(new Error('the cluster secrets are not generated yet'));
    },
    consul: new ConsulConnections(),
  };
  return { state, s };
}

describe('ClusterContext', () => {
  it('reads the secrets once when opened, not per use; the spec comes from the claimed row', async () => {
    const { state, s } = sources(row(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']), secretsOf('t1'));
    const c = await ClusterContext.open(row(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']), s);
    for (let i = 0; i < 3; i++) assert.equal(c.secrets.managementToken, 't1');
    assert.equal(c.consul, c.consul, 'one Consul API until a reload');
    assert.deepEqual(c.spec.servers.map((x) => x.index), [0, 1, 2], 'the tier\'s servers');
    assert.deepEqual(c.allServers.servers.map((x) => x.index), [0, 1, 2, 3]);
    assert.deepEqual(c.specWith(1).servers, [{ index: 0, address: '127.0.0.1' }]);
    assert.deepEqual({ rowReads: state.rowReads, secretReads: state.secretReads }, { rowReads: 0, secretReads: 1 });
  });

  it("a secondary's spec names its primary's datacenter and the servers of its tier, read with the row", async () => {
    const primary = { ...row(['127.9.0.1', '127.9.0.2', '127.9.0.3', '127.9.0.4']), id: 'pppppppp', datacenter: 'east' } as ClusterWithServers;
    const secondary = { ...row(['127.0.0.1'], 1), primaryClusterId: primary.id } as ClusterWithServers;
    const reads: string[] = [];
    const s: ClusterSources = {
      cluster: (id) => {
        reads.push(id);
        return Promise.resolve(id === primary.id ? primary : secondary);
      },
      secrets: () => Promise.resolve(secretsOf('t1')),
      consul: new ConsulConnections(),
    };
    const c = await ClusterContext.open(secondary, s);
    assert.deepEqual(c.spec.federation, { primaryClusterId: primary.id, primaryDatacenter: 'east', primaryServers: ['127.9.0.1', '127.9.0.2', '127.9.0.3'] });
    assert.deepEqual(reads, [primary.id], 'the primary read once, when opened');
    assert.equal((await c.primary()).cluster.datacenter, 'east');
    const alone = await ClusterContext.open(row(['127.0.0.1'], 1), s);
    assert.equal(alone.spec.federation, undefined);
    await assert.rejects(() => alone.primary(), /not a secondary/);
  });

  it('secrets not made yet fail the step that uses them, not the opening; reload sees what a step changed', async () => {
    const { state, s } = sources(row([]), null);
    const c = await ClusterContext.open(row([]), s);
    assert.throws(() => c.spec, /the cluster has no addresses yet/);
    assert.throws(() => c.secrets, /the cluster secrets are not generated yet/);
    assert.throws(() => c.consul, /no addresses yet/);

    state.row = row(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    state.secrets = secretsOf('t1');
    assert.throws(() => c.secrets, 'unchanged until reloaded');
    await c.reload();
    assert.equal(c.spec.servers.length, 3);
    const before = c.consul;
    state.secrets = secretsOf('t2');
    await c.reload();
    assert.equal(c.secrets.managementToken, 't2');
    assert.notEqual(c.consul, before, 'the Consul API is bound again to what was reloaded');
  });

  it('a cluster gone since the claim fails the reload for good', async () => {
    const { s } = sources(row(['127.0.0.1']), secretsOf('t1'));
    const c = await ClusterContext.open(row(['127.0.0.1'], 1), { ...s, cluster: () => Promise.resolve(null) });
    await assert.rejects(c.reload(), (e: Error & { code?: string }) => e.code === 'cluster_gone');
  });
});
