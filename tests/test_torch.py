"""cconv against PyTorch (torch.nn.functional) wherever PyTorch has the op.

PyTorch computes in the same dtype as cconv (float32 or float64), so both
carry rounding error; the bound is twice ``reference.assert_conv_close``'s
(``terms`` is multiplied by 4, i.e. the sqrt(K) float32 bound doubles).

The random cases run on the default ISA path only: every path is checked against the float64
reference in test_forward.py, and the reference against PyTorch in test_reference.py; the
ResNet/MobileNet layers still run on every path.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference as R
from helpers import conv2d_variant_cases, conv_cases, conv_transpose_cases, rand, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
torch = pytest.importorskip("torch", reason="PyTorch not installed (CI installs torch==2.13.0)")
F = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

TORCH_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _t(a):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def _close(y, yt, scale, dtype, terms):
    R.assert_conv_close(y, yt.astype(np.float64), scale, dtype, 4 * terms)


@given(case=conv_cases())
def test_conv_vs_torch(case):
    if case.n == 0:
        case.n = 1
    nd = case.nd
    dtype = case.x_dtype
    rng = np.random.default_rng(case.seed)
    x = rand(rng, (case.n, case.c_in, *case.in_sizes), dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), dtype)
    b = rand(rng, (case.c_out,), dtype) if case.bias else None
    stride = R.normalize_tuple(case.stride, nd)
    dil = R.normalize_tuple(case.dilation, nd)
    before, after = R.normalize_padding(case.padding, nd, case.in_sizes, case.kernel, stride, dil)
    flat = []
    for bb, aa in zip(reversed(before), reversed(after)):
        flat += [bb, aa]
    xt = _t(x)
    if any(flat):
        xt = F.pad(xt, flat, mode=TORCH_PAD[case.padding_mode])
    tfn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    yt = tfn(xt, _t(w), _t(b), stride, 0, dil, case.groups).numpy()
    y = getattr(cconv, f"conv{nd}d")(x, w, b, case.stride, case.padding, case.dilation, case.groups,
                                     padding_mode=case.padding_mode)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
              padding_mode=case.padding_mode)
    scale = R.magnitude(getattr(R, f"conv{nd}d"), x, w, b, **kw)
    _close(y, yt, scale, dtype, case.c_in // case.groups * math.prod(case.kernel))


@given(case=conv_cases(modes=("zeros",)))
def test_conv_padding_strings_vs_torch(case):
    """Torch's own padding forms: int, per-dim tuple, "valid", "same" (stride 1)."""
    assume(not (isinstance(case.padding, tuple) and isinstance(case.padding[0], tuple)))
    nd = case.nd
    stride = (1,) * nd if case.padding == "same" else case.stride
    rng = np.random.default_rng(case.seed)
    x = rand(rng, (max(case.n, 1), case.c_in, *case.in_sizes), np.float64)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), np.float64)
    tfn = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    yt = tfn(_t(x), _t(w), None, stride, case.padding, case.dilation, case.groups).numpy()
    y = getattr(cconv, f"conv{nd}d")(x, w, None, stride, case.padding, case.dilation, case.groups)
    scale = R.magnitude(getattr(R, f"conv{nd}d"), x, w, None, stride=stride, padding=case.padding,
                        dilation=case.dilation, groups=case.groups)
    _close(y, yt, scale, np.float64, 1)


