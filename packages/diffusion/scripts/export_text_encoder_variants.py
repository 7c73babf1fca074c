#!/usr/bin/python3
"""Export text encoders shaped like the graphs real exporters emit (packages/diffusion/fixtures/text_encoder_variants/).

Run with Debian's python (torch 1.13 CPU, onnx 1.12):
    /usr/bin/python3 packages/diffusion/scripts/export_text_encoder_variants.py

The existing `text_encoder` fixture is a simplified CLIP. Real bundles come from other code, and the placeholder
surgery and the text-encoder adapters must find their way through what that code exports. The modules below are
re-written in plain torch after the libraries' sources (no transformers / open_clip package here), keeping their
module and parameter names, their forward arithmetic op for op, and their export settings:

  transformers CLIPTextModel (modeling_clip.py as of 4.36-4.41, which optimum exports for Stable Diffusion 1.x/2.x):
    CLIPTextEmbeddings (token_embedding, position_embedding, the non-persistent `position_ids` buffer sliced to the
    sequence length unless position_ids are given), CLIPAttention (eager: q scaled before the product, heads folded
    into the batch, bmm, causal mask added on [B, heads, q, k]), CLIPMLP (fc1, activation, fc2), CLIPEncoderLayer
    (pre-norm), CLIPTextTransformer (input_ids.view(-1, input_shape[-1]), the causal mask of
    _create_4d_causal_attention_mask / AttentionMaskConverter._make_causal_mask, final_layer_norm, the pooled output
    at argmax(input_ids.to(int)) when config.eos_token_id == 2 (the legacy configs of openai/clip and SD 1.x/2.x)
    or at the first position equal to eos_token_id otherwise). optimum's CLIPTextOnnxConfig: input `input_ids`
    {0: batch_size, 1: sequence_length}, outputs `last_hidden_state`, `pooler_output`.
  OpenCLIP text tower (open_clip 2.x model.py CLIP.encode_text with transformer.py ResidualAttentionBlock, the code
    Stable Diffusion 2.x's FrozenOpenCLIPEmbedder runs): token_embedding, positional_embedding parameter (whole
    [77, D] added), NLD -> LND permute, resblocks of torch.nn.MultiheadAttention (fused in_proj_weight [3D, D],
    in_proj_bias, out_proj) with the `attn_mask` causal buffer, ln_1 / ln_2 / mlp.c_fc / mlp.c_proj, ln_final.
    The token states after ln_final are the output (`last_hidden_state`), as SD 2.x's embedder (layer="last") uses.

Variants (each directory: model.onnx, reference.safetensors, manifest.json):
  clip_hf                 CLIPTextModel, SD 2.x config (gelu), legacy argmax pooling, int64 ids
  clip_hf_eos             CLIPTextModel with an updated config (eos_token_id = the end token): Equal + ArgMax pooling;
                          quick_gelu (SD 1.x's activation)
  clip_hf_position_input  clip_hf exported with position_ids as a second graph input [B, L] int64
  clip_padded_table       token_embedding with 1024 rows for a 1000-token tokenizer (rows 1000..1023 random)
  clip_hf_int32           clip_hf exported as diffusers' convert_stable_diffusion_checkpoint_to_onnx.py does
                          (int32 input_ids, axes {0: batch, 1: sequence}; the source of many SD ONNX bundles)
  openclip_mha            the OpenCLIP text tower on nn.MultiheadAttention; last_hidden_state only
  clip_hf_fp16            clip_hf in float16, as optimum --fp16 exports it (see fp16_graph)

References are float64 forwards of the same module (weights cast up; for fp16 the fp16 weights cast up), rounded to
float32. manifest.json records what the variant exercises and the op patterns the exporter produced around the ids,
the position embedding, the attention projections and the pooling, read back from the exported graph.
Everything is seeded, so a rerun writes the same files.
"""
import json
import os
import sys
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'ort-training', 'scripts'))
from safetensors_io import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(HERE), 'fixtures', 'text_encoder_variants')
OPSET = 17
SEED = 20240
L = 77
VOCAB, BOS, EOS = 1000, 998, 999  # CLIP's layout: start and end tokens are the last two ids of the tokenizer
WIDTH = 32


# ============================================================================ transformers CLIPTextModel

