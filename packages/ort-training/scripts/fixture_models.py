"""Small diffusers/CLIP-style models for the PyTorch parity fixtures, in plain torch (no diffusers or
transformers package). Shared by export_fixtures.py (which exports and records gradients) and bench_torch.py
(which times PyTorch eager on the very same module).

The shapes and op mix follow Stable Diffusion's UNet2DConditionModel and CLIPTextModel, scaled down so the
committed fixtures stay small while the exported graphs keep every op kind the real models use.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 1234

# UNet input shapes: sample[B,4,H,W], timestep[B] (int64, as diffusers' schedulers hand it), context[B,L,D].
UNET_BATCH, UNET_SIZE, CONTEXT_LEN, CONTEXT_DIM = 2, 16, 8, 32
# Text encoder: input_ids[B,L] int64.
TEXT_BATCH, TEXT_LEN, VOCAB, TEXT_DIM = 2, 8, 256, 48


# ---------------------------------------------------------------------------------------------------- UNet

def timestep_embedding(timesteps, dim, dtype=torch.float32, max_period=10000):
    """diffusers.models.embeddings.get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0
    (SD's settings): exp(-log(P) * i / half) * t, then cat(cos, sin)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=dtype) / half
    emb = timesteps[:, None].to(dtype) * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    return torch.cat([emb[:, half:], emb[:, :half]], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, in_dim, dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """diffusers ResnetBlock2D: GN-SiLU-Conv, + Linear(SiLU(temb)), GN-SiLU-Conv, 1x1 skip conv if channels change."""

    def __init__(self, cin, cout, temb_dim, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return skip + h


class Attention(nn.Module):
    """diffusers Attention (CrossAttention): bias-free q/k/v, heads folded into the batch, softmax(QK^T*scale)V."""

    def __init__(self, dim, context_dim=None, heads=2):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])

    def head_to_batch_dim(self, x):
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, n, d // self.heads)

    def batch_to_head_dim(self, x):
        bh, n, dh = x.shape
        return x.reshape(bh // self.heads, self.heads, n, dh).permute(0, 2, 1, 3).reshape(bh // self.heads, n, dh * self.heads)

    def forward(self, x, context=None):
        context = x if context is None else context
        q = self.head_to_batch_dim(self.to_q(x))
        k = self.head_to_batch_dim(self.to_k(context))
        v = self.head_to_batch_dim(self.to_v(context))
        attn = torch.softmax(torch.bmm(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = self.batch_to_head_dim(torch.bmm(attn, v))
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """x, gate = proj(x).chunk(2); x * gelu(gate) with the exact (erf) GELU."""

    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads=heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, heads=heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2D(nn.Module):
    """diffusers Transformer2DModel (SD 2.x layout: GroupNorm, linear proj_in/proj_out on [B, HW, C])."""

    def __init__(self, channels, context_dim, heads=2, groups=8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, context_dim, heads)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x, context):
        b, c, h, w = x.shape
        residual = x
        x = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context)
        x = self.proj_out(x)
        return x.reshape(b, h, w, c).permute(0, 3, 1, 2) + residual


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class TinyUNet(nn.Module):
    """UNet2DConditionModel in miniature, with SD's block types: down level 0 is a CrossAttnDownBlock (res,
    transformer, stride-2 conv), down level 1 a DownBlock (res with a 1x1 skip conv as channels change; the
    last level neither attends nor downsamples), a mid block (res, transformer; SD's second mid res is left
    out for size), up level 1 an UpBlock (concatenated skip, res, nearest x2 upsample + conv), up level 0 a
    CrossAttnUpBlock (concatenated skip, res, transformer); then GroupNorm, SiLU, conv_out.
    Spatial 16 -> 8 -> 16. Channels (32, 40) keep the weights near 1 MB, as three fixtures hold a copy each."""

    def __init__(self, in_ch=4, chs=(32, 40), context_dim=CONTEXT_DIM, heads=2):
        super().__init__()
        c0, c1 = chs
        self.t_dim = c0
        temb = c0 * 2
        self.time_embedding = TimestepEmbedding(c0, temb)
        self.conv_in = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.down0_res = ResnetBlock(c0, c0, temb)
        self.down0_attn = Transformer2D(c0, context_dim, heads)
        self.down0_sample = Downsample(c0)
        self.down1_res = ResnetBlock(c0, c1, temb)
        self.mid_res1 = ResnetBlock(c1, c1, temb)
        self.mid_attn = Transformer2D(c1, context_dim, heads)
        self.up1_res = ResnetBlock(c1 + c1, c1, temb)
        self.up1_sample = Upsample(c1)
        self.up0_res = ResnetBlock(c1 + c0, c0, temb)
        self.up0_attn = Transformer2D(c0, context_dim, heads)
        self.conv_norm_out = nn.GroupNorm(8, c0, eps=1e-5)
        self.conv_out = nn.Conv2d(c0, in_ch, 3, padding=1)

    def forward(self, sample, timestep, context):
        temb = self.time_embedding(timestep_embedding(timestep, self.t_dim, self.conv_in.weight.dtype))
        h = self.conv_in(sample)
        skip0 = self.down0_attn(self.down0_res(h, temb), context)  # [B, c0, H, W]
        skip1 = self.down1_res(self.down0_sample(skip0), temb)  # [B, c1, H/2, W/2]
        h = self.mid_attn(self.mid_res1(skip1, temb), context)
        h = self.up1_sample(self.up1_res(torch.cat([h, skip1], dim=1), temb))  # [B, c1, H, W]
        h = self.up0_attn(self.up0_res(torch.cat([h, skip0], dim=1), temb), context)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class UNetLoss(nn.Module):
    """loss = mean((unet(sample, t, context) - target)^2), the epsilon-prediction MSE of METHOD.md."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, target):
        return torch.mean((self.unet(sample, timestep, encoder_hidden_states) - target) ** 2)


# ------------------------------------------------------------------------------------------ text encoder

def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """transformers CLIPAttention: biased q/k/v/out, q scaled before QK^T, causal mask added per head."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _shape(self, x, n, b):
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, x, causal_mask):
        b, n, d = x.shape
        q = self._shape(self.q_proj(x) * self.scale, n, b).view(b * self.heads, n, self.head_dim)
        k = self._shape(self.k_proj(x), n, b).view(b * self.heads, n, self.head_dim)
        v = self._shape(self.v_proj(x), n, b).view(b * self.heads, n, self.head_dim)
        w = torch.bmm(q, k.transpose(1, 2)).view(b, self.heads, n, n) + causal_mask
        w = torch.softmax(w.view(b * self.heads, n, n), dim=-1)
        out = torch.bmm(w, v).view(b, self.heads, n, self.head_dim).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class CLIPMLP(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim)
        self.self_attn = CLIPAttention(dim, heads)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.mlp = CLIPMLP(dim, dim * 4)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class TinyCLIPText(nn.Module):
    def __init__(self, vocab=VOCAB, max_len=TEXT_LEN, dim=TEXT_DIM, heads=2, layers=2):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.register_buffer('position_ids', torch.arange(max_len).expand((1, -1)), persistent=False)
        self.layers = nn.ModuleList([CLIPEncoderLayer(dim, heads) for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(dim)

    @staticmethod
    def causal_mask(b, n, dtype):
        # transformers' CLIPTextTransformer._build_causal_attention_mask (4.2x): full of -inf, triu_(1)
        mask = torch.empty(b, n, n, dtype=dtype)
        mask.fill_(torch.tensor(torch.finfo(dtype).min))
        mask.triu_(1)
        return mask.unsqueeze(1)

    def forward(self, input_ids):
        b, n = input_ids.shape
        x = self.token_embedding(input_ids) + self.position_embedding(self.position_ids[:, :n])
        mask = self.causal_mask(b, n, x.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_layer_norm(x)


class TextLoss(nn.Module):
    """loss = mean(last_hidden_state * R) with R a graph input (a fixed random projection of the output)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, R):
        return torch.mean(self.encoder(input_ids) * R)


# ------------------------------------------------------------------------------------------ construction

def randomize_(module, seed):
    """Default init leaves every norm weight at 1 and bias at 0: identical tensors cannot be told apart when
    mapping torch parameters to ONNX initializers by value, and they would hide scale bugs. Perturb them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if 'norm' in name.split('.')[-2]:
                base = 1.0 if name.endswith('weight') else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith('bias'):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return module


def build_unet():
    torch.manual_seed(SEED)
    return randomize_(TinyUNet(), SEED + 1).eval()


def build_text_encoder():
    torch.manual_seed(SEED + 2)
    return randomize_(TinyCLIPText(), SEED + 3).eval()


def unet_inputs(batch=UNET_BATCH, size=UNET_SIZE, seed=SEED + 10):
    g = torch.Generator().manual_seed(seed)
    return {
        'sample': torch.randn(batch, 4, size, size, generator=g),
        'timestep': torch.randint(0, 1000, (batch,), generator=g, dtype=torch.int64),
        'encoder_hidden_states': torch.randn(batch, CONTEXT_LEN, CONTEXT_DIM, generator=g),
        'target': torch.randn(batch, 4, size, size, generator=g),
    }


def text_inputs(seed=SEED + 11):
    g = torch.Generator().manual_seed(seed)
    return {
        'input_ids': torch.randint(0, VOCAB, (TEXT_BATCH, TEXT_LEN), generator=g, dtype=torch.int64),
        'R': torch.randn(TEXT_BATCH, TEXT_LEN, TEXT_DIM, generator=g),
    }
