import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { availabilityZones } from '../libs/core/src';
import { PEER_BACK_TEMPLATE, generateClusterPki, generateGossipKey, generateManagementToken, peeringName, subnetPlan, type AzurePlacement, type ClusterSecrets, type ClusterSpec } from '../libs/provisioner/src';
import { admittedFromPeer, peeringState, refusePeering, securityRuleOf, type PeeringRecord, type VnetRecord } from './support/arm-network';
import { ArmPreflight } from './support/arm-preflight';
import { TemplateError, evaluateDeployment } from './support/arm-template';
import { offlineAzureTarget } from './support/azure-offline';

const ROOT = path.resolve(__dirname, '..', '..');
const CLUSTER = JSON.parse(fs.readFileSync(path.join(ROOT, 'infra/arm/cluster.json'), 'utf8')) as Record<string, unknown>;
const SUB = '5ab5ab5a-0000-4000-8000-00000000005b';
const OTHER_SUB = '5ab5ab5a-0000-4000-8000-00000000005c';
const id = (sub: string, group: string, name: string) => `/subscriptions/${sub}/resourceGroups/${group}/providers/Microsoft.Network/virtualNetworks/${name}`;
const vnet = (vid: string, prefixes: string[], peerings: PeeringRecord[] = []): VnetRecord => ({ id: vid, addressPrefixes: prefixes, hasGateway: false, peerings: new Map(peerings.map((p) => [p.name, p])) });
const peering = (name: string, remoteId: string, over: Partial<PeeringRecord> = {}): PeeringRecord => ({ name, remoteId, allowVirtualNetworkAccess: true, allowForwardedTraffic: false, allowGatewayTransit: false, useRemoteGateways: false, ...over });

