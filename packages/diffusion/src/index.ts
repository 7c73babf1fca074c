export * from './tensor.js';
export * from './types.js';
export * from './errors.js';
