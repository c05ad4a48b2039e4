import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Databases of their own for test files and benchmarks: cloned from the
 * migrated template that infra/local/app.sh (prepare_template_db) keeps, and
 * dropped afterwards. Only databases with the expected prefix are ever dropped.
 */
function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through npm test or npm run bench`);
  return v;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: required('TEST_ADMIN_DATABASE_URL') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function cloneTemplateDatabase(prefix: 'test' | 'bench'): Promise<string> {
  return createDatabase(prefix, required('TEST_TEMPLATE_DATABASE'));
}

/** A database with no schema at all (what a first deployment's migration Job meets); dropped like a clone. */
export async function createEmptyDatabase(prefix: 'test' | 'bench'): Promise<string> {
  return createDatabase(prefix);
}

async function createDatabase(prefix: 'test' | 'bench', template?: string): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`));
  const url = new URL(required('TEST_ADMIN_DATABASE_URL'));
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropClonedDatabase(databaseUrl: string, prefix: 'test' | 'bench'): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  if (!new RegExp(`^${prefix}_[0-9a-f]+$`).test(name)) throw new Error(`refusing to drop ${name}: not a ${prefix} database`);
  // FORCE cannot end an autovacuum worker's connection (not ours to signal: 42501) that a
  // test's bulk writes started: it ends by itself shortly, so ask again until it has.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== '42501' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
