import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Endpoint } from '../target';
import { identityOf, viaText } from './consul-http';

/**
 * TLS handshakes that tell what a running Consul server presents and trusts
 * right now (not what its files say).
 */

const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * The SHA-256 fingerprint of the certificate the TLS server at `address:port` presents, checked
 * against the cluster CA and `address`; with `via`, connected there instead.
 */
export function servedFingerprint(address: string, port: number, ca: string, via?: Endpoint): Promise<string> {
  const where = `https://${address}:${port}${viaText(via)}`;
  return new Promise((resolve, reject) => {
    const options = via ? { host: via.host, port: via.port, ...identityOf(address) } : { host: address, port, servername: undefined };
    const socket = tls.connect({ ...options, ca, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (!cert) reject(new Error(`${where}: no certificate presented`));
      else resolve(cert.fingerprint256);
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', (e) => reject(new Error(`${where}: ${e.message}`, { cause: e })));
  });
}

/**
 * A TLS handshake on a Consul server's RPC port (first byte 0x03: RPCTLS) with
 * a client certificate, verifying the server as `servername` (Consul's server
 * TLS name); with `via`, connected there instead of `address:port`. true:
 * accepted; false: the server refused the certificate (a TLS alert); anything
 * else (down, our side refusing the server's certificate) is an error.
 */
export function rpcHandshake(
  address: string, port: number, ca: string, servername: string, client: { certPem: string; keyPem: string }, via?: Endpoint,
): Promise<boolean> {
  const where = `${address}:${port}${viaText(via)}`;
  return new Promise((resolve, reject) => {
    const raw = net.connect(via ?? { host: address, port });
    const fail = (e: Error) => {
      raw.destroy();
      reject(new Error(`RPC ${where}: ${e.message}`, { cause: e }));
    };
    raw.setTimeout(HANDSHAKE_TIMEOUT_MS, () => fail(new Error('RPC TLS handshake timed out')));
    raw.once('error', fail);
    raw.once('connect', () => {
      raw.write(Buffer.from([0x03]));
      const socket = tls.connect({ socket: raw, ca, servername, cert: client.certPem, key: client.keyPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', rejectUnauthorized: true }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        socket.destroy();
        if (/_ALERT_/.test(e.code ?? '')) resolve(false);
        else fail(e);
      });
    });
  });
}