@dataclass
class CLIPTextConfig:
    vocab_size: int = VOCAB
    hidden_size: int = WIDTH
    intermediate_size: int = WIDTH  # 4x in the real configs; 1x keeps the fixtures under 300 kB
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    max_position_embeddings: int = L
    hidden_act: str = 'gelu'
    layer_norm_eps: float = 1e-5
    initializer_factor: float = 1.0
    eos_token_id: int = 2  # the value in openai/clip-vit-* and SD 1.x / 2.x text_encoder/config.json


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACT2FN = {'gelu': F.gelu, 'quick_gelu': quick_gelu}


def make_causal_mask(input_shape, dtype, device):
    """_create_4d_causal_attention_mask -> AttentionMaskConverter.to_causal_4d -> _make_causal_mask (no past)."""
    bsz, tgt_len = input_shape
    # float64 serves the references only: torch.full's default float32 cannot hold finfo(float64).min, and any
    # fill this negative gives the same exact zeros after the softmax
    fill = torch.finfo(dtype if dtype != torch.float64 else torch.float32).min
    mask = torch.full((tgt_len, tgt_len), fill, device=device)
    mask_cond = torch.arange(mask.size(-1), device=device)
    mask.masked_fill_(mask_cond < (mask_cond + 1).view(mask.size(-1), 1), 0)
    mask = mask.to(dtype)
    return mask[None, None, :, :].expand(bsz, 1, tgt_len, tgt_len)


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.register_buffer('position_ids', torch.arange(config.max_position_embeddings).expand((1, -1)),
                             persistent=False)

    def forward(self, input_ids, position_ids=None):
        seq_length = input_ids.shape[-1]
        if position_ids is None:
            position_ids = self.position_ids[:, :seq_length]
        inputs_embeds = self.token_embedding(input_ids)
        return inputs_embeds + self.position_embedding(position_ids)


class CLIPAttention(nn.Module):
    """Eager attention: q scaled, [B*heads, L, hd] bmm, causal mask added on the [B, heads, L, L] view."""

    def __init__(self, config):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def _shape(self, tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states, attention_mask=None, causal_attention_mask=None):
        bsz, tgt_len, embed_dim = hidden_states.size()
        query_states = self.q_proj(hidden_states) * self.scale
        key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
        value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.view(*proj_shape)
        value_states = value_states.view(*proj_shape)
        src_len = key_states.size(1)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
        if causal_attention_mask is not None:
            attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_attention_mask
            attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)
        if attention_mask is not None:
            attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + attention_mask
            attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)
        attn_weights = F.softmax(attn_weights, dim=-1)
        attn_output = torch.bmm(attn_weights, value_states)  # dropout is the identity in eval
        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)
        attn_output = attn_output.transpose(1, 2)
        attn_output = attn_output.reshape(bsz, tgt_len, embed_dim)
        return self.out_proj(attn_output)


class CLIPMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states):
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, attention_mask, causal_attention_mask):
        residual = hidden_states
        hidden_states = self.layer_norm1(hidden_states)
        hidden_states = self.self_attn(hidden_states, attention_mask, causal_attention_mask)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.mlp(self.layer_norm2(hidden_states))
        return residual + hidden_states


class CLIPEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, inputs_embeds, attention_mask=None, causal_attention_mask=None):
        hidden_states = inputs_embeds
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, causal_attention_mask)
        return hidden_states


class CLIPTextTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.eos_token_id = config.eos_token_id

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        input_shape = input_ids.size()
        input_ids = input_ids.view(-1, input_shape[-1])
        hidden_states = self.embeddings(input_ids=input_ids, position_ids=position_ids)
        causal_attention_mask = make_causal_mask(input_shape, hidden_states.dtype, hidden_states.device)
        # (an attention_mask would be expanded by _prepare_4d_attention_mask; SD exports pass none)
        last_hidden_state = self.encoder(hidden_states, attention_mask, causal_attention_mask)
        last_hidden_state = self.final_layer_norm(last_hidden_state)
        if self.eos_token_id == 2:
            # legacy configs: the end token is the largest id of the vocabulary
            pooled_output = last_hidden_state[
                torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device),
                input_ids.to(dtype=torch.int, device=last_hidden_state.device).argmax(dim=-1),
            ]
        else:
            # first position holding eos_token_id (the padding may be the end token too)
            pooled_output = last_hidden_state[
                torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device),
                (input_ids.to(dtype=torch.int, device=last_hidden_state.device) == self.eos_token_id)
                .int()
                .argmax(dim=-1),
            ]
        return last_hidden_state, pooled_output


class CLIPTextModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """CLIPPreTrainedModel._init_weights for the text modules."""
        c, factor = self.config, self.config.initializer_factor
        if isinstance(module, CLIPTextEmbeddings):
            module.token_embedding.weight.data.normal_(mean=0.0, std=factor * 0.02)
            module.position_embedding.weight.data.normal_(mean=0.0, std=factor * 0.02)
        elif isinstance(module, CLIPAttention):
            in_proj_std = (module.embed_dim ** -0.5) * ((2 * c.num_hidden_layers) ** -0.5) * factor
            out_proj_std = (module.embed_dim ** -0.5) * factor
            nn.init.normal_(module.q_proj.weight, std=in_proj_std)
            nn.init.normal_(module.k_proj.weight, std=in_proj_std)
            nn.init.normal_(module.v_proj.weight, std=in_proj_std)
            nn.init.normal_(module.out_proj.weight, std=out_proj_std)
        elif isinstance(module, CLIPMLP):
            in_proj_std = (c.hidden_size ** -0.5) * ((2 * c.num_hidden_layers) ** -0.5) * factor
            fc_std = (2 * c.hidden_size) ** -0.5 * factor
            nn.init.normal_(module.fc1.weight, std=fc_std)
            nn.init.normal_(module.fc2.weight, std=in_proj_std)
        if isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        return self.text_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)


# ============================================================================ OpenCLIP text tower

class LayerNorm(nn.LayerNorm):
    """open_clip.transformer.LayerNorm: torch's, cast back to the input dtype."""

    def forward(self, x):
        orig_type = x.dtype
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.to(orig_type)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, mlp_ratio=4.0, act_layer=nn.GELU, norm_layer=LayerNorm):
        super().__init__()
        self.ln_1 = norm_layer(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ls_1 = nn.Identity()
        self.ln_2 = norm_layer(d_model)
        mlp_width = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(d_model, mlp_width)),
            ('gelu', act_layer()),
            ('c_proj', nn.Linear(mlp_width, d_model)),
        ]))
        self.ls_2 = nn.Identity()

    def attention(self, x, attn_mask=None):
        attn_mask = attn_mask.to(x.dtype) if attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]

    def forward(self, x, attn_mask=None):
        x = x + self.ls_1(self.attention(self.ln_1(x), attn_mask=attn_mask))
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio=4.0):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers)])

    def get_cast_dtype(self):
        return self.resblocks[0].mlp.c_fc.weight.dtype

    def forward(self, x, attn_mask=None):
        for r in self.resblocks:
            x = r(x, attn_mask=attn_mask)
        return x


class OpenCLIPText(nn.Module):
    """The text half of open_clip.model.CLIP (its attribute names), forward = encode_text up to ln_final."""

    def __init__(self, context_length=L, vocab_size=VOCAB, width=WIDTH, heads=4, layers=2, mlp_ratio=4.0, output_dim=WIDTH):
        super().__init__()
        self.context_length = context_length
        self.transformer = Transformer(width, layers, heads, mlp_ratio)
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))  # used for pooled features only
        self.register_buffer('attn_mask', self.build_attention_mask(), persistent=False)
        self.init_parameters()

    def build_attention_mask(self):
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float('-inf'))
        mask.triu_(1)  # zero out the lower diagonal
        return mask

    def init_parameters(self):
        """TextTransformer.init_parameters."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = (self.transformer.width ** -0.5) * ((2 * self.transformer.layers) ** -0.5)
        attn_std = self.transformer.width ** -0.5
        fc_std = (2 * self.transformer.width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def forward(self, text):
        cast_dtype = self.transformer.get_cast_dtype()
        x = self.token_embedding(text).to(cast_dtype)  # [batch_size, n_ctx, d_model]
        x = x + self.positional_embedding.to(cast_dtype)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x, attn_mask=self.attn_mask)
        x = x.permute(1, 0, 2)  # LND -> NLD
        return self.ln_final(x)  # [batch_size, n_ctx, transformer.width]


# ============================================================================ weights and prompts

def perturb_(module, seed):
    """The libraries' inits leave every norm at 1 / 0 and every bias at 0: identical tensors cannot be told apart
    by value and would hide a missing bias or a wrong scale. Perturb them (seeded)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            owner = name.split('.')[-2] if '.' in name else ''
            if 'norm' in owner or owner.startswith('ln_'):
                base = 1.0 if name.endswith('weight') else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith('bias'):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return module


