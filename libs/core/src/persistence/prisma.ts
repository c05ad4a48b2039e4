import { PrismaClient } from '../generated/prisma/client';
import { createPgAdapter } from './pg-adapter';

export type Db = InstanceType<typeof PrismaClient>;

export function createDb(databaseUrl: string, poolSize = 10): Db {
  return new PrismaClient({ adapter: createPgAdapter(databaseUrl, { max: poolSize }) });
}

/** Prisma's unique-constraint violation. */
export function isUniqueViolation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === 'P2002';
}
