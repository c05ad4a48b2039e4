/**
 * The sign-in's return path (an open redirect, if wrong): a generated set of hostile values,
 * built from every piece a browser normalises (dot segments, percent-encoded dots and slashes,
 * backslashes, tabs and newlines, full-width and ideographic look-alikes, userinfo and scheme
 * parts). Whatever is accepted must lead nowhere but the console's own origin, however a browser
 * resolves it (as the absolute Location we send, or as the relative path it was given).
 *
 * Run: node --test dist/apps/api/src/console/return-to.test.js
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../../../libs/core/src';
import { consoleLocation, isConsolePath, safeReturnTo } from './return-to';

const ORIGIN = 'https://console.example.com';
const CALLBACK = `${ORIGIN}/auth/callback?code=c&state=s`;

const PIECES = [
  '/', '//', '\\', '.', '..', '%2e', '%2E', '%2e%2e', '%2f', '%2F', '%5c', '%5C', '%09', '%0a', '%00', '\t', '\n', '\r', ' ',
  '@', ':', '?', '#', '%', 'evil.example', 'a', 'clusters', 'javascript:', 'http:', 'https://evil.example', '\u3002', '\uff0f', '\uff3c', '%E3%80%82', '\u200b',
];

/** Accepted, or refused with the API's 400; never anything else. */
function decide(raw: string): string | undefined {
  try {
    return safeReturnTo(raw);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `refused as a ValidationError, got ${String(e)}`);
    assert.equal(e.code, 'invalid_returnTo');
    return undefined;
  }
}

describe('returnTo', () => {
  it('the values reproduced as open redirects are refused', () => {
    for (const bad of ['/%2e%2e//evil.example', '/.//evil.example', '/..//x', '/%2e//x', '/a/..//x', '/a/b/../..//x', '/%2E%2E/%2e%2e//evil.example']) {
      assert.equal(decide(bad), undefined, bad);
    }
  });

  it('a generated set of hostile values never leads off the console origin', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 12 }), (lead, parts) => {
        const raw = `${lead ? '/' : ''}${parts.join('')}`;
        const out = decide(raw);
        if (out === undefined) return;
        accepted++;
        assert.ok(isConsolePath(out), `${JSON.stringify(raw)} -> ${JSON.stringify(out)}`);
        assert.equal(safeReturnTo(out), out, 'what is kept is its own normal form');
        const location = consoleLocation(ORIGIN, out);
        assert.equal(new URL(location, CALLBACK).origin, ORIGIN, `Location ${location}`);
        assert.equal(new URL(out, CALLBACK).origin, ORIGIN, `even read as a relative reference: ${out}`);
        assert.ok(!new URL(location).pathname.startsWith('//'), `no scheme-relative look: ${location}`);
      }),
      { numRuns: 5000, seed: 19 },
    );
    assert.ok(accepted > 100, `the generator also makes values that are fine (${accepted})`);
  });

  it('ordinary console paths are kept (normalised), and a stored value that is not one redirects home', () => {
    assert.equal(safeReturnTo(undefined), '/');
    assert.equal(safeReturnTo('/clusters?view=all'), '/clusters?view=all');
    assert.equal(safeReturnTo('/a/../clusters/./x'), '/clusters/x');
    assert.equal(safeReturnTo('/sso/clusters/0b0e7c1e-2f4d-4c55-9a59-3f1d0e2a7b10?bind=abc'), '/sso/clusters/0b0e7c1e-2f4d-4c55-9a59-3f1d0e2a7b10?bind=abc');
    assert.equal(consoleLocation(ORIGIN, '//evil.example'), `${ORIGIN}/`);
    assert.equal(consoleLocation(ORIGIN, '/clusters'), `${ORIGIN}/clusters`);
  });
});
