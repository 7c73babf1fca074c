/**
 * Keeps the trainer's checkpoint in storage: the trainer rewrites `checkpoints/checkpoint.safetensors` every K
 * steps and at phase ends; each change is copied aside at once (so the upload never reads a file being
 * rewritten) and uploaded in the background, one upload at a time. A worker killed at any moment leaves in
 * storage the last checkpoint that was completely written before.
 */
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runPrefix, type PersonalizationJob, type StageDeps } from '@dynasyn/stages';

const FILE = 'checkpoint.safetensors';

export function checkpointSync(deps: StageDeps, job: PersonalizationJob, dir: string): { poll: () => void; flush: () => Promise<void> } {
  const file = join(dir, FILE);
  let seen = existsSync(file) ? statSync(file).mtimeMs : 0;
  let n = 0;
  let chain = Promise.resolve();
  let failure: Error | undefined;
  return {
    poll: () => {
      if (!existsSync(file)) return;
      const m = statSync(file).mtimeMs;
      if (m === seen) return;
      seen = m;
      const snapshot = join(dir, `.upload-${n++ % 2}`);
      copyFileSync(file, snapshot);
      chain = chain.then(async () => {
        const b = await deps.storage.put(`${runPrefix(job)}/checkpoints/${FILE}`, readFileSync(snapshot), { contentType: 'application/octet-stream' });
        await deps.db.recordArtifact({ personalizationId: job.id, kind: 'checkpoint', key: b.key, sha256: b.sha256, size: b.size, contentType: b.contentType });
      }).catch((e: Error) => { failure = e; deps.logger?.warn({ id: job.id, err: e.message }, 'checkpoint upload failed'); });
    },
    flush: async () => {
      await chain;
      if (failure) throw failure;
    },
  };
}
