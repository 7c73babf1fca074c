/**
 * Every label of the vocabulary renders and can be told apart: classes and actions by their masks, colours
 * by the subject's own pixels, patterns and accessories by the pixels they change, contexts and styles by
 * the background, interactions by where the two masks lie.
 */
import { renderScene, type PixelBox, type RenderedScene } from './render.js';
import type { SceneSpec, SubjectSpec } from './spec.js';
import { ACCESSORIES, ACTIONS, CLASSES, COLOUR_RGB, COLOURS, CONTEXTS, INTERACTIONS, PATTERNS, STYLES } from './vocab.js';

const subject = (over: Partial<SubjectSpec> = {}): SubjectSpec => ({
  class: 'cat',
  colour: 'red',
  pattern: 'plain',
  accessory: 'none',
  action: 'standing',
  ...over,
});
const scene = (over: Partial<SubjectSpec> = {}, rest: Partial<SceneSpec> = {}): RenderedScene =>
  renderScene({ subjects: [subject(over)], context: 'grass field', style: 'shaded', ...rest });

const area = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);
function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return inter / union;
}
/** Per-channel median colour of the pixels under a mask (the outlines and shading at the rim do not move it). */
function medianColour(r: RenderedScene, mask: Uint8Array): [number, number, number] {
  const channels: number[][] = [[], [], []];
  for (let i = 0; i < mask.length; i++) if (mask[i]) for (let k = 0; k < 3; k++) channels[k]!.push(r.rgb[3 * i + k]!);
  return channels.map((c) => c.sort((a, b) => a - b)[c.length >> 1]!) as [number, number, number];
}
/** Mean over pixels of the colour distance between two renders. */
function meanPixelDistance(a: RenderedScene, b: RenderedScene): number {
  let d = 0;
  for (let i = 0; i < a.rgb.length; i += 3) d += Math.hypot(a.rgb[i]! - b.rgb[i]!, a.rgb[i + 1]! - b.rgb[i + 1]!, a.rgb[i + 2]! - b.rgb[i + 2]!);
  return d / (a.width * a.height);
}
const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
/** Pixels whose colour differs by more than 40 between two renders. */
function changed(a: RenderedScene, b: RenderedScene): number {
  let n = 0;
  for (let i = 0; i < a.width * a.height; i++) if (dist([...a.rgb.subarray(3 * i, 3 * i + 3)], [...b.rgb.subarray(3 * i, 3 * i + 3)]) > 40) n++;
  return n;
}

