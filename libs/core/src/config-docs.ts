import { globalRegistry, type ZodType } from 'zod';
import { configSchema } from './config';

/** Where the rendered table lives, relative to the repository root, and the command that writes it. */
export const CONFIG_DOCS_FILE = 'docs/configuration.md';
export const CONFIG_DOCS_COMMAND = 'npm run docs:config';

/**
 * docs/configuration.md, rendered from the configuration schema: one row per variable, in the
 * schema's order, with its default and its description (`.describe()`). A default that is not
 * the literal value (a path under the runtime folder, one computed from other settings) is
 * written as the field's `shownDefault` (`.meta()`). A field without a description is an error,
 * so a new variable cannot be left out of the documents.
 */
export function renderConfigurationDocs(): string {
  const rows = Object.entries(configSchema.shape).map(([name, field]) => {
    const meta = globalRegistry.get(field as ZodType) ?? {};
    if (typeof meta.description !== 'string' || !meta.description) throw new Error(`${name} has no description: add .describe('...') to it in libs/core/src/config.ts`);
    return `| \`${name}\` | ${cell(shownDefault(field as ZodType, meta.shownDefault))} | ${cell(meta.description)} |`;
  });
  return [
    '# Configuration',
    '',
    `<!-- Generated from libs/core/src/config.ts by \`${CONFIG_DOCS_COMMAND}\`; edit the schema's descriptions, not this file. -->`,
    '',
    'Read once at start-up from the environment and validated; a wrong value stops',
    'the process with a message naming the variable (`libs/core/src/config.ts`).',
    'The defaults make `npm start` work on one machine; an empty value counts as unset.',
    '',
    '| Variable | Default | Meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

function shownDefault(field: ZodType, shown: unknown): string {
  if (typeof shown === 'string') return shown;
  const def = field.def as { type: string; defaultValue?: unknown };
  if (def.type !== 'default') return 'none';
  const value = def.defaultValue;
  return value === '' ? 'empty' : `\`${String(value)}\``;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
