/**
 * A stage test bed: the tiny random-weight bundle, the example input (ball + box) uploaded to a local
 * BlobStore, and a personalization row on the `tiny` preset.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle } from '@dynasyn/diffusion';
import { createExampleInput, resolveOptions, type OptionOverrides } from '@dynasyn/dynasyn';
import { createBlobStore } from '@dynasyn/storage';
import type { PersonalizationJob, StageDeps } from '../ports.js';
import { MemoryStageDb } from './memory-db.js';

export interface StageBed {
  root: string;
  deps: StageDeps & { db: MemoryStageDb };
  addJob(id: string, overrides?: OptionOverrides, webhookUrl?: string | null): Promise<PersonalizationJob>;
  cleanup(): void;
}

export async function createStageBed(): Promise<StageBed> {
  const root = mkdtempSync(join(tmpdir(), 'dynasyn-stages-'));
  const backbone = join(root, 'bundle');
  await createTinyBundle(backbone, { seed: 0 });
  const storage = createBlobStore(`file://${join(root, 'storage')}`);
  const files = await createExampleInput(join(root, 'input'));
  const db = new MemoryStageDb();
  const deps = { db, storage, backbone, workDir: join(root, 'work'), progressIntervalMs: 200, cancelPollMs: 100, intraOpNumThreads: 1 };
  return {
    root, deps,
    async addJob(id, overrides = {}, webhookUrl = 'https://hooks.example/dynasyn') {
      const tenantId = 'tenant1';
      const imageKey = `tenants/${tenantId}/uploads/${id}/image.png`;
      await storage.put(imageKey, readFileSync(files.image), { contentType: 'image/png' });
      const subjects = [];
      for (const [i, m] of files.masks.entries()) {
        const maskKey = `tenants/${tenantId}/uploads/${id}/mask_${i}.png`;
        await storage.put(maskKey, readFileSync(m), { contentType: 'image/png' });
        subjects.push({ classWord: files.classWords[i]!, maskKey });
      }
      const job: PersonalizationJob = {
        id, tenantId, status: 'queued', imageKey, subjects, options: resolveOptions('tiny', overrides), webhookUrl, cancelRequested: false,
      };
      db.add(job);
      return job;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
