/**
 * What the network provider refuses in a network security group's rules, as ARM's preflight
 * answers it (each rule of Azure's with the public document or quoted answer behind it). Used by
 * arm-preflight.ts for every Microsoft.Network/networkSecurityGroups resource a deployment holds.
 */
import { networkAddress, parseNetwork } from '../../libs/contracts/src';
import type { ArmErrorBody } from './arm-preflight';
import type { EvaluatedResource } from './arm-template';

/** https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-resource-manager-virtual-networking-limits */
export const NSG_RULES_MAX = 1000;
export const NSG_PREFIXES_MAX = 4000;

/** The service tags our templates use, and '*' (https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags). */
const TAGS = new Set(['*', 'virtualnetwork', 'internet', 'azureloadbalancer']);

interface Rule {
  name: string;
  properties: Record<string, unknown>;
}

export function securityGroupRefusals(nsg: EvaluatedResource, ruleId: (nsgName: string, rule: string) => string): ArmErrorBody[] {
  const name = String(nsg.name);
  const rules = (((nsg.properties ?? {}) as Record<string, unknown>).securityRules ?? []) as Rule[];
  const out: ArmErrorBody[] = [];
  // "A security group cannot have more than 1000 security rules." (SecurityRuleCountLimitReached, Azure/azure-rest-api-specs#3003).
  if (rules.length > NSG_RULES_MAX) out.push({ code: 'SecurityRuleCountLimitReached', message: `A security group cannot have more than ${NSG_RULES_MAX} security rules.` });
  const counts = { Source: 0, Destination: 0 };
  const seen = new Map<string, string>();
  for (const r of rules) {
    const p = r.properties;
    // Two rules of one direction may not share a priority: SecurityRuleConflict (Azure/aks-engine#2106, jenkins-infra/azure#439).
    const slot = `${String(p.direction).toLowerCase()}:${String(p.priority)}`;
    const other = seen.get(slot);
    if (other) out.push({ code: 'SecurityRuleConflict', message: `Security rule ${other} conflicts with rule ${r.name}. Rules cannot have the same Priority and Direction. To learn more, see aka.ms/nsgrules.` });
    seen.set(slot, r.name);
    for (const side of ['Source', 'Destination'] as const) {
      const one = p[`${side.toLowerCase()}AddressPrefix`];
      const many = p[`${side.toLowerCase()}AddressPrefixes`];
      const prefixes = (Array.isArray(many) ? many : one === undefined ? [] : [one]).map(String);
      const families = new Set<number>();
      for (const prefix of prefixes) {
        if (TAGS.has(prefix.toLowerCase())) continue;
        counts[side]++;
        const n = parseNetwork(prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`);
        // An address range with host bits set is not a prefix either: "has invalid Address prefix. Value provided: 50.206.209.68/27" (Azure/azure-powershell#4557).
        if (!n || networkAddress(n).bytes.some((b, i) => b !== n.bytes[i])) {
          out.push({ code: 'SecurityRuleInvalidAddressPrefix', message: `Security rule ${ruleId(name, r.name)} has invalid Address prefix. Value provided: ${prefix}` });
          continue;
        }
        families.add(n.version);
      }
      // One rule, one address family: "All IP addresses or prefixes in the resource should belong to the same address family."
      // (ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies, hashicorp/terraform-provider-azurerm#12534; MicrosoftDocs/azure-docs#34567).
      if (families.size > 1) {
        out.push({ code: 'ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies', message: `${side === 'Source' ? 'Inbound' : 'Outbound'} contains IP addresses or prefixes that belong to different address families. All IP addresses or prefixes in the resource should belong to the same address family.` });
      }
    }
  }
  // At most 4,000 source and 4,000 destination prefixes in one group (the limits document; the answer quoted in kubernetes-sigs/cloud-provider-azure#2725).
  for (const side of ['Source', 'Destination'] as const) {
    if (counts[side] > NSG_PREFIXES_MAX) {
      out.push({ code: 'SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached', message: `Network security group ${name} has ${counts[side]} ${side}AddressPrefixes. A security group cannot have more than ${NSG_PREFIXES_MAX} ${side}AddressPrefixes as per the limit MaxSecurityRuleAddressesOrPortsPerSecurityGroup.` });
    }
  }
  return out;
}