describe('the world can be told apart', () => {
  it('classes: each a silhouette of its own (mask IoU below 0.75 for every pair), 120 to 900 px at 64 px', () => {
    const masks = CLASSES.map((c) => scene({ class: c }).masks[0]!);
    for (const m of masks) expect(area(m)).toBeGreaterThan(120);
    for (const m of masks) expect(area(m)).toBeLessThan(900);
    for (let i = 0; i < masks.length; i++)
      for (let j = i + 1; j < masks.length; j++) expect([CLASSES[i], CLASSES[j], iou(masks[i]!, masks[j]!) < 0.75]).toEqual([CLASSES[i], CLASSES[j], true]);
  });

  it('actions: every class looks different in each action (mask IoU below 0.8 for every pair)', () => {
    for (const c of CLASSES) {
      const masks = ACTIONS.map((a) => scene({ class: c, action: a }).masks[0]!);
      for (let i = 0; i < masks.length; i++)
        for (let j = i + 1; j < masks.length; j++)
          expect([c, ACTIONS[i], ACTIONS[j], iou(masks[i]!, masks[j]!) < 0.8]).toEqual([c, ACTIONS[i], ACTIONS[j], true]);
    }
  });

  it('jumping lifts the subject off the ground; upside down puts the head at the bottom', () => {
    for (const c of CLASSES) {
      const stand = scene({ class: c }).labels.subjects[0]!.box!;
      const jump = scene({ class: c, action: 'jumping' }).labels.subjects[0]!.box!;
      expect(jump[3]).toBeLessThan(stand[3] - 4);
    }
    // the head (eyes, nose and the black hat: the darkest pixels) is above the middle standing, below it upside down
    const darkRowOffset = (action: 'standing' | 'upside down') => {
      const r = scene({ class: 'teddy bear', colour: 'yellow', action, accessory: 'hat' });
      const [, y0, , y1] = r.labels.subjects[0]!.box!;
      const rows: number[] = [];
      for (let i = 0; i < 64 * 64; i++) if (r.masks[0]![i] && r.rgb[3 * i]! < 70 && r.rgb[3 * i + 1]! < 70) rows.push(Math.floor(i / 64));
      expect(rows.length).toBeGreaterThan(10);
      return rows.reduce((s, v) => s + v, 0) / rows.length - (y0 + y1) / 2;
    };
    expect(darkRowOffset('standing')).toBeLessThan(-4);
    expect(darkRowOffset('upside down')).toBeGreaterThan(4);
  });

  it('colours: the subject pixels are nearest to their own colour, in both styles', () => {
    for (const style of STYLES) {
      const means = COLOURS.map((c) => {
        const r = scene({ class: 'box', colour: c }, { style });
        return medianColour(r, r.masks[0]!);
      });
      if (style === 'shaded')
        means.forEach((m, i) => {
          const nearest = COLOURS.reduce((best, c) => (dist(m, COLOUR_RGB[c]) < dist(m, COLOUR_RGB[best]) ? c : best), COLOURS[0]!);
          expect([COLOURS[i], nearest]).toEqual([COLOURS[i], COLOURS[i]]);
        });
      // every pair of colours stays apart (the sketch washes colours toward paper, not together)
      for (let i = 0; i < means.length; i++) for (let j = i + 1; j < means.length; j++) expect(dist(means[i]!, means[j]!)).toBeGreaterThan(35);
    }
  });

  it('patterns: each changes at least 15% of the subject pixels against every other pattern', () => {
    for (const c of ['cat', 'box', 'robot'] as const) {
      const renders = PATTERNS.map((p) => scene({ class: c, colour: 'blue', pattern: p }));
      const a = area(renders[0]!.masks[0]!);
      for (let i = 0; i < renders.length; i++)
        for (let j = i + 1; j < renders.length; j++)
          expect([c, PATTERNS[i], PATTERNS[j], changed(renders[i]!, renders[j]!) > 0.15 * a]).toEqual([c, PATTERNS[i], PATTERNS[j], true]);
    }
  });

  it('accessories: each visible (>= 12 px changed) and different from the others, on every class', () => {
    for (const c of CLASSES) {
      const renders = ACCESSORIES.map((a) => scene({ class: c, colour: 'green', accessory: a }));
      for (let i = 0; i < renders.length; i++)
        for (let j = i + 1; j < renders.length; j++)
          expect([c, ACCESSORIES[i], ACCESSORIES[j], changed(renders[i]!, renders[j]!) >= 12]).toEqual([c, ACCESSORIES[i], ACCESSORIES[j], true]);
    }
  });

  it('contexts and styles: backgrounds differ pixel by pixel (mean colour distance > 40 shaded, > 25 sketched)', () => {
    for (const style of STYLES) {
      const renders = CONTEXTS.map((context) => scene({}, { context, style }));
      for (let i = 0; i < renders.length; i++)
        for (let j = i + 1; j < renders.length; j++) {
          const d = meanPixelDistance(renders[i]!, renders[j]!);
          expect([style, CONTEXTS[i], CONTEXTS[j], d > (style === 'shaded' ? 40 : 25)]).toEqual([style, CONTEXTS[i], CONTEXTS[j], true]);
        }
    }
    for (const context of CONTEXTS)
      expect(meanPixelDistance(scene({}, { context, style: 'shaded' }), scene({}, { context, style: 'sketch' }))).toBeGreaterThan(25);
  });

  it('interactions: where the masks lie says which one', () => {
    const two = (interaction: (typeof INTERACTIONS)[number], a: SubjectSpec['class'], b: SubjectSpec['class']) =>
      renderScene({ subjects: [subject({ class: a, colour: 'red' }), subject({ class: b, colour: 'blue' })], interaction, context: 'beach', style: 'shaded' });
    for (const [a, b] of [
      ['cat', 'dog'],
      ['duck', 'box'],
      ['robot', 'car'],
      ['cup', 'teddy bear'],
    ] as const) {
      const boxes = (r: RenderedScene) => r.labels.subjects.map((s) => s.box!) as [PixelBox, PixelBox];
      const [n0, n1] = boxes(two('next to', a, b));
      expect(n0[2] <= n1[0] || n1[2] <= n0[0]).toBe(true);
      const [t0, t1] = boxes(two('on top of', a, b));
      expect(t0[3]).toBeLessThanOrEqual(t1[1] + 3);
      for (const interaction of ['in front of', 'behind'] as const) {
        const r = two(interaction, a, b);
        const [f, k] = interaction === 'in front of' ? [0, 1] : [1, 0];
        const front = r.labels.subjects[f]!;
        const back = r.labels.subjects[k]!;
        // the one in front stands lower in the picture and is drawn last; the other is partly hidden by it
        expect(front.box![3]).toBeGreaterThan(back.box![3]);
        expect(front.depth).toBeGreaterThan(back.depth);
        const overlap = Math.min(front.box![2], back.box![2]) - Math.max(front.box![0], back.box![0]);
        expect(overlap).toBeGreaterThan(0);
      }
    }
  });
});
