import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../../libs/core/src';
import { LocalTarget } from '../../../../libs/provisioner/src';
import { PermanentError } from './flows/flow';
import { TargetRegistry } from './target-registry';

describe('TargetRegistry', () => {
  const binary = () => '/nonexistent/consul';

  it('gives the local target for a cluster recorded on `local`, one instance for all its clusters', () => {
    const registry = new TargetRegistry(loadConfig({}), binary, undefined as never);
    const local = registry.get('local');
    assert.ok(local instanceof LocalTarget);
    assert.equal(local.kind, 'local');
    assert.equal(registry.get('local'), local);
  });

  it('fails a cluster recorded on a target this worker lacks permanently (no retry helps)', () => {
    const registry = new TargetRegistry(loadConfig({}), binary, undefined as never);
    assert.throws(() => registry.get('azure'), (e) => e instanceof PermanentError && e.code === 'unknown_target');
  });

  it('refuses to start when the configured default target is not built in, naming the variable', () => {
    assert.throws(() => new TargetRegistry(loadConfig({}, { CLUSTER_TARGET: 'azure' }), binary, undefined as never), /CLUSTER_TARGET: the default target 'azure' is not available/);
  });
});
