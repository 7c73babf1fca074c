#!/usr/bin/python3
"""PyTorch eager timing of a bundle's UNet, for src/bench/sample.bench.ts to compare against.

  /usr/bin/python3 packages/diffusion/scripts/bench_torch_unet.py --model unet/model.onnx --threads N --runs K
      [--batch 2] [--expect out.f32]

The tiny bundle's UNet is generated in TypeScript (src/tiny), so there is no nn.Module of it to import.
The eager equivalent is built from the ONNX file itself: its initializers become torch tensors (the same
weights, by name) and its nodes run in order as the corresponding torch calls (F.conv2d, torch.matmul,
F.instance_norm, torch.softmax, ...), one eager kernel per op as an nn.Module forward would dispatch
them. Inputs are the deterministic ones the Node benchmark feeds onnxruntime (sample[i] = sin(i),
encoder_hidden_states[i] = 0.5 cos(i), timestep 500); with --expect, onnxruntime's output for them
(raw float32) is compared, so the timed computation is the one onnxruntime runs.
Times the median of K forward calls under torch.no_grad() after warm-up; the last line of stdout is JSON.
"""
import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.dont_write_bytecode = True

DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def ints(t):
    return [int(v) for v in t.reshape(-1).tolist()]


def run_node(op, a, x):
    """One ONNX node as torch calls; `x` are the input tensors (None for omitted optional inputs)."""
    if op == 'Add': return [x[0] + x[1]]
    if op == 'Sub': return [x[0] - x[1]]
    if op == 'Mul': return [x[0] * x[1]]
    if op == 'Div':
        if not x[0].is_floating_point():
            return [torch.div(x[0], x[1], rounding_mode='trunc')]
        return [x[0] / x[1]]
    if op == 'Pow': return [torch.pow(x[0], x[1])]
    if op == 'Sqrt': return [torch.sqrt(x[0])]
    if op == 'Exp': return [torch.exp(x[0])]
    if op == 'Neg': return [-x[0]]
    if op == 'Erf': return [torch.erf(x[0])]
    if op == 'Sigmoid': return [torch.sigmoid(x[0])]
    if op == 'Tanh': return [torch.tanh(x[0])]
    if op == 'Sin': return [torch.sin(x[0])]
    if op == 'Cos': return [torch.cos(x[0])]
    if op == 'Identity': return [x[0]]
    if op == 'MatMul': return [torch.matmul(x[0], x[1])]
    if op == 'Gemm':
        A = x[0].t() if a.get('transA', 0) else x[0]
        B = x[1].t() if a.get('transB', 0) else x[1]
        y = a.get('alpha', 1.0) * (A @ B)
        if len(x) > 2 and x[2] is not None: y = y + a.get('beta', 1.0) * x[2]
        return [y]
    if op == 'Conv':
        pads = a.get('pads', [0, 0, 0, 0])
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise SystemExit(f'asymmetric Conv pads {pads} not handled')
        return [F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=a.get('strides', [1, 1]), padding=pads[:2],
                         dilation=a.get('dilations', [1, 1]), groups=a.get('group', 1))]
    if op == 'InstanceNormalization':
        return [F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get('epsilon', 1e-5))]
    if op == 'LayerNormalization':
        axis = a.get('axis', -1)
        shape = x[0].shape[axis:] if axis != -1 else x[0].shape[-1:]
        return [F.layer_norm(x[0], shape, x[1], x[2] if len(x) > 2 else None, eps=a.get('epsilon', 1e-5))]
    if op == 'Softmax': return [torch.softmax(x[0], dim=a.get('axis', -1))]
    if op == 'Reshape':
        shape = ints(x[1])
        shape = [x[0].shape[i] if s == 0 and not a.get('allowzero', 0) else s for i, s in enumerate(shape)]
        return [x[0].reshape(shape)]
    if op == 'Transpose': return [x[0].permute(a['perm'])]
    if op == 'Unsqueeze':
        y = x[0]
        axes = sorted(ints(x[1]) if len(x) > 1 else a['axes'])
        for ax in axes: y = y.unsqueeze(ax if ax >= 0 else ax + y.dim() + 1)
        return [y]
    if op == 'Squeeze':
        y = x[0]
        axes = ints(x[1]) if len(x) > 1 and x[1] is not None else a.get('axes')
        if axes is None: return [y.squeeze()]
        for ax in sorted([ax % y.dim() for ax in axes], reverse=True): y = y.squeeze(ax)
        return [y]
    if op == 'Concat': return [torch.cat(x, dim=a['axis'])]
    if op == 'Shape': return [torch.tensor(list(x[0].shape), dtype=torch.int64)]
    if op == 'Gather':
        axis = a.get('axis', 0)
        idx = x[1]
        return [torch.index_select(x[0], axis, idx.reshape(-1) % x[0].shape[axis]).reshape(
            list(x[0].shape[:axis]) + list(idx.shape) + list(x[0].shape[axis + 1:]))]
    if op == 'Slice':
        starts, ends = ints(x[1]), ints(x[2])
        axes = ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x[0].dim()
        for s, e, ax, st in zip(starts, ends, axes, steps):
            if st != 1: raise SystemExit('Slice with step != 1 not handled')
            n = x[0].shape[ax]
            s = max(0, min(n, s + n if s < 0 else s)); e = max(0, min(n, e + n if e < 0 else e))
            sl[ax] = slice(s, e)
        return [x[0][tuple(sl)]]
    if op == 'Cast': return [x[0].to(DTYPES[a['to']])]
    if op == 'Constant': return [torch.from_numpy(numpy_helper.to_array(a['value']).copy())]
    if op == 'ConstantOfShape':
        v = numpy_helper.to_array(a['value']) if 'value' in a else np.zeros(1, np.float32)
        return [torch.full(ints(x[0]), float(v.reshape(-1)[0]), dtype=torch.from_numpy(v).dtype)]
    if op == 'Expand': return [x[0].expand(torch.broadcast_shapes(x[0].shape, tuple(ints(x[1]))))]
    if op == 'Where': return [torch.where(x[0], x[1], x[2])]
    if op == 'Equal': return [x[0] == x[1]]
    if op == 'ReduceMean':
        axes = a.get('axes') or (ints(x[1]) if len(x) > 1 else None)
        return [x[0].mean(dim=axes, keepdim=bool(a.get('keepdims', 1)))]
    if op == 'Resize':
        mode = a.get('mode', b'nearest')
        mode = mode.decode() if isinstance(mode, bytes) else mode
        sizes = ints(x[3]) if len(x) > 3 and x[3] is not None and x[3].numel() else None
        if sizes is None:
            scales = x[2].tolist()
            sizes = [int(math.floor(d * s)) for d, s in zip(x[0].shape, scales)]
        if mode != 'nearest': raise SystemExit(f'Resize mode {mode} not handled')
        return [F.interpolate(x[0], size=sizes[2:], mode='nearest')]
    if op == 'Pad':
        pads = ints(x[1])
        n = len(pads) // 2
        mode = a.get('mode', b'constant')
        mode = mode.decode() if isinstance(mode, bytes) else mode
        torch_pads = []
        for d in reversed(range(n)): torch_pads += [pads[d], pads[d + n]]
        value = float(x[2].item()) if len(x) > 2 and x[2] is not None and x[2].numel() else 0.0
        return [F.pad(x[0], torch_pads, mode=mode, value=value) if mode == 'constant' else F.pad(x[0], torch_pads[:2 * (x[0].dim() - 2)], mode=mode)]
    raise SystemExit(f'op {op} is not handled by bench_torch_unet.py')


