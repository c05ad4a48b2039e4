/**
 * The keynote's service-mesh demo on one managed cluster, as a customer does it (docs/mesh.md):
 * a standard cluster through the API; with its client config, a management token and the stock
 * consul CLI, two client agents (a VM and a Kubernetes node) joined with auto-encrypt; a service on
 * each with a sidecar run by Consul's built-in proxy; the call between them refused by default,
 * then allowed by an intention the customer makes in the Consul UI, signed in from the console
 * (real Chromium). A Read-only user's UI cannot make one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ConsulUiProxy } from '../apps/api/src/consul-ui/ui-proxy';
import { consul, startClientAgent, startConsulProcess, tcpOpen, type ClientAgent, type ConsulProcess } from './support/consul-cli';
import { launchBrowser, newPerson, screenshot, signInAs } from './support/browser';
import { callUpstream, meshAgentConfig, pickService, saveIntention, serviceDefinition, startPongService, type MeshService, type PongService } from './support/mesh';
import { READ, SUBSCRIPTION, TENANT_A, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const CUSTOMER = { user: 'carla@contoso.example', tenantId: TENANT_A, roles: WRITE };
const READER = { user: 'rudi@contoso.example', tenantId: TENANT_A, roles: READ };
/** Where pong-player-1's sidecar listens for its upstream pong-player-2, on the VM's address. */
const UPSTREAM_PORT = 19002;
const SIDECAR_PORT = 21000;

interface Intention {
  SourceName: string;
  DestinationName: string;
  Action: string;
}

