/**
 * Runs inside one VNet's network namespace of the local ARM (local-network.ts),
 * started by it with `nsenter --net=...`; a unix socket is its door (paths are
 * not in a network namespace):
 *
 * - ingress: each connection to the unix socket `ingress` names, on its first
 *   line, `<host> <port> <source address>`; the bridge connects there from that
 *   source inside the VNet (the Private Link service's NAT address, as
 *   https://learn.microsoft.com/azure/private-link/private-link-service-overview#properties
 *   says the service's traffic appears) and pipes both ways. A refused
 *   connection is a reset, as a load balancer with no healthy backend gives.
 * - egress: 127.0.0.1:<port> inside the VNet reaches the local ARM server on
 *   the host (the unix socket `egress`): the instances' package download and
 *   their systemctl shim, the vaults), the one outbound path a VM of this
 *   emulation has (Azure's is the NAT gateway).
 * - the instance metadata service: 169.254.169.254:80 inside the VNet reaches
 *   the local ARM's metadata service of this VNet (the unix socket `imds`),
 *   which hands the scale set's managed identity its tokens.
 *
 * Prints `ready` once all three listen; exits when its stdin closes (its parent went).
 *
 *   node vnet-bridge.js <ingress socket> <egress socket> <egress port> <imds socket>
 */
import fs from 'node:fs';
import net from 'node:net';

const [ingressPath, egressPath, egressPort, imdsPath] = process.argv.slice(2);
/** https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service: the same link-local address on every VM. */
const IMDS_ADDRESS = '169.254.169.254';

/** A reset where the socket is TCP (a unix socket has none to send: closed). */
function reset(s: net.Socket): void {
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

function pipe(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => reset(b));
  b.on('error', () => reset(a));
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

const ingress = net.createServer((client) => {
  let head = Buffer.alloc(0);
  client.on('error', () => undefined);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > 512) client.destroy();
      return;
    }
    client.off('data', onData);
    client.pause();
    const [host, port, source] = head.subarray(0, nl).toString('utf8').split(' ');
    const rest = head.subarray(nl + 1);
    const upstream = net.connect({ host, port: Number(port), localAddress: source || undefined });
    upstream.once('error', () => reset(client));
    upstream.once('connect', () => {
      if (rest.length > 0) upstream.write(rest);
      pipe(client, upstream);
      client.resume();
    });
  };
  client.on('data', onData);
});

const egress = net.createServer((inside) => {
  inside.on('error', () => undefined);
  const host = net.connect(egressPath);
  host.once('error', () => reset(inside));
  pipe(inside, host);
});

const imds = net.createServer((inside) => {
  inside.on('error', () => undefined);
  const host = net.connect(imdsPath);
  host.once('error', () => reset(inside));
  pipe(inside, host);
});

fs.rmSync(ingressPath, { force: true });
let listening = 0;
const up = () => {
  if (++listening === 3) process.stdout.write('ready\n');
};
ingress.listen(ingressPath, up);
egress.listen(Number(egressPort), '127.0.0.1', up);
imds.listen(80, IMDS_ADDRESS, up);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
