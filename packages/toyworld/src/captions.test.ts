import { captionFor, captionsFor, describeSubject, parseCaption, type MentionedLabels } from './captions.js';
import { createRng } from './prng.js';
import { renderScene } from './render.js';
import { sampleSceneSpec } from './sample.js';
import type { SceneSpec } from './spec.js';
import { ACCESSORIES, CLASSES, COLOURS, PATTERNS } from './vocab.js';

/** The labels a caption may name, from the spec. */
function labelsOf(spec: SceneSpec): MentionedLabels {
  return {
    subjects: spec.subjects.map(({ class: c, colour, pattern, accessory, action }) => ({ class: c, colour, pattern, accessory, action })),
    interaction: spec.interaction,
    context: spec.context,
    style: spec.style,
  };
}

describe('captions', () => {
  it('the complete caption names exactly the labels (every one, nothing else), over 600 scenes', () => {
    const rng = createRng('captions-full');
    for (let i = 0; i < 600; i++) {
      const spec = sampleSceneSpec(rng, { heldOut: 'include' });
      const caption = captionFor(spec, rng, { detail: 'full' });
      const expected = labelsOf(spec);
      // an accessory `none` is not said
      for (const s of expected.subjects) if (s.accessory === 'none') delete s.accessory;
      expect([caption, parseCaption(caption)]).toEqual([caption, expected]);
    }
  });

  it('describes every identity in words a prompt reads back as that identity, alone and beside another', () => {
    expect(describeSubject({ class: 'cat', colour: 'orange', pattern: 'stripes', accessory: 'bow' })).toBe('orange striped cat with a bow');
    expect(describeSubject({ class: 'teddy bear', colour: 'brown', pattern: 'plain', accessory: 'none' })).toBe('brown plain teddy bear');
    const other = { class: 'dog', colour: 'white', pattern: 'checks', accessory: 'hat' } as const;
    for (const c of CLASSES)
      for (const colour of COLOURS)
        for (const pattern of PATTERNS)
          for (const accessory of ACCESSORIES) {
            const id = { class: c, colour, pattern, accessory };
            const said = { class: c, colour, pattern, ...(accessory === 'none' ? {} : { accessory }) };
            expect(parseCaption(`${describeSubject(id)} jumping in the snow`)).toEqual({ subjects: [{ ...said, action: 'jumping' }], context: 'snow' });
            expect(parseCaption(`${describeSubject(id)} next to ${describeSubject(other)}`).subjects).toEqual([said, other]);
          }
  });

  it('random captions name only true labels, vary, and include short ones', () => {
    const rng = createRng('captions-random');
    const texts = new Set<string>();
    let short = 0;
    for (let i = 0; i < 600; i++) {
      const spec = sampleSceneSpec(rng);
      const caption = captionFor(spec, rng);
      texts.add(caption);
      if (caption.split(' ').length <= 3) short++;
      const said = parseCaption(caption);
      const truth = labelsOf(spec);
      expect(said.subjects).toHaveLength(spec.subjects.length);
      said.subjects.forEach((s, k) => {
        expect(s.class).toBe(truth.subjects[k]!.class); // the class is always said
        for (const [field, value] of Object.entries(s)) expect([caption, field, value]).toEqual([caption, field, truth.subjects[k]![field as keyof typeof s]]);
      });
      for (const field of ['interaction', 'context', 'style'] as const)
        if (said[field] !== undefined) expect([caption, said[field]]).toEqual([caption, truth[field]]);
    }
    expect(texts.size).toBeGreaterThan(550);
    expect(short).toBeGreaterThan(25);
  });

  it('reads the examples people write', () => {
    expect(parseCaption('a red striped cat wearing a hat jumping on the beach')).toEqual({
      subjects: [{ class: 'cat', colour: 'red', pattern: 'stripes', accessory: 'hat', action: 'jumping' }],
      context: 'beach',
    });
    expect(parseCaption('a sketch of a blue dog next to a yellow duck in the snow')).toEqual({
      subjects: [
        { class: 'dog', colour: 'blue' },
        { class: 'duck', colour: 'yellow' },
      ],
      interaction: 'next to',
      context: 'snow',
      style: 'sketch',
    });
    expect(parseCaption('a cat')).toEqual({ subjects: [{ class: 'cat' }] });
    expect(parseCaption('an orange teddy bear with polka dots lying down behind a box at night').subjects[0]).toEqual({
      class: 'teddy bear',
      colour: 'orange',
      pattern: 'dots',
      action: 'lying down',
    });
  });

  it('a render carries its captions, the first complete, the same for the same spec', () => {
    const spec = sampleSceneSpec(42, { subjects: 2 });
    const r = renderScene(spec);
    expect(r.captions).toEqual(captionsFor(spec));
    expect(r.captions.length).toBe(4);
    expect(parseCaption(r.captions[0]!).interaction).toBe(spec.interaction);
    expect(r.captions[0]).toMatch(/^an? /);
  });
});
