"""Fused activations (activation=, and separable_conv2d's depthwise_bias= / depthwise_activation=).

The kernels clamp each output right after storing it, so a fused call must give bitwise the
unfused result with the clamp applied after it (a NumPy clamp with the semantics of torch.relu,
F.relu6 and torch.clamp: NaN stays NaN, -0.0 stays -0.0): every variant x algorithm x dtype x
layout x activation, on every ISA path. Against PyTorch (its conv, then its activation) within
the tolerances of test_torch.py. Bad activations are ValueErrors naming the argument.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R
from helpers import FLOATS, conv_cases, rand, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

# (the value given, its (min, max) bounds)
ACTIVATIONS = [("relu", (0.0, math.inf)), ("relu6", (0.0, 6.0)), ((-0.5, 0.25), (-0.5, 0.25)),
               ((None, 0.3), (-math.inf, 0.3)), ((-1, None), (-1.0, math.inf))]


def clamp(y, bounds):
    """The unfused activation: compares in y's dtype, as torch.clamp (NaN and -0.0 stay)."""
    lo, hi = (np.asarray(b, y.dtype) for b in bounds)
    t = np.where(y < lo, lo, y)
    return np.where(t > hi, hi, t).astype(y.dtype)


def assert_bitwise(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    u = np.uint64 if a.dtype == np.float64 else np.uint32
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u))


def _cl(x, cl):
    """x (N, C, *spatial) in the channels-last layout when cl."""
    return np.moveaxis(x, 1, -1).copy() if cl else x


