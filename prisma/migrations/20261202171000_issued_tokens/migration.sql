-- Tokens customers made through the control plane (POST /v1/clusters/{id}/tokens), never their secrets:
-- a token's secret waits sealed in ClusterSecret (issued-token:<operation id>) until it is collected once,
-- and an uncollected token is revoked in Consul by the worker once its collection window has passed.
-- (No semicolons in these comments: the migration engine splits statements on them.)
CREATE TABLE "IssuedToken" (
    "accessorId" UUID NOT NULL,
    "clusterId" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "operationId" UUID NOT NULL,
    "description" TEXT NOT NULL,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "state" TEXT NOT NULL,
    "collectBy" TIMESTAMP(3),
    "collectedAt" TIMESTAMP(3),
    "collectedBy" TEXT,
    "revokeRequestedAt" TIMESTAMP(3),
    "revokeReason" TEXT,
    "revokeOperationId" UUID,
    "revokedAt" TIMESTAMP(3),
    CONSTRAINT "IssuedToken_pkey" PRIMARY KEY ("accessorId")
);
CREATE UNIQUE INDEX "IssuedToken_operationId_key" ON "IssuedToken"("operationId");
CREATE INDEX "IssuedToken_clusterId_createdAt_idx" ON "IssuedToken"("clusterId", "createdAt");
-- What the worker's token sweeper looks for: tokens not collected and not revoked (few at any time).
CREATE INDEX "IssuedToken_uncollected_idx" ON "IssuedToken"("clusterId") WHERE "collectedAt" IS NULL AND "state" <> 'Revoked';
ALTER TABLE "IssuedToken" ADD CONSTRAINT "IssuedToken_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;
