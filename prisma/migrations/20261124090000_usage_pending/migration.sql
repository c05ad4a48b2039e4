-- Exporters claim pending usage oldest hour first: this index keeps the claim an ordered index scan
-- at any backlog size (the general index made the planner sort every pending record per claim).
DROP INDEX "UsageRecord_exportState_nextAttemptAt_idx";
CREATE INDEX "UsageRecord_pending_hour_idx" ON "UsageRecord"("hour", "id") WHERE "exportState" = 'Pending';
