-- AlterTable
ALTER TABLE "Personalization" ADD COLUMN     "epoch" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "progressAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Sample" ADD COLUMN     "epoch" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "progressAt" TIMESTAMP(3);

-- Jobs the reconciler already put back carry their recovery count in their ids (-r<n>): from now on that number is
-- the epoch, so a row starts at its count (a request at the highest count among its rows).
UPDATE "Personalization" SET "epoch" = "recoveries";
UPDATE "Sample" AS s SET "epoch" = m.n FROM (SELECT "requestId", max("recoveries") AS n FROM "Sample" GROUP BY "requestId") AS m
WHERE s."requestId" = m."requestId";
