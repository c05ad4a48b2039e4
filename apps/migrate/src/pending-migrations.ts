import fs from 'node:fs';
import pg from 'pg';

/** What the database lacks of the migrations a build carries. */
export interface MigrationState {
  /** Migration folders the database has not finished applying, in order. */
  pending: string[];
  /** Of those, the ones Prisma recorded as started and failed: `migrate deploy` refuses to go on until someone resolves them. */
  failed: string[];
}

/** The migration folders of `prisma/migrations` (Prisma applies them in name order). */
export function migrationFolders(migrationsDir: string): string[] {
  return fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(`${migrationsDir}/${e.name}/migration.sql`))
    .map((e) => e.name)
    .sort();
}

/**
 * Compares the folders with Prisma's own record (`_prisma_migrations`: finished, not rolled back).
 * A migration the database has and the build does not (a newer release's) is not ours to judge:
 * releases migrate expand-then-contract, so an older build still runs on a newer schema.
 */
export async function migrationState(databaseUrl: string, migrationsDir: string): Promise<MigrationState> {
  const wanted = migrationFolders(migrationsDir);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const table = await client.query<{ exists: boolean }>("SELECT to_regclass('_prisma_migrations') IS NOT NULL AS exists");
    if (!table.rows[0]?.exists) return { pending: wanted, failed: [] };
    const rows = await client.query<{ migration_name: string; finished: boolean; rolled_back: boolean }>(
      'SELECT migration_name, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back FROM _prisma_migrations',
    );
    const applied = new Set(rows.rows.filter((r) => r.finished && !r.rolled_back).map((r) => r.migration_name));
    const failed = new Set(rows.rows.filter((r) => !r.finished && !r.rolled_back).map((r) => r.migration_name));
    const pending = wanted.filter((m) => !applied.has(m));
    return { pending, failed: pending.filter((m) => failed.has(m)) };
  } finally {
    await client.end();
  }
}
