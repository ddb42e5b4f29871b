"""The channels-first direct path for grouped convolutions and dense ones with few outputs
(conv/direct_cf.c): which shapes the implementation list gives it, and its outputs on the edges of its grid (rows shorter and longer
than a tile, the grid's padding columns, several row blocks, output channels not a multiple of
its tile, padding modes, dilation, float64, empty batches, activations, fused shuffles, threads).
The hypothesis sweeps (test_forward.py, test_torch.py) run it too, wherever auto takes it."""

import numpy as np
import pytest

import reference as R
from helpers import use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

DIRECT = "direct_cf"

CASES = [
    # (N, C_in, C_out, groups, H, W, kernel, padding, dilation, padding_mode)
    (2, 32, 32, 4, 12, 12, 3, 1, 1, "zeros"),
    (1, 16, 40, 2, 7, 7, 3, 1, 1, "zeros"),            # 20 outputs a group: a partial tile of channels
    (2, 24, 24, 3, 5, 37, 3, 1, 1, "zeros"),           # rows longer than a tile
    (1, 18, 12, 2, 9, 3, 3, 2, 1, "zeros"),            # padding wider than the kernel's reach
    (2, 16, 16, 2, 11, 13, (3, 5), (2, 1), (1, 2), "zeros"),  # dilation, rectangular kernel
    (1, 20, 20, 2, 8, 9, 3, 1, 1, "reflect"),
    (2, 16, 32, 2, 6, 10, 3, 1, 1, "circular"),
    (1, 16, 16, 2, 9, 9, 5, 2, 1, "replicate"),
    (2, 32, 32, 2, 1, 50, (1, 3), (0, 1), 1, "zeros"),  # one row (conv1d's shape)
    (1, 16, 16, 2, 60, 61, 3, 0, 1, "zeros"),          # no padding; several row blocks
    (2, 40, 3, 1, 15, 17, 3, 1, 1, "zeros"),           # dense, 3 outputs (a segmentation head)
    (1, 300, 8, 1, 6, 7, (1, 5), (0, 2), 1, "reflect"),  # dense, a long reduction, few rows a job
]


def _run(case, dtype, with_bias, isa, **extra):
    n, ci, co, g, h, w, k, padding, dilation, mode = case
    rng = np.random.default_rng(h * 131 + w * 7 + co)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    k = k if isinstance(k, tuple) else (k, k)
    wt = rng.standard_normal((co, ci // g) + k).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if with_bias else None
    kw = dict(padding=padding, dilation=dilation, groups=g, padding_mode=mode, algorithm="gemm", **extra)
    with use_isa(isa):
        plan = cconv.plan_conv2d(x.shape, wt, b, **kw)
        assert plan._plan.implementation == DIRECT
        y = plan(x)
        np.testing.assert_array_equal(cconv.conv2d(x, wt, b, **kw), y)
    return x, wt, b, y, kw


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [False, True])
def test_direct_matches_reference(case, dtype, with_bias, isa):
    x, w, b, y, kw = _run(case, dtype, with_bias, isa)
    del kw["algorithm"]
    terms = w.shape[1] * w.shape[2] * w.shape[3]
    R.assert_conv_close(y, R.conv2d(x, w, b, **kw), R.magnitude(R.conv2d, x, w, b, **kw), dtype, terms)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]], ids=["square", "long_rows", "dilated"])
