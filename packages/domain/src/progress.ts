/**
 * Progress of a personalization, one entry per stage reached: what the stages write, the database stores
 * (`Personalization.progress`), the API returns and the CLI draws.
 */
import { z } from 'zod';

/** The stages of the method in run order (the service runs augment, gsa, train, sample; the CLI all of them). */
export const STAGE_NAMES = ['prepare', 'augment', 'gsa', 'train', 'sample', 'evaluate', 'report'] as const;
export type Stage = (typeof STAGE_NAMES)[number];
export const stageSchema = z.enum(STAGE_NAMES);

/** `step` of `total` units of work done in `stage`. */
export const stageProgressSchema = z.object({
  stage: stageSchema,
  step: z.number().int().min(0),
  total: z.number().int().min(0),
});
export type StageProgress = z.infer<typeof stageProgressSchema>;
