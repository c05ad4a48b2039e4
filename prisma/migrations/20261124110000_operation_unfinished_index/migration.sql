-- Operation indexes: a partial index on unfinished operations by cluster and
-- seq replaces the indexes that led with state. With state first, a plan made
-- while few operations were unfinished (a wave then queues a thousand) read
-- every unfinished operation once per operation claimed.
DROP INDEX "Operation_clusterId_state_idx";
DROP INDEX "Operation_state_idx";
CREATE INDEX "Operation_clusterId_seq_idx" ON "Operation"("clusterId", "seq");
CREATE INDEX "Operation_unfinished_idx" ON "Operation"("clusterId", "seq") WHERE "state" IN ('Queued', 'Running');
