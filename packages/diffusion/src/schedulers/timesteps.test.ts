import { schedulerFixture } from '../testing/schedulers.js';
import { eulerTimesteps, integerTimesteps, roundHalfEven } from './timesteps.js';

const fixture = schedulerFixture();
const T = 1000;
const cases = Object.keys(fixture.timesteps).map((key) => {
  const [spacing, offset, n] = key.split(':') as ['leading' | 'trailing' | 'linspace', string, string];
  return { key, spacing, offset: Number(offset), n: Number(n) };
});

/** The published formulas, written out independently of timesteps.ts (no numpy range emulation). */
function published(spacing: 'leading' | 'trailing' | 'linspace', n: number, offset: number): number[] {
  const desc = Array.from({ length: n }, (_, k) => n - 1 - k);
  if (spacing === 'leading') return desc.map((i) => i * Math.floor(T / n) + offset);
  if (spacing === 'linspace') return desc.map((i) => roundHalfEven((i * (T - 1)) / (n - 1 || 1)));
  return Array.from({ length: n }, (_, i) => roundHalfEven(T - (i * T) / n) - 1);
}

describe('set_timesteps spacing', () => {
  it.each(cases)('$key equals numpy (diffusers) and the published formula', ({ key, spacing, offset, n }) => {
    const steps = integerTimesteps(spacing, n, T, offset);
    expect(steps).toEqual(fixture.timesteps[key]);
    expect(steps).toEqual(published(spacing, n, offset));
    expect(steps).toHaveLength(n);
  });

  it('gives Stable Diffusion 1.x/2.x-base its leading, offset-1 schedule of 50 steps: 981, 961, ..., 1', () => {
    expect(integerTimesteps('leading', 50, T, 1)).toEqual(Array.from({ length: 50 }, (_, i) => 981 - 20 * i));
  });

  it('rounds half to even like numpy', () => {
    expect(integerTimesteps('trailing', 16, T, 0).slice(0, 4)).toEqual([999, 937, 874, 811]); // 937.5 -> 938, 812.5 -> 812
    expect(integerTimesteps('linspace', 7, T, 0)).toEqual([999, 832, 666, 500, 333, 166, 0]); // 832.5, 499.5, 166.5
    expect(integerTimesteps('trailing', 1, T, 0)).toEqual([999]);
    expect(roundHalfEven(-0.5)).toBe(-0);
  });

  it('keeps fractional float32 timesteps for Euler with linspace spacing', () => {
    for (const [key, ref] of Object.entries(fixture.euler)) {
      const [spacing, offset, n] = key.split(':') as ['leading' | 'trailing' | 'linspace', string, string];
      expect(eulerTimesteps(spacing, Number(n), T, Number(offset))).toEqual(ref.timesteps.map(Math.fround));
    }
    expect(eulerTimesteps('linspace', 7, T, 0)).toEqual([999, 832.5, 666, 499.5, 333, 166.5, 0]);
  });

  it('rejects step counts outside [1, num_train_timesteps], naming the count', () => {
    expect(() => integerTimesteps('leading', 0, T, 1)).toThrow(/inference steps 0/);
    expect(() => integerTimesteps('leading', 1001, T, 1)).toThrow(/1001/);
    expect(() => integerTimesteps('leading', 2.5, T, 1)).toThrow(/2\.5/);
  });
});
