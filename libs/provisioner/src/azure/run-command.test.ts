import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { RELOAD_LINE, RESTART_LINE, parseRunCommandLine, parseRunCommandOutput, runCommandScript, writeFileLine } from './run-command';

describe('Run Command scripts', () => {
  it('a file line carries the content base64 encoded and reads back exactly (any content)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), fc.constantFrom(0o600, 0o644, 0o700), (content, mode) => {
      const path = '/var/lib/managed-consul/clusters/c1/server-0/config/consul.json';
      const line = writeFileLine({ path, mode, content });
      assert.deepEqual(parseRunCommandLine(line), { kind: 'write', path, mode, content });
    }));
  });

  it('a secret never appears in the clear in a script', () => {
    const token = 'f3b6d5c2-1a2b-4c3d-9e8f-0a1b2c3d4e5f';
    const script = runCommandScript([writeFileLine({ path: '/x/consul.json', mode: 0o600, content: JSON.stringify({ acl: { tokens: { master: token } } }) }), RELOAD_LINE]);
    assert.equal(script[0], 'set -eu');
    assert.ok(!script.join('\n').includes(token));
  });

  it('knows reload and restart, and refuses anything else and paths with quotes', () => {
    assert.deepEqual(parseRunCommandLine(RELOAD_LINE), { kind: 'reload' });
    assert.deepEqual(parseRunCommandLine(RESTART_LINE), { kind: 'restart' });
    assert.throws(() => parseRunCommandLine('rm -rf /'), /not a managed-consul Run Command line: rm -rf \//);
    assert.throws(() => parseRunCommandLine(writeFileLine({ path: '/a', mode: 0o600, content: 'x' }).replace("mv '/a.new' '/a'", "mv '/a.new' '/b'")), /not a managed-consul/);
    assert.throws(() => writeFileLine({ path: "/a'; rm -rf /; '", mode: 0o600, content: 'x' }), /quote/);
  });

  it('a script prints its exit status last, even when a line fails (Run Command says succeeded either way)', () => {
    const run = (lines: string[]) => {
      let stdout: string;
      try {
        stdout = execFileSync('/bin/sh', ['-c', runCommandScript(lines).join('\n')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch (e) {
        stdout = (e as { stdout: string }).stdout;
      }
      return parseRunCommandOutput(`Enable succeeded: \n[stdout]\n${stdout}\n[stderr]\n`);
    };
    assert.deepEqual(run(['echo pending']), { stdout: 'pending', stderr: '', exitCode: 0 });
    assert.equal(run(['false', 'echo not reached']).exitCode, 1);
    assert.equal(run(['exit 7']).exitCode, 7);
    assert.equal(parseRunCommandOutput('Enable succeeded: \n[stdout]\n...cut off\n[stderr]\n').exitCode, undefined, 'no status: not trusted');
  });
});
