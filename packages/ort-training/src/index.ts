export * from './errors.js';
export * from './tensor.js';
export * from './graph.js';
export * from './model.js';
export * from './infer.js';
export * from './autodiff.js';
export { Builder } from './builder.js';
export { supportedOps, findOp, lookupOp } from './ops/registry.js';
export type { OpDef, TensorType, GradContext, InferContext } from './ops/types.js';
export * from './safetensors.js';
export * from './training-session.js';
export * from './optimizer.js';
export { defaultCacheDir } from './cache.js';
export type { ExecutionProvider } from './ort.js';
// the failure formatter lives in @dynasyn/domain (every command uses it); re-exported for ort-training's users
export { DEBUG_HINT, debugFromEnv, formatFailure, oneLine, runCommand } from '@dynasyn/domain';