@given(case=conv_transpose_cases())
def test_conv_transpose_vs_torch(case):
    nd = case.nd
    dtype = case.x_dtype
    rng = np.random.default_rng(case.seed)
    x = rand(rng, (max(case.n, 1), case.c_in, *case.in_sizes), dtype)
    w = rand(rng, (case.c_in, case.c_out // case.groups, *case.kernel), dtype)
    b = rand(rng, (case.c_out,), dtype) if case.bias else None
    op = case.extra["output_padding"]
    tfn = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][nd - 1]
    yt = tfn(_t(x), _t(w), _t(b), case.stride, case.padding, op, case.groups, case.dilation).numpy()
    y = getattr(cconv, f"conv_transpose{nd}d")(x, w, b, case.stride, case.padding, op, case.groups,
                                               case.dilation)
    scale = R.magnitude(getattr(R, f"conv_transpose{nd}d"), x, w, b, stride=case.stride, padding=case.padding,
                        output_padding=op, groups=case.groups, dilation=case.dilation)
    _close(y, yt, scale, dtype, case.c_in // case.groups * math.prod(case.kernel))


@given(case=conv2d_variant_cases())
def test_depthwise_and_separable_vs_torch(case):
    dtype = case.x_dtype
    rng = np.random.default_rng(case.seed)
    c, m = case.c_in, case.extra["multiplier"]
    x = rand(rng, (max(case.n, 1), c, *case.in_sizes), dtype)
    dw = rand(rng, (c * m, 1, *case.kernel), dtype)
    pw = rand(rng, (case.c_out, c * m, 1, 1), dtype)
    b = rand(rng, (case.c_out,), dtype)
    stride = R.normalize_tuple(case.stride, 2)
    dil = R.normalize_tuple(case.dilation, 2)
    before, after = R.normalize_padding(case.padding, 2, case.in_sizes, case.kernel, stride, dil)
    xt = F.pad(_t(x), [before[1], after[1], before[0], after[0]])
    mid = F.conv2d(xt, _t(dw), None, stride, 0, dil, c)
    yt = F.conv2d(mid, _t(pw), _t(b)).numpy()
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    y_dw = cconv.depthwise_conv2d(x, dw, **kw)
    y = cconv.separable_conv2d(x, dw, pw, b, **kw)
    _close(y_dw, mid.numpy(), R.magnitude(R.depthwise_conv2d, x, dw, **kw), dtype, math.prod(case.kernel))
    _close(y, yt, R.magnitude(R.separable_conv2d, x, dw, pw, b, **kw), dtype, math.prod(case.kernel) * c * m)


@given(
    nd=st.integers(1, 3),
    groups=st.integers(1, 5),
    cpg=st.integers(1, 5),
    n=st.integers(1, 2),
    size=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_channel_shuffle_vs_torch(nd, groups, cpg, n, size, dtype):
    x = np.random.default_rng(groups * cpg).standard_normal((n, groups * cpg) + (size,) * nd).astype(dtype)
    expected = torch.channel_shuffle(_t(x), groups).numpy()
    np.testing.assert_array_equal(cconv.channel_shuffle(x, groups), expected)
    lay = R.CHANNELS_LAST[nd]
    xl = np.ascontiguousarray(R.from_channels_first(x, lay))
    np.testing.assert_array_equal(cconv.channel_shuffle(xl, groups, layout=lay), R.from_channels_first(expected, lay))


def test_channel_shuffle_rejects_what_torch_rejects():
    with pytest.raises(RuntimeError):
        torch.channel_shuffle(torch.zeros(2, 4), 2)
    with pytest.raises(ValueError):
        cconv.channel_shuffle(np.zeros((2, 4)), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resnet_and_mobilenet_layers_vs_torch(dtype, isa):
    """A few realistic layer shapes (channels 64..256) under every ISA."""
    rng = np.random.default_rng(21)
    cases = [
        ((1, 64, 28, 28), (64, 64, 3, 3), dict(padding=1)),
        ((1, 128, 14, 14), (256, 128, 1, 1), dict(stride=2)),
        ((1, 96, 20, 20), (96, 1, 3, 3), dict(padding=1, groups=96)),
        ((1, 240, 7, 7), (240, 80, 1, 1), dict(groups=3)),
        ((2, 3, 32, 32), (32, 3, 7, 7), dict(stride=2, padding=3)),
    ]
    for xs, ws, kw in cases:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        yt = F.conv2d(_t(x), _t(w), _t(b), **kw).numpy()
        with use_isa(isa):
            y = cconv.conv2d(x, w, b, **kw)
            yl = cconv.conv2d(np.ascontiguousarray(np.moveaxis(x, 1, -1)), w, b, layout="NHWC", **kw)
        scale = R.magnitude(R.conv2d, x, w, b, **kw)
        terms = ws[1] * ws[2] * ws[3]
        _close(y, yt, scale, dtype, terms)
        _close(np.moveaxis(yl, -1, 1), yt, scale, dtype, terms)
