/**
 * The tiny UNet2DConditionModel: SD 2.x's layout at 32x32 latents. Three CrossAttnDownBlock2D levels
 * (32x32, 16x16, 8x8; the last does not downsample), a UNetMidBlock2DCrossAttn at 8x8, three
 * CrossAttnUpBlock2D levels (8x8, 16x16, 32x32) with skip concatenations, conv_norm_out / conv_out.
 */
import { DataType, type OnnxModel } from '@dynasyn/ort-training';
import { TINY_BUNDLE_FACTS } from './facts.js';
import { ModuleBuilder, batchedInput, type Value } from './module-builder.js';
import { conv2d, downsample, groupNorm, resnetBlock, silu, timestepEmbedding, transformer2d, upsample } from './nn.js';

export function buildTinyUnet(seed: number): OnnxModel {
  const { latentChannels: cLatent, latentSize: size, textEmbedDim, maxTokens } = TINY_BUNDLE_FACTS;
  const { blockOutChannels: channels, layersPerBlock, heads, normGroups: groups, timeEmbedDim } = TINY_BUNDLE_FACTS.unet;
  const m = new ModuleBuilder(`${seed}/unet`);
  const sample: Value = { name: 'sample', shape: [-1, cLatent, size, size] };
  const timestep: Value = { name: 'timestep', shape: [-1] };
  const context: Value = { name: 'encoder_hidden_states', shape: [-1, maxTokens, textEmbedDim] };

  const temb = timestepEmbedding(m, timestep, channels[0], timeEmbedDim);
  let h = conv2d(m, sample, 'conv_in', channels[0], 3);
  const skips: Value[] = [h];

  channels.forEach((ch, i) => {
    h = m.scoped(`down_blocks.${i}`, () => {
      let x = h;
      for (let j = 0; j < layersPerBlock; j++) {
        x = resnetBlock(m, x, temb, `resnets.${j}`, ch, groups);
        x = transformer2d(m, x, context, `attentions.${j}`, heads, groups);
        skips.push(x);
      }
      if (i < channels.length - 1) {
        x = downsample(m, x);
        skips.push(x);
      }
      return x;
    });
  });

  h = m.scoped('mid_block', () => {
    const ch = channels[channels.length - 1]!;
    let x = resnetBlock(m, h, temb, 'resnets.0', ch, groups);
    x = transformer2d(m, x, context, 'attentions.0', heads, groups);
    return resnetBlock(m, x, temb, 'resnets.1', ch, groups);
  });

  [...channels].reverse().forEach((ch, i) => {
    h = m.scoped(`up_blocks.${i}`, () => {
      let x = h;
      for (let j = 0; j <= layersPerBlock; j++) {
        const skip = skips.pop()!;
        x = { name: m.op('Concat', [x.name, skip.name], { axis: 1 }), shape: [-1, x.shape[1]! + skip.shape[1]!, x.shape[2]!, x.shape[3]!] };
        x = resnetBlock(m, x, temb, `resnets.${j}`, ch, groups);
        x = transformer2d(m, x, context, `attentions.${j}`, heads, groups);
      }
      return i < channels.length - 1 ? upsample(m, x) : x;
    });
  });

  const out = conv2d(m, silu(m, groupNorm(m, h, 'conv_norm_out', groups, 1e-5)), 'conv_out', cLatent, 3);
  return m.finish(
    [
      batchedInput('sample', DataType.FLOAT, [cLatent, size, size]),
      batchedInput('timestep', DataType.INT64, []),
      batchedInput('encoder_hidden_states', DataType.FLOAT, [maxTokens, textEmbedDim]),
    ],
    [{ value: out, name: 'out_sample' }],
  );
}
