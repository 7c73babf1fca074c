import { createHash } from 'node:crypto';
import { renderScene } from './render.js';
import { sampleSceneSpec } from './sample.js';
import type { SceneSpec } from './spec.js';
import { COLOUR_RGB } from './vocab.js';

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const cat: SceneSpec = {
  subjects: [{ class: 'cat', colour: 'red', pattern: 'plain', accessory: 'none', action: 'standing' }],
  context: 'grass field',
  style: 'shaded',
};

describe('renderScene', () => {
  it('gives identical bytes for the same spec and size, and different bytes for another size or spec', () => {
    for (let seed = 0; seed < 20; seed++) {
      const spec = sampleSceneSpec(seed);
      const a = renderScene(spec);
      const b = renderScene(JSON.parse(JSON.stringify(spec)));
      expect(digest(b.rgb)).toBe(digest(a.rgb));
      b.masks.forEach((m, i) => expect(digest(m)).toBe(digest(a.masks[i]!)));
      expect(b.captions).toEqual(a.captions);
    }
    expect(digest(renderScene(cat, { size: 128 }).rgb)).not.toBe(digest(renderScene(cat).rgb));
    expect(digest(renderScene({ ...cat, context: 'beach' }).rgb)).not.toBe(digest(renderScene(cat).rgb));
  });

  it('pins the bytes of one render, so a change of the drawing is a visible decision', () => {
    // update on purpose when the drawing changes: the backbone's training data changes with it
    expect(digest(renderScene(cat).rgb).slice(0, 16)).toMatchInlineSnapshot(`"baf59fd05f9525a2"`);
  });

  it('returns HWC bytes of the requested size and 0/1 masks, one per subject', () => {
    const r = renderScene(sampleSceneSpec(3, { subjects: 2 }), { size: 96 });
    expect([r.width, r.height, r.rgb.length]).toEqual([96, 96, 96 * 96 * 3]);
    expect(r.masks).toHaveLength(2);
    for (const m of r.masks) {
      expect(m.length).toBe(96 * 96);
      expect(new Set(m).size).toBeLessThanOrEqual(2);
      expect([...new Set(m)].every((v) => v === 0 || v === 1)).toBe(true);
    }
  });

  it('masks cover the subject: inside, pixels are near the body colour; outside, the image equals the empty scene', () => {
    const r = renderScene(cat);
    const empty = renderScene({ ...cat, subjects: [{ ...cat.subjects[0]!, class: 'fish', accessory: 'none' }] });
    const mask = r.masks[0]!;
    const area = mask.reduce((s, v) => s + v, 0);
    expect(area).toBeGreaterThan(150); // a subject of ~28 px at 64 px
    let close = 0;
    const red = COLOUR_RGB.red;
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const d = Math.hypot(r.rgb[3 * i]! - red[0], r.rgb[3 * i + 1]! - red[1], r.rgb[3 * i + 2]! - red[2]);
      if (d < 90) close++;
    }
    expect(close / area).toBeGreaterThan(0.6);
    // far from both subjects the background is untouched
    const both = r.masks[0]!.map((v, i) => v | empty.masks[0]![i]!);
    let differing = 0;
    for (let i = 0; i < both.length; i++) {
      if (both[i]) continue;
      const x = i % 64;
      const y = Math.floor(i / 64);
      // skip the anti-aliased rim and the ground shadows
      const near = [-2, -1, 0, 1, 2].some((dy) => [-2, -1, 0, 1, 2].some((dx) => both[(y + dy) * 64 + x + dx]));
      if (near || y > 52) continue;
      if (r.rgb[3 * i] !== empty.rgb[3 * i]) differing++;
    }
    expect(differing).toBe(0);
  });

  it('a mask is the visible part: in front of / behind, the masks never overlap and the occluded subject loses pixels', () => {
    const two = (interaction: 'in front of' | 'behind'): SceneSpec => ({
      subjects: [
        { class: 'box', colour: 'blue', pattern: 'plain', accessory: 'none', action: 'standing' },
        { class: 'box', colour: 'yellow', pattern: 'plain', accessory: 'none', action: 'standing' },
      ],
      interaction,
      context: 'snow',
      style: 'shaded',
    });
    const alone = renderScene({ ...two('in front of'), subjects: [two('in front of').subjects[0]!], interaction: undefined });
    const aloneArea = alone.masks[0]!.reduce((s, v) => s + v, 0);
    for (const interaction of ['in front of', 'behind'] as const) {
      const r = renderScene(two(interaction));
      const [m0, m1] = r.masks as [Uint8Array, Uint8Array];
      expect(m0.some((v, i) => v && m1[i])).toBe(false);
      const [a0, a1] = [m0, m1].map((m) => m.reduce((s, v) => s + v, 0)) as [number, number];
      // the subject behind is partly hidden; the one in front is whole
      if (interaction === 'in front of') expect(a1).toBeLessThan(a0);
      else expect(a0).toBeLessThan(a1);
      expect(Math.min(a0, a1)).toBeGreaterThan(0.2 * aloneArea);
      // the hidden subject's colour does not show inside the front one's mask
      const front = interaction === 'in front of' ? m0 : m1;
      const backColour = COLOUR_RGB[interaction === 'in front of' ? 'yellow' : 'blue'];
      for (let i = 0; i < front.length; i++) {
        if (!front[i]) continue;
        const d = Math.hypot(r.rgb[3 * i]! - backColour[0], r.rgb[3 * i + 1]! - backColour[1], r.rgb[3 * i + 2]! - backColour[2]);
        expect(d).toBeGreaterThan(40);
      }
    }
  });

  it('labels carry the spec and the visible boxes', () => {
    const spec = sampleSceneSpec(11, { subjects: 2 });
    const r = renderScene(spec);
    expect(r.labels.interaction).toBe(spec.interaction);
    expect(r.labels.context).toBe(spec.context);
    r.labels.subjects.forEach((s, i) => {
      expect(s.class).toBe(spec.subjects[i]!.class);
      expect(s.colour).toBe(spec.subjects[i]!.colour);
      expect(s.area).toBe(r.masks[i]!.reduce((a, v) => a + v, 0));
      const [x0, y0, x1, y1] = s.box!;
      for (let p = 0; p < 64 * 64; p++) {
        if (!r.masks[i]![p]) continue;
        const x = p % 64;
        const y = Math.floor(p / 64);
        expect(x >= x0 && x < x1 && y >= y0 && y < y1).toBe(true);
      }
    });
  });

  it('rejects a bad size', () => {
    expect(() => renderScene(cat, { size: 8 })).toThrow(/size must be an integer from 32 to 512/);
  });
});
