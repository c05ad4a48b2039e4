-- Fencing (issue 11, item 5): every claim has an owner, a claim id and a lease.
ALTER TABLE "Operation" ADD COLUMN "claimedBy" TEXT,
  ADD COLUMN "claimId" UUID,
  ADD COLUMN "leaseUntil" TIMESTAMP(3);
