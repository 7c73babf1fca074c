#!/usr/bin/python3
"""Export the PyTorch parity fixtures of ort-training (committed under packages/ort-training/fixtures/).

Run with Debian's python (torch 1.13 CPU, onnx 1.12):  /usr/bin/python3 packages/ort-training/scripts/export_fixtures.py

For each fixture it writes fixtures/<name>/:
  model.onnx             torch.onnx.export of a module that returns a scalar loss (constant folding on, the default)
  reference.safetensors  the inputs (input/<graph input>), the loss (loss) and the gradients (grad/<onnx tensor>)
  manifest.json          loss name, inputs, which ONNX tensor each gradient belongs to, the torch name of every
                         mapped parameter (unet only: bench_torch.py loads the weights back from model.onnx with it)
The reference values are float64 autograd of the same module (weights and inputs cast up), rounded to float32;
float32 autograd is cross-checked against them and its own error is recorded per tensor (torchFp32RelError).
Gradients of weights are stored in the layout of the ONNX initializer holding the weight: torch.onnx turns
Linear weights W into `onnx::MatMul_N` holding W^T and GroupNorm weights into [C,1,1] Mul operands, so each
torch parameter is found among the initializers by value (W, W^T or W reshaped) and its gradient laid out alike.
Everything is seeded, so a rerun writes the same files.
"""
import copy
import hashlib
import json
import os
import shutil
import sys
import warnings
from collections import Counter

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_models as fm  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures')

# Parameters whose gradients are compared: every op kind on the path (conv incl. stride 2 and 1x1, GroupNorm,
# LayerNorm, self/cross attention q/k/v/out, GEGLU, the time-embedding MLP, the conv after Resize).
UNET_WRT_INPUTS = ['encoder_hidden_states', 'sample']
UNET_WRT_PARAMS = [
    'unet.time_embedding.linear_1.weight',
    'unet.conv_in.weight', 'unet.conv_in.bias',
    'unet.down0_res.norm1.weight', 'unet.down0_res.norm1.bias', 'unet.down0_res.conv2.bias',
    'unet.down0_res.time_emb_proj.weight',
    'unet.down0_attn.norm.weight', 'unet.down0_attn.proj_in.weight',
    'unet.down0_attn.transformer_blocks.0.norm1.weight', 'unet.down0_attn.transformer_blocks.0.norm1.bias',
    'unet.down0_attn.transformer_blocks.0.attn1.to_q.weight',
    'unet.down0_attn.transformer_blocks.0.attn1.to_k.weight',
    'unet.down0_attn.transformer_blocks.0.attn1.to_v.weight',
    'unet.down0_attn.transformer_blocks.0.attn1.to_out.0.weight',
    'unet.down0_attn.transformer_blocks.0.attn1.to_out.0.bias',
    'unet.down0_attn.transformer_blocks.0.attn2.to_q.weight',
    'unet.down0_attn.transformer_blocks.0.attn2.to_k.weight',
    'unet.down0_attn.transformer_blocks.0.attn2.to_v.weight',
    'unet.down0_attn.transformer_blocks.0.ff.net.0.proj.weight',
    'unet.down0_attn.transformer_blocks.0.ff.net.2.weight',
    'unet.down0_sample.conv.weight',
    'unet.down1_res.conv_shortcut.weight',
    'unet.mid_attn.transformer_blocks.0.attn2.to_k.weight',
    'unet.mid_attn.transformer_blocks.0.norm3.weight',
    'unet.mid_attn.proj_out.weight',
    'unet.up1_sample.conv.weight',
    'unet.conv_norm_out.weight', 'unet.conv_norm_out.bias',
    'unet.conv_out.weight', 'unet.conv_out.bias',
]
# opset 14 differs in how LayerNorm (decomposed), Split/Slice and reductions are written, not in the convs:
# leave out the two largest conv gradients to keep the fixture small.
UNET14_WRT_PARAMS = [p for p in UNET_WRT_PARAMS if p not in ('unet.down0_sample.conv.weight', 'unet.up1_sample.conv.weight')]
TEXT_WRT_INPUTS = []
TEXT_WRT_PARAMS = [
    'encoder.token_embedding.weight', 'encoder.position_embedding.weight',
    'encoder.layers.0.layer_norm1.weight', 'encoder.layers.0.layer_norm1.bias',
    'encoder.layers.0.self_attn.q_proj.weight', 'encoder.layers.0.self_attn.q_proj.bias',
    'encoder.layers.0.self_attn.k_proj.weight', 'encoder.layers.0.self_attn.v_proj.weight',
    'encoder.layers.0.self_attn.out_proj.weight', 'encoder.layers.0.mlp.fc1.weight',
    'encoder.layers.1.mlp.fc2.bias', 'encoder.layers.1.layer_norm2.weight',
    'encoder.final_layer_norm.weight', 'encoder.final_layer_norm.bias',
]


