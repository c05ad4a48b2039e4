-- AlterTable
ALTER TABLE "Cluster" ADD COLUMN     "lastScheduledSnapshotAt" TIMESTAMP(3),
ADD COLUMN     "snapshotIntervalHours" INTEGER NOT NULL DEFAULT 24,
ADD COLUMN     "snapshotRetention" INTEGER NOT NULL DEFAULT 30;

-- CreateTable
CREATE TABLE "Snapshot" (
    "id" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "clusterId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "blobKey" TEXT NOT NULL,
    "size" BIGINT,
    "sha256" TEXT,
    "consulIndex" BIGINT,
    "operationId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Snapshot_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Snapshot_clusterId_createdAt_idx" ON "Snapshot"("clusterId", "createdAt");

-- AddForeignKey
ALTER TABLE "Snapshot" ADD CONSTRAINT "Snapshot_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;

