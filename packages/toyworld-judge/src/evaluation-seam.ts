/**
 * The judge as `dynasyn evaluate` and the service's evaluation take it (packages/dynasyn/src/evaluate/judge.ts,
 * `ToyworldJudge`): `asked(classPrompt, prompt)` reads what a prompt asks, with each named subject tied to its
 * reference subject by the order of the `<assetN>` placeholders; `judge(image, asked)` says what the judge sees
 * there, finding the subjects itself (its finder, by the class word the prompt uses for each); `identify(reference,
 * masks)` reads each reference subject's identity inside its mask, for runs without a scene spec (the service:
 * an uploaded image, masks and class words).
 */
import { parseCaption, type ClassName, type InteractionName } from '@dynasyn/toyworld';
import { IMAGE_SIZE } from './judge-net.js';
import { ToyworldJudge } from './judge.js';
import { interactionOf, RELATIONS } from './heads.js';
import { regionsFromSource } from './regions.js';
import { IDENTITY_HEADS, scoreSample } from './score.js';

/** What a prompt asks, per named subject: its reference subject (the N of `<assetN>`), class word and action. */
export interface EvaluationAsked {
  subjects: { subject: number; class?: string; action?: string }[];
  interaction?: string;
  context?: string;
  style?: string;
}

export interface EvaluationJudged {
  subjects: ({ class: string; colour: string; pattern: string; accessory: string; action?: string } | null)[];
  interaction?: string | null;
  context?: string | null;
  style?: string | null;
}

/** An RGB image of any size, resized (bilinear) to the judge's 64 x 64. */
export function toJudgeSize(image: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const S = IMAGE_SIZE;
  if (image.width === S && image.height === S) return image.data;
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const fx = Math.min(image.width - 1, Math.max(0, ((x + 0.5) * image.width) / S - 0.5)),
        fy = Math.min(image.height - 1, Math.max(0, ((y + 0.5) * image.height) / S - 0.5));
      const x0 = Math.floor(fx),
        y0 = Math.floor(fy),
        x1 = Math.min(image.width - 1, x0 + 1),
        y1 = Math.min(image.height - 1, y0 + 1);
      const tx = fx - x0,
        ty = fy - y0;
      for (let c = 0; c < 3; c++) {
        const p = (xx: number, yy: number) => image.data[(yy * image.width + xx) * 3 + c]!;
        out[(y * S + x) * 3 + c] = Math.round((1 - ty) * ((1 - tx) * p(x0, y0) + tx * p(x1, y0)) + ty * ((1 - tx) * p(x0, y1) + tx * p(x1, y1)));
      }
    }
  return out;
}

/** What a subject is, as the judge reads it (toyworld's identity labels). */
export interface EvaluationIdentity {
  class: string;
  colour: string;
  pattern: string;
  accessory: string;
}

/** A 0/1 (or 0..255) one-byte-per-pixel mask of any size as a 64 x 64 region in [0, 1]: each pixel the covered share of its box. */
export function maskToJudgeSize(mask: { width: number; height: number; data: Uint8Array }): Float32Array {
  const S = IMAGE_SIZE;
  if (mask.data.length !== mask.width * mask.height)
    throw new Error(`a mask of ${mask.width}x${mask.height} has ${mask.width * mask.height} bytes, got ${mask.data.length}`);
  const scale = Math.max(...mask.data) > 1 ? 255 : 1;
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const y0 = Math.floor((y * mask.height) / S),
      y1 = Math.max(y0 + 1, Math.floor(((y + 1) * mask.height) / S));
    for (let x = 0; x < S; x++) {
      const x0 = Math.floor((x * mask.width) / S),
        x1 = Math.max(x0 + 1, Math.floor(((x + 1) * mask.width) / S));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += mask.data[yy * mask.width + xx]!;
      out[y * S + x] = sum / (scale * (y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

export async function loadJudgeForEvaluation(modelDir: string) {
  const judge = await ToyworldJudge.load(modelDir);
  return {
    asked(classPrompt: string, prompt: string): EvaluationAsked {
      const parsed = parseCaption(classPrompt);
      const placeholders = [...prompt.matchAll(/<asset(\d+)>/g)].map((m) => Number(m[1]));
      return {
        subjects: parsed.subjects.map((s, k) => ({
          subject: placeholders[k] ?? k,
          ...(s.class ? { class: s.class } : {}),
          ...(s.action ? { action: s.action } : {}),
        })),
        ...(parsed.interaction ? { interaction: parsed.interaction } : {}),
        ...(parsed.context ? { context: parsed.context } : {}),
        ...(parsed.style ? { style: parsed.style } : {}),
      };
    },
    async judge(image: { width: number; height: number; data: Uint8Array }, asked: EvaluationAsked): Promise<EvaluationJudged> {
      if (asked.subjects.length === 0 || asked.subjects.length > 2) return { subjects: asked.subjects.map(() => null) };
      // the relation is read whatever was asked (an interaction is needed to get it scored; it also picks the
      // axis along which two touching subjects of one class are split)
      const r = await scoreSample(judge, toJudgeSize(image), {
        asked: {
          subjects: asked.subjects.map((s) => (s.class ? { class: s.class as ClassName } : {})),
          ...(asked.subjects.length === 2 ? { interaction: (asked.interaction ?? 'next to') as InteractionName } : {}),
        },
        regions: { kind: 'judge' },
      });
      const p = r.predictions;
      const relation = RELATIONS[p[0]!.relation.probs.indexOf(Math.max(...p[0]!.relation.probs))]!;
      return {
        subjects: p.map((s) => ({
          class: s.class.label,
          colour: s.colour.label,
          pattern: s.pattern.label,
          accessory: s.accessory.label,
          action: s.action.label,
        })),
        interaction: asked.subjects.length === 2 ? (r.perAttribute.interaction?.predicted ?? interactionOf(relation) ?? null) : null,
        context: p[0]!.context.label,
        style: p[0]!.style.label,
      };
    },
    /**
     * Each subject's identity read inside its mask (the true-mask reading: class 98.6%, colour 99.6%, pattern 64.8%,
     * accessory 93.5% of fresh renders, models/toyworld-judge/MODEL_CARD.md), its partner region the other subjects'
     * masks together. Image and masks of another size are resized to the judge's 64 x 64.
     */
    async identify(
      reference: { width: number; height: number; data: Uint8Array },
      masks: readonly { width: number; height: number; data: Uint8Array }[],
    ): Promise<EvaluationIdentity[]> {
      if (masks.length === 0) return [];
      const image = toJudgeSize(reference);
      const regions = regionsFromSource({ kind: 'masks', masks: masks.map(maskToJudgeSize) }, masks.length);
      const partners = regions.map((_, i) => {
        const others = new Float32Array(IMAGE_SIZE * IMAGE_SIZE);
        regions.forEach((r, k) => {
          if (k !== i) for (let j = 0; j < others.length; j++) others[j] = Math.max(others[j]!, r[j]!);
        });
        return others;
      });
      const predictions = await judge.classify(
        regions.map(() => image),
        regions.map((r, i): [Float32Array, Float32Array] => [r, partners[i]!]),
      );
      return predictions.map((p) => Object.fromEntries(IDENTITY_HEADS.map((h) => [h, p[h].label])) as unknown as EvaluationIdentity);
    },
    release: () => judge.release(),
  };
}
