import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { REGIONS, availabilityZones } from '../libs/core/src';
import { generateClusterPki, generateGossipKey, generateManagementToken, subnetPlan, type ClusterSecrets, type ClusterSpec } from '../libs/provisioner/src';
import { ArmPreflight, DOCUMENTED_ROLE } from './support/arm-preflight';
import { TemplateEvaluator } from './support/arm-template';
import { offlineAzureTarget } from './support/azure-offline';

// What the control plane deploys, put through the local ARM's preflight
// (test/support/arm-preflight.ts) with the role the README documents: the
// Azure target's deployment of infra/arm/cluster.json in every region of the
// catalog, and the managed application's mainTemplate with the cluster.json it
// links. Azure would refuse anything these refuse.
const ROOT = path.resolve(__dirname, '..', '..');
const read = (rel: string) => JSON.parse(fs.readFileSync(path.join(ROOT, rel), 'utf8')) as Record<string, unknown>;
const CLUSTER = read('infra/arm/cluster.json');
const MAIN = read('infra/managed-app/mainTemplate.json');
const SUB = '5ab5ab5a-0000-4000-8000-00000000005a';

describe('the deployments the control plane makes pass Azure\'s preflight', () => {
  let spec: ClusterSpec;
  let secrets: ClusterSecrets;
  const target = offlineAzureTarget(CLUSTER);
  before(async () => {
    const addresses = subnetPlan('172.25.16.0/24', 5).serverAddresses;
    spec = { clusterId: randomUUID(), datacenter: 'dc1', consulVersion: '1.8.7', servers: addresses.map((address, i) => ({ index: i + 1, address })) };
    secrets = { pki: await generateClusterPki({ datacenter: 'dc1', serverAddresses: addresses }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() };
  });

  it(`the Azure target's cluster.json deployment, a plus cluster, in each of the catalog's ${REGIONS.length} regions: accepted with ${DOCUMENTED_ROLE} on the managed resource group`, () => {
    const preflight = new ArmPreflight({ zonesOf: availabilityZones });
    const refusals: string[] = [];
    // Under Owner too: the providers' own checks (SSH key, zones, storage redundancy) whatever the role.
    for (const [region, role] of REGIONS.flatMap((r) => [[r, DOCUMENTED_ROLE], [r, 'Owner']] as const)) {
      const group = `mrg-consul-${region.name}`;
      preflight.putResourceGroup(SUB, group, region.name, role);
      const parameters = target.parameters(spec, secrets, { subscriptionId: SUB, resourceGroup: group, location: region.name, clusterName: 'orders', vnetCidr: '172.25.16.0/24', externalEndpoint: true, zones: availabilityZones(region.name), addresses: new Map() }, 'https://kvorders.vault.azure.net/');
      const refused = preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: group, name: 'consul-servers', properties: { mode: 'Incremental', template: CLUSTER, parameters }, running: false });
      if (refused) refusals.push(`${region.name} (${role}): ${JSON.stringify(refused.error.details?.[0]?.details ?? refused.error.details ?? refused.error)}`);
    }
    assert.deepEqual(refusals, []);
  });

  it('the managed application: mainTemplate as Azure deploys it (linked from the package with a SAS token), then the cluster.json it links with the parameters it passes, in a region with zones and one without', () => {
    for (const location of ['westeurope', 'westus', 'northcentralus', 'ukwest', 'japanwest']) {
      const group = `mrg-shop-${location}`;
      const link = 'https://publisher.blob.core.windows.net/applications/abc/mainTemplate.json';
      const sas = '?sv=2022-11-02&sr=c&sig=c2ln';
      // Azure deploys mainTemplate into the managed resource group itself, with rights to assign roles there.
      const scope = { subscriptionId: SUB, resourceGroup: group, location, tenantId: randomUUID(), deploymentName: 'main', templateLinkUri: link, zonesOf: availabilityZones };
      const main = new TemplateEvaluator(MAIN, {
        _artifactsLocationSasToken: { value: sas }, location: { value: location }, clusterName: { value: 'shop' }, datacenter: { value: 'dc1' }, tier: { value: 'standard' }, consulVersion: { value: '1.8.7' },
      }, scope);
      const nested = main.resources().find((r) => r.type === 'Microsoft.Resources/deployments')!;
      const props = nested.properties as { templateLink: { uri: string }; parameters: Record<string, { value: unknown }> };
      assert.equal(props.templateLink.uri, `https://publisher.blob.core.windows.net/applications/abc/nestedtemplates/cluster.json${sas}`, 'the package\'s cluster.json, read with the SAS token');
      const preflight = new ArmPreflight({ zonesOf: availabilityZones });
      preflight.putResourceGroup(SUB, group, location, 'Owner');
      const refused = preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: group, name: 'cluster-shop', properties: { mode: 'Incremental', template: CLUSTER, parameters: props.parameters }, running: false });
      assert.equal(refused, null, `${location}: ${JSON.stringify(refused?.error)}`);
      assert.deepEqual(props.parameters.zones.value, availabilityZones(location), `${location}: ARM's pickZones, the catalog's zones`);
      // The servers' Key Vault role is assigned here, on the vault cluster.json makes.
      const assignment = main.resources().find((r) => r.type === 'Microsoft.Authorization/roleAssignments');
      assert.ok(assignment, 'mainTemplate assigns the servers\' identity its Key Vault role');
      const vaultOf = new TemplateEvaluator(CLUSTER, props.parameters, scope).evaluate("[resourceId('Microsoft.KeyVault/vaults', variables('keyVaultName'))]");
      assert.equal(assignment.scope, vaultOf, 'on the vault cluster.json makes');
    }
  });

  it('cluster.json writes no Microsoft.Authorization resource: the control plane\'s Contributor role is enough for every deployment it makes', () => {
    const types = (CLUSTER.resources as Array<{ type: string }>).map((r) => r.type.toLowerCase());
    assert.deepEqual(types.filter((t) => t.startsWith('microsoft.authorization/')), []);
  });
});
