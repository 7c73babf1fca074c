import { maxAbsDiff, pattern, sdSchedulerConfig } from '../testing/schedulers.js';
import type { PredictionType, SchedulerConfig } from '../types.js';
import { DDIMScheduler } from './ddim.js';

const n = 64;
const x0 = pattern(n, 0.3, 0.8);
const eps = pattern(n, 1.1);

/**
 * The exact model output for data concentrated on `target`: what a perfect network predicts at (x, t).
 * At abar = 1 (x = target) every noise is consistent; it answers `eps`, the noise of the test trajectory.
 */
function oracle(s: DDIMScheduler, target: Float32Array, x: Float32Array, t: number): Float32Array {
  const abar = t >= 0 ? s.alphasCumprod[t]! : s.finalAlphaCumprod;
  const e = abar === 1 ? Float32Array.from(eps) : x.map((v, i) => (v - Math.sqrt(abar) * target[i]!) / Math.sqrt(1 - abar));
  if (s.config.predictionType === 'epsilon') return e;
  if (s.config.predictionType === 'sample') return Float32Array.from(target);
  return e.map((ei, i) => Math.sqrt(abar) * ei - Math.sqrt(1 - abar) * target[i]!);
}

const configs: [PredictionType, Partial<SchedulerConfig>][] = [
  ['epsilon', {}],
  ['v_prediction', { predictionType: 'v_prediction', timestepSpacing: 'trailing', stepsOffset: 0 }],
  ['sample', { predictionType: 'sample', timestepSpacing: 'linspace', stepsOffset: 0 }],
];

