import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import { ResourceManagementClient } from '@azure/arm-resources';
import { startLocalArm, type LocalArm } from './support/local-arm';
import { sshPublicKey } from './support/ssh-key';

// The local ARM's preflight (test/support/arm-preflight.ts) through the real
// @azure/arm-resources client: each rule answers the deployment PUT at once,
// with ARM's status and nested error body, and leaves no deployment behind.
const SUB = 'a1b2c3d4-0000-4000-8000-0000000000f1';
const OTHER_SUB = 'a1b2c3d4-0000-4000-8000-0000000000f2';
const schema = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#';
const template = (resources: unknown[], parameters: Record<string, unknown> = {}) => ({ $schema: schema, contentVersion: '1.0.0.0', parameters, resources });

interface ArmError { code: string; message: string; target?: string; details?: ArmError[] }
/** Every code in an error and its details, depth first. */
const codes = (e: ArmError): string[] => [e.code, ...(e.details ?? []).flatMap(codes)];
const depth = (e: ArmError): number => 1 + Math.max(0, ...(e.details ?? []).map(depth));

const storage = (name: string, sku = 'Standard_LRS', location = 'westeurope') => ({ type: 'Microsoft.Storage/storageAccounts', apiVersion: '2023-01-01', name, location, sku: { name: sku }, kind: 'StorageV2', properties: {} });
const vault = (name: string) => ({ type: 'Microsoft.KeyVault/vaults', apiVersion: '2023-07-01', name, location: 'westeurope', properties: { tenantId: randomUUID(), sku: { family: 'A', name: 'standard' } } });
const scaleSet = (o: { keyData?: string; keys?: unknown[]; customData?: string; zones?: string[]; location?: string } = {}) => ({
  type: 'Microsoft.Compute/virtualMachineScaleSets', apiVersion: '2023-09-01', name: 'servers', location: o.location ?? 'westeurope', zones: o.zones ?? [],
  sku: { name: 'Standard_D2s_v5', capacity: 1 },
  properties: {
    virtualMachineProfile: {
      osProfile: {
        computerNamePrefix: 'srv', adminUsername: 'consulops', customData: o.customData ?? Buffer.from('#cloud-config\n').toString('base64'),
        linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: o.keys ?? [{ path: '/home/consulops/.ssh/authorized_keys', keyData: o.keyData ?? sshPublicKey() }] } },
      },
    },
  },
});

