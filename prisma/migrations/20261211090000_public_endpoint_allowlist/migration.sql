-- The public endpoint's IP allowlist: [{ cidr, description }], kept while the endpoint is off
ALTER TABLE "Cluster" ADD COLUMN "ipAllowlist" JSONB NOT NULL DEFAULT '[]';
-- Where the public endpoint answers once the worker made it (a loopback address locally, the public IP on Azure), null otherwise
ALTER TABLE "Cluster" ADD COLUMN "publicAddress" TEXT;
