"""cconv.grad: gradients of every convolution variant.

* against the float64 gradient oracle of reference.py (the adjoints of its forward definitions),
  and also against PyTorch autograd (float64) when torch is installed, on random cases: dims
  1/2/3, stride, every padding form ("valid", "same", ints, per-side pairs), padding modes
  (zeros/reflect/replicate/circular), dilation, groups, float32/float64 (also mixed), layouts,
  memory arrangements, batch 0; transposed convolutions (output_padding); depthwise, separable,
  spatially separable, flattened, channel shuffle, shuffled grouped;
* central finite differences in float64 on tiny cases;
* the adjoint identities <conv(x, w), g> = <x, grad_input(g)> = <w, grad_weight(x, g)> to float64
  precision;
* bitwise identical results with 1 and 2 threads and across repeated calls.

Only the check of the signatures against torch.nn.grad needs torch; everything else runs without
it (CCONV_TEST_NO_TORCH=1 shows that, see conftest.py).
"""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R
from helpers import (arrange, conv2d_variant_cases, conv_cases, conv_transpose_cases, num_threads,
                     rand, use_isa)

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
from cconv import grad as G  # noqa: E402

try:
    import torch
    F = torch.nn.functional
except ImportError:
    torch = None


@pytest.fixture(autouse=True)
def _one_thread(request):
    """One cconv thread, except where a test sets threads itself: with torch imported in the
    same process, 2-thread cconv calls can stall for tens of ms each (see the module notes in
    cconv.grad's report), which would only slow this file down; results are bitwise identical
    for any thread count (test_bitwise_identical_...)."""
    with num_threads(1):
        yield


TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


# ------------------------------------------------------------------ oracles (float64)

def _oracles(reference, autograd):
    """(name, gradients) of the float64 reference, and of torch autograd when torch is installed."""
    yield "reference", reference()
    if torch is not None:
        yield "torch", autograd()


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _torch_pad(x, before, after, mode):
    fp = []
    for b, a in reversed(list(zip(before, after))):
        fp += [b, a]
    if not any(fp):
        return x
    return F.pad(x, fp, mode=TORCH_MODE[mode])


def torch_conv_grads(nd, x, w, g, stride, before, after, dilation, groups, mode):
    """(dL/dx, dL/dw) of L = <pad+conv(x, w), g>, all channels-first float64."""
    tx, tw = _t(x, True), _t(w, True)
    conv = getattr(F, f"conv{nd}d")
    y = conv(_torch_pad(tx, before, after, mode), tw, None, stride, 0, dilation, groups)
    y.backward(_t(g))
    return tx.grad.numpy(), tw.grad.numpy()


def torch_conv_transpose_grads(nd, x, w, g, stride, padding, output_padding, groups, dilation):
    tx, tw = _t(x, True), _t(w, True)
    y = getattr(F, f"conv_transpose{nd}d")(tx, tw, None, stride, padding, output_padding, groups,
                                          dilation)
    y.backward(_t(g))
    return tx.grad.numpy(), tw.grad.numpy()


def close(actual, expected, scale, dtype, terms, msg=""):
    R.assert_conv_close(actual, expected, scale, dtype, terms, msg=msg)


def _dt(*arrays):
    return np.result_type(*arrays)


# ------------------------------------------------------------------ plain convolutions

def _conv_case_arrays(case, rng):
    nd = case.nd
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), case.w_dtype)
    stride = R.normalize_tuple(case.stride, nd)
    dilation = R.normalize_tuple(case.dilation, nd)
    before, after = R.normalize_padding(case.padding, nd, case.in_sizes, case.kernel, stride,
                                        dilation)
    out = tuple(R.conv_output_size(i, k, s, b, d, a) for i, k, s, b, a, d in
                zip(case.in_sizes, case.kernel, stride, before, after, dilation))
    g_cf = rand(rng, (case.n, case.c_out, *out), case.x_dtype)
    g = np.ascontiguousarray(R.from_channels_first(g_cf, case.layout))
    return x, w, g, stride, dilation, before, after


