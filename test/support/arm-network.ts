/**
 * What Azure's network provider decides about virtual network peerings and
 * network security groups, as pure functions the local ARM (local-arm.ts)
 * applies when a deployment puts a peering and when it wires peered VNets
 * together (local-network.ts). Each rule names the document it follows.
 *
 * - A peering is refused when its remote VNet does not exist
 *   (InvalidGlobalResourceReference), when the two address spaces overlap
 *   (VnetAddressSpacesOverlap), when one overlaps a VNet already peered with
 *   the other (VnetAddressSpaceOverlapsWithAlreadyPeeredVnet), when it would
 *   use the remote's gateways and the remote has none (RemoteVnetHasNoGateways),
 *   and when the caller may not peer with the remote VNet (LinkedAuthorizationFailed).
 * - Its state: Initiated while the remote VNet has no peering back, Connected
 *   once it has, Disconnected once the remote's peering (or the remote VNet) is gone.
 * - Traffic over a Connected peering meets the receiving subnet's NSG: its rules
 *   by priority, then Azure's default rules (the VirtualNetwork tag covering
 *   peered VNets), statefully (replies to an allowed flow pass).
 */
import { networksOverlap } from '../../libs/core/src';
import type { ArmErrorBody } from './arm-preflight';

/** https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering#requirements-and-constraints (aka.ms/VnetPeeringInfo). */
export const PEERING_DOC = 'https://aka.ms/VnetPeeringInfo';

export interface VnetRecord {
  /** Its resource id as ARM spells it. */
  id: string;
  addressPrefixes: string[];
  /** Whether it has a virtual network gateway (never, in this emulation's templates). */
  hasGateway: boolean;
  /** Its peerings by name. */
  peerings: Map<string, PeeringRecord>;
}

export interface PeeringRecord {
  name: string;
  remoteId: string;
  allowVirtualNetworkAccess: boolean;
  allowForwardedTraffic: boolean;
  allowGatewayTransit: boolean;
  useRemoteGateways: boolean;
}

export type PeeringState = 'Initiated' | 'Connected' | 'Disconnected';

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Why the network provider refuses to create or update `peering` of `local`
 * (undefined: it accepts). `vnets` finds a VNet by id (case-insensitive);
 * `mayPeer` says whether the caller holds Microsoft.Network/virtualNetworks/peer/action
 * on the remote VNet's group.
 */
