-- AlterTable
ALTER TABLE "Cluster" ADD COLUMN     "health" TEXT NOT NULL DEFAULT 'unknown',
ADD COLUMN     "healthCheckedAt" TIMESTAMP(3),
ADD COLUMN     "healthReason" TEXT;

