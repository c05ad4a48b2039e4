-- Public TLS data of a cluster, outside the sealed PKI: the CA bundle clients
-- trust and the expiry dates the certificate scheduler watches. Rows made
-- before this migration have NULLs; the worker's certificate scheduler fills
-- them from the sealed PKI (only the worker holds the key-encryption key).
ALTER TABLE "Cluster" ADD COLUMN "caCertPem" TEXT,
  ADD COLUMN "caNotAfter" TIMESTAMP(3),
  ADD COLUMN "serverCertsNotAfter" TIMESTAMP(3),
  ADD COLUMN "certRotationQueuedAt" TIMESTAMP(3);
