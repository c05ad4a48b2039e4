/**
 * The keynote's mesh demo across a federation (docs/mesh.md, "Across datacenters"): a primary
 * (east) and a secondary (west) made through the API with a federation token; a client agent in
 * each, from each cluster's own client config; pong-player-1 in east calls pong-player-2 in west
 * through its sidecar's upstream (datacenter "west"), found with ?dc=west. Refused until the
 * customer makes the intention in the Consul UI of the secondary (real Chromium, signed in from
 * the console), which Consul forwards to the primary and replicates.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { ConsulUiProxy } from '../apps/api/src/consul-ui/ui-proxy';
import { consul, startClientAgent, startConsulProcess, tcpOpen, type ClientAgent, type ConsulProcess } from './support/consul-cli';
import { launchBrowser, newPerson, screenshot, signInAs } from './support/browser';
import { callUpstream, meshAgentConfig, pickService, saveIntention, serviceDefinition, startPongService, type MeshService, type PongService } from './support/mesh';
import { SUBSCRIPTION, TENANT_A, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const CUSTOMER = { user: 'fiona@contoso.example', tenantId: TENANT_A, roles: WRITE };
const UPSTREAM_PORT = 19003;
const SIDECAR_PORT = 21000;

interface Dc {
  id: string;
  name: string;
  consulConfig: Record<string, unknown>;
  caPem: string;
  caFile: string;
  httpsAddress: string;
  client: { node: string; address: string };
}

describe('the service mesh across a federation: east calls west through the mesh, once an intention allows it', { timeout: 600_000 }, () => {
  let s: TestStack;
  let browser: Browser | undefined;
  let person: BrowserContext | undefined;
  let work: string;
  const bearer = () => s.token(TENANT_A, WRITE, CUSTOMER.user);
  const dcs: Record<'east' | 'west', Dc> = {} as Record<'east' | 'west', Dc>;
  let managementToken = '';
  const agentTokens: Record<string, string> = {};
  const serviceTokens: Record<string, string> = {};
  const agents: ClientAgent[] = [];
  const proxies: ConsulProcess[] = [];
  const services: PongService[] = [];
  let pong1: MeshService;
  let pong2: MeshService;

  const finish = async (operationId: string) =>
    (await waitFor(`operation ${operationId}`, () => s.request('GET', `/v1/operations/${operationId}`, { token: bearer() }), (r) => ['Succeeded', 'Failed'].includes(r.body?.state), 180_000)).body;
  /** The consul CLI against a datacenter's servers with the management token made in the primary (a global token). */
  const cli = (dc: Dc, args: string[]) => consul(args, { httpAddr: dc.httpsAddress, caFile: dc.caFile, token: managementToken });
  /** A GET on a client agent's local HTTP API; status 0 while the agent does not listen yet. */
  const agentGet = async (address: string, token: string, p: string) => {
    const res = await fetch(`http://${address}:8500${p}`, { headers: { 'x-consul-token': token } }).catch(() => undefined);
    return { status: res?.status ?? 0, body: (await res?.json().catch(() => undefined)) as any };
  };

  async function create(name: string, body: Record<string, unknown>): Promise<Dc> {
    const res = await s.request('POST', '/v1/clusters', { token: bearer(), body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-mesh-fed', region: 'westeurope', tier: 'development', ...body } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    const cc = (await s.request('GET', `/v1/clusters/${res.body.cluster.id}/client-config`, { token: bearer() })).body;
    const caFile = path.join(work, `${cc.datacenter}.pem`);
    fs.writeFileSync(caFile, cc.caPem);
    const [, second, third] = cc.retryJoin[0].split('.');
    return {
      id: res.body.cluster.id, name: cc.datacenter, consulConfig: cc.consulConfig, caPem: cc.caPem, caFile, httpsAddress: cc.httpsAddress,
      client: { node: cc.datacenter === 'east' ? 'vm-1' : 'aks-node-1', address: `127.${second}.${third}.210` },
    };
  }

  before(async () => {
    s = await startStack({ worker: true });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-fed-'));
  });
  after(async () => {
    for (const p of proxies) await p.stop();
    for (const a of agents) await a.stop();
    for (const svc of services) await svc.close();
    await person?.close().catch(() => undefined);
    await browser?.close();
    await s?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('federates two clusters through the API: east, and west made with east\'s federation token', async () => {
    dcs.east = await create('mesh-east', { datacenter: 'east' });
    const fed = await s.request('POST', `/v1/clusters/${dcs.east.id}/federation-token`, { token: bearer() });
    assert.equal(fed.status, 201, JSON.stringify(fed.body));
    dcs.west = await create('mesh-west', { datacenter: 'west', federationToken: fed.body.token });
    assert.equal(dcs.west.caPem, dcs.east.caPem, 'one CA for the federation');
    assert.equal(dcs.west.consulConfig.primary_datacenter, 'east', "a secondary's clients name the primary, as its servers do");
    assert.equal(dcs.east.consulConfig.primary_datacenter, 'east');
  });

  it('with a token from the primary, the consul CLI makes the agents\' and services\' tokens, which work in both datacenters', async () => {
    const made = await s.request('POST', `/v1/clusters/${dcs.east.id}/tokens`, { token: bearer(), body: { description: 'mesh across datacenters' } });
    assert.equal(made.status, 201, JSON.stringify(made.body?.error));
    managementToken = made.body.secretId;
    for (const dc of [dcs.east, dcs.west]) {
      const r = await cli(dcs.east, ['acl', 'token', 'create', '-description', `agent ${dc.client.node}`, '-node-identity', `${dc.client.node}:${dc.name}`, '-format=json']);
      assert.equal(r.code, 0, r.stderr);
      agentTokens[dc.client.node] = JSON.parse(r.stdout).SecretID;
    }
    pong1 = { name: 'pong-player-1', address: dcs.east.client.address, port: 9001, sidecarPort: SIDECAR_PORT, upstreams: [{ destination: 'pong-player-2', datacenter: 'west', localBindPort: UPSTREAM_PORT }] };
    pong2 = { name: 'pong-player-2', address: dcs.west.client.address, port: 9002, sidecarPort: SIDECAR_PORT };
    for (const svc of [pong1.name, pong2.name]) {
      const r = await cli(dcs.east, ['acl', 'token', 'create', '-description', `service ${svc}`, '-service-identity', svc, '-format=json']);
      assert.equal(r.code, 0, r.stderr);
      serviceTokens[svc] = JSON.parse(r.stdout).SecretID;
    }
    // Made in east, they resolve in west (ACL replication).
    const self = await waitFor('west to resolve the service token', () => consul(['acl', 'token', 'read', '-self'], { httpAddr: dcs.west.httpsAddress, caFile: dcs.west.caFile, token: serviceTokens[pong2.name] }), (r) => r.code === 0, 30_000, 250);
    assert.match(self.stdout, /pong-player-2/);
  });

  it('joins a client agent to each datacenter (the VM in east, the Kubernetes node in west) and runs the services with their sidecars', async () => {
    for (const dc of [dcs.east, dcs.west]) {
      agents.push(startClientAgent(path.join(work, dc.client.node), meshAgentConfig(dc.consulConfig, { node: dc.client.node, address: dc.client.address, agentToken: agentTokens[dc.client.node] }), dc.caPem));
    }
    for (const dc of [dcs.east, dcs.west]) {
      await waitFor(`${dc.client.node} in ${dc.name}'s catalog`, () => agentGet(dc.client.address, managementToken, `/v1/catalog/node/${dc.client.node}`), (r) => r.status === 200 && r.body?.Node?.Datacenter === dc.name, 90_000, 250)
        .catch((e: Error) => assert.fail(`${e.message}\n${agents.map((a) => a.log().slice(-1500)).join('\n')}`));
    }
    for (const svc of [pong1, pong2]) {
      services.push(await startPongService(svc.name, svc.address, svc.port));
      const file = path.join(work, `${svc.name}.hcl`);
      fs.writeFileSync(file, serviceDefinition(svc));
      const reg = await consul(['services', 'register', file], { httpAddr: `http://${svc.address}:8500`, caFile: dcs.east.caFile, token: serviceTokens[svc.name] });
      assert.equal(reg.code, 0, reg.stderr);
      proxies.push(startConsulProcess(['connect', 'proxy', '-sidecar-for', svc.name], path.join(work, `${svc.name}-proxy.log`), { CONSUL_HTTP_ADDR: `http://${svc.address}:8500`, CONSUL_HTTP_TOKEN: serviceTokens[svc.name] }));
    }
    await waitFor('the sidecars and the upstream listener', async () => [await tcpOpen(pong1.address, SIDECAR_PORT), await tcpOpen(pong2.address, SIDECAR_PORT), await tcpOpen(pong1.address, UPSTREAM_PORT)], (r) => r.every(Boolean), 60_000, 250)
      .catch((e: Error) => assert.fail(`${e.message}\n${proxies.map((p) => p.log().slice(-1500)).join('\n')}`));
  });

  it('finds pong-player-2 from east with ?dc=west, its sidecar passing there', async () => {
    const found = await waitFor(
      "west's pong-player-2 sidecar, asked from east's VM",
      () => agentGet(pong1.address, serviceTokens[pong1.name], '/v1/health/connect/pong-player-2?dc=west&passing'),
      (r) => r.status === 200 && r.body.length === 1,
      60_000,
      250,
    );
    assert.equal(found.body[0].Node.Datacenter, 'west');
    assert.equal(`${found.body[0].Service.Address}:${found.body[0].Service.Port}`, `${pong2.address}:${SIDECAR_PORT}`);
    assert.deepEqual((await agentGet(pong1.address, serviceTokens[pong1.name], '/v1/health/connect/pong-player-2?passing')).body, [], 'not in east itself');
  });

  it('secured by default: the call from east to west is refused while no intention allows it', async () => {
    const denied = () => (proxies[1]!.log().match(/authz call denied/g) ?? []).length;
    await waitFor('a call refused by west\'s sidecar', async () => {
      const call = await callUpstream(pong1.address, UPSTREAM_PORT);
      assert.equal(call.answered, false, `no answer without an intention: ${JSON.stringify(call)}`);
      return denied();
    }, (n) => n > 0, 30_000, 250);
    // One Connect CA, two datacenters: each sidecar's certificate names its own datacenter under the same trust domain.
    const [, eastDomain] = proxies[0]!.log().match(/uri=spiffe:\/\/([^/]+)\/ns\/default\/dc\/east\/svc\/pong-player-1/) ?? assert.fail(proxies[0]!.log());
    const [, westDomain] = proxies[1]!.log().match(/uri=spiffe:\/\/([^/]+)\/ns\/default\/dc\/west\/svc\/pong-player-2/) ?? assert.fail(proxies[1]!.log());
    assert.equal(westDomain, eastDomain);
  });

  it("the customer makes the intention in west's Consul UI (signed in from the console); the call from east now gets west's pong", async () => {
    browser = await launchBrowser();
    person = await newPerson(browser);
    let page = await person.newPage();
    try {
      await page.goto(`${s.url}/clusters/${dcs.west.id}`);
      await signInAs(page, CUSTOMER);
      await page.getByRole('heading', { name: 'mesh-west', level: 1 }).waitFor({ timeout: 30_000 });
      const [ui] = await Promise.all([person.waitForEvent('page'), page.getByRole('link', { name: /Open Consul UI/ }).click()]);
      page = ui;
      const uiOrigin = `http://${dcs.west.id}.ui.localhost:${s.api.get(ConsulUiProxy).port}`;
      await ui.waitForURL((u) => u.origin === uiOrigin && u.pathname.startsWith('/ui/'), { timeout: 30_000 });
      await ui.goto(`${uiOrigin}/ui/west/intentions/create`);
      await ui.getByRole('heading', { name: 'New Intention' }).waitFor();
      // pong-player-1 runs in east: west's UI offers it as a name of its own.
      await pickService(ui, 'Source Service', pong1.name);
      await pickService(ui, 'Destination Service', pong2.name);
      await ui.getByRole('radio', { name: 'Allow' }).check();
      assert.equal(await saveIntention(ui), 200, 'Consul (west, forwarding to east) made the intention');
      await ui.getByRole('row', { name: /pong-player-1.*pong-player-2/ }).waitFor({ timeout: 15_000 });
      await screenshot(ui, 'consul-ui-intention-federation');
    } catch (e) {
      await screenshot(page, 'failed-mesh-federation-intention').catch(() => undefined);
      throw e;
    }
    // Intentions live in the primary: east has it too.
    const inEast = await cli(dcs.east, ['intention', 'get', pong1.name, pong2.name]);
    assert.equal(inEast.code, 0, inEast.stderr);
    assert.match(inEast.stdout, /Action:\s+allow/);
    const call = await waitFor('the call from east to be answered by west', () => callUpstream(pong1.address, UPSTREAM_PORT), (c) => c.answered, 30_000, 250);
    assert.deepEqual(call, { answered: true, status: 200, body: 'pong from pong-player-2\n' });
  });

  it('stops every process it started, deletes the secondary, then the primary', async () => {
    for (const p of proxies) await p.stop();
    for (const a of agents) await a.stop();
    for (const id of [dcs.west.id, dcs.east.id]) {
      const del = await s.request('DELETE', `/v1/clusters/${id}`, { token: bearer() });
      assert.equal(del.status, 202, JSON.stringify(del.body));
      assert.equal((await finish(del.body.operation.id)).state, 'Succeeded');
    }
    for (const dc of [dcs.east, dcs.west]) {
      assert.equal(await tcpOpen(dc.client.address, 8500), false, `${dc.client.node}'s agent is gone`);
      assert.equal(await tcpOpen(dc.client.address, SIDECAR_PORT), false);
    }
  });
});
