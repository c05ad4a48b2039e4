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

export class LocalNetwork {
  private readonly vnets = new Map<string, Entry>();
  private next = 0;

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

  /** The VNet goes: its bridge, then its namespace (its instances are gone before). */
  async remove(key: string): Promise<void> {
    const v = this.vnets.get(key);
    if (!v) return;
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

async function stopBridge(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGKILL');
  await exited;
}
