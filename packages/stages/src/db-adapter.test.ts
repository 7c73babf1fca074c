import { jobOptions } from './db-adapter.js';

describe('jobOptions', () => {
  it("maps the API's {preset, steps, prompts} onto dynasyn options", () => {
    const o = jobOptions({ preset: 'tiny', steps: 3, prompts: ['a photo of <asset0>'] }, 'p');
    expect(o.preset).toBe('tiny');
    expect([o.train.phase1.steps, o.train.phase2.steps]).toEqual([3, 3]);
    expect(o.sampling.prompts).toEqual(['a photo of <asset0>']);
    expect(jobOptions({}, 'p').preset).toBe('fast');
  });
  it('refuses bad stored options for good, naming the personalization', () => {
    expect(() => jobOptions({ preset: 'huge' }, 'p9')).toThrow(expect.objectContaining({ name: 'PermanentStageError', code: 'BAD_OPTION', message: expect.stringContaining('p9') }));
  });
});
