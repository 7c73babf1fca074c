import { renderScene } from './render.js';
import { createRng } from './prng.js';
import { HELD_OUT_IDENTITIES, datasetSceneSpec, isHeldOut, sampleSceneSpec } from './sample.js';
import { parseSceneSpec } from './spec.js';
import { ACCESSORIES, ACTIONS, CLASSES, COLOURS, CONTEXTS, INTERACTIONS, PATTERNS, STYLES, identityKey } from './vocab.js';

describe('sampleSceneSpec', () => {
  it('never draws a held-out identity in exclude mode (20,000 draws), yet draws every label of every list', () => {
    const rng = createRng('held-out-check');
    const seen = new Map<string, Set<string>>();
    const note = (k: string, v: string) => (seen.get(k) ?? seen.set(k, new Set()).get(k)!).add(v);
    for (let i = 0; i < 20_000; i++) {
      const spec = sampleSceneSpec(rng);
      for (const s of spec.subjects) {
        expect(isHeldOut(s)).toBe(false);
        note('class', s.class);
        note('colour', s.colour);
        note('pattern', s.pattern);
        note('accessory', s.accessory);
        note('action', s.action);
      }
      note('context', spec.context);
      note('style', spec.style);
      if (spec.interaction) note('interaction', spec.interaction);
    }
    const lists = {
      class: CLASSES,
      colour: COLOURS,
      pattern: PATTERNS,
      accessory: ACCESSORIES,
      action: ACTIONS,
      context: CONTEXTS,
      style: STYLES,
      interaction: INTERACTIONS,
    };
    for (const [k, list] of Object.entries(lists)) expect([k, seen.get(k)!.size]).toEqual([k, list.length]);
  });

  it('only mode draws held-out identities only; every held-out attribute also occurs in training identities', () => {
    for (let i = 0; i < 500; i++) for (const s of sampleSceneSpec(i, { heldOut: 'only' }).subjects) expect(isHeldOut(s)).toBe(true);
    // compositional: the backbone has seen each part of a held-out identity, never the whole
    expect(new Set(HELD_OUT_IDENTITIES.map(identityKey)).size).toBe(HELD_OUT_IDENTITIES.length);
    for (const c of CLASSES) expect(HELD_OUT_IDENTITIES.filter((h) => h.class === c).length).toBeGreaterThanOrEqual(2);
    expect(HELD_OUT_IDENTITIES.length / (CLASSES.length * COLOURS.length * PATTERNS.length * ACCESSORIES.length)).toBeLessThan(0.02);
  });

  it('gives valid specs, reproducible from the seed, with the requested subject count and fixed fields', () => {
    for (let i = 0; i < 200; i++) {
      const spec = sampleSceneSpec(`s${i}`, { subjects: 2, context: 'desert' });
      expect(parseSceneSpec(spec)).toEqual(spec);
      expect(spec.subjects).toHaveLength(2);
      expect(identityKey(spec.subjects[0]!)).not.toBe(identityKey(spec.subjects[1]!));
      expect(spec.context).toBe('desert');
      expect(INTERACTIONS).toContain(spec.interaction);
    }
    expect(datasetSceneSpec(5, 17)).toEqual(datasetSceneSpec(5, 17));
    expect(datasetSceneSpec(5, 17)).not.toEqual(datasetSceneSpec(5, 18));
    expect(sampleSceneSpec(9, { subjects: 1 }).interaction).toBeUndefined();
  });

  it('renders every sampled scene with both subjects visible', () => {
    for (let i = 0; i < 150; i++) {
      const r = renderScene(datasetSceneSpec('visible', i));
      for (const s of r.labels.subjects) expect(s.area).toBeGreaterThan(25);
    }
  });
});
