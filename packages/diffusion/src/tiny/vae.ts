/**
 * The tiny AutoencoderKL, split as optimum exports it: vae_encoder (encoder + quant_conv; sample
 * [B,3,128,128] -> latent_sample [B,8,32,32], the mean and log-variance of the latent distribution) and
 * vae_decoder (post_quant_conv + decoder; latent_sample [B,4,32,32] -> sample [B,3,128,128]). Two
 * stride-2 stages give the scale factor 4; the mid blocks hold SD's single-head attention.
 */
import { DataType, type OnnxModel } from '@dynasyn/ort-training';
import { TINY_BUNDLE_FACTS } from './facts.js';
import { ModuleBuilder, batchedInput, type Value } from './module-builder.js';
import { conv2d, downsample, groupNorm, resnetBlock, silu, upsample, vaeAttention } from './nn.js';

const { sampleSize, latentSize, latentChannels } = TINY_BUNDLE_FACTS;
const { blockOutChannels: channels, layersPerBlock, normGroups: groups } = TINY_BUNDLE_FACTS.vae;

function midBlock(m: ModuleBuilder, x: Value): Value {
  return m.scoped('mid_block', () => {
    const c = x.shape[1]!;
    const h = vaeAttention(m, resnetBlock(m, x, null, 'resnets.0', c, groups), 'attentions.0', groups);
    return resnetBlock(m, h, null, 'resnets.1', c, groups);
  });
}

const outHead = (m: ModuleBuilder, x: Value, cout: number): Value => conv2d(m, silu(m, groupNorm(m, x, 'conv_norm_out', groups, 1e-6)), 'conv_out', cout, 3);

export function buildTinyVaeEncoder(seed: number): OnnxModel {
  const m = new ModuleBuilder(`${seed}/vae`);
  const sample: Value = { name: 'sample', shape: [-1, 3, sampleSize, sampleSize] };
  const moments = m.scoped('encoder', () => {
    let h = conv2d(m, sample, 'conv_in', channels[0], 3);
    channels.forEach((ch, i) => {
      h = m.scoped(`down_blocks.${i}`, () => {
        let x = h;
        for (let j = 0; j < layersPerBlock; j++) x = resnetBlock(m, x, null, `resnets.${j}`, ch, groups);
        return i < channels.length - 1 ? downsample(m, x, { asymmetricPad: true }) : x;
      });
    });
    return outHead(m, midBlock(m, h), 2 * latentChannels);
  });
  const out = conv2d(m, moments, 'quant_conv', 2 * latentChannels, 1);
  return m.finish([batchedInput('sample', DataType.FLOAT, [3, sampleSize, sampleSize])], [{ value: out, name: 'latent_sample' }]);
}

export function buildTinyVaeDecoder(seed: number): OnnxModel {
  // Same seed key as the encoder: the two halves are one AutoencoderKL's parameters.
  const m = new ModuleBuilder(`${seed}/vae`, 5000);
  const latent: Value = { name: 'latent_sample', shape: [-1, latentChannels, latentSize, latentSize] };
  const z = conv2d(m, latent, 'post_quant_conv', latentChannels, 1);
  const image = m.scoped('decoder', () => {
    const reversed = [...channels].reverse();
    let h = midBlock(m, conv2d(m, z, 'conv_in', reversed[0]!, 3));
    reversed.forEach((ch, i) => {
      h = m.scoped(`up_blocks.${i}`, () => {
        let x = h;
        for (let j = 0; j <= layersPerBlock; j++) x = resnetBlock(m, x, null, `resnets.${j}`, ch, groups);
        return i < reversed.length - 1 ? upsample(m, x) : x;
      });
    });
    return outHead(m, h, 3);
  });
  return m.finish([batchedInput('latent_sample', DataType.FLOAT, [latentChannels, latentSize, latentSize])], [{ value: image, name: 'sample' }]);
}
