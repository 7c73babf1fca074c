export * from './tensor.js';
export * from './types.js';
