-- One row per scheduler and period: the period is claimed by one worker (a lease it renews while it
-- runs), taken over by another once the lease lapses unfinished, and marked finished once
CREATE TABLE "ScheduleRun" (
    "schedule" TEXT NOT NULL,
    "periodStart" TIMESTAMP(3) NOT NULL,
    "periodMs" INTEGER NOT NULL,
    "runs" INTEGER NOT NULL DEFAULT 1,
    "claimId" UUID NOT NULL,
    "claimedBy" TEXT[] NOT NULL,
    "leaseUntil" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),
    "finishedBy" TEXT,
    "error" TEXT,

    CONSTRAINT "ScheduleRun_pkey" PRIMARY KEY ("schedule", "periodStart")
);

-- The periods not finished yet (what a takeover looks for), kept small: finished rows are not in it
CREATE INDEX "ScheduleRun_unfinished_idx" ON "ScheduleRun" ("schedule", "periodStart") WHERE "finishedAt" IS NULL;
