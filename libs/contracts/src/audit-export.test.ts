import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditBlobName, checkContainerUrl } from './audit-export';

const now = new Date('2026-12-07T11:30:00Z');
const rules = { blobSuffixes: ['blob.core.windows.net', 'blob.core.usgovcloudapi.net'], devEndpoint: 'http://127.0.0.1:10000/devstoreaccount1', now };
const SAS = 'sv=2025-01-05&sr=c&sp=racw&se=2027-01-01T00:00:00Z&sig=abc%3D';
const codeOf = (url: string, mi = false) => {
  const r = checkContainerUrl(url, mi, rules);
  return r.ok ? 'ok' : r.code;
};

test('an event goes to the blob of its UTC hour, under its cluster', () => {
  assert.equal(auditBlobName('c1', new Date('2026-12-07T11:59:59.999Z')), 'c1/y=2026/m=12/d=07/h=11.jsonl');
  assert.equal(auditBlobName('c1', new Date('2026-01-02T00:00:00Z')), 'c1/y=2026/m=01/d=02/h=00.jsonl');
  assert.equal(auditBlobName('c1', new Date('2026-12-07T12:30:00+01:00')), 'c1/y=2026/m=12/d=07/h=11.jsonl', 'the UTC hour, whatever the offset written');
});

test('a container SAS on a blob endpoint is accepted; the URL kept is the container without the query', () => {
  const r = checkContainerUrl(`https://acct1.blob.core.windows.net/audit-logs?${SAS}`, false, rules);
  assert.deepEqual(r, { ok: true, containerUrl: 'https://acct1.blob.core.windows.net/audit-logs', sasExpiresAt: new Date('2027-01-01T00:00:00Z') });
  assert.equal(codeOf(`https://acct1.blob.core.usgovcloudapi.net/audit-logs?${SAS}`), 'ok', 'a configured sovereign cloud suffix');
  assert.equal(codeOf(`http://127.0.0.1:10000/devstoreaccount1/audit-logs?${SAS}`), 'ok', 'the configured development endpoint');
  assert.equal(codeOf(`https://acct1.blob.core.windows.net/audit-logs?${SAS.replace('sp=racw', 'sp=rw')}`), 'ok', 'read and write suffice');
  assert.equal(codeOf('https://acct1.blob.core.windows.net/audit-logs?sv=2025-01-05&sr=c&si=export-policy&sig=abc'), 'ok', 'a stored access policy holds sp and se');
  assert.equal(codeOf('https://acct1.blob.core.windows.net/audit-logs?sv=2025-01-05&ss=b&srt=co&sp=rac&se=2027-01-01T00:00:00Z&sig=x'), 'ok', 'an account SAS for blob objects');
});

test('only blob endpoints are ever named (no address, other host, port, http or path past the container)', () => {
  for (const url of [
    `https://169.254.169.254/audit-logs?${SAS}`,
    `https://example.com/audit-logs?${SAS}`,
    `https://acct1.blob.core.windows.net.example.com/audit-logs?${SAS}`,
    `https://blob.core.windows.net/audit-logs?${SAS}`,
    `https://Acct_1.blob.core.windows.net/audit-logs?${SAS}`,
    `https://acct1.blob.core.windows.net:8443/audit-logs?${SAS}`,
    `http://acct1.blob.core.windows.net/audit-logs?${SAS}`,
    `https://user:pw@acct1.blob.core.windows.net/audit-logs?${SAS}`,
    `https://acct1.blob.core.windows.net/audit-logs/x.jsonl?${SAS}`,
    `https://acct1.blob.core.windows.net/Audit--Logs?${SAS}`,
    `https://acct1.blob.core.windows.net/?${SAS}`,
    `http://127.0.0.1:10001/devstoreaccount1/audit-logs?${SAS}`,
    `http://127.0.0.1:10000/otheraccount/audit-logs?${SAS}`,
    'not a url',
  ]) assert.equal(codeOf(url), 'invalid_container_url', url);
  assert.equal(checkContainerUrl(`http://127.0.0.1:10000/devstoreaccount1/audit-logs?${SAS}`, false, { ...rules, devEndpoint: undefined }).ok, false, 'http only with a development endpoint configured');
});

test('the SAS must be for the container, allow read, add or write, create or write, and not be expired', () => {
  const base = 'https://acct1.blob.core.windows.net/audit-logs?';
  assert.equal(codeOf(`${base}sv=2025-01-05&sr=c&sp=rac&se=2027-01-01T00:00:00Z`), 'sas_missing');
  assert.equal(codeOf(`${base}${SAS.replace('sr=c', 'sr=b')}`), 'sas_wrong_scope');
  assert.equal(codeOf(`${base}sv=2025-01-05&ss=q&srt=o&sp=rac&se=2027-01-01T00:00:00Z&sig=x`), 'sas_wrong_scope');
  for (const sp of ['r', 'ac', 'rc', 'ra', 'w']) assert.equal(codeOf(`${base}${SAS.replace('sp=racw', `sp=${sp}`)}`), 'sas_permissions', sp);
  assert.equal(codeOf(`${base}${SAS.replace('&sp=racw', '')}`), 'sas_permissions');
  assert.equal(codeOf(`${base}${SAS.replace('se=2027-01-01T00:00:00Z', 'se=2026-12-07T11:29:59Z')}`), 'sas_expired');
  assert.equal(codeOf(`${base}${SAS.replace('se=2027-01-01T00:00:00Z', 'se=tomorrow')}`), 'sas_expiry');
  assert.equal(codeOf(`${base}${SAS.replace('&se=2027-01-01T00:00:00Z', '')}`), 'sas_expiry');
  const missing = checkContainerUrl(`${base}${SAS.replace('sp=racw', 'sp=c')}`, false, rules);
  assert.ok(!missing.ok && /read \(r\).*add \(a\)/.test(missing.message), 'the refusal names each permission missing and why');
});

test('with managed identity the URL carries no SAS', () => {
  assert.equal(codeOf('https://acct1.blob.core.windows.net/audit-logs', true), 'ok');
  assert.equal(codeOf(`https://acct1.blob.core.windows.net/audit-logs?${SAS}`, true), 'unexpected_sas');
});
