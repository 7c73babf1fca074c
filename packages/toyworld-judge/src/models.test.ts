/**
 * The committed models (models/toyworld-judge, models/toyworld-clip), on renders no training step drew:
 * the judge's scoring on ground-truth regions, its accuracy per attribute, and the CLIP through the product's
 * own ClipModel (retrieval among 16 captions, identity by CLIP-I).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipModel, cosine } from '@dynasyn/dynasyn';
import { createRng, renderScene, sampleSceneSpec } from '@dynasyn/toyworld';
import { askedFromLabels, evaluateJudge, judgeLeniency } from './evaluate.js';
import { SUBJECT_HEADS } from './heads.js';
import { evaluateClip } from './evaluate-clip.js';
import { ToyClip } from './clip.js';
import { loadJudgeForEvaluation } from './evaluation-seam.js';
import { ToyworldJudge } from './judge.js';
import { scoreSample } from './score.js';
import { evaluateJudgeFolder, type JudgeMetrics } from './train-judge.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const JUDGE_DIR = join(root, 'models', 'toyworld-judge'),
  CLIP_DIR = join(root, 'models', 'toyworld-clip');

describe('the committed judge', () => {
  let judge: ToyworldJudge;
  beforeAll(async () => {
    judge = await ToyworldJudge.load(JUDGE_DIR);
  });
  afterAll(() => judge.release());

  it('keeps the identity and follows the prompt a render was made from, and not a different one', async () => {
    const rng = createRng('models-test/scoring');
    let kept = 0,
      total = 0,
      followed = 0,
      wrongKept = 0,
      wrongFollowed = 0,
      attentionKept = 0;
    for (let i = 0; i < 40; i++) {
      const scene = renderScene(sampleSceneSpec(rng, { subjects: 2 }), { size: 64 });
      if (scene.labels.subjects.some((s) => s.area < 60)) continue;
      const asked = askedFromLabels(scene.labels);
      const regions = { kind: 'masks' as const, masks: scene.masks };
      const r = await scoreSample(judge, scene.rgb, { asked, regions });
      expect(r.regions[0]).toEqual(Float32Array.from(scene.masks[0]!));
      total += 2;
      kept += r.identityKept.filter(Boolean).length;
      if (r.promptFollowed) followed++;
      // attention-like maps (each mask averaged over a 16x16 grid) as the region source read the same
      const grid = (m: Uint8Array) => Float32Array.from({ length: 256 }, (_, c) => m[Math.floor(c / 16) * 4 * 64 + (c % 16) * 4 + 1 + 64]!);
      const att = await scoreSample(judge, scene.rgb, { asked, regions: { kind: 'attention', maps: scene.masks.map(grid), grid: 16 } });
      attentionKept += att.identityKept.filter(Boolean).length;
      // the other subject's colour asked of subject 0, and another context: neither is there
      const colour = scene.labels.subjects[0]!.colour === 'red' ? 'blue' : 'red';
      const context = scene.labels.context === 'beach' ? 'snow' : 'beach';
      const wrong = await scoreSample(judge, scene.rgb, {
        asked: { ...asked, context, subjects: [{ ...asked.subjects[0]!, colour }, asked.subjects[1]!] },
        regions,
      });
      if (wrong.identityKept[0]) wrongKept++;
      if (wrong.promptFollowed) wrongFollowed++;
      expect(wrong.perAttribute.subjects[0]!.colour).toMatchObject({ asked: colour, ok: false });
    }
    expect(total).toBeGreaterThan(40);
    // identity needs the pattern too, the committed judge's weak head (65% on fresh renders): see its model card
    expect(kept / total).toBeGreaterThan(0.3);
    expect(attentionKept / total).toBeGreaterThan(0.2);
    expect(followed / (total / 2)).toBeGreaterThan(0.8);
    expect(wrongKept).toBe(0);
    expect(wrongFollowed).toBe(0);
  });

  it('is accurate on 200 fresh renders per attribute, with true masks and with its own finder', async () => {
    for (const regions of ['masks', 'judge'] as const) {
      const e = await evaluateJudge(judge, { count: 200, seed: 'models-test', heldOut: 'exclude', regions });
      for (const [attribute, t] of Object.entries(e.perAttribute)) {
        expect({ attribute, regions, accuracy: t.accuracy }).toEqual({ attribute, regions, accuracy: expect.any(Number) });
        expect(t.total).toBeGreaterThan(50);
        expect(t.accuracy).toBeGreaterThanOrEqual(MIN_ACCURACY[regions][attribute as keyof (typeof MIN_ACCURACY)['masks']]);
      }
    }
  });

  it('accepts few wrong values: asked another class, colour, pattern, accessory or action, it says no', async () => {
    for (const regions of ['masks', 'judge'] as const) {
      const l = await judgeLeniency(judge, { count: 40, seed: 'models-test', heldOut: 'exclude', regions });
      for (const h of SUBJECT_HEADS) {
        expect(l[h]!.total).toBeGreaterThan(45);
        // committed judge, 500 scenes: at most 0.5% with true masks, 4.1% with its own finder (its model card)
        expect({ h, regions, rate: l[h]!.rate }).toEqual({ h, regions, rate: expect.any(Number) });
        expect(l[h]!.rate).toBeLessThanOrEqual(regions === 'masks' ? 0.03 : 0.1);
      }
    }
  });

  it("--reevaluate (evaluateJudgeFolder) rewrites a folder's figures with the scoring code as it is, keeping the run's own", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-reeval-'));
    try {
      cpSync(JUDGE_DIR, dir, { recursive: true });
      const before = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as JudgeMetrics;
      const stale = { ...before, seed: 0, lr: 0.003, evaluations: [] };
      const after = await evaluateJudgeFolder({ out: dir, threads: 1, evalCount: 12 }, stale);
      const written = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as JudgeMetrics;
      expect(written).toEqual(JSON.parse(JSON.stringify(after)));
      expect({ steps: written.steps, batch: written.batch, parameters: written.parameters, seed: written.seed, lr: written.lr }).toEqual({
        steps: before.steps,
        batch: before.batch,
        parameters: before.parameters,
        seed: 0,
        lr: 0.003,
      });
      // four sets (ordinary and held-out, true masks and own finder), each of the scenes asked for
      expect(written.evaluations.map((e) => [e.heldOut, e.regions, e.result.scenes])).toEqual([
        ['exclude', 'masks', 12],
        ['exclude', 'judge', 12],
        ['only', 'masks', 12],
        ['only', 'judge', 12],
      ]);
      // and the wrong values asked, on the ordinary scenes, with each region source
      expect(written.leniency!.map((l) => [l.heldOut, l.regions, Object.keys(l.result)])).toEqual([
        ['exclude', 'masks', [...SUBJECT_HEADS]],
        ['exclude', 'judge', [...SUBJECT_HEADS]],
      ]);
      const card = readFileSync(join(dir, 'MODEL_CARD.md'), 'utf8');
      expect(card).toContain('## Asked a wrong value');
      const finderClass = written.evaluations[1]!.result.perAttribute.class.accuracy;
      expect(card).toContain(`own finder instead of true masks: class ${(100 * finderClass).toFixed(1)}%`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads prompts for dynasyn evaluate: placeholders tie named subjects to reference subjects', async () => {
    const seam = await loadJudgeForEvaluation(JUDGE_DIR);
    const asked = seam.asked('a cat jumping on top of a dog in the snow', '<asset1> jumping on top of <asset0> in the snow');
    expect(asked).toEqual({
      subjects: [
        { subject: 1, class: 'cat', action: 'jumping' },
        { subject: 0, class: 'dog' },
      ],
      interaction: 'on top of',
      context: 'snow',
    });
    const spec = {
      subjects: [
        { class: 'cat', colour: 'red', pattern: 'plain', accessory: 'none', action: 'jumping' },
        { class: 'dog', colour: 'blue', pattern: 'plain', accessory: 'none', action: 'standing' },
      ],
      interaction: 'on top of',
      context: 'snow',
      style: 'shaded',
    } as const;
    const scene = renderScene(spec, { size: 64 });
    const judged = await seam.judge({ width: 64, height: 64, data: scene.rgb }, asked);
    // one scene through the own finder: the answer's shape, and what the judge reads near-perfectly (the cat, the snow)
    expect(judged.subjects).toHaveLength(2);
    for (const subject of judged.subjects) expect(Object.keys(subject!).sort()).toEqual(['accessory', 'action', 'class', 'colour', 'pattern']);
    expect(judged.subjects[0]!.class).toBe('cat');
    expect(['next to', 'on top of', 'in front of', 'behind', 'under']).toContain(judged.interaction);
    expect(judged.context).toBe('snow');
    // the reference identities a run without a scene spec (the service) scores against: read inside the masks,
    // here from the render at 2x (image and masks resized to the judge's 64 px)
    const big = renderScene(spec, { size: 128 });
    const identities = await seam.identify(
      { width: 128, height: 128, data: big.rgb },
      big.masks.map((data) => ({ width: 128, height: 128, data })),
    );
    expect(identities).toEqual([
      { class: 'cat', colour: 'red', pattern: 'plain', accessory: 'none' },
      { class: 'dog', colour: 'blue', pattern: 'plain', accessory: 'none' },
    ]);
    await seam.release();
  });
});

/**
 * Regression floors a few points under what the committed judge measured on 500 fresh renders (its model card):
 * issue 13 asks >= 97% per attribute; pattern (81%) and accessory (93.5%) fall short with true masks,
 * and every subject attribute with the judge's own finder.
 */
