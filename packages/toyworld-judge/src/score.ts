/**
 * Scoring a generated image against what its prompt asked (issue 14): per subject, whether the asked
 * identity is kept (every asked one of class, colour, pattern, accessory recognised in its region), and
 * whether the prompt is followed (every asked action, the interaction and the context recognised).
 * The interaction is read from both subjects: relation r of subject 0 to 1 scores log p0(r) + log p1(reverse r).
 */
import type { ContextName, Identity, InteractionName, MentionedLabels, MentionedSubject, StyleName } from '@dynasyn/toyworld';
import { interactionOf, RELATIONS, SUBJECT_HEADS, type Relation, type SubjectHead } from './heads.js';
import type { Prediction, ToyworldJudge } from './judge.js';
import { regionsFromFinder, regionsFromSource, type RegionSource } from './regions.js';

export const IDENTITY_HEADS = ['class', 'colour', 'pattern', 'accessory'] as const satisfies readonly SubjectHead[];

export interface AttributeScore {
  asked: string;
  predicted: string;
  /** The judge's probability of its predicted label. */
  confidence: number;
  ok: boolean;
}

export interface SampleScore {
  /** Per asked subject: each asked identity attribute recognised (false when none is asked). */
  identityKept: boolean[];
  /** Every asked action, the asked interaction and the asked context recognised (true when none is asked). */
  promptFollowed: boolean;
  perAttribute: {
    subjects: Partial<Record<SubjectHead, AttributeScore>>[];
    interaction?: AttributeScore;
    context?: AttributeScore;
    style?: AttributeScore;
  };
  /** What the judge read for each subject (all heads), and the regions it read them in (S*S each). */
  predictions: Prediction[];
  regions: Float32Array[];
}

export interface ScoreOptions {
  /** What the prompt asks (parseCaption), with each subject's identity filled in where the prompt names it by a placeholder. */
  asked: MentionedLabels;
  regions: RegionSource;
}

const REVERSE: Record<Relation, Relation> = { 'next to': 'next to', 'on top of': 'under', under: 'on top of', 'in front of': 'behind', behind: 'in front of' };

/** The asked labels with the reference identities filled in where the prompt leaves them out ("<asset0> jumping"). */
export function withIdentities(asked: MentionedLabels, identities: (Partial<Identity> | undefined)[]): MentionedLabels {
  return { ...asked, subjects: asked.subjects.map((s, k) => ({ ...identities[k], ...s }) as MentionedSubject) };
}

function score(asked: string | undefined, predicted: string, confidence: number): AttributeScore | undefined {
  return asked === undefined ? undefined : { asked, predicted, confidence, ok: asked === predicted };
}

function matches(asked: MentionedSubject, p: Prediction): number {
  return SUBJECT_HEADS.filter((h) => asked[h] !== undefined && asked[h] === p[h].label).length;
}

/** Scores one generated image (64 x 64 RGB HWC bytes). */
export async function scoreSample(judge: ToyworldJudge, image: Uint8Array, { asked, regions: source }: ScoreOptions): Promise<SampleScore> {
  const n = asked.subjects.length;
  if (n < 1 || n > 2) throw new Error(`the judge scores one or two subjects; the prompt asks for ${n}`);
  let candidates: Float32Array[][];
  if (source.kind === 'judge') {
    const [probs] = await judge.findSubjects([image]);
    candidates = regionsFromFinder(
      probs!,
      asked.subjects.map((s) => s.class),
      asked.interaction,
    );
  } else candidates = [regionsFromSource(source, n)];
  const empty = new Float32Array(image.length / 3);
  let best: { regions: Float32Array[]; predictions: Prediction[]; agree: number } | undefined;
  for (const regions of candidates) {
    const pairs = regions.map((r, k): [Float32Array, Float32Array] => [r, n === 2 ? regions[1 - k]! : empty]);
    const predictions = await judge.classify(
      pairs.map(() => image),
      pairs,
    );
    const agree = predictions.reduce((s, p, k) => s + matches(asked.subjects[k]!, p), 0);
    if (!best || agree > best.agree) best = { regions, predictions, agree };
  }
  const { regions, predictions } = best!;
  const subjects = asked.subjects.map((a, k) => {
    const out: Partial<Record<SubjectHead, AttributeScore>> = {};
    for (const h of SUBJECT_HEADS) {
      const s = score(a[h], predictions[k]![h].label, predictions[k]![h].confidence);
      if (s) out[h] = s;
    }
    return out;
  });
  const identityKept = subjects.map((s) => {
    const asked = IDENTITY_HEADS.filter((h) => s[h]);
    return asked.length > 0 && asked.every((h) => s[h]!.ok);
  });
  const perAttribute: SampleScore['perAttribute'] = { subjects };
  if (asked.interaction) {
    const [p0, p1] = predictions as [Prediction, Prediction | undefined];
    let bestRel: Relation = 'next to',
      bestScore = -Infinity,
      total = 0;
    const scores = RELATIONS.map((r, i) => {
      const rev = RELATIONS.indexOf(REVERSE[r]);
      const s = Math.log(p0.relation.probs[i]! + 1e-9) + (p1 ? Math.log(p1.relation.probs[rev]! + 1e-9) : 0);
      if (s > bestScore) [bestScore, bestRel] = [s, r];
      return Math.exp(s);
    });
    for (const s of scores) total += s;
    const predicted: InteractionName | 'under' = interactionOf(bestRel) ?? 'under';
    perAttribute.interaction = score(asked.interaction, predicted, Math.exp(bestScore) / total);
  }
  const image0 = predictions[0]!;
  perAttribute.context = score(asked.context satisfies ContextName | undefined, image0.context.label, image0.context.confidence);
  perAttribute.style = score(asked.style satisfies StyleName | undefined, image0.style.label, image0.style.confidence);
  if (!perAttribute.interaction) delete perAttribute.interaction;
  if (!perAttribute.context) delete perAttribute.context;
  if (!perAttribute.style) delete perAttribute.style;
  const followed = [...subjects.map((s) => s.action), perAttribute.interaction, perAttribute.context].filter((s): s is AttributeScore => !!s);
  return { identityKept, promptFollowed: followed.every((s) => s.ok), perAttribute, predictions, regions };
}