def prompts(seed, lengths, pads, bos=BOS, eos=EOS, dtype=torch.int64):
    """[BOS, tokens..., EOS, pad...] rows of 77 with tokens below BOS. SD 1.x's tokenizer pads with the end token,
    SD 2.x's and OpenCLIP's with 0."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), L, dtype=torch.int64)
    for b, (n, pad) in enumerate(zip(lengths, pads)):
        ids[b] = pad
        ids[b, 0] = bos
        ids[b, 1:n + 1] = torch.randint(0, bos, (n,), generator=g)
        ids[b, n + 1] = eos
    return ids.to(dtype)


# ============================================================================ export and graph reading

def rel_error(a, b):
    """max|a - b| / max|b|, the metric the tests use."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def export(module, args, path, input_names, output_names, dynamic_axes):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings about Python values taken as constants
        torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                          opset_version=OPSET, dynamic_axes=dynamic_axes, do_constant_folding=True)


class GraphView:
    def __init__(self, model):
        self.g = model.graph
        self.inits = {t.name: t for t in self.g.initializer}
        self.inputs = {i.name for i in self.g.input}
        self.outputs = {o.name for o in self.g.output}
        self.consts = {n.output[0]: n for n in self.g.node if n.op_type == 'Constant'}
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.consumers = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        inferred = onnx.shape_inference.infer_shapes(model).graph
        self.elem = {vi.name: vi.type.tensor_type.elem_type
                     for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
        self.elem.update({t.name: t.data_type for t in self.g.initializer})

    def const_dims(self, name):
        if name in self.inits:
            return list(self.inits[name].dims)
        if name in self.consts:
            return list(self.consts[name].attribute[0].t.dims)
        return None

    def is_table(self, n):
        """A Gather whose data is a constant 2-D table."""
        return n.op_type == 'Gather' and len(self.const_dims(n.input[0]) or []) == 2

    def is_float(self, name):
        return self.elem.get(name) in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)

    def forward_path(self, start, stop):
        """The nodes on the shortest data path from tensor `start` to the first node satisfying stop(node)."""
        frontier, seen = [(start, [])], {start}
        while frontier:
            nxt = []
            for t, path in frontier:
                for n in self.consumers.get(t, []):
                    p = path + [n]
                    if stop(n):
                        return p
                    for o in n.output:
                        if o not in seen:
                            seen.add(o)
                            nxt.append((o, p))
            frontier = nxt
        return None

    def expr(self, t, depth, root=True):
        """`t` as a nested expression of ops over graph inputs, initializers (name[dims]) and small constants."""
        if t in self.inits:
            return f'{t}{list(self.inits[t].dims)}'
        if t in self.inputs or (t in self.outputs and not root):
            return t
        n = self.producer.get(t)
        if n is None:
            return '?'
        if n.op_type == 'Constant':
            a = numpy_helper.to_array(n.attribute[0].t)
            if a.ndim == 0:
                return f'Constant({a.item()})'
            return f'Constant{a.tolist()}' if a.size <= 4 else f'Constant<{list(a.shape)}>'
        attrs = ''
        if n.op_type == 'Cast':
            attrs = '[to=' + TensorProto.DataType.Name(n.attribute[0].i) + ']'
        if depth == 0:
            return f'{n.op_type}{attrs}(...)'
        return f'{n.op_type}{attrs}(' + ', '.join(self.expr(i, depth - 1, False) for i in n.input if i) + ')'


def fmt(nodes):
    return ' -> '.join(n.op_type for n in nodes)


