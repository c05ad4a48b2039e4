import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';
import { createPgPool } from './pg-adapter';

export type Db = InstanceType<typeof PrismaClient>;

const pools = new WeakMap<object, pg.Pool>();

/**
 * A Prisma client on our own pg pool. An idle connection that dies (a Postgres
 * restart, a dropped test database) is an 'error' event on the pool: it is
 * logged, not fatal, and the next query opens a new connection.
 */
export function createDb(databaseUrl: string, poolSize = 10, onPoolError: (e: Error) => void = () => undefined): Db {
  const pool = createPgPool(databaseUrl, { max: poolSize });
  pool.on('error', onPoolError);
  const db = new PrismaClient({ adapter: new PrismaPg(pool) });
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
