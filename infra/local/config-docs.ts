/**
 * Writes docs/configuration.md from the configuration schema (`npm run docs:config`).
 * test/docs.test.ts fails while the file differs from what this renders.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_DOCS_FILE, renderConfigurationDocs } from '../../libs/core/src/config-docs';

const file = path.resolve(__dirname, '..', '..', '..', CONFIG_DOCS_FILE);
fs.writeFileSync(file, renderConfigurationDocs());
process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
