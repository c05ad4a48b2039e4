/**
 * The local ARM's networks: each VNet a Linux network namespace of its own
 * (iproute2's `ip netns`), its whole address space local inside it, so that
 * the instances of a cluster reach each other at their private addresses and
 * nothing else does. Clusters' address spaces may overlap each other's and the
 * control plane's, as customers' do in Azure: no namespace routes to another,
 * and the host (the control plane's network) has no route into any.
 *
 * Into a VNet there is one door, its Private Link service (the local ARM
 * connects a private endpoint's ports through `connectInto`); out of it one
 * path, to the local ARM server (the Consul package, the instances' systemctl
 * shim). Both cross in a bridge process inside the namespace (vnet-bridge.ts)
 * through unix sockets.
 *
 * Two VNets whose peerings are Connected are wired together (`link`): a veth
 * pair between their namespaces, each one's address space routed over it
 * (static neighbours: no ARP), and in each namespace policy-routing rules on
 * that link that deliver only what the receiving subnet's NSG admits from the
 * peer (arm-network.ts `admittedFromPeer`) and drop the rest, as an NSG drops.
 *
 *   const net = await LocalNetwork.start({ dir, armPort: () => port, onProcess, imds });
 *   const v = await net.vnet('rg/vnet', '172.25.16.0/24'); // v.netns: the path to enter
 *   net.connectInto('rg/vnet', '172.25.16.5', 8501, '172.25.16.10') // a socket, as from the NAT address
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const PREFIX = 'lvnet-';

export interface Vnet {
  /** The network namespace's name (`ip netns`) and path (for `nsenter --net=`). */
  name: string;
  netns: string;
  cidr: string;
}

interface Entry extends Vnet {
  bridge: ChildProcess;
  ingress: string;
  imds: http.Server;
  imdsPath: string;
}

/** The instance metadata service of one VNet (its scale set's identity hands out tokens). */
export type ImdsHandler = (vnetKey: string, req: http.IncomingMessage, res: http.ServerResponse) => void;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/**
 * Deletes the namespaces of local ARM servers whose process is gone (a run
 * cut off); their processes were ended by the local ARM's own sweep.
 */
export function sweepStrayNetworks(): void {
  let names: string[];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const owner = Number(name.slice(PREFIX.length).split('-')[0]);
    if (owner && owner !== process.pid && fs.existsSync(`/proc/${owner}`)) continue;
    try {
      ip(['netns', 'del', name]);
    } catch {
      // gone meanwhile
    }
  }
}

/** What a VNet accepts over one peering: destination ports its NSG admits from the peer, and source ports of replies to the flows it opened. */
export interface PeerAdmission {
  dports: Record<'tcp' | 'udp', Array<[number, number]>>;
  sports: Record<'tcp' | 'udp', Array<[number, number]>>;
}

interface Link {
  a: string;
  b: string;
  ifA: string;
  ifB: string;
  /** `ip rule` arguments added in each namespace (to delete them again). */
  rules: Array<{ ns: string; args: string[] }>;
}

/** Policy-routing priorities: a link's admissions, then its drop, then the local table (moved from 0 so that these come first). */
const ADMIT_PREF = '500';
const DROP_PREF = '900';
const LOCAL_PREF = '1000';
/** The next hop on a link: a link-local address both ends know by a static neighbour entry. */
const LINK_HOP = '169.254.0.1';

export class LocalNetwork {
  private readonly vnets = new Map<string, Entry>();
  private readonly links = new Map<string, Link>();
  private next = 0;
  private nextLink = 0;

  private constructor(
    private readonly dir: string, private readonly armPort: () => number, private readonly egress: net.Server, private readonly egressPath: string,
    private readonly onProcess: (pid: number) => void, private readonly imds: ImdsHandler,
  ) {}

