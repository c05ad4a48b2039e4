-- Public TLS data of a cluster, outside the sealed PKI: the CA bundle clients
-- trust and the expiry dates the certificate scheduler watches. Rows made
-- before this migration have NULLs, which the certificate scheduler of the
-- worker fills from the sealed PKI (only the worker holds the key-encryption key).
-- (No semicolons in these comments: the migration engine splits statements on them.)
ALTER TABLE "Cluster" ADD COLUMN "caCertPem" TEXT;
ALTER TABLE "Cluster" ADD COLUMN "caNotAfter" TIMESTAMP(3);
ALTER TABLE "Cluster" ADD COLUMN "serverCertsNotAfter" TIMESTAMP(3);
ALTER TABLE "Cluster" ADD COLUMN "certRotationQueuedAt" TIMESTAMP(3);