def describe(path, ids_input):
    """The op patterns the surgery and the adapters meet, read back from the exported file."""
    model = onnx.load(path)
    v = GraphView(model)
    g = model.graph
    out = OrderedDict()
    tok = v.forward_path(ids_input, v.is_table)
    table = tok[-1]
    out['tokenEmbedding'] = {
        'initializer': table.input[0], 'dims': v.const_dims(table.input[0]),
        'dtype': TensorProto.DataType.Name(v.elem[table.input[0]]), 'gatherNode': table.name,
    }
    out['idsToTable'] = f'{ids_input} -> ' + fmt(tok) + f'({table.input[0]})'
    out['tokenGather'] = v.expr(table.output[0], 6)
    # the embeddings' sum: token rows + position rows
    first_add = v.forward_path(table.output[0], lambda n: n.op_type == 'Add')
    out['tokenToEmbeddingSum'] = 'Gather -> ' + fmt(first_add)
    out['embeddingSum'] = v.expr(first_add[-1].output[0], 4)
    # the pooling, when present
    if any(o.name == 'pooler_output' for o in g.output):
        out['idsToPoolingIndex'] = f'{ids_input} -> ' + fmt(v.forward_path(ids_input, lambda n: n.op_type == 'ArgMax'))
        out['pooling'] = v.expr('pooler_output', 6)
    # the first attention: its data ops (float outputs) in graph order, and the constant operands of its products
    scope = next(s for s in ('/text_model/encoder/layers.0/self_attn/', '/transformer/resblocks.0/attn/')
                 if any(n.name.startswith(s) for n in g.node))
    nodes = [n for n in g.node if n.name.startswith(scope) and n.op_type != 'Constant']
    out['attentionScope'] = scope
    out['attentionDataOps'] = ' '.join(n.op_type for n in nodes if v.is_float(n.output[0]))
    softmax = next(n for n in nodes if n.op_type == 'Softmax')
    out['attentionScores'] = v.expr(softmax.output[0], 5)
    slices = [n for n in nodes if n.op_type == 'Slice' and v.is_float(n.output[0])]
    if slices:  # a fused [D, 3D] projection cut into q, k, v
        out['fusedProjectionSplit'] = [v.expr(n.output[0], 3) for n in slices]
    gemm = [n for n in nodes if n.op_type == 'Gemm']
    if gemm:
        out['gemmAttributes'] = {a.name: helper.get_attribute_value(a) for a in gemm[0].attribute}
    out['attentionConstOperands'] = [
        f'{n.op_type} {i} {v.const_dims(i)}' for n in nodes if n.op_type in ('MatMul', 'Gemm', 'Add')
        for i in n.input if v.const_dims(i) not in (None, [], [1])]
    out['opCounts'] = dict(sorted(Counter(n.op_type for n in g.node).items()))
    return out


# ============================================================================ fp16

def fp16_graph(src, dst):
    """The float32 trace rewritten as the trace of `module.half()` (optimum --fp16 traces on CUDA), which torch 1.13
    cannot make on a CPU (no Half addmm / bmm / layer_norm / softmax / gelu kernels). Every float tensor that depends on
    the weights or the inputs becomes float16: initializers, Constants and ConstantOfShape values, graph inputs /
    outputs, value_info. Float tensors computed from constants alone and then cast (`torch.full(...)` in the default
    dtype, then `.to(dtype)`: the causal mask) stay float32 as in a half trace, their Cast now to float16. Values are
    clamped to +-65504, so finfo(float32).min in the mask becomes the finfo(float16).min a half trace computes.
    Integer tensors are untouched."""
    m = onnx.load(src)
    g = m.graph
    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    v = GraphView(m)

    # float tensors computed from float constants alone (integer inputs, shapes, are not data)
    const_only = {}

    def is_const_only(t):
        if t not in const_only:
            n = v.producer.get(t)
            if t in v.inits or t in v.inputs or n is None:
                const_only[t] = False
            else:
                const_only[t] = all(is_const_only(i) for i in n.input if i and v.is_float(i))
        return const_only[t]

    keep = set()  # float32 tensors of a half trace: constant-only float inputs of a Cast to float

    def mark(t):
        if t in keep or not v.is_float(t):
            return
        keep.add(t)
        n = v.producer.get(t)
        for i in (n.input if n is not None else []):
            if i and v.is_float(i):
                mark(i)

    for n in g.node:
        if n.op_type == 'Cast' and n.attribute[0].i == F32 and v.is_float(n.input[0]) and is_const_only(n.input[0]):
            mark(n.input[0])
    for t in keep:  # such a tensor must feed nothing but the kept chain and the Cast
        for c in v.consumers.get(t, []):
            assert c.op_type == 'Cast' or all(o in keep for o in c.output if v.is_float(o)), (t, c.name)

    def half(t):
        a = np.clip(numpy_helper.to_array(t).astype(np.float64), -65504, 65504)
        return numpy_helper.from_array(a.astype(np.float16 if t.name not in keep else np.float32), t.name)

    for i, t in enumerate(g.initializer):
        if t.data_type == F32:
            g.initializer[i].CopyFrom(half(t))
    for n in g.node:
        kept = any(o in keep for o in n.output)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F32:
                a.t.CopyFrom(numpy_helper.from_array(
                    np.clip(numpy_helper.to_array(a.t).astype(np.float64), -65504, 65504)
                    .astype(np.float32 if kept else np.float16), a.t.name))
            if n.op_type == 'Cast' and a.name == 'to' and a.i == F32:
                a.i = F16
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == F32 and vi.name not in keep:
            vi.type.tensor_type.elem_type = F16
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return sorted(keep)


