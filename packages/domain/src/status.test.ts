import { canTransition, isTerminal, PERSONALIZATION_STATUSES, statusesLeadingTo } from './status.js';

const all = PERSONALIZATION_STATUSES;

test('terminal states stick: nothing leaves succeeded, failed or canceled', () => {
  for (const from of all.filter(isTerminal)) for (const to of all) expect(canTransition(from, to)).toBe(false);
});

test('a running job moves forward or ends, never back and never to itself', () => {
  expect(canTransition('queued', 'augmenting')).toBe(true);
  expect(canTransition('queued', 'training')).toBe(true); // augmentation reused
  expect(canTransition('training', 'augmenting')).toBe(false);
  expect(canTransition('training', 'training')).toBe(false);
  expect(canTransition('sampling', 'queued')).toBe(false);
  for (const from of ['queued', 'augmenting', 'training', 'sampling'] as const) {
    for (const end of ['succeeded', 'failed', 'canceled'] as const) expect(canTransition(from, end)).toBe(true);
  }
});

test('statusesLeadingTo lists exactly the legal sources', () => {
  for (const to of all) expect(statusesLeadingTo(to).sort()).toEqual(all.filter((from) => canTransition(from, to)).sort());
  expect(statusesLeadingTo('queued')).toEqual([]);
});
