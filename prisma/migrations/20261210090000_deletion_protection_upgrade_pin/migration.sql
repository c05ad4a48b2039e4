-- Deletion protection: a DELETE through the API is refused while it is on (default off)
ALTER TABLE "Cluster" ADD COLUMN "deletionProtection" BOOLEAN NOT NULL DEFAULT false;
-- Version pin of automatic upgrades and upgrade waves: none, patch (same major.minor) or minor (same major)
ALTER TABLE "Cluster" ADD COLUMN "upgradePin" TEXT NOT NULL DEFAULT 'none';
-- Why a wave skipped a cluster
ALTER TABLE "WaveItem" ADD COLUMN "reason" TEXT;
