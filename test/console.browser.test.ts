/**
 * The console in a real browser (Debian's Chromium through playwright-core), against the real
 * API, worker, Consul, PostgreSQL, Redis and Azurite, signed in through the local issuer's page
 * the way a person does. Pages are found by their roles and labels, not by CSS.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import YAML from 'yaml';
import { ConsulUiProxy } from '../apps/api/src/consul-ui/ui-proxy';
import { SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { ConsulHttpClient } from '../libs/provisioner/src';
import { serverNodeName } from '../libs/provisioner/src/local/server-config';
import { OPERATOR_TENANT, SUBSCRIPTION, TENANT_A, TENANT_B, startStack, testConfig, waitFor, type TestStack } from './support/stack';
import { customerContainer } from './support/audit-container';
import { issuerSignIn, launchBrowser, newPerson, screenshot, seriousA11yViolations, signInAs } from './support/browser';

const ALICE = { user: 'alice@contoso.example', tenantId: TENANT_A, roles: ['Clusters.ReadWrite'] };
const CREATE_TIMEOUT_MS = 120_000;

async function assertAccessible(page: Page, what: string): Promise<void> {
  const found = await seriousA11yViolations(page);
  assert.deepEqual(found, [], `axe-core found serious or critical violations on ${what}`);
}

describe('the console in Chromium', () => {
  let s: TestStack;
  let browser: Browser;
  let alice: BrowserContext;
  let page: Page;
  /** A second tab left on the clusters list from before the create, never reloaded. */
  let watcher: Page;
  let watcherNavigations = 0;
  let clusterId = '';
  const pageProblems: string[] = [];
  /** The same for the Consul UI's pages, under the proxy's CSP. */
  const uiProblems: string[] = [];
  let proxyPort = 0;
  let uiOrigin = '';
  /** Alice's tab on the cluster's Consul UI. */
  let aliceUi: Page;

  /** A request straight to the cluster's Consul HTTPS API (verified against its CA), past the control plane. */
  const consul = async (method: 'GET' | 'PUT', path: string, token: string) => {
    const server = await s.db.clusterServer.findFirstOrThrow({ where: { clusterId } });
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } });
    return new ConsulHttpClient(cluster.caCertPem!).request({ address: server.address, port: 8501, method, path, token });
  };
  const managementToken = async () => (await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).get(clusterId, SecretName.ManagementToken))!;

  /** A test that leaves a screenshot of the page behind when it fails (test-artifacts/failed-*.png). */
  const step = (name: string, fn: () => Promise<void>) =>
    it(name, async () => {
      try {
        await fn();
      } catch (e) {
        await screenshot(page, `failed-${name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}`).catch(() => undefined);
        throw e;
      }
    });

  before(async () => {
    // The worker's health monitor runs as in production (every few seconds), so pages show health.
    s = await startStack({ worker: true, config: await testConfig({ HEALTH_TICK_MS: '2000', AUDIT_EXPORT_TICK_MS: '500', AUDIT_EXPORT_RETRY_MS: '500' }) });
    browser = await launchBrowser();
    alice = await newPerson(browser);
    page = await alice.newPage();
    // Whatever the console's pages do, they throw nothing and break no rule of their CSP.
    page.on('pageerror', (e) => pageProblems.push(`uncaught: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageProblems.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  step('a signed-out visitor gets the sign-in page, accessible, and signs in through the issuer back to where they were', async () => {
    await page.goto(`${s.url}/clusters`);
    await page.getByRole('heading', { name: 'Sign in to your clusters' }).waitFor();
    await assertAccessible(page, 'the sign-in page');
    // No cookie but the session's, and nothing in storage.
    await signInAs(page, ALICE);
    await page.getByRole('heading', { name: 'Clusters', exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/clusters');
    await page.getByText('No clusters yet.').waitFor();
    await assertAccessible(page, 'the empty clusters list');
    const cookies = await alice.cookies(s.url);
    assert.deepEqual(
      cookies.map((c) => [c.name, c.httpOnly, c.secure, c.path, c.domain]).sort(),
      [['__Host-mc_login', true, true, '/', '127.0.0.1'], ['__Host-mc_session', true, true, '/', '127.0.0.1']],
      'the browser holds only the HttpOnly __Host- session cookie and its sign-in binding (host-only, Secure, Path=/)',
    );
    const storage = await page.evaluate('({ local: localStorage.length, session: sessionStorage.length })');
    assert.deepEqual(storage, { local: 0, session: 0 }, 'nothing in the browser storage');

    watcher = await alice.newPage();
    await watcher.goto(`${s.url}/clusters`);
    await watcher.getByText('No clusters yet.').waitFor();
    watcher.on('framenavigated', (f) => {
      if (f === watcher.mainFrame()) watcherNavigations++;
    });
  });

  step('creates a development cluster through the wizard; a field the API\'s contract refuses is shown beside it before it is sent', async () => {
    await page.getByRole('link', { name: 'Create a cluster' }).first().click();
    await page.getByRole('heading', { name: 'Create a Consul cluster' }).waitFor();
    // Basics
    await page.getByLabel('Subscription').fill(SUBSCRIPTION);
    await page.getByLabel('Resource group').fill('rg-console');
    const regions = await page.getByLabel('Region').locator('option').count();
    assert.ok(regions >= 50, `the region list holds every public Azure region from GET /v1/regions (${regions})`);
    await page.getByLabel('Region').selectOption('northeurope');
    await assertAccessible(page, 'the wizard (Basics)');
    await page.getByRole('button', { name: 'Next: Consul settings' }).click();
    // Consul settings: a name the API refuses (uppercase), caught by the contract's own schema before anything is sent.
    const name = page.getByLabel('Cluster name');
    await name.fill('Orders_Dev');
    await page.getByRole('radio', { name: /development/ }).check();
    assert.match((await page.getByText(/per hour/).first().textContent()) ?? '', /\d/, 'each tier shows its hourly price');
    assert.match((await page.getByLabel('Consul version').textContent()) ?? '', /RECOMMENDED/, 'the version shows its status');
    const requests: string[] = [];
    const onRequest = (r: { method(): string; url(): string }) => {
      if (r.method() !== 'GET') requests.push(`${r.method()} ${r.url()}`);
    };
    page.on('request', onRequest);
    await page.getByRole('button', { name: 'Next: Operations' }).click();
    await name.and(page.locator('[aria-invalid="true"]')).waitFor();
    const describedBy = (await name.getAttribute('aria-describedby')) ?? '';
    const message = await page.locator(`[id="${describedBy.split(' ')[0]}"]`).textContent();
    assert.match(message ?? '', /lowercase letters, digits or hyphens/, 'the rule\'s message is tied to the field');
    assert.equal(await page.getByRole('heading', { name: 'Consul settings' }).count(), 1, 'the wizard stays on the step');
    assert.deepEqual(requests, [], 'nothing was sent');
    page.off('request', onRequest);
    await assertAccessible(page, 'the wizard with a refused field');
    await screenshot(page, 'wizard-review', { readme: true });
    await name.fill('orders-dev');
    await page.getByRole('button', { name: 'Next: Operations' }).click();
    // Operations
    await page.getByLabel('Snapshot interval (hours)').fill('12');
    await page.getByLabel('Snapshots kept').fill('7');
    await page.getByRole('button', { name: 'Next: Review + create' }).click();
    await page.getByRole('heading', { name: 'Review + create' }).waitFor();
    await assertAccessible(page, 'the wizard (Review)');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL(/\/deployments\/[0-9a-f-]{36}$/);
    await page.getByRole('heading', { name: 'Deployment of orders-dev' }).waitFor();
    await page.getByRole('heading', { name: 'orders-dev is Running' }).waitFor({ timeout: CREATE_TIMEOUT_MS });
    await screenshot(page, 'deployment', { readme: true });
    const steps = await page.getByRole('list', { name: 'Deployment progress: steps' }).getByRole('listitem').allTextContents();
    assert.ok(steps.length >= 3 && steps.every((t) => t.includes('Succeeded')), `the create's steps are shown, all succeeded: ${steps.join(' | ')}`);
    const row = await s.db.cluster.findFirstOrThrow({ where: { name: 'orders-dev' } });
    clusterId = row.id;
    assert.equal(row.state, 'Running');
    assert.equal(row.region, 'northeurope');
    assert.deepEqual([row.snapshotIntervalHours, row.snapshotRetention], [12, 7], 'the Operations step reached the server');
  });

  step('the list shows the new cluster with its state, health, version, tier, region and creation time, and updates without a reload', async () => {
    // The tab opened on the empty list before the create shows the cluster Running by itself.
    await watcher.getByRole('row', { name: /orders-dev/ }).getByText('Running').waitFor({ timeout: 45_000 });
    assert.equal(watcherNavigations, 0, 'the list tab was never reloaded');
    await watcher.close();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters', exact: true }).click();
    const row = page.getByRole('row', { name: /orders-dev/ });
    await row.getByText('Running').waitFor();
    const text = (await row.textContent()) ?? '';
    for (const part of ['Running', '1.8.7', 'development', 'northeurope']) assert.ok(text.includes(part), `${part} in "${text}"`);
    await assertAccessible(page, 'the clusters list');
  });

  step('the cluster page: takes a snapshot and lists it, with keyboard-operable tabs', async () => {
    await page.getByRole('link', { name: 'orders-dev' }).click();
    await page.getByRole('heading', { name: 'orders-dev', level: 1 }).waitFor();
    await page.getByRole('link', { name: /Open Consul UI/ }).waitFor();
    await page.getByText('health: healthy').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByRole('link', { name: /Open Consul UI/ }).getAttribute('href'), `/sso/clusters/${clusterId}`);
    await assertAccessible(page, 'the cluster page');
    await screenshot(page, 'cluster-page', { readme: true });

    // Keyboard: from the selected tab, the arrow key moves to the next one.
    await page.getByRole('tab', { name: 'Overview' }).focus();
    await page.keyboard.press('ArrowRight');
    await page.getByRole('tab', { name: 'Snapshots', selected: true }).waitFor();
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Snapshots');

    await page.getByLabel('Snapshot name (optional)').fill('before-change');
    await page.getByRole('button', { name: 'Take a snapshot' }).click();
    const snap = page.getByRole('row', { name: /before-change/ });
    await snap.getByText('Available').waitFor({ timeout: 60_000 });
    assert.match((await snap.textContent()) ?? '', /manual/);
    await assertAccessible(page, 'the snapshots tab');
    await screenshot(page, 'cluster-snapshots');
    const listed = await waitFor('the snapshot in the API', () => s.db.snapshot.findMany({ where: { clusterId } }), (r) => r.some((x) => x.name === 'before-change' && x.state === 'Available'));
    assert.equal(listed.filter((x) => x.kind === 'manual').length, 1);
  });

  step('renames a snapshot, and restores it only once the cluster name is typed (a safety snapshot first)', async () => {
    await page.getByRole('button', { name: 'Rename before-change' }).click();
    const rename = page.getByRole('dialog', { name: 'Rename before-change' });
    await rename.getByLabel('New name').fill('known-good');
    await rename.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('row', { name: /known-good/ }).waitFor();

    await page.getByRole('button', { name: 'Restore known-good' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore known-good?' });
    const confirm = dialog.getByRole('button', { name: 'Restore', exact: true });
    assert.equal(await confirm.isDisabled(), true, 'no restore before the name is typed');
    await dialog.getByLabel(/Type orders-dev to confirm/).fill('orders-de');
    assert.equal(await confirm.isDisabled(), true, 'nor with a name typed wrong');
    await dialog.getByLabel(/Type orders-dev to confirm/).fill('orders-dev');
    await confirm.click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('row', { name: /pre-restore/ }).getByText('Available').waitFor({ timeout: 60_000 });
    const restore = await waitFor('the restore', () => s.db.operation.findFirst({ where: { clusterId, kind: 'restore' } }), (o) => o?.state === 'Succeeded', 90_000);
    assert.ok(restore);

    await page.getByRole('tab', { name: 'Operations and events' }).click();
    await page.getByRole('listitem').filter({ hasText: 'restore' }).getByText('Succeeded').first().waitFor({ timeout: 30_000 });
    await assertAccessible(page, 'the operations and events tab');
  });

  step('downloads the client config, and shows a new token once', async () => {
    await page.getByRole('tab', { name: 'Overview' }).click();
    const downloads: { name: string; text: string }[] = [];
    const both = new Promise<void>((resolve) => {
      page.on('download', async (d) => {
        const file = await d.path();
        downloads.push({ name: d.suggestedFilename(), text: fs.readFileSync(file, 'utf8') });
        if (downloads.length === 2) resolve();
      });
    });
    await page.getByRole('button', { name: 'Download client config' }).click();
    await both;
    const config = downloads.find((d) => d.name === 'orders-dev-client.json');
    assert.ok(config, `downloads: ${downloads.map((d) => d.name).join(', ')}`);
    assert.equal(JSON.parse(config.text).datacenter, 'orders-dev');
    assert.match(downloads.find((d) => d.name === 'ca.pem')?.text ?? '', /BEGIN CERTIFICATE/);

    await page.getByRole('button', { name: 'Generate a token…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Generate an ACL token' });
    await dialog.getByLabel('Description (optional)').fill('ci agent');
    await dialog.getByRole('button', { name: 'Generate' }).click();
    const secret = (await dialog.getByLabel('Secret id').textContent()) ?? '';
    assert.match(secret, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await assertAccessible(page, 'the token dialog');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await page.content()).includes(secret), false, 'the secret is gone from the page once the dialog closes');
    const storage = await page.evaluate('JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])');
    assert.equal(String(storage).includes(secret), false);
  });

  step('the Kubernetes tab: the Helm values, and the Secret shown once with a token made for it; both YAML, each with a copy button', async () => {
    await alice.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
    const clipboard = async () => String(await page.evaluate('navigator.clipboard.readText()'));
    await page.getByRole('tab', { name: 'Overview' }).click();
    await page.getByRole('link', { name: 'Kubernetes tab' }).click();
    await page.getByRole('tab', { name: 'Kubernetes', selected: true }).waitFor();
    const values = page.getByRole('region', { name: 'Helm values (values.yaml)' });
    await values.waitFor();
    const valuesText = (await values.textContent()) ?? '';
    const parsed = YAML.parse(valuesText);
    const servers = (await s.db.clusterServer.findMany({ where: { clusterId }, orderBy: { index: 'asc' } })).map((x) => x.address);
    assert.deepEqual([parsed.global.enabled, parsed.server.enabled, parsed.connectInject.enabled], [false, false, true]);
    assert.deepEqual(parsed.externalServers.hosts, servers);
    await page.getByText(/hashicorp\/consul 0\.26\.0/).first().waitFor();
    await page.getByRole('button', { name: 'Copy values.yaml' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await clipboard(), valuesText, 'the copy button copies the values as shown');

    // The API server field is checked with the contract's rule before anything is sent.
    const host = page.getByLabel('Kubernetes API server (optional)');
    await host.fill('http://aks.example');
    await host.and(page.locator('[aria-invalid="true"]')).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Update the values' }).isDisabled(), true);
    await host.fill('https://orders-aks-1a2b3c4d.hcp.northeurope.azmk8s.io:443');
    await page.getByRole('button', { name: 'Update the values' }).click();
    await values.getByText('k8sAuthMethodHost: https://orders-aks-1a2b3c4d.hcp.northeurope.azmk8s.io:443').waitFor();
    await assertAccessible(page, 'the Kubernetes tab');
    await screenshot(page, 'cluster-kubernetes');

    const tokensBefore = await s.db.issuedToken.count({ where: { clusterId } });
    await page.getByRole('button', { name: 'Create the Secret…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create the Kubernetes Secret' });
    await dialog.getByRole('button', { name: 'Create token and Secret' }).click();
    const secretDoc = dialog.getByRole('region', { name: 'The Secret (secret.yaml)' });
    await secretDoc.waitFor({ timeout: 60_000 });
    const secretText = (await secretDoc.textContent()) ?? '';
    const secret = YAML.parse(secretText) as { kind: string; data: Record<string, string> };
    assert.equal(secret.kind, 'Secret');
    const decoded = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
    const gossipKey = await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).get(clusterId, SecretName.GossipKey);
    assert.ok(gossipKey && decoded('gossipEncryptionKey') === gossipKey, "the Secret holds the cluster's gossip key");
    assert.match(decoded('caCert'), /BEGIN CERTIFICATE/);
    const bootstrap = decoded('bootstrapToken');
    assert.ok(/^[0-9a-f-]{36}$/.test(bootstrap), 'the Secret holds a SecretID');
    assert.equal(await s.db.issuedToken.count({ where: { clusterId } }), tokensBefore + 1, 'a management token was made for the chart');
    await dialog.getByRole('button', { name: 'Copy secret.yaml' }).click();
    await dialog.getByRole('button', { name: 'Copied' }).waitFor();
    assert.ok(await clipboard() === secretText, 'the copy button copies the Secret as shown');
    await assertAccessible(page, 'the Secret dialog');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const content = await page.content();
    assert.ok(!content.includes(secret.data.bootstrapToken!) && !content.includes(bootstrap) && !content.includes(gossipKey), 'the Secret is gone from the page once the dialog closes');
    await page.evaluate('navigator.clipboard.writeText("")');
  });

  step('the Audit export tab: a SAS refused at its field, a good one (a password field, never shown back) exports, a failure shows as an alert, then off', async () => {
    const customer = await customerContainer(s.config);
    try {
      await page.getByRole('tab', { name: 'Audit export' }).click();
      await page.getByRole('tab', { name: 'Audit export', selected: true }).waitFor();
      const panel = page.getByRole('region', { name: 'Audit export' });
      await panel.getByText('Off', { exact: true }).waitFor();
      const input = page.getByLabel('Container URL with SAS');
      assert.equal(await input.getAttribute('type'), 'password', 'the SAS is typed into a password field');
      await input.fill(customer.sasUrl({ permissions: 'r' }));
      await page.getByRole('button', { name: 'Turn on audit export' }).click();
      await page.getByText(/the SAS \(sp=r\) lacks add \(a\)/).waitFor();
      assert.equal(await input.getAttribute('aria-invalid'), 'true', 'the refusal is shown at the field');

      const good = customer.sasUrl();
      await input.fill(good);
      await page.getByRole('button', { name: 'Turn on audit export' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved: access checked' }).waitFor();
      assert.equal(await input.inputValue(), '', 'the SAS is cleared once sent');
      await panel.getByText('Up to date', { exact: true }).waitFor({ timeout: 30_000 });
      await panel.getByText(`${customer.endpoint}/${customer.container.containerName}`, { exact: true }).waitFor();
      await panel.getByText(new RegExp(`${clusterId}/y=\\d{4}/m=\\d\\d/d=\\d\\d/h=\\d\\d\\.jsonl`)).waitFor();
      assert.ok(!(await page.content()).includes(new URL(good).searchParams.get('sig')!), 'the SAS is not in the page');
      await assertAccessible(page, 'the Audit export tab');

      // The container disappears: the next events cannot be written; the failure is an alert, retried.
      await customer.container.delete();
      await s.db.auditEvent.create({ data: { id: randomUUID(), tenantId: TENANT_A, clusterId, actor: 'test', action: 'test.after-container-gone' } });
      const alert = page.getByRole('alert').filter({ hasText: 'container_not_found' });
      await alert.waitFor({ timeout: 45_000 });
      assert.match((await alert.textContent()) ?? '', /Retrying at/);
      await panel.getByText('Retrying', { exact: true }).waitFor();
      await assertAccessible(page, 'the Audit export tab with a failing export');

      await page.getByRole('button', { name: 'Turn off audit export' }).click();
      await panel.getByText('Off', { exact: true }).waitFor();
      await page.getByRole('button', { name: 'Turn on audit export' }).waitFor();
    } finally {
      await customer.container.deleteIfExists();
    }
  });

  step('an SRE sees the fleet across tenants, filters it, starts a snapshot wave and watches it finish', async () => {
    const sre = await newPerson(browser);
    const p = await sre.newPage();
    try {
      await p.goto(`${s.url}/fleet`);
      await signInAs(p, { user: 'sre@operator.example', tenantId: OPERATOR_TENANT, roles: ['Platform.SRE'] });
      await p.getByRole('heading', { name: 'Fleet' }).waitFor();
      const row = p.getByRole('row', { name: /orders-dev/ });
      await row.waitFor();
      assert.ok(((await row.textContent()) ?? '').includes(TENANT_A), 'the fleet shows the cluster\'s tenant');
      assert.equal(await p.getByRole('link', { name: 'Queues dashboard' }).getAttribute('href'), '/admin/queues');
      await assertAccessible(p, 'the fleet page');

      await p.getByLabel('Region').selectOption('westus');
      await p.getByText('No cluster matches these filters.').waitFor();
      assert.match(p.url(), /region=westus/);
      await p.getByLabel('Region').selectOption('northeurope');
      await row.waitFor();

      await p.getByLabel('Action').selectOption('snapshot');
      await p.getByRole('button', { name: 'Start the wave' }).click();
      await p.waitForURL(/\/fleet\/waves\/[0-9a-f-]{36}$/);
      await p.getByRole('heading', { name: 'Wave: snapshot' }).waitFor();
      await p.getByRole('row', { name: new RegExp(clusterId) }).getByText('Succeeded').waitFor({ timeout: 90_000 });
      await p.getByText('1 succeeded').waitFor();
      await assertAccessible(p, 'the wave page');
    } finally {
      await sre.close();
    }
  });

  step('Open Consul UI lands on the cluster\'s own UI origin signed in: its nodes listed, no token prompt', async () => {
    proxyPort = s.api.get(ConsulUiProxy).port;
    uiOrigin = `http://${clusterId}.ui.localhost:${proxyPort}`;
    await page.getByRole('tab', { name: 'Overview' }).click();
    const [ui] = await Promise.all([alice.waitForEvent('page'), page.getByRole('link', { name: /Open Consul UI/ }).click()]);
    aliceUi = ui;
    // The Consul UI runs under the proxy's CSP (its own inline scripts by hash) and breaks none of it.
    ui.on('pageerror', (e) => uiProblems.push(`uncaught: ${e.message}`));
    ui.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) uiProblems.push(m.text());
    });
    await ui.waitForURL((u) => u.origin === uiOrigin && u.pathname.startsWith('/ui/'), { timeout: 30_000 });
    const server = await s.db.clusterServer.findFirstOrThrow({ where: { clusterId } });
    const node = serverNodeName('orders-dev', server.index);
    await ui.getByRole('link', { name: 'Nodes', exact: true }).first().click();
    await ui.getByText(node, { exact: true }).first().waitFor({ timeout: 30_000 });
    assert.equal(await ui.getByText(/not authorized|ACL token/i).count(), 0, 'no token prompt and no authorization error');
    await screenshot(ui, 'consul-ui', { readme: true });
    const cookies = await alice.cookies(uiOrigin);
    assert.deepEqual(
      cookies.map((c) => [c.name, c.httpOnly, c.secure]).sort(),
      [['__Host-mc_ui_login', true, true], ['__Host-mc_ui_session', true, true]],
      'the UI origin holds its __Host- session cookie and sign-in binding only, no Consul token',
    );
    const storage = String(await ui.evaluate('JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])'));
    assert.doesNotMatch(storage, /token/i, `no Consul token kept by the UI in storage: ${storage}`);
    await ui.getByRole('link', { name: 'Key/Value', exact: true }).first().click();
    await ui.waitForURL((u) => u.pathname.includes('/kv'));
    assert.deepEqual(uiProblems, [], 'no uncaught error and no CSP violation in the Consul UI');
  });

  // Consul 1.8.7 itself answers ?raw with text/plain, nosniff and CSP sandbox: this guards that
  // property, which the proxy now also vouches for (ui-headers.ts), against a Consul that stops giving it.
  step('an HTML value with a script, stored in KV and opened with ?raw on the UI origin, does not run', async () => {
    const probe = await alice.newPage();
    try {
      const dialogs: string[] = [];
      probe.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const html = `<!doctype html><html><head><title>kv page</title></head><body><h1>stored</h1>
<script>document.title = 'ran'; fetch('/v1/kv/xss/ran', { method: 'PUT', body: 'script' }); alert('script');</script>
<img src="/nowhere" onerror="document.title = 'ran'; fetch('/v1/kv/xss/ran', { method: 'PUT', body: 'handler' })"></body></html>`;
      await probe.goto(`${uiOrigin}/ui/`);
      const put = (await probe.evaluate(`fetch('/v1/kv/xss/page', { method: 'PUT', body: ${JSON.stringify(html)} }).then((r) => r.status)`)) as number;
      assert.equal(put, 200, 'alice (ReadWrite) stores the value through the proxy');
      const res = await probe.goto(`${uiOrigin}/v1/kv/xss/page?raw`);
      assert.equal(res?.status(), 200);
      assert.match(res!.headers()['content-security-policy'] ?? '', /^sandbox/);
      assert.equal(res!.headers()['x-content-type-options'], 'nosniff');
      await probe.waitForLoadState('load');
      assert.doesNotMatch(await probe.title(), /ran/, 'the inline script did not run');
      assert.equal(await probe.locator('h1').count(), 0, 'shown as text, not rendered as a document');
      assert.match((await probe.textContent('body')) ?? '', /<script>document\.title/, 'the value is there, as text');
      // Had either script run, it would have written this key with alice's UI session.
      assert.equal((await consul('GET', '/v1/kv/xss/ran', await managementToken())).status, 404, 'no request came from the value');
      assert.deepEqual(dialogs, []);
    } finally {
      await probe.close();
    }
  });

  step('a user of another tenant following the same link gets no UI and no token', async () => {
    const bob = await newPerson(browser);
    try {
      const p = await bob.newPage();
      // Not signed in yet: the link goes through the sign-in first, then comes back to it.
      await p.goto(`${s.url}/sso/clusters/${clusterId}`);
      await issuerSignIn(p, { user: 'bob@fabrikam.example', tenantId: TENANT_B, roles: ['Clusters.ReadWrite'] });
      await p.waitForURL((u) => u.pathname === `/sso/clusters/${clusterId}`);
      assert.match((await p.textContent('body')) ?? '', /no cluster/i);
      // Straight to the UI origin: sent back through the console, refused again.
      await p.goto(`${uiOrigin}/ui/`);
      await p.waitForURL((u) => u.origin === s.url);
      assert.match((await p.textContent('body')) ?? '', /no cluster/i);
      assert.deepEqual((await bob.cookies(uiOrigin)).map((c) => c.name), ['__Host-mc_ui_login'], 'no UI session on the cluster\'s origin (only the binding of the refused start)');
      assert.equal(await s.db.consulUiSession.count({ where: { clusterId, tenantId: TENANT_B } }), 0, 'no Consul token made for them');
    } finally {
      await bob.close();
    }
  });

  step('a Read-only user\'s UI session cannot write a KV key', async () => {
    const rita = await newPerson(browser);
    try {
      const p = await rita.newPage();
      await p.goto(`${s.url}/clusters/${clusterId}`);
      await signInAs(p, { user: 'rita@contoso.example', tenantId: TENANT_A, roles: ['Clusters.Read'] });
      await p.getByRole('heading', { name: 'orders-dev', level: 1 }).waitFor();
      assert.equal(await p.getByRole('button', { name: 'Delete…' }).count(), 0, 'no delete for a reader');
      const [ui] = await Promise.all([rita.waitForEvent('page'), p.getByRole('link', { name: /Open Consul UI/ }).click()]);
      await ui.waitForURL((u) => u.origin === uiOrigin && u.pathname.startsWith('/ui/'), { timeout: 30_000 });
      await ui.goto(`${uiOrigin}/ui/orders-dev/kv/create`);
      await ui.getByLabel(/Key or folder/i).fill('console/by-reader');
      await ui.getByRole('button', { name: 'Save' }).click();
      // Consul's own UI says what Consul answered the proxied write.
      await ui.getByText(/There was an error saving your key/).waitFor({ timeout: 15_000 });
      await ui.getByText(/403: Permission denied/).waitFor();
      await screenshot(ui, 'consul-ui-reader-kv-refused');
      const put = (await ui.evaluate(`fetch('/v1/kv/console/by-reader', { method: 'PUT', body: 'x' }).then((r) => r.status)`)) as number;
      assert.equal(put, 403, 'Consul refuses the reader\'s write through the proxy');
      assert.equal((await consul('GET', '/v1/kv/console/by-reader', await managementToken())).status, 404, 'the key was not written');
    } finally {
      await rita.close();
    }
  });

  /** The token the primary's page showed once, kept by the test to create the secondary with. */
  let federationToken = '';

  step('a Running cluster shows "Not federated"; Create federation token shows a single-use token once; a reader has no such button', async () => {
    await page.goto(`${s.url}/clusters/${clusterId}`);
    const section = page.getByRole('region', { name: 'Federation', exact: true });
    await section.getByText('Not federated').waitFor();
    await section.getByRole('button', { name: 'Create federation token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Federation token' });
    federationToken = (await dialog.getByLabel('Federation token').textContent()) ?? '';
    // (checked without printing it: a failure's output holds no secret)
    assert.ok(/^mcf1\.[\w-]{43}$/.test(federationToken), 'the token is shown');
    const [issued] = await s.db.federationToken.findMany({ where: { primaryClusterId: clusterId } });
    assert.ok(issued && issued.usedAt === null, 'one unused token of this cluster');
    assert.ok(!JSON.stringify(issued).includes(federationToken), 'only its hash is kept');
    assert.equal(issued.expiresAt.getTime() - issued.createdAt.getTime(), 3_600_000, 'valid for an hour');
    const shown = ((await dialog.textContent()) ?? '').replace(federationToken, '<token>');
    assert.ok(shown.includes(issued.expiresAt.toISOString().slice(11, 16)), `its expiry (${issued.expiresAt.toISOString()}) is shown: ${shown}`);
    assert.match(shown, /shown this once/);
    assert.equal(await dialog.getByRole('link', { name: /create a cluster/ }).getAttribute('href'), '/clusters/new', 'it says how to use it');
    await assertAccessible(page, 'the federation token dialog');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await page.content()).includes(federationToken), false, 'the token is gone from the page once the dialog closes');
    await assertAccessible(page, 'the cluster page with its federation section');

    const reader = await newPerson(browser);
    try {
      const p = await reader.newPage();
      await p.goto(`${s.url}/clusters/${clusterId}`);
      await signInAs(p, { user: 'rita@contoso.example', tenantId: TENANT_A, roles: ['Clusters.Read'] });
      const readerSection = p.getByRole('region', { name: 'Federation', exact: true });
      await readerSection.getByText('Not federated').waitFor();
      assert.equal(await p.getByRole('button', { name: 'Create federation token' }).count(), 0, 'no federation token for a reader');
    } finally {
      await reader.close();
    }
  });

  step('the wizard makes a secondary with the token, showing the API\'s refusals at their fields; each member\'s page shows the federation', async () => {
    await page.goto(`${s.url}/clusters/new`);
    await page.getByLabel('Subscription').fill(SUBSCRIPTION);
    await page.getByLabel('Resource group').fill('rg-console');
    await page.getByLabel('Region').selectOption('westeurope');
    await page.getByRole('button', { name: 'Next: Consul settings' }).click();
    await page.getByLabel('Cluster name').fill('orders-west');
    await page.getByRole('radio', { name: /development/ }).check();
    // The primary's datacenter (its name), which the API refuses for a second member.
    await page.getByLabel('Datacenter').fill('orders-dev');
    /** A field the wizard marks refused, with its message tied to it. */
    const fieldError = async (label: string, message: RegExp) => {
      const field = page.getByLabel(label);
      await field.and(page.locator('[aria-invalid="true"]')).waitFor();
      const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
      assert.match((await page.locator(`[id="${describedBy.split(' ')[0]}"]`).textContent()) ?? '', message);
    };
    // The external endpoint's allowlist editor: the contract's rules before the step moves on.
    await page.getByRole('checkbox', { name: 'Expose a public endpoint' }).check();
    const sources = page.getByRole('group', { name: 'Allowed sources' });
    await sources.getByText('No networks: the endpoint admits nobody.').waitFor();
    await sources.getByRole('button', { name: 'Add network' }).click();
    await sources.getByLabel('Network 1 (CIDR)').fill('10.1.2.3/8');
    await sources.getByLabel('Description 1').fill('branch');
    await sources.getByRole('button', { name: 'Add network' }).click();
    await sources.getByLabel('Network 2 (CIDR)').fill('2001:DB8::/32');
    await assertAccessible(page, 'the wizard\'s allowlist editor');
    await page.getByLabel('Federation token').fill('not-a-token');
    await page.getByRole('button', { name: 'Next: Operations' }).click();
    await fieldError('Federation token', /federationToken must be/);
    assert.equal(await page.getByRole('heading', { name: 'Consul settings' }).count(), 1, 'the contract\'s rule keeps the wizard on the step');
    // Well formed but never issued: only the API can tell.
    await page.getByLabel('Federation token').fill(`mcf1.${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Next: Operations' }).click();
    await sources.getByText(/ipAllowlist\.0\.cidr '10\.1\.2\.3\/8' has host bits set; the network is 10\.0\.0\.0\/8: send that/).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Consul settings' }).count(), 1, 'the allowlist\'s rules keep the wizard on the step too');
    await sources.getByLabel('Network 1 (CIDR)').fill('10.0.0.0/8');
    await page.getByRole('button', { name: 'Next: Operations' }).click();
    // Operations: deletion protection is off unless asked for; the pin is chosen here.
    assert.equal(await page.getByRole('checkbox', { name: 'Protect the cluster from deletion' }).isChecked(), false, 'deletion protection is off by default');
    assert.equal(await page.getByRole('radio', { name: /^None: any version/ }).isChecked(), true, 'no pin by default');
    await page.getByRole('radio', { name: /^Patch releases only: the same major\.minor \(1\.8\.x\)/ }).check();
    await assertAccessible(page, 'the wizard (Operations)');
    await page.getByRole('button', { name: 'Next: Review + create' }).click();
    await page.getByRole('heading', { name: 'Review + create' }).waitFor();
    assert.match((await page.getByRole('region', { name: 'Consul settings' }).textContent()) ?? '', /Given: joins its primary’s federation as a secondary/);
    const operations = (await page.getByRole('region', { name: 'Operations' }).textContent()) ?? '';
    assert.match(operations, /Version pinpinned to 1\.8\.x/);
    assert.match(operations, /Deletion protectionOff/);
    assert.match((await page.getByRole('region', { name: 'Consul settings' }).textContent()) ?? '', /Allowed sources10\.0\.0\.0\/8 \(branch\), 2001:DB8::\/32/);
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await fieldError('Federation token', /the federation token is unknown, used or expired/);
    await page.getByLabel('Federation token').fill(federationToken);
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await fieldError('Datacenter', /datacenter 'orders-dev' is orders-dev's in this federation/);
    await assertAccessible(page, 'the wizard with a refused datacenter');
    await page.getByLabel('Datacenter').fill('orders-west');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL(/\/deployments\/[0-9a-f-]{36}$/);
    const ended = page.getByRole('heading', { name: /^(orders-west is Running|The deployment failed)$/ });
    await ended.waitFor({ timeout: 180_000 });
    assert.equal(await ended.textContent(), 'orders-west is Running', (await page.getByRole('alert').allTextContents()).join(' | '));
    const secondary = await s.db.cluster.findFirstOrThrow({ where: { name: 'orders-west' } });
    assert.equal(secondary.primaryClusterId, clusterId, 'a secondary of orders-dev');
    assert.deepEqual([secondary.upgradePin, secondary.deletionProtection], ['patch', false], 'the Operations step reached the server');
    assert.equal(secondary.publicEndpoint, true);
    assert.deepEqual(secondary.ipAllowlist, [{ cidr: '10.0.0.0/8', description: 'branch' }, { cidr: '2001:db8::/32', description: '' }], 'the allowlist reached the server (IPv6 in its canonical form)');

    // The secondary's page names its primary and links to it.
    await page.goto(`${s.url}/clusters/${secondary.id}`);
    let section = page.getByRole('region', { name: 'Federation', exact: true });
    await section.getByText('orders-west is a secondary of').waitFor();
    assert.equal(await section.getByRole('button', { name: 'Create federation token' }).count(), 0, 'a secondary issues no federation tokens');
    await section.getByRole('link', { name: 'orders-dev' }).first().click();
    await page.getByRole('heading', { name: 'orders-dev', level: 1 }).waitFor();
    // The primary's page lists the secondary, linked, with its datacenter, region and state.
    section = page.getByRole('region', { name: 'Federation', exact: true });
    await section.getByText('orders-dev is the primary of 1 secondary.').waitFor();
    await section.getByText('federation: healthy').waitFor({ timeout: 30_000 });
    const row = section.getByRole('row', { name: /orders-west/ });
    const cells = await row.getByRole('cell').allTextContents();
    assert.deepEqual(cells.slice(0, 4), ['secondary', 'orders-west', 'westeurope', 'Running'], `the secondary's row: ${cells.join(' | ')}`);
    assert.equal(await row.getByRole('link', { name: 'orders-west' }).getAttribute('href'), `/clusters/${secondary.id}`);
    await assertAccessible(page, 'the primary\'s federation section');
    await screenshot(page, 'cluster-federation', { readme: true, of: section });

    // A primary with a secondary is not deleted: the API's 409 says what to do first.
    await page.getByRole('button', { name: 'Delete…' }).click();
    const del = page.getByRole('dialog', { name: 'Delete orders-dev?' });
    await del.getByLabel(/Type orders-dev to confirm/).fill('orders-dev');
    await del.getByRole('button', { name: 'Delete the cluster' }).click();
    await del.getByRole('alert').filter({ hasText: /delete its secondaries first: orders-west/ }).waitFor();
    await del.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).state, 'Running');
  });

  step('deletion protection: turned on in the settings, the delete dialog says so and shows the API\'s refusal, turned off again; the version pin shown and changed', async () => {
    await page.goto(`${s.url}/clusters/${clusterId}?tab=settings`);
    const protection = page.getByRole('region', { name: 'Deletion protection' });
    await protection.getByText('Now off.').waitFor();
    await protection.getByRole('checkbox', { name: 'Protect this cluster from deletion' }).check();
    await protection.getByRole('button', { name: 'Save deletion protection' }).click();
    await protection.getByText('Now on: the cluster cannot be deleted until it is turned off').waitFor();
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).deletionProtection, true);
    await assertAccessible(page, 'the settings tab');

    await page.getByRole('button', { name: 'Delete…' }).click();
    const del = page.getByRole('dialog', { name: 'Delete orders-dev?' });
    await del.getByText(/Deletion protection is on: the control plane refuses to delete orders-dev\. To delete it, first turn protection off/).waitFor();
    await assertAccessible(page, 'the delete dialog of a protected cluster');
    await del.getByLabel(/Type orders-dev to confirm/).fill('orders-dev');
    await del.getByRole('button', { name: 'Delete the cluster' }).click();
    const refusal = del.getByRole('alert').filter({ hasText: /orders-dev has deletion protection on, so it was not deleted; turn it off first/ });
    await refusal.waitFor();
    assert.match((await refusal.textContent()) ?? '', /\(deletion_protected\)/);
    await screenshot(page, 'delete-protected');
    await del.getByRole('button', { name: 'Cancel' }).click();
    await del.waitFor({ state: 'hidden' });
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).state, 'Running');
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'delete' } }), 0, 'no delete was queued');

    await protection.getByRole('checkbox', { name: 'Protect this cluster from deletion' }).uncheck();
    await protection.getByRole('button', { name: 'Save deletion protection' }).click();
    await protection.getByText('Now off.').waitFor();
    const changes = await s.db.auditEvent.findMany({ where: { clusterId, action: 'cluster.deletion-protection.changed' }, orderBy: { createdAt: 'asc' } });
    assert.deepEqual(changes.map((e) => e.details), [{ from: false, to: true }, { from: true, to: false }], 'both changes audited');
    await page.getByRole('button', { name: 'Delete…' }).click();
    await del.getByLabel(/Type orders-dev to confirm/).waitFor();
    assert.equal(await del.getByText(/Deletion protection is on/).count(), 0, 'the dialog no longer warns');
    assert.equal(await del.getByRole('alert').count(), 0, 'nor shows the earlier refusal');
    await del.getByRole('button', { name: 'Cancel' }).click();

    // The pin: none yet; patch releases chosen and saved; shown on the Overview.
    const policy = page.getByRole('region', { name: 'Upgrade policy' });
    await policy.getByText(/^Now not pinned\./).waitFor();
    await policy.getByRole('radio', { name: /^Patch releases only: the same major\.minor \(1\.8\.x\)/ }).check();
    await policy.getByRole('button', { name: 'Save upgrade policy' }).click();
    await policy.getByText(/^Now pinned to 1\.8\.x\./).waitFor();
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).upgradePin, 'patch');
    await page.getByRole('tab', { name: 'Overview' }).click();
    const details = page.getByRole('region', { name: 'Details' });
    await details.getByText('manual; pinned to 1.8.x').waitFor();
    await details.getByText('Deletion protection').waitFor();
  });

  step('public endpoint: the settings card turns it on with an allowlist (rows added and removed, 0.0.0.0/0 confirmed), shows the operation and the URL; the Overview shows both', async () => {
    await page.goto(`${s.url}/clusters/${clusterId}?tab=settings`);
    const card = page.getByRole('region', { name: 'Public endpoint' });
    await card.getByText(/^Now off\./).waitFor();
    await card.getByRole('checkbox', { name: 'Serve a public endpoint' }).check();
    const source = `127.${s.config.LOCAL_NET_OCTET}.252.1/32`;
    for (const [i, cidr, description] of [[1, source, 'browser test'], [2, '198.51.100.0/24', 'removed again'], [3, '0.0.0.0/0', 'anyone']] as const) {
      await card.getByRole('button', { name: 'Add network' }).click();
      await card.getByLabel(`Network ${i} (CIDR)`).fill(cidr);
      await card.getByLabel(`Description ${i}`).fill(description);
    }
    await card.getByRole('button', { name: 'Remove network 2' }).click();
    assert.equal(await card.getByLabel('Network 2 (CIDR)').inputValue(), '0.0.0.0/0', 'the rows after it move up');
    await card.getByRole('button', { name: 'Save public endpoint' }).click();
    await card.getByText(/ipAllowlist\.1\.cidr 0\.0\.0\.0\/0 lets every address on the internet in/).waitFor();
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'update-endpoint' } }), 0, 'refused before it was sent');
    await assertAccessible(page, 'the Public endpoint card with a refusal');
    await card.getByRole('checkbox', { name: /Yes, let every address on the internet in/ }).check();
    await card.getByRole('button', { name: 'Save public endpoint' }).click();
    await card.getByRole('progressbar', { name: 'Public endpoint change' }).waitFor();
    await card.getByText('Applied.').waitFor({ timeout: 60_000 });
    await card.getByText(/^Now on: https:\/\/127\.\d+\.\d+\.200:8501 \(UI: /).waitFor();
    const row = await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } });
    assert.equal(row.publicEndpoint, true);
    assert.deepEqual(row.ipAllowlist, [{ cidr: source, description: 'browser test' }, { cidr: '0.0.0.0/0', description: 'anyone' }]);
    assert.equal(await s.db.auditEvent.count({ where: { clusterId, action: 'cluster.endpoint.changed' } }), 1);
    await assertAccessible(page, 'the Public endpoint card with its operation');
    await page.getByRole('tab', { name: 'Overview' }).click();
    const endpoints = page.getByRole('region', { name: 'Endpoints' });
    await endpoints.getByText(/^on: https:\/\/127\.\d+\.\d+\.200:8501/).waitFor();
    await endpoints.getByText(`${source} (browser test), 0.0.0.0/0 (anyone)`).waitFor();
  });

  step('signing out ends the session: the console shows sign-in, the old cookie no longer works, the Consul UI token is revoked', async () => {
    const self = (await aliceUi.evaluate(`fetch('/v1/acl/token/self').then((r) => r.json())`)) as { SecretID: string };
    assert.equal((await consul('GET', '/v1/acl/token/self', self.SecretID)).status, 200, 'the UI token works before sign-out');
    const cookie = (await alice.cookies(s.url)).find((c) => c.name === '__Host-mc_session');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to your clusters' }).waitFor();
    const res = await fetch(`${s.url}/v1/clusters`, { headers: { cookie: `__Host-mc_session=${cookie!.value}` } });
    assert.equal(res.status, 401);
    await waitFor('the cluster to reject the revoked UI token', () => consul('GET', '/v1/acl/token/self', self.SecretID).then((r) => r.status), (status) => status === 403, 30_000);
    // The UI tab, reloaded, is sent back through the console's sign-in.
    await aliceUi.reload();
    await aliceUi.getByLabel('User').waitFor({ timeout: 15_000 });
    assert.notEqual(new URL(aliceUi.url()).origin, uiOrigin);
    assert.deepEqual(pageProblems, [], 'no uncaught error and no CSP violation in the console\'s pages');
  });
});
