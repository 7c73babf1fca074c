/** Protocol validation (every bad field named), the methods' options, union-sampling options, and the judge's accuracies. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GaussianRng } from '@dynasyn/diffusion';
import { drawUnion, resolveUnion } from '../train/union.js';
import { loadProtocol, parseProtocol, type ProtocolJson } from './protocol.js';
import { METHOD_IDS, methodOptions } from './methods.js';
import { attributesKept, identityAccuracy, promptAccuracy } from './judge.js';
import { runOptions } from './run.js';
import { resolveScene } from './scenes.js';

const good: ProtocolJson = {
  version: 1,
  name: 'p',
  backbone: 'bundle',
  clip: 'clip',
  methods: ['dynasyn-fast', { id: 'break-a-scene', options: { train: { phase1: { steps: 3 } } } }],
  seeds: [0, 1],
  scenes: [{ id: 's', image: 'ref.png', masks: ['m0.png', 'm1.png'], classes: ['cat', 'dog'] }],
  prompts: { plain: ['<asset0> in the snow'], action: ['<asset1> jumping'], interaction: ['<asset0> on top of <asset1>'] },
};
const bad = (patch: Record<string, unknown>) => () => parseProtocol({ ...good, ...patch }, '/base', 'eval.json');

test('a good protocol: defaults, paths resolved against its folder', () => {
  const p = parseProtocol(good, '/base');
  expect([p.backbone, p.clip, p.scenes[0]!.files!.masks[1], p.preset, p.sampling.samplesPerPrompt]).toEqual([
    '/base/bundle',
    '/base/clip',
    '/base/m1.png',
    'fast',
    1,
  ]);
  expect(p.methods).toEqual([
    { id: 'dynasyn-fast', method: 'dynasyn-fast', options: {} },
    { id: 'break-a-scene', method: 'break-a-scene', options: { train: { phase1: { steps: 3 } } } },
  ]);
});

test('a named variant: one method twice, the variant with its own row id, label and options', () => {
  const variant = { id: 'dynasyn-fast', name: 'dynasyn-x100', label: 'DynASyn, ICA and AUG x100', options: { train: { lambdas: { ica: 0.5, aug: 0.01 } } } };
  const p = parseProtocol({ ...good, methods: ['dynasyn-fast', variant] }, '/base');
  expect(p.methods[1]).toEqual({ id: 'dynasyn-x100', method: 'dynasyn-fast', label: 'DynASyn, ICA and AUG x100', options: variant.options });
  expect(runOptions(p, 'dynasyn-x100', 0).train.lambdas).toEqual({ md: 1, m2a: 1e-2, ica: 0.5, aug: 0.01 });
  expect(runOptions(p, 'dynasyn-fast', 0).train.lambdas).toEqual({ md: 1, m2a: 1e-2, ica: 5e-3, aug: 1e-4 });
  // a variant of an ablation keeps the ablation's defining settings
  const md = parseProtocol({ ...good, methods: [{ id: 'ablation-md', name: 'md-x100', options: { train: { lambdas: { ica: 0.5 } } } }] }, '/base');
  expect(runOptions(md, 'md-x100', 0).train.lambdas.ica).toBe(0);
  expect(() => runOptions(p, 'nope', 0)).toThrow(/method nope is neither in the protocol nor a known method/);
  expect(bad({ methods: ['dynasyn-fast', { id: 'dynasyn-fast' }] })).toThrow(/methods\.1: method dynasyn-fast listed twice \(give a variant its own "name"\)/);
  expect(bad({ methods: [{ id: 'dynasyn-fast', name: 'Bad Name' }] })).toThrow(/methods\.0\.name/);
});

test('protocol errors name the file and every bad field', () => {
  expect(bad({ methods: ['dynasyn-fast', 'magic'] })).toThrow(/eval\.json: methods\.1/);
  expect(bad({ seeds: [1, 1] })).toThrow(/seeds: seeds must differ/);
  expect(bad({ version: 2, seeds: [] })).toThrow(/version: .*; seeds: /);
  expect(bad({ prompts: { action: ['<asset0> and <asset1> jumping'] } })).toThrow(/prompts\.action\.0: an action prompt names exactly one subject/);
  expect(bad({ prompts: { interaction: ['<asset0> jumping'] } })).toThrow(/prompts\.interaction\.0: an interaction prompt names at least two/);
  expect(bad({ prompts: { plain: ['<asset2> at night'] } })).toThrow(/scenes\.0 \(s\) has 2 subjects, but the prompts name <asset2>/);
  expect(bad({ scenes: [{ id: 's', image: 'a.png', masks: ['m.png'], classes: ['cat', 'dog'] }] })).toThrow(/scenes\.0\.classes: one class word per mask/);
  expect(bad({ scenes: [{ id: 'Bad Id', toyworld: {} }] })).toThrow(/scenes\.0\.id/);
  expect(bad({ extra: 1 })).toThrow(/extra/);
  expect(bad({ scorers: [{ kind: 'imagereward' }] })).toThrow(/scorers\.0/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-'));
  fs.writeFileSync(path.join(dir, 'p.json'), '{ "version": 1,');
  expect(() => loadProtocol(path.join(dir, 'p.json'))).toThrow(/p\.json is not valid JSON/);
  expect(() => loadProtocol(path.join(dir, 'none.json'))).toThrow(/does not exist/);
  fs.rmSync(dir, { recursive: true });
});

describe('each method is one option set on the same preset', () => {
  const opts = (method: (typeof METHOD_IDS)[number], methodOpts = {}) =>
    methodOptions({ method, presetName: 'tiny', protocolOptions: { sampling: { steps: 3 } }, methodOptions: methodOpts, seed: 7 });
  const base = opts('dynasyn-fast');

  test('DynASyn: the preset itself; paper: the paper preset', () => {
    expect([base.seed, base.sampling.steps, base.train.lambdas, base.augmentation.count]).toEqual([7, 3, { md: 1, m2a: 1e-2, ica: 5e-3, aug: 1e-4 }, 2]);
    expect(opts('dynasyn-paper').preset).toBe('paper');
    expect(opts('dynasyn-paper').augmentation.gsaSchedule).toBe('paper');
  });
  test('the ablation rows', () => {
    const row = (m: (typeof METHOD_IDS)[number]) => {
      const o = opts(m);
      return [o.train.lambdas.ica, o.train.lambdas.aug, o.augmentation.count, o.augmentation.promptProvider];
    };
    expect(row('ablation-md')).toEqual([0, 0, 0, { kind: 'templates' }]);
    expect(row('ablation-md-app')).toEqual([5e-3, 0, 0, { kind: 'templates' }]);
    expect(row('ablation-md-img')).toEqual([0, 1e-4, 2, { kind: 'templates', mix: { plain: 1, action: 0, interaction: 0 } }]);
    expect(row('ablation-md-act')).toEqual([0, 1e-4, 2, { kind: 'templates' }]);
  });
  test('Break-a-Scene: union sampling, L_MD + L_M2A, no L_ICA, no augmentation; its protocol overrides apply, its definition wins', () => {
    const o = opts('break-a-scene', { train: { phase1: { steps: 3 }, lambdas: { ica: 1 } } });
    expect([o.train.subjectsPerStep, o.train.lambdas, o.augmentation.count, o.train.phase1.steps, o.train.phase2.steps]).toEqual([
      'union',
      { md: 1, m2a: 1e-2, ica: 0, aug: 0 },
      0,
      3,
      6,
    ]);
  });
  test('Textual Inversion: no phase 2, the same step budget in phase 1, L_MD only, one subject per step', () => {
    const o = opts('textual-inversion');
    expect([o.train.phase1.steps, o.train.phase2.steps, o.train.lambdas, o.train.subjectsPerStep, o.augmentation.count]).toEqual([
      12,
      0,
      { md: 1, m2a: 0, ica: 0, aug: 0 },
      'one',
      0,
    ]);
  });
  test('DreamBooth: the whole UNet in full mode, no masks, every subject, prior preservation', () => {
    const o = opts('dreambooth');
    expect([o.train.phase1.steps, o.train.phase2.steps, o.train.phase2.lr, o.train.adapters.mode, o.train.adapters.targets]).toEqual([
      0,
      12,
      2e-6,
      'full',
      ['unet'],
    ]);
    // the protocol-wide phase-2 lr is the adapters': not for whole tensors; the dreambooth entry's own lr is
    expect(opts('dreambooth', {}).train.phase2.lr).toBe(2e-6);
    const lr = (protocolOptions: object, methodOpts: object) =>
      methodOptions({ method: 'dreambooth', presetName: 'tiny', protocolOptions, methodOptions: methodOpts, seed: 7 }).train.phase2.lr;
    expect(lr({ train: { phase2: { lr: 1e-3 } } }, {})).toBe(2e-6);
    expect(lr({ train: { phase2: { lr: 1e-3 } } }, { train: { phase2: { lr: 2e-5 } } })).toBe(2e-5);
    expect([o.train.maskedDiffusion, o.train.subjectsPerStep, o.train.priorPreservation, o.train.lambdas.m2a, o.train.lambdas.ica]).toEqual([
      false,
      'all',
      true,
      0,
      0,
    ]);
  });
});

test('subjects per step: one, all, union; an unmasked union covers the image', () => {
  const rng = new GaussianRng(3);
  const ks = (how: 'one' | 'all' | 'union') => new Set(Array.from({ length: 200 }, (_, i) => drawUnion(3, rng.fork(`${how}${i}`), 0.5, how).subjects.length));
  expect([...ks('one')]).toEqual([1]);
  expect([...ks('all')]).toEqual([3]);
  expect([...ks('union')].sort()).toEqual([1, 2, 3]);
  // the option does not move the stream: the same flips as union sampling
  expect(drawUnion(3, new GaussianRng(9), 0.5, 'one').flip).toBe(drawUnion(3, new GaussianRng(9), 0.5).flip);
  const mask = { width: 4, height: 4, data: Uint8Array.from({ length: 16 }, (_, i) => (i < 4 ? 1 : 0)) };
  const subjects = [{ mask, classWord: 'cat' }];
  expect(resolveUnion({ subjects: [0], flip: false }, subjects).unionMask.data.reduce((a, b) => a + b, 0)).toBe(4);
  expect(resolveUnion({ subjects: [0], flip: false }, subjects, false).unionMask.data.reduce((a, b) => a + b, 0)).toBe(16);
});

test('a toy-world scene resolves to its render, its identities and each subject in words (the described row)', async () => {
  const spec = {
    subjects: [
      { class: 'cat', colour: 'orange', pattern: 'stripes', accessory: 'bow', action: 'standing' },
      { class: 'dog', colour: 'brown', pattern: 'checks', accessory: 'none', action: 'sitting' },
    ],
    interaction: 'next to',
    context: 'grass field',
    style: 'shaded',
  };
  const scene = await resolveScene({ id: 'cat-dog', toyworld: { spec } }, 64);
  expect(scene.classWords).toEqual(['cat', 'dog']);
  expect(scene.identities).toEqual([
    { class: 'cat', colour: 'orange', pattern: 'stripes', accessory: 'bow' },
    { class: 'dog', colour: 'brown', pattern: 'checks', accessory: 'none' },
  ]);
  expect(scene.descriptions).toEqual(['orange striped cat with a bow', 'brown checkered dog']);
});

test("the judge's identity and prompt accuracy", () => {
  const identities = [
    { class: 'cat', colour: 'orange', pattern: 'stripes', accessory: 'bow' },
    { class: 'dog', colour: 'brown', pattern: 'checks', accessory: 'hat' },
  ];
  const asked = { subjects: [{ subject: 1, action: 'jumping' }, { subject: 0 }], interaction: 'on top of', context: 'snow' };
  const dog = { ...identities[1]!, action: 'jumping' };
  const cat = { ...identities[0]!, accessory: 'none' }; // lost its bow
  expect(identityAccuracy(asked, { subjects: [dog, cat] }, identities)).toBe(0.5);
  expect(identityAccuracy(asked, { subjects: [dog, null] }, identities)).toBe(0.5);
  expect(identityAccuracy(asked, { subjects: [dog, identities[0]!] }, identities)).toBe(1);
  // partial credit: the dog whole (4 of 4), the cat without its bow (3 of 4); a subject not found keeps nothing
  expect(attributesKept(asked, { subjects: [dog, cat] }, identities)).toBe(7 / 8);
  expect(attributesKept(asked, { subjects: [null, { ...cat, colour: 'blue' }] }, identities)).toBe(2 / 8);
  expect(attributesKept({ subjects: [] }, { subjects: [] }, identities)).toBeNull();
  expect(promptAccuracy(asked, { subjects: [dog, cat], interaction: 'on top of', context: 'snow' })).toBe(1);
  expect(promptAccuracy(asked, { subjects: [dog, cat], interaction: 'next to', context: 'snow' })).toBe(0);
  expect(promptAccuracy(asked, { subjects: [{ ...dog, action: 'sitting' }, cat], interaction: 'on top of', context: 'snow' })).toBe(0);
  expect(promptAccuracy({ subjects: [{ subject: 0 }] }, { subjects: [cat] })).toBeNull();
});

test('a prior set trains row 1 with L_MD alone: splitRows keeps its pass although no L_AUG weight is set', async () => {
  const { splitRows } = await import('../train/batch.js');
  const f = (dims: number[], values: number[]) => ({ dtype: 1, dims, data: Float32Array.from(values) });
  const feeds = (row1Mask: number) => ({
    md_mask: f([2, 1, 1, 2], [1, 1, row1Mask, row1Mask]),
    aug_weight: f([2], [0, 0]),
    m2a_weight: f([2], [1, 0]),
    ica_weight: f([2], [1, 0]),
  });
  expect(splitRows(feeds(0))).toHaveLength(1);
  const passes = splitRows(feeds(1));
  expect(passes).toHaveLength(2);
  expect(Array.from(passes[1]!.md_mask!.data as Float32Array)).toEqual([1, 1]);
  expect(Array.from(passes[1]!.m2a_weight!.data as Float32Array)).toEqual([0, 0]);
});
