export { createSdBundle, type CreateSdBundleOptions, type SdBundleInfo, type SdBundlePart, type SdBundleProgress } from './create.js';
export {
  CLIP_VOCAB_SIZE,
  SD21_PRESETS,
  toyworldBundleConfig,
  type DownBlockType,
  type SdBundleConfig,
  type SdDtype,
  type SdTextEncoderConfig,
  type SdUnetConfig,
  type SdVaeConfig,
  type SdVariant,
  type UpBlockType,
} from './config.js';
export type { SdBundleLayout } from './configs.js';
export { textEncoderParameterCount, unetParameterCount, vaeParameterCounts } from './counts.js';
export { clipSizedTokenizerFiles, writeClipSizedTokenizer } from './tokenizer.js';
