#!/usr/bin/python3
"""Export the PyTorch parity fixtures of @dynasyn/diffusion (committed under packages/diffusion/fixtures/).

Run with Debian's python (torch 1.13 CPU, onnx 1.12):  /usr/bin/python3 packages/diffusion/scripts/export_fixtures.py

The models are Stable Diffusion's UNet2DConditionModel and CLIPTextModel in miniature, built from the torch
modules of packages/ort-training/scripts/fixture_models.py and wired with diffusers' module names, so that
torch.onnx names the nodes as a diffusers export does (`/down_blocks.2/attentions.0/transformer_blocks.0/attn2/Softmax`).

  unet/          sample[B,4,16,16], timestep[B] int64, encoder_hidden_states[B,77,32] -> out_sample. Four levels
                 (16, 8, 4, 2) with cross-attention at 16, 8, 4 in the down path, 2 in the mid block and 4, 8, 16
                 in the up path, like SD at 64x64 latents scaled down by 4. Down and mid attention fold heads into
                 the batch ([B*heads, q, k] softmax, diffusers' AttnProcessor); up attention keeps them apart
                 ([B, heads, q, k], as scaled_dot_product_attention exports), so both layouts are exercised.
  text_encoder/  input_ids[B,77] int64 -> last_hidden_state[B,77,32], pooler_output[B,32] (CLIP pools at
                 argmax(input_ids), the end token being the largest id of the base vocabulary).

Each directory holds model.onnx (opset 17, batch dimension symbolic), reference.safetensors and manifest.json.
References are float64 forwards of the same module (weights and inputs cast up), rounded to float32; the float32
forward's own error against them is recorded (torchFp32RelError). For the UNet the forward hooks on every attn2
module record its softmax probabilities averaged over heads (`attn/<module>` [B, h*w, 77]) and their mean over
the down and up layers of each grid (`mean/<h>x<w>` [B, h*w, 77]), for the grids below the latent size (the
16x16 maps would triple the fixture's size), which the attention capture must reproduce.
Everything is seeded, so a rerun writes the same files.
"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'ort-training', 'scripts'))
import fixture_models as fm  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(HERE), 'fixtures')
OPSET = 17
SEED = 4321
BATCH, LATENT, CONTEXT_LEN, CONTEXT_DIM = 2, 16, 77, 32
CHANNELS = (8, 16, 16, 24)
HEADS = 2
VOCAB, BOS, EOS = 1000, 998, 999  # CLIP's layout: start and end tokens are the last two ids


# ---------------------------------------------------------------------------------------------- attention

class CrossAttention(fm.Attention):
    """diffusers Attention with AttnProcessor: heads folded into the batch, softmax over [B*heads, q, k].
    Keeps the last softmax probabilities, averaged over heads, for the forward hook."""

    def probs_per_head(self, x, context):
        q = self.head_to_batch_dim(self.to_q(x))
        k = self.head_to_batch_dim(self.to_k(context))
        return torch.softmax(torch.bmm(q, k.transpose(-1, -2)) * self.scale, dim=-1)

    def forward(self, x, context=None):
        context = x if context is None else context
        attn = self.probs_per_head(x, context)
        self.last_probs = attn.reshape(x.shape[0], self.heads, attn.shape[1], attn.shape[2]).mean(1)
        v = self.head_to_batch_dim(self.to_v(context))
        out = self.batch_to_head_dim(torch.bmm(attn, v))
        return self.to_out[1](self.to_out[0](out))


class CrossAttention4D(fm.Attention):
    """Heads kept as their own axis: softmax over [B, heads, q, k] (AttnProcessor2_0's layout); q is scaled
    before the product, so the structure differs from CrossAttention too."""

    def split(self, x):
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x, context=None):
        context = x if context is None else context
        q, k, v = self.split(self.to_q(x) * self.scale), self.split(self.to_k(context)), self.split(self.to_v(context))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
        self.last_probs = attn.mean(1)
        b, _, n, _ = q.shape
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out[1](self.to_out[0](out))


def transformer(channels, four_d):
    t = fm.Transformer2D(channels, CONTEXT_DIM, HEADS)
    for block in t.transformer_blocks:
        block.attn2 = (CrossAttention4D if four_d else CrossAttention)(channels, CONTEXT_DIM, heads=HEADS)
    return t


# ---------------------------------------------------------------------------------------------- UNet blocks

class DownBlock(nn.Module):
    """CrossAttnDownBlock2D / DownBlock2D with one resnet; returns h and the skip states it adds."""

    def __init__(self, cin, cout, temb, attention, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([fm.ResnetBlock(cin, cout, temb)])
        if attention:
            self.attentions = nn.ModuleList([transformer(cout, four_d=False)])
        if downsample:
            self.downsamplers = nn.ModuleList([fm.Downsample(cout)])

    def forward(self, h, temb, context):
        skips = []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, temb)
            if hasattr(self, 'attentions'):
                h = self.attentions[i](h, context)
            skips.append(h)
        if hasattr(self, 'downsamplers'):
            h = self.downsamplers[0](h)
            skips.append(h)
        return h, skips


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn: resnet, transformer, resnet."""

    def __init__(self, c, temb):
        super().__init__()
        self.resnets = nn.ModuleList([fm.ResnetBlock(c, c, temb), fm.ResnetBlock(c, c, temb)])
        self.attentions = nn.ModuleList([transformer(c, four_d=False)])

    def forward(self, h, temb, context):
        h = self.resnets[0](h, temb)
        return self.resnets[1](self.attentions[0](h, context), temb)


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D / UpBlock2D with two resnets, each taking one skip state concatenated on channels."""

    def __init__(self, prev, cout, skip_channels, temb, attention, upsample):
        super().__init__()
        self.resnets = nn.ModuleList([
            fm.ResnetBlock((prev if j == 0 else cout) + skip_channels[j], cout, temb) for j in range(2)])
        if attention:
            self.attentions = nn.ModuleList([transformer(cout, four_d=True) for _ in range(2)])
        if upsample:
            self.upsamplers = nn.ModuleList([fm.Upsample(cout)])

    def forward(self, h, skips, temb, context):
        for i, resnet in enumerate(self.resnets):
            h = resnet(torch.cat([h, skips.pop()], dim=1), temb)
            if hasattr(self, 'attentions'):
                h = self.attentions[i](h, context)
        if hasattr(self, 'upsamplers'):
            h = self.upsamplers[0](h)
        return h


class TinySDUNet(nn.Module):
    """UNet2DConditionModel(layers_per_block=1, block_out_channels=CHANNELS, down: 3 x CrossAttnDownBlock2D +
    DownBlock2D, up: UpBlock2D + 3 x CrossAttnUpBlock2D), SD 2.x style transformers (linear projections)."""

    def __init__(self):
        super().__init__()
        c = CHANNELS
        temb = c[0] * 4
        self.t_dim = c[0]
        self.time_embedding = fm.TimestepEmbedding(c[0], temb)
        self.conv_in = nn.Conv2d(4, c[0], 3, padding=1)
        n = len(c)
        self.down_blocks = nn.ModuleList([
            DownBlock(c[max(i - 1, 0)], c[i], temb, attention=i < n - 1, downsample=i < n - 1) for i in range(n)])
        self.mid_block = MidBlock(c[-1], temb)
        rc = list(reversed(c))
        ups, prev = [], rc[0]
        for i in range(n):
            cout, cin = rc[i], rc[min(i + 1, n - 1)]
            ups.append(UpBlock(prev, cout, [cout, cin], temb, attention=i > 0, upsample=i < n - 1))
            prev = cout
        self.up_blocks = nn.ModuleList(ups)
        self.conv_norm_out = nn.GroupNorm(8, c[0], eps=1e-5)
        self.conv_out = nn.Conv2d(c[0], 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        temb = self.time_embedding(fm.timestep_embedding(timestep, self.t_dim, self.conv_in.weight.dtype))
        h = self.conv_in(sample)
        skips = [h]
        for block in self.down_blocks:
            h, s = block(h, temb, encoder_hidden_states)
            skips += s
        h = self.mid_block(h, temb, encoder_hidden_states)
        for block in self.up_blocks:
            h = block(h, skips, temb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ---------------------------------------------------------------------------------------------- text encoder

class TinyCLIPTextModel(fm.TinyCLIPText):
    """CLIPTextModel: last_hidden_state and the pooled output at the end token (argmax of the ids, as
    transformers does for vocabularies whose end token is the largest id)."""

    def forward(self, input_ids):
        x = super().forward(input_ids)
        pooled = x[torch.arange(x.shape[0]), input_ids.to(torch.int).argmax(dim=-1)]
        return x, pooled


# ---------------------------------------------------------------------------------------------- export

def rel_error(a, b):
    """max|a - b| / max|b|, the metric the tests use."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def export(module, inputs, path, outputs, dynamic):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings about shapes taken as constants: intended here
        torch.onnx.export(module, tuple(inputs.values()), path, input_names=list(inputs), output_names=outputs,
                          opset_version=OPSET, dynamic_axes=dynamic)


def attn2_modules(unet):
    """(module name, module, block, grid) of every cross-attention, in forward order."""
    out = []
    for name, m in unet.named_modules():
        if name.endswith('attn2'):
            block = 'down' if name.startswith('down_blocks') else 'mid' if name.startswith('mid_block') else 'up'
            out.append((name, m, block))
    return out


def run_unet(unet, inputs):
    """Forward with hooks recording each attn2's head-averaged probabilities."""
    probs = {}
    hooks = [m.register_forward_hook(lambda mod, _i, _o, name=name: probs.__setitem__(name, mod.last_probs))
             for name, m, _ in attn2_modules(unet)]
    with torch.no_grad():
        out = unet(*inputs.values())
    for h in hooks:
        h.remove()
    return out, probs


def write_unet():
    torch.manual_seed(SEED)
    unet = fm.randomize_(TinySDUNet(), SEED + 1).eval()
    g = torch.Generator().manual_seed(SEED + 2)
    inputs = {
        'sample': torch.randn(BATCH, 4, LATENT, LATENT, generator=g),
        'timestep': torch.tensor([999, 411], dtype=torch.int64),
        # Large context values make the softmaxes peaked, so a wrong layer or layout cannot hide in a flat map.
        'encoder_hidden_states': 3 * torch.randn(BATCH, CONTEXT_LEN, CONTEXT_DIM, generator=g),
    }
    out_dir = os.path.join(FIXTURES, 'unet')
    os.makedirs(out_dir, exist_ok=True)
    export(unet, inputs, os.path.join(out_dir, 'model.onnx'), ['out_sample'],
           {k: {0: 'batch'} for k in [*inputs, 'out_sample']})

    out32, probs32 = run_unet(unet, inputs)
    out64, probs64 = run_unet(unet.double(), {k: (v.double() if v.is_floating_point() else v) for k, v in inputs.items()})
    tensors = {f'input/{k}': v.numpy() for k, v in inputs.items()}
    tensors['out_sample'] = out64.float().numpy()
    layers, fp32_errors = [], {'out_sample': rel_error(out32, out64)}
    by_grid = {}
    for name, _m, block in attn2_modules(unet):
        p = probs64[name]
        q = p.shape[1]
        side = int(round(q ** 0.5))
        grid = [side, side]
        layer = {'module': name, 'block': block, 'grid': grid}
        if side < LATENT:  # the full-resolution maps are large; the captures are checked at latent/2 and latent/4
            tensors[f'attn/{name}'] = p.float().numpy()
            fp32_errors[f'attn/{name}'] = rel_error(probs32[name], p)
            layer['reference'] = f'attn/{name}'
        layers.append(layer)
        if block != 'mid' and side < LATENT:
            by_grid.setdefault(f'{side}x{side}', []).append(p)
    means = {}
    for key, ps in by_grid.items():
        tensors[f'mean/{key}'] = torch.stack(ps).mean(0).float().numpy()
        means[key] = f'mean/{key}'
    write_safetensors(os.path.join(out_dir, 'reference.safetensors'), tensors)
    manifest = {
        'name': 'unet', 'model': 'model.onnx', 'reference': 'reference.safetensors', 'opset': OPSET,
        'inputs': {k: f'input/{k}' for k in inputs}, 'outputs': {'out_sample': 'out_sample'},
        'latent': [LATENT, LATENT], 'heads': HEADS, 'contextLength': CONTEXT_LEN,
        'crossAttention': layers,
        'meanDownUp': means,
        'torchFp32RelError': fp32_errors,
    }
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    report(out_dir, f'{len(layers)} cross-attention layers, means for grids {sorted(means)}')


def write_text_encoder():
    torch.manual_seed(SEED + 3)
    enc = fm.randomize_(TinyCLIPTextModel(vocab=VOCAB, max_len=CONTEXT_LEN, dim=CONTEXT_DIM, heads=2, layers=2), SEED + 4).eval()
    g = torch.Generator().manual_seed(SEED + 5)
    ids = torch.full((BATCH, CONTEXT_LEN), EOS, dtype=torch.int64)  # padded with the end token, as SD 1.x does
    for b, n in enumerate([6, 11]):
        ids[b, 0] = BOS
        ids[b, 1:n + 1] = torch.randint(0, BOS, (n,), generator=g)
    inputs = {'input_ids': ids}
    out_dir = os.path.join(FIXTURES, 'text_encoder')
    os.makedirs(out_dir, exist_ok=True)
    export(enc, inputs, os.path.join(out_dir, 'model.onnx'), ['last_hidden_state', 'pooler_output'],
           {'input_ids': {0: 'batch'}, 'last_hidden_state': {0: 'batch'}, 'pooler_output': {0: 'batch'}})
    with torch.no_grad():
        h32, p32 = enc(ids)
        h64, p64 = enc.double()(ids)
    tensors = {'input/input_ids': ids.numpy(), 'last_hidden_state': h64.float().numpy(), 'pooler_output': p64.float().numpy()}
    write_safetensors(os.path.join(out_dir, 'reference.safetensors'), tensors)
    manifest = {
        'name': 'text_encoder', 'model': 'model.onnx', 'reference': 'reference.safetensors', 'opset': OPSET,
        'inputs': {'input_ids': 'input/input_ids'},
        'outputs': {'last_hidden_state': 'last_hidden_state', 'pooler_output': 'pooler_output'},
        'vocabSize': VOCAB, 'bos': BOS, 'eos': EOS, 'maxLength': CONTEXT_LEN, 'dim': CONTEXT_DIM,
        'torchFp32RelError': {'last_hidden_state': rel_error(h32, h64), 'pooler_output': rel_error(p32, p64)},
    }
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    report(out_dir, 'last_hidden_state, pooler_output')


def report(out_dir, what):
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f'{os.path.relpath(out_dir)}: {size / 1e6:.2f} MB ({what})')


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    write_unet()
    write_text_encoder()


if __name__ == '__main__':
    main()