export function refusePeering(local: VnetRecord, peering: PeeringRecord, vnets: (id: string) => VnetRecord | undefined, mayPeer: (remoteId: string) => boolean): ArmErrorBody | undefined {
  const peeringId = `${local.id}/virtualNetworkPeerings/${peering.name}`;
  const remote = vnets(peering.remoteId);
  // The remote VNet must exist: 400 InvalidGlobalResourceReference (the body FreddyAyala/AzureAIServicesLandingZone#2 quotes).
  if (!remote) return { code: 'InvalidGlobalResourceReference', message: `Resource ${peering.remoteId} referenced by resource ${peeringId} was not found. Please make sure that the referenced resource exists.` };
  // Creating a peering needs peer/action on the remote VNet (Network Contributor has it):
  // https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering#permissions; ARM's linked-scope answer, LinkedAuthorizationFailed.
  if (!mayPeer(remote.id)) {
    return { code: 'LinkedAuthorizationFailed', message: `The client has permission to perform action 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write' on scope '${peeringId}', however the current tenant does not have permission to perform action(s) 'Microsoft.Network/virtualNetworks/peer/action' on the linked scope(s) '${remote.id}' or the linked scope(s) are invalid.` };
  }
  // "The virtual networks you peer must have non-overlapping IP address spaces" (requirements and constraints); VnetAddressSpacesOverlap as the provider words it.
  const overlapping = overlaps(local.addressPrefixes, remote.addressPrefixes);
  if (overlapping.length > 0) {
    return { code: 'VnetAddressSpacesOverlap', message: `Cannot create or update peering ${peeringId}. Virtual networks ${local.id} and ${remote.id} cannot be peered because their address spaces overlap. Overlapping address prefixes: ${overlapping.join(', ')}. For more information please refer to ${PEERING_DOC}` };
  }
  // Nor may one overlap a VNet already peered with the other (Azure/ResourceModules#731, microsoft/AzureTRE#1927 quote the answer).
  for (const [first, second] of [[local, remote], [remote, local]] as const) {
    for (const p of second.peerings.values()) {
      const third = vnets(p.remoteId);
      if (!third || same(third.id, first.id)) continue;
      const clash = overlaps(first.addressPrefixes, third.addressPrefixes);
      if (clash.length > 0) {
        return { code: 'VnetAddressSpaceOverlapsWithAlreadyPeeredVnet', message: `Cannot create or update peering ${peeringId}. Virtual networks ${local.id} and ${remote.id} cannot be peered because address space of the first virtual network overlaps with address space of virtual network ${third.id} already peered with the second virtual network. Overlapping address prefixes: ${clash.join(', ')}. For more information please refer to ${PEERING_DOC}` };
      }
    }
  }
  // useRemoteGateways needs a gateway in the remote VNet (the VirtualNetworkPeeringPropertiesFormat of
  // azure-rest-api-specs, specification/network/.../virtualNetwork.json; RemoteVnetHasNoGateways: Azure/terraform-azurerm-lz-vending#247).
  if (peering.useRemoteGateways && !remote.hasGateway) {
    return { code: 'RemoteVnetHasNoGateways', message: `Peering ${peeringId} cannot have UseRemoteGateways flag set to true because remote virtual network ${remote.id} referenced by the peering does not have any gateways.` };
  }
  return undefined;
}

function overlaps(a: string[], b: string[]): string[] {
  return a.flatMap((x) => b.filter((y) => networksOverlap(x, y)).map((y) => (x === y ? x : `${x}, ${y}`)));
}

/**
 * A peering's state: Connected when the remote VNet peers back, Initiated while it does not yet,
 * Disconnected when the remote's peering back was deleted, or the remote VNet with it
 * (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering#delete-a-peering:
 * "The peering status for the peering that exists in the other virtual network is Disconnected").
 */
export function peeringState(local: VnetRecord, peering: PeeringRecord & { everConnected?: boolean }, vnets: (id: string) => VnetRecord | undefined): PeeringState {
  const remote = vnets(peering.remoteId);
  const back = remote && [...remote.peerings.values()].some((p) => same(p.remoteId, local.id));
  if (back) return 'Connected';
  return peering.everConnected ? 'Disconnected' : 'Initiated';
}

/** One NSG security rule, as the template's securityRules hold it (properties flattened). */
export interface SecurityRule {
  name: string;
  priority: number;
  direction: string;
  access: string;
  protocol: string;
  sourceAddressPrefix?: string;
  sourceAddressPrefixes?: string[];
  destinationAddressPrefix?: string;
  destinationAddressPrefixes?: string[];
  destinationPortRange?: string;
  destinationPortRanges?: string[];
}

/**
 * Azure's default inbound rules, after every custom one
 * (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules).
 */
const DEFAULT_INBOUND: SecurityRule[] = [
  { name: 'AllowVnetInBound', priority: 65000, direction: 'Inbound', access: 'Allow', protocol: '*', sourceAddressPrefix: 'VirtualNetwork', destinationAddressPrefix: 'VirtualNetwork', destinationPortRange: '*' },
  { name: 'AllowAzureLoadBalancerInBound', priority: 65001, direction: 'Inbound', access: 'Allow', protocol: '*', sourceAddressPrefix: 'AzureLoadBalancer', destinationAddressPrefix: '*', destinationPortRange: '*' },
  { name: 'DenyAllInBound', priority: 65500, direction: 'Inbound', access: 'Deny', protocol: '*', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '*' },
];

