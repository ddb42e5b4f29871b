"""Property tests: every public forward function against the float64 oracle.

Each hypothesis example draws dims, kernel sizes, stride, padding (int,
per-dim, per-side pairs, "valid", "same"), dilation, groups, padding_mode,
dtypes (float32/float64, sometimes mixed), layout (None, channels-first,
channels-last), memory arrangement of x and the weights (C, Fortran,
non-contiguous, negative strides, read-only), bias or none, ``out=`` or not,
and runs under every ISA path the machine supports (``isa`` fixture).
Tolerances: see ``reference.assert_conv_close``.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as R
from helpers import (
    arrange,
    check_call,
    conv2d_variant_cases,
    conv_cases,
    conv_transpose_cases,
    rand,
    use_isa,
)

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")


def _api_kwargs(case, **kw):
    """Keyword arguments for the cconv call; defaults are sometimes left out."""
    if case.layout is not None:
        kw["layout"] = case.layout
    if case.algorithm != "auto":
        kw["algorithm"] = case.algorithm
    return kw


def _algorithm_applies(case, transposed=False):
    """The forced algorithm can run this case (else a ValueError is the documented answer)."""
    if case.algorithm != "depthwise":
        return True
    # the C core's depthwise kernel: forward, one input channel per group, any multiplier/layout
    return not transposed and case.c_in == case.groups


# ---------------------------------------------------------------- conv
@given(case=conv_cases())
def test_conv_nd(case, isa):
    nd = case.nd
    rng = np.random.default_rng(case.seed)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), case.w_dtype)
    b = rand(rng, (case.c_out,), case.w_dtype) if case.bias else None
    xa, wa = arrange(x, case.x_arr), arrange(w, case.w_arr)
    ref_fn = getattr(R, f"conv{nd}d")
    kw = dict(
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.padding_mode,
    )
    expected = ref_fn(x, w, b, layout=case.layout, **kw)
    scale = R.magnitude(ref_fn, x, w, b, layout=case.layout, **kw)
    terms = case.c_in // case.groups * math.prod(case.kernel)
    originals = [(xa, x.copy()), (wa, w.copy())] + ([(b, b.copy())] if b is not None else [])
    if not _algorithm_applies(case):
        if case.n > 0:  # N = 0: test_plans.test_unsupported_algorithm_is_rejected_whatever_the_batch
            with pytest.raises(ValueError, match="algorithm|unsupported"):
                getattr(cconv, f"conv{nd}d")(xa, wa, b, **_api_kwargs(case, **kw))
        return
    check_call(
        getattr(cconv, f"conv{nd}d"), (xa, wa, b), _api_kwargs(case, **kw),
        expected, scale, terms, case, isa, originals,
    )


@given(case=conv_transpose_cases())
def test_conv_transpose_nd(case, isa):
    nd = case.nd
    rng = np.random.default_rng(case.seed)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_in, case.c_out // case.groups, *case.kernel), case.w_dtype)
    b = rand(rng, (case.c_out,), case.w_dtype) if case.bias else None
    xa, wa = arrange(x, case.x_arr), arrange(w, case.w_arr)
    ref_fn = getattr(R, f"conv_transpose{nd}d")
    kw = dict(
        stride=case.stride,
        padding=case.padding,
        output_padding=case.extra["output_padding"],
        groups=case.groups,
        dilation=case.dilation,
    )
    expected = ref_fn(x, w, b, layout=case.layout, **kw)
    scale = R.magnitude(ref_fn, x, w, b, layout=case.layout, **kw)
    terms = case.c_in // case.groups * math.prod(case.kernel)
    originals = [(xa, x.copy()), (wa, w.copy())] + ([(b, b.copy())] if b is not None else [])
    check_call(
        getattr(cconv, f"conv_transpose{nd}d"), (xa, wa, b), _api_kwargs(case, **kw),
        expected, scale, terms, case, isa, originals,
    )


# ------------------------------------------------------------ variants
def _variant_x(case, rng):
    x = rand(rng, case.x_shape(), case.x_dtype)
    return x, arrange(x, case.x_arr)


@given(case=conv2d_variant_cases())
def test_depthwise_conv2d(case, isa):
    rng = np.random.default_rng(case.seed)
    c, m = case.c_in, case.extra["multiplier"]
    x, xa = _variant_x(case, rng)
    w = rand(rng, (c * m, 1, *case.kernel), case.w_dtype)
    b = rand(rng, (c * m,), case.w_dtype) if case.bias else None
    wa = arrange(w, case.w_arr)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    expected = R.depthwise_conv2d(x, w, b, layout=case.layout, **kw)
    scale = R.magnitude(R.depthwise_conv2d, x, w, b, layout=case.layout, **kw)
    originals = [(xa, x.copy()), (wa, w.copy())] + ([(b, b.copy())] if b is not None else [])
    check_call(
        cconv.depthwise_conv2d, (xa, wa, b), _api_kwargs(case, **kw),
        expected, scale, math.prod(case.kernel), case, isa, originals,
    )


@given(case=conv2d_variant_cases())
def test_separable_conv2d(case, isa):
    rng = np.random.default_rng(case.seed)
    c, m = case.c_in, case.extra["multiplier"]
    x, xa = _variant_x(case, rng)
    dw = rand(rng, (c * m, 1, *case.kernel), case.w_dtype)
    pw = rand(rng, (case.c_out, c * m, 1, 1), case.w_dtype)
    b = rand(rng, (case.c_out,), case.w_dtype) if case.bias else None
    dwa, pwa = arrange(dw, case.w_arr), arrange(pw, case.w_arr)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    expected = R.separable_conv2d(x, dw, pw, b, layout=case.layout, **kw)
    scale = R.magnitude(R.separable_conv2d, x, dw, pw, b, layout=case.layout, **kw)
    originals = [(xa, x.copy()), (dwa, dw.copy()), (pwa, pw.copy())]
    originals += [(b, b.copy())] if b is not None else []
    check_call(
        cconv.separable_conv2d, (xa, dwa, pwa, b), _api_kwargs(case, **kw),
        expected, scale, math.prod(case.kernel) * c * m, case, isa, originals,
    )


@given(case=conv2d_variant_cases(max_groups=3))
def test_spatially_separable_conv2d(case, isa):
    rng = np.random.default_rng(case.seed)
    g, c_mid = case.groups, case.extra["c_mid"]
    kh, kw_ = case.kernel
    x, xa = _variant_x(case, rng)
    vw = rand(rng, (c_mid, case.c_in // g, kh, 1), case.w_dtype)
    hw = rand(rng, (case.c_out, c_mid // g, 1, kw_), case.w_dtype)
    b = rand(rng, (case.c_out,), case.w_dtype) if case.bias else None
    vwa, hwa = arrange(vw, case.w_arr), arrange(hw, case.w_arr)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=g)
    expected = R.spatially_separable_conv2d(x, vw, hw, b, layout=case.layout, **kw)
    scale = R.magnitude(R.spatially_separable_conv2d, x, vw, hw, b, layout=case.layout, **kw)
    originals = [(xa, x.copy()), (vwa, vw.copy()), (hwa, hw.copy())]
    originals += [(b, b.copy())] if b is not None else []
    terms = case.c_in // g * kh * c_mid // g * kw_
    check_call(
        cconv.spatially_separable_conv2d, (xa, vwa, hwa, b), _api_kwargs(case, **kw),
        expected, scale, terms, case, isa, originals,
    )


@given(case=conv2d_variant_cases())
def test_flattened_conv2d(case, isa):
    rng = np.random.default_rng(case.seed)
    kh, kw_ = case.kernel
    x, xa = _variant_x(case, rng)
    ch = rand(rng, (case.c_out, case.c_in), case.w_dtype)
    v = rand(rng, (case.c_out, kh), case.w_dtype)
    h = rand(rng, (case.c_out, kw_), case.w_dtype)
    b = rand(rng, (case.c_out,), case.w_dtype) if case.bias else None
    cha, va, ha = (arrange(a, case.w_arr) for a in (ch, v, h))
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    expected = R.flattened_conv2d(x, ch, v, h, b, layout=case.layout, **kw)
    scale = R.magnitude(R.flattened_conv2d, x, ch, v, h, b, layout=case.layout, **kw)
    originals = [(xa, x.copy()), (cha, ch.copy()), (va, v.copy()), (ha, h.copy())]
    originals += [(b, b.copy())] if b is not None else []
    check_call(
        cconv.flattened_conv2d, (xa, cha, va, ha, b), _api_kwargs(case, **kw),
        expected, scale, case.c_in * kh * kw_ * 3, case, isa, originals,
    )


@given(
    nd=st.integers(1, 3),
    groups=st.integers(1, 4),
    cpg=st.integers(1, 4),
    n=st.sampled_from([0, 1, 2]),
    size=st.integers(1, 4),
    last=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    arr=st.sampled_from(["c", "f", "noncontig", "negstride", "readonly"]),
)
def test_channel_shuffle(nd, groups, cpg, n, size, last, dtype, arr, isa):
    c = groups * cpg
    shape = (n, c) + (size,) * nd
    x = np.random.default_rng(c * 7 + size).standard_normal(shape).astype(dtype)
    layout = R.CHANNELS_LAST[nd] if last else R.CHANNELS_FIRST[nd]
    xl = np.ascontiguousarray(R.from_channels_first(x, layout))
    xa = arrange(xl, arr)
    expected = R.from_channels_first(R.channel_shuffle(x, groups), layout)
    with use_isa(isa):
        y = cconv.channel_shuffle(xa, groups, layout=layout)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(xa, xl)
    if not last:
        np.testing.assert_array_equal(cconv.channel_shuffle(xa, groups), expected)


# ------------------------------- pointwise channels-first (the GEMM family's 1x1 forms)
def check_pointwise_cf(n, h, w, groups, cig, cog, sg, bias, act, dtype, isa):
    """Each image's outputs are those of that image alone, bit for bit, the oracle agrees, with
    groups, a fused shuffle, bias and activation, and x is left as it was."""
    co = groups * cog
    if co % sg:
        sg = 1
    rng = np.random.default_rng(n * 1000 + h * 100 + w * 10 + cig)
    x = rand(rng, (n, groups * cig, h, w), dtype)
    x0 = x.copy()
    wt = rand(rng, (co, cig, 1, 1), dtype)
    b = rand(rng, (co,), dtype) if bias else None
    kw = dict(shuffle_groups=sg, activation=act, algorithm="gemm")
    with use_isa(isa):
        y = cconv.shuffled_grouped_conv2d(x, wt, groups, b, **kw)
        for i in range(n):
            np.testing.assert_array_equal(y[i:i + 1], cconv.shuffled_grouped_conv2d(x[i:i + 1], wt, groups, b, **kw))
    np.testing.assert_array_equal(x, x0)
    ref = R.channel_shuffle(R.conv2d(x, wt, b, groups=groups), sg)
    if act is not None:
        lo, hi = (0.0, None) if act == "relu" else act
        ref = np.clip(ref, lo, hi)
    scale = R.channel_shuffle(R.magnitude(R.conv2d, x, wt, b, groups=groups), sg)
    R.assert_conv_close(y, ref, scale, dtype, terms=cig)


POINTWISE_OPTIONS = dict(
    sg=st.sampled_from([1, 2, 3]),
    bias=st.booleans(),
    act=st.sampled_from([None, "relu", (-0.5, 0.25)]),
    dtype=st.sampled_from([np.float32, np.float64]),
)


@given(n=st.integers(1, 9), h=st.integers(1, 8), w=st.integers(1, 9), groups=st.integers(1, 4),
       cig=st.integers(1, 20), cog=st.integers(1, 20), **POINTWISE_OPTIONS)
def test_pointwise_gemm_panels_across_images(n, h, w, groups, cig, cog, sg, bias, act, dtype, isa):
    """Pixel panels filled from consecutive images (small images fill whole panels)."""
    check_pointwise_cf(n, h, w, groups, cig, cog, sg, bias, act, dtype, isa)


@settings(max_examples=max(10, settings().max_examples // 4))
@given(n=st.integers(1, 3), h=st.integers(16, 40), w=st.integers(16, 40), groups=st.integers(1, 3),
       cig=st.integers(1, 40), cog=st.integers(1, 64), **POINTWISE_OPTIONS)
def test_pointwise_rows_in_place(n, h, w, groups, cig, cog, sg, bias, act, dtype, isa):
    """x's rows read in place (planes of 256+ pixels, small filters; most planes not a multiple
    of the vector blocks, so their last pixels go through the padded copy)."""
    check_pointwise_cf(n, h, w, groups, cig, cog, sg, bias, act, dtype, isa)


# ----------------------------------------------- bigger fixed shapes
# Small hypothesis shapes mostly hit edge tiles; these cross the SIMD widths
# and register tiles (below, at, above and twice typical MR/NR values).
BIG_CONV = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation, groups)
    (2, 2, 17, 33, (9, 11), (3, 3), 1, 1, 1, 1),
    (2, 1, 32, 64, (8, 8), (3, 3), 2, "same", 1, 1),
    (2, 2, 24, 40, (13, 7), (1, 1), 1, 0, 1, 1),  # pointwise
    (2, 1, 64, 48, (6, 9), (1, 1), 1, 0, 1, 4),  # pointwise grouped
    (2, 1, 48, 48, (10, 10), (3, 3), 1, 1, 1, 48),  # depthwise as grouped
    (2, 1, 36, 72, (12, 12), (5, 5), 1, "same", 2, 3),
    (1, 3, 19, 31, (40,), (7,), 2, 3, 1, 1),
    (3, 1, 8, 20, (5, 6, 7), (3, 3, 3), 1, 1, 1, 2),
    (2, 1, 3, 129, (16, 17), (3, 3), 1, "valid", 1, 1),
    (2, 1, 130, 5, (5, 35), (2, 2), (1, 2), ((0, 1), (1, 0)), 1, 1),
    # AVX-512 float32 blocks of 48 (8x3 tile) with a last block of 32 (mid tile) or 16 (narrow),
    # on rows of 14 (the plan may pick 14-pixel mid tiles) and of 16 pixels
    (2, 1, 20, 80, (14, 14), (3, 3), 1, 1, 1, 1),
    (2, 2, 16, 112, (8, 16), (3, 3), 1, 1, 1, 1),
    (2, 1, 24, 96, (7, 9), (3, 3), 2, 1, 1, 2),
    (2, 1, 12, 47, (16, 16), (1, 1), 1, 0, 1, 1),
    # reductions split in kc blocks (packing per block: rows of 16 and a partial 4 and rest)
    (2, 1, 200, 50, (6, 7), (3, 3), 1, 1, 1, 1),
    (2, 2, 301, 21, (5, 5), (3, 3), 2, 1, 1, 1),
    # channels-last AVX-512 6x4 (cl) tile: blocks of 64 float32 (32 float64) with a 16-wide
    # tail, grouped; pixel counts not a multiple of 6
    (2, 2, 40, 144, (7, 9), (1, 1), 1, 0, 1, 1),
    (2, 1, 64, 192, (5, 7), (1, 1), 1, 0, 1, 2),
    (2, 1, 24, 64, (9, 9), (3, 3), 2, 1, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("case", BIG_CONV, ids=lambda c: f"{c[0]}d-c{c[2]}x{c[3]}-k{c[5]}-g{c[9]}")
def test_conv_larger_shapes(case, layout, dtype, isa):
    nd, n, c_in, c_out, size, kernel, stride, padding, dilation, groups = case
    lay = R.CHANNELS_LAST[nd] if layout == "last" else R.CHANNELS_FIRST[nd]
    rng = np.random.default_rng(sum(size) + c_in)
    x = R.from_channels_first(rng.standard_normal((n, c_in, *size)), lay).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    ref_fn = getattr(R, f"conv{nd}d")
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = ref_fn(x, w, b, layout=lay, **kw)
    scale = R.magnitude(ref_fn, x, w, b, layout=lay, **kw)
    with use_isa(isa):
        y = getattr(cconv, f"conv{nd}d")(x, w, b, layout=lay, **kw)
    R.assert_conv_close(y, expected, scale, dtype, c_in // groups * math.prod(kernel))


BIG_CONVT = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, output_padding, dilation, groups)
    (2, 2, 33, 17, (7, 6), (4, 4), 2, 1, 0, 1, 1),
    (2, 1, 64, 32, (5, 5), (3, 3), 2, 1, 1, 1, 2),
    (2, 1, 40, 128, (5, 6), (4, 4), 2, 1, 0, 1, 1),  # channels-last: the cl tile
    (1, 2, 20, 40, (30,), (5,), 3, 2, 2, 1, 1),
    (3, 1, 16, 12, (3, 4, 3), (3, 2, 3), 2, 1, 1, 1, 4),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("case", BIG_CONVT, ids=lambda c: f"{c[0]}d-c{c[2]}x{c[3]}-k{c[5]}-s{c[6]}")
def test_conv_transpose_larger_shapes(case, layout, dtype, isa):
    nd, n, c_in, c_out, size, kernel, stride, padding, op, dilation, groups = case
    lay = R.CHANNELS_LAST[nd] if layout == "last" else R.CHANNELS_FIRST[nd]
    rng = np.random.default_rng(sum(size) + c_in)
    x = R.from_channels_first(rng.standard_normal((n, c_in, *size)), lay).astype(dtype)
    w = rng.standard_normal((c_in, c_out // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    ref_fn = getattr(R, f"conv_transpose{nd}d")
    kw = dict(stride=stride, padding=padding, output_padding=op, groups=groups, dilation=dilation)
    expected = ref_fn(x, w, b, layout=lay, **kw)
    scale = R.magnitude(ref_fn, x, w, b, layout=lay, **kw)
    with use_isa(isa):
        y = getattr(cconv, f"conv_transpose{nd}d")(x, w, b, layout=lay, **kw)
    R.assert_conv_close(y, expected, scale, dtype, c_in // groups * math.prod(kernel))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("c,m,k,s", [(32, 1, 3, 1), (19, 2, 3, 2), (64, 1, 5, 1), (8, 3, 7, 1)])
def test_depthwise_separable_larger_shapes(c, m, k, s, layout, dtype, isa):
    rng = np.random.default_rng(c * m + k)
    x = R.from_channels_first(rng.standard_normal((2, c, 15, 13)), layout).astype(dtype)
    dw = rng.standard_normal((c * m, 1, k, k)).astype(dtype)
    pw = rng.standard_normal((37, c * m, 1, 1)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    kw = dict(stride=s, padding="same", layout=layout)
    with use_isa(isa):
        y1 = cconv.depthwise_conv2d(x, dw, None, **kw)
        y2 = cconv.separable_conv2d(x, dw, pw, b, **kw)
    R.assert_conv_close(y1, R.depthwise_conv2d(x, dw, None, **kw),
                        R.magnitude(R.depthwise_conv2d, x, dw, None, **kw), dtype, k * k)
    R.assert_conv_close(y2, R.separable_conv2d(x, dw, pw, b, **kw),
                        R.magnitude(R.separable_conv2d, x, dw, pw, b, **kw), dtype, k * k * c * m)


# --------------------------------------------- plan cache / repeated calls
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_shapes_new_weights_are_used(dtype, isa):
    """A plan cache must not reuse packed weights of an earlier call."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 9, 9)).astype(dtype)
    w = rng.standard_normal((16, 8, 3, 3)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    with use_isa(isa):
        cconv.conv2d(x, w, b, padding=1)
        w2 = rng.standard_normal(w.shape).astype(dtype)
        y2 = cconv.conv2d(x, w2, b, padding=1)
        R.assert_conv_close(y2, R.conv2d(x, w2, b, padding=1),
                            R.magnitude(R.conv2d, x, w2, b, padding=1), dtype, 72)
        # same buffer, contents changed in place
        w[...] = rng.standard_normal(w.shape)
        b[...] = rng.standard_normal(b.shape)
        y3 = cconv.conv2d(x, w, b, padding=1)
        R.assert_conv_close(y3, R.conv2d(x, w, b, padding=1),
                            R.magnitude(R.conv2d, x, w, b, padding=1), dtype, 72)
        wt = rng.standard_normal((8, 4, 3, 3)).astype(dtype)
        cconv.conv_transpose2d(x, wt, stride=2)
        wt[...] = rng.standard_normal(wt.shape)
        y4 = cconv.conv_transpose2d(x, wt, stride=2)
        R.assert_conv_close(y4, R.conv_transpose2d(x, wt, stride=2),
                            R.magnitude(R.conv_transpose2d, x, wt, stride=2), dtype, 72)
        dw = rng.standard_normal((8, 1, 3, 3)).astype(dtype)
        cconv.depthwise_conv2d(x, dw)
        dw[...] = rng.standard_normal(dw.shape)
        y5 = cconv.depthwise_conv2d(x, dw)
        R.assert_conv_close(y5, R.depthwise_conv2d(x, dw), R.magnitude(R.depthwise_conv2d, x, dw),
                            dtype, 9)


def test_repeated_calls_are_bitwise_stable(isa):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    with use_isa(isa):
        first = cconv.conv2d(x, w, padding=1)
        for _ in range(3):
            np.testing.assert_array_equal(cconv.conv2d(x, w, padding=1), first)


# --------------------------------------------------- dtypes and values
@pytest.mark.parametrize(
    "xdt,wdt,expected",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.int32, np.float32, np.float64),
        (np.int64, np.int64, np.float64),
        (np.uint8, np.float64, np.float64),
        (np.bool_, np.bool_, np.float64),
        (np.int16, np.float32, np.float32),  # NumPy: int16 fits float32
        (np.float16, np.float16, np.float32),
        (np.float16, np.float32, np.float32),
    ],
)
def test_dtype_promotion(xdt, wdt, expected):
    """Documented rule: np.result_type of the inputs, integer/bool -> float64, float16 -> float32."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 3, 6, 5)) * 3).astype(xdt)
    w = (rng.standard_normal((4, 3, 2, 2)) * 3).astype(wdt)
    y = cconv.conv2d(x, w)
    assert y.dtype == expected
    R.assert_conv_close(y, R.conv2d(x, w), R.magnitude(R.conv2d, x, w), expected, 12)


def test_bias_dtype_promotes():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((3, 2, 2, 2), np.float32)
    y = cconv.conv2d(x, w, np.ones(3, np.float64))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.full((1, 3, 3, 3), 9.0))


def test_array_likes_are_accepted():
    x = [[[1.0, 2.0, 3.0, 4.0]]]
    w = [[[1.0, -1.0]]]
    y = cconv.conv1d(x, w)
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, [[[-1.0, -1.0, -1.0]]])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_nan_inf_propagate(dtype, layout, isa):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 9, 8)).astype(dtype)
    x[0, 1, 2, 3] = np.nan
    x[1, 4, 6, 1] = np.inf
    x[1, 0, 0, 7] = -np.inf
    w = rng.standard_normal((6, 5, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    xl = np.ascontiguousarray(R.from_channels_first(x, layout))
    with use_isa(isa):
        y = cconv.conv2d(xl, w, b, padding=1, layout=layout)
        yt = cconv.conv_transpose2d(xl, w.transpose(1, 0, 2, 3).copy(), b, stride=2, layout=layout)
    R.assert_conv_close(y, R.conv2d(xl, w, b, padding=1, layout=layout),
                        R.magnitude(R.conv2d, xl, w, b, padding=1, layout=layout), dtype, 45)
    wt = w.transpose(1, 0, 2, 3)
    R.assert_conv_close(yt, R.conv_transpose2d(xl, wt, b, stride=2, layout=layout),
                        R.magnitude(R.conv_transpose2d, xl, wt, b, stride=2, layout=layout), dtype, 45)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("k, stride, padding", [(4, 2, 1), (3, 2, 0), (1, 3, 0), (16, 8, 4), (2, 4, 0)])
def test_transposed_nonfinite_filter(k, stride, padding, isa):
    """A transposed convolution's Inf or NaN filter value reaches only the outputs that the
    scatter definition sends it to, whether its tap is in a stride phase or in none (k < stride)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 5))
    for where in ((1, 2, k - 1), (3, 0, 0)):
        w = rng.standard_normal((4, 3, k))
        w[where] = np.inf if where[0] == 1 else np.nan
        for dtype in (np.float32, np.float64):
            xd, wd = x.astype(dtype), w.astype(dtype)
            with use_isa(isa):
                y = cconv.conv_transpose1d(xd, wd, stride=stride, padding=padding)
            kw = dict(stride=stride, padding=padding)
            R.assert_conv_close(y, R.conv_transpose1d(xd, wd, **kw),
                                R.magnitude(R.conv_transpose1d, xd, wd, **kw), dtype, 4 * k)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_padding_taps(layout, isa):
    """Tiles skip the kernel rows and planes that read zero padding only (exact for finite
    weights). An Inf weight in such a row still meets the padding (0 * Inf = NaN, as defined),
    and a padding wider than the kernel leaves outputs that read nothing but padding (the bias)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 3, 6, 10))
    b = rng.standard_normal(5)
    w = rng.standard_normal((5, 7, 3, 3, 3))
    xl = np.ascontiguousarray(R.from_channels_first(x, layout))
    cases = [(w, dict(padding=1)), (w, dict(padding=(4, 5, 1), dilation=(1, 2, 1))),
             (w, dict(padding=2, stride=(1, 2, 1)))]
    winf = w.copy()
    winf[2, 3, 0, 0, 1] = np.inf   # first plane, first row: dead in the border tiles when finite
    cases.append((winf, dict(padding=1)))
    for wc, kw in cases:
        for dtype in (np.float32, np.float64):
            xc, wd, bd = xl.astype(dtype), wc.astype(dtype), b.astype(dtype)
            with use_isa(isa):
                y = cconv.conv3d(xc, wd, bd, layout=layout, **kw)
            r = R.conv3d(xc, wd, bd, layout=layout, **kw)
            np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
            fin = np.isfinite(r)
            assert fin.sum() < r.size if wc is winf else fin.all()
            R.assert_conv_close(y[fin], r[fin], R.magnitude(R.conv3d, xc, np.where(np.isfinite(wd), wd, 0),
                                                            bd, layout=layout, **kw)[fin], dtype, 7 * 27)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_empty_batch(layout, isa):
    x = np.zeros((0, 3, 5, 5) if layout == "NCHW" else (0, 5, 5, 3), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    with use_isa(isa):
        y = cconv.conv2d(x, w, padding=1, layout=layout)
        assert y.shape == ((0, 4, 5, 5) if layout == "NCHW" else (0, 5, 5, 4))
        assert y.dtype == np.float32
        yt = cconv.conv_transpose2d(x, np.ones((3, 2, 2, 2), np.float32), stride=2, layout=layout)
        assert yt.shape == ((0, 2, 10, 10) if layout == "NCHW" else (0, 10, 10, 2))
        yd = cconv.depthwise_conv2d(x, np.ones((6, 1, 3, 3), np.float32), layout=layout)
        assert yd.shape == ((0, 6, 3, 3) if layout == "NCHW" else (0, 3, 3, 6))
        ys = cconv.channel_shuffle(x[..., :2] if layout == "NHWC" else x[:, :2], 2, layout=layout)
        assert ys.shape[0] == 0
        out = np.empty((0, 4, 5, 5) if layout == "NCHW" else (0, 5, 5, 4), np.float32)
        assert cconv.conv2d(x, w, padding=1, layout=layout, out=out) is out


def test_out_with_existing_garbage_is_overwritten():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 6, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    out = np.full((1, 2, 4, 4), 1e300)
    y = cconv.conv2d(x, w, out=out)
    assert y is out
    R.assert_conv_close(out, R.conv2d(x, w), R.magnitude(R.conv2d, x, w), np.float64, 27)


def test_output_is_a_fresh_contiguous_array():
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 1, 1))
    y = cconv.conv2d(x, w)
    assert not np.shares_memory(y, x)
    assert y.flags.c_contiguous and y.flags.writeable
    y[...] = 5
    assert np.all(x == 1)


# ------------------------------------------------ medium random shapes
@st.composite
def medium_cases(draw):
    """Channel counts and widths that straddle SIMD widths and register tiles."""
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cig = draw(st.integers(1, 40 // groups))
    cog = draw(st.integers(1, 48 // groups))
    k = tuple(draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    smax = {1: 70, 2: 20, 3: 8}[nd]
    size = tuple(draw(st.integers(dd * (kk - 1) + 1, smax)) for kk, dd in zip(k, d))
    return dict(
        nd=nd, groups=groups, c_in=cig * groups, c_out=cog * groups, kernel=k, stride=s, dilation=d,
        size=size, padding=draw(st.sampled_from([0, 1, "same", "valid"])),
        mode=draw(st.sampled_from(["zeros", "zeros", "reflect", "circular", "replicate", "symmetric"])),
        dtype=draw(st.sampled_from([np.float32, np.float64])), last=draw(st.booleans()),
        transposed=draw(st.booleans()), n=draw(st.integers(1, 2)), seed=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=max(12, settings().max_examples // 3))
@given(c=medium_cases())
def test_medium_random_shapes(c, isa):
    nd = c["nd"]
    lay = R.CHANNELS_LAST[nd] if c["last"] else R.CHANNELS_FIRST[nd]
    rng = np.random.default_rng(c["seed"])
    x = R.from_channels_first(rng.standard_normal((c["n"], c["c_in"], *c["size"])), lay).astype(c["dtype"])
    b = rng.standard_normal(c["c_out"]).astype(c["dtype"])
    if c["transposed"]:
        w = rng.standard_normal((c["c_in"], c["c_out"] // c["groups"], *c["kernel"])).astype(c["dtype"])
        pad = 0 if isinstance(c["padding"], str) else c["padding"]
        if any(R.conv_transpose_output_size(i, k, s_, pad, 0, d_) < 1
               for i, k, s_, d_ in zip(c["size"], c["kernel"], c["stride"], c["dilation"])):
            pad = 0
        kw = dict(stride=c["stride"], padding=pad, groups=c["groups"], dilation=c["dilation"])
        name = f"conv_transpose{nd}d"
    else:
        w = rng.standard_normal((c["c_out"], c["c_in"] // c["groups"], *c["kernel"])).astype(c["dtype"])
        pad = c["padding"]
        before, after = R.normalize_padding(pad, nd, c["size"], c["kernel"], c["stride"], c["dilation"])
        mode = c["mode"]
        if any(max(b_, a_) >= i for b_, a_, i in zip(before, after, c["size"])):
            mode = "zeros"  # reflect needs padding smaller than the input
        kw = dict(stride=c["stride"], padding=pad, dilation=c["dilation"], groups=c["groups"], padding_mode=mode)
        name = f"conv{nd}d"
    with use_isa(isa):
        y = getattr(cconv, name)(x, w, b, layout=lay, **kw)
    ref = getattr(R, name)
    R.assert_conv_close(y, ref(x, w, b, layout=lay, **kw), R.magnitude(ref, x, w, b, layout=lay, **kw),
                        c["dtype"], c["c_in"] // c["groups"] * math.prod(c["kernel"]))