# ============================================================================ variants

def write(name, module, feeds, export_args, output_names, dynamic_axes, ids_input, manifest, ref_module=None,
          onnx_transform=None):
    out_dir = os.path.join(OUT, name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'model.onnx')
    kept = None
    if onnx_transform is None:
        export(module, export_args, path, list(feeds), output_names, dynamic_axes)
    else:
        tmp = path + '.fp32.onnx'
        export(module, export_args, tmp, list(feeds), output_names, dynamic_axes)
        kept = onnx_transform(tmp, path)
        os.remove(tmp)
    onnx.checker.check_model(onnx.load(path))

    def forward(m):  # the forward the export traced: ids, and position_ids by keyword when given
        extra = {k: v for k, v in feeds.items() if k != 'input_ids'}
        return m(feeds['input_ids'], **extra)

    ref_module = ref_module or module
    with torch.no_grad():
        out32 = forward(module) if onnx_transform is None else None
        out64 = forward(ref_module.double())
    out32 = out32 if isinstance(out32, tuple) or out32 is None else (out32,)
    out64 = out64 if isinstance(out64, tuple) else (out64,)
    tensors = {f'input/{k}': v.numpy() if v.dtype != torch.int32 else v.to(torch.int64).numpy() for k, v in feeds.items()}
    for o, t in zip(output_names, out64):
        tensors[o] = t.float().numpy()
    write_safetensors(os.path.join(out_dir, 'reference.safetensors'), tensors)

    graph = describe(path, ids_input)
    m = OrderedDict(name=name, model='model.onnx', reference='reference.safetensors', opset=OPSET)
    m['inputs'] = {k: f'input/{k}' for k in feeds}
    m['inputDtypes'] = {k: str(v.dtype).replace('torch.', '') for k, v in feeds.items()}
    m['outputs'] = {o: o for o in output_names}
    m['dynamicAxes'] = dynamic_axes
    m.update(manifest)
    m['maxLength'] = L
    if kept is not None:
        m['float32Kept'] = kept
    if out32 is not None:
        m['torchFp32RelError'] = {o: rel_error(a, b) for o, a, b in zip(output_names, out32, out64)}
    m['graph'] = graph
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(m, f, indent=2)
        f.write('\n')
    size = sum(os.path.getsize(os.path.join(out_dir, x)) for x in os.listdir(out_dir))
    print(f'{os.path.relpath(out_dir)}: {size / 1e3:.0f} kB  {graph["idsToTable"]}')


HF_AXES = {  # optimum CLIPTextOnnxConfig
    'input_ids': {0: 'batch_size', 1: 'sequence_length'},
    'last_hidden_state': {0: 'batch_size', 1: 'sequence_length'},
    'pooler_output': {0: 'batch_size'},
}


def clip_model(config, seed):
    torch.manual_seed(seed)
    return perturb_(CLIPTextModel(config), seed + 1).eval()


def clip_manifest(config, table_rows=None, **extra):
    m = OrderedDict(
        exporter='transformers CLIPTextModel (modeling_clip.py 4.36-4.41), torch.onnx.export as optimum does',
        vocabSize=VOCAB, baseVocab=VOCAB, tableRows=table_rows or config.vocab_size, bos=BOS, eos=EOS,
        dim=config.hidden_size, heads=config.num_attention_heads, layers=config.num_hidden_layers,
        activation=config.hidden_act, configEosTokenId=config.eos_token_id,
        pooling='argmax(input_ids.to(int32))' if config.eos_token_id == 2
        else f'argmax((input_ids.to(int32) == {config.eos_token_id}).int())')
    m.update(extra)
    return m


