import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { generateClusterPki, issueServerCertificate } from './pki';
import { generateGossipKey, generateManagementToken } from './secrets';

const YEAR_MS = 365 * 24 * 3600 * 1000;

test('generateClusterPki: a CA and one server certificate per address, chained and usable by Consul', async (t) => {
  const started = performance.now();
  const pki = await generateClusterPki({
    datacenter: 'dc1',
    serverAddresses: ['127.99.0.1', '127.99.0.2', '127.99.0.3'],
  });
  t.diagnostic(`PKI for 3 servers generated in ${(performance.now() - started).toFixed(1)} ms`);

  const ca = new X509Certificate(pki.caCertPem);
  assert.equal(ca.ca, true);
  assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'CA is self-signed');
  const caYears = (Date.parse(ca.validTo) - Date.parse(ca.validFrom)) / YEAR_MS;
  assert.ok(caYears > 4.99 && caYears < 5.02, `CA valid ~5 years, got ${caYears}`);
  assert.equal(createPrivateKey(pki.caKeyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');

  assert.equal(pki.servers.length, 3);
  for (const server of pki.servers) {
    const cert = new X509Certificate(server.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(ca), 'issued by the cluster CA');
    assert.ok(cert.verify(ca.publicKey), 'signed by the CA key');
    assert.equal(cert.checkHost('server.dc1.consul'), 'server.dc1.consul');
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP(server.address), server.address);
    assert.equal(cert.subject, 'CN=server.dc1.consul');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / YEAR_MS;
    assert.ok(years > 0.99 && years < 1.01, `server cert valid ~1 year, got ${years}`);
    // the key matches the certificate
    assert.equal(
      createPublicKey(server.keyPem).export({ format: 'der', type: 'spki' }).toString('hex'),
      cert.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    );
  }
  const others = pki.servers.filter((s) => s.address !== '127.99.0.1').map((s) => new X509Certificate(s.certPem));
  assert.ok(others.every((c) => c.checkIP('127.99.0.1') === undefined), 'no server carries another server IP');
});

test('issueServerCertificate: signs a new server certificate with an existing CA', async () => {
  const pki = await generateClusterPki({ datacenter: 'east_1', serverAddresses: ['127.99.0.1'] });
  const issued = await issueServerCertificate(pki, 'east_1', '127.99.0.9');
  const cert = new X509Certificate(issued.certPem);
  const ca = new X509Certificate(pki.caCertPem);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  assert.equal(cert.checkIP('127.99.0.9'), '127.99.0.9');
  assert.equal(cert.checkHost('server.east_1.consul'), 'server.east_1.consul');
  assert.notEqual(cert.serialNumber, new X509Certificate(pki.servers[0]!.certPem).serialNumber);
});

test('PKI input validation', async () => {
  await assert.rejects(generateClusterPki({ datacenter: 'DC 1', serverAddresses: ['127.99.0.1'] }), /datacenter/);
  await assert.rejects(generateClusterPki({ datacenter: 'dc1', serverAddresses: ['not-an-ip'] }), /IP address/);
});

test('secrets: gossip key is 32 random bytes, management token a UUID v4', () => {
  const key = generateGossipKey();
  assert.equal(Buffer.from(key, 'base64').length, 32);
  assert.notEqual(key, generateGossipKey());
  assert.match(generateManagementToken(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
