/**
 * The text-to-image check's tally: per attribute, and `identity` (a subject's class, colour, pattern and accessory
 * all read as asked); then the check itself on the committed bundle, renders and reconstructions only (`steps: 0`).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttributeScore, SampleScore } from './score.js';
import { evaluateTextToImage, t2iMarkdown, tallyInto, T2I_ATTRIBUTES } from './text-to-image.js';

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
    expect(t2iMarkdown(r)).toMatch(/^\| identity \| - \| \d+\.\d% \(\d+\/\d+\) \| \d+\.\d% \(\d+\/\d+\) \|$/m);
  }, 120_000);
});
