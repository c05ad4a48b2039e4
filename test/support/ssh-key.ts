import { generateKeyPairSync } from 'node:crypto';

/** A fresh ed25519 public key in OpenSSH's one-line format (what `ssh-keygen -t ed25519` writes to id_ed25519.pub); the private half is discarded. */
export function sshPublicKey(comment = 'test'): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`;
}
