import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { IP_ALLOWLIST_MAX, allowlistAdmits, allowlistNetworks, checkAllowlist, networkText, parseNetwork } from './ip-allowlist';

/** The allowlist as the body check reads it: the entries kept, or the issues raised. */
function check(entries: { cidr: string; description?: string }[], allowAny = false) {
  const issues: { path?: PropertyKey[]; message: string; params?: Record<string, unknown> }[] = [];
  const ctx = { addIssue: (i: (typeof issues)[number]) => issues.push(i), value: entries } as unknown as z.RefinementCtx;
  const kept = checkAllowlist(entries.map((e) => ({ description: '', ...e })), allowAny, ctx);
  return { kept, issues };
}

test('IPv4 and IPv6 networks parse; what is not one does not', () => {
  assert.equal(networkText(parseNetwork('203.0.113.0/24')!), '203.0.113.0/24');
  assert.equal(networkText(parseNetwork('2001:DB8:0:0:0:0:0:0/32')!), '2001:db8::/32', 'RFC 5952: lower case, zeros compressed');
  assert.equal(networkText(parseNetwork('2001:db8:0:1:0:0:0:1/128')!), '2001:db8:0:1::1/128', 'the longest run of zeros is compressed');
  assert.equal(networkText(parseNetwork('::ffff:192.0.2.1/128')!), '::ffff:c000:201/128');
  assert.equal(networkText(parseNetwork('::/0')!), '::/0');
  for (const bad of ['203.0.113.0', '203.0.113.0/33', '203.0.113/24', '203.0.113.256/32', '010.0.0.0/8', '2001:db8::/129', '2001:db8:::1/128', '1:2:3:4:5:6:7:8:9/128', 'a.b.c.d/8', '/24', '1.2.3.4/024', '']) {
    assert.equal(parseNetwork(bad), null, bad);
  }
});

test('host bits set are refused (422) with the network to send; IPv6 too', () => {
  const v4 = check([{ cidr: '203.0.113.7/24' }]);
  assert.equal(v4.issues.length, 1);
  assert.deepEqual(v4.issues[0]!.params, { code: 'cidr_host_bits_set', status: 422, network: '203.0.113.0/24' });
  assert.match(v4.issues[0]!.message, /ipAllowlist\.0\.cidr '203\.0\.113\.7\/24' has host bits set; the network is 203\.0\.113\.0\/24/);
  assert.deepEqual(v4.issues[0]!.path, ['ipAllowlist', 0, 'cidr']);
  const v6 = check([{ cidr: '2001:db8::1/64' }]);
  assert.equal(v6.issues[0]!.params!.network, '2001:db8::/64');
});

test('duplicates are refused, also when written differently', () => {
  const r = check([{ cidr: '2001:db8::/32' }, { cidr: '10.0.0.0/8' }, { cidr: '2001:0DB8:0:0::/32' }]);
  assert.equal(r.issues.length, 1);
  assert.deepEqual(r.issues[0]!.params, { code: 'duplicate_cidr', status: 422, duplicateOf: 0 });
  assert.deepEqual(r.issues[0]!.path, ['ipAllowlist', 2, 'cidr']);
});

test('every address (0.0.0.0/0, ::/0) only when confirmed', () => {
  for (const cidr of ['0.0.0.0/0', '::/0']) {
    assert.equal(check([{ cidr }]).issues[0]!.params!.code, 'any_address_not_confirmed', cidr);
    assert.deepEqual(check([{ cidr }], true).kept, [{ cidr, description: '' }]);
  }
});

test(`${IP_ALLOWLIST_MAX} distinct networks are kept in canonical form with their descriptions`, () => {
  const entries = Array.from({ length: IP_ALLOWLIST_MAX }, (_, i) => (i % 2 ? { cidr: `198.51.${i}.0/24`, description: `site ${i}` } : { cidr: `2001:DB8:${i.toString(16)}::/48`, description: `v6 ${i}` }));
  const r = check(entries);
  assert.deepEqual(r.issues, []);
  assert.equal(r.kept.length, IP_ALLOWLIST_MAX);
  assert.equal(r.kept[0]!.cidr, '2001:db8::/48');
  assert.equal(r.kept[1]!.description, 'site 1');
});

test('a source is admitted only inside a listed network of its family', () => {
  const networks = allowlistNetworks([{ cidr: '127.5.250.1/32' }, { cidr: '10.1.0.0/16' }, { cidr: '2001:db8::/32' }]);
  assert.ok(allowlistAdmits(networks, '127.5.250.1'));
  assert.ok(!allowlistAdmits(networks, '127.5.250.2'));
  assert.ok(allowlistAdmits(networks, '10.1.255.3'));
  assert.ok(allowlistAdmits(networks, '::ffff:10.1.2.3'), 'an IPv4 source seen on a dual-stack socket');
  assert.ok(allowlistAdmits(networks, '2001:db8:ffff::9'));
  assert.ok(!allowlistAdmits(networks, '2001:db9::1'));
  assert.ok(!allowlistAdmits(networks, '::1'));
  assert.ok(!allowlistAdmits([], '127.0.0.1'), 'an empty allowlist admits nobody');
  assert.ok(allowlistAdmits(allowlistNetworks([{ cidr: '0.0.0.0/0' }]), '192.0.2.1'));
  assert.ok(!allowlistAdmits(allowlistNetworks([{ cidr: '0.0.0.0/0' }]), '2001:db8::1'), '0.0.0.0/0 is IPv4 only');
});
