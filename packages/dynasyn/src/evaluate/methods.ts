/**
 * The methods an evaluation compares, each one set of options on the same pipeline (so the comparison is fair):
 * a method starts from the protocol's preset (+ the protocol's and the method's overrides) and then applies its
 * defining settings, which nothing overrides. docs/evaluation.md "Methods" has the table.
 */
import { FULL_MODE_LR, resolveOptions, type OptionOverrides } from '../presets.js';
import type { DynasynOptions, PresetName } from '../types.js';

export const METHOD_IDS = [
  'dynasyn-fast',
  'dynasyn-paper',
  'ablation-md',
  'ablation-md-app',
  'ablation-md-img',
  'ablation-md-act',
  'break-a-scene',
  'textual-inversion',
  'dreambooth',
  'class-words',
  'described',
] as const;
export type MethodId = (typeof METHOD_IDS)[number];

export interface MethodDefinition {
  id: MethodId;
  /** Row label of the tables. */
  label: string;
  /** What it is, one line (the report and docs). */
  summary: string;
  /** A preset of its own instead of the protocol's. */
  preset?: PresetName;
  /**
   * The defining settings, from the resolved base options (e.g. the total step budget) and the protocol's
   * overrides for this method alone (`own`: where a method leaves a setting to its protocol entry).
   */
  settings(base: DynasynOptions, own: OptionOverrides): OptionOverrides;
  /** Trains on a class-prior set (base-model images of class prompts) made by the evaluation: DreamBooth. */
  classPrior?: boolean;
  /** No training: the backbone samples the prompts with class words (personalize.ts sampleClassWords). */
  untrained?: boolean;
  /** With `untrained`: the scene's subjects described in words (ResolvedScene.descriptions) stand for the placeholders, not the class words. */
  described?: boolean;
}

/** UNet weights of a bundle exported by torch.onnx/optimum: named parameters and the exporter's `onnx::MatMul_`/GroupNorm affine constants. */
export const UNET_FULL_TENSORS = ['/^unet\\/(.*\\.(weight|bias)|onnx::(MatMul|Mul|Add)_\\d+)$/'];

const noAugmentation = { augmentation: { count: 0 } };

