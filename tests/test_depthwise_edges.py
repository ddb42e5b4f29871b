"""Channels-first depthwise and grouped convolutions at the edges of the row kernels' blocking.

Widths sit at, just below and just above multiples of every ISA's vector length (f32: 4, 8, 16
lanes; f64: 2, 4, 8) and of the 4-vector register block; padding wider than a vector, every padding
mode, asymmetric pads, dilation along W only, multipliers, grouped channels, one-row images and
batch 1 are covered, at strides 1 and 2. Each result must match the reference algorithm, be
bitwise identical for 1 and 2 threads, and leave the input unchanged."""
import os

import numpy as np
import pytest

import cconv
from helpers import threads_equal, use_isa

TOL = {np.float32: 2e-5, np.float64: 1e-12}

WIDTHS = [5, 11, 12, 13, 23, 24, 25, 33, 47, 48, 49, 50, 62, 97, 100]

CASES = [
    # C, m, cig, H, kernel, stride, dilation, padding, padding_mode
    (3, 1, 1, 6, (3, 3), 1, 1, 1, "zeros"),
    (2, 1, 1, 5, (3, 3), 2, 1, 1, "zeros"),
    (2, 2, 1, 4, (5, 5), 1, 1, 2, "reflect"),
    (2, 1, 1, 7, (7, 7), 2, 1, 3, "replicate"),
    (2, 1, 1, 5, (3, 3), 1, (1, 2), (1, 2), "circular"),
    (2, 1, 1, 1, (1, 3), 1, 1, (0, 1), "zeros"),           # one-row image
    (2, 1, 1, 4, (3, 4), 1, 1, ((1, 1), (3, 0)), "zeros"),  # asymmetric, even kernel
    (2, 1, 1, 4, (3, 3), 1, 1, ((1, 2), (9, 10)), "zeros"),  # pads wider than a vector
    (2, 3, 1, 5, (2, 3), 2, (2, 1), 1, "zeros"),
    (4, 1, 2, 5, (3, 3), 1, 1, 1, "zeros"),               # grouped: 2 input channels per group
    (6, 1, 3, 4, (3, 3), 2, 1, 1, "reflect"),
    # 3x3 stride 1 (the 4-row stencil kernel): 9 output rows = 2 blocks of 4 + 1, 6 rows, m = 2
    (2, 1, 1, 9, (3, 3), 1, 1, 1, "zeros"),
    (2, 1, 1, 8, (3, 3), 1, 1, (0, 1), "reflect"),
    (1, 2, 1, 11, (3, 3), 1, 1, 1, "replicate"),
    # K x K stride 1 zero padding (the direct kernel, masked loads at the borders): no padding,
    # asymmetric, images shorter than the kernel, rows past a 4-row block, m = 2
    (2, 1, 1, 6, (5, 5), 1, 1, 0, "zeros"),
    (2, 2, 1, 3, (5, 5), 1, 1, 2, "zeros"),
    (2, 1, 1, 10, (7, 7), 1, 1, ((3, 0), (0, 5)), "zeros"),
    (1, 1, 1, 2, (3, 3), 1, 1, ((2, 1), (2, 0)), "zeros"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("W", WIDTHS)
@pytest.mark.parametrize("case", CASES)
def test_row_kernel_edges_match_reference(isa, dtype, W, case):
    C, m, cig, H, k, s, d, pad, mode = case
    dd = (d, d) if isinstance(d, int) else d
    kwid = (k[1] - 1) * dd[1] + 1
    lo_hi = pad[1] if isinstance(pad, tuple) and isinstance(pad[0], tuple) else None
    pw = lo_hi if lo_hi else ((pad[1], pad[1]) if isinstance(pad, tuple) else (pad, pad))
    if W + pw[0] + pw[1] < kwid or (mode == "reflect" and max(pw) >= W) or (mode == "circular" and max(pw) > W):
        pytest.skip("padding not valid for this width")
    ph = pad[0] if isinstance(pad, tuple) else pad
    ph = ph if isinstance(ph, tuple) else (ph, ph)
    if (mode == "reflect" and max(ph) >= H) or (mode == "circular" and max(ph) > H):
        pytest.skip("padding not valid for this height")
    G = C // cig
    rng = np.random.default_rng(W * 31 + C)
    x = rng.standard_normal((1 + (W % 2), C, H, W)).astype(dtype)
    w = rng.standard_normal((G * m, cig) + k).astype(dtype)
    b = rng.standard_normal(w.shape[0]).astype(dtype)
    algo = "depthwise" if cig == 1 else "grouped"
    kw = dict(stride=s, padding=pad, dilation=d, groups=G, padding_mode=mode)
    x0 = x.copy()
    with use_isa(isa):
        got = cconv.conv2d(x, w, b, algorithm=algo, **kw)
        ref = cconv.conv2d(x, w, b, algorithm="reference", **kw)
        assert threads_equal(lambda: cconv.conv2d(x, w, b, algorithm=algo, **kw))
    assert np.array_equal(x, x0)  # the input is read in place, never written
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err < TOL[dtype]


@pytest.mark.parametrize("stride", [(1, 2), (1, 1)])  # band copies; the direct kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_output_matches_reference(dtype, stride):
    """Input + output larger than half the L3 (and 8 MiB): bands are streamed out with
    non-temporal stores (run_dw_cf_), a path the small shapes above never take."""
    l3 = os.sysconf("SC_LEVEL3_CACHE_SIZE") if "SC_LEVEL3_CACHE_SIZE" in os.sysconf_names else 0
    need = max(8 << 20, max(l3, 0) // 2) * 1.2
    item = np.dtype(dtype).itemsize
    C, W = 8, 257  # odd width: partial vectors at every row end
    H = int(need / (1.5 * C * W * item)) + 1  # the output is at least half the input
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    got = cconv.depthwise_conv2d(x, w, b, stride=stride, padding=1)
    ref = cconv.conv2d(x, w, b, stride=stride, padding=1, groups=C, algorithm="reference")
    assert np.abs(got - ref).max() / np.abs(ref).max() < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, dilation, padding", [
    ((1, 3, 3), 1, 1, (0, 1, 1)),
    ((1, 3, 3), (1, 1, 2), (2, 1, 1), 0),   # found by test_adjoint_identity (grad input)
    ((1, 5, 5), (2, 1, 1), 1, (1, 2, 2)),   # depth stride and depth padding
    ((3, 3, 3), 1, 1, 1),
])
def test_depthwise_3d_matches_reference(isa, dtype, kernel, stride, dilation, padding):
    """3-D depthwise whose kernel is one plane deep: each output depth slice reads its own input
    slice (the 2-D-only direct kernel must not be used for it)."""
    rng = np.random.default_rng(11)
    C = 3
    x = rng.standard_normal((2, C, 4, 7, 19)).astype(dtype)
    w = rng.standard_normal((C, 1) + kernel).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=C)
    with use_isa(isa):
        got = cconv.conv3d(x, w, b, **kw)
    ref = cconv.conv3d(x, w, b, algorithm="reference", **kw)
    assert np.abs(got - ref).max() / np.abs(ref).max() < TOL[dtype]
