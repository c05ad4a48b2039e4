/**
 * The image's migrate role (apps/migrate, infra/k8s): the built script, run as the Job and the init
 * containers run it, against the real PostgreSQL. `deploy` applies every migration to an empty
 * database with Prisma's CLI and the compiled config; `wait` holds until the migrations the build
 * carries are applied, says which are missing or failed, and accepts a newer release's extra ones.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrationFolders } from '../apps/migrate/src/pending-migrations';
import { createEmptyDatabase, dropClonedDatabase } from './support/databases';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'dist', 'apps', 'migrate', 'src', 'main.js');

function migrate(databaseUrl: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The environment a pod gives it: DATABASE_URL and the image's settings, nothing of this clone's.
    const env = { PATH: process.env.PATH, DATABASE_URL: databaseUrl, NODE_ENV: 'production', LOG_FORMAT: 'json', HOME: path.join(ROOT, '.local', 'tmp') };
    execFile(process.execPath, [SCRIPT, ...args], { cwd: '/', env, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function sql<T extends pg.QueryResultRow>(databaseUrl: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('the migrate role (apps/migrate)', () => {
  const wanted = migrationFolders(path.join(ROOT, 'prisma', 'migrations'));
  let db = '';
  before(async () => {
    db = await createEmptyDatabase('test');
  });
  after(async () => {
    if (db) await dropClonedDatabase(db, 'test');
  });

  it('wait: on an empty database, names every migration missing and fails after its timeout', async () => {
    const r = await migrate(db, 'wait', '--timeout-seconds', '1');
    assert.equal(r.code, 1, r.stderr);
    const line = JSON.parse(r.stdout.trim().split('\n')[0]) as { msg: string; pending: string[]; failed: string[] };
    assert.deepEqual(line.pending, wanted);
    assert.deepEqual(line.failed, []);
    assert.match(r.stderr, /migrations not applied after 1 s/);
  });

  it('deploy: applies every migration with Prisma\'s CLI from any directory; wait then returns at once', async () => {
    const r = await migrate(db, 'deploy');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const applied = await sql<{ migration_name: string }>(db, 'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1');
    assert.deepEqual(applied.map((a) => a.migration_name), wanted);
    assert.deepEqual((await sql<{ n: string }>(db, "SELECT count(*)::text AS n FROM information_schema.tables WHERE table_name = 'Cluster'"))[0].n, '1', 'the schema is there');
    const again = await migrate(db, 'deploy');
    assert.equal(again.code, 0, 'a release applied again changes nothing');
    const w = await migrate(db, 'wait', '--timeout-seconds', '5');
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /every migration of this release is applied/);
  });

  it('wait: accepts a newer release\'s migration it does not know, and names a failed one it carries', async () => {
    await sql(db, "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES ('newer', 'x', '29990101000000_a_newer_release', now(), now(), 1)");
    assert.equal((await migrate(db, 'wait', '--timeout-seconds', '5')).code, 0, 'a newer schema serves an older release (expand, then contract)');

    const last = wanted[wanted.length - 1];
    await sql(db, `UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = '${last}'`);
    const r = await migrate(db, 'wait', '--timeout-seconds', '1');
    assert.equal(r.code, 1);
    const line = JSON.parse(r.stdout.trim().split('\n')[0]) as { pending: string[]; failed: string[]; hint?: string };
    assert.deepEqual(line.pending, [last]);
    assert.deepEqual(line.failed, [last]);
    assert.match(line.hint ?? '', /deployment\.md#a-failed-migration/);
  });

  it('refuses a role it does not have, saying how to call it', async () => {
    const r = await migrate(db, 'upgrade');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: node dist\/apps\/migrate\/src\/main\.js deploy \| wait/);
  });
});