// a few points under the committed judge's figures on 500 scenes (its model card), as 200 scenes of another stream vary
const MIN_ACCURACY = {
  masks: { class: 0.97, colour: 0.97, pattern: 0.92, accessory: 0.95, action: 0.96, interaction: 0.97, context: 0.97, style: 0.97 },
  judge: { class: 0.94, colour: 0.96, pattern: 0.91, accessory: 0.9, action: 0.93, interaction: 0.94, context: 0.97, style: 0.97 },
};

describe('the committed CLIP, through the product ClipModel', () => {
  it('ranks an image’s own caption first among 16 and prefers the same identity by CLIP-I', async () => {
    const model = await ClipModel.load(CLIP_DIR);
    const rng = createRng('models-test/clip');
    const specs = Array.from({ length: 64 }, () => sampleSceneSpec(rng));
    const scenes = specs.map((s) => renderScene(s, { size: 64 }));
    const images = await model.embedImages(scenes.map((s) => ({ width: 64, height: 64, data: s.rgb })));
    const texts = await model.embedTexts(scenes.map((s) => s.captions[0]!));
    let top1 = 0;
    for (let i = 0; i < specs.length; i++) {
      const own = cosine(images[i]!, texts[i]!);
      if (Array.from({ length: 15 }, (_, k) => cosine(images[i]!, texts[(i + k + 1) % specs.length]!)).every((c) => c < own)) top1++;
    }
    expect(top1 / specs.length).toBeGreaterThanOrEqual(0.8);
    await model.release();
    // identity triplets (the package's runtime gives ClipModel's embeddings: clip-folder.test.ts)
    const clip = await ToyClip.load(CLIP_DIR);
    const e = await evaluateClip(clip, { count: 100, seed: 'models-test', heldOut: 'only' });
    expect(e.identity.sameCloser).toBeGreaterThanOrEqual(0.7);
    expect(e.identity.meanSame).toBeGreaterThan(e.identity.meanDifferent);
    await clip.release();
  });
});
