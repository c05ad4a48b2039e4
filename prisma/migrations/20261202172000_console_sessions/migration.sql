-- The console's sign-in (OpenID Connect, authorization code with PKCE) and its sessions.
-- A pending login is kept from /auth/login to /auth/callback, under the SHA-256 of its state,
-- used once and for minutes only. A session is known by the SHA-256 of the cookie's value:
-- the cookie itself (and the CSRF token derived from it) is never stored.
-- (No semicolons in these comments: the migration engine splits statements on them.)
CREATE TABLE "ConsoleLogin" (
    "stateHash" TEXT NOT NULL,
    "codeVerifier" TEXT NOT NULL,
    "nonce" TEXT NOT NULL,
    "returnTo" TEXT NOT NULL,
    "redirectUri" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ConsoleLogin_pkey" PRIMARY KEY ("stateHash")
);
CREATE INDEX "ConsoleLogin_expiresAt_idx" ON "ConsoleLogin"("expiresAt");

CREATE TABLE "ConsoleSession" (
    "id" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "roles" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ConsoleSession_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ConsoleSession_tokenHash_key" ON "ConsoleSession"("tokenHash");
CREATE INDEX "ConsoleSession_tenantId_userId_idx" ON "ConsoleSession"("tenantId", "userId");
CREATE INDEX "ConsoleSession_expiresAt_idx" ON "ConsoleSession"("expiresAt");
