export * from './tensor.js';
export * from './types.js';
export * from './errors.js';
export * from './bundle.js';
export * from './scheduler-config.js';
export * from './tokenizer.js';
export * from './tokenizer-files.js';
export * from './surgery/index.js';