// What Azure's network provider refuses of a peering, and which traffic an NSG admits over one
// (test/support/arm-network.ts, the local ARM's rules), and what the Azure target deploys for a
// federation's secondary: cluster.json's peerings and the peering back, through Azure's preflight.
describe('VNet peering as Azure decides it', () => {
  const west = id(SUB, 'mrg-west', 'west-vnet');
  const east = id(OTHER_SUB, 'mrg-east', 'east-vnet');
  const north = id(SUB, 'mrg-north', 'north-vnet');
  const all = new Map<string, VnetRecord>();
  const find = (x: string) => all.get(x.toLowerCase());
  const put = (v: VnetRecord) => all.set(v.id.toLowerCase(), v);
  const anyone = () => true;

  it('refuses a remote VNet that does not exist, address spaces that overlap, overlapping a VNet already peered, remote gateways it lacks, and a caller without peer/action there', () => {
    all.clear();
    put(vnet(west, ['172.25.16.0/24']));
    const local = vnet(east, ['172.25.17.0/24']);
    put(local);
    assert.equal(refusePeering(local, peering('p', id(SUB, 'mrg-gone', 'gone-vnet')), find, anyone)?.code, 'InvalidGlobalResourceReference');
    assert.equal(refusePeering(local, peering('p', west), find, () => false)?.code, 'LinkedAuthorizationFailed');
    assert.equal(refusePeering(local, peering('p', west, { useRemoteGateways: true }), find, anyone)?.code, 'RemoteVnetHasNoGateways');
    assert.equal(refusePeering(local, peering('p', west), find, anyone), undefined, 'apart, in another subscription of the tenant, by full resource id: accepted');
    const clash = vnet(id(SUB, 'mrg-clash', 'clash-vnet'), ['172.25.16.0/25']);
    put(clash);
    const refused = refusePeering(clash, peering('p', west), find, anyone);
    assert.equal(refused?.code, 'VnetAddressSpacesOverlap');
    assert.match(refused!.message, /Overlapping address prefixes: 172\.25\.16\.0\/25, 172\.25\.16\.0\/24/);
    // north overlaps east; west already peers with east: north may not peer with west.
    find(west)!.peerings.set('to-east', peering('to-east', east));
    const northVnet = vnet(north, ['172.25.17.128/25']);
    put(northVnet);
    assert.equal(refusePeering(northVnet, peering('p', west), find, anyone)?.code, 'VnetAddressSpaceOverlapsWithAlreadyPeeredVnet');
    // A peering put again (the same remote) is no clash with itself.
    assert.equal(refusePeering(vnet(west, ['172.25.16.0/24']), peering('to-east', east), find, anyone), undefined);
  });

  it('is Initiated until the remote peers back, then Connected; Disconnected once the remote\'s peering is deleted', () => {
    all.clear();
    const a = vnet(west, ['172.25.16.0/24'], [peering('to-east', east)]);
    const b = vnet(east, ['172.25.17.0/24']);
    put(a);
    put(b);
    const ab = { ...a.peerings.get('to-east')!, everConnected: false };
    assert.equal(peeringState(a, ab, find), 'Initiated');
    b.peerings.set('to-west', peering('to-west', west));
    assert.equal(peeringState(a, ab, find), 'Connected');
    b.peerings.delete('to-west');
    assert.equal(peeringState(a, { ...ab, everConnected: true }, find), 'Disconnected');
  });

  it('cluster.json\'s NSG admits a peered member to server RPC (8300/tcp) and WAN gossip (8302/tcp+udp) only; a subnet without an NSG admits everything (AllowVnetInBound)', () => {
    const nsg = evaluateDeployment(CLUSTER, { clusterName: { value: 'west' }, zones: { value: [] }, vnetCidr: { value: '172.25.16.0/24' } }, { subscriptionId: SUB, resourceGroup: 'mrg-west', location: 'westeurope', tenantId: randomUUID(), deploymentName: 'd', zonesOf: availabilityZones })
      .resources.find((r) => r.type === 'Microsoft.Network/networkSecurityGroups')!;
    const rules = ((nsg.properties as { securityRules: unknown[] }).securityRules).map(securityRuleOf);
    assert.deepEqual(admittedFromPeer(rules, ['172.25.17.0/24'], ['172.25.16.0/24']), { tcp: [[8300, 8300], [8302, 8302]], udp: [[8302, 8302]] });
    // From the VNet itself (what the LAN rules are for): gossip LAN and HTTPS too.
    assert.deepEqual(admittedFromPeer(rules, ['172.25.16.0/24'], ['172.25.16.0/24']), { tcp: [[8300, 8302], [8501, 8501]], udp: [[8301, 8302]] });
    assert.deepEqual(admittedFromPeer([], ['172.25.17.0/24'], ['172.25.16.0/24']), { tcp: [[1, 65535]], udp: [[1, 65535]] });
  });

  it('a template copy loop: as many resources as its count (0 is none); a count out of range or copyIndex() outside a loop is an invalid template', () => {
    const scope = { subscriptionId: SUB, resourceGroup: 'g', location: 'westeurope', tenantId: randomUUID(), deploymentName: 'd', zonesOf: availabilityZones };
    const loop = (count: unknown, name = "[concat('r', copyIndex())]") => ({ resources: [{ type: 'Microsoft.Network/publicIPAddresses', apiVersion: '2023-09-01', name, copy: { name: 'ips', count } }] });
    assert.deepEqual(evaluateDeployment(loop(3), {}, scope).resources.map((r) => r.name), ['r0', 'r1', 'r2']);
    assert.deepEqual(evaluateDeployment(loop(0), {}, scope).resources, []);
    assert.throws(() => evaluateDeployment(loop(801), {}, scope), TemplateError);
    assert.throws(() => evaluateDeployment(loop(-1), {}, scope), TemplateError);
    assert.throws(() => evaluateDeployment({ resources: [{ type: 'Microsoft.Network/publicIPAddresses', apiVersion: '2023-09-01', name: "[concat('r', copyIndex())]" }] }, {}, scope), TemplateError);
  });
});

