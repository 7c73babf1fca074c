-- AlterTable
ALTER TABLE "Personalization" ADD COLUMN     "recoveries" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "Sample" ADD COLUMN     "recoveries" INTEGER NOT NULL DEFAULT 0;
