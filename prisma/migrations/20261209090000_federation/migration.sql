-- Federation: a secondary names its primary, and the primary's single-use federation tokens (their hashes)
ALTER TABLE "Cluster" ADD COLUMN "primaryClusterId" UUID;
ALTER TABLE "Cluster" ADD CONSTRAINT "Cluster_primaryClusterId_fkey" FOREIGN KEY ("primaryClusterId") REFERENCES "Cluster"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
CREATE INDEX "Cluster_primaryClusterId_idx" ON "Cluster"("primaryClusterId");

CREATE TABLE "FederationToken" (
    "id" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "primaryClusterId" UUID NOT NULL,
    "secretHash" TEXT NOT NULL,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "usedAt" TIMESTAMP(3),
    "usedByClusterId" UUID,
    CONSTRAINT "FederationToken_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "FederationToken_secretHash_key" ON "FederationToken"("secretHash");
CREATE INDEX "FederationToken_primaryClusterId_idx" ON "FederationToken"("primaryClusterId");
