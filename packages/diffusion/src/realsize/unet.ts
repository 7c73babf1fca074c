/**
 * UNet2DConditionModel as SD 2.1 configures it (config.ts): CrossAttnDownBlock2D levels and a final
 * DownBlock2D, UNetMidBlock2DCrossAttn, an UpBlock2D then CrossAttnUpBlock2D levels (layersPerBlock + 1
 * resnets each, fed the skips in reverse), conv_norm_out / conv_out; heads per level from
 * `attentionHeads`. The layers are the tiny bundle's (tiny/nn.ts), so the graph has the same op patterns.
 */
import { DataType, type OnnxModel } from '@dynasyn/ort-training';
import { batchedInput, type ModuleBuilder, type Value } from '../tiny/module-builder.js';
import { conv2d, downsample, groupNorm, resnetBlock, silu, timestepEmbedding, transformer2d, upsample } from '../tiny/nn.js';
import { latentSize, type SdBundleConfig } from './config.js';

export function buildSdUnet(m: ModuleBuilder, config: SdBundleConfig): OnnxModel {
  const u = config.unet;
  const { blockOutChannels: channels, layersPerBlock, attentionHeads: heads, normGroups: groups } = u;
  const size = latentSize(config),
    cLatent = config.latentChannels;
  const { hiddenSize: contextDim, maxPositions: tokens } = config.textEncoder;
  const upcast = u.upcastAttention ? { upcast: 'attention' as const } : {};
  const sample: Value = { name: 'sample', shape: [-1, cLatent, size, size] };
  const timestep: Value = { name: 'timestep', shape: [-1] };
  const context: Value = { name: 'encoder_hidden_states', shape: [-1, tokens, contextDim] };

  // diffusers broadcasts the timesteps to the batch in an ONNX-friendly way: timesteps.expand(sample.shape[0])
  const batch = m.op('Unsqueeze', [m.batchOf(sample), m.constInt64([0])]);
  const timesteps: Value = { name: m.op('Expand', [timestep.name, batch]), shape: [-1] };
  const temb = timestepEmbedding(m, timesteps, channels[0]!, u.timeEmbedDim);
  let h = conv2d(m, sample, 'conv_in', channels[0]!, 3);
  const skips: Value[] = [h];

  channels.forEach((ch, i) => {
    h = m.scoped(`down_blocks.${i}`, () => {
      let x = h;
      for (let j = 0; j < layersPerBlock; j++) {
        x = resnetBlock(m, x, temb, `resnets.${j}`, ch, groups);
        if (u.downBlockTypes[i] === 'CrossAttnDownBlock2D') x = transformer2d(m, x, context, `attentions.${j}`, heads[i]!, groups, upcast);
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
    x = transformer2d(m, x, context, 'attentions.0', heads[heads.length - 1]!, groups, upcast);
    return resnetBlock(m, x, temb, 'resnets.1', ch, groups);
  });

  const upHeads = [...heads].reverse();
  [...channels].reverse().forEach((ch, i) => {
    h = m.scoped(`up_blocks.${i}`, () => {
      let x = h;
      for (let j = 0; j <= layersPerBlock; j++) {
        const skip = skips.pop()!;
        x = { name: m.op('Concat', [x.name, skip.name], { axis: 1 }), shape: [-1, x.shape[1]! + skip.shape[1]!, x.shape[2]!, x.shape[3]!] };
        x = resnetBlock(m, x, temb, `resnets.${j}`, ch, groups);
        if (u.upBlockTypes[i] === 'CrossAttnUpBlock2D') x = transformer2d(m, x, context, `attentions.${j}`, upHeads[i]!, groups, upcast);
      }
      return i < channels.length - 1 ? upsample(m, x) : x;
    });
  });

  const out = conv2d(m, silu(m, groupNorm(m, h, 'conv_norm_out', groups, 1e-5)), 'conv_out', cLatent, 3);
  return m.finish(
    [
      batchedInput('sample', m.floatType, [cLatent, size, size]),
      { name: 'timestep', dtype: DataType.INT64, shape: ['steps'] }, // optimum's name: one per row, or one for all
      batchedInput('encoder_hidden_states', m.floatType, [tokens, contextDim]),
    ],
    [{ value: out, name: 'out_sample' }],
  );
}