@given(case=conv_cases())
def test_conv_grads_match_oracles(case, isa):
    rng = np.random.default_rng(case.seed)
    nd = case.nd
    x, w, g, stride, dilation, before, after = _conv_case_arrays(case, rng)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation,
              groups=case.groups, padding_mode=case.padding_mode, layout=case.layout)
    xa, wa, ga = arrange(x, case.x_arr), arrange(w, case.w_arr), arrange(g, case.x_arr)
    with use_isa(isa):
        gx = getattr(G, f"conv{nd}d_input")(x.shape, wa, ga, **kw)
        gw = getattr(G, f"conv{nd}d_weight")(xa, w.shape, ga, **kw)
    gb = G.bias(ga, layout=case.layout)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (case.c_out,)
    assert gx.dtype == _dt(w, g) and gw.dtype == _dt(x, g) and gb.dtype == g.dtype
    for a, orig in ((xa, x), (wa, w), (ga, g)):
        assert np.array_equal(a, orig), "input modified"
    if case.n == 0:
        assert not gw.any() and not gb.any()
        return
    x_cf, g_cf = R.to_channels_first(x, case.layout), R.to_channels_first(g, case.layout)
    geo = (case.stride, case.padding, case.dilation, case.groups, case.padding_mode)
    sx, sw, sb = R.conv_grads(np.abs(x_cf), np.abs(w), np.abs(g_cf), *geo)
    ksz = math.prod(case.kernel)
    terms = case.n * math.prod(g_cf.shape[2:])
    for name, (ex, ew, *eb) in _oracles(
            lambda: R.conv_grads(x_cf, w, g_cf, *geo),
            lambda: torch_conv_grads(nd, x_cf, w, g_cf, stride, before, after, dilation,
                                     case.groups, case.padding_mode)):
        close(R.to_channels_first(gx, case.layout), ex, sx, gx.dtype,
              case.c_out // case.groups * ksz * 4, msg=f"grad_input vs {name} {case!r}")
        close(gw, ew, sw, gw.dtype, terms, msg=f"grad_weight vs {name} {case!r}")
    close(gb, R.bias_grad(g_cf), sb, gb.dtype, terms, msg=f"bias {case!r}")


@pytest.mark.skipif(torch is None, reason="PyTorch not installed: no torch.nn.grad to compare with")
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_signatures_match_torch_nn_grad(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 4, *(7,) * nd))
    w = rng.standard_normal((6, 2, *(3,) * nd))
    y = getattr(F, f"conv{nd}d")(_t(x), _t(w), None, 2, 1, 1, 2)
    g = rng.standard_normal(tuple(y.shape))
    tin = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, _t(w), _t(g), 2, 1, 1, 2)
    tw = getattr(torch.nn.grad, f"conv{nd}d_weight")(_t(x), w.shape, _t(g), 2, 1, 1, 2)
    np.testing.assert_allclose(getattr(G, f"conv{nd}d_input")(x.shape, w, g, 2, 1, 1, 2),
                               tin.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(G, f"conv{nd}d_weight")(x, w.shape, g, 2, 1, 1, 2),
                               tw.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ transposed

@given(case=conv_transpose_cases())
def test_conv_transpose_grads_match_oracles(case):
    rng = np.random.default_rng(case.seed)
    nd = case.nd
    op = case.extra["output_padding"]
    stride, dilation = R.normalize_tuple(case.stride, nd), R.normalize_tuple(case.dilation, nd)
    padding, opt = R.normalize_tuple(case.padding, nd), R.normalize_tuple(op, nd)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_in, case.c_out // case.groups, *case.kernel), case.w_dtype)
    out = tuple(R.conv_transpose_output_size(i, k, s, p, a, d) for i, k, s, p, a, d in
                zip(case.in_sizes, case.kernel, stride, padding, opt, dilation))
    g_cf = rand(rng, (case.n, case.c_out, *out), case.x_dtype)
    g = np.ascontiguousarray(R.from_channels_first(g_cf, case.layout))
    kw = dict(stride=case.stride, padding=case.padding, output_padding=op, groups=case.groups,
              dilation=case.dilation, layout=case.layout)
    gx = getattr(G, f"conv_transpose{nd}d_input")(x.shape, arrange(w, case.w_arr), g, **kw)
    gw = getattr(G, f"conv_transpose{nd}d_weight")(arrange(x, case.x_arr), w.shape,
                                                   arrange(g, case.x_arr), **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    assert gx.dtype == _dt(w, g) and gw.dtype == _dt(x, g)
    if case.n == 0:
        assert not gw.any()
        return
    x_cf = R.to_channels_first(x, case.layout)
    args = (stride, padding, opt, case.groups, dilation)
    sx, sw, _ = R.conv_transpose_grads(np.abs(x_cf), np.abs(w), np.abs(g_cf), *args)
    for name, (ex, ew, *_) in _oracles(
            lambda: R.conv_transpose_grads(x_cf, w, g_cf, *args),
            lambda: torch_conv_transpose_grads(nd, x_cf, w, g_cf, *args)):
        close(R.to_channels_first(gx, case.layout), ex, sx, gx.dtype,
              case.c_out * math.prod(case.kernel), msg=f"grad_input vs {name} {case!r}")
        close(gw, ew, sw, gw.dtype, case.n * math.prod(out), msg=f"grad_weight vs {name} {case!r}")


# ------------------------------------------------------------------ composite variants

def _variant_setup(case, rng):
    x = rand(rng, case.x_shape(), case.x_dtype)
    stride = R.normalize_tuple(case.stride, 2)
    dilation = R.normalize_tuple(case.dilation, 2)
    before, after = R.normalize_padding(case.padding, 2, case.in_sizes, case.kernel, stride,
                                        dilation)
    return x, stride, dilation, before, after


def _g_for(y_shape, case, rng):
    g_cf = rand(rng, tuple(y_shape), case.x_dtype)
    return g_cf, np.ascontiguousarray(R.from_channels_first(g_cf, case.layout))


def _check_variant(case, got, arrays, g_cf, reference, torch_forward, grad_input):
    """got: cconv's gradients (x first, in case.layout; the bias last); arrays: the forward's
    arguments, x channels-first; reference(arrays, g_cf): the oracle's gradients in the same order;
    torch_forward(*tensors): the same forward in torch, whose leaves' gradients are compared too
    when torch is installed."""
    def autograd():
        leaves = [_t(a, True) for a in arrays]
        torch_forward(*leaves).backward(_t(g_cf))
        return [t.grad.numpy() for t in leaves]

    for name, expected in _oracles(lambda: reference(arrays, g_cf), autograd):
        assert len(expected) >= len(arrays)
        for i, (a, e) in enumerate(zip(got, expected)):
            if i == 0:
                if not grad_input:
                    assert a is None
                    continue
                a = R.to_channels_first(a, case.layout)
            assert a.shape == e.shape, (name, i, a.shape, e.shape)
            scale = np.abs(e).max(initial=0) + 1e-300
            tol = 1e-11 if a.dtype == np.float64 else 2e-4
            np.testing.assert_allclose(a, e, rtol=0, atol=tol * scale * 10,
                                       err_msg=f"{i} vs {name} {case!r}")


@given(case=conv2d_variant_cases(), kind=st.sampled_from(["depthwise", "separable"]),
       grad_input=st.booleans())
def test_depthwise_and_separable_grads_match_oracles(case, kind, grad_input):
    rng = np.random.default_rng(case.seed)
    x, stride, dilation, before, after = _variant_setup(case, rng)
    c, m = case.c_in, case.extra["multiplier"]
    dw = rand(rng, (c * m, 1, *case.kernel), case.w_dtype)
    pw = rand(rng, (case.c_out, c * m, 1, 1), case.w_dtype)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, layout=case.layout)
    geo = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    x_cf = R.to_channels_first(x, case.layout)

    def torch_forward(tx, tdw, tpw=None):
        y = F.conv2d(_torch_pad(tx, before, after, "zeros"), tdw, None, stride, 0, dilation, c)
        return y if tpw is None else F.conv2d(y, tpw)

    if kind == "depthwise":
        g_cf, g = _g_for(R.depthwise_conv2d(x_cf, dw, None, **geo).shape, case, rng)
        gx, gdw, gb = G.depthwise_conv2d_grads(x, dw, g, input_grad=grad_input, **kw)
        _check_variant(case, [gx, gdw, gb], [x_cf, dw], g_cf,
                       lambda a, g_: R.depthwise_conv2d_grads(*a, g_, **geo), torch_forward,
                       grad_input)
        # the single-purpose functions agree with the tuple (bitwise where the tuple's common
        # dtype is theirs: depthwise_conv2d_weight computes in result_type(x, g))
        gw1 = G.depthwise_conv2d_weight(x, dw.shape, g, **kw)
        if gw1.dtype == gdw.dtype:
            assert np.array_equal(gw1, gdw)
        if grad_input:
            gx1 = G.depthwise_conv2d_input(x.shape, dw, g, **kw)
            if gx1.dtype == gx.dtype:
                assert np.array_equal(gx1, gx)
    else:
        g_cf, g = _g_for(R.separable_conv2d(x_cf, dw, pw, None, **geo).shape, case, rng)
        gx, gdw, gpw, gb = G.separable_conv2d_grads(x, dw, pw, g, input_grad=grad_input, **kw)
        _check_variant(case, [gx, gdw, gpw, gb], [x_cf, dw, pw], g_cf,
                       lambda a, g_: R.separable_conv2d_grads(*a, g_, **geo), torch_forward,
                       grad_input)


@given(case=conv2d_variant_cases(max_groups=3))
def test_spatially_separable_grads_match_oracles(case):
    rng = np.random.default_rng(case.seed)
    x, stride, dilation, before, after = _variant_setup(case, rng)
    grp, c_mid = case.groups, case.extra["c_mid"]
    kh, kw_ = case.kernel
    vw = rand(rng, (c_mid, case.c_in // grp, kh, 1), case.w_dtype)
    hw = rand(rng, (case.c_out, c_mid // grp, 1, kw_), case.w_dtype)
    geo = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=grp)
    x_cf = R.to_channels_first(x, case.layout)

    def torch_forward(tx, tv, th):
        h = F.conv2d(_torch_pad(tx, (before[0], 0), (after[0], 0), "zeros"), tv, None,
                     (stride[0], 1), 0, (dilation[0], 1), grp)
        return F.conv2d(_torch_pad(h, (0, before[1]), (0, after[1]), "zeros"), th, None,
                        (1, stride[1]), 0, (1, dilation[1]), grp)

    g_cf, g = _g_for(R.spatially_separable_conv2d(x_cf, vw, hw, None, **geo).shape, case, rng)
    got = G.spatially_separable_conv2d_grads(x, vw, hw, g, layout=case.layout, **geo)
    _check_variant(case, got, [x_cf, vw, hw], g_cf,
                   lambda a, g_: R.spatially_separable_conv2d_grads(*a, g_, **geo), torch_forward,
                   True)


@given(case=conv2d_variant_cases())
def test_flattened_grads_match_oracles(case):
    rng = np.random.default_rng(case.seed)
    x, stride, dilation, before, after = _variant_setup(case, rng)
    kh, kw_ = case.kernel
    co = case.c_out
    ch = rand(rng, (co, case.c_in), case.w_dtype)
    v = rand(rng, (co, kh), case.w_dtype)
    h = rand(rng, (co, kw_), case.w_dtype)
    geo = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    x_cf = R.to_channels_first(x, case.layout)

    def torch_forward(tx, tc, tv, th):
        y = F.conv2d(tx, tc[:, :, None, None])
        y = F.conv2d(_torch_pad(y, (before[0], 0), (after[0], 0), "zeros"), tv[:, None, :, None],
                     None, (stride[0], 1), 0, (dilation[0], 1), co)
        return F.conv2d(_torch_pad(y, (0, before[1]), (0, after[1]), "zeros"),
                        th[:, None, None, :], None, (1, stride[1]), 0, (1, dilation[1]), co)

    g_cf, g = _g_for(R.flattened_conv2d(x_cf, ch, v, h, None, **geo).shape, case, rng)
    got = G.flattened_conv2d_grads(x, ch, v, h, g, layout=case.layout, **geo)
    assert got[1].shape == ch.shape and got[2].shape == v.shape and got[3].shape == h.shape
    _check_variant(case, got, [x_cf, ch, v, h], g_cf,
                   lambda a, g_: R.flattened_conv2d_grads(*a, g_, **geo), torch_forward, True)


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@given(case=conv_cases(nd=2), data=st.data())
def test_shuffled_grouped_grads_match_oracles(case, data):
    """Grouped conv2d (every padding mode) with a bias, then a channel shuffle with its own
    shuffle_groups; the bias is added before the shuffle, so its gradient is un-shuffled too."""
    rng = np.random.default_rng(case.seed)
    x, w, g, stride, dilation, before, after = _conv_case_arrays(case, rng)
    sg = data.draw(st.sampled_from(_divisors(case.c_out)), label="shuffle_groups")
    grad_input = data.draw(st.booleans(), label="input_grad")
    geo = dict(stride=case.stride, padding=case.padding, dilation=case.dilation,
               shuffle_groups=sg, padding_mode=case.padding_mode)

    def torch_forward(tx, tw, tb):
        y = F.conv2d(_torch_pad(tx, before, after, case.padding_mode), tw, tb, stride, 0,
                     dilation, case.groups)
        n, c, oh, ow = y.shape
        return y.reshape(n, sg, c // sg, oh, ow).transpose(1, 2).reshape(n, c, oh, ow)

    gx, gw, gb = G.shuffled_grouped_conv2d_grads(
        arrange(x, case.x_arr), arrange(w, case.w_arr), arrange(g, case.x_arr), case.groups,
        case.stride, case.padding, case.dilation, shuffle_groups=sg,
        padding_mode=case.padding_mode, layout=case.layout, input_grad=grad_input)
    assert gw.shape == w.shape and gb.shape == (case.c_out,)
    assert gw.dtype == gb.dtype == _dt(x, w, g)
    if grad_input:
        assert gx.shape == x.shape and gx.dtype == gw.dtype
    else:
        assert gx is None
    if case.n == 0:
        assert not gw.any() and not gb.any()
        return
    _check_variant(case, [gx, gw, gb], [R.to_channels_first(x, case.layout), w, np.zeros(case.c_out)],
                   R.to_channels_first(g, case.layout),
                   lambda a, g_: R.shuffled_grouped_conv2d_grads(a[0], a[1], g_, case.groups, **geo),
                   torch_forward, grad_input)


@pytest.mark.parametrize("layout", [None, "NCHW", "NHWC", "NCDHW", "NDHWC"])
@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_channel_shuffle_grad_is_the_inverse_permutation(layout, groups):
    rng = np.random.default_rng(groups)
    nd = 3 if layout and "D" in layout else 2
    last = layout is not None and layout.endswith("C")
    shape_cf = (2, 12, *(3,) * nd)
    x = rng.standard_normal(shape_cf)
    g = rng.standard_normal(shape_cf)

    def autograd():
        tx = _t(x, True)
        tx.view(2, groups, 12 // groups, *(3,) * nd).transpose(1, 2).reshape(shape_cf).backward(_t(g))
        return tx.grad.numpy()

    gl = np.ascontiguousarray(np.moveaxis(g, 1, -1)) if last else g
    got = G.channel_shuffle_input(gl.astype(np.float32), groups, layout=layout)
    got = np.moveaxis(got, -1, 1) if last else got
    assert got.dtype == np.float32
    for name, expected in _oracles(lambda: R.channel_shuffle_grad(g, groups), autograd):
        np.testing.assert_array_equal(got, expected.astype(np.float32), err_msg=name)
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if last else x
    np.testing.assert_array_equal(
        G.channel_shuffle_input(cconv.channel_shuffle(xl, groups, layout=layout), groups,
                                layout=layout), xl)


# ------------------------------------------------------------------ finite differences (float64)

FD_CASES = [
    # nd, N, C_in, C_out, size, kernel, stride, padding, dilation, groups, mode
    (1, 2, 2, 3, 7, 3, 2, ((1, 2),), 1, 1, "reflect"),
    (1, 1, 4, 2, 6, 2, 1, "same", 2, 2, "circular"),
    (2, 2, 2, 2, 5, 3, 1, 1, 1, 1, "zeros"),
    (2, 1, 3, 3, 6, 2, 2, ((0, 1), (2, 1)), 1, 3, "replicate"),
    (2, 2, 2, 4, 6, 3, (2, 1), "same", (1, 2), 2, "reflect"),
    (2, 1, 2, 2, 4, 2, 1, ((2, 3), (4, 0)), 1, 1, "circular"),
    (3, 1, 2, 2, 4, 2, (1, 2, 1), 1, (2, 1, 1), 1, "replicate"),
    (3, 1, 2, 2, 3, 3, 1, 1, 1, 2, "reflect"),
]


def _fd(f, a, idx, h=1e-3):
    a_p, a_m = a.copy(), a.copy()
    a_p[idx] += h
    a_m[idx] -= h
    return (f(a_p) - f(a_m)) / (2 * h)


@pytest.mark.parametrize("case", FD_CASES, ids=lambda c: f"{c[0]}d-{c[-1]}")
def test_central_finite_differences(case):
    nd, n, ci, co, size, k, stride, padding, dilation, groups, mode = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, ci, *(size,) * nd))
    w = rng.standard_normal((co, ci // groups, *(k,) * nd))
    conv = getattr(cconv, f"conv{nd}d")
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)
    g = rng.standard_normal(conv(x, w, **kw).shape)
    gx = getattr(G, f"conv{nd}d_input")(x.shape, w, g, **kw)
    gw = getattr(G, f"conv{nd}d_weight")(x, w.shape, g, **kw)
    for idx in itertools.product(*map(range, x.shape)):
        fd = _fd(lambda a: float(np.vdot(conv(a, w, **kw), g)), x, idx)
        assert abs(fd - gx[idx]) <= 1e-7 * (1 + abs(fd)), (idx, fd, gx[idx])
    for idx in itertools.product(*map(range, w.shape)):
        fd = _fd(lambda a: float(np.vdot(conv(x, a, **kw), g)), w, idx)
        assert abs(fd - gw[idx]) <= 1e-7 * (1 + abs(fd)), (idx, fd, gw[idx])


def test_central_finite_differences_composites():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 6, 5))
    dw, pw = rng.standard_normal((6, 1, 3, 2)), rng.standard_normal((4, 6, 1, 1))
    vw, hw = rng.standard_normal((4, 3, 3, 1)), rng.standard_normal((2, 4, 1, 2))
    ch, fv, fh = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    wt = rng.standard_normal((3, 2, 3, 2))
    wg = rng.standard_normal((6, 1, 3, 2))   # 3 groups of 1 -> 2 channels, shuffled in 2 groups
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2))
    ks = dict(stride=(2, 1), padding=1, shuffle_groups=2, padding_mode="reflect")
    calls = [
        (lambda a, b: cconv.separable_conv2d(a, b[0], b[1], **kw),
         lambda a, b, g: G.separable_conv2d_grads(a, b[0], b[1], g, **kw)[:3], [dw, pw]),
        (lambda a, b: cconv.spatially_separable_conv2d(a, b[0], b[1], **kw),
         lambda a, b, g: G.spatially_separable_conv2d_grads(a, b[0], b[1], g, **kw)[:3], [vw, hw]),
        (lambda a, b: cconv.flattened_conv2d(a, b[0], b[1], b[2], **kw),
         lambda a, b, g: G.flattened_conv2d_grads(a, b[0], b[1], b[2], g, **kw)[:4], [ch, fv, fh]),
        (lambda a, b: cconv.conv_transpose2d(a, b[0], None, 2, 1, (1, 0), 1, (1, 2)),
         lambda a, b, g: (G.conv_transpose2d_input(a.shape, b[0], g, 2, 1, (1, 0), 1, (1, 2)),
                          G.conv_transpose2d_weight(a, b[0].shape, g, 2, 1, (1, 0), 1, (1, 2))),
         [wt]),
        (lambda a, b: cconv.shuffled_grouped_conv2d(a, b[0], 3, **ks),
         lambda a, b, g: G.shuffled_grouped_conv2d_grads(a, b[0], g, 3, **ks)[:2], [wg]),
    ]
    for fwd, bwd, ws in calls:
        g = rng.standard_normal(fwd(x, ws).shape)
        grads = bwd(x, ws, g)
        arrays = [x] + ws
        for ai, a in enumerate(arrays):
            flat = rng.choice(a.size, size=min(a.size, 16), replace=False)
            for idx in zip(*np.unravel_index(flat, a.shape)):
                def loss(v, ai=ai):
                    args = list(arrays)
                    args[ai] = v
                    return float(np.vdot(fwd(args[0], args[1:]), g))
                fd = _fd(loss, a, idx)
                assert abs(fd - grads[ai][idx]) <= 1e-7 * (1 + abs(fd)), (ai, idx)


# ------------------------------------------------------------------ adjoint identities

def _rel_dot_err(a, b, scale):
    return abs(a - b) / max(scale, 1e-300)


@given(case=conv_cases(dtypes=(np.float64,)))
def test_adjoint_identity(case):
    """<conv(x, w), g> = <x, conv_input(g)> = <w, conv_weight(x, g)> to float64 precision."""
    if case.n == 0:
        return
    rng = np.random.default_rng(case.seed)
    nd = case.nd
    x, w, g, *_ = _conv_case_arrays(case, rng)
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation,
              groups=case.groups, padding_mode=case.padding_mode, layout=case.layout)
    y = getattr(cconv, f"conv{nd}d")(x, w, **kw)
    lhs = float(np.vdot(y, g))
    scale = float(np.vdot(np.abs(getattr(cconv, f"conv{nd}d")(np.abs(x), np.abs(w), **kw)),
                          np.abs(g)))
    gx = getattr(G, f"conv{nd}d_input")(x.shape, w, g, **kw)
    gw = getattr(G, f"conv{nd}d_weight")(x, w.shape, g, **kw)
    assert _rel_dot_err(lhs, float(np.vdot(x, gx)), scale) < 1e-13
    assert _rel_dot_err(lhs, float(np.vdot(w, gw)), scale) < 1e-13


