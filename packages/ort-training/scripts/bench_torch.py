#!/usr/bin/python3
"""PyTorch eager timings of the UNet fixture, for src/bench/train-step.bench.ts to compare against.

  /usr/bin/python3 packages/ort-training/scripts/bench_torch.py --threads N --iters K [--batch B --size S]

Rebuilds the fixture's module (scripts/fixture_models.py) and loads its weights from fixtures/unet/model.onnx
through the manifest's parameter map, then checks the loss on the fixture's inputs against the recorded one,
so the timed model is the one onnxruntime runs. Times, as medians over K runs after warm-up:
  forward_ms       forward only (torch.no_grad(), as an inference forward)
  embedding_ms     forward + backward for encoder_hidden_states only (every parameter frozen)
  all_weights_ms   forward + backward for every parameter
--batch/--size time larger random inputs of the same model (size: a multiple of 2, the UNet downsamples once).
The last line of stdout is one JSON object.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_models as fm  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'unet')


def load_fixture_unet():
    with open(os.path.join(FIXTURE, 'manifest.json')) as f:
        manifest = json.load(f)
    inits = {t.name: t for t in onnx.load(os.path.join(FIXTURE, manifest['model'])).graph.initializer}
    module = fm.UNetLoss(fm.TinyUNet()).eval()
    params = dict(module.named_parameters())
    unmapped = sorted(set(params) - set(manifest['parameters']))
    if unmapped:
        raise SystemExit(f'the fixture manifest maps no ONNX tensor to {unmapped}; rerun export_fixtures.py')
    with torch.no_grad():
        for name, p in params.items():
            entry = manifest['parameters'][name]
            a = numpy_helper.to_array(inits[entry['tensor']])
            a = a.T if entry['layout'] == 'transpose' else a
            p.copy_(torch.from_numpy(np.array(a, dtype=np.float32).reshape(p.shape)))
    reference = read_safetensors(os.path.join(FIXTURE, manifest['reference']))
    inputs = {k: torch.from_numpy(reference[v].copy()) for k, v in manifest['inputs'].items()}
    with torch.no_grad():
        loss = module(**inputs).item()
    recorded = float(reference[manifest['lossReference']])
    if abs(loss - recorded) > 1e-5 * abs(recorded):
        raise SystemExit(f'the rebuilt module gives loss {loss}, the fixture recorded {recorded}: model and fixture differ')
    return module, inputs


def timed(fn, iters, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--batch', type=int, default=None, help='batch size of random inputs (default: the fixture inputs)')
    ap.add_argument('--size', type=int, default=None, help='latent height/width of random inputs (default: the fixture inputs)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    module, inputs = load_fixture_unet()
    if args.batch or args.size:
        size = args.size or fm.UNET_SIZE
        if size % 2:
            raise SystemExit('--size must be even (the UNet downsamples once)')
        inputs = fm.unet_inputs(batch=args.batch or fm.UNET_BATCH, size=size)
    params = list(module.parameters())

    def forward():
        with torch.no_grad():
            module(**inputs)

    def embedding_step():
        for p in params:
            p.requires_grad_(False)
        ctx = inputs['encoder_hidden_states'].detach().requires_grad_(True)
        module(**{**inputs, 'encoder_hidden_states': ctx}).backward()

    def all_weights_step():
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        module(**inputs).backward()

    result = {
        'forward_ms': timed(forward, args.iters),
        'embedding_ms': timed(embedding_step, args.iters),
        'all_weights_ms': timed(all_weights_step, args.iters),
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'torch': torch.__version__,
        'threads': args.threads,
        'iters': args.iters,
        'inputs': {k: list(v.shape) for k, v in inputs.items()},
        'parameters': sum(p.numel() for p in params),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