def rel_error(a, b):
    """max|a - b| / max|b|: the metric parity.test.ts uses too (scale-free, and robust to tiny elements)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def export(module, inputs, path, opset):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings about shapes taken as constants: intended here
        torch.onnx.export(module, tuple(inputs.values()), path, input_names=list(inputs), output_names=['loss'],
                          opset_version=opset)
    return onnx.load(path)


def map_parameters(module, model):
    """torch parameter name -> (initializer name, layout), layout one of same|reshape|transpose."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = {}
    for name, p in module.named_parameters():
        w = p.detach().numpy()
        hits = []
        for iname, a in inits.items():
            if a.dtype != w.dtype or a.size != w.size:
                continue
            if a.shape == w.shape and np.array_equal(a, w):
                hits.append((iname, 'same'))
            elif w.ndim == 2 and a.shape == w.T.shape and np.array_equal(a, w.T):
                hits.append((iname, 'transpose'))
            elif np.array_equal(a.reshape(-1), w.reshape(-1)):
                hits.append((iname, 'reshape'))
        if len(hits) > 1:
            raise RuntimeError(f'{name} matches several initializers: {hits}')
        if hits:
            out[name] = hits[0]
    return out


def to_layout(g, layout, shape):
    g = g.T if layout == 'transpose' else g
    return np.ascontiguousarray(g.reshape(shape))


def autograd(module, inputs, wrt_inputs, wrt_params, dtype):
    """Loss and gradients of `module` in `dtype` (float inputs cast, integer inputs kept)."""
    m = copy.deepcopy(module).to(dtype)
    feeds = {k: (v.detach().to(dtype, copy=True) if v.is_floating_point() else v.clone()) for k, v in inputs.items()}
    for k in wrt_inputs:
        feeds[k].requires_grad_(True)
    params = dict(m.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in wrt_params)
    loss = m(**feeds)
    loss.backward()
    grads = {f'input:{k}': feeds[k].grad.detach().numpy() for k in wrt_inputs}
    grads.update({n: params[n].grad.detach().numpy() for n in wrt_params})
    return loss.detach().numpy(), grads