  /** The host side of the VNets' one way out: a unix socket that reaches the local ARM server. */
  static async start(opts: { dir: string; armPort(): number; onProcess(pid: number): void; imds: ImdsHandler }): Promise<LocalNetwork> {
    sweepStrayNetworks();
    fs.mkdirSync(opts.dir, { recursive: true });
    const egressPath = path.join(opts.dir, 'egress.sock');
    fs.rmSync(egressPath, { force: true });
    const egress = net.createServer((inside) => {
      inside.on('error', () => undefined);
      const arm = net.connect(opts.armPort(), '127.0.0.1');
      arm.on('error', () => inside.destroy());
      inside.pipe(arm).pipe(inside);
      inside.on('close', () => arm.destroy());
    });
    await new Promise<void>((resolve, reject) => egress.once('error', reject).listen(egressPath, resolve));
    return new LocalNetwork(opts.dir, opts.armPort, egress, egressPath, opts.onProcess, opts.imds);
  }

  /** The VNet of this key, made on first use: its namespace, its address space local in it, its bridge. */
  async vnet(key: string, cidr: string): Promise<Vnet> {
    const found = this.vnets.get(key);
    if (found) return found;
    const name = `${PREFIX}${process.pid}-${this.next++}`;
    ip(['netns', 'add', name]);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'route', 'replace', 'local', cidr, 'dev', 'lo', 'table', 'local']);
    ip(['-n', name, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
    const netns = `/run/netns/${name}`;
    const ingress = path.join(this.dir, `${name}.sock`);
    const imdsPath = path.join(this.dir, `${name}-imds.sock`);
    fs.rmSync(imdsPath, { force: true });
    const imds = http.createServer((req, res) => this.imds(key, req, res));
    await new Promise<void>((resolve, reject) => imds.once('error', reject).listen(imdsPath, resolve));
    const bridge = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, path.join(__dirname, 'vnet-bridge.js'), ingress, this.egressPath, String(this.armPort()), imdsPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    bridge.on('error', () => undefined);
    if (bridge.pid) this.onProcess(bridge.pid);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      bridge.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready\n')) resolve();
      });
      bridge.once('exit', (code) => reject(new Error(`the bridge of VNet ${key} exited (${code}) before it was ready`)));
    });
    const entry: Entry = { name, netns, cidr, bridge, ingress, imds, imdsPath };
    this.vnets.set(key, entry);
    return entry;
  }

  netnsOf(key: string): string {
    const v = this.vnets.get(key);
    if (!v) throw new Error(`no VNet ${key}`);
    return v.netns;
  }

  has(key: string): boolean {
    return this.vnets.has(key);
  }

  /**
   * A connection to `host:port` inside the VNet, made from `source` (an
   * address of the VNet): what a Private Link service's NAT does. Refused or
   * reset as the VNet refuses it.
   */
  connectInto(key: string, host: string, port: number, source: string): net.Socket {
    const v = this.vnets.get(key);
    if (!v) throw new Error(`no VNet ${key}`);
    const s = net.connect(v.ingress);
    s.write(`${host} ${port} ${source}\n`);
    return s;
  }

  /** The peered pairs wired now, as `<key a>|<key b>`. */
  linked(): string[] {
    return [...this.links.keys()];
  }

  /**
   * Wires two VNets together (their peerings are Connected): each reaches the
   * other's address space over a veth pair, and each admits over it only what
   * `into` says for it; everything else arriving there is dropped.
   */
  link(a: string, b: string, intoA: PeerAdmission, intoB: PeerAdmission): void {
    const id = [a, b].sort().join('|');
    if (this.links.has(id)) throw new Error(`VNets ${a} and ${b} are linked already`);
    const va = this.vnets.get(a);
    const vb = this.vnets.get(b);
    if (!va || !vb) throw new Error(`no VNet ${va ? b : a}`);
    const n = this.nextLink++;
    const mac = (end: string) => `02:00:${((process.pid >> 8) & 0xff).toString(16).padStart(2, '0')}:${(process.pid & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}:${end}`;
    const link: Link = { a, b, ifA: `lp${n}a`, ifB: `lp${n}b`, rules: [] };
    ip(['link', 'add', link.ifA, 'address', mac('0a'), 'netns', va.name, 'type', 'veth', 'peer', 'name', link.ifB, 'address', mac('0b'), 'netns', vb.name]);
    this.links.set(id, link);
    for (const [self, other, ifname, otherMac, into] of [[va, vb, link.ifA, mac('0b'), intoA], [vb, va, link.ifB, mac('0a'), intoB]] as const) {
      this.policyRouting(self.name);
      ip(['-n', self.name, 'link', 'set', ifname, 'up']);
      ip(['-n', self.name, 'neigh', 'replace', LINK_HOP, 'lladdr', otherMac, 'dev', ifname, 'nud', 'permanent']);
      // Connections the instances open to the peer leave from an address of their own VNet (its host index 0), which the peer routes back here.
      ip(['-n', self.name, 'route', 'replace', other.cidr, 'via', LINK_HOP, 'dev', ifname, 'onlink', 'src', firstHost(self.cidr)]);
      for (const proto of ['tcp', 'udp'] as const) {
        for (const [which, ranges] of [['dport', into.dports[proto]], ['sport', into.sports[proto]]] as const) {
          for (const [lo, hi] of ranges) this.rule(link, self.name, ['pref', ADMIT_PREF, 'iif', ifname, 'ipproto', proto, which, lo === hi ? String(lo) : `${lo}-${hi}`, 'lookup', 'local']);
        }
      }
      this.rule(link, self.name, ['pref', DROP_PREF, 'iif', ifname, 'blackhole']);
    }
  }

  /** The peering between two VNets is no longer Connected: their wire goes (rules, routes and the veth pair). */
  unlink(a: string, b: string): void {
    const id = [a, b].sort().join('|');
    const link = this.links.get(id);
    if (!link) return;
    this.links.delete(id);
    for (const r of link.rules) {
      try {
        ip(['-n', r.ns, 'rule', 'del', ...r.args]);
      } catch {
        // its namespace is gone
      }
    }
    for (const [key, ifname] of [[link.a, link.ifA], [link.b, link.ifB]] as const) {
      const v = this.vnets.get(key);
      if (!v) continue;
      try {
        ip(['-n', v.name, 'link', 'del', ifname]); // both ends go, and the routes through them
      } catch {
        // gone with the other end
      }
    }
  }

  private rule(link: Link, ns: string, args: string[]): void {
    ip(['-n', ns, 'rule', 'add', ...args]);
    link.rules.push({ ns, args });
  }

  /** Once per namespace: the local table looked up after the links' rules (it is rule 0 by default, before any other). */
  private policyRouting(ns: string): void {
    const rules = execFileSync('ip', ['-n', ns, 'rule', 'show'], { encoding: 'utf8' });
    if (new RegExp(`^${LOCAL_PREF}:`, 'm').test(rules)) return;
    ip(['-n', ns, 'rule', 'add', 'pref', LOCAL_PREF, 'lookup', 'local']);
    ip(['-n', ns, 'rule', 'del', 'pref', '0', 'lookup', 'local']);
  }

  /** The VNet goes: its bridge, then its namespace (its instances are gone before). */
  async remove(key: string): Promise<void> {
    const v = this.vnets.get(key);
    if (!v) return;
    for (const link of [...this.links.values()]) if (link.a === key || link.b === key) this.unlink(link.a, link.b);
    this.vnets.delete(key);
    await stopBridge(v.bridge);
    await new Promise<void>((resolve) => v.imds.close(() => resolve()));
    fs.rmSync(v.ingress, { force: true });
    fs.rmSync(v.imdsPath, { force: true });
    try {
      ip(['netns', 'del', v.name]);
    } catch {
      // gone already
    }
  }

  /** Every VNet of a resource group (keys `<group>/<vnet>`, lower case) goes. */
  async removeGroup(group: string): Promise<void> {
    for (const key of [...this.vnets.keys()]) if (key.startsWith(`${group.toLowerCase()}/`)) await this.remove(key);
  }

  async close(): Promise<void> {
    for (const key of [...this.vnets.keys()]) await this.remove(key);
    await new Promise<void>((resolve) => this.egress.close(() => resolve()));
    fs.rmSync(this.egressPath, { force: true });
  }
}

/** The address of host index 0 of a network (Azure keeps x.x.x.1 for the subnet's gateway; here it is the source of the VNet's traffic to a peer). */
function firstHost(cidr: string): string {
  const [address, bits] = cidr.split('/');
  const n = address.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  const first = n - (n % size) + 1;
  return [24, 16, 8, 0].map((sh) => Math.floor(first / 2 ** sh) % 256).join('.');
}

async function stopBridge(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGKILL');
  await exited;
}
