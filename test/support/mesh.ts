import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';

/**
 * The pieces of the service-mesh demo a customer puts beside a cluster (docs/mesh.md): a client
 * agent's config made from the product's client config, tiny services, their registrations with
 * a sidecar for Consul's built-in proxy, and calls through an upstream.
 */

/** A client agent on its own loopback address, from the client config the product hands out (GET /v1/clusters/{id}/client-config). */
export function meshAgentConfig(consulConfig: Record<string, unknown>, o: { node: string; address: string; agentToken: string }): Record<string, unknown> {
  const acl = consulConfig.acl as Record<string, unknown>;
  return {
    ...consulConfig,
    node_name: o.node,
    bind_addr: o.address,
    advertise_addr: o.address,
    client_addr: o.address,
    // HTTP on the agent's own address only, for the proxies and the CLI on that machine; no HTTPS, DNS or gRPC.
    ports: { http: 8500, https: -1, dns: -1, grpc: -1 },
    acl: { ...acl, tokens: { agent: o.agentToken } },
    disable_update_check: true,
    retry_interval: '1s',
  };
}

export interface MeshService {
  name: string;
  /** The client's address: the service, its sidecar's public listener and its upstreams listen there. */
  address: string;
  port: number;
  sidecarPort: number;
  /** `datacenter`: a service in another datacenter of the federation (found there, reached through its sidecar). */
  upstreams?: { destination: string; localBindPort: number; datacenter?: string }[];
}

/**
 * A service definition with its sidecar, as HCL for `consul services register`. The sidecar's
 * address and port are explicit: left out, the built-in proxy binds 0.0.0.0 and every agent on a
 * host takes the same port from 21000. The proxy reaches the service, and the service its
 * upstreams, on the client's address (the defaults are 127.0.0.1).
 */
export function serviceDefinition(s: MeshService): string {
  const upstreams = (s.upstreams ?? [])
    .map((u) => `          {\n            destination_name   = "${u.destination}"\n${u.datacenter ? `            datacenter         = "${u.datacenter}"\n` : ''}            local_bind_address = "${s.address}"\n            local_bind_port    = ${u.localBindPort}\n          },\n`)
    .join('');
  return `service {
  name    = "${s.name}"
  address = "${s.address}"
  port    = ${s.port}
  connect {
    sidecar_service {
      address = "${s.address}"
      port    = ${s.sidecarPort}
      proxy {
        local_service_address = "${s.address}"
        upstreams = [
${upstreams}        ]
      }
    }
  }
}
`;
}

/** A tiny HTTP service answering every request with "pong from <name>". */
export interface PongService {
  close(): Promise<void>;
}

export async function startPongService(name: string, address: string, port: number): Promise<PongService> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`pong from ${name}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  if ((server.address() as AddressInfo).port !== port) throw new Error(`${name} is not listening on ${address}:${port}`);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What one GET through an upstream listener got: the answer, or how the connection ended without one. */
export type UpstreamCall = { answered: true; status: number; body: string } | { answered: false; error: string };

/** One GET / to address:port on a new connection (no keep-alive), at most `timeoutMs`. */
export function callUpstream(address: string, port: number, timeoutMs = 10_000): Promise<UpstreamCall> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ answered: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ answered: false, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim() }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ answered: false, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim() }));
  });
}

/**
 * The Consul 1.8 UI's intention form: a service picked in a combobox (typed, then chosen from the
 * list). A service the datacenter does not know (it runs in another) is offered as a new name.
 */
export async function pickService(ui: Page, label: 'Source Service' | 'Destination Service', name: string): Promise<void> {
  await ui.locator('label', { hasText: label }).getByRole('button').click();
  await ui.getByRole('combobox', { name: 'Type service name' }).fill(name);
  // The list as filtered by the name (a known service, or the name offered as a new one).
  await ui.getByRole('option', { name: new RegExp(name) }).first().waitFor();
  const known = ui.getByRole('option', { name, exact: true });
  if (await known.count()) await known.click();
  else await ui.getByRole('option', { name: new RegExp(name) }).first().click();
}

/** Save on the intention form: what Consul answered the UI's POST /v1/connect/intentions (through the proxy). */
export async function saveIntention(ui: Page): Promise<number> {
  const [answer] = await Promise.all([
    ui.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/connect/intentions'),
    ui.getByRole('button', { name: 'Save' }).click(),
  ]);
  return answer.status();
}
