import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { IP_ALLOWLIST_MAX } from '../libs/contracts/src';
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

  describe('the public endpoint: the NSG admits exactly the allowlist, one rule per address family; off, nothing public', () => {
    const SCOPE = { subscriptionId: SUB, resourceGroup: 'mrg-edge', location: 'westeurope', tenantId: randomUUID(), deploymentName: 'consul-servers', zonesOf: availabilityZones };
    const place = (externalEndpoint: boolean, allowlist: { cidr: string }[]) =>
      ({ subscriptionId: SUB, resourceGroup: 'mrg-edge', location: 'westeurope', clusterName: 'edge', vnetCidr: '172.25.16.0/24', externalEndpoint, allowlist, zones: availabilityZones('westeurope'), addresses: new Map() });
    const deploy = (externalEndpoint: boolean, allowlist: { cidr: string }[], template: Record<string, unknown> = CLUSTER) => {
      const parameters = target.parameters(spec, secrets, place(externalEndpoint, allowlist), 'https://kvedge.vault.azure.net/');
      const deployed = new TemplateEvaluator(template, parameters, SCOPE).resources().filter((r) => r.deployed);
      const nsg = deployed.find((r) => r.type === 'Microsoft.Network/networkSecurityGroups')!;
      const rules = (nsg.properties as { securityRules: { name: string; properties: Record<string, unknown> }[] }).securityRules;
      const preflight = new ArmPreflight({ zonesOf: availabilityZones });
      preflight.putResourceGroup(SUB, 'mrg-edge', 'westeurope', DOCUMENTED_ROLE);
      const refused = preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: 'mrg-edge', name: 'consul-servers', properties: { mode: 'Incremental', template, parameters }, running: false });
      return { deployed, rules, refused, publicRules: rules.filter((r) => r.name.startsWith('consul-https-public')) };
    };
    const ALLOWLIST = [{ cidr: '203.0.113.0/24' }, { cidr: '2001:db8::/32' }, { cidr: '198.51.100.7/32' }, { cidr: '2001:db8:1::/48' }];

    it('on: 8501 from the IPv4 networks in one rule and the IPv6 ones in another, nothing from the Internet at large; the public IP and load balancer deployed', () => {
      const { deployed, publicRules, rules, refused } = deploy(true, ALLOWLIST);
      assert.equal(refused, null, JSON.stringify(refused?.error));
      assert.deepEqual(publicRules.map((r) => [r.name, r.properties.sourceAddressPrefixes, r.properties.destinationPortRange, r.properties.access]), [
        ['consul-https-public-ipv4', ['203.0.113.0/24', '198.51.100.7/32'], '8501', 'Allow'],
        ['consul-https-public-ipv6', ['2001:db8::/32', '2001:db8:1::/48'], '8501', 'Allow'],
      ]);
      assert.ok(!rules.some((r) => r.properties.sourceAddressPrefix === 'Internet' || r.properties.sourceAddressPrefix === '*' && r.properties.access === 'Allow'), 'no rule admits the Internet at large');
      assert.deepEqual(deployed.filter((r) => r.type === 'Microsoft.Network/loadBalancers').map((r) => r.name), ['edge-ilb', 'edge-plb']);
      assert.ok(deployed.some((r) => r.type === 'Microsoft.Network/publicIPAddresses' && r.name === 'edge-ip'));
    });

    it('on with only IPv4 networks: one rule; on with none: no rule, nobody is admitted', () => {
      assert.deepEqual(deploy(true, [{ cidr: '203.0.113.0/24' }]).publicRules.map((r) => r.name), ['consul-https-public-ipv4']);
      const none = deploy(true, []);
      assert.equal(none.refused, null);
      assert.deepEqual(none.publicRules, []);
    });

    it('off: no public rule, no public load balancer and no public IP of the endpoint, whatever the allowlist kept', () => {
      const { deployed, publicRules, refused } = deploy(false, ALLOWLIST);
      assert.equal(refused, null);
      assert.deepEqual(publicRules, []);
      assert.deepEqual(deployed.filter((r) => r.type === 'Microsoft.Network/loadBalancers').map((r) => r.name), ['edge-ilb']);
      assert.ok(!deployed.some((r) => r.type === 'Microsoft.Network/publicIPAddresses' && r.name === 'edge-ip'));
    });

    it(`the API's largest allowlist (${IP_ALLOWLIST_MAX} networks) passes preflight`, () => {
      const many = Array.from({ length: IP_ALLOWLIST_MAX }, (_, i) => ({ cidr: i % 2 ? `198.${18 + (i >> 8)}.${i & 255}.0/24` : `2001:db8:${i.toString(16)}::/48` }));
      const { refused, publicRules } = deploy(true, many);
      assert.equal(refused, null, JSON.stringify(refused?.error));
      assert.equal(publicRules.reduce((n, r) => n + (r.properties.sourceAddressPrefixes as string[]).length, 0), IP_ALLOWLIST_MAX);
    });

    const causes = (r: ReturnType<typeof deploy>) => (r.refused?.error.details?.[0]?.details ?? []).map((d) => d.code);
    it('what Azure refuses in NSG rules, the preflight refuses: host bits set, families mixed in one rule, more than 4,000 prefixes, two rules on one priority', () => {
      assert.deepEqual(causes(deploy(true, [{ cidr: '203.0.113.7/24' }])), ['SecurityRuleInvalidAddressPrefix']);
      // What the target never sends, given straight to the template: an IPv6 network among the IPv4 ones.
      const mixedParams = { ...target.parameters(spec, secrets, place(true, []), 'https://kvedge.vault.azure.net/'), publicSourcesIpv4: { value: ['203.0.113.0/24', '2001:db8::/32'] } };
      const preflight = new ArmPreflight({ zonesOf: availabilityZones });
      preflight.putResourceGroup(SUB, 'mrg-edge', 'westeurope', DOCUMENTED_ROLE);
      const mixed = preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: 'mrg-edge', name: 'consul-servers', properties: { mode: 'Incremental', template: CLUSTER, parameters: mixedParams }, running: false });
      assert.deepEqual((mixed?.error.details?.[0]?.details ?? []).map((d) => d.code), ['ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies']);
      const tooMany = Array.from({ length: 4001 }, (_, i) => ({ cidr: `10.${i >> 8}.${i & 255}.0/24` }));
      assert.deepEqual(causes(deploy(true, tooMany)), ['SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached']);
      const clash = JSON.parse(JSON.stringify(CLUSTER).replace('"priority":201', '"priority":200')) as Record<string, unknown>;
      const clashed = deploy(true, ALLOWLIST, clash);
      assert.deepEqual(causes(clashed), ['SecurityRuleConflict']);
      assert.match(clashed.refused!.error.details![0]!.details![0]!.message, /Security rule consul-https-public-ipv4 conflicts with rule consul-https-public-ipv6\. Rules cannot have the same Priority and Direction/);
    });
  });

  it('cluster.json writes no Microsoft.Authorization resource: the control plane\'s Contributor role is enough for every deployment it makes', () => {
    const types = (CLUSTER.resources as Array<{ type: string }>).map((r) => r.type.toLowerCase());
    assert.deepEqual(types.filter((t) => t.startsWith('microsoft.authorization/')), []);
  });
});
