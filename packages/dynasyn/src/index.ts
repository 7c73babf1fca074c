export * from './types.js';
export * from './augment/index.js';
