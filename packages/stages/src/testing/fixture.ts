/**
 * A stage test bed: the tiny random-weight bundle, the example input (ball + box) uploaded to a local
 * BlobStore, a fresh migrated Postgres database with one tenant, and personalization rows on the `tiny` preset.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle } from '@dynasyn/diffusion';
import { createExampleInput, type OptionOverrides } from '@dynasyn/dynasyn';
import { createBlobStore } from '@dynasyn/storage';
import { createDb, createScratchDatabase, migrate, type Db } from '@dynasyn/db';
import { stageDbFrom } from '../db-adapter.js';
import type { StageDeps } from '../ports.js';

/** Bundle, example input, local storage. */
async function common() {
  const root = mkdtempSync(join(tmpdir(), 'dynasyn-stages-'));
  const backbone = join(root, 'bundle');
  await createTinyBundle(backbone, { seed: 0 });
  const storageUrl = `file://${join(root, 'storage')}`;
  const storage = createBlobStore(storageUrl);
  const files = await createExampleInput(join(root, 'input'));
  const settings = { backbone, workDir: join(root, 'work'), progressIntervalMs: 200, cancelPollMs: 100, intraOpNumThreads: 1 };
  const upload = async (tenantId: string, id: string) => {
    const imageKey = `tenants/${tenantId}/uploads/${id}/image.png`;
    await storage.put(imageKey, readFileSync(files.image), { contentType: 'image/png' });
    const subjects = [];
    for (const [i, m] of files.masks.entries()) {
      const maskKey = `tenants/${tenantId}/uploads/${id}/mask_${i}.png`;
      await storage.put(maskKey, readFileSync(m), { contentType: 'image/png' });
      subjects.push({ classWord: files.classWords[i]!, maskKey });
    }
    return { imageKey, subjects };
  };
  return { root, storage, storageUrl, settings, upload };
}

export interface PgStageBed {
  root: string;
  /** The scratch database's URL. */
  databaseUrl: string;
  /** STORAGE_URL of the local store. */
  storageUrl: string;
  db: Db;
  tenantId: string;
  /** Delivery ids the stages enqueued (the `webhook.deliver` jobs). */
  enqueued: string[];
  deps: StageDeps;
  addJob(overrides?: OptionOverrides, webhookUrl?: string | null): Promise<string>;
  cleanup(): Promise<void>;
}

/** The bed on a fresh Postgres database (migrated), through stageDbFrom. */
export async function createPgStageBed(adminUrl = 'postgresql://postgres@127.0.0.1:5432/postgres'): Promise<PgStageBed> {
  const c = await common();
  const scratch = await createScratchDatabase(adminUrl);
  await migrate(scratch.url);
  const db = createDb(scratch.url);
  const { tenant } = await db.tenants.create('stages test');
  const enqueued: string[] = [];
  const deps: StageDeps = {
    ...c.settings,
    storage: c.storage,
    db: stageDbFrom(db, async (id) => {
      enqueued.push(id);
    }),
  };
  return {
    root: c.root,
    databaseUrl: scratch.url,
    storageUrl: c.storageUrl,
    db,
    tenantId: tenant.id,
    enqueued,
    deps,
    async addJob(overrides = {}, webhookUrl = null) {
      const id = randomUUID();
      const { imageKey, subjects } = await c.upload(tenant.id, id);
      await db.personalizations.create({ id, tenantId: tenant.id, subjects, imageKey, options: { preset: 'tiny', ...overrides } as object, webhookUrl });
      return id;
    },
    async cleanup() {
      await db.close();
      await scratch.drop();
      rmSync(c.root, { recursive: true, force: true });
    },
  };
}
