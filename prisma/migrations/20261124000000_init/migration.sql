-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "Cluster" (
    "id" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "subscriptionId" TEXT NOT NULL,
    "resourceGroup" TEXT NOT NULL,
    "managedResourceGroup" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "region" TEXT NOT NULL,
    "datacenter" TEXT NOT NULL,
    "consulVersion" TEXT NOT NULL,
    "tier" TEXT NOT NULL,
    "serverCount" INTEGER NOT NULL,
    "publicEndpoint" BOOLEAN NOT NULL DEFAULT false,
    "target" TEXT NOT NULL DEFAULT 'local',
    "state" TEXT NOT NULL,
    "stateReason" TEXT,
    "addressSlot" INTEGER,
    "lockedByOperationId" UUID,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "runningSince" TIMESTAMP(3),
    "deletedAt" TIMESTAMP(3),

    CONSTRAINT "Cluster_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ClusterServer" (
    "clusterId" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "address" TEXT NOT NULL,

    CONSTRAINT "ClusterServer_pkey" PRIMARY KEY ("clusterId","index")
);

-- CreateTable
CREATE TABLE "Operation" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "tenantId" TEXT NOT NULL,
    "clusterId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "mutating" BOOLEAN NOT NULL DEFAULT true,
    "params" JSONB NOT NULL DEFAULT '{}',
    "state" TEXT NOT NULL,
    "progress" INTEGER NOT NULL DEFAULT 0,
    "steps" JSONB NOT NULL DEFAULT '[]',
    "currentStep" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" JSONB,
    "result" JSONB,
    "requestedBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Operation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ClusterSecret" (
    "clusterId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kekId" TEXT NOT NULL,
    "wrappedKey" BYTEA NOT NULL,
    "iv" BYTEA NOT NULL,
    "tag" BYTEA NOT NULL,
    "ciphertext" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ClusterSecret_pkey" PRIMARY KEY ("clusterId","name")
);

-- CreateTable
CREATE TABLE "IdempotencyRecord" (
    "tenantId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "statusCode" INTEGER NOT NULL,
    "location" TEXT,
    "body" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "IdempotencyRecord_pkey" PRIMARY KEY ("tenantId","key")
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "tenantId" TEXT NOT NULL,
    "clusterId" UUID,
    "operationId" UUID,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "details" JSONB NOT NULL DEFAULT '{}',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Cluster_addressSlot_key" ON "Cluster"("addressSlot");

-- CreateIndex
CREATE INDEX "Cluster_tenantId_createdAt_idx" ON "Cluster"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "ClusterServer_address_key" ON "ClusterServer"("address");

-- CreateIndex
CREATE INDEX "Operation_clusterId_state_idx" ON "Operation"("clusterId", "state");

-- CreateIndex
CREATE INDEX "Operation_state_idx" ON "Operation"("state");

-- CreateIndex
CREATE UNIQUE INDEX "Operation_seq_key" ON "Operation"("seq");

-- CreateIndex
CREATE INDEX "AuditEvent_clusterId_seq_idx" ON "AuditEvent"("clusterId", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEvent_seq_key" ON "AuditEvent"("seq");

-- AddForeignKey
ALTER TABLE "ClusterServer" ADD CONSTRAINT "ClusterServer_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Operation" ADD CONSTRAINT "Operation_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- A name is unique per tenant, subscription and resource group among clusters
-- that are not deleted (a deleted cluster's name may be used again).
CREATE UNIQUE INDEX "Cluster_live_name_key" ON "Cluster"("tenantId", "subscriptionId", "resourceGroup", "name") WHERE "state" <> 'Deleted';
