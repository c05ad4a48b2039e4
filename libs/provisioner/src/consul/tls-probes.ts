import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * TLS handshakes that tell what a running Consul server presents and trusts
 * right now (not what its files say).
 */

const HANDSHAKE_TIMEOUT_MS = 5_000;

/** The SHA-256 fingerprint of the certificate a TLS server presents (checked against the cluster CA). */
export function servedFingerprint(host: string, port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca, servername: undefined, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (!cert) reject(new Error('no certificate presented'));
      else resolve(cert.fingerprint256);
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', reject);
  });
}

/**
 * A TLS handshake on a Consul server's RPC port (first byte 0x03: RPCTLS) with
 * a client certificate. true: accepted; false: the server refused the
 * certificate (a TLS alert); anything else (down, our side refusing the
 * server's certificate) is an error.
 */
export function rpcHandshake(host: string, port: number, ca: string, servername: string, client: { certPem: string; keyPem: string }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host, port });
    const fail = (e: Error) => {
      raw.destroy();
      reject(e);
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
