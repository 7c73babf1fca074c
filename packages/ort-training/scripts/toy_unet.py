"""The PyTorch twin of the UNet that @dynasyn/diffusion's SD-2.1-shaped generator builds from an SdBundleConfig
(packages/diffusion/src/realsize/unet.ts), for timing PyTorch eager against onnxruntime at the toy backbone's size
(src/bench/toy-backbone.ts). Built from fixture_models' diffusers-style blocks: CrossAttnDownBlock2D /
DownBlock2D levels (layersPerBlock resnets, a Transformer2D after each in attention levels, a stride-2 conv
between levels), a mid block (resnet, transformer, resnet), up levels with layersPerBlock + 1 resnets fed the
skips in reverse, nearest x2 + conv upsamplers, GroupNorm + SiLU + conv_out. GEGLU feed-forwards are 4x wide,
as in SD. Weights are torch's default init: only the architecture and sizes matter for timing, and
bench_torch.py checks that the parameter count equals the ONNX graph's.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import fixture_models as fm


class Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnets = nn.ModuleList()
        self.attentions = nn.ModuleList()


class ToyUNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        u, t = config['unet'], config['textEncoder']
        chs, groups, heads, layers = u['blockOutChannels'], u['normGroups'], u['attentionHeads'], u['layersPerBlock']
        ctx, temb = t['hiddenSize'], u['timeEmbedDim']
        latent = config['latentChannels']

        def transformer(c, h):
            tr = fm.Transformer2D(c, ctx, heads=h, groups=groups)
            tr.transformer_blocks[0].ff = fm.FeedForward(c, mult=4)
            return tr

        self.t_dim = chs[0]
        self.time_embedding = fm.TimestepEmbedding(chs[0], temb)
        self.conv_in = nn.Conv2d(latent, chs[0], 3, padding=1)
        skip_channels = [chs[0]]
        self.down = nn.ModuleList()
        cin = chs[0]
        for i, ch in enumerate(chs):
            level = Level()
            for _ in range(layers):
                level.resnets.append(fm.ResnetBlock(cin, ch, temb, groups=groups))
                if u['downBlockTypes'][i] == 'CrossAttnDownBlock2D':
                    level.attentions.append(transformer(ch, heads[i]))
                cin = ch
                skip_channels.append(ch)
            level.downsample = fm.Downsample(ch) if i < len(chs) - 1 else None
            if level.downsample is not None:
                skip_channels.append(ch)
            self.down.append(level)
        self.mid_res0 = fm.ResnetBlock(cin, cin, temb, groups=groups)
        self.mid_attn = transformer(cin, heads[-1])
        self.mid_res1 = fm.ResnetBlock(cin, cin, temb, groups=groups)
        self.up = nn.ModuleList()
        for i, ch in enumerate(reversed(chs)):
            level = Level()
            for _ in range(layers + 1):
                level.resnets.append(fm.ResnetBlock(cin + skip_channels.pop(), ch, temb, groups=groups))
                if u['upBlockTypes'][i] == 'CrossAttnUpBlock2D':
                    level.attentions.append(transformer(ch, heads[::-1][i]))
                cin = ch
            level.upsample = fm.Upsample(ch) if i < len(chs) - 1 else None
            self.up.append(level)
        self.conv_norm_out = nn.GroupNorm(groups, chs[0], eps=1e-5)
        self.conv_out = nn.Conv2d(chs[0], latent, 3, padding=1)

    def forward(self, sample, timestep, context):
        temb = self.time_embedding(fm.timestep_embedding(timestep, self.t_dim))
        h = self.conv_in(sample)
        skips = [h]
        for level in self.down:
            for j, res in enumerate(level.resnets):
                h = res(h, temb)
                if len(level.attentions):
                    h = level.attentions[j](h, context)
                skips.append(h)
            if level.downsample is not None:
                h = level.downsample(h)
                skips.append(h)
        h = self.mid_res1(self.mid_attn(self.mid_res0(h, temb), context), temb)
        for level in self.up:
            for j, res in enumerate(level.resnets):
                h = res(torch.cat([h, skips.pop()], dim=1), temb)
                if len(level.attentions):
                    h = level.attentions[j](h, context)
            if level.upsample is not None:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def toy_inputs(config, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = config['sampleSize'] // 2 ** (len(config['vae']['blockOutChannels']) - 1)
    t = config['textEncoder']
    return {
        'sample': torch.randn(batch, config['latentChannels'], size, size, generator=g),
        'timestep': torch.randint(0, 1000, (batch,), generator=g),
        'context': torch.randn(batch, t['maxPositions'], t['hiddenSize'], generator=g),
        'target': torch.randn(batch, config['latentChannels'], size, size, generator=g),
    }
