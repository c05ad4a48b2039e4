-- AlterTable
ALTER TABLE "Cluster" ADD COLUMN     "lastAutoUpgradeAt" TIMESTAMP(3),
ADD COLUMN     "upgradeMode" TEXT NOT NULL DEFAULT 'manual',
ADD COLUMN     "upgradeWindow" JSONB;

-- CreateTable
CREATE TABLE "BillingSegment" (
    "id" UUID NOT NULL,
    "clusterId" UUID NOT NULL,
    "dimension" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "BillingSegment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageRecord" (
    "id" UUID NOT NULL,
    "clusterId" UUID NOT NULL,
    "dimension" TEXT NOT NULL,
    "hour" TIMESTAMP(3) NOT NULL,
    "minutes" INTEGER NOT NULL,
    "tenantId" TEXT NOT NULL,
    "subscriptionId" TEXT NOT NULL,
    "resourceGroup" TEXT NOT NULL,
    "clusterName" TEXT NOT NULL,
    "resourceUri" TEXT NOT NULL,
    "planId" TEXT NOT NULL,
    "unitPriceMicros" BIGINT NOT NULL,
    "exportState" TEXT NOT NULL DEFAULT 'Pending',
    "exportStatus" TEXT,
    "exporter" TEXT,
    "usageEventId" TEXT,
    "exportAttempts" INTEGER NOT NULL DEFAULT 0,
    "exportError" TEXT,
    "nextAttemptAt" TIMESTAMP(3),
    "leaseUntil" TIMESTAMP(3),
    "exportedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageRecord_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MeteringCursor" (
    "id" TEXT NOT NULL,
    "closedThrough" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "MeteringCursor_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "BillingSegment_clusterId_startedAt_idx" ON "BillingSegment"("clusterId", "startedAt");

-- CreateIndex
CREATE INDEX "BillingSegment_endedAt_idx" ON "BillingSegment"("endedAt");

-- CreateIndex
CREATE INDEX "UsageRecord_exportState_nextAttemptAt_idx" ON "UsageRecord"("exportState", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "UsageRecord_tenantId_hour_idx" ON "UsageRecord"("tenantId", "hour");

-- CreateIndex
CREATE INDEX "UsageRecord_hour_idx" ON "UsageRecord"("hour");

-- CreateIndex
CREATE UNIQUE INDEX "UsageRecord_clusterId_dimension_hour_key" ON "UsageRecord"("clusterId", "dimension", "hour");


-- At most one open billing segment per cluster.
CREATE UNIQUE INDEX "BillingSegment_one_open_per_cluster" ON "BillingSegment"("clusterId") WHERE "endedAt" IS NULL;