LAYOUT = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def _conv(nd, algorithm, transposed=False, **geom):
    """A conv{nd}d / conv_transpose{nd}d case: (function, args, kwargs) for dtype and layout."""
    def make(rng, dtype, cl):
        ci, co, g = geom.get("ci", 6), geom.get("co", 8), geom.get("groups", 1)
        x = 2 * rand(rng, (2, ci) + geom.get("size", (9, 10, 7)[-nd:]), dtype)
        wshape = (ci, co // g) if transposed else (co, ci // g)
        w = rand(rng, wshape + geom.get("kernel", (3,) * nd), dtype)
        b = rand(rng, (co,), dtype)
        kw = dict(stride=geom.get("stride", 1), padding=geom.get("padding", 1), groups=g,
                  algorithm=algorithm, layout=LAYOUT[nd] if cl else None)
        if geom.get("padding_mode"):
            kw["padding_mode"] = geom["padding_mode"]
        name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
        return getattr(cconv, name), (_cl(x, cl), w, b), kw
    return make


def _variant(name, **extra):
    """A 2-D variant's case: separable, spatially separable, flattened, shuffled, depthwise."""
    def make(rng, dtype, cl):
        x = 2 * rand(rng, (2, 8, 11, 9), dtype)
        kw = dict(padding=1, layout="NHWC" if cl else None, **extra)
        if name == "depthwise_conv2d":
            args = (rand(rng, (16, 1, 3, 3), dtype), rand(rng, (16,), dtype))
        elif name == "separable_conv2d":
            args = (rand(rng, (16, 1, 3, 3), dtype), rand(rng, (12, 16, 1, 1), dtype), rand(rng, (12,), dtype))
        elif name == "spatially_separable_conv2d":
            args = (rand(rng, (8, 8, 3, 1), dtype), rand(rng, (10, 8, 1, 3), dtype), rand(rng, (10,), dtype))
        elif name == "flattened_conv2d":
            args = (rand(rng, (10, 8), dtype), rand(rng, (10, 3), dtype), rand(rng, (10, 3), dtype),
                    rand(rng, (10,), dtype))
        else:  # shuffled_grouped_conv2d, 4 groups
            args = (rand(rng, (8, 2, 3, 3), dtype), 4, rand(rng, (8,), dtype))
        return getattr(cconv, name), (_cl(x, cl),) + args, kw
    return make


CASES = {
    "conv1d-gemm": _conv(1, "gemm", kernel=(5,), padding=2),
    "conv1d-reference": _conv(1, "reference"),
    "conv1d-auto-stride2": _conv(1, "auto", stride=2, padding_mode="reflect"),
    "conv2d-gemm": _conv(2, "gemm"),
    "conv2d-gemm-stride2-circular": _conv(2, "gemm", stride=2, padding_mode="circular"),
    "conv2d-gemm-1x1": _conv(2, "gemm", ci=16, co=24, kernel=(1, 1), padding=0),  # pointwise_cf
    "conv2d-auto-1x1-stride2": _conv(2, "auto", ci=16, co=24, kernel=(1, 1), padding=0, stride=2),
    "conv2d-winograd": _conv(2, "winograd", ci=16, co=24, size=(13, 11)),
    "conv2d-reference": _conv(2, "reference"),
    "conv2d-grouped": _conv(2, "grouped", ci=8, co=8, groups=2),
    "conv2d-gemm-groups": _conv(2, "gemm", ci=8, co=12, groups=4),
    "conv2d-depthwise": _conv(2, "depthwise", ci=8, co=16, groups=8),
    "conv2d-depthwise-5x5-stride2": _conv(2, "depthwise", ci=8, co=8, groups=8, kernel=(5, 5), stride=2,
                                          padding=2, size=(17, 16)),
    "conv3d-gemm": _conv(3, "gemm", ci=4, co=6),
    "conv3d-winograd": _conv(3, "winograd", ci=8, co=8, size=(3, 9, 8)),
    "conv3d-reference": _conv(3, "reference", ci=4, co=6),
    "conv3d-depthwise": _conv(3, "depthwise", ci=4, co=4, groups=4),
    "conv_transpose1d-gemm": _conv(1, "gemm", True, stride=2),
    "conv_transpose2d-gemm": _conv(2, "gemm", True, stride=2),
    "conv_transpose2d-winograd": _conv(2, "winograd", True, ci=16, co=16, size=(10, 9)),
    "conv_transpose2d-reference": _conv(2, "reference", True, stride=3),
    "conv_transpose2d-groups": _conv(2, "auto", True, ci=8, co=8, groups=4, stride=2),
    "conv_transpose3d-gemm": _conv(3, "gemm", True, ci=4, co=6, stride=2),
    "depthwise_conv2d": _variant("depthwise_conv2d"),
    "depthwise_conv2d-stride2": _variant("depthwise_conv2d", stride=2),
    "separable_conv2d": _variant("separable_conv2d"),
    "separable_conv2d-unfused": _variant("separable_conv2d", fused=False),
    "spatially_separable_conv2d": _variant("spatially_separable_conv2d"),
    "spatially_separable_conv2d-unfused": _variant("spatially_separable_conv2d", fused=False),
    "flattened_conv2d": _variant("flattened_conv2d"),
    "flattened_conv2d-unfused": _variant("flattened_conv2d", fused=False),
    "shuffled_grouped_conv2d": _variant("shuffled_grouped_conv2d"),
    "shuffled_grouped_conv2d-gemm": _variant("shuffled_grouped_conv2d", algorithm="gemm"),
    "shuffled_grouped_conv2d-grouped": _variant("shuffled_grouped_conv2d", algorithm="grouped"),
}


def _unfused(fn, args, kw):
    try:
        return fn(*args, **kw)
    except ValueError as e:
        if "cannot run" in str(e):
            pytest.skip(f"the algorithm cannot run this case: {e}")
        raise


@pytest.mark.parametrize("cl", [False, True], ids=["cf", "cl"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_fused_equals_unfused_then_clamp(isa, case, dtype, cl):
    fn, args, kw = CASES[case](np.random.default_rng(len(case)), dtype, cl)
    with use_isa(isa):
        y0 = _unfused(fn, args, kw)
        hit = 0
        for act, bounds in ACTIVATIONS:
            y = fn(*args, **kw, activation=act)
            assert_bitwise(y, clamp(y0, bounds))
            hit += int(np.any(y != y0))
        assert hit == len(ACTIVATIONS)  # every activation changed some outputs


@pytest.mark.parametrize("cl", [False, True], ids=["cf", "cl"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_plans(isa, dtype, cl):
    rng = np.random.default_rng(5)
    x = _cl(2 * rand(rng, (3, 6, 9, 8), dtype), cl)
    w, b = rand(rng, (8, 6, 3, 3), dtype), rand(rng, (8,), dtype)
    layout = "NHWC" if cl else None
    with use_isa(isa):
        for algorithm in ("auto", "gemm", "winograd", "reference"):
            for act, bounds in ACTIVATIONS:
                plan = cconv.plan_conv2d(x.shape, w, b, padding=1, layout=layout, algorithm=algorithm,
                                         activation=act)
                for xb in (x, x[:1]):  # the planned batch, and another (a plan made on the fly)
                    y0 = cconv.conv2d(xb, w, b, padding=1, layout=layout, algorithm=algorithm)
                    assert_bitwise(plan(xb), clamp(y0, bounds))
        t = cconv.plan_conv_transpose2d(x.shape, np.moveaxis(w, 0, 1).copy(), stride=2, layout=layout,
                                        activation="relu6")
        y0 = cconv.conv_transpose2d(x, np.moveaxis(w, 0, 1).copy(), stride=2, layout=layout)
        assert_bitwise(t(x), clamp(y0, (0.0, 6.0)))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_separable_depthwise_bias_and_activation(isa, dtype, fused):
    """The MobileNet block: depthwise 3x3 + bias + ReLU6, then 1x1 + bias + ReLU6."""
    rng = np.random.default_rng(11)
    x = 3 * rand(rng, (2, 8, 13, 12), dtype)
    dw, db = rand(rng, (16, 1, 3, 3), dtype), rand(rng, (16,), dtype)
    pw, pb = rand(rng, (24, 16, 1, 1), dtype), rand(rng, (24,), dtype)
    with use_isa(isa):
        for stride in (1, 2):
            mid = cconv.depthwise_conv2d(x, dw, db, stride=stride, padding=1, activation="relu6")
            staged = cconv.conv2d(mid, pw, pb, activation="relu6")
            y = cconv.separable_conv2d(x, dw, pw, pb, stride=stride, padding=1, fused=fused,
                                       activation="relu6", depthwise_bias=db, depthwise_activation="relu6")
            if not fused:  # exactly the stages
                assert_bitwise(y, staged)
            scale = R.magnitude(R.conv2d, np.minimum(np.abs(mid), 6), pw, pb)
            R.assert_conv_close(y, staged, scale, dtype, 16)
            assert np.all((y >= 0) & (y <= 6)) and np.any(y == 6) and np.any(y == 0)
            # the middle activation alone, and the middle bias alone
            y1 = cconv.separable_conv2d(x, dw, pw, stride=stride, padding=1, fused=fused,
                                        depthwise_activation=(None, 0.5))
            mid1 = cconv.depthwise_conv2d(x, dw, stride=stride, padding=1, activation=(None, 0.5))
            R.assert_conv_close(y1, cconv.conv2d(mid1, pw), R.magnitude(R.conv2d, mid1, pw), dtype, 16)
            y2 = cconv.separable_conv2d(x, dw, pw, stride=stride, padding=1, fused=fused, depthwise_bias=db)
            mid2 = cconv.depthwise_conv2d(x, dw, db, stride=stride, padding=1)
            R.assert_conv_close(y2, cconv.conv2d(mid2, pw), R.magnitude(R.conv2d, mid2, pw), dtype, 16)


@pytest.mark.parametrize("algorithm", ["gemm", "winograd", "depthwise", "reference", "auto"])
@pytest.mark.parametrize("cl", [False, True], ids=["cf", "cl"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_nan_and_inf(isa, algorithm, dtype, cl):
    rng = np.random.default_rng(2)
    c = 16
    x = 2 * rand(rng, (2, c, 10, 9), dtype)
    x[0, 3, 2, 2], x[1, 0, 5, 5], x[1, 7, 0, 8], x[0, 9, 7, 1] = np.nan, np.inf, -np.inf, np.inf
    groups = c if algorithm == "depthwise" else 1
    w, b = rand(rng, (c, c // groups, 3, 3), dtype), rand(rng, (c,), dtype)
    kw = dict(padding=1, groups=groups, algorithm=algorithm, layout="NHWC" if cl else None)
    with use_isa(isa):
        y0 = cconv.conv2d(_cl(x, cl), w, b, **kw)
        assert np.isnan(y0).any() and np.isinf(y0).any()
        for act, bounds in ACTIVATIONS:
            y = cconv.conv2d(_cl(x, cl), w, b, **kw, activation=act)
            assert_bitwise(y, clamp(y0, bounds))
            assert np.array_equal(np.isnan(y), np.isnan(y0))  # NaN propagates through every clamp


@pytest.mark.filterwarnings("error::RuntimeWarning")  # Inf/NaN input: an answer, not a warning
@pytest.mark.parametrize("cl", [False, True], ids=["cf", "cl"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_flattened_nan_and_inf(isa, dtype, cl):
    """The fused flattened pass redoes a result with Inf or NaN by its stages; a clamp would hide
    an Inf from that check, so the activation must not: Inf and NaN in x (inside and next to the
    padding), an Inf bias, and a finite x whose 1x1 overflows, each against the unfused clamp."""
    rng = np.random.default_rng(7)
    big = np.finfo(dtype).max / 2
    spots = {  # value at (n, c, h, w) of x (2, 8, 11, 9)
        "+inf": [(0, 3, 0, 4), (1, 5, 10, 8)], "-inf": [(1, 2, 5, 0), (0, 6, 4, 4)],
        "nan": [(0, 1, 0, 0), (1, 7, 6, 8)], "mixed": [(0, 3, 0, 4), (0, 2, 10, 0), (1, 4, 5, 5)],
        "bias": [], "overflow": [(0, 2, 5, 4), (1, 6, 0, 8)]}
    fill = {"+inf": [np.inf], "-inf": [-np.inf], "nan": [np.nan], "mixed": [np.inf, -np.inf, np.nan],
            "bias": [], "overflow": [big]}
    ch, v, h, b = (rand(rng, s, dtype) for s in ((10, 8), (10, 3), (10, 3), (10,)))
    ch[:, 2] = ch[:, 6] = 4  # the overflow case: 4 * big is past the dtype's range
    with use_isa(isa):
        for case, where in spots.items():
            x = 2 * rand(rng, (2, 8, 11, 9), dtype)
            for k, i in enumerate(where):
                x[i] = fill[case][k % len(fill[case])]
            bias = b.copy()
            if case == "bias":
                bias[4] = np.inf
            kw = dict(padding=1, layout="NHWC" if cl else None)
            y0 = cconv.flattened_conv2d(_cl(x, cl), ch, v, h, bias, **kw)
            assert not np.isfinite(y0).all(), case
            for act, bounds in ACTIVATIONS:
                y = cconv.flattened_conv2d(_cl(x, cl), ch, v, h, bias, **kw, activation=act)
                assert_bitwise(y, clamp(y0, bounds))


def test_bad_activations():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    for bad in ("ReLU", "sigmoid", "", 0, 1.0, (0,), (0, 1, 2), (np.nan, 1), (0, np.nan), ("0", 1),
                (True, 1), [None, "x"], {"relu"}):
        with pytest.raises(ValueError, match="activation must be None, 'relu', 'relu6' or a pair"):
            cconv.conv2d(x, w, activation=bad)
        with pytest.raises(ValueError, match="activation"):
            cconv.plan_conv2d(x.shape, w, activation=bad)
    with pytest.raises(ValueError, match="depthwise_activation must be"):
        cconv.separable_conv2d(x, np.ones((2, 1, 3, 3)), np.ones((4, 2, 1, 1)), depthwise_activation="tanh")
    with pytest.raises(ValueError, match=r"depthwise_bias must have shape \(2,\)"):
        cconv.separable_conv2d(x, np.ones((2, 1, 3, 3)), np.ones((4, 2, 1, 1)), depthwise_bias=np.ones(3))
    for op in ("conv1d", "conv_transpose2d", "depthwise_conv2d", "spatially_separable_conv2d",
               "flattened_conv2d", "shuffled_grouped_conv2d"):
        import inspect
        assert inspect.signature(getattr(cconv, op)).parameters["activation"].default is None
    # accepted: lists, NumPy scalars, ints, bounds in either order (torch.clamp: min > max gives max)
    y0 = cconv.conv2d(x, w)
    for ok, bounds in (([0, 6], (0, 6)), ((np.float32(1), np.int64(20)), (1, 20)), ((20, 1), (20, 1))):
        assert_bitwise(cconv.conv2d(x, w, activation=ok), clamp(y0, bounds))


def test_gradients_take_no_activation():
    import inspect
    import cconv.grad
    for name in ("conv2d_input", "conv2d_weight", "separable_conv2d_grads"):
        assert "activation" not in inspect.signature(getattr(cconv.grad, name)).parameters


@given(case=conv_cases(), act=st.sampled_from(ACTIVATIONS), cl=st.booleans())
def test_random_shapes(case, act, cl):
    nd = case.nd
    rng = np.random.default_rng(case.seed)
    x = 2 * rand(rng, (case.n, case.c_in, *case.in_sizes), case.x_dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), case.x_dtype)
    b = rand(rng, (case.c_out,), case.x_dtype) if case.bias else None
    fn = getattr(cconv, f"conv{nd}d")
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
              padding_mode=case.padding_mode, layout=LAYOUT[nd] if cl else None)
    algorithm = case.algorithm if case.algorithm != "depthwise" or case.c_in == case.groups else "auto"
    y0 = fn(_cl(x, cl), w, b, **kw, algorithm=algorithm)
    y = fn(_cl(x, cl), w, b, **kw, algorithm=algorithm, activation=act[0])
    assert_bitwise(y, clamp(y0, act[1]))
    plan = getattr(cconv, f"plan_conv{nd}d")(_cl(x, cl).shape, w, b, **kw, algorithm=algorithm,
                                              activation=act[0])
    assert_bitwise(plan(_cl(x, cl)), y)


# ----------------------------------------------------------------------- PyTorch

torch = None


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed (CI installs torch==2.13.0)")


def _torch_act(t, act):
    F = _torch().nn.functional
    if act == "relu":
        return _torch().relu(t)
    if act == "relu6":
        return F.relu6(t)
    return _torch().clamp(t, *act)


@pytest.mark.parametrize("act", [a for a, _ in ACTIVATIONS[:4]], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_against_torch(isa, act, dtype):
    torch = _torch()
    F = torch.nn.functional
    T = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    rng = np.random.default_rng(4)
    x = 2 * rand(rng, (2, 16, 11, 10), dtype)
    x[0, 1, 2, 3], x[1, 2, 3, 4] = np.nan, np.inf
    w, b = rand(rng, (24, 16, 3, 3), dtype), rand(rng, (24,), dtype)
    dw, db = rand(rng, (16, 1, 3, 3), dtype), rand(rng, (16,), dtype)
    pw = rand(rng, (24, 16, 1, 1), dtype)
    x1, w1 = x[:, :, 0], w[:, :, 0]
    x3, w3 = np.stack([x, x[:, :, ::-1]], 2), np.stack([w, -w], 2)
    wt = rand(rng, (16, 8, 3, 3), dtype)
    with use_isa(isa):
        for algorithm in ("auto", "gemm", "winograd", "reference"):
            y = cconv.conv2d(x, w, b, padding=1, algorithm=algorithm, activation=act)
            yt = _torch_act(F.conv2d(T(x), T(w), T(b), padding=1), act).numpy()
            R.assert_conv_close(y, yt, R.magnitude(R.conv2d, x, w, b, padding=1), dtype, 4 * 144)
        checks = [
            (cconv.conv1d(x1, w1, b, padding=1, activation=act),
             F.conv1d(T(x1), T(w1), T(b), padding=1), R.magnitude(R.conv1d, x1, w1, b, padding=1)),
            (cconv.conv3d(x3, w3, b, padding=1, activation=act),
             F.conv3d(T(x3), T(w3), T(b), padding=1), R.magnitude(R.conv3d, x3, w3, b, padding=1)),
            (cconv.conv_transpose2d(x, wt, b[:8], stride=2, activation=act),
             F.conv_transpose2d(T(x), T(wt), T(b[:8]), stride=2),
             R.magnitude(R.conv_transpose2d, x, wt, b[:8], stride=2)),
            (cconv.depthwise_conv2d(x, dw, db, padding=1, activation=act),
             F.conv2d(T(x), T(dw), T(db), padding=1, groups=16),
             R.magnitude(R.depthwise_conv2d, x, dw, db, padding=1)),
        ]
        for y, yt, scale in checks:
            R.assert_conv_close(y, _torch_act(yt, act).numpy(), scale, dtype, 4 * 288)
        # separable: depthwise + bias + act, then pointwise + bias + act (a MobileNet block)
        mid = _torch_act(F.conv2d(T(x), T(dw), T(db), padding=1, groups=16), act)
        yt = _torch_act(F.conv2d(mid, T(pw), T(b)), act).numpy()
        for fused in (True, False):
            y = cconv.separable_conv2d(x, dw, pw, b, padding=1, fused=fused, activation=act,
                                       depthwise_bias=db, depthwise_activation=act)
            # the 1x1's terms, plus the depthwise error (none where the clamp met an Inf: exact)
            mid_scale = np.nan_to_num(R.magnitude(R.depthwise_conv2d, x, dw, db, padding=1), nan=0, posinf=0)
            scale = R.magnitude(R.conv2d, np.abs(mid.numpy()) + mid_scale, pw, b)
            R.assert_conv_close(y, yt, scale, dtype, 4 * 144)
