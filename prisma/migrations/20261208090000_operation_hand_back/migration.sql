-- A long target change (an ARM deployment) hands its operation's job back to the queue between
-- polls instead of holding a worker slot: the step the next claim resumes at, and the change
-- waited on with when it first answered in-progress (its deadline counts from then).
ALTER TABLE "Operation" ADD COLUMN "resumeStep" TEXT;
ALTER TABLE "Operation" ADD COLUMN "targetChange" TEXT;
ALTER TABLE "Operation" ADD COLUMN "targetChangeSince" TIMESTAMP(3);
