import { isDiffusionError } from '../errors.js';
import { maxAbsDiff, pattern, sdSchedulerConfig } from '../testing/schedulers.js';
import { DDPMScheduler } from './ddpm.js';

const n = 64;
const x0 = pattern(n, 0.3, 0.8);
const eps = pattern(n, 1.1);
const zeros = (): Float32Array => new Float32Array(n);

describe('DDPMScheduler', () => {
  it('add_noise is sqrt(abar) x0 + sqrt(1 - abar) eps and a perfect eps or v prediction recovers x0', () => {
    const eps_ = new DDPMScheduler(sdSchedulerConfig());
    const v_ = new DDPMScheduler(sdSchedulerConfig({ predictionType: 'v_prediction' }));
    for (const t of [0, 1, 250, 999]) {
      const abar = eps_.alphasCumprod[t]!;
      const xt = eps_.addNoise(x0, eps, t);
      expect(
        maxAbsDiff(
          xt,
          x0.map((x, i) => Math.sqrt(abar) * x + Math.sqrt(1 - abar) * eps[i]!),
        ),
      ).toBeLessThan(1e-6);
      const v = eps_.getVelocity(x0, eps, t);
      expect(
        maxAbsDiff(
          v,
          eps.map((e, i) => Math.sqrt(abar) * e - Math.sqrt(1 - abar) * x0[i]!),
        ),
      ).toBeLessThan(1e-6);
      // 1 / sqrt(abar) amplifies float32 rounding of x_t at t = 999 (abar ~ 0.0047).
      const tol = 2e-6 / Math.sqrt(abar);
      expect(maxAbsDiff(eps_.predictOriginalSample(eps, t, xt), x0)).toBeLessThan(tol);
      expect(maxAbsDiff(v_.predictOriginalSample(v, t, xt), x0)).toBeLessThan(2e-6);
    }
  });

  it('steps by the posterior mean and the fixed_small variance, worked by hand at one step', () => {
    const s = new DDPMScheduler(sdSchedulerConfig());
    s.setTimesteps(50); // 981, 961, ...: the step from 501 lands on 481
    const t = 501;
    const prev = 481;
    expect(s.previousTimestep(t)).toBe(prev);
    const a = s.alphasCumprod[t]!;
    const ap = s.alphasCumprod[prev]!;
    const beta = 1 - a / ap;
    expect(s.variance(t)).toBeCloseTo(((1 - ap) / (1 - a)) * beta, 15);
    // The same numbers from torch float32 (diffusers' _get_variance on SD's schedule).
    expect(Math.abs(a / 0.27499887347221375 - 1)).toBeLessThan(1e-6);
    expect(Math.abs(s.variance(t) / 0.08689801394939423 - 1)).toBeLessThan(1e-5);
    const xt = s.addNoise(x0, eps, t);
    const z = pattern(n, 2.2);
    const out = s.step(eps, t, xt, () => z);
    const hat = xt.map((x, i) => (x - Math.sqrt(1 - a) * eps[i]!) / Math.sqrt(a));
    const expected = hat.map(
      (h, i) => (Math.sqrt(ap) * beta * h) / (1 - a) + (Math.sqrt(1 - beta) * (1 - ap) * xt[i]!) / (1 - a) + Math.sqrt(((1 - ap) / (1 - a)) * beta) * z[i]!,
    );
    expect(maxAbsDiff(out, expected)).toBeLessThan(2e-6);
    // With a perfect prediction and no noise the mean is exactly q(x_prev | x0) with the same eps scaled:
    // sqrt(abar_prev) x0 + sqrt(1 - abar_prev - var) eps.
    const mean = s.step(eps, t, xt, zeros);
    const c = Math.sqrt(1 - ap - s.variance(t));
    expect(
      maxAbsDiff(
        mean,
        x0.map((x, i) => Math.sqrt(ap) * x + c * eps[i]!),
      ),
    ).toBeLessThan(2e-6);
  });

  it('uses fixed_large (beta_t) when asked, and no noise at t = 0', () => {
    const large = new DDPMScheduler(sdSchedulerConfig({ stepsOffset: 0 }), { varianceType: 'fixed_large' });
    large.setTimesteps(10);
    expect(large.variance(500)).toBeCloseTo(1 - large.alphasCumprod[500]! / large.alphasCumprod[400]!, 15);
    const last = large.timesteps.at(-1)!;
    expect(last).toBe(0);
    let calls = 0;
    const out = large.step(eps, 0, large.addNoise(x0, eps, 0), () => (calls++, zeros()));
    expect(calls).toBe(0);
    expect(maxAbsDiff(out, x0)).toBeLessThan(1e-5); // abar_prev = 1: the step returns the predicted x0
  });

  it('clips x0 when the config says so, and steps t -> t-1 before setTimesteps', () => {
    const s = new DDPMScheduler(sdSchedulerConfig({ clipSample: true, clipSampleRange: 0.5 }));
    expect(s.previousTimestep(10)).toBe(9);
    const big = x0.map((x) => 4 * x);
    const out = s.step(eps, 10, s.addNoise(big, eps, 10), zeros);
    expect(big.some((x) => Math.abs(x) > 0.5)).toBe(true);
    const a = s.alphasCumprod[10]!;
    const ap = s.alphasCumprod[9]!;
    const clamped = s.predictOriginalSample(eps, 10, s.addNoise(big, eps, 10)).map((x) => Math.max(-0.5, Math.min(0.5, x)));
    const xt = s.addNoise(big, eps, 10);
    const expected = clamped.map((h, i) => (Math.sqrt(ap) * (1 - a / ap) * h) / (1 - a) + (Math.sqrt(a / ap) * (1 - ap) * xt[i]!) / (1 - a));
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-5);
  });

  it('names the missing noise source and a timestep outside the schedule', () => {
    const s = new DDPMScheduler(sdSchedulerConfig());
    s.setTimesteps(20);
    const noisy = s.addNoise(x0, eps, 951);
    let error: unknown;
    try {
      s.step(eps, 951, noisy);
    } catch (e) {
      error = e;
    }
    expect(isDiffusionError(error, 'BAD_ARGUMENT') && /noise source/.test(error.message)).toBe(true);
    expect(() => s.step(eps, 950, noisy, zeros)).toThrow(/950 is not in the DDPM schedule/);
    expect(() => s.addNoise(x0, eps, 1000)).toThrow(/timestep 1000/);
    expect(() => s.step(eps.subarray(1), 951, noisy, zeros)).toThrow(/lengths differ/);
  });
});
