import assert from 'node:assert/strict';
import { test } from 'node:test';
import { networksOverlap } from './network';

test('networksOverlap: peered address spaces must be apart', () => {
  assert.equal(networksOverlap('172.25.16.0/24', '172.25.16.0/24'), true);
  assert.equal(networksOverlap('172.25.16.0/24', '172.25.16.128/25'), true, 'one inside the other');
  assert.equal(networksOverlap('172.25.16.128/25', '172.25.16.0/24'), true);
  assert.equal(networksOverlap('172.25.16.0/24', '172.25.17.0/24'), false, 'neighbours');
  assert.equal(networksOverlap('10.0.0.0/8', '10.200.3.0/28'), true);
  assert.equal(networksOverlap('192.168.1.0/28', '192.168.1.16/28'), false);
  assert.throws(() => networksOverlap('172.25.16.0', '10.0.0.0/8'), /not an IPv4 network/);
});
