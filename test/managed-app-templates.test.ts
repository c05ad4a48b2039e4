import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { TIER_NAMES, VERSIONS, VNET_CIDR_PATTERN } from '../libs/core/src';
import { subnetPlan } from '../libs/provisioner/src';
import { FEDERATION_TOKEN_PATTERN, UPGRADE_PINS, createClusterBody } from '../libs/contracts/src';
import { catalogOf } from '../apps/api/src/validation/input';
import { PACKAGE_FILES, buildManagedAppPackage } from '../infra/managed-app/package';
import { SUBSCRIPTION, WRITE, startStack, type TestStack } from './support/stack';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (rel: string): any => JSON.parse(fs.readFileSync(path.join(ROOT, rel), 'utf8'));
const TEMPLATES = ['infra/arm/cluster.json', 'infra/managed-app/mainTemplate.json'];
const DEPLOYMENT_SCHEMA = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#';
const PARAMETER_TYPES = ['string', 'securestring', 'int', 'bool', 'object', 'secureobject', 'array'];
const SEED = Number(process.env.TEMPLATE_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Every string anywhere in a JSON value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      strings(x, out);
    }
  }
  return out;
}

/** Names used as `fn('name')` inside ARM / CreateUiDef expressions. */
function referenced(values: string[], fn: string): Set<string> {
  const names = new Set<string>();
  const re = new RegExp(`\\b${fn}\\('([^']+)'\\)`, 'g');
  for (const s of values) for (const m of s.matchAll(re)) names.add(m[1]);
  return names;
}

