import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossedPin, pinnedRange, versionNumbers } from './upgrade-pin';

test('a catalog version is compared by its numeric major.minor.patch prefix', () => {
  assert.deepEqual(versionNumbers('1.8.7'), [1, 8, 7]);
  assert.deepEqual(versionNumbers('1.8.7-rolling'), [1, 8, 7]);
  assert.deepEqual(versionNumbers('1.10.0'), [1, 10, 0]);
  assert.equal(versionNumbers('latest'), null);
  assert.equal(versionNumbers('1.8'), null);
});

test('patch keeps major.minor, minor keeps major, none keeps nothing', () => {
  assert.equal(pinnedRange('patch', '1.8.7'), '1.8.x');
  assert.equal(pinnedRange('minor', '1.8.7-rolling'), '1.x');
  assert.equal(pinnedRange('none', '1.8.7'), null);

  assert.equal(crossedPin('patch', '1.8.7', '1.8.9'), null);
  assert.equal(crossedPin('patch', '1.8.7', '1.8.7-auto'), null, 'a suffix is the same version line');
  assert.equal(crossedPin('patch', '1.8.7', '1.8.2'), null, 'back within the line too');
  assert.equal(crossedPin('patch', '1.8.7', '1.9.0'), '1.8.x');
  assert.equal(crossedPin('patch', '1.8.7', '1.80.0'), '1.8.x', 'numbers, not text: 1.80 is not 1.8');
  assert.equal(crossedPin('minor', '1.8.7', '1.9.0'), null);
  assert.equal(crossedPin('minor', '1.8.7', '1.10.1'), null);
  assert.equal(crossedPin('minor', '1.8.7', '2.0.0'), '1.x');
  assert.equal(crossedPin('none', '1.8.7', '2.0.0'), null);
  assert.equal(crossedPin('patch', '1.8.7', 'nightly'), '1.8.x', 'a version without numbers cannot be shown to stay inside');
  assert.equal(crossedPin('none', '1.8.7', 'nightly'), null);
});
