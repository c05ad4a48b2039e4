/**
 * Kubernetes onboarding on a real cluster: GET /v1/clusters/{id}/kubernetes through the API, and
 * what its documents do against the cluster's real Consul servers. There is no Kubernetes here,
 * so the two things the chart would do with them are done as the chart does them: its
 * server-acl-init job's calls (HTTPS to externalServers.hosts on httpsPort, verified for
 * tlsServerName against the Secret's CA, with the Secret's bootstrap token) and its client
 * DaemonSet's agent (gossip key and CA from the Secret, client.join, auto-encrypt). Secrets are
 * compared, never printed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { consul, startClientAgent, type ClientAgent } from './support/consul-cli';
import { READ, TENANT_B, WRITE, createBody, startStack, waitFor, type TestStack } from './support/stack';
import { makeManagementToken } from './support/tokens';

const TENANT = 'e23e23e2-0000-4000-8000-000000000023';
const FINISHED = ['Succeeded', 'Failed', 'Canceled'];

interface ChartValues {
  global: {
    enabled: boolean; datacenter: string; image: string;
    gossipEncryption: { secretName: string; secretKey: string };
    tls: { enabled: boolean; enableAutoEncrypt: boolean; caCert: { secretName: string; secretKey: string } };
    acls: { manageSystemACLs: boolean; bootstrapToken: { secretName: string; secretKey: string } };
  };
  externalServers: { enabled: boolean; hosts: string[]; httpsPort: number; tlsServerName: string; useSystemRoots: boolean; k8sAuthMethodHost?: string };
  client: { enabled: boolean; join: string[]; grpc: boolean };
  server: { enabled: boolean };
  connectInject: { enabled: boolean };
}

/** The rules server-acl-init (consul-k8s 0.20) gives the client agents' token. */
const CLIENT_TOKEN_RULES = 'node_prefix "" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n';

