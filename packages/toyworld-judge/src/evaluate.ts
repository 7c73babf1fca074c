/**
 * The judge's accuracy on fresh renders, measured through `scoreSample` itself: each scene's full labels are
 * asked, the regions come from the masks or from the judge's own finder, and every attribute is counted.
 * Scenes never seen in training: their own seed stream, and with `heldOut: 'only'` every subject is a
 * held-out identity (the judge never trained on those combinations).
 */
import { createRng, renderScene, sampleSceneSpec, type MentionedLabels, type RenderedScene } from '@dynasyn/toyworld';
import { HEADS, SUBJECT_HEADS, type SubjectHead } from './heads.js';
import type { ToyworldJudge } from './judge.js';
import { scoreSample } from './score.js';
import type { RegionSource } from './regions.js';

export type Tally = { correct: number; total: number; accuracy: number };
export const ATTRIBUTES = [...SUBJECT_HEADS, 'interaction', 'context', 'style'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

export interface JudgeEvaluation {
  scenes: number;
  /** Scenes left out because a subject was hidden entirely (nothing to judge). */
  skipped: number;
  perAttribute: Record<Attribute, Tally>;
  /** Subjects whose class, colour, pattern and accessory were all recognised. */
  identity: Tally;
}

/** Everything a render's labels say, as a prompt would ask it. */
export function askedFromLabels(labels: RenderedScene['labels']): MentionedLabels {
  return {
    subjects: labels.subjects.map(({ class: c, colour, pattern, accessory, action }) => ({ class: c, colour, pattern, accessory, action })),
    ...(labels.interaction ? { interaction: labels.interaction } : {}),
    context: labels.context,
    style: labels.style,
  };
}

/**
 * The renders an evaluation reads: `count` scenes of their own seed stream (never a training one; with `heldOut:
 * 'only'` every subject a held-out identity), each reported to `onScene`; undefined for a scene with a subject hidden
 * entirely (nothing to judge). evaluateJudge and judgeLeniency read the same scenes for the same options.
 */
function* evaluationScenes(o: {
  count: number;
  seed: string | number;
  heldOut: 'exclude' | 'only';
  onScene?: (i: number) => void;
}): Generator<RenderedScene | undefined> {
  const rng = createRng(`${o.seed}/judge-eval/${o.heldOut}`);
  for (let i = 0; i < o.count; i++) {
    const scene = renderScene(sampleSceneSpec(rng, { heldOut: o.heldOut }), { size: 64 });
    o.onScene?.(i);
    yield scene.labels.subjects.some((s) => s.area === 0) ? undefined : scene;
  }
}

/** Where the scorer finds the subjects of a render: its true masks, or the judge's own finder. */
const regionSource = (scene: RenderedScene, regions: 'masks' | 'judge'): RegionSource =>
  regions === 'masks' ? { kind: 'masks', masks: scene.masks } : { kind: 'judge' };

export async function evaluateJudge(
  judge: ToyworldJudge,
  o: { count: number; seed: string | number; heldOut: 'exclude' | 'only'; regions: 'masks' | 'judge'; onScene?: (i: number) => void },
): Promise<JudgeEvaluation> {
  const tally = (): Tally => ({ correct: 0, total: 0, accuracy: 0 });
  const per = Object.fromEntries(ATTRIBUTES.map((a) => [a, tally()])) as Record<Attribute, Tally>;
  const identity = tally();
  let skipped = 0;
  for (const scene of evaluationScenes(o)) {
    if (!scene) {
      skipped++;
      continue;
    }
    const r = await scoreSample(judge, scene.rgb, { asked: askedFromLabels(scene.labels), regions: regionSource(scene, o.regions) });
    const count = (a: Attribute, ok: boolean | undefined) => {
      if (ok === undefined) return;
      per[a].total++;
      if (ok) per[a].correct++;
    };
    for (const s of r.perAttribute.subjects) for (const h of SUBJECT_HEADS) count(h, s[h]?.ok);
    count('interaction', r.perAttribute.interaction?.ok);
    count('context', r.perAttribute.context?.ok);
    count('style', r.perAttribute.style?.ok);
    for (const kept of r.identityKept) {
      identity.total++;
      if (kept) identity.correct++;
    }
  }
  for (const t of [...Object.values(per), identity]) t.accuracy = t.total ? t.correct / t.total : 0;
  return { scenes: o.count, skipped, perAttribute: per, identity };
}

/** Per attribute: of the subjects asked a wrong value, how many the judge accepted. */
export type Leniency = Partial<Record<SubjectHead, { accepted: number; total: number; rate: number }>>;

/**
 * How lenient the judge is: each subject of each scene asked one attribute with a wrong value (drawn uniformly
 * from the others; everything else asked as rendered), and the share of those the judge accepts, per attribute.
 * The scenes are evaluateJudge's (the same seed stream), so the two figures are of the same renders. With the
 * finder as region source this includes what its choice costs: of the partitions it offers, the scorer keeps the
 * one that agrees best with what was asked, wrong ask included.
 */
export async function judgeLeniency(
  judge: ToyworldJudge,
  o: {
    count: number;
    seed: string | number;
    heldOut: 'exclude' | 'only';
    regions: 'masks' | 'judge';
    heads?: readonly SubjectHead[];
    onScene?: (i: number) => void;
  },
): Promise<Leniency> {
  const heads = o.heads ?? SUBJECT_HEADS;
  const choices = createRng(`${o.seed}/judge-leniency/${o.heldOut}`);
  const out: Leniency = Object.fromEntries(heads.map((h) => [h, { accepted: 0, total: 0, rate: 0 }]));
  for (const scene of evaluationScenes(o)) {
    if (!scene) continue;
    const truth = askedFromLabels(scene.labels);
    for (const h of heads) {
      const asked = { ...truth, subjects: truth.subjects.map((s) => ({ ...s })) };
      const wrong = asked.subjects.map((s) => {
        const others = (HEADS[h] as readonly string[]).filter((v) => v !== s[h]);
        return others[choices.int(others.length)]!;
      });
      asked.subjects.forEach((s, k) => Object.assign(s, { [h]: wrong[k] }));
      const r = await scoreSample(judge, scene.rgb, { asked, regions: regionSource(scene, o.regions) });
      for (const s of r.perAttribute.subjects) {
        out[h]!.total++;
        if (s[h]?.ok) out[h]!.accepted++;
      }
    }
  }
  for (const t of Object.values(out)) t.rate = t.total ? t.accepted / t.total : 0;
  return out;
}
