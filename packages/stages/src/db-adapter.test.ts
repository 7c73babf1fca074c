import { jobOptions } from './db-adapter.js';

describe('jobOptions', () => {
  it("maps the API's {preset, steps, prompts} onto dynasyn options", () => {
    const o = jobOptions({ preset: 'tiny', steps: 3, prompts: ['a photo of <asset0>'] }, 'p');
    expect(o.preset).toBe('tiny');
    expect([o.train.phase1.steps, o.train.phase2.steps]).toEqual([3, 3]);
    expect(o.sampling.prompts).toEqual(['a photo of <asset0>']);
    expect(jobOptions({}, 'p').preset).toBe('fast');
    expect(jobOptions(null, 'p').preset).toBe('fast');
    expect(jobOptions({ placeholderVectors: 6 }, 'p').train.placeholderVectors).toBe(6);
    expect(jobOptions({}, 'p').train.placeholderVectors).toBeUndefined();
  });

  it('keeps the dynasyn overrides an operator or a test stored beside the client options', () => {
    const o = jobOptions({ preset: 'tiny', steps: 3, augmentation: { count: 2 }, train: { checkpointEvery: 2 } }, 'p');
    expect(o.augmentation.count).toBe(2);
    expect([o.train.phase1.steps, o.train.checkpointEvery]).toEqual([3, 2]);
  });

  it('refuses bad stored options for good, naming the personalization and the option', () => {
    for (const [stored, option] of [
      [{ preset: 'huge' }, 'preset'],
      [{ steps: '5' }, 'steps'],
      [{ steps: 0 }, 'steps'],
      [{ prompts: 'a dog' }, 'prompts'],
      [{ prompts: [''] }, 'prompts'],
      ['tiny', 'options'],
      [{ augmentation: { count: -1 } }, 'augmentation'],
      [{ placeholderVectors: 0 }, 'placeholderVectors'],
    ] as const) {
      expect(() => jobOptions(stored, 'p9')).toThrow(
        expect.objectContaining({
          name: 'PermanentStageError',
          code: 'BAD_OPTION',
          permanent: true,
          message: expect.stringMatching(new RegExp(`p9.*${option}`)),
        }),
      );
    }
  });
});
