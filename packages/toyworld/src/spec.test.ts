import { isToyworldError } from './errors.js';
import { parseSceneSpec } from './spec.js';

const good = {
  subjects: [{ class: 'dog', colour: 'blue', pattern: 'dots', accessory: 'hat', action: 'sitting' }],
  context: 'beach',
  style: 'sketch',
};

const failure = (json: unknown): string => {
  try {
    parseSceneSpec(json);
  } catch (err) {
    expect(isToyworldError(err, 'BAD_SPEC')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a BAD_SPEC error');
};

describe('parseSceneSpec', () => {
  it('accepts a valid spec', () => {
    expect(parseSceneSpec(good)).toEqual(good);
  });

  it('names the bad field and the allowed values', () => {
    const msg = failure({ ...good, subjects: [{ ...good.subjects[0], colour: 'teal' }] });
    expect(msg).toMatch(/subjects\.0\.colour: expected one of "red", .*"black"; got "teal"/);
    expect(failure({ ...good, context: 'moon' })).toMatch(/context: expected one of/);
    expect(failure({ ...good, style: undefined })).toMatch(/style:/);
  });

  it('requires an interaction with two subjects and refuses one with a single subject', () => {
    const two = { ...good, subjects: [good.subjects[0], { ...good.subjects[0], class: 'cat' }] };
    expect(failure(two)).toMatch(/interaction: required with two subjects/);
    expect(parseSceneSpec({ ...two, interaction: 'on top of' }).interaction).toBe('on top of');
    expect(failure({ ...good, interaction: 'next to' })).toMatch(/interaction: only a scene with two subjects/);
    expect(failure({ ...good, subjects: [] })).toMatch(/subjects: a scene has 1 or 2 subjects/);
  });

  it('refuses unknown fields and out-of-range layouts', () => {
    expect(failure({ ...good, colour: 'red' })).toMatch(/colour/);
    expect(failure({ ...good, layout: { x: 0.1 } })).toMatch(/layout\.x/);
    expect(failure({ ...good, subjects: [{ ...good.subjects[0], size: 3 }] })).toMatch(/subjects\.0/);
  });
});
