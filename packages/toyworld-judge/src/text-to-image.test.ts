/**
 * The text-to-image check's tally: per attribute, and `identity` (a subject's class, colour, pattern and accessory
 * all read as asked); then the check itself on the committed bundle, renders and reconstructions only (`steps: 0`).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttributeScore, SampleScore } from './score.js';
import { evaluateTextToImage, t2iMarkdown, tallyInto, T2I_ATTRIBUTES, wilsonInterval } from './text-to-image.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');

const read = (asked: string, predicted: string): AttributeScore => ({ asked, predicted, confidence: 0.9, ok: asked === predicted });
const sample = (subjects: SampleScore['perAttribute']['subjects']): SampleScore => ({
  identityKept: [],
  promptFollowed: true,
  perAttribute: { subjects, interaction: read('next to', 'on top of') },
  predictions: [],
  regions: [],
});
const empty = () => Object.fromEntries(T2I_ATTRIBUTES.map((k) => [k, { asked: 0, ok: 0 }])) as Parameters<typeof tallyInto>[0];

test('the interval of a rate read on n subjects: the Wilson score interval (closed form), narrowing as n grows', () => {
  const [lo, hi] = wilsonInterval(50, 100);
  // p = 0.5, n = 100, z = 1.96: centre 0.5, half-width 1.96 sqrt(0.0025 + 0.96^2/40000) / 1.0384 = 0.0962
  expect(lo).toBeCloseTo(0.4038, 4);
  expect(hi).toBeCloseTo(0.5962, 4);
  const [lo2, hi2] = wilsonInterval(772, 901); // the committed bundle's class over 600 captions
  expect(lo2).toBeGreaterThan(0.83);
  expect(hi2).toBeLessThan(0.88);
  expect(hi2 - lo2).toBeLessThan(hi - lo);
  // never outside [0, 1], even at 0 or n right
  expect(wilsonInterval(0, 10)[0]).toBe(0);
  expect(wilsonInterval(10, 10)[1]).toBe(1);
  expect(wilsonInterval(10, 10)[0]).toBeGreaterThan(0.69);
});

describe('the text-to-image tally', () => {
  it('counts a subject as identity kept only when all four identity attributes are read as asked', () => {
    const t = empty();
    const all = { class: read('cat', 'cat'), colour: read('red', 'red'), pattern: read('dots', 'dots'), accessory: read('hat', 'hat') };
    tallyInto(t, sample([all, { ...all, pattern: read('dots', 'stripes'), action: read('sitting', 'sitting') }]));
    expect(t.identity).toEqual({ asked: 2, ok: 1 });
    expect(t.pattern).toEqual({ asked: 2, ok: 1 });
    expect(t.class).toEqual({ asked: 2, ok: 2 });
    expect(t.action).toEqual({ asked: 1, ok: 1 });
    expect(t.interaction).toEqual({ asked: 1, ok: 0 });
    // a subject whose caption leaves its accessory unsaid has no identity to read
    tallyInto(t, sample([{ class: read('dog', 'dog'), colour: read('blue', 'blue'), pattern: read('plain', 'plain') }]));
    expect(t.identity).toEqual({ asked: 2, ok: 1 });
    expect(t.class).toEqual({ asked: 3, ok: 3 });
  });

  it('reads identity on the committed bundle no more often than any one of its four attributes', async () => {
    const r = await evaluateTextToImage({
      bundle: join(root, 'models', 'toyworld'),
      judge: join(root, 'models', 'toyworld-judge'),
      count: 6,
      seed: 0,
      steps: 0,
      guidance: 5,
      threads: 1,
    });
    for (const table of [r.renders, r.reconstructions]) {
      // full captions name every subject's class, colour and pattern, and its accessory where it has one (as the
      // demo's two subjects do): identity is read on the subjects with an accessory
      expect(table.identity.asked).toBe(table.accessory.asked);
      expect(table.identity.asked).toBeGreaterThanOrEqual(3);
      for (const k of ['class', 'colour', 'pattern', 'accessory'] as const) expect(table.identity.ok).toBeLessThanOrEqual(table[k].ok);
    }
    expect(r.samples.identity.asked).toBe(0);
    // the per-class confusion holds every subject once: its rows add up to the class tally, its diagonal to what was read right
    for (const [conf, table] of [
      [r.classes.renders, r.renders],
      [r.classes.reconstructions, r.reconstructions],
    ] as const) {
      const rows = Object.entries(conf);
      expect(rows.reduce((a, [, row]) => a + Object.values(row).reduce((x, y) => x + y, 0), 0)).toBe(table.class.asked);
      expect(rows.reduce((a, [k, row]) => a + (row[k] ?? 0), 0)).toBe(table.class.ok);
    }
    expect(r.classes.samples).toEqual({});
    // split by the caption's subjects: the two parts add up to the whole, attribute by attribute
    for (const set of ['samples', 'renders', 'reconstructions'] as const)
      for (const k of ['class', 'identity', 'interaction'] as const)
        expect([r.bySubjects.one[set][k].asked + r.bySubjects.two[set][k].asked, r.bySubjects.one[set][k].ok + r.bySubjects.two[set][k].ok]).toEqual([
          r[set][k].asked,
          r[set][k].ok,
        ]);
    expect(r.bySubjects.one.renders.interaction.asked).toBe(0); // one subject alone: no interaction to read
    expect(r.bySubjects.one.renders.class.asked).toBeGreaterThan(0);
    expect(r.bySubjects.two.renders.class.asked).toBeGreaterThan(0);
    expect(t2iMarkdown(r)).toMatch(/^\| class asked \| generated samples \| true renders \| through the VAE \| reconstructions read as instead \|$/m);
    expect(t2iMarkdown(r)).toMatch(/^\| identity \| - \| \d+\.\d% \(\d+\/\d+; \d+\.\d-\d+\.\d\) \| \d+\.\d% \(\d+\/\d+; \d+\.\d-\d+\.\d\) \|$/m);
  }, 120_000);
});
