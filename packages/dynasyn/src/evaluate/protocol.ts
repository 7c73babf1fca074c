/**
 * The evaluation protocol (docs/evaluation.md "Protocol format"): one JSON file naming the backbone, the CLIP
 * model, the reference scenes, the methods, the seeds, the prompts per category (the paper's Plain / Action /
 * Interaction), the sampling settings and the extra scorers. Validated with zod; a bad file throws
 * EvaluationError BAD_PROTOCOL listing every bad field. Relative paths are relative to the protocol file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { PRESET_NAMES } from '../presets.js';
import type { OptionOverrides } from '../presets.js';
import type { PresetName } from '../types.js';
import { EvaluationError } from './errors.js';
import { METHOD_IDS, type MethodId } from './methods.js';

export const CATEGORIES = ['plain', 'action', 'interaction'] as const;
export type Category = (typeof CATEGORIES)[number];

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a name of lower-case letters, digits, ".", "_" or "-" (at most 64)');
const overrides = z.record(z.string(), z.unknown()).describe('option overrides (DynasynOptions paths), applied over the preset');

const fileScene = z
  .object({
    id,
    image: z.string().min(1),
    masks: z.array(z.string().min(1)).min(1),
    classes: z.array(z.string().min(1)).min(1),
    phrases: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.classes.length !== s.masks.length) ctx.addIssue({ code: 'custom', path: ['classes'], message: `one class word per mask (${s.masks.length})` });
    if (s.phrases && s.phrases.length !== s.masks.length)
      ctx.addIssue({ code: 'custom', path: ['phrases'], message: `one phrase per mask (${s.masks.length})` });
  });

const toyworldScene = z
  .object({
    id,
    /** A packages/toyworld scene spec, rendered on the fly (validated by toyworld's parseSceneSpec when rendered). */
    toyworld: z.record(z.string(), z.unknown()),
    /** Render size; default the backbone's sample size. */
    size: z.number().int().min(32).max(1024).optional(),
  })
  .strict();

const method = z.union([
  z.enum(METHOD_IDS),
  z
    .object({
      id: z.enum(METHOD_IDS),
      /** Overrides of this method only (e.g. fewer steps for `dynasyn-paper` on a CPU), applied before its defining settings. */
      options: overrides.optional(),
      /**
       * A variant's own row: its id in the tables, run directories and `--methods` (default the method's id), so
       * one method can appear twice with other options (e.g. a loss weight scaled up).
       */
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'lowercase letters, digits and dashes, up to 48')
        .optional(),
      /** The row's label (default the method's). */
      label: z.string().min(1).max(60).optional(),
    })
    .strict(),
]);

const scorer = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('toyworld-judge'),
      /** The judge's model folder (packages/toyworld-judge). */
      model: z.string().min(1),
    })
    .strict(),
]);

export const protocolSchema = z
  .object({
    version: z.literal(1),
    name: id,
    description: z.string().optional(),
    /** Model bundle directory. */
    backbone: z.string().min(1),
    /** CLIP ONNX folder (output/clip.ts layouts): CLIP-T and CLIP-I of every sample. */
    clip: z.string().min(1),
    /** Preset every method starts from (`dynasyn-paper` always uses `paper`). Default `fast`. */
    preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]).default('fast'),
    /** Overrides for every method (steps, augmentation count, sampling steps ...), applied over the preset. */
    options: overrides.default({}),
    methods: z.array(method).min(1),
    /** Seeds of the runs: each seeds training and the samples. */
    seeds: z.array(z.number().int().min(0).max(40000)).min(1),
    scenes: z.array(z.union([fileScene, toyworldScene])).min(1),
    prompts: z
      .object({
        plain: z.array(z.string().min(1)).default([]),
        action: z.array(z.string().min(1)).default([]),
        interaction: z.array(z.string().min(1)).default([]),
      })
      .strict(),
    sampling: z
      .object({
        /** Images per prompt per run (different seeds). Default 1. */
        samplesPerPrompt: z.number().int().min(1).max(64).default(1),
        steps: z.number().int().min(1).max(1000).optional(),
        guidance: z.number().min(0).max(100).optional(),
        scheduler: z.enum(['ddim', 'euler', 'ddpm']).optional(),
      })
      .strict()
      .default({ samplesPerPrompt: 1 }),
    /** Extra scorers; CLIP-T and CLIP-I are always computed. */
    scorers: z.array(scorer).default([]),
  })
  .strict()
  .superRefine((p, ctx) => {
    const ids = new Set<string>();
    p.scenes.forEach((s, i) => {
      if (ids.has(s.id)) ctx.addIssue({ code: 'custom', path: ['scenes', i, 'id'], message: `duplicate scene id ${JSON.stringify(s.id)}` });
      ids.add(s.id);
    });
    const rows = p.methods.map((m) => (typeof m === 'string' ? m : (m.name ?? m.id)));
    rows.forEach((m, i) => {
      if (rows.indexOf(m) !== i) ctx.addIssue({ code: 'custom', path: ['methods', i], message: `method ${m} listed twice (give a variant its own "name")` });
    });
    if (new Set(p.seeds).size !== p.seeds.length) ctx.addIssue({ code: 'custom', path: ['seeds'], message: 'seeds must differ' });
    if (!CATEGORIES.some((c) => p.prompts[c].length)) ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'give prompts for at least one category' });
    for (const c of CATEGORIES) {
      p.prompts[c].forEach((prompt, i) => {
        const problem = promptProblem(c, prompt);
        if (problem) ctx.addIssue({ code: 'custom', path: ['prompts', c, i], message: problem });
      });
    }
  });

