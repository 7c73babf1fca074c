export { ModelSession, type ValueSpec, type ElementType } from './session.js';
export { ClipTextEncoder, type ClipTextEncoderOptions } from './text-encoder.js';
export { Unet, type UnetOptions, type UnetOutput } from './unet.js';
export { VaeEncoder, VaeDecoder, type EncodeOptions } from './vae.js';
export { textEncoderModel, type UnetAttentionOptions } from './surgery.js';
