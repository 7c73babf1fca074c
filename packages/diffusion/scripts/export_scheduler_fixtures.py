"""Reference values for the scheduler and RNG tests (fixtures/schedulers.json).

Evaluates the schedules the way diffusers does, with torch float32 tensors and numpy (np.round ties to
even, float np.arange / np.linspace / np.interp), and re-implements the RNG of src/rng.ts from its
header with Python integers and libm, as a second implementation. Run with Debian's python3-torch:

    /usr/bin/python3 packages/diffusion/scripts/export_scheduler_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch

T = 1000
SCHEDULES = {
    "linear": dict(beta_start=0.0001, beta_end=0.02),
    "scaled_linear": dict(beta_start=0.00085, beta_end=0.012),
    "squaredcos_cap_v2": dict(beta_start=0.0001, beta_end=0.02),
}


def betas_of(schedule, beta_start, beta_end):
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    if schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2
    abar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=torch.float32)


def f32_list(tensor):
    """Shortest decimal that rounds back to each float32 (JS: Math.fround(x) restores it)."""
    return [float(repr(np.float32(x))) for x in tensor.tolist()]


def integer_timesteps(spacing, n, offset):
    if spacing == "leading":
        return ((np.arange(0, n) * (T // n)).round()[::-1] + offset).astype(np.int64)
    if spacing == "trailing":
        return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1
    return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)


def euler(alphas_cumprod, spacing, n, offset):
    if spacing == "linspace":
        ts = np.linspace(0, T - 1, n, dtype=np.float32)[::-1].copy()
    elif spacing == "leading":
        ts = (np.arange(0, n) * (T // n)).round()[::-1].copy().astype(np.float32) + offset
    else:
        ts = np.arange(T, 0, -T / n).round().astype(np.float32) - 1
    train = np.array(((1 - alphas_cumprod) / alphas_cumprod) ** 0.5)
    sigmas = np.concatenate([np.interp(ts, np.arange(0, len(train)), train), [0]]).astype(np.float32)
    max_sigma = torch.from_numpy(sigmas).max()
    init = max_sigma if spacing != "leading" else (max_sigma**2 + 1) ** 0.5
    return dict(timesteps=f32_list(ts), sigmas=f32_list(sigmas), init_noise_sigma=float(init))


M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    def __init__(self, seed):
        self.seed = seed
        a = mix64((seed + 0x9E3779B97F4A7C15) & M64)
        b = mix64((seed + 2 * 0x9E3779B97F4A7C15) & M64)
        self.s = [a & 0xFFFFFFFF, a >> 32, b & 0xFFFFFFFF, b >> 32]
        self.spare = None

    def next32(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF
        result = (rotl((s[1] * 5) & 0xFFFFFFFF, 7) * 9) & 0xFFFFFFFF
        t = (s[1] << 9) & 0xFFFFFFFF
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11)
        return result

    def uniform(self):
        return ((self.next32() >> 5) * 2**26 + (self.next32() >> 6)) / 2**53

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        u1 = 1 - self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2 * math.log(u1))
        self.spare = r * math.sin(2 * math.pi * u2)
        return r * math.cos(2 * math.pi * u2)

    def fork(self, label):
        h = 0xCBF29CE484222325
        for byte in label.encode("utf-8"):
            h = ((h ^ byte) * 0x100000001B3) & M64
        return Rng(mix64(self.seed ^ h))


def rng_case(seed, fork=None):
    r = Rng(seed)
    if fork is not None:
        r = r.fork(fork)
    words = Rng(r.seed)
    return dict(seed=str(seed), fork=fork, uint32=[words.next32() for _ in range(6)], normals=[r.normal() for _ in range(7)])


def main():
    out = dict(num_train_timesteps=T, schedules={}, timesteps={}, euler={})
    for name, cfg in SCHEDULES.items():
        betas = betas_of(name, **cfg)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        out["schedules"][name] = dict(cfg, betas=f32_list(betas), alphas_cumprod=f32_list(alphas_cumprod))
        if name == "scaled_linear":
            for spacing, offset in [("linspace", 0), ("leading", 1), ("trailing", 0)]:
                for n in [7, 25, 50]:
                    out["euler"][f"{spacing}:{offset}:{n}"] = euler(alphas_cumprod, spacing, n, offset)
    for spacing, offset in [("leading", 0), ("leading", 1), ("trailing", 0), ("linspace", 0)]:
        for n in [1, 3, 7, 10, 16, 20, 25, 50, 64, 333, 1000]:
            out["timesteps"][f"{spacing}:{offset}:{n}"] = integer_timesteps(spacing, n, offset).tolist()
    out["rng"] = [rng_case(0), rng_case(42), rng_case(M64), rng_case(42, "sample:1")]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "schedulers.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
