"""The oracle itself, checked against PyTorch (torch.nn.functional) and by hand.

These tests need no cconv: they make sure ``reference.py`` states the same
semantics as PyTorch before it is used to judge the C kernels.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R
from helpers import conv_cases, conv_transpose_cases, conv2d_variant_cases

torch = pytest.importorskip("torch", reason="PyTorch not installed; oracle cross-check skipped")
F = torch.nn.functional
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
