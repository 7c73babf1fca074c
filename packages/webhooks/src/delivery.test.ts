import { retryDelayMs } from './delivery.js';

// Delivery itself is tested against the Postgres store in delivery.int.test.ts; this is the pure schedule.
describe('retry schedule', () => {
  it('spreads retry delays with jitter around the schedule', () => {
    const d = [0, 0.5, 1].map((r) => retryDelayMs(1, { random: () => r }));
    expect(d).toEqual([4000, 5000, 6000]);
    expect(retryDelayMs(6)).toBeUndefined();
  });
});
