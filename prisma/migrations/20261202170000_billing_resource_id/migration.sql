-- Issue 11 item 3: usage is metered against an identity that cannot collide and that a tenant
-- cannot choose for another (was: a resource URI built from the caller's subscription, resource
-- group and name, unique only within a tenant).
ALTER TABLE "Cluster" ADD COLUMN "billingResourceId" TEXT NOT NULL DEFAULT (gen_random_uuid())::text;
CREATE UNIQUE INDEX "Cluster_billingResourceId_key" ON "Cluster"("billingResourceId");

ALTER TABLE "UsageRecord" RENAME COLUMN "resourceUri" TO "resourceId";

-- Hours not yet billed move to the new identity. Hours the marketplace already took keep the
-- resource they were accepted under (reconciliation compares against that), except a record that
-- repeats another's (resource, dimension, hour), the collision this migration removes.
UPDATE "UsageRecord" u SET "resourceId" = c."billingResourceId"
FROM "Cluster" c
WHERE c."id" = u."clusterId"
  AND (u."exportState" NOT IN ('Accepted', 'Duplicate')
       OR EXISTS (SELECT 1 FROM "UsageRecord" o
                  WHERE o."resourceId" = u."resourceId" AND o."dimension" = u."dimension" AND o."hour" = u."hour"
                    AND (o."createdAt", o."id") < (u."createdAt", u."id")));

CREATE UNIQUE INDEX "UsageRecord_resourceId_dimension_hour_key" ON "UsageRecord"("resourceId", "dimension", "hour");
