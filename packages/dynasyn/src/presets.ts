/**
 * Option presets and their validation. `paper` is METHOD.md's schedule; `fast` the production default (same
 * losses, DDIM GSA); `tiny` a few steps of everything so the demo and tests run in minutes on two cores;
 * `smoke` the fewest steps that still run every stage once, for checking a real backbone (SD 2.1 at full
 * size) end to end and measuring it, not for results.
 */
import { PRESET_NAMES as DOMAIN_PRESET_NAMES } from '@dynasyn/domain';
import { InputError } from './input-error.js';
import { MAX_PLACEHOLDER_VECTORS, PAPER_LOSS_WEIGHTS, type DynasynOptions, type PresetName } from './types.js';

/** The preset names, defined in @dynasyn/domain (the API's options schema accepts them); what each holds is here. */
export const PRESET_NAMES: readonly PresetName[] = DOMAIN_PRESET_NAMES;

/** Phase-2 learning rate of `full` mode (METHOD.md: the paper trains whole tensors at 2e-6). */
export const FULL_MODE_LR = 2e-6;

/** Sample prompts generated when none are given (see sample.ts defaultSamplePrompts). */
export const DEFAULT_SAMPLE_COUNTS: Record<PresetName, number> = { smoke: 1, tiny: 2, fast: 6, paper: 9 };

const paper: DynasynOptions = {
  preset: 'paper',
  seed: 0,
  train: {
    phase1: { steps: 700, lr: 5e-4 },
    // adapters by default (METHOD.md "Two phases"); `full` mode switches to FULL_MODE_LR unless given
    phase2: { steps: 700, lr: 1e-4 },
    adapters: { mode: 'lora', rank: 8, targets: ['unet', 'text_encoder'] },
    lambdas: { ...PAPER_LOSS_WEIGHTS },
    icaNormalizeBoth: true,
    weightDecay: 1e-2,
    maxGradNorm: 1,
    checkpointEvery: 100,
    attentionGridDivisor: 4,
    flipProbability: 0.5,
  },
  augmentation: {
    count: 30,
    promptProvider: { kind: 'templates' },
    draftSteps: 50,
    draftGuidance: 7.5,
    gsaStrength: 0.7,
    gsaSchedule: 'paper',
    gsaSteps: 700,
    pseudoMasks: { kind: 'attention', threshold: 0.5 },
  },
  sampling: { prompts: [], steps: 50, guidance: 7.5, scheduler: 'ddim' },
  executionProviders: ['cpu'],
};

const fast: DynasynOptions = {
  ...paper,
  preset: 'fast',
  augmentation: { ...paper.augmentation, count: 20, draftSteps: 30, gsaSchedule: 'fast', gsaSteps: 50 },
};

const tiny: DynasynOptions = {
  ...paper,
  preset: 'tiny',
  train: {
    ...paper.train,
    // few steps need a larger lr to move anything measurable
    phase1: { steps: 6, lr: 5e-3 },
    phase2: { steps: 6, lr: 1e-3 },
    adapters: { mode: 'lora', rank: 4, targets: ['unet', 'text_encoder'] },
    checkpointEvery: 3,
  },
  augmentation: { ...paper.augmentation, count: 2, draftSteps: 4, gsaSchedule: 'fast', gsaSteps: 4 },
  sampling: { prompts: [], steps: 6, guidance: 7.5, scheduler: 'ddim' },
  intraOpNumThreads: 2,
};

const smoke: DynasynOptions = {
  ...tiny,
  preset: 'smoke',
  train: { ...tiny.train, phase1: { steps: 2, lr: 5e-3 }, phase2: { steps: 2, lr: 1e-3 }, checkpointEvery: 1 },
  // one augmented image: a 2-step draft, then GSA of strength 0.7 over 2 steps (one denoising step)
  augmentation: { ...tiny.augmentation, count: 1, draftSteps: 2, gsaSteps: 2 },
  sampling: { prompts: [], steps: 2, guidance: 7.5, scheduler: 'ddim' },
};

const PRESETS: Record<PresetName, DynasynOptions> = { smoke, tiny, fast, paper };

/**
 * The options that choose where and how fast a run computes, not what it computes (onnxruntime providers and
 * threads, rows per training pass): a personalization may resume under other values, and an evaluation's run
 * fingerprint leaves them out.
 */
export const MACHINE_OPTIONS = ['executionProviders', 'intraOpNumThreads', 'rowsPerPass'] as const;