export type Proto = 'tcp' | 'udp';
/** Port ranges, inclusive. */
export type PortRanges = Array<[number, number]>;

/**
 * The ports of each protocol that a subnet with `rules` admits from a peered VNet's address
 * space `from` into its own `to`: the rules in priority order, the first that matches a flow
 * decides (https://learn.microsoft.com/azure/virtual-network/network-security-group-how-it-works).
 * The VirtualNetwork service tag covers the VNet's own space and its peered VNets'
 * (https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags),
 * so `from` (peered) matches it. A rule whose prefix only partly covers `from` is refused here:
 * this emulation decides per VNet, not per address.
 */
export function admittedFromPeer(rules: SecurityRule[], from: string[], to: string[]): Record<Proto, PortRanges> {
  const ordered = [...rules.filter((r) => r.direction.toLowerCase() === 'inbound')].sort((a, b) => a.priority - b.priority).concat(DEFAULT_INBOUND);
  const out: Record<Proto, PortRanges> = { tcp: [], udp: [] };
  for (const proto of ['tcp', 'udp'] as const) {
    const verdict = new Uint8Array(65536); // 0 undecided, 1 allow, 2 deny
    for (const r of ordered) {
      if (!protocolMatches(r.protocol, proto) || !prefixesMatch(r.sourceAddressPrefixes ?? [r.sourceAddressPrefix ?? ''], from, r.name) || !prefixesMatch(r.destinationAddressPrefixes ?? [r.destinationAddressPrefix ?? ''], to, r.name)) continue;
      for (const [lo, hi] of portRanges(r.destinationPortRanges ?? [r.destinationPortRange ?? ''])) {
        for (let p = lo; p <= hi; p++) if (verdict[p] === 0) verdict[p] = r.access.toLowerCase() === 'allow' ? 1 : 2;
      }
    }
    for (let p = 1; p < 65536; p++) {
      if (verdict[p] !== 1) continue;
      const last = out[proto].at(-1);
      if (last && last[1] === p - 1) last[1] = p;
      else out[proto].push([p, p]);
    }
  }
  return out;
}

function protocolMatches(protocol: string, proto: Proto): boolean {
  const p = protocol.toLowerCase();
  return p === '*' || p === 'any' || p === proto;
}

function prefixesMatch(prefixes: string[], space: string[], rule: string): boolean {
  return prefixes.some((prefix) => {
    const p = prefix.toLowerCase();
    if (p === '*' || p === 'any' || p === 'virtualnetwork') return true;
    if (!/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(prefix)) return false; // another service tag (AzureLoadBalancer, Internet): not a peered VNet
    const cidr = prefix.includes('/') ? prefix : `${prefix}/32`;
    const touching = space.filter((s) => networksOverlap(cidr, s));
    if (touching.length === 0) return false;
    if (touching.some((s) => !contains(cidr, s))) throw new Error(`NSG rule ${rule}: ${prefix} covers only part of ${touching.join(', ')}; the local ARM decides per address space`);
    return true;
  });
}

function contains(outer: string, inner: string): boolean {
  const bits = (c: string) => Number(c.split('/')[1]);
  return networksOverlap(outer, inner) && bits(outer) <= bits(inner);
}

function portRanges(ranges: string[]): PortRanges {
  return ranges.map((r) => {
    if (r === '*') return [1, 65535] as [number, number];
    const [lo, hi] = r.split('-').map(Number);
    return [lo, hi ?? lo] as [number, number];
  });
}

/** A security rule as ARM returns it or a template declares it: `{ name, properties: {...} }`. */
export function securityRuleOf(r: unknown): SecurityRule {
  const o = (r ?? {}) as { name?: string; properties?: Record<string, unknown> };
  return { name: String(o.name ?? ''), ...(o.properties ?? {}) } as SecurityRule;
}
