import { randomUUID } from 'node:crypto';
import { Prisma } from '../generated/prisma/client';
import { dimensionForTier } from '../catalog';

/**
 * Billable time, written in the same transaction as the cluster change that
 * starts or stops it, so billing can never disagree with the cluster's history:
 * a cluster is billable from the moment it first runs until its delete is
 * requested, on its tier's dimension at each moment.
 */
type Tx = Prisma.TransactionClient;

/** Opens a segment for the cluster's tier at `at`, unless one is open already. */
export async function openSegment(tx: Tx, clusterId: string, tier: string, at: Date): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO "BillingSegment" ("id", "clusterId", "dimension", "startedAt")
    VALUES (${randomUUID()}::uuid, ${clusterId}::uuid, ${dimensionForTier(tier)}, ${at})
    ON CONFLICT ("clusterId") WHERE "endedAt" IS NULL DO NOTHING`;
}

/** The UPDATE closing the cluster's open segment at `at`, as a statement or one member (a CTE) of the caller's. */
export function closeSegmentSql(clusterId: string, at: Date): Prisma.Sql {
  return Prisma.sql`UPDATE "BillingSegment" SET "endedAt" = GREATEST("startedAt", ${at}) WHERE "clusterId" = ${clusterId}::uuid AND "endedAt" IS NULL`;
}

/** Closes the cluster's open segment at `at`; true when there was one. */
export async function closeSegment(tx: Tx, clusterId: string, at: Date): Promise<boolean> {
  const n = await tx.$executeRaw(closeSegmentSql(clusterId, at));
  return n > 0;
}

/** Whether the cluster was ever billable (it has run at least once). */
export async function everBillable(tx: Tx, clusterId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ n: number }[]>`SELECT 1 AS n FROM "BillingSegment" WHERE "clusterId" = ${clusterId}::uuid LIMIT 1`;
  return rows.length > 0;
}
