"""gemm vs winograd on 3x3 stride-1 convolutions, planned, one process, interleaved, best of 7.

    PYTHONPATH=src python asv_bench/compare_algorithms.py [--threads 1] [--dtype float32] [--layout NCHW]

Prints each shape's time through both algorithms and which one "auto" picks (docs/winograd.md).
"""
import argparse
import time

import numpy as np

import cconv

SHAPES = [(8, 64, 64, 56, 56), (1, 64, 64, 56, 56), (1, 256, 256, 14, 14), (8, 128, 128, 28, 28),
          (1, 128, 128, 28, 28), (8, 32, 32, 112, 112), (2, 16, 16, 64, 64), (1, 512, 512, 7, 7),
          (1, 64, 64, 17, 23), (4, 256, 256, 14, 14), (2, 96, 96, 35, 35)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--layout", default="NCHW", choices=["NCHW", "NHWC"])
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    cconv.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    for n, c, co, h, w in SHAPES:
        x = rng.random((n, c, h, w)).astype(a.dtype)
        wt = rng.random((co, c, 3, 3)).astype(a.dtype)
        if a.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        plans = {alg: cconv.plan_conv2d(x.shape, wt, padding=1, algorithm=alg, layout=a.layout)
                 for alg in ("auto", "gemm", "winograd")}
        best = {"gemm": np.inf, "winograd": np.inf}
        for _ in range(a.repeat):
            for alg in best:
                t = time.perf_counter()
                plans[alg](x)
                best[alg] = min(best[alg], time.perf_counter() - t)
        g, wn = best["gemm"] * 1e3, best["winograd"] * 1e3
        print(f"N{n} {c}->{co} {h}x{w}: auto={plans['auto'].algorithm:8s} gemm {g:8.2f} ms  "
              f"winograd {wn:8.2f} ms  gemm/winograd {g / wn:.2f}")


if __name__ == "__main__":
    main()
