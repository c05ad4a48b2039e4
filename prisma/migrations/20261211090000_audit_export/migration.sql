-- The writing transaction of each audit event: the export reads only events whose transaction ended
-- before every one still running (pg_snapshot_xmin), in (txid, seq) order. Existing rows get the
-- migration's own transaction id, so they come first, in seq order
ALTER TABLE "AuditEvent" ADD COLUMN "txid" BIGINT NOT NULL DEFAULT (pg_current_xact_id())::text::bigint;
CREATE INDEX "AuditEvent_clusterId_txid_seq_idx" ON "AuditEvent"("clusterId", "txid", "seq");

-- A cluster's audit export (the SAS is a sealed cluster secret, not a column)
CREATE TABLE "AuditExport" (
    "clusterId" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "auth" TEXT NOT NULL,
    "containerUrl" TEXT NOT NULL,
    "sasExpiresAt" TIMESTAMP(3),
    "configuredAt" TIMESTAMP(3) NOT NULL,
    "configuredBy" TEXT NOT NULL,
    "cursorTxid" BIGINT NOT NULL DEFAULT 0,
    "cursorSeq" BIGINT NOT NULL DEFAULT 0,
    "lastEventId" UUID,
    "lastEventAt" TIMESTAMP(3),
    "lastBlob" TEXT,
    "lastExportedAt" TIMESTAMP(3),
    "lastErrorCode" TEXT,
    "lastErrorMessage" TEXT,
    "lastErrorAt" TIMESTAMP(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "leaseOwner" TEXT,
    "leaseUntil" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AuditExport_pkey" PRIMARY KEY ("clusterId")
);
CREATE INDEX "AuditExport_enabled_nextAttemptAt_idx" ON "AuditExport"("enabled", "nextAttemptAt");

-- Committed bytes of each hour blob in each container: what an append's position condition is checked against
CREATE TABLE "AuditExportBlob" (
    "clusterId" UUID NOT NULL,
    "container" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "length" BIGINT NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AuditExportBlob_pkey" PRIMARY KEY ("clusterId", "container", "name")
);
