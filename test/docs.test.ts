import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_DOCS_COMMAND, CONFIG_DOCS_FILE, renderConfigurationDocs } from '../libs/core/src/config-docs';
import { configSchema } from '../libs/core/src';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const DOCUMENTS = ['README.md', 'BENCHMARKS.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const line of withoutCode(markdown).split('\n')) {
    const m = /^#{1,6} (.+)$/.exec(line);
    if (m) out.add(m[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return out;
}

/** The text with fenced blocks and inline code blanked, so `[a](b)` inside code is not a link. */
function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '``');
}

describe('documents', () => {
  it(`${CONFIG_DOCS_FILE} is what the configuration schema renders`, () => {
    assert.equal(read(CONFIG_DOCS_FILE), renderConfigurationDocs(), `${CONFIG_DOCS_FILE} is out of date with libs/core/src/config.ts: run \`${CONFIG_DOCS_COMMAND}\` and commit the result`);
  });

  it('every configuration variable has a row with a description', () => {
    const doc = read(CONFIG_DOCS_FILE);
    for (const name of Object.keys(configSchema.shape)) assert.match(doc, new RegExp(`^\\| \`${name}\` \\| [^|]+ \\| .+ \\|$`, 'm'), name);
  });

  it('every relative link in README.md, BENCHMARKS.md and docs/*.md names a file (and heading) that exists', () => {
    const broken: string[] = [];
    for (const doc of DOCUMENTS) {
      const text = read(doc);
      for (const m of withoutCode(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/i.test(target)) continue;
        const [file, anchor] = target.split('#');
        const resolved = file ? path.join(path.dirname(doc), decodeURIComponent(file)) : doc;
        if (!fs.existsSync(path.join(ROOT, resolved))) broken.push(`${doc}: ${target} (no file ${resolved})`);
        else if (anchor && resolved.endsWith('.md') && !anchors(read(resolved)).has(anchor)) broken.push(`${doc}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('no document links outside the repository', () => {
    for (const doc of DOCUMENTS) {
      for (const m of withoutCode(read(doc)).matchAll(/\]\(([^)\s#]+)/g)) {
        if (/^[a-z]+:/i.test(m[1])) continue;
        const resolved = path.resolve(ROOT, path.dirname(doc), m[1]);
        assert.ok(resolved.startsWith(ROOT + path.sep), `${doc}: ${m[1]} is outside the repository`);
      }
    }
  });
});
