-- Issue 13: clusters created by an Azure managed application, and the notifications Azure sends
-- about it. A cluster records its application and managed resource group, at most one live
-- cluster per application (a partial unique index, so a reinstalled application gets a new one).
ALTER TABLE "Cluster" ADD COLUMN "managedApplicationId" TEXT;
ALTER TABLE "Cluster" ADD COLUMN "managedResourceGroupId" TEXT;
ALTER TABLE "Cluster" ADD COLUMN "vnetCidr" TEXT;
CREATE UNIQUE INDEX "Cluster_live_managedApplicationId_key" ON "Cluster"("managedApplicationId")
  WHERE "managedApplicationId" IS NOT NULL AND "state" <> 'Deleted';

-- One row per notification received: the unique key makes a repeated one change nothing.
CREATE TABLE "ManagedAppNotification" (
    "id" UUID NOT NULL,
    "applicationId" TEXT NOT NULL,
    "eventType" TEXT NOT NULL,
    "provisioningState" TEXT NOT NULL,
    "eventTime" TIMESTAMP(3) NOT NULL,
    "outcome" TEXT NOT NULL,
    "reason" TEXT,
    "error" JSONB,
    "plan" JSONB,
    "resourceUsageId" TEXT,
    "clusterId" UUID,
    "operationId" UUID,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ManagedAppNotification_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ManagedAppNotification_applicationId_eventType_provisioningState_key"
  ON "ManagedAppNotification"("applicationId", "eventType", "provisioningState");
CREATE INDEX "ManagedAppNotification_outcome_receivedAt_idx" ON "ManagedAppNotification"("outcome", "receivedAt");
