"""`python -m cconv`: a short demo of every variant with its time, GFLOP/s and error.

Each variant runs on a moderate float32 shape (2 threads unless OMP_NUM_THREADS/--threads say
otherwise) and is checked against cconv's plain reference kernel run in float64.
"""
import argparse
import time

import numpy as np

import cconv


def _best_ms(fn, repeat):
    fn()  # warm-up (page faults, first-touch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def _ref(fn, *args, **kw):
    """The same call in float64 through the reference algorithm, on the first image only
    (the reference is plain loops: slow by design)."""
    args = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
    args[0] = args[0][:1]
    return fn(*args, algorithm="reference", **kw)


def _cases(rng):
    f32 = np.float32

    def r(*shape):
        return rng.standard_normal(shape).astype(f32)

    x = r(4, 64, 56, 56)
    w3 = r(64, 64, 3, 3)
    b = r(64)
    xdw = r(4, 96, 56, 56)
    wdw = r(96, 1, 3, 3)
    wpw = r(128, 96, 1, 1)
    cases = []

    def add(name, flops, run, ref):
        cases.append((name, flops, run, ref))

    n_out = 4 * 64 * 56 * 56
    add("conv2d 3x3, N4 64->64 56x56", 2 * n_out * 64 * 9,
        lambda: cconv.conv2d(x, w3, b, padding=1), lambda: _ref(cconv.conv2d, x, w3, b, padding=1))
    add("conv2d 3x3 NHWC", 2 * n_out * 64 * 9,
        lambda: cconv.conv2d(x.transpose(0, 2, 3, 1), w3, b, padding=1, layout="NHWC").transpose(0, 3, 1, 2),
        lambda: _ref(cconv.conv2d, x, w3, b, padding=1))
    w1 = r(128, 64, 1, 1)
    add("pointwise 1x1, 64->128", 2 * 4 * 128 * 56 * 56 * 64,
        lambda: cconv.conv2d(x, w1), lambda: _ref(cconv.conv2d, x, w1))
    ws2 = r(128, 64, 3, 3)
    add("strided 3x3 s2, 64->128", 2 * 4 * 128 * 28 * 28 * 64 * 9,
        lambda: cconv.conv2d(x, ws2, stride=2, padding=1),
        lambda: _ref(cconv.conv2d, x, ws2, stride=2, padding=1))
    add("dilated 3x3 d2", 2 * n_out * 64 * 9,
        lambda: cconv.conv2d(x, w3, padding=2, dilation=2),
        lambda: _ref(cconv.conv2d, x, w3, padding=2, dilation=2))
    wg = r(64, 8, 3, 3)
    add("grouped 3x3 g8", 2 * n_out * 8 * 9,
        lambda: cconv.conv2d(x, wg, padding=1, groups=8),
        lambda: _ref(cconv.conv2d, x, wg, padding=1, groups=8))
    wpg = r(64, 16, 1, 1)
    add("pointwise grouped g4", 2 * n_out * 16,
        lambda: cconv.conv2d(x, wpg, groups=4), lambda: _ref(cconv.conv2d, x, wpg, groups=4))
    add("reflect padding 3x3", 2 * n_out * 64 * 9,
        lambda: cconv.conv2d(x, w3, padding=1, padding_mode="reflect"),
        lambda: _ref(cconv.conv2d, x, w3, padding=1, padding_mode="reflect"))
    x1, w1d = r(4, 128, 2048), r(128, 128, 3)
    add("conv1d k3, 128->128 L2048", 2 * 4 * 128 * 2048 * 128 * 3,
        lambda: cconv.conv1d(x1, w1d, padding=1), lambda: _ref(cconv.conv1d, x1, w1d, padding=1))
    x3, w3d = r(1, 32, 8, 32, 32), r(32, 32, 3, 3, 3)
    add("conv3d 3x3x3, 32->32 8x32x32", 2 * 32 * 8 * 32 * 32 * 32 * 27,
        lambda: cconv.conv3d(x3, w3d, padding=1), lambda: _ref(cconv.conv3d, x3, w3d, padding=1))
    xt, wt = r(4, 128, 16, 16), r(128, 64, 4, 4)
    add("conv_transpose2d 4x4 s2, 128->64", 2 * 4 * 128 * 16 * 16 * 64 * 16,
        lambda: cconv.conv_transpose2d(xt, wt, stride=2, padding=1),
        lambda: _ref(cconv.conv_transpose2d, xt, wt, stride=2, padding=1))
    dw_flops = 2 * 4 * 96 * 56 * 56 * 9
    add("depthwise 3x3, C96", dw_flops,
        lambda: cconv.depthwise_conv2d(xdw, wdw, padding=1),
        lambda: _ref(cconv.conv2d, xdw, wdw, padding=1, groups=96))
    dw = cconv.depthwise_conv2d(xdw.astype(np.float64), wdw.astype(np.float64), padding=1)
    add("separable 3x3 + 1x1, 96->128", dw_flops + 2 * 4 * 128 * 56 * 56 * 96,
        lambda: cconv.separable_conv2d(xdw, wdw, wpw, padding=1),
        lambda: _ref(cconv.conv2d, dw, wpw))
    wv, wh = r(64, 64, 3, 1), r(64, 64, 1, 3)
    mid = _ref(cconv.conv2d, x, wv, padding=(1, 0))
    add("spatially separable 3x1 + 1x3", 2 * 2 * n_out * 64 * 3,
        lambda: cconv.spatially_separable_conv2d(x, wv, wh, padding=1),
        lambda: _ref(cconv.conv2d, mid, wh, padding=(0, 1)))
    ch, v, h = r(64, 64), r(64, 3), r(64, 3)
    full = (ch[:, :, None, None] * v[:, None, :, None] * h[:, None, None, :])
    add("flattened 1x1 + 3x1 + 1x3", 2 * n_out * (64 + 3 + 3),
        lambda: cconv.flattened_conv2d(x, ch, v, h, padding=1),
        lambda: _ref(cconv.conv2d, x, full, padding=1))
    add("channel_shuffle g4", 0, lambda: cconv.channel_shuffle(x, 4),
        lambda: x.reshape(4, 4, 16, 56, 56).transpose(0, 2, 1, 3, 4).reshape(x.shape))
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cconv", description=__doc__)
    ap.add_argument("--threads", type=int, default=0, help="threads (default: OpenMP's)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if args.threads:
        cconv.set_num_threads(args.threads)
    cconv.show_config()
    print()
    print(f"{'variant':36s} {'ms':>8s} {'GFLOP/s':>8s} {'max rel err':>12s}")
    for name, flops, run, ref in _cases(np.random.default_rng(0)):
        ms = _best_ms(run, args.repeat)
        y, yr = run(), ref()
        y, yr = y[:1], yr[:1]
        err = float(np.max(np.abs(y - yr)) / max(np.max(np.abs(yr)), 1e-30))
        gf = f"{flops / ms / 1e6:8.1f}" if flops else f"{'-':>8s}"
        print(f"{name:36s} {ms:8.2f} {gf} {err:12.2e}", flush=True)


if __name__ == "__main__":
    main()
