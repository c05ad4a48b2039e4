import { z } from 'zod';
import { because } from './route';

/**
 * The public endpoint's IP allowlist: the source networks (IPv4 and IPv6 CIDRs, each with a
 * description) allowed to reach a cluster's public HTTPS API and UI. One rule for the API, the
 * console and the CLI; no Node module (the console bundles this), so the address arithmetic is here.
 *
 * At most 200 entries: twice the 100 the product must hold (the one we follow capped it at 3), and
 * far inside what Azure's network security group takes (4,000 source prefixes per group, 1,000
 * rules:
 * https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-resource-manager-virtual-networking-limits),
 * so an allowlist is always one IPv4 and one IPv6 rule. A description is at most 140 characters,
 * the length Azure allows a security rule's description (the NSG rule's own description names the
 * cluster; these stay ours).
 */
export const IP_ALLOWLIST_MAX = 200;
export const IP_ALLOWLIST_DESCRIPTION_MAX = 140;

export interface AllowlistEntry {
  cidr: string;
  description: string;
}

/** A parsed network: its family, its address as bytes, its prefix length. */
export interface Network {
  version: 4 | 6;
  bytes: number[];
  prefix: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;

function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (DECIMAL_OCTET.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

function parseIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const pieces = s.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (i === pieces.length - 1 && p.includes('.')) {
        // An IPv4 tail (::ffff:192.0.2.1) is two groups.
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** A CIDR `address/prefix`, IPv4 or IPv6; null when it is not one. */
export function parseNetwork(text: string): Network | null {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(text);
  if (!m) return null;
  const prefix = Number(m[2]);
  const v4 = parseIpv4(m[1]!);
  if (v4) return prefix <= 32 ? { version: 4, bytes: v4, prefix } : null;
  const v6 = parseIpv6(m[1]!);
  return v6 && prefix <= 128 ? { version: 6, bytes: v6, prefix } : null;
}

/** The address of a network with its host bits cleared. */
export function networkAddress(n: Network): Network {
  const bytes = n.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, n.prefix - i * 8));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  return { ...n, bytes };
}

/** RFC 5952 text of an IPv6 address (lower case, the longest run of two or more zero groups as ::), dotted quad for IPv4. */
export function addressText(n: Pick<Network, 'version' | 'bytes'>): string {
  if (n.version === 4) return n.bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (n.bytes[2 * i]! << 8) | n.bytes[2 * i + 1]!);
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

export const networkText = (n: Network): string => `${addressText(n)}/${n.prefix}`;

/** Whether `address` (bytes of the same family) lies inside network `n`. */
export function networkContains(n: Network, address: number[]): boolean {
  if (address.length !== n.bytes.length) return false;
  for (let i = 0; i < n.bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, n.prefix - i * 8));
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((address[i]! & mask) !== (n.bytes[i]! & mask)) return false;
  }
  return true;
}

/** Any source at all: only with `allowAnyAddress: true`. */
const isAnyAddress = (n: Network) => n.prefix === 0;

const CIDR_RULE = 'an IPv4 or IPv6 network in CIDR notation, e.g. 203.0.113.0/24 or 2001:db8::/32 (one address: 203.0.113.7/32)';
/** Refusals a well-formed request gets for what it asks (the API's 422): status rides on the issue. */
const unprocessable = (code: string, message: string, extra: Record<string, unknown> = {}) => because(code, message, { status: 422, ...extra });

export const ALLOWLIST_ENTRY = z.strictObject({
  cidr: z.string({ error: (i) => (i.input === undefined ? `cidr is required: ${CIDR_RULE}` : `cidr must be ${CIDR_RULE}`) }).max(64, `cidr must be ${CIDR_RULE}`)
    .meta({ description: 'IPv4 or IPv6 network in CIDR notation, written as its network address (host bits zero); IPv6 is kept in RFC 5952 form', example: '203.0.113.0/24' }),
  description: z.string({ error: 'description must be a string' }).max(IP_ALLOWLIST_DESCRIPTION_MAX, `description is at most ${IP_ALLOWLIST_DESCRIPTION_MAX} characters`)
    .default('').meta({ description: `Who or what this network is, up to ${IP_ALLOWLIST_DESCRIPTION_MAX} characters`, example: 'office VPN' }),
}, { error: (i) => (i.code === 'invalid_type' ? 'each ipAllowlist entry must be an object { cidr, description }' : undefined) })
  .meta({ id: 'IpAllowlistEntry' });