/** `o` without its MACHINE_OPTIONS: what decides a run's results. */
export function resultOptions<T extends object>(o: T): Omit<T, (typeof MACHINE_OPTIONS)[number]> {
  const machine: readonly string[] = MACHINE_OPTIONS;
  return Object.fromEntries(Object.entries(o).filter(([k]) => !machine.includes(k))) as Omit<T, (typeof MACHINE_OPTIONS)[number]>;
}

/** Recursively optional: what a caller may override. Arrays and provider objects are replaced whole. */
export type OptionOverrides = { [K in keyof DynasynOptions]?: DeepPartial<DynasynOptions[K]> };
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** A fresh copy of a preset's options. */
export function preset(name: PresetName): DynasynOptions {
  const p = PRESETS[name];
  if (!p) throw new InputError('BAD_OPTION', `unknown preset ${JSON.stringify(name)} (use ${PRESET_NAMES.join(', ')})`);
  return structuredClone(p);
}

/** The preset with `overrides` merged in, validated; throws InputError BAD_OPTION naming the option. */
export function resolveOptions(name: PresetName = 'fast', overrides: OptionOverrides = {}): DynasynOptions {
  const base = preset(name);
  const merged = merge(base, overrides) as DynasynOptions;
  merged.preset = name;
  const o = overrides.train;
  if (o?.adapters?.mode === 'full' && o.phase2?.lr === undefined) merged.train.phase2.lr = FULL_MODE_LR;
  validateOptions(merged);
  return merged;
}

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (Array.isArray(over) || over === null || typeof over !== 'object') return over;
  if (base === null || typeof base !== 'object' || Array.isArray(base)) return structuredClone(over);
  // a provider of another kind is a different object, not a patch of the current one
  const b = base as Record<string, unknown>;
  const v = over as Record<string, unknown>;
  if ('kind' in v && 'kind' in b && v.kind !== b.kind) return structuredClone(over);
  const out: Record<string, unknown> = { ...b };
  for (const [k, val] of Object.entries(v)) if (val !== undefined) out[k] = merge(b[k], val);
  return out;
}