@given(case=conv_transpose_cases(dtypes=(np.float64,)))
def test_adjoint_identity_transposed(case):
    if case.n == 0:
        return
    rng = np.random.default_rng(case.seed)
    nd = case.nd
    op = case.extra["output_padding"]
    x = rand(rng, case.x_shape(), np.float64)
    w = rand(rng, (case.c_in, case.c_out // case.groups, *case.kernel), np.float64)
    kw = dict(stride=case.stride, padding=case.padding, output_padding=op, groups=case.groups,
              dilation=case.dilation, layout=case.layout)
    fwd = getattr(cconv, f"conv_transpose{nd}d")
    y = fwd(x, w, **kw)
    g = rng.standard_normal(y.shape)
    lhs = float(np.vdot(y, g))
    scale = float(np.vdot(fwd(np.abs(x), np.abs(w), **kw), np.abs(g)))
    gx = getattr(G, f"conv_transpose{nd}d_input")(x.shape, w, g, **kw)
    gw = getattr(G, f"conv_transpose{nd}d_weight")(x, w.shape, g, **kw)
    assert _rel_dot_err(lhs, float(np.vdot(x, gx)), scale) < 1e-13
    assert _rel_dot_err(lhs, float(np.vdot(w, gw)), scale) < 1e-13


# ------------------------------------------------------------------ determinism

def _determinism_calls(rng, dtype):
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x2, x2l = r(3, 16, 23, 21), r(3, 23, 21, 16)
    w2, wg, wd = r(24, 16, 3, 3), r(24, 2, 3, 3), r(32, 1, 3, 3)
    x1, w1 = r(4, 12, 130), r(10, 12, 5)
    x3, w3 = r(2, 6, 7, 9, 8), r(8, 3, 3, 2, 3)
    xd = r(2, 40, 17, 19)              # depthwise: 40 channels = 2 blocks of 32 float32, 3 of 16 float64
    wdw = r(80, 1, 3, 3)               # channel multiplier 2
    wt = r(16, 6, 4, 4)
    pw = r(20, 80, 1, 1)

    def g_for(y):
        return rng.standard_normal(y.shape).astype(dtype)

    k2 = dict(stride=2, padding=((1, 2), (0, 1)), padding_mode="reflect")
    gy2 = g_for(cconv.conv2d(x2, w2, **k2))
    kl = dict(padding="same", dilation=2, groups=8, layout="NHWC")
    gyl = g_for(cconv.conv2d(x2l, wg, **kl))
    k1 = dict(stride=3, padding=4, dilation=2, padding_mode="circular")
    gy1 = g_for(cconv.conv1d(x1, w1, **k1))
    k3 = dict(padding=1, groups=2, padding_mode="replicate")
    gy3 = g_for(cconv.conv3d(x3, w3, **k3))
    kd = dict(stride=2, padding=1)
    gyd = g_for(cconv.depthwise_conv2d(xd, wdw, **kd))
    gyt = g_for(cconv.conv_transpose2d(x2, wt, None, 2, 1, 1))
    gys = g_for(cconv.separable_conv2d(xd, wdw, pw, padding=1))
    gydd = g_for(cconv.conv2d(x2, wd, padding=1, groups=16))
    w11 = r(20, 8, 1, 1)
    k11 = dict(stride=2, padding=1, groups=2)
    gy11 = g_for(cconv.conv2d(x2, w11, **k11))
    wsg = r(24, 4, 3, 3)
    ksg = dict(groups=4, stride=2, padding=1, shuffle_groups=3, padding_mode="replicate")
    gysg = g_for(cconv.shuffled_grouped_conv2d(x2, wsg, **ksg))
    # channels-last paths of cconv_conv_weight_grad, above its 2^20-MAC serial cutoff so that the
    # threads really split them: depthwise with multiplier 1 (run_gw_dw_cl_, 40 channels: a vector
    # tail in float32) and a 1x1 with x and grad_output exchanged (gw_swap_roles)
    xcl, wcl = r(4, 32, 32, 40), r(40, 1, 3, 3)
    gycl = g_for(cconv.depthwise_conv2d(xcl, wcl, padding=1, layout="NHWC"))
    xsw, wsw = r(4, 16, 16, 128), r(24, 128, 1, 1)
    gysw = g_for(cconv.conv2d(xsw, wsw, layout="NHWC"))
    return {
        "depthwise NHWC weight": lambda: G.depthwise_conv2d_weight(xcl, wcl.shape, gycl, padding=1,
                                                                   layout="NHWC"),
        "1x1 NHWC exchanged weight": lambda: G.conv2d_weight(xsw, wsw.shape, gysw, layout="NHWC"),
        "conv2d input": lambda: G.conv2d_input(x2.shape, w2, gy2, **k2),
        "conv2d weight": lambda: G.conv2d_weight(x2, w2.shape, gy2, **k2),
        "grouped NHWC input": lambda: G.conv2d_input(x2l.shape, wg, gyl, **kl),
        "grouped NHWC weight": lambda: G.conv2d_weight(x2l, wg.shape, gyl, **kl),
        "conv1d input": lambda: G.conv1d_input(x1.shape, w1, gy1, **k1),
        "conv1d weight": lambda: G.conv1d_weight(x1, w1.shape, gy1, **k1),
        "conv3d input": lambda: G.conv3d_input(x3.shape, w3, gy3, **k3),
        "conv3d weight": lambda: G.conv3d_weight(x3, w3.shape, gy3, **k3),
        "depthwise": lambda: G.depthwise_conv2d_grads(xd, wdw, gyd, **kd),
        "depthwise-m2 via conv2d": lambda: G.conv2d_weight(x2, wd.shape, gydd, padding=1,
                                                           groups=16),
        "transposed": lambda: (G.conv_transpose2d_input(x2.shape, wt, gyt, 2, 1, 1),
                               G.conv_transpose2d_weight(x2, wt.shape, gyt, 2, 1, 1)),
        "separable": lambda: G.separable_conv2d_grads(xd, wdw, pw, gys, padding=1),
        "1x1 grouped strided weight": lambda: G.conv2d_weight(x2, w11.shape, gy11, **k11),
        "shuffled grouped": lambda: G.shuffled_grouped_conv2d_grads(x2, wsg, gysg, **ksg),
    }


def _flat(r):
    return r if isinstance(r, np.ndarray) else np.concatenate([a.ravel() for a in r])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_1_and_2_threads_and_repeated_calls(dtype):
    calls = _determinism_calls(np.random.default_rng(11), dtype)
    for name, f in calls.items():
        with num_threads(1):
            r1 = _flat(f())
        with num_threads(2):
            r2 = _flat(f())
            r3 = _flat(f())
        assert r1.dtype == dtype
        assert np.array_equal(r1, r2), f"{name}: 1 vs 2 threads differ"
        assert np.array_equal(r2, r3), f"{name}: repeated calls differ"


# ------------------------------------------------------------------ the C weight-gradient kernel

def _reference_weight_grad(x_cf, w_shape, g_cf, kw):
    """dL/dw by the float64 oracle, channels-first arrays; kw as for cconv."""
    return R.conv_grads(x_cf, np.zeros(w_shape), g_cf, **kw)[1]


def _weight_grad_case(nd, x_shape, w_shape, kw, layout, dtype, seed=0):
    """(x, g in `layout`, the oracle's dL/dw, its scale: the same with |x| and |g|, products per
    element)."""
    rng = np.random.default_rng(seed)
    x_cf = rng.standard_normal(x_shape)
    y = getattr(cconv, f"conv{nd}d")(x_cf, np.zeros(w_shape), **kw)
    g_cf = rng.standard_normal(y.shape)
    expected = _reference_weight_grad(x_cf, w_shape, g_cf, kw)
    scale = _reference_weight_grad(np.abs(x_cf), w_shape, np.abs(g_cf), kw)
    x = np.ascontiguousarray(R.from_channels_first(x_cf, layout), dtype)
    g = np.ascontiguousarray(R.from_channels_first(g_cf, layout), dtype)
    return x, g, expected, scale, g_cf[:, 0].size


# Shapes that reach the blocking of cconv_conv_weight_grad (src/cconv/_c/grad/weight_grad.c): output
# channels just past one and two register tiles, (channel, tap) rows not a multiple of the tile's,
# channel blocks (a group's partial too big for L2) with grad_output packed once for all of them,
# x read in place (unpadded channels-first, row stride > 1), the pair kernel (depthwise, narrow
# groups, one or two output channels per group) in both layouts, 1-D column bands, batch 1 with
# many chunks and split blocks, 3-D, every padding mode, channels-last groups (one band of every
# channel per unit), strides whose kernel reads only some phases (1x1 stride 2: even rows and
# columns only are filled), channels-last 1x1s computed with x and grad_output exchanged.
WEIGHT_GRAD_CASES = [
    (2, (1, 17, 9, 70), (33, 17, 3, 3), dict(padding=1), None),
    (2, (2, 200, 6, 7), (40, 200, 3, 3), dict(padding=1, stride=2), "NHWC"),
    (2, (2, 300, 5, 6), (17, 300, 2, 2), dict(stride=1), None),
    (2, (3, 64, 8, 9), (64, 64, 1, 1), {}, None),
    (2, (2, 12, 11, 10), (24, 1, 3, 3), dict(padding=2, dilation=2, groups=12), "NHWC"),
    (2, (2, 12, 11, 10), (12, 1, 5, 5), dict(padding=2, stride=2, groups=12), None),
    (2, (2, 96, 7, 9), (3, 96, 3, 3), dict(stride=(2, 1)), None),
    (2, (2, 32, 9, 8), (32, 4, 3, 3), dict(padding=1, groups=8, padding_mode="circular"), None),
    (1, (1, 5, 3000), (7, 5, 9), dict(padding=4, stride=2), None),
    (1, (2, 40, 700), (40, 40, 3), dict(padding=2, dilation=2), "NWC"),
    (3, (1, 20, 5, 6, 7), (25, 4, 3, 3, 3), dict(padding=1, groups=5), "NDHWC"),
    (3, (2, 6, 4, 9, 8), (6, 1, 3, 2, 3), dict(padding=1, groups=6, stride=(1, 2, 1)), None),
    (2, (5, 3, 33, 31), (16, 3, 7, 7), dict(stride=2, padding=3), None),
    (2, (2, 16, 10, 12), (16, 16, 3, 3), dict(padding=1, padding_mode="reflect"), "NHWC"),
    (2, (2, 16, 10, 12), (20, 8, 3, 3), dict(padding=2, groups=2, padding_mode="replicate"), None),
    (2, (2, 32, 9, 8), (40, 8, 3, 3), dict(padding=1, groups=4, stride=(1, 2)), "NHWC"),
    (2, (3, 48, 7, 6), (48, 16, 1, 1), dict(groups=3), "NHWC"),
    (2, (2, 40, 9, 11), (24, 40, 1, 1), dict(stride=2), None),
    (2, (2, 24, 9, 11), (20, 24, 1, 1), dict(stride=(2, 3), padding=1), "NHWC"),
    (2, (2, 24, 9, 11), (20, 24, 2, 1), dict(stride=2, dilation=2, padding=1), None),
    # output channels past 64 and 128: 65 and 130 run on 14x2 tiles (fewer padded columns), 97 in
    # float32 on two 6x4 ones (the second partial); the older cases above reach 6x4 in both dtypes
    (2, (2, 20, 6, 7), (65, 20, 3, 3), dict(padding=1), None),
    (2, (2, 8, 5, 6), (130, 8, 1, 1), {}, "NHWC"),
    (2, (2, 6, 5, 6), (97, 6, 2, 2), dict(stride=2), None),
    # channels-last 1x1 with few output channels: x and grad_output exchange roles (grad/weight_grad.c
    # gw_swap_roles), then the result is transposed
    (2, (2, 128, 5, 7), (24, 128, 1, 1), {}, "NHWC"),
    (1, (2, 100, 30), (20, 100, 1), {}, "NWC"),
    (3, (1, 60, 3, 4, 5), (20, 60, 1, 1, 1), {}, "NDHWC"),
    # channels-last 1x1: x read in place (a pixel's channels, stride C_in),
    # whole rows in one run, and 1-D column bands one row at a time
    (2, (2, 300, 5, 7), (60, 300, 1, 1), {}, "NHWC"),
    (1, (2, 70, 300), (64, 70, 1), {}, "NWC"),
    (1, (2, 70, 300), (30, 70, 1), {}, "NWC"),
    (2, (1, 20, 3, 200), (48, 20, 1, 1), {}, "NHWC"),
    (2, (3, 40, 12, 9), (50, 40, 1, 1), {}, "NHWC"),
    # (channel, tap) rows of many L2-sized blocks: one unit a plane, items split by blocks only
    (2, (1, 256, 4, 4), (256, 256, 3, 3), dict(padding=1), None),
    (3, (1, 128, 2, 3, 3), (128, 128, 3, 3, 3), dict(padding=1), "NDHWC"),
    # ... and several units a chunk: each (channel block)'s units in turn, its partial in L2; with
    # one chunk (float32), each block's sum goes from a per-thread partial straight to dw
    (3, (1, 256, 3, 3, 3), (256, 256, 3, 3, 3), dict(padding=1), None),
    (3, (1, 112, 2, 3, 3), (256, 112, 3, 3, 3), dict(padding=1), None),
    # channels-last depthwise, multiplier 1 (run_gw_dw_cl_): 3x3 passes of 2 and 1 vectors (40
    # float64, 19 float32) and a scalar channel tail (40 = 32 + 8 float32, 19), other kernels tap
    # row by tap row (KW = 9: one tap column at a time), padding modes, strides, dilation, 1-D, 3-D
    (2, (2, 40, 9, 11), (40, 1, 3, 3), dict(padding=1, groups=40), "NHWC"),
    (2, (3, 19, 8, 7), (19, 1, 3, 3), dict(padding=1, stride=2, groups=19, padding_mode="reflect"), "NHWC"),
    (2, (2, 33, 10, 12), (33, 1, 5, 5), dict(padding=4, dilation=2, groups=33), "NHWC"),
    (2, (1, 17, 6, 9), (17, 1, 3, 9), dict(padding=4, groups=17, padding_mode="circular"), "NHWC"),
    (1, (2, 24, 50), (24, 1, 7), dict(padding=3, stride=3, groups=24, padding_mode="replicate"), "NWC"),
    (3, (1, 20, 4, 5, 6), (20, 1, 3, 3, 3), dict(padding=1, groups=20), "NDHWC"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,x_shape,w_shape,kw,layout", WEIGHT_GRAD_CASES)
def test_weight_grad_blocking_edges(nd, x_shape, w_shape, kw, layout, dtype, isa):
    x, g, expected, scale, terms = _weight_grad_case(nd, x_shape, w_shape, kw, layout, dtype)
    f = getattr(G, f"conv{nd}d_weight")
    results = []
    for threads in (1, 2, 3):
        with num_threads(threads), use_isa(isa):
            results.append(f(x, w_shape, g, layout=layout, **kw))
    close(results[0], expected, scale, dtype, terms)
    for r in results[1:]:
        assert np.array_equal(r, results[0]), "thread counts differ"


@given(cig=st.integers(1, 40), cog=st.integers(1, 70), groups=st.sampled_from([1, 2, 3]),
       n=st.integers(1, 3), k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 2),
       h=st.integers(1, 12), w=st.integers(1, 40), pad=st.integers(0, 2),
       layout=st.sampled_from([None, "NHWC"]))
def test_weight_grad_random_channels_and_sizes(cig, cog, groups, n, k, s, d, h, w, pad, layout,
                                               isa):
    """Random channel counts around the register tile sizes, tiny and odd images, N = 1."""
    span = d * (k - 1) + 1
    h, w = max(h, span - 2 * pad), max(w, span - 2 * pad)
    kw = dict(stride=s, padding=pad, dilation=d, groups=groups)
    x, g, expected, scale, terms = _weight_grad_case(2, (n, cig * groups, h, w),
                                                     (cog * groups, cig, k, k), kw, layout,
                                                     np.float64, seed=cig * 41 + cog)
    with num_threads(1), use_isa(isa):
        r1 = G.conv2d_weight(x, expected.shape, g, layout=layout, **kw)
    with num_threads(3), use_isa(isa):
        r3 = G.conv2d_weight(x, expected.shape, g, layout=layout, **kw)
    close(r1, expected, scale, np.float64, terms)
    assert np.array_equal(r1, r3)


def test_weight_grad_inf_only_where_it_is_read():
    """Padding columns of the band are never multiplied (0 * inf would give NaN): an Inf in the
    input reaches exactly the taps whose windows read it."""
    x = np.zeros((1, 2, 5, 6))
    x[0, 1, 2, 5] = np.inf
    g = np.ones((1, 3, 5, 6))
    gw = G.conv2d_weight(x, (3, 2, 3, 3), g, padding=1)
    assert not np.isnan(gw).any()
    # x column 5 is read by tap kw at output column 6 - kw: only kw = 1, 2 land inside the output
    assert np.isinf(gw[:, 1, :, 1:]).all() and np.isfinite(gw[:, 1, :, 0]).all()
    assert (gw[:, 0] == 0).all()


# ------------------------------------------------------------------ dtypes and errors

def test_dtypes_follow_the_forward_rule():
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w32 = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    g32 = rng.standard_normal((1, 3, 3, 3)).astype(np.float32)
    assert G.conv2d_input(x32.shape, w32, g32).dtype == np.float32
    assert G.conv2d_weight(x32, w32.shape, g32).dtype == np.float32
    assert G.conv2d_input(x32.shape, w32.astype(np.float64), g32).dtype == np.float64
    assert G.conv2d_weight(x32.astype(np.int64), w32.shape, g32.astype(np.int32)).dtype == np.float64
    assert G.bias(g32.astype(np.float16)).dtype == np.float32
    np.testing.assert_allclose(G.conv2d_weight(x32.astype(np.float16), w32.shape, g32),
                               G.conv2d_weight(x32.astype(np.float16).astype(np.float32),
                                               w32.shape, g32), rtol=0, atol=0)


def test_errors():
    x = np.zeros((1, 4, 6, 6))
    w = np.zeros((2, 4, 3, 3))
    g = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="grad_output has shape"):
        G.conv2d_input(x.shape, w, np.zeros((1, 2, 5, 4)))
    with pytest.raises(ValueError, match="grad_output has shape"):
        G.conv2d_weight(x, w.shape, np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="groups"):
        G.conv2d_weight(x, (2, 4, 3, 3), g, groups=3)
    with pytest.raises(ValueError, match="padding_mode"):
        G.conv2d_input(x.shape, w, g, padding_mode="mirror")
    with pytest.raises(ValueError, match="layout"):
        G.conv2d_input(x.shape, w, g, layout="NCW")
    with pytest.raises(ValueError, match="reflect"):
        G.conv2d_input(x.shape, w, np.zeros((1, 2, 16, 16)), padding=6, padding_mode="reflect")
    with pytest.raises(TypeError):
        G.conv2d_input(x.shape, w.astype(complex), g)
    with pytest.raises(TypeError, match="weight_shape"):
        G.conv2d_weight(x, None, g)
    with pytest.raises(ValueError, match="grad_output"):
        G.bias(np.zeros(3))
    with pytest.raises(ValueError, match="grad_output has shape"):
        G.conv_transpose2d_input((1, 4, 3, 3), np.zeros((4, 2, 3, 3)), np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="groups"):
        G.channel_shuffle_input(np.zeros((1, 6, 2, 2)), 4)
    with pytest.raises(ValueError, match="depthwise_weight"):
        G.separable_conv2d_grads(x, np.zeros((4, 2, 3, 3)), np.zeros((2, 4, 1, 1)), g)
    with pytest.raises(ValueError, match="grad_output has shape"):
        G.shuffled_grouped_conv2d_grads(x, np.zeros((4, 2, 3, 3)), np.zeros((1, 4, 4, 5)), 2)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        G.shuffled_grouped_conv2d_grads(x, np.zeros((4, 2, 3, 3)), np.zeros((1, 4, 4, 4)), 2,
                                        shuffle_groups=3)


def test_batch_zero_gives_zero_gradients():
    x = np.zeros((0, 4, 6, 6), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    g = np.zeros((0, 2, 4, 4), np.float32)
    assert G.conv2d_input(x.shape, w, g, groups=2).shape == x.shape
    gw = G.conv2d_weight(x, w.shape, g, groups=2)
    assert gw.shape == w.shape and gw.dtype == np.float32 and not gw.any()
    assert G.bias(g).shape == (2,)