describe('ARM templates', () => {
  for (const file of TEMPLATES) {
    it(`${file}: parses and has a deployment template's shape; every parameter and variable it names is declared`, () => {
      const t = read(file);
      assert.equal(t.$schema, DEPLOYMENT_SCHEMA);
      assert.match(t.contentVersion, /^\d+\.\d+\.\d+\.\d+$/);
      assert.ok(t.parameters && typeof t.parameters === 'object' && !Array.isArray(t.parameters));
      for (const [name, p] of Object.entries<any>(t.parameters)) {
        assert.ok(PARAMETER_TYPES.includes(String(p.type).toLowerCase()), `${name}: type ${p.type}`);
        if (p.allowedValues && p.defaultValue !== undefined) assert.ok(p.allowedValues.includes(p.defaultValue), `${name}: default among allowed values`);
      }
      assert.ok(Array.isArray(t.resources) && t.resources.length > 0);
      for (const r of t.resources) {
        assert.match(r.type, /^Microsoft\.[A-Za-z]+\/[A-Za-z/]+$/, 'resource type');
        assert.match(r.apiVersion, /^\d{4}-\d{2}-\d{2}(-preview)?$/, `${r.type}: apiVersion`);
        assert.equal(typeof r.name, 'string', `${r.type}: name`);
      }
      assert.ok(t.outputs && Object.keys(t.outputs).length > 0);
      for (const [name, o] of Object.entries<any>(t.outputs)) assert.ok(o.type && o.value !== undefined, `output ${name}`);
      const all = strings(t);
      for (const s of all.filter((x) => x.startsWith('['))) assert.ok(s.endsWith(']'), `unterminated expression ${s}`);
      const params = referenced(all, 'parameters');
      for (const p of params) assert.ok(p in t.parameters, `[parameters('${p}')] names a declared parameter`);
      for (const v of referenced(all, 'variables')) assert.ok(v in (t.variables ?? {}), `[variables('${v}')] names a declared variable`);
      if (file.endsWith('cluster.json')) {
        for (const p of Object.keys(t.parameters)) assert.ok(params.has(p), `parameter ${p} is used`);
      }
    });
  }

  it('cluster.json: Consul ports only inside the VNet (a federation\'s peered members: RPC and WAN gossip only); 8501 from the allowlist\'s networks and a public load balancer only with the external endpoint', () => {
    const t = read('infra/arm/cluster.json');
    const rules = t.variables.vnetRules as any[];
    const allows = rules.filter((r) => r.properties.access === 'Allow');
    for (const r of allows) {
      assert.ok(['VirtualNetwork', "[parameters('vnetCidr')]", 'AzureLoadBalancer'].includes(r.properties.sourceAddressPrefix), `${r.name}: never from the Internet`);
      assert.ok(['8300', '8301', '8302', '8501'].includes(r.properties.destinationPortRange), `${r.name}: a Consul port`);
      // The VirtualNetwork tag covers peered VNets (https://learn.microsoft.com/azure/virtual-network/service-tags-overview): only RPC and WAN gossip may use it.
      if (r.properties.sourceAddressPrefix === 'VirtualNetwork') assert.ok(['8300', '8302'].includes(r.properties.destinationPortRange), `${r.name}: open to peered members`);
    }
    const deny = rules.find((r) => r.properties.access === 'Deny');
    assert.ok(deny && deny.properties.priority > Math.max(...allows.map((r) => r.properties.priority)), 'everything else is denied, VNet traffic included');
    assert.ok(deny.properties.priority < 65000, 'before Azure\'s default AllowVnetInBound');
    // The public endpoint: 8501 from the allowlist's networks only, a rule per address family, each only with the endpoint on and networks to admit.
    assert.deepEqual(t.variables.publicHttpsIpv4Rule.map((r: any) => [r.properties.sourceAddressPrefixes, r.properties.destinationPortRange]), [["[parameters('publicSourcesIpv4')]", '8501']]);
    assert.deepEqual(t.variables.publicHttpsIpv6Rule.map((r: any) => [r.properties.sourceAddressPrefixes, r.properties.destinationPortRange]), [["[parameters('publicSourcesIpv6')]", '8501']]);
    assert.ok(!JSON.stringify(t.variables).includes('"Internet"'), 'no rule admits the Internet at large');
    assert.equal(t.variables.securityRules, "[concat(variables('vnetRules'), if(and(parameters('externalEndpoint'), not(empty(parameters('publicSourcesIpv4')))), variables('publicHttpsIpv4Rule'), createArray()), if(and(parameters('externalEndpoint'), not(empty(parameters('publicSourcesIpv6')))), variables('publicHttpsIpv6Rule'), createArray()))]");
    const publicOnes = t.resources.filter((r: any) => r.type === 'Microsoft.Network/loadBalancers' && r.name === "[variables('plbName')]");
    assert.equal(publicOnes.length, 1);
    assert.equal(publicOnes[0].condition, "[parameters('externalEndpoint')]");
    assert.equal(t.outputs.publicEndpoint.condition, "[parameters('externalEndpoint')]");

    const vmss = t.resources.find((r: any) => r.type === 'Microsoft.Compute/virtualMachineScaleSets');
    assert.equal(vmss.properties.upgradePolicy.mode, 'Manual', 'the worker picks the order servers change in');
    assert.equal(vmss.properties.overprovision, false, 'no extra instances holding the servers\' addresses');
    assert.equal(vmss.zones, "[parameters('zones')]");
    assert.equal(vmss.sku.capacity, "[variables('serverCount')]");
    assert.equal(vmss.properties.virtualMachineProfile.osProfile.customData, "[parameters('customData')]");
    assert.equal(t.parameters.customData.type, 'secureString', 'the servers\' secrets are never shown in the deployment');
    assert.deepEqual(t.variables.tierServers, Object.fromEntries(TIER_NAMES.map((n) => [n, { development: 1, standard: 3, plus: 5 }[n]])));
    for (const type of ['Microsoft.ManagedIdentity/userAssignedIdentities', 'Microsoft.KeyVault/vaults', 'Microsoft.Storage/storageAccounts', 'Microsoft.Network/virtualNetworks', 'Microsoft.Network/networkSecurityGroups']) {
      assert.ok(t.resources.some((r: any) => r.type === type), type);
    }
    // The internal endpoint's address is where the cloud-init code plans it.
    assert.equal(t.variables.internalLbAddress, "[cidrHost(parameters('vnetCidr'), 3)]");
    assert.equal(subnetPlan(t.parameters.vnetCidr.defaultValue, 1).internalEndpoint, '172.25.16.4');
  });

  it('mainTemplate links cluster.json (in the package) without servers, giving every parameter it has no default for', () => {
    const main = read('infra/managed-app/mainTemplate.json');
    const cluster = read('infra/arm/cluster.json');
    const nested = main.resources.find((r: any) => r.type === 'Microsoft.Resources/deployments');
    assert.match(nested.properties.templateLink.uri, /nestedtemplates\/cluster\.json/);
    assert.ok(PACKAGE_FILES.some((f) => f.name === 'nestedtemplates/cluster.json' && f.source === 'infra/arm/cluster.json'));
    const given = nested.properties.parameters;
    for (const name of Object.keys(given)) assert.ok(name in cluster.parameters, `${name} is a cluster.json parameter`);
    for (const [name, p] of Object.entries<any>(cluster.parameters)) if (p.defaultValue === undefined) assert.ok(name in given, `${name} is given`);
    assert.deepEqual(given.deployServers, { value: false });
    // A managed application's package is read through _artifactsLocation and its SAS token
    // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/artifacts-location; arm-ttk's
    // artifacts-parameter and External-Links-Must-Reference-ArtifactsLocation tests, which Marketplace runs).
    assert.deepEqual(main.parameters._artifactsLocation, { type: 'string', defaultValue: '[deployment().properties.templateLink.uri]', metadata: main.parameters._artifactsLocation.metadata });
    assert.equal(main.parameters._artifactsLocationSasToken.type, 'secureString');
    assert.equal(main.parameters._artifactsLocationSasToken.defaultValue, '');
    assert.match(nested.properties.templateLink.uri, /_artifactsLocation'\)/);
    assert.match(nested.properties.templateLink.uri, /_artifactsLocationSasToken'\)/);
    assert.doesNotMatch(JSON.stringify(main.resources), /deployment\(\)\.properties\.templateLink/, 'the link is never taken from deployment() but through _artifactsLocation');
    assert.equal(main.outputs.tenantId.value, '[subscription().tenantId]', 'the customer tenant, as ARM knows it');
  });
});

describe('createUiDefinition.json', () => {
  const ui = read('infra/managed-app/createUiDefinition.json');
  const main = read('infra/managed-app/mainTemplate.json');
  const elements = (): any[] => ui.parameters.steps.flatMap((s: any) => s.elements.map((e: any) => ({ ...e, step: s.name })));

  it('has the handler, version and parameters { basics, steps, outputs }; every field has a validation with a message', () => {
    assert.equal(ui.handler, 'Microsoft.Azure.CreateUIDef');
    assert.equal(ui.version, '0.1.2-preview');
    assert.ok(Array.isArray(ui.parameters.basics) && Array.isArray(ui.parameters.steps) && typeof ui.parameters.outputs === 'object');
    assert.deepEqual(ui.parameters.steps.map((s: any) => s.name), ['consul', 'operations']);
    assert.deepEqual(elements().filter((e) => e.step === 'consul').map((e) => e.name), ['clusterName', 'datacenter', 'tier', 'consulVersion', 'externalEndpoint', 'publicSources', 'vnetCidr', 'federation', 'federationToken']);
    assert.deepEqual(elements().filter((e) => e.step === 'operations').map((e) => e.name),
      ['upgradeMode', 'upgradeWindowDay', 'upgradeWindowStartHour', 'upgradeWindowHours', 'upgradePin', 'snapshotIntervalHours', 'snapshotRetention', 'deletionProtection']);
    for (const e of elements()) {
      assert.equal(e.constraints?.required, true, `${e.name}: required`);
      const validations = e.constraints?.validations ?? [];
      assert.ok(validations.length > 0, `${e.name}: has a validation`);
      for (const v of validations) {
        assert.ok(typeof v.message === 'string' && v.message.length > 10, `${e.name}: a message saying what to fix`);
        assert.ok(v.regex !== undefined || v.isValid !== undefined, `${e.name}: regex or isValid`);
        if (v.regex) new RegExp(v.regex);
      }
      if (e.defaultValue !== undefined && e.type === 'Microsoft.Common.TextBox') {
        assert.ok(validations.every((v: any) => !v.regex || new RegExp(v.regex).test(e.defaultValue)), `${e.name}: its default passes its own rule`);
      }
    }
    // Every steps('x').y the definition refers to exists.
    const known = new Set(elements().map((e) => `${e.step}.${e.name}`));
    for (const s of strings(ui)) for (const m of s.matchAll(/steps\('([^']+)'\)\.([A-Za-z]+)/g)) assert.ok(known.has(`${m[1]}.${m[2]}`), `steps('${m[1]}').${m[2]}`);
  });

  it('every expression calls only documented CreateUiDefinition functions; drop-down defaults are labels; hidden fields output a value', () => {
    // The documented functions, by page (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/create-uidefinition-functions):
    const DOCUMENTED = new Set([
      // create-ui-definition-collection-functions
      'contains', 'empty', 'filter', 'first', 'last', 'length', 'map', 'skip', 'split', 'take',
      // create-ui-definition-conversion-functions
      'bool', 'decodeBase64', 'decodeUriComponent', 'encodeBase64', 'encodeUriComponent', 'float', 'int', 'parse', 'string',
      // create-ui-definition-date-functions
      'addHours', 'addMinutes', 'addSeconds', 'utcNow',
      // create-ui-definition-logical-functions
      'and', 'coalesce', 'equals', 'greater', 'greaterOrEquals', 'if', 'less', 'lessOrEquals', 'not', 'or',
      // create-ui-definition-math-functions
      'add', 'ceil', 'div', 'floor', 'max', 'min', 'mod', 'mul', 'rand', 'range', 'sub',
      // create-ui-definition-referencing-functions
      'basics', 'location', 'resourceGroup', 'steps', 'subscription',
      // create-ui-definition-string-functions
      'concat', 'endsWith', 'guid', 'indexOf', 'lastIndexOf', 'replace', 'startsWith', 'substring', 'toLower', 'toUpper',
    ]);
    const used = new Set<string>();
    for (const s of strings(ui).filter((x) => x.startsWith('[') && x.endsWith(']'))) {
      // Outside string literals ('...', '' escapes a quote): every name followed by '(' is a call.
      const code = s.slice(1, -1).replace(/'(?:[^']|'')*'/g, "''");
      for (const m of code.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) used.add(m[1]);
    }
    assert.deepEqual([...used].filter((f) => !DOCUMENTED.has(f)), [], 'functions CreateUiDefinition does not have');
    // "If specified, the default value must be a label present in constraints.allowedValues"
    // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/microsoft-common-dropdown; OptionsGroup alike).
    for (const e of elements().filter((x) => ['Microsoft.Common.DropDown', 'Microsoft.Common.OptionsGroup'].includes(x.type) && x.defaultValue !== undefined)) {
      assert.ok(e.constraints.allowedValues.some((v: any) => v.label === e.defaultValue), `${e.name}: default '${e.defaultValue}' is one of its labels`);
    }
    // A field hidden by `visible` has no value: its output needs coalesce
    // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/create-ui-definition-logical-functions#coalesce).
    for (const e of elements().filter((x) => x.visible !== true)) {
      const out = Object.values<string>(ui.parameters.outputs).find((o) => o.includes(`steps('${e.step}').${e.name})`) || o.includes(`steps('${e.step}').${e.name},`));
      assert.match(out ?? '', new RegExp(`coalesce\\(steps\\('${e.step}'\\)\\.${e.name},`), `${e.name} is hidden at times: its output has a value then`);
    }
  });

  it('its outputs are exactly mainTemplate\'s parameters but the artifacts location, which Azure gives', () => {
    const outputs = Object.keys(ui.parameters.outputs).sort();
    const params = Object.keys(main.parameters).filter((p) => !p.startsWith('_artifactsLocation')).sort();
    assert.deepEqual(outputs, params);
    // Integer parameters get integers: the text boxes are converted.
    for (const [name, p] of Object.entries<any>(main.parameters)) {
      if (p.type === 'int') assert.match(ui.parameters.outputs[name], /^\[int\(/, `${name} is converted to an int`);
    }
  });

  it('tiers and versions are the catalog\'s', () => {
    const byName = Object.fromEntries(elements().map((e) => [e.name, e]));
    assert.deepEqual(byName.tier.constraints.allowedValues.map((v: any) => v.value), TIER_NAMES);
    assert.deepEqual(byName.consulVersion.constraints.allowedValues.map((v: any) => v.value), VERSIONS.map((v) => v.version));
    assert.deepEqual(main.parameters.tier.allowedValues, TIER_NAMES);
    assert.equal(byName.vnetCidr.constraints.validations[0].regex, VNET_CIDR_PATTERN, 'the VNet rule is the code\'s, verbatim');
    // A secondary's token: the API's rule, verbatim; asked only for a secondary, and empty (a cluster on its own) otherwise.
    assert.equal(byName.federationToken.constraints.validations[0].regex, FEDERATION_TOKEN_PATTERN.source);
    assert.equal(byName.federationToken.visible, "[steps('consul').federation]");
    assert.equal(ui.parameters.outputs.federationToken, "[coalesce(steps('consul').federationToken, '')]");
    assert.deepEqual(main.parameters.federationToken, { type: 'string', defaultValue: '', metadata: main.parameters.federationToken.metadata }, 'a plain string: ARM would not show the control plane a secureString parameter');

    // The pin's choices are the API's, in both files; deletion protection is off unless chosen, as on POST /v1/clusters.
    assert.deepEqual(byName.upgradePin.constraints.allowedValues.map((v: any) => v.value), [...UPGRADE_PINS]);
    assert.deepEqual(main.parameters.upgradePin.allowedValues, [...UPGRADE_PINS]);
    assert.equal(main.parameters.upgradePin.defaultValue, 'none');
    assert.deepEqual(byName.deletionProtection.constraints.allowedValues.map((v: any) => v.value), [false, true]);
    assert.equal(byName.deletionProtection.defaultValue, 'Off');
    assert.deepEqual([main.parameters.deletionProtection.type, main.parameters.deletionProtection.defaultValue], ['bool', false]);
    const schema = createClusterBody(catalogOf({ versions: VERSIONS }));
    for (const pin of UPGRADE_PINS) {
      const parsed = schema.parse({ name: 'a', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg', region: 'westeurope', tier: 'standard', upgradePolicy: { pin } });
      assert.equal(parsed.upgradePolicy.pin, pin, `the API takes pin ${pin}`);
    }
  });

  it('numeric fields refuse and accept what the API\'s create command does (every integer -5 to 400 and some text)', () => {
    const byName = Object.fromEntries(elements().map((e) => [e.name, e]));
    const cases: Array<[string, (v: number) => Record<string, unknown>]> = [
      ['snapshotIntervalHours', (v) => ({ snapshotPolicy: { intervalHours: v } })],
      ['snapshotRetention', (v) => ({ snapshotPolicy: { retention: v } })],
      ['upgradeWindowStartHour', (v) => ({ upgradePolicy: { mode: 'automatic', window: { dayOfWeek: 0, startHourUtc: v, hours: 4 } } })],
      ['upgradeWindowHours', (v) => ({ upgradePolicy: { mode: 'automatic', window: { dayOfWeek: 0, startHourUtc: 2, hours: v } } })],
      ['upgradeWindowDay', (v) => ({ upgradePolicy: { mode: 'automatic', window: { dayOfWeek: v, startHourUtc: 2, hours: 4 } } })],
    ];
    const apiAccepts = (extra: Record<string, unknown>) => {
      const schema = createClusterBody(catalogOf({ versions: VERSIONS }));
      return schema.safeParse({ name: 'a', subscriptionId: SUBSCRIPTION, resourceGroup: 'rg', region: 'westeurope', tier: 'standard', ...extra }).success;
    };
    for (const [field, body] of cases) {
      const re = new RegExp(byName[field].constraints.validations[0].regex);
      for (let v = -5; v <= 400; v++) assert.equal(re.test(String(v)), apiAccepts(body(v)), `${field} = ${v}`);
      for (const text of ['', ' 1', '01', '1.0', '1e1', '+1', 'x']) assert.equal(re.test(text), false, `${field} refuses '${text}'`);
    }
  });

  it('the VNet rule accepts exactly the private /24-/28 network addresses', () => {
    const re = new RegExp(VNET_CIDR_PATTERN);
    const isPrivate = (o: number[]) => o[0] === 10 || (o[0] === 172 && o[1] >= 16 && o[1] <= 31) || (o[0] === 192 && o[1] === 168);
    fc.assert(
      fc.property(fc.tuple(fc.constantFrom(10, 172, 192, 11, 8, 0, 255), fc.integer({ min: 0, max: 260 }), fc.integer({ min: 0, max: 260 }), fc.integer({ min: 0, max: 260 }), fc.integer({ min: 14, max: 32 })), ([a, b, c, d, p]) => {
        const o = [a, b, c, d];
        const text = `${o.join('.')}/${p}`;
        const valid = o.every((x) => x <= 255) && isPrivate(o) && p >= 24 && p <= 28 && d % 2 ** (32 - p) === 0;
        assert.equal(re.test(text), valid, text);
        if (valid) assert.equal(subnetPlan(text, 5).serverAddresses.length, 5, `${text} holds a plus cluster`);
      }),
      { seed: SEED, numRuns: 3000, verbose: 1 },
    );
    for (const text of ['172.25.16.0/24', '10.0.0.240/28', '192.168.255.128/25']) assert.ok(re.test(text), text);
    for (const text of ['172.25.16.1/24', '172.32.0.0/24', '010.0.0.0/24', '10.0.0.0/23', '10.0.0.0 /24', '10.0.0.0/24\n']) assert.ok(!re.test(text), text);
  });
});

describe('the portal against the API', () => {
  let s: TestStack;
  const ui = read('infra/managed-app/createUiDefinition.json');
  const element = (name: string) => ui.parameters.steps.flatMap((st: any) => st.elements).find((e: any) => e.name === name);
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('the UI\'s region list is GET /v1/regions', async () => {
    const res = await s.request('GET', '/v1/regions', { token: s.token('7e1a0000-0000-4000-8000-0000000007e1', WRITE) });
    assert.equal(res.status, 200);
    assert.deepEqual(ui.parameters.config.basics.location.allowedValues, res.body.regions.map((r: any) => r.name));
  });

  it('the UI\'s name and datacenter rules accept and refuse the same names as POST /v1/clusters (property, real route, nothing written)', async () => {
    const token = s.token('7e1a0000-0000-4000-8000-0000000007e1', WRITE);
    const nameRule = new RegExp(element('clusterName').constraints.validations[0].regex);
    const dcRule = new RegExp(element('datacenter').constraints.validations[0].regex);
    const chars = fc.constantFrom(...'abcxyz0189-_.AZ ', 'é', '\u{1F600}', '\n');
    const names = fc.oneof(
      fc.string({ unit: chars, minLength: 0, maxLength: 40 }),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,40}$/),
      fc.string({ maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(names, async (name) => {
        // An unknown region: a good name gets past the name check to the region's (validated after it), so nothing is written.
        const res = await s.request('POST', '/v1/clusters', { token, body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg', region: 'nowhere', tier: 'standard' } });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        const apiAccepts = res.body.error.code === 'invalid_region';
        assert.ok(apiAccepts || ['invalid_name', 'missing_name'].includes(res.body.error.code), res.body.error.code);
        assert.equal(nameRule.test(name), apiAccepts, `name ${JSON.stringify(name)}`);
        // The datacenter is checked after the tier and before the version: an unknown version stops a good one.
        const dc = await s.request('POST', '/v1/clusters', {
          token, body: { name: 'a', datacenter: name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg', region: 'westeurope', tier: 'standard', consulVersion: '0.0.0' },
        });
        assert.ok(['invalid_consulVersion', 'invalid_datacenter'].includes(dc.body.error.code), dc.body.error.code);
        assert.equal(dcRule.test(name), dc.body.error.code === 'invalid_consulVersion', `datacenter ${JSON.stringify(name)}`);
      }),
      { seed: SEED, numRuns: 300, verbose: 1 },
    );
    assert.equal(await s.db.cluster.count(), 0);
  });
});

describe('npm run package:managed-app', () => {
  it('builds a zip with createUiDefinition.json and mainTemplate.json at its root, byte for byte (read back by a reader of its own)', () => {
    const zipped = buildManagedAppPackage(ROOT);
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'managed-app-')), 'app.zip');
    fs.writeFileSync(out, zipped);
    const entries = new Map<string, Buffer>();
    const buf = fs.readFileSync(out);
    // The central directory (from the end record) lists every entry; each local header points at its data.
    const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    const count = buf.readUInt16LE(end + 10);
    let at = buf.readUInt32LE(end + 16);
    for (let i = 0; i < count; i++) {
      assert.equal(buf.readUInt32LE(at), 0x02014b50);
      const method = buf.readUInt16LE(at + 10);
      const packedSize = buf.readUInt32LE(at + 20);
      const size = buf.readUInt32LE(at + 24);
      const nameLength = buf.readUInt16LE(at + 28);
      const extra = buf.readUInt16LE(at + 30);
      const comment = buf.readUInt16LE(at + 32);
      const local = buf.readUInt32LE(at + 42);
      const name = buf.subarray(at + 46, at + 46 + nameLength).toString('utf8');
      assert.equal(buf.readUInt32LE(local), 0x04034b50);
      const dataAt = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const packed = buf.subarray(dataAt, dataAt + packedSize);
      const data = method === 8 ? inflateRawSync(packed) : packed;
      assert.equal(data.length, size);
      entries.set(name, data);
      at += 46 + nameLength + extra + comment;
    }
    assert.deepEqual([...entries.keys()], ['createUiDefinition.json', 'mainTemplate.json', 'nestedtemplates/cluster.json']);
    for (const f of PACKAGE_FILES) assert.ok(entries.get(f.name)!.equals(fs.readFileSync(path.join(ROOT, f.source))), f.name);
    assert.ok(buildManagedAppPackage(ROOT).equals(zipped), 'the same files make the same bytes');
  });

  it('the command works on a fresh clone: no node_modules, no build; it installs what it needs, then writes the zip', () => {
    // What a clone holds for this command (its tracked files), and no node_modules, no dist.
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'fresh-clone-'));
    for (const f of ['package.json', 'package-lock.json', 'infra/local/package-managed-app.sh', 'infra/local/lib.sh', ...PACKAGE_FILES.map((p) => p.source), 'infra/managed-app/package.ts', 'infra/managed-app/zip.ts']) {
      fs.mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(clone, f));
    }
    // `npm install` is stubbed to what it makes here from the lock (this checkout's node_modules); PATH has no node_modules/.bin.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'stub-bin-'));
    fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\n[ "$1" = install ] || exit 1\nln -s "${path.join(ROOT, 'node_modules')}" node_modules\n`, { mode: 0o755 });
    const env = { PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: os.tmpdir() };
    const script = (JSON.parse(fs.readFileSync(path.join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['package:managed-app']!;
    const out = path.join(clone, 'out.zip');
    const run = spawnSync('sh', ['-c', `${script} "${out}"`], { cwd: clone, env, encoding: 'utf8', timeout: 240_000 });
    assert.equal(run.status, 0, `${script}: ${run.stdout}\n${run.stderr}`);
    assert.ok(fs.readFileSync(out).equals(buildManagedAppPackage(ROOT)), 'the same zip as the packager makes');
    fs.rmSync(clone, { recursive: true, force: true });
    fs.rmSync(bin, { recursive: true, force: true });
  });
});
