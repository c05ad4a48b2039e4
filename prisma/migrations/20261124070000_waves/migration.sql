-- CreateTable
CREATE TABLE "Wave" (
    "id" UUID NOT NULL,
    "action" TEXT NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "selector" JSONB NOT NULL DEFAULT '{}',
    "canaries" INTEGER NOT NULL,
    "maxInFlight" INTEGER NOT NULL,
    "maxFailures" INTEGER NOT NULL,
    "state" TEXT NOT NULL,
    "stateReason" TEXT,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Wave_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WaveItem" (
    "waveId" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "clusterId" UUID NOT NULL,
    "canary" BOOLEAN NOT NULL,
    "state" TEXT NOT NULL,
    "operationId" UUID,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "WaveItem_pkey" PRIMARY KEY ("waveId","position")
);

-- AddForeignKey
ALTER TABLE "WaveItem" ADD CONSTRAINT "WaveItem_waveId_fkey" FOREIGN KEY ("waveId") REFERENCES "Wave"("id") ON DELETE CASCADE ON UPDATE CASCADE;