class EagerGraph:
    def __init__(self, path):
        model = onnx.load(path)  # external data is read from beside the file
        g = model.graph
        self.weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.nodes = [(n.op_type, attrs(n), list(n.input), list(n.output)) for n in g.node]
        self.inputs = [i.name for i in g.input if i.name not in self.weights]
        self.input_types = {i.name: i.type.tensor_type.elem_type for i in g.input}
        self.outputs = [o.name for o in g.output]

    def __call__(self, feeds):
        env = dict(self.weights)
        env.update(feeds)
        for op, a, ins, outs in self.nodes:
            ys = run_node(op, a, [env[i] if i else None for i in ins])
            for name, y in zip(outs, ys): env[name] = y
        return [env[o] for o in self.outputs]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', required=True)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--runs', type=int, default=20)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--expect')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net = EagerGraph(args.model)
    g = onnx.load(args.model, load_external_data=False).graph
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in g.input}
    sample_dims = [args.batch] + dims['sample'][1:]
    hidden_dims = [args.batch] + dims['encoder_hidden_states'][1:]
    n = int(np.prod(sample_dims))
    m = int(np.prod(hidden_dims))
    feeds = {
        'sample': torch.from_numpy(np.sin(np.arange(n, dtype=np.float64)).astype(np.float32).reshape(sample_dims)),
        'encoder_hidden_states': torch.from_numpy((np.cos(np.arange(m, dtype=np.float64)) * 0.5).astype(np.float32).reshape(hidden_dims)),
        'timestep': torch.full([args.batch], 500, dtype=DTYPES[net.input_types['timestep']]),
    }
    with torch.no_grad():
        out = net(feeds)[0]
        rel = None
        if args.expect:
            ref = torch.from_numpy(np.fromfile(args.expect, dtype=np.float32).reshape(out.shape))
            rel = float((out - ref).abs().max() / ref.abs().max())
        for _ in range(3): net(feeds)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            net(feeds)
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({'median_ms': statistics.median(times), 'min_ms': min(times), 'max_rel_err': rel, 'threads': args.threads, 'nodes': len(net.nodes)}))


if __name__ == '__main__':
    main()