describe('Kubernetes onboarding: the Helm values and the Secret for a Running cluster', { timeout: 300_000 }, () => {
  let s: TestStack;
  let work: string;
  let clusterId: string;
  let createOperation: string;
  const token = () => s.token(TENANT, WRITE, 'kim');
  let clientConfig: { caPem: string; encrypt: string; retryJoin: string[]; datacenter: string };
  let values: ChartValues;
  /** The Secret's data, decoded. */
  let secretData: Record<string, string>;
  let secretName: string;
  let bootstrapToken: string;
  let agent: ClientAgent | undefined;

  const kubernetes = (o: { as?: string; headers?: Record<string, string>; query?: string } = {}) =>
    s.request('GET', `/v1/clusters/${clusterId}/kubernetes${o.query ?? ''}`, { token: o.as ?? token(), headers: o.headers });
  /** Refusals name no secret: the body of each is checked against every secret of the test. */
  const holdsNoSecret = (body: unknown, what: string) => {
    const text = JSON.stringify(body);
    assert.ok([bootstrapToken, clientConfig?.encrypt].every((v) => !v || !text.includes(v)), `${what} holds no secret`);
  };

  before(async () => {
    // No worker yet: the cluster stays Creating until the test starts one.
    s = await startStack();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kubernetes-'));
  });
  after(async () => {
    await agent?.stop();
    await s?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('refuses a cluster that is not Running with 409, saying when it will be available', async () => {
    const res = await s.request('POST', '/v1/clusters', { token: token(), body: createBody({ name: 'aks-onboarding', resourceGroup: 'rg-aks' }) });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    createOperation = res.body.operation.id;
    const early = await kubernetes();
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'cluster_not_running');
    assert.match(early.body.error.message, /Creating.*once it is Running/);
  });

  it('the cluster reaches Running', async () => {
    await s.startWorker();
    const op = await waitFor('the create operation', () => s.request('GET', `/v1/operations/${createOperation}`, { token: token() }), (r) => FINISHED.includes(r.body?.state), 120_000);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    const cc = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token: token() });
    assert.equal(cc.status, 200, JSON.stringify(cc.body?.error));
    clientConfig = cc.body;
    assert.ok(clientConfig.encrypt, 'a ReadWrite caller gets the gossip key in the client config');
  });

  it('is for Clusters.ReadWrite: a reader gets 403 (the documents carry the gossip key), another tenant 404', async () => {
    const reader = await kubernetes({ as: s.token(TENANT, READ, 'reader') });
    assert.equal(reader.status, 403, JSON.stringify(reader.body));
    holdsNoSecret(reader.body, 'the 403');
    const stranger = await kubernetes({ as: s.token(TENANT_B, WRITE, 'mallory') });
    assert.equal(stranger.status, 404);
  });

  it('without a token: the Helm values for the chart version it names, no Secret, and what to do to get it; no-store', async () => {
    const res = await kubernetes();
    assert.equal(res.status, 200, JSON.stringify(res.body?.error));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(res.body.chart, { repository: 'https://helm.releases.hashicorp.com', name: 'hashicorp/consul', version: '0.26.0' });
    assert.equal(res.body.secret, undefined);
    assert.match(res.body.secretOmitted, new RegExp(`POST /v1/clusters/${clusterId}/tokens.*X-Consul-Token`));
    assert.ok(res.body.steps.includes('helm install consul hashicorp/consul --version 0.26.0 -f values.yaml'), res.body.steps.join('\n'));
    values = YAML.parse(res.body.helmValues) as ChartValues;
    secretName = res.body.secretName;
    assert.equal(values.global.enabled, false);
    assert.equal(values.server.enabled, false);
    assert.deepEqual([values.client.enabled, values.connectInject.enabled, values.externalServers.enabled], [true, true, true]);
    assert.deepEqual(values.externalServers.hosts, clientConfig.retryJoin, 'the chart talks to the servers the client config names');
    assert.deepEqual(values.client.join, clientConfig.retryJoin);
    assert.equal(values.global.datacenter, clientConfig.datacenter);
    assert.equal(values.externalServers.tlsServerName, `server.${clientConfig.datacenter}.consul`);
    assert.equal(values.global.image, 'consul:1.8.7', 'the agents run the servers\' version');
    assert.equal(values.externalServers.k8sAuthMethodHost, undefined);
    for (const ref of [values.global.tls.caCert, values.global.gossipEncryption, values.global.acls.bootstrapToken]) assert.equal(ref.secretName, secretName);
    assert.ok(!res.body.helmValues.includes(clientConfig.encrypt), 'the values hold no gossip key: they name the Secret');
  });

  it('takes the Kubernetes API server for the auth method; a malformed one, or a token header that is not a SecretID, is a 400 naming it', async () => {
    const host = 'https://aks-onboarding-1a2b3c4d.hcp.westeurope.azmk8s.io:443';
    const res = await kubernetes({ query: `?k8sAuthMethodHost=${encodeURIComponent(host)}` });
    assert.equal(res.status, 200, JSON.stringify(res.body?.error));
    assert.equal((YAML.parse(res.body.helmValues) as ChartValues).externalServers.k8sAuthMethodHost, host);

    const badHost = await kubernetes({ query: `?k8sAuthMethodHost=${encodeURIComponent('http://aks.example')}` });
    assert.equal(badHost.status, 400);
    assert.equal(badHost.body.error.details.field, 'k8sAuthMethodHost');
    assert.match(badHost.body.error.message, /https URL/);

    const notAToken = 'my-token-is-not-a-uuid';
    const badToken = await kubernetes({ headers: { 'x-consul-token': notAToken } });
    assert.equal(badToken.status, 400);
    assert.equal(badToken.body.error.code, 'invalid_x_consul_token');
    assert.match(badToken.body.error.message, /POST \/v1\/clusters\/\{id\}\/tokens/);
    assert.ok(!JSON.stringify(badToken.body).includes(notAToken), 'the refusal does not echo the header');
  });

  it('with a management token made through POST /tokens: the Secret, a valid Kubernetes Secret holding the client config\'s CA and gossip key and that token', async () => {
    bootstrapToken = await makeManagementToken(s, clusterId, token(), 'consul helm chart: server-acl-init bootstrap token');

    const res = await kubernetes({ headers: { 'X-Consul-Token': bootstrapToken } });
    assert.equal(res.status, 200, JSON.stringify(res.body?.error));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.body.secretOmitted, undefined);
    const doc = YAML.parse(res.body.secret) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    const { Secret } = await import('kubernetes-models/v1/Secret');
    new Secret(doc as ConstructorParameters<typeof Secret>[0]).validate();
    assert.equal(doc.kind, 'Secret');
    assert.equal(doc.metadata.name, secretName);
    secretData = Object.fromEntries(Object.entries(doc.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    assert.ok(secretData[values.global.tls.caCert.secretKey] === clientConfig.caPem, "the Secret's CA is the client config's");
    assert.ok(secretData[values.global.gossipEncryption.secretKey] === clientConfig.encrypt, "the Secret's gossip key is the client config's");
    assert.ok(secretData[values.global.acls.bootstrapToken.secretKey] === bootstrapToken, 'the Secret holds the token sent');
    // The helm values are the same whether or not a token was sent.
    assert.deepEqual(YAML.parse(res.body.helmValues), values);
  });

  it("as the chart's server-acl-init: over HTTPS to externalServers (tlsServerName, the Secret's CA) the bootstrap token makes the client agents' policy and token", async () => {
    const caFile = path.join(work, 'secret-ca.crt');
    fs.writeFileSync(caFile, secretData[values.global.tls.caCert.secretKey]!);
    const server = { httpAddr: `https://${values.externalServers.hosts[0]}:${values.externalServers.httpsPort}`, caFile, tlsServerName: values.externalServers.tlsServerName };
    const asInit = (args: string[]) => consul(args, { ...server, token: secretData[values.global.acls.bootstrapToken.secretKey] });
    const rules = path.join(work, 'client-token.hcl');
    fs.writeFileSync(rules, CLIENT_TOKEN_RULES);
    const policy = await asInit(['acl', 'policy', 'create', '-name', 'client-token', '-description', 'Client Token Policy', '-rules', `@${rules}`]);
    assert.equal(policy.code, 0, policy.stderr);
    const made = await asInit(['acl', 'token', 'create', '-description', 'Client Token', '-policy-name', 'client-token', '-format=json']);
    assert.equal(made.code, 0, made.stderr);
    const clientToken = JSON.parse(made.stdout) as { SecretID: string; Policies: { Name: string }[] };
    assert.deepEqual(clientToken.Policies.map((p) => p.Name), ['client-token']);

    // As the client DaemonSet's agent: only what the values and the Secret say, on an address of the cluster's loopback block.
    const [, second, third] = values.externalServers.hosts[0]!.split('.');
    const address = `127.${second}.${third}.230`;
    const node = 'aks-node-1';
    agent = startClientAgent(path.join(work, node), {
      datacenter: values.global.datacenter,
      encrypt: secretData[values.global.gossipEncryption.secretKey],
      retry_join: values.client.join,
      verify_outgoing: true,
      verify_server_hostname: true,
      auto_encrypt: { tls: values.global.tls.enableAutoEncrypt },
      acl: { enabled: true, default_policy: 'deny', tokens: { agent: clientToken.SecretID } },
      node_name: node, bind_addr: address, advertise_addr: address, client_addr: address,
      ports: { http: 8500, https: -1, dns: -1, grpc: -1 },
      disable_update_check: true,
      retry_interval: '1s',
    }, secretData[values.global.tls.caCert.secretKey]!);
    // Joined over gossip (the Secret's key) and registered over RPC (the servers demand a client
    // certificate, which auto-encrypt gave it, verified against the Secret's CA).
    await waitFor(`${node} in the catalog`, () => asInit(['catalog', 'nodes']), (r) => r.code === 0 && new RegExp(`^${node}\\s`, 'm').test(r.stdout), 90_000, 250)
      .catch((e: Error) => assert.fail(`${e.message}\n${agent?.log().slice(-2000) ?? ''}`));
    const members = await asInit(['members']);
    assert.match(members.stdout, new RegExp(`${node}\\s+${address.replace(/\./g, '\\.')}:8301\\s+alive\\s+client`));
  });
});
