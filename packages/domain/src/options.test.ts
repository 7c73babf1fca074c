import { personalizationOptionsSchema, PRESET_NAMES } from './options.js';

test('accepts each preset, steps and prompts, and nothing at all', () => {
  for (const preset of PRESET_NAMES) expect(personalizationOptionsSchema.parse({ preset })).toEqual({ preset });
  expect(personalizationOptionsSchema.parse({ steps: 200, prompts: ['a photo of <s1>'] })).toEqual({ steps: 200, prompts: ['a photo of <s1>'] });
  expect(personalizationOptionsSchema.parse({})).toEqual({});
});

test('refuses unknown fields, unknown presets and out-of-range values (a client cannot reach dynasyn internals)', () => {
  for (const bad of [
    { train: { phase1: { steps: 1 } } },
    { preset: 'huge' },
    { steps: 0 },
    { steps: 1.5 },
    { prompts: [''] },
    { prompts: Array.from({ length: 33 }, () => 'p') },
  ])
    expect(personalizationOptionsSchema.safeParse(bad).success).toBe(false);
});