describe('the service mesh on a managed cluster: secured by default, opened by an intention made in the Consul UI', { timeout: 600_000 }, () => {
  let s: TestStack;
  let browser: Browser | undefined;
  const people: BrowserContext[] = [];
  let work: string;
  const bearer = () => s.token(TENANT_A, WRITE, CUSTOMER.user);
  let clusterId = '';
  let datacenter = '';
  let consulConfig: Record<string, unknown>;
  let caPem = '';
  let caFile = '';
  let httpsAddress = '';
  let managementToken = '';
  const agentTokens: Record<string, string> = {};
  const serviceTokens: Record<string, string> = {};
  const agents: ClientAgent[] = [];
  const proxies: Record<string, ConsulProcess> = {};
  const services: PongService[] = [];
  let vm: { node: string; address: string };
  let k8s: { node: string; address: string };
  let pong1: MeshService;
  let pong2: MeshService;

  /** The consul CLI against the cluster's servers (HTTPS, verified against the cluster's CA) with the management token. */
  const cli = (args: string[]) => consul(args, { httpAddr: httpsAddress, caFile, token: managementToken });
  /** The consul CLI against a client agent's local HTTP API, as on that machine. */
  const agentCli = (address: string, token: string, args: string[]) => consul(args, { httpAddr: `http://${address}:8500`, caFile, token });
  /** A GET on a client agent's local HTTP API. */
  const agentGet = async (address: string, token: string, p: string) => {
    const res = await fetch(`http://${address}:8500${p}`, { headers: { 'x-consul-token': token } });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const intentions = async () => {
    const res = await agentGet(vm.address, managementToken, '/v1/connect/intentions');
    assert.equal(res.status, 200);
    return res.body as Intention[];
  };
  /**
   * What pong-player-2's agent answers its sidecar asking whether pong-player-1 may connect
   * (the sidecar's own question on every connection, with its service token).
   */
  const authorizeCall = async () => {
    const roots = await agentGet(k8s.address, serviceTokens[pong2.name], '/v1/agent/connect/ca/roots');
    assert.equal(roots.status, 200);
    const res = await fetch(`http://${k8s.address}:8500/v1/agent/connect/authorize`, {
      method: 'POST',
      headers: { 'x-consul-token': serviceTokens[pong2.name], 'content-type': 'application/json' },
      body: JSON.stringify({ Target: pong2.name, ClientCertURI: `spiffe://${roots.body.TrustDomain}/ns/default/dc/${datacenter}/svc/${pong1.name}`, ClientCertSerial: '01' }),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as { Authorized: boolean; Reason: string };
  };
  const finish = async (operationId: string, timeoutMs = 120_000) =>
    (await waitFor(`operation ${operationId}`, () => s.request('GET', `/v1/operations/${operationId}`, { token: bearer() }), (r) => ['Succeeded', 'Failed'].includes(r.body?.state), timeoutMs)).body;

  /** Runs a browser step; a failure leaves a screenshot of the page in test-artifacts/. */
  async function inBrowser(name: string, page: () => Page | undefined, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const p = page();
      if (p) await screenshot(p, `failed-mesh-${name}`).catch(() => undefined);
      throw e;
    }
  }

  /** Signs `who` in to the console on the cluster's page and follows "Open Consul UI": the Consul UI's tab, signed in. */
  async function openConsulUi(who: typeof CUSTOMER, onPage: (p: Page) => void): Promise<Page> {
    browser ??= await launchBrowser();
    const person = await newPerson(browser);
    people.push(person);
    const page = await person.newPage();
    onPage(page);
    await page.goto(`${s.url}/clusters/${clusterId}`);
    await signInAs(page, who);
    await page.getByRole('heading', { name: 'mesh', level: 1 }).waitFor({ timeout: 30_000 });
    const [ui] = await Promise.all([person.waitForEvent('page'), page.getByRole('link', { name: /Open Consul UI/ }).click()]);
    onPage(ui);
    const uiOrigin = `http://${clusterId}.ui.localhost:${s.api.get(ConsulUiProxy).port}`;
    await ui.waitForURL((u) => u.origin === uiOrigin && u.pathname.startsWith('/ui/'), { timeout: 30_000 });
    return ui;
  }

  before(async () => {
    s = await startStack({ worker: true });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-'));
  });
  after(async () => {
    // Whatever failed: every process this file started goes, then the cluster (s.close removes what is left).
    for (const p of Object.values(proxies)) await p.stop();
    for (const a of agents) await a.stop();
    for (const svc of services) await svc.close();
    for (const p of people) await p.close().catch(() => undefined);
    await browser?.close();
    await s?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates a standard cluster through the API and it reaches Running', async () => {
    const res = await s.request('POST', '/v1/clusters', {
      token: bearer(),
      body: { name: 'mesh', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-mesh', region: 'westeurope', tier: 'standard' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op));
    const cluster = await s.request('GET', `/v1/clusters/${clusterId}`, { token: bearer() });
    assert.equal(cluster.body.state, 'Running');
    assert.equal(cluster.body.serverAddresses.length, 3);
    // The clients take addresses of the cluster's own loopback block (127.<this file's octet>.<slot>.x).
    const [, second, third] = cluster.body.serverAddresses[0].split('.');
    vm = { node: 'vm-1', address: `127.${second}.${third}.210` };
    k8s = { node: 'aks-node-1', address: `127.${second}.${third}.220` };
    pong1 = { name: 'pong-player-1', address: vm.address, port: 9001, sidecarPort: SIDECAR_PORT, upstreams: [{ destination: 'pong-player-2', localBindPort: UPSTREAM_PORT }] };
    pong2 = { name: 'pong-player-2', address: k8s.address, port: 9002, sidecarPort: SIDECAR_PORT };
  });

  it('hands out the client config and a management token; with them the consul CLI makes node- and service-identity tokens', async () => {
    const cc = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token: bearer() });
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    ({ consulConfig, caPem, datacenter, httpsAddress } = cc.body);
    assert.ok(consulConfig.encrypt, 'a ReadWrite caller gets the gossip key');
    assert.deepEqual(consulConfig.auto_encrypt, { tls: true });
    caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, caPem);

    const created = await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token: bearer(), body: { description: 'mesh demo' } });
    if (created.status === 202) {
      // Slower than the API waits for: collected once its operation has made it.
      assert.equal((await finish(created.body.operation.id)).state, 'Succeeded');
      const collected = await s.request('POST', created.body.collect, { token: bearer() });
      assert.equal(collected.status, 200, JSON.stringify(collected.body?.error));
      managementToken = collected.body.secretId;
    } else {
      assert.equal(created.status, 201, JSON.stringify(created.body?.error));
      managementToken = created.body.secretId;
    }

    for (const node of [vm.node, k8s.node]) {
      const r = await cli(['acl', 'token', 'create', '-description', `agent ${node}`, '-node-identity', `${node}:${datacenter}`, '-format=json']);
      assert.equal(r.code, 0, r.stderr);
      const t = JSON.parse(r.stdout);
      assert.deepEqual(t.NodeIdentities, [{ NodeName: node, Datacenter: datacenter }]);
      agentTokens[node] = t.SecretID;
    }
    for (const svc of [pong1.name, pong2.name]) {
      const r = await cli(['acl', 'token', 'create', '-description', `service ${svc}`, '-service-identity', svc, '-format=json']);
      assert.equal(r.code, 0, r.stderr);
      const t = JSON.parse(r.stdout);
      assert.deepEqual(t.ServiceIdentities, [{ ServiceName: svc }]);
      serviceTokens[svc] = t.SecretID;
    }
  });

  it('starts two client agents, a VM and a Kubernetes node, each on its own address, joined with auto-encrypt', async () => {
    for (const c of [vm, k8s]) {
      agents.push(startClientAgent(path.join(work, c.node), meshAgentConfig(consulConfig, { node: c.node, address: c.address, agentToken: agentTokens[c.node] }), caPem));
    }
    await waitFor(
      'both client agents to join',
      () => cli(['members']),
      (r) => [vm, k8s].every((c) => new RegExp(`${c.node}\\s+${c.address.replace(/\./g, '\\.')}:8301\\s+alive\\s+client`).test(r.stdout)),
      90_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${agents.map((a) => `${a.dir}:\n${a.log().slice(-2000)}`).join('\n')}`);
    });
    // Each agent's node is in the catalog: its agent token (a node identity) let it register
    // itself, over RPC the servers accept only with a client certificate (verify_incoming_rpc),
    // which it has from auto-encrypt alone (the client config has no certificate).
    for (const c of [vm, k8s]) {
      await waitFor(`${c.node} in the catalog`, () => agentGet(c.address, managementToken, `/v1/catalog/node/${c.node}`), (r) => r.status === 200 && r.body?.Node?.Address === c.address, 60_000, 250);
      const leader = await agentGet(c.address, '', '/v1/status/leader');
      assert.match(String(leader.body), /:8300$/);
    }
  });

  it('runs pong-player-1 on the VM and pong-player-2 on the Kubernetes node, registered with sidecars, and their built-in proxies', async () => {
    for (const svc of [pong1, pong2]) {
      services.push(await startPongService(svc.name, svc.address, svc.port));
      const file = path.join(work, `${svc.name}.hcl`);
      fs.writeFileSync(file, serviceDefinition(svc));
      const reg = await agentCli(svc.address, serviceTokens[svc.name], ['services', 'register', file]);
      assert.equal(reg.code, 0, reg.stderr);
      proxies[svc.name] = startConsulProcess(['connect', 'proxy', '-sidecar-for', svc.name], path.join(work, `${svc.name}-proxy.log`), {
        CONSUL_HTTP_ADDR: `http://${svc.address}:8500`,
        CONSUL_HTTP_TOKEN: serviceTokens[svc.name],
      });
    }
    const proxyLogs = () => Object.entries(proxies).map(([n, p]) => `${n} proxy:\n${p.log().slice(-2000)}`).join('\n');
    // Up: each sidecar's public listener accepts, pong-player-1's upstream listener accepts, and
    // pong-player-2's sidecar is passing in the catalog (what pong-player-1's proxy resolves it with).
    await waitFor('the sidecars to listen', async () => [await tcpOpen(vm.address, SIDECAR_PORT), await tcpOpen(k8s.address, SIDECAR_PORT), await tcpOpen(vm.address, UPSTREAM_PORT)], (r) => r.every(Boolean), 60_000, 250)
      .catch((e: Error) => assert.fail(`${e.message}\n${proxyLogs()}`));
    const healthy = await waitFor(
      'pong-player-2\'s sidecar to pass its checks',
      () => agentGet(vm.address, serviceTokens[pong1.name], '/v1/health/connect/pong-player-2?passing'),
      (r) => r.status === 200 && r.body.length === 1,
      60_000,
      250,
    ).catch((e: Error) => assert.fail(`${e.message}\n${proxyLogs()}`));
    const entry = healthy.body[0];
    assert.equal(entry.Node.Node, k8s.node);
    assert.equal(entry.Service.Kind, 'connect-proxy');
    assert.equal(`${entry.Service.Address}:${entry.Service.Port}`, `${k8s.address}:${SIDECAR_PORT}`, 'the sidecar is registered where it listens');
  });

  it('secured by default: with no intention, pong-player-1\'s call through its upstream is refused', async () => {
    assert.deepEqual(await intentions(), []);
    // Every call is refused; the ones that reach pong-player-2's sidecar are refused by its
    // authorization (ACL default deny makes intentions default deny), which it logs. Calls until one has.
    const denials = () => (proxies[pong2.name].log().match(/authz call denied/g) ?? []).length;
    await waitFor(
      'a call refused by pong-player-2\'s sidecar for want of an intention',
      async () => {
        const call = await callUpstream(vm.address, UPSTREAM_PORT);
        assert.equal(call.answered, false, `no answer through the mesh without an intention: ${JSON.stringify(call)}`);
        assert.doesNotMatch(call.error, /no answer within/, 'the proxy closed the connection, it did not hang');
        return denials();
      },
      (n) => n > 0,
      30_000,
      250,
    );
    const authz = await authorizeCall();
    assert.equal(authz.Authorized, false, authz.Reason);
  });

  it('the customer signs in to the console, opens the Consul UI and creates the intention pong-player-1 → pong-player-2 (Allow) there', async () => {
    let current: Page | undefined;
    await inBrowser('create-intention', () => current, async () => {
      const ui = await openConsulUi(CUSTOMER, (p) => (current = p));
      await ui.getByRole('link', { name: 'Intentions', exact: true }).first().click();
      await ui.getByRole('heading', { name: /^Intentions/, level: 1 }).waitFor();
      await ui.getByRole('link', { name: 'Create', exact: true }).click();
      await ui.getByRole('heading', { name: 'New Intention' }).waitFor();
      await pickService(ui, 'Source Service', pong1.name);
      await pickService(ui, 'Destination Service', pong2.name);
      await ui.getByRole('radio', { name: 'Allow' }).check();
      await ui.getByLabel('Description (Optional)').fill('the keynote demo');
      assert.equal(await saveIntention(ui), 200, 'Consul made the intention');
      // Back on the list, with the new intention in it.
      await ui.getByRole('row', { name: /pong-player-1.*pong-player-2/ }).waitFor({ timeout: 15_000 });
      await screenshot(ui, 'consul-ui-intention', { readme: true });
    });
    const made = await intentions();
    assert.deepEqual(made.map((i) => [i.SourceName, i.DestinationName, i.Action]), [[pong1.name, pong2.name, 'allow']], 'exactly the intention made in the UI');
  });

  it('the call now goes through: "pong from pong-player-2"', async () => {
    const call = await waitFor('the call through the mesh to be answered', () => callUpstream(vm.address, UPSTREAM_PORT), (c) => c.answered, 30_000, 250);
    assert.deepEqual(call, { answered: true, status: 200, body: 'pong from pong-player-2\n' });
    const authz = await authorizeCall();
    assert.equal(authz.Authorized, true, authz.Reason);
    assert.match(authz.Reason, /Matched intention/);
  });

  it('a Read-only user signed in to the Consul UI cannot create an intention, nor can a service\'s token', async () => {
    const before = await intentions();
    let current: Page | undefined;
    await inBrowser('reader-intention', () => current, async () => {
      const ui = await openConsulUi(READER, (p) => (current = p));
      const uiOrigin = new URL(ui.url()).origin;
      await ui.goto(`${uiOrigin}/ui/${datacenter}/intentions/create`);
      await ui.getByRole('heading', { name: 'New Intention' }).waitFor();
      // Not the customer's intention again (a duplicate is refused whoever asks): the other way round.
      await pickService(ui, 'Source Service', pong2.name);
      await pickService(ui, 'Destination Service', pong1.name);
      await ui.getByRole('radio', { name: 'Allow' }).check();
      assert.equal(await saveIntention(ui), 403, 'Consul refuses the reader\'s intention through the proxy');
      // The UI stays on the form (a saved intention takes it back to the list). Consul's own notice
      // ("There was an error saving your intention. 403: Permission denied") fades after a few
      // seconds and was missed under load in CI: the answer above is what the test holds to.
      await ui.getByRole('heading', { name: 'New Intention' }).waitFor();
      assert.equal(await ui.getByRole('row', { name: /pong-player-2.*pong-player-1/ }).count(), 0);
      await screenshot(ui, 'consul-ui-reader-intention-refused');
    });
    // Nor may a service's own token, on its own service (a service identity reads intentions, it does not write them).
    const bySidecar = await agentCli(k8s.address, serviceTokens[pong2.name], ['intention', 'create', '-deny', '*', pong2.name]);
    assert.notEqual(bySidecar.code, 0, bySidecar.stdout);
    assert.match(bySidecar.stderr, /Permission denied/);
    assert.deepEqual(await intentions(), before, 'no intention was made');
  });

  it('stops the agents and proxies, and deletes the cluster', async () => {
    for (const p of Object.values(proxies)) await p.stop();
    for (const a of agents) await a.stop();
    const del = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token: bearer() });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    const op = await finish(del.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op));
    assert.equal((await s.request('GET', `/v1/clusters/${clusterId}`, { token: bearer() })).body.state, 'Deleted');
    for (const c of [vm, k8s]) {
      assert.equal(await tcpOpen(c.address, 8500), false, `${c.node}'s agent is gone`);
      assert.equal(await tcpOpen(c.address, SIDECAR_PORT), false, `the sidecar on ${c.node} is gone`);
    }
  });
});