HF_LENGTHS, HF_PADS = [5, 30], [EOS, 0]


def write_clip_hf():
    config = CLIPTextConfig()
    ids = prompts(SEED + 10, HF_LENGTHS, HF_PADS)
    write('clip_hf', clip_model(config, SEED), {'input_ids': ids}, (ids,), ['last_hidden_state', 'pooler_output'],
          HF_AXES, 'input_ids', clip_manifest(config, exercises=[
              'input_ids go through Reshape (view(-1, input_shape[-1])) before the token-embedding Gather',
              'position_ids: a constant buffer [1, 77] sliced to the sequence length (Slice), then the position Gather',
              'separate q/k/v/out projections (MatMul with [D, D] pre-transposed weights, Add bias)',
              'causal mask computed in the graph (Range / Less / Where on finfo.min), added on [B, heads, L, L]',
              'legacy pooling: ArgMax over input_ids cast to int32 (the end token is the largest id)',
              'symbolic batch_size and sequence_length axes, as optimum exports them',
              'SD 1.x padding (end token) in prompt 0, SD 2.x padding (0) in prompt 1',
          ]))


def write_clip_hf_eos():
    config = CLIPTextConfig(eos_token_id=EOS, hidden_act='quick_gelu')
    ids = prompts(SEED + 11, [7, 20], HF_PADS)
    write('clip_hf_eos', clip_model(config, SEED + 100), {'input_ids': ids}, (ids,),
          ['last_hidden_state', 'pooler_output'], HF_AXES, 'input_ids', clip_manifest(config, exercises=[
              'as clip_hf, but config.eos_token_id is the end token id (transformers >= PR #24773 configs): pooling at '
              'the first position equal to it (Cast int32 -> Equal -> Cast int32 -> ArgMax), so added tokens with '
              'larger ids do not move the pooled position',
              'quick_gelu activation (SD 1.x CLIP ViT-L/14): x * Sigmoid(1.702 x)',
          ]))


def write_clip_hf_position_input():
    config = CLIPTextConfig()
    ids = prompts(SEED + 12, HF_LENGTHS, HF_PADS)
    pos = torch.arange(L, dtype=torch.int64).expand(ids.shape[0], -1).contiguous()
    axes = dict(HF_AXES, position_ids={0: 'batch_size', 1: 'sequence_length'})
    axes = {k: axes[k] for k in ['input_ids', 'position_ids', 'last_hidden_state', 'pooler_output']}
    write('clip_hf_position_input', clip_model(config, SEED + 200), {'input_ids': ids, 'position_ids': pos},
          (ids, {'position_ids': pos}), ['last_hidden_state', 'pooler_output'], axes, 'input_ids',
          clip_manifest(config, exercises=[
              'position_ids is a second graph input [batch_size, sequence_length] int64 (CLIPTextModel.forward('
              'input_ids, position_ids=...)): the position Gather reads a graph input, not a sliced buffer',
              'a Gather on an int64 graph input that is NOT the token table lookup (must not be mistaken for it)',
              'reference feeds position_ids = arange(77) per row',
          ]))


def write_clip_padded_table():
    rows = 1024
    config = CLIPTextConfig(vocab_size=rows)
    ids = prompts(SEED + 13, [9, 41], HF_PADS)
    model = clip_model(config, SEED + 300)
    with torch.no_grad():  # the padding rows: random, like rows of a resize_token_embeddings(pad_to_multiple_of=...)
        g = torch.Generator().manual_seed(SEED + 301)
        model.text_model.embeddings.token_embedding.weight[VOCAB:] = torch.randn(rows - VOCAB, WIDTH, generator=g)
    write('clip_padded_table', model, {'input_ids': ids}, (ids,), ['last_hidden_state', 'pooler_output'], HF_AXES,
          'input_ids', clip_manifest(config, table_rows=rows, exercises=[
              f'token-embedding table of {rows} rows for a tokenizer of {VOCAB} ids (start {BOS}, end {EOS}): rows '
              f'{VOCAB}..{rows - 1} are padding (random values), never produced by the tokenizer',
              'placeholder rows must be numbered from baseVocab (1000), not from the table size; the end token is '
              'not the last row of the table',
          ]))


