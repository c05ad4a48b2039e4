import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderServerConfig, serverConfig, type ServerConfigInput } from './server-config';

const input: ServerConfigInput = {
  datacenter: 'dc1',
  serverCount: 3,
  index: 2,
  address: '127.64.0.2',
  addresses: ['127.64.0.1', '127.64.0.2', '127.64.0.3'],
  dataDir: '/clusters/c1/server-2/data',
  tls: { caFile: '/t/ca.pem', certFile: '/t/server.pem', keyFile: '/t/server-key.pem' },
  gossipKey: Buffer.alloc(32, 7).toString('base64'),
  managementToken: '8f1c7e0a-2a3b-4c5d-8e9f-0a1b2c3d4e5f',
};

test('serverConfig: secure-by-default Consul 1.8 server on its own address and standard ports', () => {
  const c = serverConfig(input);
  assert.equal(c['node_name'], 'dc1-server-2');
  assert.equal(c['datacenter'], 'dc1');
  assert.equal(c['server'], true);
  assert.equal(c['bootstrap_expect'], 3);
  assert.deepEqual(c['retry_join'], ['127.64.0.1:8301', '127.64.0.2:8301', '127.64.0.3:8301']);
  assert.equal(c['bind_addr'], '127.64.0.2');
  assert.equal(c['advertise_addr'], '127.64.0.2');
  assert.equal(c['client_addr'], '127.64.0.2');
  assert.deepEqual(c['ports'], { server: 8300, serf_lan: 8301, serf_wan: 8302, https: 8501, http: -1, dns: -1, grpc: -1 });
  assert.equal(c['data_dir'], input.dataDir);
  assert.equal(c['ui'], true);
  assert.equal(c['disable_update_check'], true);
  assert.equal(c['leave_on_terminate'], false);
  assert.equal(c['encrypt'], input.gossipKey);
  assert.equal(c['encrypt_verify_incoming'], true);
  assert.equal(c['encrypt_verify_outgoing'], true);
  assert.equal(c['verify_incoming_rpc'], true);
  assert.equal(c['verify_incoming_https'], false);
  assert.equal(c['verify_incoming'], undefined, 'the umbrella flag would demand client certs on HTTPS');
  assert.equal(c['verify_outgoing'], true);
  assert.equal(c['verify_server_hostname'], true);
  assert.deepEqual(c['auto_encrypt'], { allow_tls: true });
  assert.deepEqual(c['connect'], { enabled: true });
  assert.deepEqual(c['performance'], { raft_multiplier: 1 });
  assert.deepEqual(c['acl'], {
    enabled: true,
    default_policy: 'deny',
    down_policy: 'extend-cache',
    enable_token_persistence: true,
    tokens: { master: input.managementToken, agent: input.managementToken },
  });
});

test('renderServerConfig: stable JSON', () => {
  const text = renderServerConfig(input);
  assert.equal(text, renderServerConfig({ ...input }));
  assert.ok(text.endsWith('\n'));
  assert.deepEqual(JSON.parse(text), serverConfig(input));
});

test('serverConfig: rejects inconsistent input', () => {
  assert.throws(() => serverConfig({ ...input, serverCount: 2, addresses: input.addresses.slice(0, 2) }), /serverCount/);
  assert.throws(() => serverConfig({ ...input, addresses: ['127.64.0.1', '127.64.0.3', '127.64.0.4'] }), /not among/);
  assert.throws(() => serverConfig({ ...input, addresses: ['127.64.0.2', '127.64.0.2', '127.64.0.3'] }), /distinct/);
  assert.throws(() => serverConfig({ ...input, gossipKey: 'c2hvcnQ=' }), /32 bytes/);
  assert.throws(() => serverConfig({ ...input, managementToken: 'root' }), /UUID/);
});

test('serverConfig: a secondary joins its primary over the WAN, replicates ACLs with its own tokens and never bootstraps', () => {
  const federation = {
    primaryDatacenter: 'east', primaryServers: ['127.65.0.1', '127.65.0.2'],
    replicationToken: '11111111-2a3b-4c5d-8e9f-0a1b2c3d4e5f', agentToken: '22222222-2a3b-4c5d-8e9f-0a1b2c3d4e5f',
  };
  const c = serverConfig({ ...input, federation });
  assert.equal(c['datacenter'], 'dc1');
  assert.equal(c['primary_datacenter'], 'east');
  assert.deepEqual(c['retry_join_wan'], ['127.65.0.1:8302', '127.65.0.2:8302']);
  const acl = c['acl'] as { enable_token_replication?: boolean; tokens: Record<string, string> };
  assert.equal(acl.enable_token_replication, true);
  assert.deepEqual(acl.tokens, { agent: federation.agentToken, replication: federation.replicationToken }, 'no master token: the primary bootstraps the federation');
  assert.ok(!JSON.stringify(c).includes(input.managementToken), "the secondary's management token lives in the primary's ACLs, not in its config");
  // A primary (or a cluster on its own) is its own primary datacenter and joins no WAN.
  const own = serverConfig(input);
  assert.equal(own['primary_datacenter'], 'dc1');
  assert.equal(own['retry_join_wan'], undefined);
  assert.throws(() => serverConfig({ ...input, federation: { ...federation, primaryDatacenter: 'dc1' } }), /must differ from its primary's/);
  assert.throws(() => serverConfig({ ...input, federation: { ...federation, primaryServers: [] } }), /addresses of its primary's servers/);
});
