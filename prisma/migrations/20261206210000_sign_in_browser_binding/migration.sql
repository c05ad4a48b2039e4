-- Sign-ins bound to the browser that started them: a pending console login and a Consul UI
-- sign-in code keep the SHA-256 of a random value held in a __Host- cookie of the browser that
-- began them. Rows from before cannot be bound to any browser: they are short-lived (10 min,
-- 30 s) and dropped, so such a sign-in is simply started again.
DELETE FROM "ConsoleLogin";
DELETE FROM "ConsoleSsoCode";
ALTER TABLE "ConsoleLogin" ADD COLUMN "browserHash" TEXT NOT NULL;
ALTER TABLE "ConsoleSsoCode" ADD COLUMN "browserHash" TEXT NOT NULL;