/** The allowlist as sent (its entries' shapes); the body checks the networks with checkAllowlist, which needs allowAnyAddress beside it. */
export const IP_ALLOWLIST = z.array(ALLOWLIST_ENTRY, { error: `ipAllowlist must be an array of { cidr, description } (at most ${IP_ALLOWLIST_MAX})` })
  .max(IP_ALLOWLIST_MAX, `ipAllowlist holds at most ${IP_ALLOWLIST_MAX} entries`)
  .meta({ description: `Source networks allowed to reach the public endpoint (at most ${IP_ALLOWLIST_MAX}; IPv4 and IPv6; a cluster without a public endpoint keeps it for when the endpoint is turned on). Empty: nobody. Each CIDR is written as its network address (host bits set: 422 cidr_host_bits_set naming the network), once (422 duplicate_cidr), and 0.0.0.0/0 or ::/0 only with allowAnyAddress: true (422 any_address_not_confirmed)` });

export const ALLOW_ANY_ADDRESS = z.boolean({ error: 'allowAnyAddress must be true or false' })
  .meta({ description: 'Confirms an ipAllowlist entry of 0.0.0.0/0 or ::/0 (every address on the internet); without it such an entry is refused' });

/**
 * The allowlist's networks checked: each CIDR well formed (400), written as its network address
 * (422 naming the one to send), no network twice (422), and any-source networks (0.0.0.0/0, ::/0)
 * only when the caller confirmed them with `allowAnyAddress: true` (422). Each refusal names its
 * entry (`ipAllowlist.<i>.cidr`). Answers the list with IPv6 in RFC 5952 form.
 */
export function checkAllowlist(entries: readonly { cidr: string; description: string }[], allowAnyAddress: boolean, ctx: z.RefinementCtx): AllowlistEntry[] {
  const seen = new Map<string, number>();
  const out: AllowlistEntry[] = [];
  entries.forEach((e, i) => {
    const path = ['ipAllowlist', i, 'cidr'];
    const field = `ipAllowlist.${i}.cidr`;
    const n = parseNetwork(e.cidr.trim());
    if (!n) {
      ctx.addIssue({ code: 'custom', path, message: `${field} '${e.cidr}' is not ${CIDR_RULE}`, params: { code: 'invalid_ipAllowlist_cidr' } });
      return;
    }
    const network = networkAddress(n);
    const canonical = networkText(network);
    if (network.bytes.some((b, k) => b !== n.bytes[k])) {
      ctx.addIssue({ code: 'custom', path, ...unprocessable('cidr_host_bits_set', `${field} '${e.cidr}' has host bits set; the network is ${canonical}: send that`, { network: canonical }) });
      return;
    }
    if (isAnyAddress(n) && !allowAnyAddress) {
      ctx.addIssue({ code: 'custom', path, ...unprocessable('any_address_not_confirmed', `${field} ${canonical} lets every address on the internet in; send "allowAnyAddress": true with it if that is what you mean`) });
      return;
    }
    const earlier = seen.get(canonical);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', path, ...unprocessable('duplicate_cidr', `${field} ${canonical} is already entry ${earlier} of ipAllowlist; list each network once`, { duplicateOf: earlier }) });
      return;
    }
    seen.set(canonical, i);
    out.push({ cidr: canonical, description: e.description });
  });
  return out;
}

/** Whether a source address (text, as a socket reports it) is inside one of the allowlist's networks. */
export function allowlistAdmits(networks: readonly Network[], source: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(source);
  const v4 = parseIpv4(mapped ? mapped[1]! : source);
  const address = v4 ?? parseIpv6(source);
  if (!address) return false;
  return networks.some((n) => networkContains(n, address));
}

/** The allowlist's networks, parsed (entries that are not networks are left out: the contract refused them). */
export const allowlistNetworks = (entries: readonly { cidr: string }[]): Network[] =>
  entries.map((e) => parseNetwork(e.cidr)).filter((n): n is Network => n !== null);
