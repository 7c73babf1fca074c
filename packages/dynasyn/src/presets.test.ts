/** Presets resolve to METHOD.md's numbers, overrides merge, and bad options are named. */
import { InputError } from './input-error.js';
import { FULL_MODE_LR, PRESET_NAMES, preset, resolveOptions } from './presets.js';
import { PAPER_LOSS_WEIGHTS } from './types.js';

test('paper is METHOD.md: 700+700 steps, lr 5e-4 then adapters at 1e-4, 30 augmentations, 700-step GSA at 0.7, 50 sampling steps at 7.5', () => {
  const p = resolveOptions('paper');
  expect(p.train.phase1).toEqual({ steps: 700, lr: 5e-4 });
  expect(p.train.phase2).toEqual({ steps: 700, lr: 1e-4 });
  expect(p.train.adapters.mode).toBe('lora');
  expect(p.train.adapters.targets).toEqual(['unet', 'text_encoder']);
  expect(p.train.lambdas).toEqual(PAPER_LOSS_WEIGHTS);
  expect([p.train.weightDecay, p.train.maxGradNorm, p.train.attentionGridDivisor, p.train.flipProbability]).toEqual([1e-2, 1, 4, 0.5]);
  expect(p.augmentation).toMatchObject({ count: 30, gsaStrength: 0.7, gsaSchedule: 'paper', gsaSteps: 700, promptProvider: { kind: 'templates' } });
  expect(p.sampling).toMatchObject({ steps: 50, guidance: 7.5 });
});

test('fast keeps the losses and training of paper, with the fast GSA schedule; tiny is a few steps of everything', () => {
  const paper = resolveOptions('paper'),
    fast = resolveOptions('fast'),
    tiny = resolveOptions('tiny');
  expect(fast.train).toEqual(paper.train);
  expect(fast.augmentation).toMatchObject({ gsaSchedule: 'fast', gsaSteps: 50, gsaStrength: 0.7 });
  expect(fast.augmentation.count).toBeLessThanOrEqual(paper.augmentation.count);
  expect(tiny.train.lambdas).toEqual(paper.train.lambdas);
  expect(tiny.train.phase1.steps + tiny.train.phase2.steps).toBeLessThanOrEqual(20);
  expect(tiny.augmentation.count).toBeLessThanOrEqual(3);
  expect(tiny.augmentation.draftSteps * tiny.augmentation.count).toBeLessThanOrEqual(12);
  expect(tiny.sampling.steps).toBeLessThanOrEqual(10);
  for (const name of PRESET_NAMES) expect(resolveOptions(name).preset).toBe(name);
});

test('overrides merge deeply; presets are not mutated; full mode defaults to the paper lr', () => {
  const o = resolveOptions('tiny', {
    seed: 7,
    train: { phase1: { steps: 3 } },
    augmentation: { promptProvider: { kind: 'openai', baseUrl: 'http://localhost:8080/v1', model: 'm' } },
  });
  expect(o.seed).toBe(7);
  expect(o.train.phase1).toEqual({ steps: 3, lr: preset('tiny').train.phase1.lr });
  expect(o.augmentation.promptProvider).toEqual({ kind: 'openai', baseUrl: 'http://localhost:8080/v1', model: 'm' });
  expect(preset('tiny').train.phase1.steps).toBe(6);
  const full = resolveOptions('paper', { train: { adapters: { mode: 'full', fullTensors: ['/attn2/'] } } });
  expect(full.train.phase2.lr).toBe(FULL_MODE_LR);
  expect(resolveOptions('paper', { train: { adapters: { mode: 'full', fullTensors: ['x'] }, phase2: { lr: 1e-5 } } }).train.phase2.lr).toBe(1e-5);
});

test('bad options are refused with the option named', () => {
  const bad = (f: () => unknown, msg: RegExp) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe('BAD_OPTION');
    expect((err as Error).message).toMatch(msg);
  };
  bad(() => resolveOptions('huge' as 'tiny'), /unknown preset "huge" \(use smoke, tiny, fast, paper\)/);
  bad(() => resolveOptions('tiny', { train: { phase1: { steps: -1 } } }), /train\.phase1\.steps must be an integer/);
  bad(() => resolveOptions('tiny', { train: { phase2: { lr: 0 } } }), /train\.phase2\.lr must be a number in \(0, 1\]/);
  bad(() => resolveOptions('tiny', { augmentation: { gsaStrength: 1.5 } }), /augmentation\.gsaStrength/);
  bad(() => resolveOptions('tiny', { train: { adapters: { mode: 'full' } } }), /train\.adapters\.fullTensors/);
  bad(() => resolveOptions('tiny', { train: { adapters: { targets: [] } } }), /train\.adapters\.targets/);
  bad(() => resolveOptions('tiny', { sampling: { prompts: ['a', 'b'], seeds: [1] } }), /sampling\.seeds must be one seed per prompt/);
  bad(() => resolveOptions('tiny', { sampling: { scheduler: 'pndm' as 'ddim' } }), /sampling\.scheduler must be one of ddim, euler, ddpm/);
  bad(
    () => resolveOptions('tiny', { augmentation: { promptProvider: { kind: 'openai', baseUrl: 'ftp://x', model: 'm' } } }),
    /promptProvider\.baseUrl must be an http/,
  );
  bad(() => resolveOptions('tiny', { seed: 1.5 }), /option seed must be an integer/);
  bad(() => resolveOptions('tiny', { train: { placeholderVectors: 0 } }), /train\.placeholderVectors must be an integer in \[1, 16\]/);
  bad(() => resolveOptions('tiny', { train: { placeholderVectors: 17 } }), /train\.placeholderVectors/);
  expect(resolveOptions('tiny', { train: { placeholderVectors: 6 } }).train.placeholderVectors).toBe(6);
});
