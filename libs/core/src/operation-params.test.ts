import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { OperationKind } from './model';
import { OPERATION_PARAMS, OperationParamsError, parseOperationParams } from './operation-params';

test('operation params: what each writer puts there parses (its extra audit fields kept); a row of another shape is refused, naming the field', () => {
  const id = randomUUID();
  // As the API, the schedulers and the waves write them.
  const upgrade = parseOperationParams(OperationKind.Upgrade, { toVersion: '1.8.7', fromVersion: '1.8.6', preUpgradeSnapshotId: id, automatic: true });
  assert.equal(upgrade.toVersion, '1.8.7');
  assert.equal((upgrade as Record<string, unknown>).fromVersion, '1.8.6', 'audit fields are kept');
  assert.deepEqual(parseOperationParams(OperationKind.Scale, { toTier: 'plus', toCount: 5, requestedFrom: 'standard' }).toCount, 5);
  assert.equal(parseOperationParams(OperationKind.Restore, { snapshotId: id }).preRestoreSnapshotId, undefined);
  assert.equal(parseOperationParams(OperationKind.Snapshot, { snapshotId: id }).snapshotId, id);
  assert.deepEqual(parseOperationParams(OperationKind.Create, null), {}, 'no params: an empty object');
  for (const kind of Object.values(OperationKind)) assert.ok(OPERATION_PARAMS[kind], `a shape for ${kind}`);

  assert.throws(() => parseOperationParams(OperationKind.Upgrade, { preUpgradeSnapshotId: id }), (e: Error) => e instanceof OperationParamsError && /toVersion/.test(e.message));
  assert.throws(() => parseOperationParams(OperationKind.Scale, { toTier: 'plus', toCount: '5' }), /toCount/);
  assert.throws(() => parseOperationParams(OperationKind.Restore, { snapshotId: 'not-a-uuid' }), /snapshotId/);
  assert.throws(() => parseOperationParams(OperationKind.Snapshot, {}), /snapshotId/);
});
