export * from './errors.js';
export * from './tensor.js';
export * from './graph.js';
export * from './model.js';
export * from './infer.js';
export * from './autodiff.js';
export { Builder } from './builder.js';
export { supportedOps, findOp, lookupOp } from './ops/registry.js';
export type { OpDef, TensorType, GradContext, InferContext } from './ops/types.js';
