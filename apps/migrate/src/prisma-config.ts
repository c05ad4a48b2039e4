/**
 * Prisma's configuration for `migrate deploy` in the image, compiled: the repository's
 * prisma.config.ts compiles to a CommonJS module whose export Prisma's loader reads as
 * `{ default, __esModule }` and refuses, so this one assigns module.exports itself. Same
 * settings (FACTS.md: the JS engine on our pg adapter, no native engine), with absolute
 * paths so it works from any working directory.
 */
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { createPgAdapter } from '../../../libs/core/src';

const root = path.resolve(__dirname, '..', '..', '..', '..');

export = defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join(root, 'prisma', 'schema.prisma'),
  migrations: { path: path.join(root, 'prisma', 'migrations') },
  adapter: async () => {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is not set');
    return createPgAdapter(url, { max: 2, idleTimeoutMillis: 50 });
  },
});
