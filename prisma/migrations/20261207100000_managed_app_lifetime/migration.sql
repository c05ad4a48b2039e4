-- A managed application's notifications are processed once per lifetime of the application,
-- not once forever: an application deleted and created again under the same id is new. The
-- lifetime is the application's managed resource group id, lower case (see
-- NotificationsService.lifetime). Rows written before: the managed resource group of their
-- cluster, '' without one.
ALTER TABLE "ManagedAppNotification" ADD COLUMN "lifetime" TEXT NOT NULL DEFAULT '';
UPDATE "ManagedAppNotification" n SET "lifetime" = lower(c."managedResourceGroupId")
  FROM "Cluster" c WHERE c."id" = n."clusterId" AND c."managedResourceGroupId" IS NOT NULL;
ALTER TABLE "ManagedAppNotification" ALTER COLUMN "lifetime" DROP DEFAULT;

-- The old key, under the name PostgreSQL gave it (identifiers are cut at 63 characters).
DROP INDEX "ManagedAppNotification_applicationId_eventType_provisioningStat";
CREATE UNIQUE INDEX "ManagedAppNotification_lifetime_key"
  ON "ManagedAppNotification"("applicationId", "lifetime", "eventType", "provisioningState");
