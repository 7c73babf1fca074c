/** The learning-rate schedule and the DDPM noise schedule of training (the bundle's scheduler config). */

/** Linear warmup to `peak` over `warmup` updates, then cosine decay to `floor * peak` at `total`. */
export function warmupCosine(peak: number, warmup: number, total: number, floor = 0.1): (step: number) => number {
  return (step) => {
    if (step <= warmup) return (peak * step) / Math.max(1, warmup);
    const p = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
    return peak * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * p)));
  };
}

/** The scheduler config's training noise: scaled_linear betas 0.00085..0.012 over 1000 steps (SD's). */
export const TRAIN_TIMESTEPS = 1000;
export function alphasCumprod(betaStart = 0.00085, betaEnd = 0.012, steps = TRAIN_TIMESTEPS): Float64Array {
  const out = new Float64Array(steps);
  let prod = 1;
  const a = Math.sqrt(betaStart),
    b = Math.sqrt(betaEnd);
  for (let i = 0; i < steps; i++) {
    const beta = (a + ((b - a) * i) / (steps - 1)) ** 2;
    prod *= 1 - beta;
    out[i] = prod;
  }
  return out;
}
