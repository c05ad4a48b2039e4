import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { createPgAdapter } from './libs/core/src/persistence/pg-adapter';

// Prisma 6.19 with the JS engine: no native engine download is needed (FACTS.md).
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  adapter: async () => createPgAdapter(requireDatabaseUrl(), { max: 2, idleTimeoutMillis: 50 }),
});

function requireDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set (source .local/env, or run npm start once)');
  return url;
}
