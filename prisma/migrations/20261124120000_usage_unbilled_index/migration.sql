-- The worker counts usage records that are not billed yet (Pending, Late, Expired, Failed) for its
-- metrics on every billing tick: this index keeps that count proportional to those records, not to
-- every hour ever billed (Accepted and Duplicate, nearly all of them, are counted by the exported counter).
CREATE INDEX "UsageRecord_unbilled_idx" ON "UsageRecord"("exportState") WHERE "exportState" NOT IN ('Accepted', 'Duplicate');
