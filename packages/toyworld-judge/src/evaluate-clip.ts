/**
 * What the toy CLIP is measured on, with fresh renders of scenes no training step drew:
 *  - retrieval (CLIP-T): an image ranks its own complete caption first among `candidates` captions (its own
 *    and those of other scenes);
 *  - identity (CLIP-I): an anchor render of one identity is closer to another render of that identity (other
 *    context, action, layout) than to a render of a different identity in that same other scene.
 */
import { captionsFor, createRng, renderScene, sampleSceneSpec, type SceneSpec } from '@dynasyn/toyworld';
import { dot, type ToyClip } from './clip.js';

export interface ClipEvaluation {
  retrieval: { scenes: number; candidates: number; top1: number; chance: number };
  identity: { triplets: number; sameCloser: number; meanSame: number; meanDifferent: number };
}

export async function evaluateClip(
  clip: ToyClip,
  o: { count: number; seed: string | number; candidates?: number; heldOut?: 'exclude' | 'only' },
): Promise<ClipEvaluation> {
  const K = o.candidates ?? 16;
  const heldOut = o.heldOut ?? 'exclude';
  const rng = createRng(`${o.seed}/clip-eval/${heldOut}`);
  const specs = Array.from({ length: o.count }, () => sampleSceneSpec(rng, { heldOut }));
  const scenes = specs.map((s) => renderScene(s, { size: 64 }));
  const images = await clip.embedImages(scenes.map((s) => s.rgb));
  const texts = await clip.embedTexts(specs.map((s) => captionsFor(s, 1)[0]!));
  let top1 = 0;
  for (let i = 0; i < o.count; i++) {
    const own = dot(images[i]!, texts[i]!);
    let beaten = false;
    for (let k = 1; k < K && !beaten; k++) if (dot(images[i]!, texts[(i + k) % o.count]!) >= own) beaten = true;
    if (!beaten) top1++;
  }
  // identity triplets: single-subject scenes; the positive and negative share everything but the identity
  let sameCloser = 0,
    sumSame = 0,
    sumDiff = 0;
  const anchors: Uint8Array[] = [],
    positives: Uint8Array[] = [],
    negatives: Uint8Array[] = [];
  for (let i = 0; i < o.count; i++) {
    const a = sampleSceneSpec(rng, { heldOut, subjects: 1 });
    const other = sampleSceneSpec(rng, { heldOut, subjects: 1 });
    const pos: SceneSpec = {
      ...other,
      subjects: [
        {
          ...other.subjects[0]!,
          class: a.subjects[0]!.class,
          colour: a.subjects[0]!.colour,
          pattern: a.subjects[0]!.pattern,
          accessory: a.subjects[0]!.accessory,
        },
      ],
    };
    let neg = other;
    while (['class', 'colour', 'pattern', 'accessory'].every((k) => neg.subjects[0]![k as 'class'] === a.subjects[0]![k as 'class']))
      neg = { ...other, subjects: [{ ...sampleSceneSpec(rng, { heldOut, subjects: 1 }).subjects[0]!, action: other.subjects[0]!.action }] };
    anchors.push(renderScene(a, { size: 64 }).rgb);
    positives.push(renderScene(pos, { size: 64 }).rgb);
    negatives.push(renderScene(neg, { size: 64 }).rgb);
  }
  const [ea, ep, en] = [await clip.embedImages(anchors), await clip.embedImages(positives), await clip.embedImages(negatives)];
  for (let i = 0; i < o.count; i++) {
    const s = dot(ea[i]!, ep[i]!),
      d = dot(ea[i]!, en[i]!);
    sumSame += s;
    sumDiff += d;
    if (s > d) sameCloser++;
  }
  return {
    retrieval: { scenes: o.count, candidates: K, top1: top1 / o.count, chance: 1 / K },
    identity: { triplets: o.count, sameCloser: sameCloser / o.count, meanSame: sumSame / o.count, meanDifferent: sumDiff / o.count },
  };
}
