import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';

// The Azure SDKs are several MB of memory each, and only the azure target, the snapshot store and the
// audit export use them: they load on first use (libs/provisioner/src/lazy-sdk.ts). An eager import
// anywhere in the module graph (as the audit container's once was) takes the API back above its
// memory target (issue 24: API <= 150 MB), so the graph of each process is checked here.
const DIST = path.resolve(__dirname, '..');

function azurePackagesLoadedBy(modulePath: string): string[] {
  const script = `require(${JSON.stringify(modulePath)});
    const found = new Set();
    for (const k of Object.keys(require.cache)) { const m = /node_modules\\/(@azure\\/[^/]+)/.exec(k); if (m) found.add(m[1]); }
    process.stdout.write(JSON.stringify([...found].sort()));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: DIST })) as string[];
}

describe('the Azure SDKs load on first use', () => {
  it('the API module graph loads none of them', () => {
    assert.deepEqual(azurePackagesLoadedBy(path.join(DIST, 'apps/api/src/app.module.js')), []);
  });

  it('the worker module graph loads none of them', () => {
    assert.deepEqual(azurePackagesLoadedBy(path.join(DIST, 'apps/worker/src/worker.module.js')), []);
  });
});
