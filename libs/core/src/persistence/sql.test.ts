import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dropTestDatabase, testConfig } from '../../../../test/support/stack';
import { closeDb, createDb, sqlQuery, sqlQuerySplit, type Db } from './prisma';

// The worker's plain-SQL path against real PostgreSQL: the types it returns,
// the split of two tables' columns, and prepared statements surviving a
// migration that changes their columns.
describe('plain SQL (sqlQuery)', () => {
  let url: string;
  let db: Db;

  before(async () => {
    url = (await testConfig({})).DATABASE_URL;
    // One connection: the prepared statement is certainly the one used again.
    db = createDb(url, 1);
    await sqlQuery(db, `CREATE TABLE "t" ("id" int PRIMARY KEY, "big" bigint, "at" timestamp(3), "doc" jsonb)`);
    await sqlQuery(db, `CREATE TABLE "u" ("id" int PRIMARY KEY, "tId" int, "name" text)`);
    await sqlQuery(db, `INSERT INTO "t" VALUES (1, 9007199254740993, '2026-11-24 06:00:00.123', '{"a":[1]}'), (2, 1, NULL, NULL)`);
    await sqlQuery(db, `INSERT INTO "u" VALUES (10, 1, 'x')`);
  });
  after(async () => {
    await closeDb(db);
    await dropTestDatabase(url);
  });

  it('returns int8 as bigint, a timestamp as that instant in UTC, and JSON parsed', async () => {
    const [row] = await sqlQuery<{ big: bigint; at: Date; doc: unknown }>(db, `SELECT * FROM "t" WHERE "id" = $1`, [1]);
    assert.equal(row!.big, 9007199254740993n);
    assert.equal(row!.at.toISOString(), '2026-11-24T06:00:00.123Z');
    assert.deepEqual(row!.doc, { a: [1] });
  });

  it('splits two tables\' columns at the marker, and gives null for a missing joined row', async () => {
    const rows = await sqlQuerySplit<{ id: number }, { id: number; name: string }>(db, '__u', `
      SELECT t.*, NULL AS "__u", u.* FROM "t" LEFT JOIN "u" ON u."tId" = t."id" ORDER BY t."id"`);
    assert.deepEqual(rows.map(([t, u]) => [t.id, u?.id ?? null, u?.name ?? null]), [[1, 10, 'x'], [2, null, null]]);
  });

  it('a prepared statement whose columns a migration changed is prepared again, not failed', async () => {
    const read = () => sqlQuery<Record<string, unknown>>(db, `SELECT * FROM "t" WHERE "id" = $1`, [2], 'test-read-t');
    assert.deepEqual(Object.keys((await read())[0]!), ['id', 'big', 'at', 'doc']);
    await sqlQuery(db, `ALTER TABLE "t" ADD COLUMN "extra" text DEFAULT 'new'`);
    const [row] = await read();
    assert.equal(row!.extra, 'new');
  });
});
