import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no downloaded browser): the flags keep it from
 * reaching for the network this machine does not have. Playwright gives every launch a new,
 * empty profile (user-data-dir) of its own.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: npm test installs Debian's chromium package (infra/local/test.sh)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/**
 * A browser context of its own (cookies, storage) per signed-in person. The local issuer serves
 * HTTPS with the development CA, which Chromium does not know: accepted in tests only.
 */
export function newPerson(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' });
}

/** The console's sign-in page, then the issuer's. */
export async function signInAs(page: Page, who: { user: string; tenantId: string; roles: string[] }): Promise<void> {
  await page.getByRole('link', { name: /sign in with your organization account/i }).click();
  await issuerSignIn(page, who);
}

/** The local issuer's sign-in page: user, tenant and roles, then Sign in. */
export async function issuerSignIn(page: Page, who: { user: string; tenantId: string; roles: string[] }): Promise<void> {
  await page.getByLabel('User').fill(who.user);
  await page.getByLabel('Tenant').fill(who.tenantId);
  for (const role of ['Clusters.Read', 'Clusters.ReadWrite', 'Platform.SRE']) {
    await page.getByLabel(role, { exact: true }).setChecked(who.roles.includes(role));
  }
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Where the tests keep what they saw (gitignored); UPDATE_SCREENSHOTS=1 also copies them to docs/screenshots for the README. */
const ROOT = path.resolve(__dirname, '..', '..', '..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

/** The whole page, or with `of` one part of it (a section the docs show on its own). */
export async function screenshot(page: Page, name: string, opts: { readme?: boolean; of?: Locator } = {}): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  if (opts.of) await opts.of.screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: true });
  if (opts.readme && process.env.UPDATE_SCREENSHOTS === '1') {
    const docs = path.join(ROOT, 'docs', 'screenshots');
    fs.mkdirSync(docs, { recursive: true });
    fs.copyFileSync(file, path.join(docs, `${name}.png`));
  }
  return file;
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core run in the page (evaluated through the DevTools protocol, which the page's CSP does
 * not govern): the serious and critical violations, as readable lines.
 */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  const source = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  // (an expression, not a function: the test build has no DOM types)
  const violations = (await page.evaluate(
    `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`,
  )) as AxeViolation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
}
