import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';
import { createPgPool } from './pg-adapter';

export type Db = InstanceType<typeof PrismaClient>;

const pools = new WeakMap<object, pg.Pool>();

/** How long an interactive transaction may run before Prisma rolls it back (see createDb). */
export const TRANSACTION_TIMEOUT_MS = 30_000;

/**
 * A Prisma client on our own pg pool. An idle connection that dies (a Postgres
 * restart, a dropped test database) is an 'error' event on the pool: it is
 * logged, not fatal, and the next query opens a new connection.
 */
export function createDb(databaseUrl: string, poolSize = 10, onPoolError: (e: Error) => void = () => undefined): Db {
  const pool = createPgPool(databaseUrl, { max: poolSize });
  pool.on('error', onPoolError);
  // A burst of requests queues for the pool's connections instead of failing after Prisma's
  // default 2 s wait (which answered 503 to a busy API on a loaded machine); a database that is
  // really down still fails fast, on connect. A transaction runs for up to 30 s instead of
  // Prisma's 5 s: ours are a few statements, and on a machine loaded by 50 creates at once a
  // delete's six took 15 s of waiting for the CPU, which expired it (a 500 to a valid DELETE).
  const db = new PrismaClient({ adapter: new PrismaPg(pool), transactionOptions: { maxWait: 10_000, timeout: TRANSACTION_TIMEOUT_MS } });
  pools.set(db, pool);
  return db;
}

/** Disconnects Prisma and ends the pool (Prisma does not end a pool it was given). */
export async function closeDb(db: Db): Promise<void> {
  await db.$disconnect();
  const pool = pools.get(db);
  if (pool && !pool.ended) await pool.end();
}

/** A unique-constraint violation, from a Prisma model call (P2002) or a raw query (Postgres 23505). */
export function isUniqueViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const err = e as { code?: string; meta?: { code?: string; driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } }; cause?: unknown };
  if (err.code === 'P2002' || err.code === '23505') return true;
  if (err.meta?.code === '23505') return true;
  const cause = err.meta?.driverAdapterError?.cause;
  if (cause?.kind === 'UniqueConstraintViolation' || cause?.originalCode === '23505') return true;
  return /unique constraint|duplicate key value/i.test(String((e as Error).message ?? ''));
}

/** Prisma's "the record to delete (or update) does not exist" (P2025). */
export function isRecordNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === 'P2025';
}

/**
 * Takes a row out once: the row deleted by this call (a DELETE ... RETURNING), or null when it
 * was not there (already taken by someone else, or never). Two callers never both get it.
 */
export async function deleteOnce<T>(del: () => Promise<T>): Promise<T | null> {
  try {
    return await del();
  } catch (e) {
    if (isRecordNotFound(e)) return null;
    throw e;
  }
}

/**
 * PostgreSQL aborted the statement to break a deadlock (40P01) or a
 * serialization conflict (40001): it had no effect, and running it again is safe.
 */
export function isRetryableConflict(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const err = e as { code?: string; meta?: { code?: string; driverAdapterError?: { cause?: { originalCode?: string } } } };
  const codes = [err.code, err.meta?.code, err.meta?.driverAdapterError?.cause?.originalCode];
  if (codes.some((c) => c === '40P01' || c === '40001')) return true;
  return /deadlock detected|could not serialize access/i.test(String((e as Error).message ?? ''));
}

/** Node socket errors that mean the server could not be reached or the connection was cut. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** Prisma's codes for "cannot reach / lost the server / no connection in time". */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** Driver adapter error kinds of the same meaning. */
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError']);

/**
 * The database cannot be reached right now (down, restarting, cut connections,
 * no connection free in time): the request may succeed if repeated later, so
 * the API answers 503, not 500 (so does a transaction that found no free connection within
 * Prisma's wait, P2028 "Unable to start a transaction in the given time", and one that outlasted
 * its timeout, "cannot be executed on an expired transaction": it was rolled back, nothing written). Walks the error, its Prisma metadata and its
 * causes. SQLSTATE class 08 (connection exception), 57P01-57P03 (shut down,
 * crashed, starting up) and 53300 (too many connections) count too.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 6; depth++) {
    const err = cur as { code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } };
    const code = typeof err.code === 'string' ? err.code : undefined;
    if (code && (SOCKET_CODES.has(code) || PRISMA_UNAVAILABLE.has(code) || /^08/.test(code) || /^57P0[123]$/.test(code) || code === '53300')) return true;
    const adapter = err.meta?.driverAdapterError?.cause;
    if (adapter?.kind && ADAPTER_UNAVAILABLE.has(adapter.kind)) return true;
    if (adapter?.originalCode && (/^08/.test(adapter.originalCode) || /^57P0[123]$/.test(adapter.originalCode))) return true;
    const message = typeof err.message === 'string' ? err.message : '';
    if (/Can't reach database server|Unable to start a transaction in the given time|cannot be executed on an expired transaction|Connection terminated|timeout exceeded when trying to connect|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery)|Client has encountered a connection error/i.test(message)) return true;
    cur = err.cause;
  }
  return false;
}

const PG_INT8_OID = 20;
const PG_TIMESTAMP_OID = 1114;
/** The column types as Prisma's raw queries return them: int8 as bigint, timestamp (UTC, no zone) as a Date in UTC. */
const rawTypes = {
  getTypeParser(oid: number, format?: string): (v: string) => unknown {
    if (oid === PG_INT8_OID) return (v) => BigInt(v);
    if (oid === PG_TIMESTAMP_OID) return (v) => new Date(`${v.replace(' ', 'T')}Z`);
    return pg.types.getTypeParser(oid, (format ?? 'text') as 'text');
  },
};

