/**
 * JUDGE_MODEL as a local toy-world judge folder (packages/toyworld-judge; models/toyworld-judge) the sample stage
 * scores its samples with beside the CLIP (dynasyn's evaluateStage, the same as `dynasyn personalize --judge`).
 * Resolved like CLIP_MODEL and loaded once at the worker's start, so a bad setting stops the worker there, naming
 * it. The judge's scores extend the CLIP evaluation (one summary per category, with CLIP's), so JUDGE_MODEL
 * without CLIP_MODEL is refused too rather than quietly ignored.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EnvError } from '@dynasyn/config';
import { loadToyworldJudge } from '@dynasyn/dynasyn';
import { localModelDir, type ModelStore } from './backbone.js';

export interface JudgeModelSource extends ModelStore {
  /** The JUDGE_MODEL setting; undefined: no judge, no judge scores. */
  judgeModel: string | undefined;
  /** The CLIP_MODEL setting the judge's scores go with (required when judgeModel is set). */
  clipModel: string | undefined;
}

/** The local judge folder, checked by loading it; undefined when unset. Throws EnvError naming JUDGE_MODEL. */
export async function resolveJudgeModel({ judgeModel, clipModel, ...store }: JudgeModelSource): Promise<string | undefined> {
  if (judgeModel === undefined) return undefined;
  if (clipModel === undefined)
    throw new EnvError([
      `JUDGE_MODEL: ${judgeModel} is set without CLIP_MODEL: the judge's scores extend the CLIP evaluation, so set CLIP_MODEL too (models/toyworld-clip for the toy world)`,
    ]);
  try {
    const dir = await localModelDir(judgeModel, store, 'judge');
    if (!existsSync(dir)) throw new Error(`folder ${dir} does not exist`);
    if (!existsSync(join(dir, 'judge.json')))
      throw new Error(`no judge.json in ${dir} (a toy-world judge folder holds judge.json, classifier.onnx, finder.onnx)`);
    const judge = await loadToyworldJudge(dir);
    if (typeof judge.identify !== 'function') throw new Error('this judge cannot read the reference identities (identify)');
    await judge.release?.();
    return dir;
  } catch (e) {
    if (e instanceof EnvError) throw e;
    throw new EnvError([`JUDGE_MODEL: ${judgeModel} is not a usable toy-world judge: ${(e as Error).message}`]);
  }
}
