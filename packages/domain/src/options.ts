/**
 * The options a client may send with a personalization (the API's `options` field). The stored options are
 * resolved against a preset by packages/dynasyn (resolveOptions); this is only the public contract.
 */
import { z } from 'zod';

/** Option presets of packages/dynasyn (presets.ts defines what each holds). */
export const PRESET_NAMES = ['smoke', 'tiny', 'fast', 'paper'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Most embedding rows one placeholder may have (packages/dynasyn's `train.placeholderVectors`). */
export const MAX_PLACEHOLDER_VECTORS = 16;

export const personalizationOptionsSchema = z
  .object({
    /** Preset to start from; the service's default is `fast`. */
    preset: z.enum(PRESET_NAMES).optional(),
    /** Training steps of each phase. */
    steps: z.number().int().min(1).max(100_000).optional(),
    /** Sample prompts generated once training finishes. */
    prompts: z.array(z.string().min(1).max(500)).max(32).optional(),
    /** Embedding rows per placeholder, started from the subject's noun phrase (default 1, as in the paper). */
    placeholderVectors: z.number().int().min(1).max(MAX_PLACEHOLDER_VECTORS).optional(),
  })
  .strict();
export type PersonalizationOptions = z.infer<typeof personalizationOptionsSchema>;
