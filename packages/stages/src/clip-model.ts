/**
 * CLIP_MODEL as a local CLIP folder the sample stage scores its samples with (dynasyn's evaluateStage, the same as
 * `dynasyn personalize --clip`). Resolved like BACKBONE (backbone.ts localModelDir) and loaded once at the worker's
 * start, so a missing or broken CLIP stops the worker there, naming the setting, instead of failing every
 * personalization at its last stage.
 */
import { EnvError } from '@dynasyn/config';
import { ClipModel, type ClipModelOptions } from '@dynasyn/dynasyn';
import { localModelDir, type ModelStore } from './backbone.js';

export interface ClipModelSource extends ModelStore {
  /** The CLIP_MODEL setting; undefined: no CLIP, no scores. */
  clipModel: string | undefined;
  /** Providers and threads to try the load with (the worker's own). */
  runtime?: ClipModelOptions;
}

/** The local CLIP folder, checked by loading it; undefined when unset. Throws EnvError naming CLIP_MODEL. */
export async function resolveClipModel({ clipModel, runtime, ...store }: ClipModelSource): Promise<string | undefined> {
  if (clipModel === undefined) return undefined;
  try {
    const dir = await localModelDir(clipModel, store, 'clip');
    const clip = await ClipModel.load(dir, runtime);
    await clip.release();
    return dir;
  } catch (e) {
    throw new EnvError([`CLIP_MODEL: ${clipModel} is not a usable CLIP model: ${(e as Error).message}`]);
  }
}