describe('the local ARM refuses at deployment PUT what Azure refuses', { timeout: 120_000 }, () => {
  let arm: LocalArm;
  let client: ResourceManagementClient;
  let other: ResourceManagementClient;

  before(async () => {
    arm = await startLocalArm({ consulPackage: () => '/nonexistent/consul.deb', retryAfterSeconds: 0 });
    const credential = new ClientSecretCredential(arm.tenantId, arm.clientId, arm.clientSecret, { authorityHost: arm.url, disableInstanceDiscovery: true });
    const options = { endpoint: arm.url, credentialScopes: [`${arm.url}/.default`] };
    client = new ResourceManagementClient(credential, SUB, options);
    other = new ResourceManagementClient(credential, OTHER_SUB, options);
  });
  after(async () => {
    await arm?.close();
  });

  /** The PUT's answer: its status and ARM's error, or 'accepted'. */
  async function put(group: string, resources: unknown[], o: { name?: string; parameters?: Record<string, { value: unknown }>; declared?: Record<string, unknown>; via?: ResourceManagementClient } = {}) {
    const name = o.name ?? `d-${randomBytes(4).toString('hex')}`;
    try {
      await (o.via ?? client).deployments.beginCreateOrUpdate(group, name, { properties: { mode: 'Incremental', template: template(resources, o.declared), parameters: o.parameters ?? {} } }, { updateIntervalInMs: 50 });
      return { name, status: 201, error: undefined };
    } catch (e) {
      const r = e as { statusCode?: number; response?: { bodyAsText?: string } };
      const body = JSON.parse(r.response?.bodyAsText ?? '{}') as { error?: ArmError };
      return { name, status: r.statusCode ?? 0, error: body.error };
    }
  }
  const group = (role?: 'Owner' | 'Contributor' | 'Reader' | 'User Access Administrator', location = 'westeurope') => {
    const name = `rg-${randomBytes(4).toString('hex')}`;
    arm.preflight.putResourceGroup(SUB, name, location, role ?? 'Contributor');
    return name;
  };
  const noDeployment = async (rg: string, name: string) => {
    const found = await client.deployments.get(rg, name).then(() => true, (e: { statusCode?: number }) => (e.statusCode === 404 ? false : Promise.reject(e)));
    assert.equal(found, false, 'a refused PUT leaves no deployment (preflight errors are not in the deployment history)');
  };

  it('a group that does not exist: 404 ResourceGroupNotFound', async () => {
    const r = await put('rg-nowhere', [storage(`st${randomBytes(6).toString('hex')}`)]);
    assert.deepEqual([r.status, r.error?.code], [404, 'ResourceGroupNotFound']);
    assert.equal(r.error?.message, "Resource group 'rg-nowhere' could not be found.");
  });

  it('a group being deleted: 409 ResourceGroupBeingDeleted', async () => {
    const rg = group();
    arm.preflight.beginDeleteResourceGroup(SUB, rg);
    const r = await put(rg, []);
    assert.deepEqual([r.status, r.error?.code], [409, 'ResourceGroupBeingDeleted']);
    assert.match(r.error!.message, /is in deprovisioning state and cannot perform this operation/);
    arm.preflight.removeResourceGroup(SUB, rg);
    assert.equal((await put(rg, [])).status, 404, 'then gone');
  });

  it('a principal with no write role on the group (Reader, or none): 403 AuthorizationFailed on deployments/write', async () => {
    for (const role of ['Reader', null] as const) {
      const rg = `rg-${randomBytes(4).toString('hex')}`;
      arm.preflight.putResourceGroup(SUB, rg, 'westeurope', role);
      const r = await put(rg, []);
      assert.deepEqual([r.status, r.error?.code], [403, 'AuthorizationFailed'], String(role));
      assert.match(r.error!.message, new RegExp(`The client '${arm.clientId}' with object id '[0-9a-f-]+' does not have authorization to perform action 'Microsoft.Resources/deployments/write' over scope '/subscriptions/${SUB}/resourcegroups/${rg}/providers/Microsoft.Resources/deployments/${r.name}'`));
      await noDeployment(rg, r.name);
    }
  });

  it('a template writing Microsoft.Authorization/*: refused for Contributor (400 InvalidTemplateDeployment, AuthorizationFailed inside), accepted for Owner (User Access Administrator alone may not deploy at all: 403)', async () => {
    const assignment = {
      type: 'Microsoft.Authorization/roleAssignments', apiVersion: '2022-04-01', name: "[guid(resourceGroup().id, 'reader')]",
      properties: { roleDefinitionId: "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]", principalId: randomUUID() },
    };
    const rg = group('Contributor');
    const r = await put(rg, [assignment]);
    assert.deepEqual([r.status, r.error?.code, r.error?.details?.[0]?.code], [400, 'InvalidTemplateDeployment', 'AuthorizationFailed']);
    assert.match(r.error!.message, /^The template deployment failed with error: 'Authorization failed for template resource '[0-9a-f-]{36}' of type 'Microsoft.Authorization\/roleAssignments'\. The client '.*' does not have permission to perform action 'Microsoft.Authorization\/roleAssignments\/write' at scope/);
    await noDeployment(rg, r.name);
    // A resource whose condition is false is not deployed, so not authorized either.
    assert.equal((await put(rg, [{ ...assignment, condition: false }])).status, 201);
    for (const role of ['Owner', 'User Access Administrator'] as const) assert.equal((await put(group(role), [assignment])).status, role === 'Owner' ? 201 : 403, role);
  });

  it('a PUT over a running deployment of the same name: 409 DeploymentActive; once it ended, accepted', async () => {
    const rg = group();
    arm.holdDeployments();
    try {
      const name = `d-${randomBytes(4).toString('hex')}`;
      // (Complete mode and no resources: the one empty template the local ARM realises.)
      const first = client.deployments.beginCreateOrUpdate(rg, name, { properties: { mode: 'Complete', template: template([]) } }, { updateIntervalInMs: 50 });
      await first;
      const r = await put(rg, [], { name });
      assert.deepEqual([r.status, r.error?.code], [409, 'DeploymentActive']);
      assert.match(r.error!.message, new RegExp(`^Unable to edit or replace deployment '${name}': previous deployment from '.+' is still active \\(expiration time is '.+'\\)\\. Please see https://aka.ms/arm-deploy for usage details\\.$`));
      arm.releaseDeployments();
      await (await first).pollUntilDone();
      const again = await client.deployments.beginCreateOrUpdate(rg, name, { properties: { mode: 'Complete', template: template([]) } }, { updateIntervalInMs: 50 });
      assert.equal((await again.pollUntilDone()).properties?.provisioningState, 'Succeeded');
    } finally {
      arm.releaseDeployments();
    }
  });

  it('the template and its parameters are checked first: 400 InvalidTemplate (a parameter missing, unknown, or not allowed)', async () => {
    const rg = group();
    const declared = { tier: { type: 'string', allowedValues: ['development', 'standard'] }, name: { type: 'string', maxLength: 5 } };
    const cases: Array<[Record<string, { value: unknown }>, RegExp]> = [
      [{ tier: { value: 'standard' } }, /The value for the template parameter 'name' is not provided/],
      [{ tier: { value: 'standard' }, name: { value: 'a' }, zones: { value: [] } }, /The template parameters 'zones' in the parameters file are not valid; they are not present in the original template/],
      [{ tier: { value: 'plus' }, name: { value: 'a' } }, /The provided value 'plus' for the template parameter 'tier' is not valid\. The parameter value is not part of the allowed value\(s\): 'development,standard'/],
      [{ tier: { value: 'standard' }, name: { value: 'abcdef' } }, /Length of the value should be less than or equal to '5'/],
    ];
    for (const [parameters, message] of cases) {
      const r = await put(rg, [], { declared, parameters });
      assert.deepEqual([r.status, r.error?.code], [400, 'InvalidTemplate'], JSON.stringify(parameters));
      assert.match(r.error!.message, message);
    }
  });

  it('a Linux scale set with password login disabled: an empty or malformed SSH key, or none, is refused (nested three deep); a real key is accepted', async () => {
    const rg = group();
    for (const [set, target, message] of [
      [scaleSet({ keyData: '' }), 'linuxConfiguration.ssh.publicKeys.keyData', 'The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.'],
      [scaleSet({ keyData: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7' }), 'linuxConfiguration.ssh.publicKeys.keyData', 'The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.'],
      [scaleSet({ keys: [] }), 'linuxConfiguration', 'Authentication using either SSH or by user name and password must be enabled in Linux profile.'],
    ] as const) {
      const r = await put(rg, [set]);
      assert.deepEqual([r.status, codes(r.error!)], [400, ['InvalidTemplateDeployment', 'PreflightValidationCheckFailed', 'InvalidParameter']]);
      assert.equal(depth(r.error!), 3);
      assert.match(r.error!.message, /^The template deployment '.+' is not valid according to the validation procedure\. The tracking id is '[0-9a-f-]{36}'\. See inner errors for details\.$/);
      assert.deepEqual([r.error!.details![0].details![0].target, r.error!.details![0].details![0].message], [target, message]);
      await noDeployment(rg, r.name);
    }
    assert.equal((await put(rg, [scaleSet()])).status, 201);
  });

  it('customData: base64 of at most 87380 characters (65535 bytes)', async () => {
    const rg = group();
    const r = await put(rg, [scaleSet({ customData: Buffer.alloc(65536).toString('base64') })]);
    assert.deepEqual([r.status, codes(r.error!).at(-1), r.error!.details![0].details![0].target], [400, 'InvalidParameter', 'customData']);
    assert.equal(r.error!.details![0].details![0].message, 'Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.');
    assert.equal((await put(rg, [scaleSet({ customData: Buffer.alloc(65535).toString('base64') })])).status, 201);
  });

  it('availability zones only in regions that have them; zone-redundant storage likewise', async () => {
    const rg = group('Contributor', 'westus');
    const ip = { type: 'Microsoft.Network/publicIPAddresses', apiVersion: '2023-09-01', name: 'nat-ip', location: 'westus', zones: ['1', '2', '3'], sku: { name: 'Standard' }, properties: {} };
    const r = await put(rg, [scaleSet({ zones: ['1', '2', '3'], location: 'westus' }), ip, storage(`st${randomBytes(6).toString('hex')}`, 'Standard_ZRS', 'westus')]);
    assert.equal(r.status, 400);
    const inner = r.error!.details![0].details!;
    assert.deepEqual(inner.map((x) => x.code), ['ResourceTypeNotSupportAvailabilityZones', 'LocationNotSupportAvailabilityZones', 'AccountTypeNotSupportedInLocation']);
    assert.equal(inner[0].message, "The resource type 'virtualMachineScaleSets' does not support availability zones at location 'westus' and api-version '2023-09-01'.");
    assert.equal(inner[1].message, "The resource 'Microsoft.Network/publicIPAddresses/nat-ip' does not support availability zones at location 'westus'.");
    assert.equal((await put(rg, [scaleSet({ location: 'westus' }), { ...ip, zones: [] }, storage(`st${randomBytes(6).toString('hex')}`, 'Standard_LRS', 'westus')])).status, 201, 'without zones');
    const zoned = group('Contributor', 'westeurope');
    assert.equal((await put(zoned, [scaleSet({ zones: ['1', '2', '3'] }), { ...ip, location: 'westeurope' }, storage(`st${randomBytes(6).toString('hex')}`, 'Standard_ZRS')])).status, 201, 'westeurope has zones');
  });

  it('a Private Link service takes its NAT address from a subnet whose privateLinkServiceNetworkPolicies is Disabled, else 400 PrivateLinkServiceCannotBeCreatedInSubnetThatHasNetworkPoliciesEnabled', async () => {
    const subnetId = "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'servers')]";
    const network = (policies?: string) => ({
      type: 'Microsoft.Network/virtualNetworks', apiVersion: '2023-09-01', name: 'vnet', location: 'westeurope',
      properties: { addressSpace: { addressPrefixes: ['172.25.16.0/24'] }, subnets: [{ name: 'servers', properties: { addressPrefix: '172.25.16.0/24', ...(policies ? { privateLinkServiceNetworkPolicies: policies } : {}) } }] },
    });
    const pls = {
      type: 'Microsoft.Network/privateLinkServices', apiVersion: '2023-09-01', name: 'management', location: 'westeurope',
      properties: {
        loadBalancerFrontendIpConfigurations: [{ id: "[resourceId('Microsoft.Network/loadBalancers/frontendIPConfigurations', 'ilb', 'internal')]" }],
        ipConfigurations: [{ name: 'nat', properties: { privateIPAllocationMethod: 'Dynamic', subnet: { id: subnetId } } }],
      },
    };
    for (const policies of [undefined, 'Enabled']) {
      const refused = await put(group(), [network(policies), pls]);
      assert.equal(refused.status, 400, `policies ${policies ?? '(default)'}`);
      assert.deepEqual(codes(refused.error!), ['InvalidTemplateDeployment', 'PreflightValidationCheckFailed', 'PrivateLinkServiceCannotBeCreatedInSubnetThatHasNetworkPoliciesEnabled']);
      assert.match(refused.error!.details![0].details![0].message, /^Private link service management cannot be created in a subnet \/subscriptions\/.+\/subnets\/servers since it has private link service network policies enabled\.$/);
    }
    assert.equal((await put(group(), [network('Disabled'), pls])).status, 201);
  });

  it('storage account and key vault names: their character rules; global uniqueness across groups and subscriptions', async () => {
    const rg = group();
    const bad = await put(rg, [storage('Not-Valid'), vault('1starts-with-digit'), vault('two--hyphens')]);
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.error!.details![0].details!.map((x) => x.code), ['AccountNameInvalid', 'VaultNameNotValid', 'VaultNameNotValid']);
    assert.equal(bad.error!.details![0].details![0].message, 'Not-Valid is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.');
    const long = await put(rg, [storage('a'.repeat(25)), vault(`kv${'a'.repeat(23)}`)]);
    assert.deepEqual(long.error!.details![0].details!.map((x) => x.code), ['AccountNameInvalid', 'VaultNameNotValid']);

    const st = `st${randomBytes(6).toString('hex')}`;
    const kv = `kv${randomBytes(6).toString('hex')}`;
    assert.equal((await put(rg, [storage(st), vault(kv)])).status, 201);
    assert.equal((await put(rg, [storage(st), vault(kv)])).status, 201, 'the same group again: the same resources');
    const elsewhere = await put(group(), [storage(st), vault(kv)]);
    assert.deepEqual(elsewhere.error!.details![0].details!.map((x) => x.code), ['StorageAccountInAnotherResourceGroup', 'VaultAlreadyExists']);
    arm.preflight.putResourceGroup(OTHER_SUB, 'rg-other');
    const taken = await put('rg-other', [storage(st), vault(kv)], { via: other });
    assert.deepEqual(taken.error!.details![0].details!.map((x) => [x.code, x.message.slice(0, 60)]), [
      ['StorageAccountAlreadyTaken', `The storage account named ${st} is already taken.`.slice(0, 60)],
      ['VaultAlreadyExists', `The vault name '${kv}' is already in use. Vault names are globally unique`.slice(0, 60)],
    ]);
    // A Complete-mode deployment of nothing empties the group: the names are free again.
    await (await client.deployments.beginCreateOrUpdate(rg, 'empty', { properties: { mode: 'Complete', template: template([]) } }, { updateIntervalInMs: 50 })).pollUntilDone();
    assert.equal((await put('rg-other', [storage(st), vault(kv)], { via: other })).status, 201);
  });
});
