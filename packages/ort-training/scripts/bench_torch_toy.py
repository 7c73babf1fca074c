#!/usr/bin/python3
"""PyTorch eager timings of the toy backbone's UNet (toy_unet.py), for src/bench/train-step.bench.ts.

  /usr/bin/python3 packages/ort-training/scripts/bench_torch_toy.py --config CONFIG.json --batch B --threads N --iters K

CONFIG.json is the SdBundleConfig the ONNX graph was generated from (bench/toy-backbone.ts writes it). Times of K
interleaved forward/step pairs after one warm-up of each (wall and process CPU time, lists), with loss = mean((unet(sample, t, context) - target)^2):
  forward_ms      forward only (torch.no_grad(), as an inference forward)
  step_ms         a training step of every parameter: zero the grads, forward, backward, torch.optim.AdamW.step()
The last line of stdout is one JSON object.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toy_unet import ToyUNet, toy_inputs  # noqa: E402


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--config', required=True)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--iters', type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.config) as f:
        config = json.load(f)
    unet = ToyUNet(config)
    x = toy_inputs(config, args.batch)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)

    def loss():
        return ((unet(x['sample'], x['timestep'], x['context']) - x['target']) ** 2).mean()

    def forward():
        with torch.no_grad():
            loss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    forward()
    step()
    runs = [(timed(forward), timed(step)) for _ in range(args.iters)]  # interleaved: each pair sees the same load
    result = {
        'forward_ms': [f[0] for f, _ in runs],
        'step_ms': [s[0] for _, s in runs],
        'forward_cpu_ms': [f[1] for f, _ in runs],
        'step_cpu_ms': [s[1] for _, s in runs],
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'torch': torch.__version__,
        'threads': args.threads,
        'batch': args.batch,
        'parameters': sum(p.numel() for p in unet.parameters()),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
