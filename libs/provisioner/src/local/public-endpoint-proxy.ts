import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { allowlistAdmits, allowlistNetworks, type Network } from '../../../contracts/src';

/**
 * A local cluster's public endpoint, as a process of its own: what Azure's public load balancer
 * and the network security group in front of it are to a cluster there. It listens on the
 * cluster's public loopback address, port 8501, closes at once every connection whose source
 * address is not inside the allowlist, and forwards the others as plain TCP to a server's HTTPS
 * port (layer 4: the TLS session is the client's with the server, which shows its own certificate).
 *
 * Run detached by the local target (`node public-endpoint-proxy.js --endpoint-dir=DIR`) so it
 * outlives the worker, found again by that argument in the process table. It reads DIR/endpoint.json
 * at start and again on SIGHUP (the allowlist and servers change in place, no restart: connections
 * whose source the new allowlist leaves out are closed), and writes the SHA-256 of the config it
 * applies to DIR/applied, which is how the target knows a change took. SIGTERM ends it.
 */

export interface EndpointConfig {
  /** The public address and port it listens on. */
  address: string;
  port: number;
  /** The servers' HTTPS endpoints, tried in turn from a rotating start. */
  upstreams: { host: string; port: number }[];
  /** The allowlist's CIDRs. */
  allow: string[];
}

export const ENDPOINT_CONFIG_FILE = 'endpoint.json';
export const ENDPOINT_APPLIED_FILE = 'applied';
export const ENDPOINT_DIR_ARGUMENT = '--endpoint-dir=';
const UPSTREAM_CONNECT_TIMEOUT_MS = 5_000;

export const configDigest = (text: string) => createHash('sha256').update(text).digest('hex');

class PublicEndpointProxy {
  private server: Server | undefined;
  private listening: { address: string; port: number } | undefined;
  private networks: Network[] = [];
  private upstreams: EndpointConfig['upstreams'] = [];
  private next = 0;
  private readonly open = new Set<Socket>();

  constructor(private readonly dir: string) {}

  /** Reads the config and applies it; the listener is made again only when its address or port changed. */
  async apply(): Promise<void> {
    const text = readFileSync(path.join(this.dir, ENDPOINT_CONFIG_FILE), 'utf8');
    const config = JSON.parse(text) as EndpointConfig;
    this.networks = allowlistNetworks(config.allow.map((cidr) => ({ cidr })));
    this.upstreams = config.upstreams;
    for (const s of this.open) if (!this.admits(s)) s.destroy();
    if (this.listening?.address !== config.address || this.listening.port !== config.port) {
      await this.close();
      this.server = await listen(config.address, config.port, (s) => this.accept(s));
      this.listening = { address: config.address, port: config.port };
    }
    const applied = path.join(this.dir, ENDPOINT_APPLIED_FILE);
    await fs.writeFile(`${applied}.tmp`, configDigest(text), { mode: 0o600 });
    await fs.rename(`${applied}.tmp`, applied);
    log(`applied: ${config.address}:${config.port}, ${this.networks.length} allowed network(s), ${this.upstreams.length} server(s)`);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.listening = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops listening and ends every forwarded connection. */
  async shutdown(): Promise<void> {
    for (const s of this.open) s.destroy();
    await this.close();
  }

  private admits(s: Socket): boolean {
    return s.remoteAddress !== undefined && allowlistAdmits(this.networks, s.remoteAddress);
  }

  private accept(client: Socket): void {
    if (!this.admits(client)) {
      // Like a network security group's deny: nothing is answered, the connection just ends.
      log(`refused ${client.remoteAddress ?? 'an unknown source'}`);
      client.resetAndDestroy();
      return;
    }
    this.open.add(client);
    client.on('close', () => this.open.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    this.forward(client, 0);
  }

  /** To the next server; one that does not accept the connection is skipped, until every one was tried. */
  private forward(client: Socket, tried: number): void {
    if (tried >= this.upstreams.length || client.destroyed) {
      client.destroy();
      return;
    }
    const target = this.upstreams[this.next++ % this.upstreams.length]!;
    const upstream = connect({ host: target.host, port: target.port, timeout: UPSTREAM_CONNECT_TIMEOUT_MS });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
    upstream.on('error', () => {
      if (!connected) this.forward(client, tried + 1);
      else client.destroy();
    });
    upstream.on('close', () => {
      if (connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
  }
}

function listen(address: string, port: number, onConnection: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true }, onConnection);
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      server.on('error', (e) => log(`listener error: ${e.message}`));
      resolve(server);
    });
  });
}

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function main(): Promise<void> {
  const arg = process.argv.find((a) => a.startsWith(ENDPOINT_DIR_ARGUMENT));
  if (!arg) throw new Error(`usage: public-endpoint-proxy.js ${ENDPOINT_DIR_ARGUMENT}DIR`);
  const proxy = new PublicEndpointProxy(arg.slice(ENDPOINT_DIR_ARGUMENT.length));
  await proxy.apply();
  // One reload at a time: a second SIGHUP during one reads the file again after it.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() => proxy.apply()).catch((e: unknown) => log(`reload failed, the previous config stays: ${(e as Error).message}`));
  });
  process.on('SIGTERM', () => {
    void proxy.shutdown().then(() => process.exit(0));
  });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    log(`could not start: ${(e as Error).message}`);
    process.exit(1);
  });
}