export type ProtocolJson = z.input<typeof protocolSchema>;

export interface ProtocolScene {
  id: string;
  /** Files (absolute paths) ... */
  files?: { image: string; masks: string[]; classes: string[]; phrases?: string[] };
  /** ... or a toyworld scene spec rendered on the fly. */
  toyworld?: { spec: Record<string, unknown>; size?: number };
}

/** One row of the protocol: a method (its definition in methods.ts) with this protocol's options for it. */
export interface ProtocolMethod {
  /** The row's id: tables, run directories, ledger, `--methods` (the method's id unless the entry names it). */
  id: string;
  method: MethodId;
  /** The entry's own label, if any (else the method's). */
  label?: string;
  options: OptionOverrides;
}

/** A validated protocol with paths resolved. */
export interface Protocol {
  name: string;
  description?: string;
  /** The file it came from (absolute), when loaded from one. */
  file?: string;
  backbone: string;
  clip: string;
  preset: PresetName;
  options: OptionOverrides;
  methods: ProtocolMethod[];
  seeds: number[];
  scenes: ProtocolScene[];
  prompts: Record<Category, string[]>;
  sampling: { samplesPerPrompt: number; steps?: number; guidance?: number; scheduler?: 'ddim' | 'euler' | 'ddpm' };
  scorers: { kind: 'toyworld-judge'; model: string }[];
}

/** Placeholders a prompt names, in order of first use (`<asset1> next to <asset0>` -> [1, 0]). */
export function promptSubjects(prompt: string): number[] {
  const out: number[] = [];
  for (const m of prompt.matchAll(/<asset(\d+)>/g)) {
    const i = Number(m[1]);
    if (!out.includes(i)) out.push(i);
  }
  return out;
}

/** Why a prompt does not fit its category (Plain: >= 1 placeholder; Action: exactly 1; Interaction: >= 2), or null. */
export function promptProblem(category: Category, prompt: string): string | null {
  const n = promptSubjects(prompt).length;
  if (/[<>]/.test(prompt.replace(/<asset\d+>/g, ''))) return 'only <assetN> placeholders may use < and >';
  if (category === 'plain' && n < 1) return 'a plain prompt names at least one <assetN>';
  if (category === 'action' && n !== 1) return 'an action prompt names exactly one subject (<assetN>)';
  if (category === 'interaction' && n < 2) return 'an interaction prompt names at least two subjects (<asset0> and <asset1>)';
  return null;
}

/** Validates protocol JSON; `baseDir` resolves relative paths. Throws BAD_PROTOCOL naming every bad field. */
export function parseProtocol(json: unknown, baseDir: string, file?: string): Protocol {
  const parsed = protocolSchema.safeParse(json);
  const where = file ?? 'protocol';
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new EvaluationError('BAD_PROTOCOL', `${where}: ${problems.join('; ')}`);
  }
  const p = parsed.data;
  const at = (f: string) => (isAbsolute(f) ? f : resolve(baseDir, f));
  const scenes: ProtocolScene[] = p.scenes.map((s) =>
    'toyworld' in s
      ? { id: s.id, toyworld: { spec: s.toyworld, ...(s.size !== undefined ? { size: s.size } : {}) } }
      : { id: s.id, files: { image: at(s.image), masks: s.masks.map(at), classes: s.classes, ...(s.phrases ? { phrases: s.phrases } : {}) } },
  );
  const needed = Math.max(...CATEGORIES.flatMap((c) => p.prompts[c].flatMap(promptSubjects))) + 1;
  scenes.forEach((s, i) => {
    const n = s.files ? s.files.masks.length : Array.isArray(s.toyworld!.spec.subjects) ? s.toyworld!.spec.subjects.length : 0;
    if (n < needed) throw new EvaluationError('BAD_PROTOCOL', `${where}: scenes.${i} (${s.id}) has ${n} subjects, but the prompts name <asset${needed - 1}>`);
  });
  return {
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(file ? { file } : {}),
    backbone: at(p.backbone),
    clip: at(p.clip),
    preset: p.preset,
    options: p.options as OptionOverrides,
    methods: p.methods.map((m) =>
      typeof m === 'string'
        ? { id: m, method: m, options: {} }
        : { id: m.name ?? m.id, method: m.id, ...(m.label !== undefined ? { label: m.label } : {}), options: (m.options ?? {}) as OptionOverrides },
    ),
    seeds: p.seeds,
    scenes,
    prompts: p.prompts,
    sampling: p.sampling,
    scorers: p.scorers.map((s) => ({ ...s, model: at(s.model) })),
  };
}

/** Reads and validates a protocol file. */
export function loadProtocol(file: string): Protocol {
  const path = resolve(file);
  if (!existsSync(path)) throw new EvaluationError('BAD_PROTOCOL', `protocol file ${path} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EvaluationError('BAD_PROTOCOL', `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseProtocol(json, dirname(path), path);
}
