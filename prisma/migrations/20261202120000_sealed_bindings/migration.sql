-- Sealed values bound to their row (issue 11, item 6). Rows already there were sealed
-- without associated data: format 1, re-sealed once by the worker at start.
ALTER TABLE "ClusterSecret" ADD COLUMN "format" INTEGER NOT NULL DEFAULT 1;

-- Snapshots sealed with their own data key (issue 11, item 7). NULL: a snapshot stored in
-- the clear before this change (refused by restore).
ALTER TABLE "Snapshot" ADD COLUMN "kekId" TEXT;
ALTER TABLE "Snapshot" ADD COLUMN "wrappedKey" BYTEA;
