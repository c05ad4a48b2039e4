import * as net from 'node:net';
import type { Endpoint } from '../../libs/provisioner/src';

/**
 * A stand-in for a target's route to one server port (Azure: a private endpoint and an inbound
 * NAT port): every connection to `endpoint` is piped to `to`, byte for byte (TLS passes through),
 * and counted.
 */
export interface TcpForwarder {
  endpoint: Endpoint;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startForwarder(to: Endpoint, host = '127.0.0.1'): Promise<TcpForwarder> {
  const open = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(to);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: { host, port },
    get connections() {
      return connections;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
