import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/**
 * Per-cluster certificate authority and the server certificates Consul's
 * servers present on RPC (8300) and HTTPS (8501).
 *
 * Keys are ECDSA P-256, signatures ECDSA-SHA256, keys exported as PKCS#8
 * ("PRIVATE KEY") PEM, which Go's tls.X509KeyPair (Consul 1.8) accepts.
 */

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const crypto: webcrypto.Crypto = webcrypto;
x509.cryptoProvider.set(crypto);

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const CA_VALIDITY_YEARS = 5;
const SERVER_VALIDITY_YEARS = 1;
/** Tolerates small clock differences between the issuer and the verifier. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface CertificateAuthority {
  caCertPem: string;
  caKeyPem: string;
}

export interface ServerCertificate {
  /** The server's own loopback/IP address; also an IP SAN of the certificate. */
  address: string;
  certPem: string;
  keyPem: string;
}

export interface ClusterPki extends CertificateAuthority {
  servers: ServerCertificate[];
  /**
   * Other CA certificates the servers trust beside `caCertPem` (the CA that
   * signs): the next CA while a CA roll begins, the previous one while it ends.
   * Absent outside a roll.
   */
  trustedCaPems?: string[];
}

/**
 * The CA certificates a cluster's servers trust, and clients must trust to
 * verify them: the signing CA first, then any other trusted during a roll.
 * Public data (no key), as written to each server's ca_file.
 */
export function caBundlePem(pki: Pick<ClusterPki, 'caCertPem' | 'trustedCaPems'>): string {
  const pems = [pki.caCertPem, ...(pki.trustedCaPems ?? [])].map((p) => p.trim() + '\n');
  return [...new Set(pems)].join('');
}

/** The public dates of a cluster's PKI: when its signing CA and its earliest server certificate expire. */
export interface CertificateDates {
  caBundlePem: string;
  caNotAfter: Date;
  /** null when the PKI holds no server certificate. */
  serverCertsNotAfter: Date | null;
}

export function certificateDates(pki: ClusterPki): CertificateDates {
  const leaves = pki.servers.map((s) => certificateNotAfter(s.certPem).getTime());
  return {
    caBundlePem: caBundlePem(pki),
    caNotAfter: certificateNotAfter(pki.caCertPem),
    serverCertsNotAfter: leaves.length ? new Date(Math.min(...leaves)) : null,
  };
}

export function certificateNotAfter(pem: string): Date {
  return new x509.X509Certificate(pem).notAfter;
}

export interface ClusterPkiOptions {
  datacenter: string;
  serverAddresses: string[];
}

/** The DNS name Consul verifies on server certificates (verify_server_hostname). */
export function serverTlsName(datacenter: string): string {
  return `server.${datacenter}.consul`;
}

export async function generateClusterPki(opts: ClusterPkiOptions): Promise<ClusterPki> {
  assertDatacenter(opts.datacenter);
  const ca = await generateCertificateAuthority(opts.datacenter);
  const servers: ServerCertificate[] = [];
  for (const address of opts.serverAddresses) {
    servers.push(await issueServerCertificate(ca, opts.datacenter, address));
  }
  return { ...ca, servers };
}

export async function generateCertificateAuthority(datacenter: string): Promise<CertificateAuthority> {
  assertDatacenter(datacenter);
  const keys = await generateKeyPair();
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialNumber(),
      name: `CN=Consul CA ${datacenter} ${randomBytes(4).toString('hex')}, O=Managed Consul`,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { caCertPem: cert.toString('pem') + '\n', caKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Issues a certificate for one Consul server: DNS SANs `server.<dc>.consul` and
 * `localhost`, IP SANs 127.0.0.1 and the server's own address; usable for both
 * TLS server and client auth (servers dial each other with verify_incoming_rpc).
 */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  datacenter: string,
  address: string,
): Promise<ServerCertificate> {
  assertDatacenter(datacenter);
  if (isIP(address) === 0) throw new Error(`Server address must be an IP address, got "${address}"`);
  const caCert = new x509.X509Certificate(ca.caCertPem);
  const caKey = await importPrivateKeyPem(ca.caKeyPem);
  const keys = await generateKeyPair();
  const now = Date.now();
  let notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + SERVER_VALIDITY_YEARS);
  if (notAfter > caCert.notAfter) notAfter = caCert.notAfter;
  const ipSans = [...new Set(['127.0.0.1', address])];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: `CN=${serverTlsName(datacenter)}`,
      issuer: caCert.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'dns', value: serverTlsName(datacenter) },
            { type: 'dns', value: 'localhost' },
            ...ipSans.map((value) => ({ type: 'ip' as const, value })),
          ],
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { address, certPem: cert.toString('pem') + '\n', keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (!der) throw new Error('CA key PEM holds no key');
  return crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

/** 128-bit positive serial number (leading bit clear, so DER keeps it positive). */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function assertDatacenter(datacenter: string): void {
  if (!/^[a-z0-9_-]{1,64}$/.test(datacenter)) {
    throw new Error(`Invalid datacenter name "${datacenter}" (lowercase letters, digits, "-" and "_")`);
  }
}
