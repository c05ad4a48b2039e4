import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

export interface PortSpec {
  port: number;
  protocol: 'tcp' | 'udp';
}

/**
 * The ports among `ports` that cannot be bound on `address` right now
 * (in use by some process). Each probe binds and releases at once.
 */
export async function findBusyPorts(address: string, ports: readonly PortSpec[]): Promise<PortSpec[]> {
  const results = await Promise.all(ports.map(async (p) => ((await canBind(address, p)) ? undefined : p)));
  return results.filter((p): p is PortSpec => p !== undefined);
}

function canBind(address: string, { port, protocol }: PortSpec): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'tcp') {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(true)));
    } else {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        try {
          socket.close();
        } catch {
          // never bound: nothing to release
        }
        resolve(false);
      });
      socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(true)));
    }
  });
}
