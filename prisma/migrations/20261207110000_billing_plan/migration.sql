-- The marketplace plan a managed application was bought with: its usage is metered under that
-- plan's id (the marketplace refuses an event for another plan), and its tier is the plan's.
ALTER TABLE "Cluster" ADD COLUMN "billingPlanId" TEXT;
-- Clusters made from a notification before: the plan their notification carried.
UPDATE "Cluster" c SET "billingPlanId" = n."plan"->>'name'
FROM "ManagedAppNotification" n
WHERE n."clusterId" = c."id" AND n."outcome" = 'created' AND n."plan" ? 'name' AND c."billingPlanId" IS NULL;
