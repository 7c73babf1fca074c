export { createTinyBundle, TINY_SCHEDULER_CONFIG, type CreateTinyBundleOptions, type TinyBundleInfo } from './create.js';
export { TINY_BUNDLE_FACTS } from './facts.js';
export { buildTinyUnet } from './unet.js';
export { buildTinyTextEncoder } from './text-encoder.js';
export { buildTinyVaeDecoder, buildTinyVaeEncoder } from './vae.js';
