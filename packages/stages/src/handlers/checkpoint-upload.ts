/**
 * Keeps the trainer's checkpoint in storage: each rewrite the train stage reports is copied aside at once (so
 * the upload never reads a file the trainer is rewriting) and uploaded in the background, one upload at a time.
 * A worker killed at any moment leaves in storage the last checkpoint that was completely written before.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { PersonalizationJob, StageDeps } from '../ports.js';
import { runPrefix } from '../run-dir.js';

export interface CheckpointUpload {
  /** Takes a copy of `file` now and queues its upload (as `checkpoints/<name>` of the run). */
  offer(file: string): void;
  /** Waits for the queued uploads; throws the first that failed. */
  flush(): Promise<void>;
}

export function checkpointUpload(deps: Pick<StageDeps, 'storage' | 'db' | 'logger'>, job: PersonalizationJob): CheckpointUpload {
  let n = 0;
  let chain = Promise.resolve();
  let failure: Error | undefined;
  return {
    offer: (file) => {
      // two alternating copies: the one being uploaded is never overwritten by the next offer
      const snapshot = join(dirname(file), `.upload-${n++ % 2}`);
      copyFileSync(file, snapshot);
      const key = `${runPrefix(job)}/checkpoints/${basename(file)}`;
      chain = chain
        .then(async () => {
          const b = await deps.storage.put(key, readFileSync(snapshot), { contentType: 'application/octet-stream' });
          await deps.db.recordArtifact({
            personalizationId: job.id,
            kind: 'checkpoint',
            key: b.key,
            sha256: b.sha256,
            size: b.size,
            contentType: b.contentType,
          });
        })
        .catch((e: Error) => {
          failure = e;
          deps.logger?.warn({ id: job.id, err: e.message }, 'checkpoint upload failed');
        });
    },
    flush: async () => {
      await chain;
      if (failure) throw failure;
    },
  };
}
