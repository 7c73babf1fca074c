/** Measurement knobs shared by the benchmarks (environment variables, checked: a misspelt one must not measure the default). */
import { CONV_WEIGHT_GRADIENT_STRATEGIES, convWeightGradientOptions } from '../ops/conv.js';

/** BENCH_CONV_WGRAD=gemm|patches|...: force one conv weight-gradient formulation (ops/conv.ts `convWeightGradient`). */
export function applyConvWeightGradientKnob(): void {
  const wanted = process.env.BENCH_CONV_WGRAD;
  if (!wanted) return;
  const strategy = CONV_WEIGHT_GRADIENT_STRATEGIES.find((s) => s === wanted);
  if (!strategy) throw new Error(`BENCH_CONV_WGRAD=${wanted}: not a conv weight-gradient form (${CONV_WEIGHT_GRADIENT_STRATEGIES.join(', ')})`);
  convWeightGradientOptions.strategy = strategy;
}
