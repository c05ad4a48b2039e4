-- The Azure target: each cluster has a VNet of its own, so two clusters may hold the same
-- private address. Loopback addresses of the local target stay apart by their address slot.
DROP INDEX "ClusterServer_address_key";
CREATE UNIQUE INDEX "ClusterServer_clusterId_address_key" ON "ClusterServer"("clusterId", "address");

-- The poller states of the ARM deployments an operation started, by deployment name
-- (a restarted worker resumes them instead of deploying again).
ALTER TABLE "Operation" ADD COLUMN "targetState" JSONB NOT NULL DEFAULT '{}';
