export { DEFAULT_VNET_CIDR, VNET_CIDR, VNET_CIDR_PATTERN, VNET_CIDR_RULE } from '../../contracts/src';

/** An IPv4 network `a.b.c.d/n` as its first address and size (as numbers). */
function range(cidr: string): { start: number; size: number } {
  const [address, prefix] = cidr.split('/');
  const octets = address!.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 network: ${cidr}`);
  const bits = Number(prefix);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`not an IPv4 network: ${cidr}`);
  const size = 2 ** (32 - bits);
  const value = ((octets[0]! * 256 + octets[1]!) * 256 + octets[2]!) * 256 + octets[3]!;
  return { start: value - (value % size), size };
}

/** Whether two IPv4 networks share an address (peered VNets must not: Azure refuses the peering). */
export function networksOverlap(a: string, b: string): boolean {
  const x = range(a);
  const y = range(b);
  return x.start < y.start + y.size && y.start < x.start + x.size;
}