describe('DDIMScheduler', () => {
  it.each(configs)('with a perfect %s prediction, an eta-0 step lands exactly on add_noise(x0, eps, prev)', (_, overrides) => {
    const s = new DDIMScheduler(sdSchedulerConfig(overrides));
    s.setTimesteps(25);
    for (const t of s.timesteps) {
      const xt = s.addNoise(x0, eps, t);
      const out = s.step(oracle(s, x0, xt, t), t, xt);
      const prev = s.previousTimestep(t);
      const abarPrev = prev >= 0 ? s.alphasCumprod[prev]! : s.finalAlphaCumprod; // abar_0 for SD (set_alpha_to_one false)
      const expected = x0.map((x, i) => Math.sqrt(abarPrev) * x + Math.sqrt(1 - abarPrev) * eps[i]!);
      expect(maxAbsDiff(out, expected)).toBeLessThan(2e-5);
      expect(maxAbsDiff(s.predictOriginalSample(oracle(s, x0, xt, t), t, xt), x0)).toBeLessThan(2e-6 / Math.sqrt(s.alphasCumprod[t]!));
    }
  });

  it('agrees on x0 and the next sample whether the model predicts eps, v or x0 of the same truth', () => {
    const byType = (predictionType: PredictionType): DDIMScheduler => {
      const s = new DDIMScheduler(sdSchedulerConfig({ predictionType }));
      s.setTimesteps(50);
      return s;
    };
    const [e, v, x] = [byType('epsilon'), byType('v_prediction'), byType('sample')];
    for (const t of [981, 501, 21, 1]) {
      const xt = e.addNoise(x0, eps, t);
      const outs = [e, v, x].map((s) => s.step(oracle(s, x0, xt, t), t, xt));
      expect(maxAbsDiff(outs[0]!, outs[1]!)).toBeLessThan(2e-5);
      expect(maxAbsDiff(outs[0]!, outs[2]!)).toBeLessThan(2e-5);
      // v from getVelocity is the same truth as eps: the converted x0 coincide.
      const fromV = v.predictOriginalSample(v.getVelocity(x0, eps, t), t, xt);
      expect(maxAbsDiff(fromV, e.predictOriginalSample(eps, t, xt))).toBeLessThan(2e-6 / Math.sqrt(e.alphasCumprod[t]!));
    }
  });

  it('is deterministic at eta 0 and draws noise only when eta > 0', () => {
    const s = new DDIMScheduler(sdSchedulerConfig());
    s.setTimesteps(10);
    const xt = s.addNoise(x0, eps, 901);
    const model = pattern(n, 0.7);
    const a = s.step(model, 901, xt);
    expect(Buffer.from(a.buffer).equals(Buffer.from(s.step(model, 901, xt, () => pattern(n, 9)).buffer))).toBe(true);
    const noisy = new DDIMScheduler(sdSchedulerConfig(), { eta: 1 });
    noisy.setTimesteps(10);
    expect(() => noisy.step(model, 901, xt)).toThrow(/noise source/);
    const z = pattern(n, 4.4);
    const withNoise = noisy.step(model, 901, xt, () => z);
    const withoutNoise = noisy.step(model, 901, xt, () => new Float32Array(n));
    const std = Math.sqrt(noisy.variance(901));
    expect(
      maxAbsDiff(
        withNoise.map((v, i) => v - std * z[i]!),
        withoutNoise,
      ),
    ).toBeLessThan(1e-6);
    // eta = 1 has DDPM's posterior variance: (1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev).
    const [at, ap] = [noisy.alphasCumprod[901]!, noisy.alphasCumprod[801]!];
    expect(noisy.variance(901)).toBeCloseTo(((1 - ap) / (1 - at)) * (1 - at / ap), 14);
  });

  it('inverts: DDIM inversion then sampling returns to the start', () => {
    for (const overrides of [{}, { predictionType: 'v_prediction' as const }]) {
      const s = new DDIMScheduler(sdSchedulerConfig({ ...overrides, setAlphaToOne: true }));
      s.setTimesteps(20);
      // A model whose output depends on x: the data point `x0` (exact), so the ODE is traversed exactly.
      let x: Float32Array = Float32Array.from(x0);
      for (const t of [...s.timesteps].reverse()) x = s.invertStep(oracle(s, x0, x, s.previousTimestep(t)), t, x);
      expect(maxAbsDiff(x, s.addNoise(x0, eps, s.timesteps[0]!))).toBeLessThan(1e-5); // x0 carried to t = 951 along its eps
      for (const t of s.timesteps) x = s.step(oracle(s, x0, x, t), t, x);
      expect(maxAbsDiff(x, x0)).toBeLessThan(1e-4);
    }
  });

  it('inverts a generic smooth model to within the ODE discretisation error, shrinking with more steps', () => {
    const model = (x: Float32Array, t: number): Float32Array => x.map((v, i) => 0.5 * Math.tanh(v) + 0.1 * Math.sin(i + t / 100));
    const roundTrip = (steps: number): number => {
      const s = new DDIMScheduler(sdSchedulerConfig({ setAlphaToOne: true }));
      s.setTimesteps(steps);
      let x: Float32Array = Float32Array.from(x0);
      for (const t of [...s.timesteps].reverse()) x = s.invertStep(model(x, Math.max(0, s.previousTimestep(t))), t, x);
      for (const t of s.timesteps) x = s.step(model(x, t), t, x);
      return maxAbsDiff(x, x0);
    };
    const coarse = roundTrip(10);
    const fine = roundTrip(100);
    expect(coarse).toBeGreaterThan(0); // the test model does move the sample, so the property has teeth
    expect(fine).toBeLessThan(coarse / 5); // first-order scheme: 10x the steps, ~10x smaller error
    expect(fine).toBeLessThan(0.1);
  });

  it('uses abar_0 for the last step unless set_alpha_to_one, and clips x0 to the configured range', () => {
    const sd = new DDIMScheduler(sdSchedulerConfig());
    expect(sd.finalAlphaCumprod).toBe(sd.alphasCumprod[0]);
    expect(new DDIMScheduler(sdSchedulerConfig({ setAlphaToOne: true })).finalAlphaCumprod).toBe(1);
    const clip = new DDIMScheduler(sdSchedulerConfig({ clipSample: true, clipSampleRange: 0.25, setAlphaToOne: true }));
    clip.setTimesteps(50);
    const last = clip.timesteps.at(-1)!;
    const xt = clip.addNoise(x0, eps, last);
    const out = clip.step(eps, last, xt);
    expect(Math.max(...out.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(() => new DDIMScheduler(sdSchedulerConfig()).step(eps, 981, xt)).toThrow(/setTimesteps/);
  });
});