describe('the azure target\'s deployments for a federation\'s secondary', () => {
  let spec: ClusterSpec;
  let secrets: ClusterSecrets;
  const target = offlineAzureTarget(CLUSTER);
  const primaryId = randomUUID();
  const siblingId = randomUUID();
  const placement: AzurePlacement = {
    subscriptionId: SUB, resourceGroup: 'mrg-east', location: 'westeurope', clusterName: 'east', vnetCidr: '172.25.17.0/24', externalEndpoint: false, zones: availabilityZones('westeurope'), addresses: new Map(),
    peers: [
      { clusterId: primaryId, subscriptionId: SUB, resourceGroup: 'mrg-west', clusterName: 'west', vnetCidr: '172.25.16.0/24' },
      { clusterId: siblingId, subscriptionId: OTHER_SUB, resourceGroup: 'mrg-south', clusterName: 'south', vnetCidr: '172.25.18.0/24' },
    ],
  };
  before(async () => {
    const addresses = subnetPlan('172.25.17.0/24', 3).serverAddresses;
    spec = { clusterId: randomUUID(), datacenter: 'east', consulVersion: '1.8.7', servers: addresses.map((address, i) => ({ index: i + 1, address })) };
    secrets = { pki: await generateClusterPki({ datacenter: 'east', serverAddresses: addresses }), gossipKey: generateGossipKey(), managementToken: generateManagementToken() };
  });

  it('cluster.json peers the secondary\'s VNet with every other member by full resource id, with Azure\'s defaults for a plain peering, and passes preflight', () => {
    const parameters = target.parameters(spec, secrets, placement, 'https://kveast.vault.azure.net/');
    const preflight = new ArmPreflight({ zonesOf: availabilityZones });
    preflight.putResourceGroup(SUB, 'mrg-east', 'westeurope', 'Contributor');
    const refused = preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: 'mrg-east', name: 'consul-servers', properties: { mode: 'Incremental', template: CLUSTER, parameters }, running: false });
    assert.equal(refused, null, JSON.stringify(refused?.error));
    const peerings = evaluateDeployment(CLUSTER, parameters, { subscriptionId: SUB, resourceGroup: 'mrg-east', location: 'westeurope', tenantId: randomUUID(), deploymentName: 'd', zonesOf: availabilityZones })
      .resources.filter((r) => r.type === 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings');
    assert.deepEqual(peerings.map((r) => [r.name, (r.properties as { remoteVirtualNetwork: { id: string } }).remoteVirtualNetwork.id]), [
      [`east-vnet/${peeringName(primaryId)}`, id(SUB, 'mrg-west', 'west-vnet')],
      [`east-vnet/${peeringName(siblingId)}`, id(OTHER_SUB, 'mrg-south', 'south-vnet')],
    ]);
    for (const r of peerings) assert.deepEqual(r.properties, { ...(r.properties as object), allowVirtualNetworkAccess: true, allowForwardedTraffic: false, allowGatewayTransit: false, useRemoteGateways: false });
    const alone = target.parameters(spec, secrets, { ...placement, peers: undefined }, 'https://kveast.vault.azure.net/');
    assert.deepEqual(alone.federationPeers.value, [], 'a primary or a cluster on its own peers with nothing');
  });

  it('the peering back, in a member\'s group, passes preflight with the control plane\'s Contributor there', () => {
    const preflight = new ArmPreflight({ zonesOf: availabilityZones });
    preflight.putResourceGroup(SUB, 'mrg-west', 'westeurope', 'Contributor');
    const parameters = { vnetName: { value: 'west-vnet' }, peeringName: { value: peeringName(spec.clusterId) }, remoteVirtualNetworkId: { value: id(SUB, 'mrg-east', 'east-vnet') } };
    assert.equal(preflight.checkDeploymentPut({ subscription: SUB, resourceGroup: 'mrg-west', name: 'consul-peering', properties: { mode: 'Incremental', template: PEER_BACK_TEMPLATE, parameters }, running: false }), null);
    const [back] = evaluateDeployment(PEER_BACK_TEMPLATE, parameters, { subscriptionId: SUB, resourceGroup: 'mrg-west', location: 'westeurope', tenantId: randomUUID(), deploymentName: 'd', zonesOf: availabilityZones }).resources;
    assert.equal(back.name, `west-vnet/federation-${spec.clusterId}`);
  });
});
