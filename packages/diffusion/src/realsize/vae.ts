/**
 * AutoencoderKL as SD configures it, split as optimum exports it: vae_encoder (encoder + quant_conv) and
 * vae_decoder (post_quant_conv + decoder). Every norm of the VAE uses eps 1e-6 (diffusers' Encoder and
 * Decoder); the mid-block attention upcasts its softmax (a Cast pair in an fp16 export).
 *
 * The encoder's `latent_sample` is the latent distribution's moments [B, 8, h, w] (mean | logvar), the
 * tiny bundle's contract, not a sample: optimum's export draws z inside the graph (RandomNormalLike), which
 * would make a benchmark bundle nondeterministic. The runtime takes the mean (runtime/vae.ts) unless it is
 * given noise to sample with.
 */
import type { OnnxModel } from '@dynasyn/ort-training';
import { batchedInput, type ModuleBuilder, type Value } from '../tiny/module-builder.js';
import { conv2d, downsample, groupNorm, resnetBlock, silu, upsample, vaeAttention } from '../tiny/nn.js';
import { latentSize, type SdBundleConfig } from './config.js';

const EPS = 1e-6;

function midBlock(m: ModuleBuilder, x: Value, groups: number): Value {
  return m.scoped('mid_block', () => {
    const c = x.shape[1]!;
    const h = vaeAttention(m, resnetBlock(m, x, null, 'resnets.0', c, groups, EPS), 'attentions.0', groups, { upcast: 'softmax' });
    return resnetBlock(m, h, null, 'resnets.1', c, groups, EPS);
  });
}

const outHead = (m: ModuleBuilder, x: Value, cout: number, groups: number): Value =>
  conv2d(m, silu(m, groupNorm(m, x, 'conv_norm_out', groups, EPS)), 'conv_out', cout, 3);

export function buildSdVaeEncoder(m: ModuleBuilder, config: SdBundleConfig): OnnxModel {
  const { blockOutChannels: channels, layersPerBlock, normGroups: groups } = config.vae;
  const size = config.sampleSize,
    z = config.latentChannels;
  const sample: Value = { name: 'sample', shape: [-1, 3, size, size] };
  const moments = m.scoped('encoder', () => {
    let h = conv2d(m, sample, 'conv_in', channels[0]!, 3);
    channels.forEach((ch, i) => {
      h = m.scoped(`down_blocks.${i}`, () => {
        let x = h;
        for (let j = 0; j < layersPerBlock; j++) x = resnetBlock(m, x, null, `resnets.${j}`, ch, groups, EPS);
        return i < channels.length - 1 ? downsample(m, x, { asymmetricPad: true }) : x;
      });
    });
    return outHead(m, midBlock(m, h, groups), 2 * z, groups);
  });
  const out = conv2d(m, moments, 'quant_conv', 2 * z, 1);
  return m.finish([batchedInput('sample', m.floatType, [3, size, size])], [{ value: out, name: 'latent_sample' }]);
}

/** `m` must share the encoder's seed key (one AutoencoderKL's parameters) and number its anonymous weights apart. */
export function buildSdVaeDecoder(m: ModuleBuilder, config: SdBundleConfig): OnnxModel {
  const { blockOutChannels: channels, layersPerBlock, normGroups: groups } = config.vae;
  const size = latentSize(config),
    z = config.latentChannels;
  const latent: Value = { name: 'latent_sample', shape: [-1, z, size, size] };
  const zIn = conv2d(m, latent, 'post_quant_conv', z, 1);
  const image = m.scoped('decoder', () => {
    const reversed = [...channels].reverse();
    let h = midBlock(m, conv2d(m, zIn, 'conv_in', reversed[0]!, 3), groups);
    reversed.forEach((ch, i) => {
      h = m.scoped(`up_blocks.${i}`, () => {
        let x = h;
        for (let j = 0; j <= layersPerBlock; j++) x = resnetBlock(m, x, null, `resnets.${j}`, ch, groups, EPS);
        return i < reversed.length - 1 ? upsample(m, x) : x;
      });
    });
    return outHead(m, h, 3, groups);
  });
  return m.finish([batchedInput('latent_sample', m.floatType, [z, size, size])], [{ value: image, name: 'sample' }]);
}