/** The pool under a client made by createDb. */
function poolOf(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('plain SQL needs a client made by createDb');
  return pool;
}

/**
 * One SQL statement with positional parameters ($1, $2 …) straight on the
 * client's pool, without Prisma's query compiler: the worker's hot paths. Rows
 * come back as $queryRaw returns them (bigint for int8, Dates for timestamps,
 * parsed JSON). With a `name`, a prepared statement (see prepared()). Dates
 * are not passed as parameters here (node-postgres sends them in local time):
 * the statements use now() in SQL.
 */
export async function sqlQuery<T>(db: Db, text: string, values: unknown[] = [], name?: string): Promise<T[]> {
  const r = await prepared(poolOf(db), name, { text, values, types: rawTypes } as pg.QueryConfig);
  return r.rows as T[];
}

/** One connection of a plain-SQL transaction (sqlTransaction). */
export interface SqlTransaction {
  query<T>(text: string, values?: unknown[], name?: string): Promise<T[]>;
}

/**
 * A transaction in plain SQL on one connection of the client's pool, without Prisma (sqlQuery's
 * rules: rows typed as $queryRaw types them, no Date parameters): for hot paths whose statements
 * return many rows. Rolled back if `work` throws.
 */
export async function sqlTransaction<T>(db: Db, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  const client = await poolOf(db).connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const tx: SqlTransaction = {
      query: async <R>(text: string, values: unknown[] = [], name?: string) =>
        (await preparedOn(client, name, { text, values, types: rawTypes } as pg.QueryConfig)).rows as R[],
    };
    const result = await work(tx);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    try {
      await client.query('ROLLBACK');
    } catch (rollback) {
      broken = rollback as Error; // the connection is unusable: do not give it back to the pool
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

/** Bumped when a migration changed a prepared statement's result columns: the statements are prepared again under new names. */
let statementGeneration = 0;

/**
 * A query, as a prepared statement when it has a name: each connection parses
 * and plans it once (the worker's batched statements are long CTEs whose
 * planning costs more than running them). A table changed under a prepared
 * `*` (a migration while workers run) fails with "cached plan must not change
 * result type"; the statement is then prepared again under a new name.
 */
function prepared(pool: pg.Pool, name: string | undefined, config: pg.QueryConfig): Promise<pg.QueryResult> {
  return preparedOn(pool, name, config);
}

/** prepared() on a pool or on one connection of it (inside a transaction). */
async function preparedOn(on: pg.Pool | pg.PoolClient, name: string | undefined, config: pg.QueryConfig): Promise<pg.QueryResult> {
  if (!name) return on.query(config);
  const generation = statementGeneration;
  try {
    return await on.query({ ...config, name: `${name}-${generation}` });
  } catch (e) {
    if ((e as { code?: string }).code !== '0A000' || !/cached plan must not change result type/.test((e as Error).message)) throw e;
    if (statementGeneration === generation) statementGeneration++;
    return on.query({ ...config, name: `${name}-${statementGeneration}` });
  }
}

/**
 * sqlQuery for a statement whose rows join two tables' `*`: the columns up to
 * the one named `split` go to the first object, the rest to the second, so
 * that columns of the same name (id, createdAt …) do not collide.
 */
export async function sqlQuerySplit<A, B>(db: Db, split: string, text: string, values: unknown[] = [], name?: string): Promise<[A, B | null][]> {
  const r = await prepared(poolOf(db), name, { text, values, types: rawTypes, rowMode: 'array' } as pg.QueryConfig);
  const names = r.fields.map((f) => f.name);
  const at = names.indexOf(split);
  if (at < 0) throw new Error(`no column ${split} in the result`);
  const obj = (row: unknown[], from: number, to: number) => {
    const o: Record<string, unknown> = {};
    for (let i = from; i < to; i++) o[names[i]!] = row[i];
    return o;
  };
  return (r.rows as unknown as unknown[][]).map((row) => {
    const second = obj(row, at + 1, names.length);
    return [obj(row, 0, at) as A, second.id === null || second.id === undefined ? null : (second as B)];
  });
}
