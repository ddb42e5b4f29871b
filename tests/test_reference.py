"""The oracle itself, checked against PyTorch (torch.nn.functional) and by hand.

These tests need no cconv: they make sure ``reference.py`` states the same
semantics as PyTorch before it is used to judge the C kernels.  The gradient
oracle is checked twice: against its own forward definitions by the adjoint
identity (no PyTorch needed), and against PyTorch's autograd when installed.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R
from helpers import conv_cases, conv_transpose_cases, conv2d_variant_cases

try:
    import torch
    F = torch.nn.functional
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed; oracle cross-check skipped")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

TORCH_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def torch_conv(x, w, b, stride, before, after, dilation, groups, mode):
    nd = x.ndim - 2
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    flat = []
    for bb, aa in zip(reversed(before), reversed(after)):
        flat += [bb, aa]
    if any(flat):
        xt = F.pad(xt, flat, mode=TORCH_PAD[mode])
    fn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    bt = None if b is None else torch.from_numpy(np.asarray(b, np.float64))
    return fn(xt, torch.from_numpy(np.asarray(w, np.float64)), bt, stride, 0, dilation, groups).numpy()


def _arrays(case, rng, wshape):
    x = rng.standard_normal((case.n, case.c_in, *case.in_sizes))
    w = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0] if not case.extra.get("transposed") else case.c_out) if case.bias else None
    return x, w, b


@needs_torch
@given(conv_cases())
def test_conv_nd_matches_torch(case):
    rng = np.random.default_rng(case.seed)
    x, w, b = _arrays(case, rng, (case.c_out, case.c_in // case.groups, *case.kernel))
    nd = case.nd
    stride = R.normalize_tuple(case.stride, nd)
    dil = R.normalize_tuple(case.dilation, nd)
    before, after = R.normalize_padding(case.padding, nd, case.in_sizes, case.kernel, stride, dil)
    y = R.conv_nd(x, w, b, stride, before, after, dil, case.groups, case.padding_mode)
    if case.n == 0:
        assert y.shape[0] == 0
        return
    yt = torch_conv(x, w, b, stride, before, after, dil, case.groups, case.padding_mode)
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)


@needs_torch
@given(conv_cases(modes=("zeros",)))
def test_same_and_explicit_padding_match_torch_forms(case):
    """Torch accepts int / per-dim / "valid" / "same" (stride 1) directly."""
    nd = case.nd
    if isinstance(case.padding, tuple) and isinstance(case.padding[0], tuple):
        return  # torch has no per-side form
    stride = R.normalize_tuple(case.stride, nd)
    if case.padding == "same":
        stride = (1,) * nd
    rng = np.random.default_rng(case.seed)
    x, w, b = _arrays(case, rng, (case.c_out, case.c_in // case.groups, *case.kernel))
    fn = [R.conv1d, R.conv2d, R.conv3d][nd - 1]
    y = fn(x, w, b, stride, case.padding, case.dilation, case.groups)
    tfn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    yt = tfn(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        stride,
        case.padding,
        case.dilation,
        case.groups,
    ).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)


@needs_torch
@given(conv_transpose_cases())
def test_conv_transpose_matches_torch(case):
    rng = np.random.default_rng(case.seed)
    nd = case.nd
    x = rng.standard_normal((case.n, case.c_in, *case.in_sizes))
    w = rng.standard_normal((case.c_in, case.c_out // case.groups, *case.kernel))
    b = rng.standard_normal(case.c_out) if case.bias else None
    op = case.extra["output_padding"]
    fn = [R.conv_transpose1d, R.conv_transpose2d, R.conv_transpose3d][nd - 1]
    y = fn(x, w, b, case.stride, case.padding, op, case.groups, case.dilation)
    tfn = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][nd - 1]
    yt = tfn(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        case.stride,
        case.padding,
        op,
        case.groups,
        case.dilation,
    ).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)
    # the size formula
    for ax in range(nd):
        s, p, a, d = (R.normalize_tuple(v, nd)[ax] for v in (case.stride, case.padding, op, case.dilation))
        assert y.shape[2 + ax] == R.conv_transpose_output_size(case.in_sizes[ax], case.kernel[ax], s, p, a, d)


@needs_torch
@given(conv2d_variant_cases(max_groups=3))
def test_variants_match_torch_compositions(case):
    rng = np.random.default_rng(case.seed)
    c, m, g = case.c_in, case.extra["multiplier"], case.groups
    kh, kw = case.kernel
    x = rng.standard_normal((case.n, c, *case.in_sizes))
    stride = R.normalize_tuple(case.stride, 2)
    dil = R.normalize_tuple(case.dilation, 2)
    before, after = R.normalize_padding(case.padding, 2, case.in_sizes, case.kernel, stride, dil)
    xp = torch.from_numpy(np.pad(x, [(0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])]))

    # depthwise = torch grouped conv with groups = C
    dw = rng.standard_normal((c * m, 1, kh, kw))
    y = R.depthwise_conv2d(x, dw, None, stride, case.padding, dil)
    yt = F.conv2d(xp, torch.from_numpy(dw), None, stride, 0, dil, c).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)

    # separable = depthwise then 1x1
    pw = rng.standard_normal((case.c_out, c * m, 1, 1))
    bias = rng.standard_normal(case.c_out)
    y = R.separable_conv2d(x, dw, pw, bias, stride, case.padding, dil)
    yt = F.conv2d(torch.from_numpy(yt), torch.from_numpy(pw), torch.from_numpy(bias)).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)

    # spatially separable = (kh x 1) grouped conv, then (1 x kw) grouped conv
    c_mid = case.extra["c_mid"]
    vw = rng.standard_normal((c_mid, c // g, kh, 1))
    hw = rng.standard_normal((case.c_out, c_mid // g, 1, kw))
    y = R.spatially_separable_conv2d(x, vw, hw, bias, stride, case.padding, dil, g)
    mid = F.conv2d(xp, torch.from_numpy(vw), None, (stride[0], 1), 0, (dil[0], 1), g)
    yt = F.conv2d(mid, torch.from_numpy(hw), torch.from_numpy(bias), (1, stride[1]), 0, (1, dil[1]), g).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)

    # flattened = conv2d with the rank-1 weight
    ch = rng.standard_normal((case.c_out, c))
    v = rng.standard_normal((case.c_out, kh))
    h = rng.standard_normal((case.c_out, kw))
    w = np.einsum("oc,oi,oj->ocij", ch, v, h)
    y = R.flattened_conv2d(x, ch, v, h, bias, stride, case.padding, dil)
    yt = F.conv2d(xp, torch.from_numpy(w), torch.from_numpy(bias), stride, 0, dil).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)


@needs_torch
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(0, 2),
    st.sampled_from([1, 2, 3]),
    st.booleans(),
)
def test_channel_shuffle_matches_torch(nd, g, cpg, n, size, last):
    x = np.arange(n * g * cpg * size**nd, dtype=np.float64).reshape(n, g * cpg, *(size,) * nd)
    y = R.channel_shuffle(x, g)
    yt = torch.channel_shuffle(torch.from_numpy(x), g).numpy()
    np.testing.assert_array_equal(y, yt)
    lay = R.CHANNELS_LAST[nd]
    xl = R.from_channels_first(x, lay)
    np.testing.assert_array_equal(R.to_channels_first(R.channel_shuffle(xl, g, layout=lay), lay), yt)


def test_layout_helpers_roundtrip():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    xl = R.from_channels_first(x, "NHWC")
    assert xl.shape == (2, 4, 5, 3)
    assert xl[1, 2, 3, 0] == x[1, 0, 2, 3]
    np.testing.assert_array_equal(R.to_channels_first(xl, "NHWC"), x)
    assert R.to_channels_first(x, "NCHW") is x


@pytest.mark.parametrize(
    "i,k,s,d,expected",
    [
        # out = ceil(i/s); total = max((out-1)s + d(k-1)+1 - i, 0); before = total//2
        (5, 3, 1, 1, ((1,), (1,))),
        (5, 4, 1, 1, ((1,), (2,))),
        (5, 3, 2, 1, ((1,), (1,))),
        (6, 3, 2, 1, ((0,), (1,))),
        (7, 1, 3, 1, ((0,), (0,))),
        (4, 3, 1, 2, ((2,), (2,))),
        (10, 5, 4, 1, ((1,), (2,))),
    ],
)
def test_same_padding_rule(i, k, s, d, expected):
    assert R.normalize_padding("same", 1, (i,), (k,), (s,), (d,)) == expected
    before, after = expected
    assert R.conv_output_size(i, k, s, before[0], d, after[0]) == -(-i // s)


def test_padding_forms():
    assert R.normalize_padding(2, 2) == ((2, 2), (2, 2))
    assert R.normalize_padding((1, 2), 2) == ((1, 2), (1, 2))
    assert R.normalize_padding(((1, 2), (3, 0)), 2) == ((1, 3), (2, 0))
    assert R.normalize_padding("valid", 3) == ((0, 0, 0), (0, 0, 0))


def test_assert_conv_close_detects_errors():
    e = np.array([1.0, 2.0, np.nan, np.inf])
    s = np.array([1.0, 2.0, 1.0, 1.0])
    R.assert_conv_close(e.astype(np.float32), e, s, np.float32, terms=1)
    with pytest.raises(AssertionError):
        R.assert_conv_close(np.array([1.001, 2.0, np.nan, np.inf]), e, s, np.float64)
    with pytest.raises(AssertionError):
        R.assert_conv_close(np.array([1.0, 2.0, 0.0, np.inf]), e, s, np.float64)
    with pytest.raises(AssertionError):
        R.assert_conv_close(np.array([1.0, 2.0, np.nan, -np.inf]), e, s, np.float64)


# ------------------------------------------------------------ the gradient oracle
def _conv_grad_setup(case, rng):
    x, w, b = _arrays(case, rng, (case.c_out, case.c_in // case.groups, *case.kernel))
    nd = case.nd
    stride, dil = R.normalize_tuple(case.stride, nd), R.normalize_tuple(case.dilation, nd)
    before, after = R.normalize_padding(case.padding, nd, case.in_sizes, case.kernel, stride, dil)
    geom = (stride, before, after, dil, case.groups, case.padding_mode)
    y = R.conv_nd(x, w, None, *geom)
    return x, w, rng.standard_normal(y.shape), y, geom


def _assert_adjoint(lhs, rhs, scale):
    assert abs(lhs - rhs) <= 1e-12 * scale + 1e-300, (lhs, rhs, scale)


@given(conv_cases())
def test_conv_grads_are_the_adjoint(case):
    """<conv(x, w), g> = <x, dL/dx> = <w, dL/dw> and sum(g) per channel is dL/db."""
    rng = np.random.default_rng(case.seed)
    x, w, g, y, geom = _conv_grad_setup(case, rng)
    gx, gw, gb = R.conv_grads(x, w, g, case.stride, case.padding, case.dilation, case.groups,
                              case.padding_mode)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (case.c_out,)
    np.testing.assert_array_equal(gx, R.conv_nd_input_grad(x.shape, w, g, *geom))
    scale = float(np.vdot(R.conv_nd(np.abs(x), np.abs(w), None, *geom), np.abs(g)))
    lhs = float(np.vdot(y, g))
    _assert_adjoint(lhs, float(np.vdot(x, gx)), scale)
    _assert_adjoint(lhs, float(np.vdot(w, gw)), scale)
    ones = np.ones(case.c_out)
    np.testing.assert_allclose(np.vdot(R.conv_nd(x, w, ones, *geom) - y, g), gb.sum(), rtol=1e-12,
                               atol=1e-12 * np.abs(g).sum())


@given(conv_transpose_cases())
def test_conv_transpose_grads_are_the_adjoint(case):
    rng = np.random.default_rng(case.seed)
    op = case.extra["output_padding"]
    x = rng.standard_normal((case.n, case.c_in, *case.in_sizes))
    w = rng.standard_normal((case.c_in, case.c_out // case.groups, *case.kernel))
    geom = (case.stride, case.padding, op, case.groups, case.dilation)
    fn = [R.conv_transpose1d, R.conv_transpose2d, R.conv_transpose3d][case.nd - 1]
    y = fn(x, w, None, *geom)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = R.conv_transpose_grads(x, w, g, *geom)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (case.c_out,)
    scale = float(np.vdot(fn(np.abs(x), np.abs(w), None, *geom), np.abs(g)))
    _assert_adjoint(float(np.vdot(y, g)), float(np.vdot(x, gx)), scale)
    _assert_adjoint(float(np.vdot(y, g)), float(np.vdot(w, gw)), scale)


@given(conv2d_variant_cases(max_groups=3), st.integers(1, 4))
def test_variant_grads_are_the_adjoint(case, shuffle):
    """Every variant is linear in x and in each weight separately: <f, g> = <a, dL/da> for each."""
    rng = np.random.default_rng(case.seed)
    c, m, grp, co = case.c_in, case.extra["multiplier"], case.groups, case.c_out
    kh, kw = case.kernel
    x = rng.standard_normal((case.n, c, *case.in_sizes))
    geo = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    dw, pw = rng.standard_normal((c * m, 1, kh, kw)), rng.standard_normal((co, c * m, 1, 1))
    vw = rng.standard_normal((case.extra["c_mid"], c // grp, kh, 1))
    hw = rng.standard_normal((co, case.extra["c_mid"] // grp, 1, kw))
    ch, v, h = rng.standard_normal((co, c)), rng.standard_normal((co, kh)), rng.standard_normal((co, kw))
    wg = rng.standard_normal((co, c // grp, kh, kw))
    divisors = [d for d in range(1, co + 1) if co % d == 0]
    sg = divisors[shuffle % len(divisors)]
    variants = [
        (lambda a, ws, b=None: R.depthwise_conv2d(a, ws[0], b, **geo),
         lambda a, ws, g: R.depthwise_conv2d_grads(a, ws[0], g, **geo), [dw]),
        (lambda a, ws, b=None: R.separable_conv2d(a, *ws, b, **geo),
         lambda a, ws, g: R.separable_conv2d_grads(a, *ws, g, **geo), [dw, pw]),
        (lambda a, ws, b=None: R.spatially_separable_conv2d(a, *ws, b, **geo, groups=grp),
         lambda a, ws, g: R.spatially_separable_conv2d_grads(a, *ws, g, **geo, groups=grp), [vw, hw]),
        (lambda a, ws, b=None: R.flattened_conv2d(a, *ws, b, **geo),
         lambda a, ws, g: R.flattened_conv2d_grads(a, *ws, g, **geo), [ch, v, h]),
        (lambda a, ws, b=None: R.channel_shuffle(R.conv2d(a, ws[0], b, **geo, groups=grp), sg),
         lambda a, ws, g: R.shuffled_grouped_conv2d_grads(a, ws[0], g, grp, **geo, shuffle_groups=sg),
         [wg]),
    ]
    for fwd, bwd, ws in variants:
        y = fwd(x, ws)
        g, bias = rng.standard_normal(y.shape), rng.standard_normal(y.shape[1])
        *grads, gb = bwd(x, ws, g)
        lhs = float(np.vdot(y, g))
        scale = float(np.vdot(fwd(np.abs(x), [np.abs(a) for a in ws]), np.abs(g)))
        assert len(grads) == len(ws) + 1
        for a, ga in zip([x] + ws, grads):
            assert ga.shape == a.shape
            _assert_adjoint(lhs, float(np.vdot(a, ga)), scale)
        # affine in the bias: <f(b) - f(0), g> = <b, dL/db>
        _assert_adjoint(float(np.vdot(fwd(x, ws, bias) - y, g)), float(np.vdot(bias, gb)),
                        float(np.vdot(np.abs(bias), np.abs(gb))) + 1e-300)


def _torch_grads(fwd, arrays, g):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fwd(*ts).backward(torch.from_numpy(g))
    return [t.grad.numpy() for t in ts]


@needs_torch
@given(conv_cases())
def test_conv_grads_match_torch_autograd(case):
    rng = np.random.default_rng(case.seed)
    x, w, g, y, (stride, before, after, dil, groups, mode) = _conv_grad_setup(case, rng)
    b = np.zeros(case.c_out)
    flat = [p for bb, aa in zip(reversed(before), reversed(after)) for p in (bb, aa)]
    tfn = [F.conv1d, F.conv2d, F.conv3d][case.nd - 1]

    def fwd(tx, tw, tb):
        return tfn(F.pad(tx, flat, mode=TORCH_PAD[mode]) if any(flat) else tx, tw, tb, stride, 0, dil,
                   groups)

    expected = _torch_grads(fwd, [x, w, b], g)
    got = R.conv_grads(x, w, g, case.stride, case.padding, case.dilation, groups, mode)
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10 * (np.abs(e).max(initial=0) + 1))


@needs_torch
@given(conv_transpose_cases())
def test_conv_transpose_grads_match_torch_autograd(case):
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal((case.n, case.c_in, *case.in_sizes))
    w = rng.standard_normal((case.c_in, case.c_out // case.groups, *case.kernel))
    geom = (case.stride, case.padding, case.extra["output_padding"], case.groups, case.dilation)
    tfn = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][case.nd - 1]
    g = rng.standard_normal(tfn(torch.from_numpy(x), torch.from_numpy(w), None, *geom).shape)
    expected = _torch_grads(lambda tx, tw: tfn(tx, tw, None, *geom), [x, w], g)
    got = R.conv_transpose_grads(x, w, g, *geom)
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10 * (np.abs(e).max(initial=0) + 1))