/** Checks every option's type and range; throws InputError BAD_OPTION with the option's path. */
export function validateOptions(o: DynasynOptions): void {
  const bad = (path: string, want: string, got: unknown): never => {
    throw new InputError('BAD_OPTION', `option ${path} must be ${want}, got ${JSON.stringify(got)}`);
  };
  const int = (path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(path, `an integer in [${min}, ${max}]`, v);
  };
  const num = (path: string, v: unknown, min: number, max: number, openMin = false) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (openMin && v === min))
      bad(path, `a number in ${openMin ? '(' : '['}${min}, ${max}]`, v);
  };
  const oneOf = (path: string, v: unknown, choices: readonly string[]) => {
    if (typeof v !== 'string' || !choices.includes(v)) bad(path, `one of ${choices.join(', ')}`, v);
  };
  int('seed', o.seed, 0, 2 ** 32 - 1);
  const t = o.train;
  for (const p of ['phase1', 'phase2'] as const) {
    int(`train.${p}.steps`, t[p].steps, 0);
    num(`train.${p}.lr`, t[p].lr, 0, 1, true);
  }
  oneOf('train.adapters.mode', t.adapters.mode, ['lora', 'full']);
  int('train.adapters.rank', t.adapters.rank, 1, 256);
  if (t.adapters.alpha !== undefined) num('train.adapters.alpha', t.adapters.alpha, 0, 1e4, true);
  if (!Array.isArray(t.adapters.targets) || !t.adapters.targets.length)
    bad('train.adapters.targets', 'a non-empty list of unet, text_encoder', t.adapters.targets);
  t.adapters.targets.forEach((x, i) => oneOf(`train.adapters.targets[${i}]`, x, ['unet', 'text_encoder']));
  if (t.adapters.mode === 'full' && t.phase2.steps > 0 && !t.adapters.fullTensors?.length) {
    bad('train.adapters.fullTensors', "a non-empty list of tensor names or /regex/ in 'full' mode", t.adapters.fullTensors);
  }
  for (const k of ['md', 'm2a', 'ica', 'aug'] as const) num(`train.lambdas.${k}`, t.lambdas[k], 0, 1e6);
  if (typeof t.icaNormalizeBoth !== 'boolean') bad('train.icaNormalizeBoth', 'a boolean', t.icaNormalizeBoth);
  num('train.weightDecay', t.weightDecay, 0, 10);
  num('train.maxGradNorm', t.maxGradNorm, 0, 1e6, true);
  int('train.checkpointEvery', t.checkpointEvery, 0);
  int('train.attentionGridDivisor', t.attentionGridDivisor, 1, 64);
  num('train.flipProbability', t.flipProbability, 0, 1);
  if (t.subjectsPerStep !== undefined) oneOf('train.subjectsPerStep', t.subjectsPerStep, ['union', 'one', 'all']);
  if (t.maskedDiffusion !== undefined && typeof t.maskedDiffusion !== 'boolean') bad('train.maskedDiffusion', 'a boolean', t.maskedDiffusion);
  if (t.priorPreservation !== undefined && typeof t.priorPreservation !== 'boolean') bad('train.priorPreservation', 'a boolean', t.priorPreservation);
  if (t.placeholderVectors !== undefined) int('train.placeholderVectors', t.placeholderVectors, 1, MAX_PLACEHOLDER_VECTORS);
  const a = o.augmentation;
  int('augmentation.count', a.count, 0, 1000);
  oneOf('augmentation.promptProvider.kind', a.promptProvider?.kind, ['templates', 'openai']);
  if (a.promptProvider.kind === 'templates' && a.promptProvider.mix !== undefined) {
    const mix = a.promptProvider.mix as Record<string, unknown>;
    if (!mix || typeof mix !== 'object' || Array.isArray(mix)) bad('augmentation.promptProvider.mix', 'an object of category shares', mix);
    for (const [k, v] of Object.entries(mix)) {
      oneOf(`augmentation.promptProvider.mix key`, k, ['plain', 'action', 'interaction']);
      num(`augmentation.promptProvider.mix.${k}`, v, 0, 1);
    }
    if (!Object.values(mix).some((v) => (v as number) > 0)) bad('augmentation.promptProvider.mix', 'a positive share for some category', mix);
  }
  if (a.promptProvider.kind === 'openai') {
    if (!isHttpUrl(a.promptProvider.baseUrl)) bad('augmentation.promptProvider.baseUrl', 'an http(s) URL', a.promptProvider.baseUrl);
    if (typeof a.promptProvider.model !== 'string' || !a.promptProvider.model) bad('augmentation.promptProvider.model', 'a model name', a.promptProvider.model);
    if (a.promptProvider.timeoutMs !== undefined) int('augmentation.promptProvider.timeoutMs', a.promptProvider.timeoutMs, 1);
    if (a.promptProvider.retries !== undefined) int('augmentation.promptProvider.retries', a.promptProvider.retries, 0, 20);
  }
  int('augmentation.draftSteps', a.draftSteps, 1, 1000);
  num('augmentation.draftGuidance', a.draftGuidance, 0, 100);
  num('augmentation.gsaStrength', a.gsaStrength, 0, 1, true);
  oneOf('augmentation.gsaSchedule', a.gsaSchedule, ['fast', 'paper']);
  int('augmentation.gsaSteps', a.gsaSteps, 1, 1000);
  oneOf('augmentation.pseudoMasks.kind', a.pseudoMasks?.kind, ['attention', 'sam']);
  if (a.pseudoMasks.kind === 'attention') num('augmentation.pseudoMasks.threshold', a.pseudoMasks.threshold, 0, 1, true);
  else if (typeof a.pseudoMasks.modelDir !== 'string' || !a.pseudoMasks.modelDir)
    bad('augmentation.pseudoMasks.modelDir', 'a SAM model directory', a.pseudoMasks.modelDir);
  const s = o.sampling;
  if (!Array.isArray(s.prompts) || s.prompts.some((p) => typeof p !== 'string' || !p.trim())) bad('sampling.prompts', 'a list of non-empty prompts', s.prompts);
  if (s.seeds !== undefined) {
    if (!Array.isArray(s.seeds)) bad('sampling.seeds', 'a list of seeds', s.seeds);
    s.seeds.forEach((x, i) => int(`sampling.seeds[${i}]`, x, 0, 2 ** 32 - 1));
    if (s.prompts.length && s.seeds.length !== s.prompts.length) bad('sampling.seeds', `one seed per prompt (${s.prompts.length})`, s.seeds);
  }
  int('sampling.steps', s.steps, 1, 1000);
  num('sampling.guidance', s.guidance, 0, 100);
  oneOf('sampling.scheduler', s.scheduler, ['ddim', 'euler', 'ddpm']);
  if (!Array.isArray(o.executionProviders) || !o.executionProviders.length) bad('executionProviders', 'a non-empty list of cpu, cuda', o.executionProviders);
  o.executionProviders.forEach((x, i) => oneOf(`executionProviders[${i}]`, x, ['cpu', 'cuda']));
  if (o.intraOpNumThreads !== undefined) int('intraOpNumThreads', o.intraOpNumThreads, 1, 1024);
  if (o.rowsPerPass !== undefined && o.rowsPerPass !== 1 && o.rowsPerPass !== 2) bad('rowsPerPass', '1 or 2', o.rowsPerPass);
}

function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
