"""Winograd F(4x4, 3x3) (algorithm="winograd", chosen by "auto" for 3x3 stride-1 convolutions with
>= 16 channels, any dilation): against the float64 oracle on random shapes (tile edges: sizes
below, at and past multiples of the 4x4 tile and of the dilation's phases; channel counts around
the register tile), every padding form and mode, dilation, layout, dtype and ISA path; Inf/NaN
placement (the GEMM fallback); thread determinism.

Accuracy: the transforms use the points 0, +-1, +-2 (Lavin & Gray 2016); the measured error is
about 1e-6 * conv(|x|, |w|) in float32 (direct summation: ~1e-7), far inside the suite's float32
bound 1e-5 * sqrt(K) (reference.assert_conv_close); test_error_bound pins a tighter 2e-5.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as R
from helpers import num_threads, threads_equal, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

MODES = ("zeros", "reflect", "replicate", "circular")


def _layout_x(x, layout):
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if layout == "NHWC" else x


@st.composite
def wino_cases(draw):
    pad = draw(st.sampled_from([0, 1, 2, "same", ((1, 0), (2, 1)), (0, 1)]))
    mode = draw(st.sampled_from(MODES))
    h = draw(st.integers(1, 21))
    w = draw(st.integers(1, 21))
    dil = draw(st.sampled_from([1, 1, 2, 3, (2, 1), (1, 4)]))
    return dict(
        dilation=dil,
        n=draw(st.sampled_from([1, 1, 2, 3, 0])),
        c_in=draw(st.sampled_from([1, 3, 8, 15, 16, 17, 31, 33])),
        c_out=draw(st.sampled_from([1, 5, 16, 17, 32, 33, 40])),
        h=h, w=w, padding=pad, mode=mode,
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _valid(case):
    """Shapes the padding mode and size accept (else the call raises, tested elsewhere)."""
    p, dil = case["padding"], case["dilation"]
    dil = (dil, dil) if isinstance(dil, int) else dil
    if p == "same":
        pads = [(d, d) for d in dil]
    elif isinstance(p, int):
        pads = [(p, p), (p, p)]
    elif isinstance(p[0], tuple):
        pads = list(p)
    else:
        pads = [(p[0], p[0]), (p[1], p[1])]
    for size, (lo, hi), d in zip((case["h"], case["w"]), pads, dil):
        if size + lo + hi < 2 * d + 1:
            return False
        if case["mode"] == "reflect" and max(lo, hi) >= size:
            return False
        if case["mode"] == "circular" and max(lo, hi) > size:
            return False
    return True


def _tile_scale(scale, layout, dilation=1):
    """Winograd's error scale: each output's sum |x*w|, raised to the largest in its 4x4 output
    tile. The transforms mix all 36 inputs of a tile, so an output whose own window holds one
    small term (a corner of a tiny padded image) errs like its tile's largest output: relative to
    its own sum it reached 3x the GEMM family's bound (seed 3 of a 1x1x2 image, padding 2).
    With dilation (dh, dw) a tile is 4x4 outputs of one phase: every dh-th row and dw-th column."""
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    s = np.moveaxis(scale, -1, 1) if layout == "NHWC" else scale
    if (dh, dw) != (1, 1):
        out = np.empty_like(s)
        for py in range(dh):
            for px in range(dw):
                out[:, :, py::dh, px::dw] = _tile_scale(s[:, :, py::dh, px::dw], "NCHW")
        return np.moveaxis(out, 1, -1) if layout == "NHWC" else out
    n, c, h, w = s.shape
    th, tw = -(-h // 4), -(-w // 4)
    t = np.zeros((n, c, th * 4, tw * 4))
    t[:, :, :h, :w] = s
    t = t.reshape(n, c, th, 4, tw, 4).max(axis=(3, 5))
    out = np.repeat(np.repeat(t, 4, axis=2), 4, axis=3)[:, :, :h, :w]
    return np.moveaxis(out, 1, -1) if layout == "NHWC" else out


@settings(max_examples=60, deadline=None)
@given(case=wino_cases())
def test_winograd_matches_oracle(case, isa):
    if not _valid(case):
        return
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["n"], case["c_in"], case["h"], case["w"])).astype(dt)
    w = rng.standard_normal((case["c_out"], case["c_in"], 3, 3)).astype(dt)
    b = rng.standard_normal(case["c_out"]).astype(dt) if case["bias"] else None
    xl = _layout_x(x, case["layout"])
    kw = dict(padding=case["padding"], padding_mode=case["mode"], layout=case["layout"],
              dilation=case["dilation"])
    with use_isa(isa):
        y = cconv.conv2d(xl, w, b, algorithm="winograd", **kw)
    expected = R.conv2d(xl, w, b, **kw)
    # The filter transform mixes all 9 taps too: scale by the largest |w| of each (c_out, c_in)
    # filter at every tap, so a small tap's output is not measured by its own weight alone.
    w_max = np.broadcast_to(np.abs(w).max(axis=(2, 3), keepdims=True), w.shape)
    scale = _tile_scale(R.magnitude(R.conv2d, xl, w_max, b, **kw), case["layout"], case["dilation"])
    assert y.dtype == dt
    R.assert_conv_close(y, expected, scale, dt, case["c_in"] * 9, msg=repr(case))


@st.composite
def wino3d_cases(draw):
    """conv3d with a 3x3 (any dilation) over H and W and any depth kernel, stride, dilation."""
    kd = draw(st.integers(1, 3))
    return dict(
        n=draw(st.sampled_from([1, 2, 0])),
        c_in=draw(st.sampled_from([1, 8, 16, 17])),
        c_out=draw(st.sampled_from([1, 16, 17, 33])),
        size=(draw(st.integers(kd, 7)), draw(st.integers(3, 13)), draw(st.integers(3, 13))),
        kd=kd,
        stride=(draw(st.integers(1, 3)), 1, 1),
        dilation=(draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 1, 2])), 1),
        padding=draw(st.sampled_from([0, 1, (0, 1, 2), "same"])),
        mode=draw(st.sampled_from(MODES)),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        layout=draw(st.sampled_from(["NCDHW", "NDHWC"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(max_examples=40, deadline=None)
@given(case=wino3d_cases())
def test_winograd_3d_matches_oracle(case, isa):
    """Each output plane sums the 2-D transform of every plane its depth taps read (one GEMM
    reduction over taps and channels), so a tile is 4x4 outputs of one plane and phase."""
    if case["padding"] == "same" and case["stride"][0] > 1:
        return  # "same" needs stride 1 (rejected elsewhere)
    if case["mode"] != "zeros" and case["padding"] not in (0,):
        pads = (case["padding"],) * 3 if isinstance(case["padding"], int) else case["padding"]
        if case["padding"] == "same":
            pads = ((case["kd"] - 1) // 2 + 1, case["dilation"][1], 1)
        if any(p >= sz for p, sz in zip(pads, case["size"])):
            return  # reflect/circular need pad < size (rejected elsewhere)
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["n"], case["c_in"]) + case["size"]).astype(dt)
    w = rng.standard_normal((case["c_out"], case["c_in"], case["kd"], 3, 3)).astype(dt)
    b = rng.standard_normal(case["c_out"]).astype(dt) if case["bias"] else None
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if case["layout"] == "NDHWC" else x
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              padding_mode=case["mode"], layout=case["layout"])
    try:
        expected = R.conv3d(xl, w, b, **kw)
    except ValueError:
        return  # a size the padding or kernel rejects (tested elsewhere)
    with use_isa(isa):
        y = cconv.conv3d(xl, w, b, algorithm="winograd", **kw)
    w_max = np.broadcast_to(np.abs(w).max(axis=(3, 4), keepdims=True), w.shape)
    mag = R.magnitude(R.conv3d, xl, w_max, b, **kw)
    cl = case["layout"] == "NDHWC"
    m = np.moveaxis(mag, -1, 1) if cl else mag  # (n, c, d, h, w): one 2-D tile grid per plane
    n, c, d, h, ww = m.shape
    scale = _tile_scale(m.reshape(n, c * d, h, ww), "NCHW", case["dilation"][1:]).reshape(m.shape)
    scale = np.moveaxis(scale, 1, -1) if cl else scale
    assert y.dtype == dt
    R.assert_conv_close(y, expected, scale, dt, case["c_in"] * case["kd"] * 9, msg=repr(case))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_error_bound(dtype, isa):
    """A suite-sized reduction (K = 64*9): the error stays within 2e-5 of sum |x*w| (float32)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 64, 30, 30)).astype(dtype)
    w = rng.standard_normal((48, 64, 3, 3)).astype(dtype)
    with use_isa(isa):
        p = cconv.plan_conv2d(x.shape, w, padding=1)
        y = p(x)
    assert p.algorithm == "winograd"
    err = np.abs(y - R.conv2d(x, w, padding=1)) / R.magnitude(R.conv2d, x, w, padding=1)
    assert err.max() < (2e-5 if dtype == np.float32 else 1e-13), err.max()


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_nonfinite_inputs_land_where_the_definition_puts_them(value, layout, dilation, isa):
    """The transforms would smear an Inf/NaN over its tile; the GEMM fallback must not."""
    kw = dict(padding=dilation, dilation=dilation, layout=layout)
    rng = np.random.default_rng(1)
    x = rng.random((2, 16, 13, 10)).astype(np.float32)
    w = rng.random((20, 16, 3, 3)).astype(np.float32)
    for pos in [(0, 0, 0, 0), (1, 5, 6, 4), (1, 15, 12, 9), (0, 3, 0, 9)]:
        xx = x.copy()
        xx[pos] = value
        xl = _layout_x(xx, layout)
        with use_isa(isa):
            y = cconv.conv2d(xl, w, algorithm="winograd", **kw)
        r = R.conv2d(xl, w, **kw)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
        np.testing.assert_array_equal(np.isposinf(y), np.isposinf(r))
        np.testing.assert_array_equal(np.isneginf(y), np.isneginf(r))
        fin = np.isfinite(r)
        R.assert_conv_close(y[fin], r[fin], R.magnitude(R.conv2d, np.where(np.isfinite(xl), xl, 0), w,
                                                        **kw)[fin], np.float32, 144)


