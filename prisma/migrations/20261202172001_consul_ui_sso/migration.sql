-- Single sign-on from the console into a cluster's Consul UI.
-- A one-time code (found by its SHA-256) is bound to a console session, its user and one
-- cluster, and redeemed once within seconds by the UI proxy. A Consul UI session (found by the
-- SHA-256 of its cookie) holds the AccessorID of the user's own Consul ACL token, whose secret is
-- sealed in ClusterSecret ("consul-ui-token:<id>"). A revoked session keeps its row, marked,
-- until the worker has deleted the token in Consul.
-- (No semicolons in these comments: the migration engine splits statements on them.)
CREATE TABLE "ConsoleSsoCode" (
    "codeHash" TEXT NOT NULL,
    "sessionId" UUID NOT NULL,
    "clusterId" UUID NOT NULL,
    "tenantId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ConsoleSsoCode_pkey" PRIMARY KEY ("codeHash")
);
CREATE INDEX "ConsoleSsoCode_expiresAt_idx" ON "ConsoleSsoCode"("expiresAt");
CREATE INDEX "ConsoleSsoCode_sessionId_idx" ON "ConsoleSsoCode"("sessionId");
ALTER TABLE "ConsoleSsoCode" ADD CONSTRAINT "ConsoleSsoCode_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "ConsoleSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ConsoleSsoCode" ADD CONSTRAINT "ConsoleSsoCode_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "ConsulUiSession" (
    "id" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "clusterId" UUID NOT NULL,
    "consoleSessionId" UUID,
    "tenantId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "userName" TEXT NOT NULL,
    "access" TEXT NOT NULL,
    "accessorId" UUID NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),
    "revokeReason" TEXT,

    CONSTRAINT "ConsulUiSession_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ConsulUiSession_tokenHash_key" ON "ConsulUiSession"("tokenHash");
CREATE INDEX "ConsulUiSession_clusterId_idx" ON "ConsulUiSession"("clusterId");
CREATE INDEX "ConsulUiSession_consoleSessionId_idx" ON "ConsulUiSession"("consoleSessionId");
CREATE INDEX "ConsulUiSession_expiresAt_idx" ON "ConsulUiSession"("expiresAt");
ALTER TABLE "ConsulUiSession" ADD CONSTRAINT "ConsulUiSession_clusterId_fkey" FOREIGN KEY ("clusterId") REFERENCES "Cluster"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ConsulUiSession" ADD CONSTRAINT "ConsulUiSession_consoleSessionId_fkey" FOREIGN KEY ("consoleSessionId") REFERENCES "ConsoleSession"("id") ON DELETE SET NULL ON UPDATE CASCADE;