export const METHODS: Record<MethodId, MethodDefinition> = {
  'dynasyn-fast': {
    id: 'dynasyn-fast',
    label: 'DynASyn (fast)',
    summary: 'the full method: L_MD + L_M2A + L_ICA + L_AUG with prompt-and-image augmentation and DDIM GSA',
    settings: () => ({}),
  },
  'dynasyn-paper': {
    id: 'dynasyn-paper',
    label: 'DynASyn (paper)',
    summary: "the full method on the `paper` preset (30 augmentations, the paper's 700-step DDPM GSA)",
    preset: 'paper',
    settings: () => ({}),
  },
  'ablation-md': {
    id: 'ablation-md',
    label: 'MD',
    summary: 'ablation: masked diffusion only (L_MD + L_M2A; no L_ICA, no augmentation): Table 3 row 1',
    settings: () => ({ train: { lambdas: { ica: 0, aug: 0 } }, ...noAugmentation }),
  },
  'ablation-md-app': {
    id: 'ablation-md-app',
    label: 'MD + App',
    summary: 'ablation: MD + concept-based attention regularisation (L_ICA), no augmentation: Table 3 row 2',
    settings: () => ({ train: { lambdas: { aug: 0 } }, ...noAugmentation }),
  },
  'ablation-md-img': {
    id: 'ablation-md-img',
    label: 'MD + image aug.',
    summary: 'ablation: MD + image augmentation without prompt augmentation (augmented images of plain prompts only), no L_ICA',
    settings: () => ({
      train: { lambdas: { ica: 0 } },
      augmentation: { promptProvider: { kind: 'templates', mix: { plain: 1, action: 0, interaction: 0 } } },
    }),
  },
  'ablation-md-act': {
    id: 'ablation-md-act',
    label: 'MD + Act',
    summary: 'ablation: MD + prompt-and-image augmentation (L_AUG), no L_ICA: Table 3 row 3',
    settings: () => ({ train: { lambdas: { ica: 0 } } }),
  },
  'break-a-scene': {
    id: 'break-a-scene',
    label: 'Break-a-Scene',
    summary: 'union sampling, L_MD + L_M2A, no L_ICA, no augmentation; the same two phases',
    settings: () => ({ train: { subjectsPerStep: 'union', lambdas: { ica: 0, aug: 0 } }, ...noAugmentation }),
  },
  'textual-inversion': {
    id: 'textual-inversion',
    label: 'TI (+mask)',
    summary: 'Textual Inversion with masks: placeholder rows only (phase 1 for the whole step budget), L_MD under one subject per step',
    settings: (base) => ({
      train: {
        phase1: { steps: base.train.phase1.steps + base.train.phase2.steps },
        phase2: { steps: 0 },
        subjectsPerStep: 'one',
        lambdas: { m2a: 0, ica: 0, aug: 0 },
      },
      ...noAugmentation,
    }),
  },
  dreambooth: {
    id: 'dreambooth',
    label: 'DB',
    summary:
      'DreamBooth-style: the whole UNet fine-tuned (with the placeholder rows, from their class words) on the whole image, no masks, every subject each step, with a prior-preservation loss on base-model images of the class prompts',
    classPrior: true,
    settings: (base, own) => ({
      train: {
        phase1: { steps: 0 },
        // full fine-tuning's lr (2e-6) unless the protocol's dreambooth entry names one: the protocol-wide
        // phase-2 lr is the adapters' (1e-4 and up), which would wreck whole tensors
        phase2: { steps: base.train.phase1.steps + base.train.phase2.steps, lr: ownPhase2Lr(own) ?? FULL_MODE_LR },
        adapters: { mode: 'full', targets: ['unet'], fullTensors: UNET_FULL_TENSORS },
        subjectsPerStep: 'all',
        maskedDiffusion: false,
        priorPreservation: true,
        lambdas: { m2a: 0, ica: 0, aug: 0 },
      },
      // the prior set stands for the augmented set: as many images as the preset augments
      augmentation: { count: Math.max(1, base.augmentation.count) },
    }),
  },
  'class-words': {
    id: 'class-words',
    label: 'class words',
    summary: 'the floor: no personalization, the backbone draws each prompt with class words in place of placeholders (same seeds)',
    untrained: true,
    settings: () => ({}),
  },
  described: {
    id: 'described',
    label: 'described in words',
    summary:
      'no personalization: the backbone draws each prompt with each subject described in words in place of its placeholder (`<asset0> jumping` -> `orange striped cat with a bow jumping`; same seeds): what words alone carry of the identities. Toy-world scenes, or file scenes with `phrases`',
    untrained: true,
    described: true,
    settings: () => ({}),
  },
};

function ownPhase2Lr(own: OptionOverrides): number | undefined {
  const lr = (own as { train?: { phase2?: { lr?: unknown } } }).train?.phase2?.lr;
  return typeof lr === 'number' ? lr : undefined;
}

/** Merges plain-object overrides (later wins; arrays and `kind` objects replaced whole, as resolveOptions does). */
export function mergeOverrides(...layers: OptionOverrides[]): OptionOverrides {
  const merge = (a: unknown, b: unknown): unknown => {
    if (b === undefined) return a;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return b;
    if (a === null || typeof a !== 'object' || Array.isArray(a)) return structuredClone(b);
    const x = a as Record<string, unknown>,
      y = b as Record<string, unknown>;
    if ('kind' in y && 'kind' in x && x.kind !== y.kind) return structuredClone(b);
    const out: Record<string, unknown> = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = merge(x[k], v);
    return out;
  };
  return layers.reduce<unknown>((acc, l) => merge(acc, l), {}) as OptionOverrides;
}

export interface MethodRun {
  method: MethodId;
  presetName: PresetName;
  /** Protocol-wide overrides. */
  protocolOptions: OptionOverrides;
  /** This method's overrides in the protocol. */
  methodOptions: OptionOverrides;
  seed: number;
  /** Machine settings (device, threads), last. */
  runtime?: OptionOverrides;
}

/** The options of one run: preset -> protocol overrides -> method overrides -> seed -> the method's defining settings -> runtime. */
export function methodOptions(r: MethodRun): DynasynOptions {
  const def = METHODS[r.method];
  const preset = def.preset ?? r.presetName;
  const first = mergeOverrides(r.protocolOptions, r.methodOptions, { seed: r.seed });
  const base = resolveOptions(preset, first);
  return resolveOptions(preset, mergeOverrides(first, def.settings(base, r.methodOptions), r.runtime ?? {}));
}
