/**
 * Parameter counts of the three models from a config alone (nothing materialised). They follow the
 * builders module by module; a test checks them against the initializers of a generated small bundle, and
 * SD 2.1's known totals (UNet 865,910,724; text encoder 340,387,840) against the presets.
 */
import type { SdBundleConfig } from './config.js';

const conv = (cin: number, cout: number, k: number) => cin * cout * k * k + cout;
const linear = (cin: number, cout: number, bias = true) => cin * cout + (bias ? cout : 0);
const norm = (c: number) => 2 * c;

/** diffusers ResnetBlock2D, with time_emb_proj when `temb` is the time-embedding width. */
function resnet(cin: number, cout: number, temb?: number): number {
  return norm(cin) + conv(cin, cout, 3) + (temb ? linear(temb, cout) : 0) + norm(cout) + conv(cout, cout, 3) + (cin === cout ? 0 : conv(cin, cout, 1));
}

/** diffusers Transformer2DModel with linear projections and one BasicTransformerBlock (GEGLU, mult 4). */
function transformer(c: number, context: number): number {
  const attn1 = 3 * linear(c, c, false) + linear(c, c);
  const attn2 = linear(c, c, false) + 2 * linear(context, c, false) + linear(c, c);
  const ff = linear(c, 8 * c) + linear(4 * c, c);
  return norm(c) + linear(c, c) + 3 * norm(c) + attn1 + attn2 + ff + linear(c, c);
}

export function unetParameterCount(config: SdBundleConfig): number {
  const u = config.unet;
  const ch = u.blockOutChannels,
    ctx = config.textEncoder.hiddenSize,
    t = u.timeEmbedDim;
  let n = conv(config.latentChannels, ch[0]!, 3) + linear(ch[0]!, t) + linear(t, t);
  const skips = [ch[0]!];
  let c = ch[0]!;
  ch.forEach((out, i) => {
    for (let j = 0; j < u.layersPerBlock; j++) {
      n += resnet(c, out, t) + (u.downBlockTypes[i] === 'CrossAttnDownBlock2D' ? transformer(out, ctx) : 0);
      c = out;
      skips.push(c);
    }
    if (i < ch.length - 1) {
      n += conv(c, c, 3);
      skips.push(c);
    }
  });
  n += 2 * resnet(c, c, t) + transformer(c, ctx);
  [...ch].reverse().forEach((out, i) => {
    for (let j = 0; j <= u.layersPerBlock; j++) {
      n += resnet(c + skips.pop()!, out, t) + (u.upBlockTypes[i] === 'CrossAttnUpBlock2D' ? transformer(out, ctx) : 0);
      c = out;
    }
    if (i < ch.length - 1) n += conv(c, c, 3);
  });
  return n + norm(c) + conv(c, config.latentChannels, 3);
}

export function textEncoderParameterCount(config: SdBundleConfig): number {
  const { layers, hiddenSize: d, intermediateSize: i, vocabSize, maxPositions } = config.textEncoder;
  const layer = norm(d) + 4 * linear(d, d) + norm(d) + linear(d, i) + linear(i, d);
  return vocabSize * d + maxPositions * d + layers * layer + norm(d);
}

/** The VAE's encoder (+ quant_conv) and decoder (+ post_quant_conv). */
export function vaeParameterCounts(config: SdBundleConfig): { encoder: number; decoder: number } {
  const { blockOutChannels: ch, layersPerBlock } = config.vae;
  const z = config.latentChannels,
    top = ch[ch.length - 1]!;
  const mid = 2 * resnet(top, top) + norm(top) + 3 * linear(top, top) + linear(top, top);
  let encoder = conv(3, ch[0]!, 3),
    c = ch[0]!;
  ch.forEach((out, i) => {
    for (let j = 0; j < layersPerBlock; j++) {
      encoder += resnet(c, out);
      c = out;
    }
    if (i < ch.length - 1) encoder += conv(c, c, 3);
  });
  encoder += mid + norm(top) + conv(top, 2 * z, 3) + conv(2 * z, 2 * z, 1);
  let decoder = conv(z, z, 1) + conv(z, top, 3) + mid;
  c = top;
  [...ch].reverse().forEach((out, i) => {
    for (let j = 0; j <= layersPerBlock; j++) {
      decoder += resnet(c, out);
      c = out;
    }
    if (i < ch.length - 1) decoder += conv(c, c, 3);
  });
  decoder += norm(c) + conv(c, 3, 3);
  return { encoder, decoder };
}