def test_nonfinite_weights(isa):
    rng = np.random.default_rng(2)
    x = rng.random((1, 16, 12, 12))
    w = rng.random((16, 16, 3, 3))
    w[3, 4, 1, 1] = np.inf
    with use_isa(isa):
        y = cconv.conv2d(x, w, padding=1, algorithm="winograd")
        assert cconv.plan_conv2d(x.shape, w, padding=1).algorithm == "gemm"  # auto avoids it
    r = R.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(np.isinf(y), np.isinf(r))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    fin = np.isfinite(r)
    assert fin.sum() == 15 * 144  # only output channel 3 reads the Inf
    R.assert_conv_close(y[fin], r[fin], R.magnitude(R.conv2d, x, np.where(np.isfinite(w), w, 0),
                                                    padding=1)[fin], np.float64, 144)


@pytest.mark.parametrize("shape,dilation", [((1, 32, 57, 61), 1), ((3, 16, 9, 30), 1), ((1, 64, 14, 14), 1),
                                            ((2, 32, 37, 41), (2, 3))])
def test_bitwise_identical_for_any_thread_count(shape, dilation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((40, shape[1], 3, 3)).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        with num_threads(n):
            outs.append(cconv.conv2d(x, w, padding=dilation, dilation=dilation, algorithm="winograd"))
            outs.append(cconv.conv2d(x, w, padding=dilation, dilation=dilation, algorithm="winograd"))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_auto_choice_and_explicit_rejection():
    x = np.zeros((8, 64, 56, 56), np.float32)
    w = np.zeros((64, 64, 3, 3), np.float32)
    assert cconv.plan_conv2d(x.shape, w, padding=1).algorithm == "winograd"
    assert cconv.plan_conv2d(x.shape, w, padding=1, stride=2).algorithm == "gemm"
    assert cconv.plan_conv2d(x.shape, w, padding=2, dilation=2).algorithm == "winograd"
    # d6 on 14x14: 3 outputs per phase in a tile of 4, most of each tile wasted
    assert cconv.plan_conv2d((8, 64, 14, 14), w, padding=6, dilation=6).algorithm == "gemm"
    assert cconv.plan_conv2d((8, 4, 56, 56), w[:, :4], padding=1).algorithm == "gemm"  # few channels
    w3 = np.zeros((64, 64, 3, 3, 3), np.float32)
    assert cconv.plan_conv3d((1, 64, 16, 56, 56), w3, padding=1).algorithm == "winograd"
    assert cconv.plan_conv3d((1, 64, 16, 56, 56), w3, padding=1, stride=(2, 1, 1)).algorithm == "winograd"
    assert cconv.plan_conv3d((1, 64, 16, 56, 56), w3, padding=1, stride=2).algorithm == "gemm"
    for kw in (dict(stride=2), dict(groups=2)):
        ww = w[:, :32] if "groups" in kw else w
        with pytest.raises(ValueError, match="algorithm"):
            cconv.conv2d(x[:1, :, :8, :8], ww, algorithm="winograd", **kw)
    with pytest.raises(ValueError, match="algorithm"):
        cconv.conv1d(np.zeros((1, 4, 9)), np.zeros((4, 4, 3)), algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm"):
        cconv.conv_transpose2d(x[:1, :, :8, :8], w, algorithm="winograd", stride=2)
    # stride 1, one group: planned as the forward correlation with the flipped filter
    assert cconv.plan_conv_transpose2d(x.shape, w, padding=1).algorithm == "winograd"
    assert cconv.plan_conv_transpose2d(x.shape, w, padding=1, stride=2).algorithm == "gemm"
    assert cconv.plan_conv_transpose3d((1, 64, 16, 56, 56), w3, padding=1).algorithm == "winograd"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd, x_shape, cout, k, padding, dilation", [
    (2, (2, 20, 13, 17), 24, (3, 3), 1, 1),
    (2, (1, 18, 11, 9), 16, (3, 3), (2, 1), 2),            # dilation 2, padding per axis
    (2, (1, 17, 12, 10), 19, (3, 3), 0, 1),                # no padding: the output grows by 2
    (3, (1, 16, 4, 9, 8), 20, (2, 3, 3), 1, 1),
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_transposed_stride1_on_winograd(isa, dtype, nd, x_shape, cout, k, padding, dilation,
                                        channels_last):
    """A stride-1 transposed convolution asked to run on Winograd equals the GEMM and the
    float64 oracle within Winograd's tolerance, with 1 and 2 threads alike."""
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((x_shape[1], cout) + k).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    fn = cconv.conv_transpose2d if nd == 2 else cconv.conv_transpose3d
    kw = dict(padding=padding, dilation=dilation)
    ref = fn(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), algorithm="reference", **kw)
    if channels_last:
        x, ref = (np.ascontiguousarray(np.moveaxis(a, 1, -1)) for a in (x, ref))
        kw["layout"] = "NHWC" if nd == 2 else "NDHWC"
    with use_isa(isa):
        got = fn(x, w, b, algorithm="winograd", **kw)
        gemm = fn(x, w, b, algorithm="gemm", **kw)
        assert threads_equal(lambda: fn(x, w, b, algorithm="winograd", **kw))
    assert got.shape == gemm.shape == ref.shape
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert np.abs(got - ref).max() / np.abs(ref).max() < tol


def test_plan_reports_memory():
    x_shape = (2, 32, 40, 40)
    w = np.ones((32, 32, 3, 3), np.float32)
    p = cconv.plan_conv2d(x_shape, w, padding=1, algorithm="winograd")
    # transformed weights (36/9 = 4x the filter, padded to whole register tiles) + GEMM fallback
    assert p.weight_bytes >= 36 * 32 * 32 * 4
    assert 0 < p.workspace_bytes < 8 * 2**20
    np.testing.assert_allclose(p(np.ones(x_shape, np.float32))[0, 0, 5, 5], 32 * 9, rtol=1e-6)
