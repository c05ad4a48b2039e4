/**
 * What the Consul UI proxy vouches for whatever Consul sends: API answers never a document, the
 * UI's CSP fitted to its page.
 *
 * Run: node --test dist/apps/api/src/consul-ui/ui-headers.test.js
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { API_ANSWER_CSP, apiAnswerHeaders, inlineScriptHashes, uiAnswerHeaders, uiPageCsp } from './ui-headers';

describe('Consul UI proxy headers', () => {
  it('an API answer a browser would render (no type, HTML, XML, SVG) becomes text/plain; a JSON or binary one keeps its type', () => {
    for (const type of [undefined, '', 'text/html', 'text/html; charset=utf-8', 'application/xhtml+xml', 'image/svg+xml', 'text/xml']) {
      const h = apiAnswerHeaders(type === undefined ? {} : { 'content-type': type });
      assert.equal(h['content-type'], 'text/plain; charset=utf-8', String(type));
      assert.equal(h['x-content-type-options'], 'nosniff');
      assert.equal(h['content-security-policy'], API_ANSWER_CSP);
    }
    assert.equal(apiAnswerHeaders({ 'content-type': 'application/json' })['content-type'], 'application/json');
    assert.equal(apiAnswerHeaders({ 'content-type': 'application/octet-stream' })['content-type'], 'application/octet-stream');
    assert.match(API_ANSWER_CSP, /^sandbox; default-src 'none'/);
    // Consul's own CSP is replaced by ours, not merged with it.
    assert.equal(apiAnswerHeaders({ 'content-security-policy': "default-src *" })['content-security-policy'], API_ANSWER_CSP);
  });

  it('the UI page\'s CSP allows its own inline scripts by hash, nothing inline besides, and framing by the console only', () => {
    const a = 'var x = 1;';
    const b = '\n  CodeMirror.modeURL = {};\n';
    const page = `<html><head><script>${a}</script><script src="/ui/assets/vendor.js"></script></head><body><script type="text/javascript">${b}</script></body></html>`;
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    assert.deepEqual(inlineScriptHashes(page), [hash(a), hash(b)]);
    const csp = String(uiAnswerHeaders({ 'content-type': 'text/html' }, 'https://console.example.com', page)['content-security-policy']);
    assert.match(csp, new RegExp(`script-src 'self' ${hash(a).replace(/[+/]/g, '\\$&')} ${hash(b).replace(/[+/]/g, '\\$&')};`));
    assert.match(csp, /frame-ancestors https:\/\/console\.example\.com$/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe/);
    assert.equal(uiPageCsp('https://c.example').includes("object-src 'none'"), true);
  });
});