def test_direct_sums_as_the_gemm(case, isa):
    """Taps outer, channels inner from +0.0: the GEMM's bits (stride 2 phases aside, the GEMM runs
    the same sums on channels-last tiles)."""
    x, w, b, y, kw = _run(case, np.float32, True, isa)
    kw["layout"] = "NHWC"  # the GEMM path; the direct one is channels-first only
    with use_isa(isa):
        y_cl = cconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, **kw)
    np.testing.assert_array_equal(y, y_cl.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("shape", [(8, 256, 256, 32, 28), (4, 64, 128, 8, 56), (2, 192, 192, 8, 56), (8, 256, 256, 32, 7),
                                   (8, 128, 128, 32, 56), (8, 128, 64, 16, 28), (8, 512, 512, 32, 14),
                                   (1, 64, 3, 1, 128), (4, 72, 8, 1, 40)])
def test_auto_chooses_direct(shape, isa):
    n, ci, co, g, h = shape
    with use_isa(isa):
        plan = cconv.plan_conv2d((n, ci, h, h), np.ones((co, ci // g, 3, 3), np.float32), padding=1, groups=g)
        assert plan._plan.implementation == DIRECT


@pytest.mark.parametrize("shape", [(8, 1024, 1024, 32, 14, 3), (8, 64, 64, 32, 56, 3), (8, 128, 32, 16, 28, 3),
                                   (4, 64, 16, 1, 28, 3), (4, 64, 8, 1, 28, 1)],
                         ids=["32_a_group", "2_a_group", "2_out_a_group", "dense_16_out", "dense_1x1"])
def test_auto_leaves_the_rest(shape, isa):
    n, ci, co, g, h, k = shape
    with use_isa(isa):
        plan = cconv.plan_conv2d((n, ci, h, h), np.ones((co, ci // g, k, k), np.float32), padding=k // 2, groups=g)
        assert plan._plan.implementation != DIRECT


@pytest.mark.parametrize("shape", [(8, 384, 384, 24, 7), (1, 256, 8, 1, 56)], ids=["16_a_group_7x7", "dense_256_in"])
def test_auto_by_tile(shape, isa):
    """Only a tile of 8 output channels takes 16 channels a group on a 7 x 7 plane, or a dense
    layer of 256 input channels."""
    n, ci, co, g, h = shape
    with use_isa(isa):
        plan = cconv.plan_conv2d((n, ci, h, h), np.ones((co, ci // g, 3, 3), np.float32), padding=1, groups=g)
        narrow = cconv.get_isa() in ("avx2", "generic")
        assert (plan._plan.implementation == DIRECT) != narrow


def test_direct_batch_zero_and_unbatched():
    w = np.ones((16, 8, 3, 3), np.float32)
    plan = cconv.plan_conv2d((0, 16, 9, 9), w, padding=1, groups=2)
    assert plan._plan.implementation == DIRECT
    assert plan(np.zeros((0, 16, 9, 9), np.float32)).shape == (0, 16, 9, 9)
    x = np.arange(16 * 81, dtype=np.float32).reshape(16, 9, 9)
    np.testing.assert_allclose(cconv.conv2d(x, w, padding=1, groups=2), R.conv2d(x[None], w, padding=1, groups=2)[0],
                               rtol=1e-5)


def test_direct_activation_and_shuffle():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 10, 10)).astype(np.float32)
    w = rng.standard_normal((48, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    kw = dict(padding=1, groups=2)
    y = cconv.conv2d(x, w, b, **kw)
    np.testing.assert_array_equal(cconv.conv2d(x, w, b, activation="relu6", **kw), np.clip(y, 0, 6))
    np.testing.assert_array_equal(cconv.shuffled_grouped_conv2d(x, w, 2, b, padding=1, shuffle_groups=3),
                                  cconv.channel_shuffle(y, 3))


def test_direct_nonfinite_stays_in_its_outputs():
    """An Inf in one group's input reaches only that group's outputs (and NaN only where the
    filters meet it with a zero)."""
    x = np.ones((1, 32, 8, 8), np.float32)
    x[0, 3, 4, 4] = np.inf
    w = np.ones((32, 16, 3, 3), np.float32)
    y = cconv.conv2d(x, w, padding=1, groups=2)
    assert np.isinf(y[0, :16, 3:6, 3:6]).all()
    assert np.isfinite(y[0, :16]).sum() == 16 * (64 - 9)
    assert np.isfinite(y[0, 16:]).all()


def test_direct_thread_counts_agree():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 48, 30, 30)).astype(np.float32)
    w = rng.standard_normal((48, 16, 3, 3)).astype(np.float32)
    ys = []
    for nt in (1, 2, 3):
        with cconv.use_num_threads(nt):
            ys.append(cconv.conv2d(x, w, padding=1, groups=3))
    np.testing.assert_array_equal(ys[0], ys[1])
    np.testing.assert_array_equal(ys[0], ys[2])


@pytest.mark.parametrize("kw", [dict(stride=2), dict(groups=1), dict(layout="NHWC"), dict(k=1), dict(groups=32)],
                         ids=["stride", "dense", "channels_last", "1x1_padded", "depthwise"])
def test_direct_declines(kw):
    """Strides, dense layers of many outputs, channels-last, 1x1 and one input channel a group
    (depthwise's, which the composites ask for by name) stay with the other implementations."""
    kw = dict(kw)
    g, k = kw.pop("groups", 2), kw.pop("k", 3)
    shape = (1, 12, 12, 32) if kw.get("layout") == "NHWC" else (1, 32, 12, 12)
    w = np.ones((32, 32 // g, k, k), np.float32)
    assert cconv.plan_conv2d(shape, w, padding=1, groups=g, algorithm="gemm", **kw)._plan.implementation == "gemm"
