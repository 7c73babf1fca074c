import { maxAbsDiff, pattern, schedulerFixture, sdSchedulerConfig } from '../testing/schedulers.js';
import type { TimestepSpacing } from '../types.js';
import { DDPMScheduler } from './ddpm.js';
import { EulerDiscreteScheduler } from './euler.js';

const fixture = schedulerFixture();
const n = 64;
const x0 = pattern(n, 0.3, 0.8);
const eps = pattern(n, 1.1);

const euler = (spacing: TimestepSpacing, stepsOffset: number, steps: number, predictionType: 'epsilon' | 'v_prediction' = 'epsilon') => {
  const s = new EulerDiscreteScheduler(sdSchedulerConfig({ timestepSpacing: spacing, stepsOffset, predictionType }));
  s.setTimesteps(steps);
  return s;
};

describe('EulerDiscreteScheduler', () => {
  it.each(Object.keys(fixture.euler))('%s: timesteps, sigmas and init_noise_sigma match diffusers (numpy interp, torch float32)', (key) => {
    const [spacing, offset, steps] = key.split(':') as [TimestepSpacing, string, string];
    const ref = fixture.euler[key]!;
    const s = euler(spacing, Number(offset), Number(steps));
    expect(s.timesteps).toEqual(ref.timesteps.map(Math.fround));
    s.sigmas.forEach((sigma, i) => expect(Math.abs(sigma - Math.fround(ref.sigmas[i]!))).toBeLessThanOrEqual(1e-6 * sigma));
    expect(Math.abs(s.initNoiseSigma / ref.init_noise_sigma - 1)).toBeLessThan(1e-6);
  });

  it('has decreasing sigmas ending in 0, sigma = sqrt((1 - abar) / abar) at integer timesteps, linear in between', () => {
    const s = euler('linspace', 0, 30);
    for (let i = 1; i < s.sigmas.length; i++) expect(s.sigmas[i]!).toBeLessThan(s.sigmas[i - 1]!);
    expect(s.sigmas.at(-1)).toBe(0);
    const abar = s.alphasCumprod;
    expect(s.sigmaAt(999)).toBeCloseTo(Math.sqrt((1 - abar[999]!) / abar[999]!), 5);
    expect(s.sigmaAt(500.25)).toBeCloseTo(0.75 * s.sigmaAt(500) + 0.25 * s.sigmaAt(501), 6);
    expect(s.initNoiseSigma).toBe(s.sigmas[0]); // linspace/trailing: sigma_max
    const leading = euler('leading', 1, 30);
    expect(leading.initNoiseSigma).toBeCloseTo(Math.sqrt(leading.sigmas[0]! ** 2 + 1), 5);
  });

  it('scales the model input by 1 / sqrt(sigma^2 + 1), turning its sample into the DDPM x_t', () => {
    const s = euler('leading', 1, 50);
    const ddpm = new DDPMScheduler(sdSchedulerConfig());
    for (const t of [981, 501, 1]) {
      const sigma = s.sigmas[s.timesteps.indexOf(t)]!;
      const scaled = s.scaleModelInput(s.addNoise(x0, eps, t), t);
      const x = s.addNoise(x0, eps, t);
      expect(
        maxAbsDiff(
          scaled,
          x.map((v) => v / Math.sqrt(sigma * sigma + 1)),
        ),
      ).toBeLessThan(1e-6);
      expect(maxAbsDiff(scaled, ddpm.addNoise(x0, eps, t))).toBeLessThan(2e-6);
    }
  });

  it.each(['epsilon', 'v_prediction'] as const)('with a perfect %s prediction steps to x0 + sigma_next eps and samples x0', (predictionType) => {
    const s = euler('linspace', 0, 25, predictionType);
    const perfect = (x: Float32Array, t: number): Float32Array => {
      const v = s.getVelocity(x0, eps, t);
      // The model sees the scaled input; a perfect one answers the true eps or v whatever x is.
      s.scaleModelInput(x, t);
      return predictionType === 'epsilon' ? eps : v;
    };
    s.timesteps.forEach((t, i) => {
      const x = s.addNoise(x0, eps, t);
      const out = s.step(perfect(x, t), t, x);
      expect(
        maxAbsDiff(
          out,
          x0.map((v, j) => v + s.sigmas[i + 1]! * eps[j]!),
        ),
      ).toBeLessThan(2e-5 * s.sigmas[i]!);
      expect(maxAbsDiff(s.predictOriginalSample(perfect(x, t), t, x), x0)).toBeLessThan(2e-5 * s.sigmas[i]!);
    });
    let x: Float32Array = x0.map((v, i) => v + s.initNoiseSigma * eps[i]!); // start: x0 + sigma_max eps
    for (const t of s.timesteps) x = s.step(perfect(x, t), t, x);
    expect(maxAbsDiff(x, x0)).toBeLessThan(1e-4);
  });

  it('is deterministic without churn and draws noise with s_churn > 0', () => {
    const s = euler('leading', 1, 10);
    const t = s.timesteps[3]!;
    const x = s.addNoise(x0, eps, t);
    expect(s.step(eps, t, x)).toEqual(s.step(eps, t, x, () => pattern(n, 5)));
    const churn = new EulerDiscreteScheduler(sdSchedulerConfig(), { sChurn: 1 });
    churn.setTimesteps(10);
    expect(() => churn.step(eps, t, x)).toThrow(/noise source/);
    expect(churn.step(eps, t, x, () => pattern(n, 5))).not.toEqual(s.step(eps, t, x));
  });

  it('names a timestep that is not in the schedule', () => {
    const s = euler('leading', 1, 10);
    expect(() => s.step(eps, 500, x0)).toThrow(/timestep 500 is not in the Euler schedule/);
    expect(() => s.scaleModelInput(x0, 3)).toThrow(/scheduler\.timesteps/);
    expect(() => s.addNoise(x0, eps, 1000)).toThrow(/outside \[0, 999\]/);
  });
});
