import { isDiffusionError } from '../errors.js';
import { schedulerFixture, sdSchedulerConfig } from '../testing/schedulers.js';
import { alphasCumprod, cosineAlphaBar, makeBetas } from './betas.js';

const fixture = schedulerFixture();
const T = 1000;

describe('beta schedules', () => {
  it.each(['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const)('%s matches torch float32 betas and alphas_cumprod', (schedule) => {
    const ref = fixture.schedules[schedule];
    const betas = makeBetas(sdSchedulerConfig({ betaSchedule: schedule, betaStart: ref.beta_start, betaEnd: ref.beta_end }));
    const abar = alphasCumprod(betas);
    for (let t = 0; t < T; t++) {
      // torch's float32 linspace rounds intermediates (SIMD-width dependent): within a few float32 ulps.
      expect(Math.abs(betas[t]! - Math.fround(ref.betas[t]!))).toBeLessThanOrEqual(4e-7 * betas[t]!);
      expect(Math.abs(abar[t]! - Math.fround(ref.alphas_cumprod[t]!))).toBeLessThanOrEqual(1e-6 * abar[t]!);
      expect(Math.fround(abar[t]!)).toBe(abar[t]); // held as float32 values
    }
  });

  it('scaled_linear is the square of a linspace of square roots, with the configured endpoints', () => {
    const betas = makeBetas(sdSchedulerConfig());
    expect(Math.abs(betas[0]! / 0.00085 - 1)).toBeLessThan(2.4e-7);
    expect(Math.abs(betas[T - 1]! / 0.012 - 1)).toBeLessThan(2.4e-7);
    const root = (t: number): number => Math.sqrt(0.00085) + ((Math.sqrt(0.012) - Math.sqrt(0.00085)) * t) / (T - 1);
    for (const t of [1, 250, 500, 998]) expect(betas[t]! / root(t) ** 2 - 1).toBeLessThan(2e-7);
  });

  it('linear interpolates beta_start..beta_end', () => {
    const betas = makeBetas(sdSchedulerConfig({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02 }));
    for (const t of [0, 1, 333, 999]) expect(Math.abs(betas[t]! - (1e-4 + ((0.02 - 1e-4) * t) / 999))).toBeLessThan(1e-9);
  });

  it('squaredcos_cap_v2 telescopes to the cosine alpha_bar, with the last beta capped at 0.999', () => {
    const abar = alphasCumprod(makeBetas(sdSchedulerConfig({ betaSchedule: 'squaredcos_cap_v2' })));
    for (const t of [0, 10, 500, 900, 990]) {
      const exact = cosineAlphaBar((t + 1) / T) / cosineAlphaBar(0);
      expect(Math.abs(abar[t]! / exact - 1)).toBeLessThan(1e-4);
    }
    const betas = makeBetas(sdSchedulerConfig({ betaSchedule: 'squaredcos_cap_v2' }));
    expect(betas[T - 1]).toBe(Math.fround(0.999));
  });

  it('uses trained_betas as given (float32) and rejects a wrong count or an unknown schedule', () => {
    const trained = Array.from({ length: 10 }, (_, i) => 0.01 * (i + 1));
    const betas = makeBetas(sdSchedulerConfig({ numTrainTimesteps: 10, trainedBetas: trained }));
    expect(Array.from(betas)).toEqual(trained.map(Math.fround));
    let expected = 1;
    const abar = alphasCumprod(betas);
    trained.forEach((b, i) => {
      expected *= Math.fround(1 - Math.fround(b));
      expect(abar[i]).toBe(Math.fround(expected));
    });
    const codeOf = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return isDiffusionError(e) ? e.code : 'other';
      }
      return undefined;
    };
    expect(codeOf(() => makeBetas(sdSchedulerConfig({ trainedBetas: trained })))).toBe('BAD_CONFIG');
    expect(codeOf(() => makeBetas(sdSchedulerConfig({ betaSchedule: 'sigmoid' as never })))).toBe('BAD_CONFIG');
    expect(() => makeBetas(sdSchedulerConfig({ betaSchedule: 'sigmoid' as never }))).toThrow(/sigmoid/);
  });
});