def write_clip_hf_int32():
    config = CLIPTextConfig()
    ids = prompts(SEED + 14, HF_LENGTHS, HF_PADS, dtype=torch.int32)
    write('clip_hf_int32', clip_model(config, SEED + 400), {'input_ids': ids}, (ids,),
          ['last_hidden_state', 'pooler_output'], {'input_ids': {0: 'batch', 1: 'sequence'}}, 'input_ids',
          clip_manifest(config, exporter='transformers CLIPTextModel exported as diffusers\' '
                        'scripts/convert_stable_diffusion_checkpoint_to_onnx.py does (int32 ids)', exercises=[
                            'input_ids int32 [batch, sequence] (diffusers\' converter casts the ids to int32): Reshape '
                            'and the token Gather take int32 indices; outputs have no dynamic axes declared',
                            'reference input/input_ids is stored as int64 (same values); feed it as int32',
                        ]))


def write_openclip_mha():
    torch.manual_seed(SEED + 500)
    model = OpenCLIPText(heads=4, mlp_ratio=0.5)  # 4.0 in the real configs; 0.5 keeps the fixture under 300 kB (its 77x77 mask is folded into a constant per layer)
    perturb_(model, SEED + 501).eval()
    ids = prompts(SEED + 15, [6, 25], [0, 0])
    write('openclip_mha', model, {'input_ids': ids}, (ids,), ['last_hidden_state'],
          {'input_ids': {0: 'batch'}, 'last_hidden_state': {0: 'batch'}}, 'input_ids', OrderedDict(
              exporter='open_clip 2.x text tower (CLIP.encode_text before pooling; nn.MultiheadAttention blocks), '
                       'torch.onnx.export',
              vocabSize=VOCAB, baseVocab=VOCAB, tableRows=VOCAB, bos=BOS, eos=EOS, pad=0, dim=WIDTH, heads=4, layers=2, mlpRatio=0.5,
              activation='gelu', pooling=None,
              idsCast='none: open_clip feeds the int64 ids straight to token_embedding (its pooling, not exported '
                      'here, takes text.argmax(dim=-1) on int64); so no int32 variant',
              exercises=[
                  'input_ids go straight into the token-embedding Gather (no Reshape)',
                  'positional_embedding is a [77, D] parameter added whole (no position Gather, fixed length 77)',
                  'torch.nn.MultiheadAttention: fused in_proj_weight [3D, D] / in_proj_bias [3D], out_proj; '
                  'sequence-first layout (Transpose NLD -> LND around the blocks)',
                  'causal mask: the `attn_mask` buffer [77, 77] (-inf above the diagonal), a constant',
                  'single output last_hidden_state (after ln_final)',
              ]))


def write_clip_hf_fp16():
    config = CLIPTextConfig()
    ids = prompts(SEED + 10, HF_LENGTHS, HF_PADS)
    model = clip_model(config, SEED)  # clip_hf's weights
    ref = clip_model(config, SEED).half()  # the float64 reference runs the fp16 weights
    write('clip_hf_fp16', model, {'input_ids': ids}, (ids,), ['last_hidden_state', 'pooler_output'], HF_AXES,
          'input_ids', clip_manifest(config, dtype='float16', exercises=[
              'clip_hf (same weights, rounded) in float16 throughout: fp16 token table and initializers, fp16 '
              'outputs, fp16 causal-mask constant (-65504), LayerNormalization / Softmax / Erf in fp16',
              'made by tracing in float32 and rewriting every float tensor of the graph to float16 (fp16_graph in '
              'the script), because torch 1.13 has no CPU Half kernels to trace module.half(); the ops and their '
              'order are those of the float32 trace, which is what a CUDA half trace records',
              'reference: float64 forward of the fp16-rounded weights',
          ]), ref_module=ref, onnx_transform=fp16_graph)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    write_clip_hf()
    write_clip_hf_eos()
    write_clip_hf_position_input()
    write_clip_padded_table()
    write_clip_hf_int32()
    write_openclip_mha()
    write_clip_hf_fp16()


if __name__ == '__main__':
    main()