def write_fixture(name, module, inputs, wrt_inputs, wrt_params, opset, with_parameter_map=False):
    out_dir = os.path.join(FIXTURES, name)
    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, 'model.onnx')
    model = export(module, inputs, model_path, opset)
    mapping = map_parameters(module, model)
    missing = [p for p in wrt_params if p not in mapping]
    if missing:
        raise RuntimeError(f'{name}: no ONNX initializer holds {missing}')
    init_shapes = {t.name: list(t.dims) for t in model.graph.initializer}

    loss32, g32 = autograd(module, inputs, wrt_inputs, wrt_params, torch.float32)
    loss64, g64 = autograd(module, inputs, wrt_inputs, wrt_params, torch.float64)
    loss_err = rel_error(loss32, loss64)

    tensors = {f'input/{k}': v.numpy() for k, v in inputs.items()}
    tensors['loss'] = np.asarray(loss64, np.float32)
    gradients = []
    worst = loss_err
    for key in [f'input:{k}' for k in wrt_inputs] + list(wrt_params):
        if key.startswith('input:'):
            tensor, layout, shape = key[len('input:'):], 'same', list(inputs[key[6:]].shape)
        else:
            tensor, layout = mapping[key]
            shape = init_shapes[tensor]
        ref = to_layout(g64[key], layout, shape).astype(np.float32)
        err = rel_error(g32[key], g64[key])
        worst = max(worst, err)
        tensors[f'grad/{tensor}'] = ref
        gradients.append({'tensor': tensor, 'reference': f'grad/{tensor}', 'torch': key, 'layout': layout,
                          'torchFp32RelError': float(f'{err:.3g}')})
    if worst > 1e-4:
        raise RuntimeError(f'{name}: float32 autograd differs from float64 by {worst:.3g}; the fixture is ill-conditioned')
    write_safetensors(os.path.join(out_dir, 'reference.safetensors'), tensors)

    manifest = {
        'name': name,
        'model': 'model.onnx',
        'reference': 'reference.safetensors',
        'opset': opset,
        'producer': f'torch {torch.__version__}, onnx {onnx.__version__}',
        'loss': 'loss',
        'lossReference': 'loss',
        'lossTorchFp32RelError': float(f'{loss_err:.3g}'),
        'inputs': {k: f'input/{k}' for k in inputs},
        'gradients': gradients,
        'exportedOps': dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
    }
    if with_parameter_map:  # bench_torch.py loads the module's weights back from model.onnx with it
        manifest['parameters'] = {n: {'tensor': t, 'layout': l} for n, (t, l) in mapping.items()}
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    report(out_dir, f'loss {float(loss64):.6g}, {len(gradients)} gradients, torch fp32 vs fp64 rel error <= {worst:.2g}')
    return manifest


def write_external_variant(src_name, name):
    """The same model with every initializer over 1 KB in one external data file beside it."""
    src_dir, out_dir = os.path.join(FIXTURES, src_name), os.path.join(FIXTURES, name)
    os.makedirs(out_dir, exist_ok=True)
    data_file = 'model.onnx.data'
    if os.path.exists(os.path.join(out_dir, data_file)):
        os.remove(os.path.join(out_dir, data_file))  # onnx appends to an existing data file
    model = onnx.load(os.path.join(src_dir, 'model.onnx'))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=data_file, size_threshold=1024)
    onnx.save_model(model, os.path.join(out_dir, 'model.onnx'))
    with open(os.path.join(src_dir, 'manifest.json')) as f:
        manifest = json.load(f)
    manifest.update(name=name, reference=f'../{src_name}/reference.safetensors', externalData=data_file)
    manifest.pop('parameters', None)
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    report(out_dir, f'external data in {data_file}, reference shared with {src_name}')


def report(out_dir, what):
    files = sorted(os.listdir(out_dir))
    sizes = ', '.join(f'{f} {os.path.getsize(os.path.join(out_dir, f)) / 1e3:.0f} kB' for f in files)
    print(f'wrote {os.path.relpath(out_dir)}: {sizes}; {what}')


def main():
    torch.set_num_threads(1)  # fixed reduction order: reruns give the same bytes
    unet, unet_in = fm.UNetLoss(fm.build_unet()), fm.unet_inputs()
    text, text_in = fm.TextLoss(fm.build_text_encoder()), fm.text_inputs()
    write_fixture('unet', unet, unet_in, UNET_WRT_INPUTS, UNET_WRT_PARAMS, 17, with_parameter_map=True)
    write_fixture('unet_opset14', unet, unet_in, UNET_WRT_INPUTS, UNET14_WRT_PARAMS, 14)
    write_external_variant('unet', 'unet_external')
    write_fixture('text_encoder', text, text_in, TEXT_WRT_INPUTS, TEXT_WRT_PARAMS, 17)
    total = 0
    for root, _, files in os.walk(FIXTURES):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f'fixtures total {total / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
