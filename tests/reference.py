"""Naive float64 NumPy oracle for every forward convolution variant in cconv.

Nothing here imports cconv: this module is an independent statement of what
each public function computes, written for clarity rather than speed.  Every
result is float64.  Arrays are channels-first, ``(N, C, *spatial)``; weights
use the PyTorch layouts:

* convolution: ``(C_out, C_in / groups, *kernel)``
* transposed convolution: ``(C_in, C_out / groups, *kernel)``

"Convolution" means cross-correlation (no kernel flip), as in deep learning
libraries::

    y[n, o, p] = b[o] + sum_{c, k} x_pad[n, g(o) * Cg + c, p * s + k * d] * w[o, c, k]

Transposed convolution is defined by scattering (the adjoint of the above)::

    y_full[n, o, i * s + k * d] += x[n, c, i] * w[c, o, k]

after which ``padding`` is cropped from both ends of ``y_full`` and
``output_padding`` extra positions are kept at the end.

Gradients (``*_grad``, ``*_grads``) are the adjoints of these definitions
written out directly, the oracle of ``cconv.grad`` without any autograd library.

The padding normaliser implements the forms the public API accepts:
an int, a per-dimension tuple, per-side pairs ``((before, after), ...)``,
``"valid"`` and ``"same"`` (TensorFlow rule: output = ceil(input / stride),
the odd pixel of padding goes at the end).
"""

from __future__ import annotations

import itertools
import math
from numbers import Integral

import numpy as np

__all__ = [
    "CHANNELS_LAST",
    "LAYOUTS",
    "conv_nd",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose_nd",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_output_size",
    "conv_transpose_output_size",
    "depthwise_conv2d",
    "separable_conv2d",
    "spatially_separable_conv2d",
    "flattened_conv2d",
    "flattened_weight",
    "channel_shuffle",
    "normalize_tuple",
    "normalize_padding",
    "to_channels_first",
    "from_channels_first",
    "magnitude",
    "assert_conv_close",
    "conv_nd_input_grad",
    "conv_nd_weight_grad",
    "conv_transpose_nd_input_grad",
    "conv_transpose_nd_weight_grad",
    "bias_grad",
    "conv_grads",
    "conv_transpose_grads",
    "depthwise_conv2d_grads",
    "separable_conv2d_grads",
    "spatially_separable_conv2d_grads",
    "flattened_conv2d_grads",
    "channel_shuffle_grad",
    "shuffled_grouped_conv2d_grads",
]

# layout string -> number of spatial dims, and whether channels are last
LAYOUTS = {
    "NCW": (1, False),
    "NWC": (1, True),
    "NCHW": (2, False),
    "NHWC": (2, True),
    "NCDHW": (3, False),
    "NDHWC": (3, True),
}
CHANNELS_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
CHANNELS_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}

_NP_PAD_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


# ---------------------------------------------------------------- arithmetic
def conv_output_size(i, k, s=1, p=0, d=1, p_after=None):
    """o = floor((i + p_before + p_after - d(k-1) - 1) / s) + 1 (p_after defaults to p)."""
    if p_after is None:
        p_after = p
    return (i + p + p_after - d * (k - 1) - 1) // s + 1


def conv_transpose_output_size(i, k, s=1, p=0, a=0, d=1, p_after=None):
    """o' = s(i-1) + a + d(k-1) + 1 - p_before - p_after (p_after defaults to p)."""
    if p_after is None:
        p_after = p
    return s * (i - 1) + a + d * (k - 1) + 1 - p - p_after


# ------------------------------------------------------------- normalising
def normalize_tuple(value, nd, name="value"):
    """An int or a length-``nd`` sequence of ints -> tuple of ``nd`` Python ints."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return (int(value),) * nd
    value = tuple(value)
    if len(value) != nd or not all(isinstance(v, Integral) for v in value):
        raise ValueError(f"{name} must be an int or {nd} ints, got {value!r}")
    return tuple(int(v) for v in value)


def normalize_padding(padding, nd, in_sizes=None, kernel=None, stride=1, dilation=1):
    """Return ``(before, after)``, two tuples of ``nd`` ints.

    ``padding`` may be an int, a tuple of ``nd`` ints (symmetric per dimension),
    a tuple of ``nd`` pairs ``(before, after)``, ``"valid"`` or ``"same"``.
    ``"same"`` needs the input sizes, kernel sizes, stride and dilation: per
    dimension ``out = ceil(i / s)``, ``total = max((out - 1) * s + d * (k - 1) + 1 - i, 0)``,
    ``before = total // 2``, ``after = total - before``.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "same":
            in_sizes = normalize_tuple(in_sizes, nd, "in_sizes")
            kernel = normalize_tuple(kernel, nd, "kernel")
            stride = normalize_tuple(stride, nd, "stride")
            dilation = normalize_tuple(dilation, nd, "dilation")
            before, after = [], []
            for i, k, s, d in zip(in_sizes, kernel, stride, dilation):
                out = -(-i // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - i, 0)
                before.append(total // 2)
                after.append(total - before[-1])
            return tuple(before), tuple(after)
        raise ValueError(f"unknown padding string {padding!r}")
    if isinstance(padding, Integral):
        return (int(padding),) * nd, (int(padding),) * nd
    padding = tuple(padding)
    if len(padding) != nd:
        raise ValueError(f"padding needs {nd} entries, got {padding!r}")
    if all(isinstance(p, Integral) for p in padding):
        return tuple(int(p) for p in padding), tuple(int(p) for p in padding)
    before, after = [], []
    for pair in padding:
        b, a = pair
        before.append(int(b))
        after.append(int(a))
    return tuple(before), tuple(after)


# ---------------------------------------------------------------- layouts
def to_channels_first(x, layout=None):
    """Channels-last (NWC, NHWC, NDHWC) -> channels-first view; channels-first unchanged."""
    x = np.asarray(x)
    if layout is None or not LAYOUTS[layout][1]:
        return x
    return np.moveaxis(x, -1, 1)


def from_channels_first(y, layout=None):
    """Channels-first result -> the given layout (inverse of :func:`to_channels_first`)."""
    y = np.asarray(y)
    if layout is None or not LAYOUTS[layout][1]:
        return y
    return np.moveaxis(y, 1, -1)


# ------------------------------------------------------------ convolution
def _f64(a):
    return np.asarray(a).astype(np.float64, copy=False)


def conv_nd(
    x,
    w,
    bias=None,
    stride=1,
    pad_before=0,
    pad_after=None,
    dilation=1,
    groups=1,
    padding_mode="zeros",
):
    """Grouped, strided, dilated N-d cross-correlation of channels-first ``x``.

    ``x`` is ``(N, C_in, *S)``, ``w`` is ``(C_out, C_in / groups, *K)``.  The
    input is padded first (``np.pad`` with the mode matching ``padding_mode``),
    then each kernel tap contributes a strided slice of the padded input
    times the tap's ``(C_out_g, C_in_g)`` matrix.
    """
    x = _f64(x)
    w = _f64(w)
    nd = x.ndim - 2
    assert nd >= 1 and w.ndim == nd + 2
    stride = normalize_tuple(stride, nd, "stride")
    dilation = normalize_tuple(dilation, nd, "dilation")
    pad_before = normalize_tuple(pad_before, nd, "pad_before")
    pad_after = pad_before if pad_after is None else normalize_tuple(pad_after, nd, "pad_after")
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    kernel = w.shape[2:]
    assert c_in % groups == 0 and c_out % groups == 0
    cig, cog = c_in // groups, c_out // groups
    assert w.shape[1] == cig, (w.shape, c_in, groups)

    widths = [(0, 0), (0, 0)] + list(zip(pad_before, pad_after))
    if any(b or a for b, a in zip(pad_before, pad_after)):
        xp = np.pad(x, widths, mode=_NP_PAD_MODE[padding_mode])
    else:
        xp = x
    out_sizes = [
        (xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd)
    ]
    if not all(o >= 1 for o in out_sizes):  # callers treat a rejected shape as ValueError
        raise ValueError(f"empty output size {out_sizes}")
    y = np.zeros((n, c_out, *out_sizes), dtype=np.float64)
    for tap in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilation, out_sizes, stride)
        )
        patch = xp[(slice(None), slice(None)) + sl]  # (N, C_in, *O)
        for g in range(groups):
            xg = patch[:, g * cig : (g + 1) * cig]
            wg = w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap]  # (cog, cig)
            # (N, cig, *O) x (cog, cig) -> (N, cog, *O). einsum's own loops, not BLAS: OpenBLAS
            # returns 0, not NaN, for Inf * 0 when the reduction has length 1.
            y[:, g * cog : (g + 1) * cog] += np.einsum("nc...,oc->no...", xg, wg)
    if bias is not None:
        y += _f64(bias).reshape((1, c_out) + (1,) * nd)
    return y


def _conv_public(x, w, bias, stride, padding, dilation, groups, padding_mode, layout, nd):
    """Apply the public conv{1,2,3}d argument forms, then :func:`conv_nd`."""
    xc = to_channels_first(x, layout)
    stride_t = normalize_tuple(stride, nd, "stride")
    dil_t = normalize_tuple(dilation, nd, "dilation")
    before, after = normalize_padding(
        padding, nd, xc.shape[2:], np.shape(w)[2:], stride_t, dil_t
    )
    y = conv_nd(xc, w, bias, stride_t, before, after, dil_t, groups, padding_mode)
    return from_channels_first(y, layout)


def conv1d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", layout=None):
    return _conv_public(x, w, bias, stride, padding, dilation, groups, padding_mode, layout, 1)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", layout=None):
    return _conv_public(x, w, bias, stride, padding, dilation, groups, padding_mode, layout, 2)


def conv3d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", layout=None):
    return _conv_public(x, w, bias, stride, padding, dilation, groups, padding_mode, layout, 3)


# ------------------------------------------------------- transposed conv
def conv_transpose_nd(
    x,
    w,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    padding_after=None,
):
    """Transposed convolution by its scatter-add definition.

    ``x`` is ``(N, C_in, *I)``, ``w`` is ``(C_in, C_out / groups, *K)``::

        y_full[n, g*Cog + o, i*s + k*d] += x[n, g*Cig + c, i] * w[g*Cig + c, o, k]

    ``y_full`` has ``(I-1)*s + d*(K-1) + 1 + output_padding`` positions per
    dimension (the ``output_padding`` extra ones only receive the bias); the
    result drops ``padding`` positions from the start and ``padding_after``
    (default ``padding``) from the end.
    """
    x = _f64(x)
    w = _f64(w)
    nd = x.ndim - 2
    stride = normalize_tuple(stride, nd, "stride")
    dilation = normalize_tuple(dilation, nd, "dilation")
    padding = normalize_tuple(padding, nd, "padding")
    padding_after = padding if padding_after is None else normalize_tuple(padding_after, nd, "padding_after")
    output_padding = normalize_tuple(output_padding, nd, "output_padding")
    n, c_in = x.shape[:2]
    in_sizes = x.shape[2:]
    kernel = w.shape[2:]
    assert w.shape[0] == c_in and c_in % groups == 0
    cig, cog = c_in // groups, w.shape[1]
    c_out = cog * groups
    full = [
        (i - 1) * s + d * (k - 1) + 1 + a
        for i, s, d, k, a in zip(in_sizes, stride, dilation, kernel, output_padding)
    ]
    y = np.zeros((n, c_out, *full), dtype=np.float64)
    for tap in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(
            slice(t * d, t * d + (i - 1) * s + 1, s)
            for t, d, i, s in zip(tap, dilation, in_sizes, stride)
        )
        for g in range(groups):
            xg = x[:, g * cig : (g + 1) * cig]  # (N, cig, *I)
            wg = w[(slice(g * cig, (g + 1) * cig), slice(None)) + tap]  # (cig, cog)
            # (N, cig, *I) x (cig, cog) -> (N, cog, *I), einsum for IEEE Inf * 0 (see conv_nd)
            y[(slice(None), slice(g * cog, (g + 1) * cog)) + sl] += np.einsum("nc...,co->no...", xg, wg)
    crop = tuple(slice(b, f - a) for b, a, f in zip(padding, padding_after, full))
    y = y[(slice(None), slice(None)) + crop]
    assert all(sz >= 1 for sz in y.shape[2:]), y.shape
    if bias is not None:
        y = y + _f64(bias).reshape((1, c_out) + (1,) * nd)
    return np.ascontiguousarray(y)


def _convt_public(x, w, bias, stride, padding, output_padding, groups, dilation, layout, nd):
    xc = to_channels_first(x, layout)
    before, after = normalize_padding(padding, nd)
    y = conv_transpose_nd(xc, w, bias, stride, before, output_padding, groups, dilation, after)
    return from_channels_first(y, layout)


def conv_transpose1d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, layout=None):
    return _convt_public(x, w, bias, stride, padding, output_padding, groups, dilation, layout, 1)


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, layout=None):
    return _convt_public(x, w, bias, stride, padding, output_padding, groups, dilation, layout, 2)


def conv_transpose3d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, layout=None):
    return _convt_public(x, w, bias, stride, padding, output_padding, groups, dilation, layout, 3)


# ------------------------------------------------------------- variants
def depthwise_conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, layout=None):
    """Depthwise: weight ``(C*m, 1, kh, kw)``; output channel ``o`` reads input channel ``o // m``."""
    xc = to_channels_first(x, layout)
    c = xc.shape[1]
    return conv2d(x, w, bias, stride, padding, dilation, groups=c, layout=layout)


def separable_conv2d(x, dw, pw, bias=None, stride=1, padding=0, dilation=1, layout=None):
    """Depthwise ``dw`` ``(C*m, 1, kh, kw)`` then pointwise ``pw`` ``(C_out, C*m, 1, 1)``, bias last."""
    xc = to_channels_first(x, layout)
    mid = depthwise_conv2d(xc, dw, None, stride, padding, dilation)
    y = conv_nd(mid, pw, bias)
    return from_channels_first(y, layout)


def spatially_separable_conv2d(x, vw, hw, bias=None, stride=1, padding=0, dilation=1, groups=1, layout=None):
    """Vertical ``(C_mid, C_in/g, kh, 1)`` pass on h, then horizontal ``(C_out, C_mid/g, 1, kw)`` on w.

    ``stride``, ``padding`` (any form) and ``dilation`` are resolved as for a
    2-D kernel ``(kh, kw)``; the h parts go to the vertical pass and the w parts
    to the horizontal pass; the bias is added after the horizontal pass.
    """
    xc = to_channels_first(x, layout)
    kh, kw = np.shape(vw)[2], np.shape(hw)[3]
    assert np.shape(vw)[3] == 1 and np.shape(hw)[2] == 1
    sh, sw = normalize_tuple(stride, 2, "stride")
    dh, dw = normalize_tuple(dilation, 2, "dilation")
    before, after = normalize_padding(padding, 2, xc.shape[2:], (kh, kw), (sh, sw), (dh, dw))
    mid = conv_nd(xc, vw, None, (sh, 1), (before[0], 0), (after[0], 0), (dh, 1), groups)
    y = conv_nd(mid, hw, bias, (1, sw), (0, before[1]), (0, after[1]), (1, dw), groups)
    return from_channels_first(y, layout)


def flattened_weight(channel_w, vertical_w, horizontal_w):
    """Rank-1 filters ``W[o, c, i, j] = channel[o, c] * vertical[o, i] * horizontal[o, j]``."""
    ch, v, h = _f64(channel_w), _f64(vertical_w), _f64(horizontal_w)
    return ch[:, :, None, None] * v[:, None, :, None] * h[:, None, None, :]


def flattened_conv2d(x, channel_w, vertical_w, horizontal_w, bias=None, stride=1, padding=0, dilation=1, layout=None):
    """The three 1-D stages in turn: ``channel_w`` ``(C_out, C_in)`` across channels, then per output
    channel ``vertical_w`` ``(C_out, kh)`` on h and ``horizontal_w`` ``(C_out, kw)`` on w, bias last.

    With finite values this is conv2d with the rank-1 weight of :func:`flattened_weight`; with
    Inf/NaN the stages decide where NaN appears (``Inf * 0`` inside the rank-1 product would not).
    """
    xc = to_channels_first(x, layout)
    ch, v, h = _f64(channel_w), _f64(vertical_w), _f64(horizontal_w)
    cout = ch.shape[0]
    mid = conv_nd(xc, ch[:, :, None, None], None)
    y = spatially_separable_conv2d(mid, v[:, None, :, None], h[:, None, None, :], bias, stride, padding,
                                   dilation, groups=cout)
    return from_channels_first(y, layout)


def channel_shuffle(x, groups, layout=None):
    """ShuffleNet shuffle: view channels as ``(groups, C / groups)``, transpose, flatten."""
    xc = to_channels_first(np.asarray(x), layout)
    n, c = xc.shape[:2]
    rest = xc.shape[2:]
    y = xc.reshape(n, groups, c // groups, *rest).swapaxes(1, 2).reshape(n, c, *rest)
    return from_channels_first(np.ascontiguousarray(y), layout)


# ------------------------------------------------------------ comparison
def magnitude(fn, *arrays, **kwargs):
    """``fn`` applied to ``|a|`` for every array argument (``None`` passes through).

    For a bilinear op this is the elementwise bound ``sum |x| |w|`` (+ ``|b|``)
    on every term that enters an output, the natural scale of its rounding error.
    """
    return fn(*(None if a is None else np.abs(_f64(a)) for a in arrays), **kwargs)


def assert_conv_close(actual, expected, scale, dtype, terms=1, msg=""):
    """Assert ``actual`` matches the float64 ``expected`` within a stated bound.

    Bound, per element::

        |actual - expected| <= tol * (scale + tiny)

    where ``scale = conv(|x|, |w|) + |b|`` (see :func:`magnitude`), ``terms``
    is the number of products summed into one output (``K = C_in/g * prod(k)``)
    and

    * float64: ``tol = 1e-10``  (a summation of K terms errs by at most ~K*eps64*scale)
    * float32: ``tol = 1e-5 * sqrt(K)`` (K*eps32 worst case ~ 1.2e-7*K; the
      sqrt(K) law with ~80x slack covers blocked/FMA summation orders)

    NaN and infinities must appear exactly where ``expected`` has them (same sign).
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    assert actual.shape == expected.shape, f"{msg} shape {actual.shape} != {expected.shape}"
    dt = np.dtype(dtype)
    if dt == np.float32:
        tol = 1e-5 * math.sqrt(max(terms, 1))
    elif dt == np.float64:
        tol = 1e-10
    else:
        raise AssertionError(f"unexpected dtype {dt}")
    a = actual.astype(np.float64)
    nan_e = np.isnan(expected)
    assert np.array_equal(np.isnan(a), nan_e), f"{msg} NaN positions differ"
    inf_e = np.isinf(expected)
    assert np.array_equal(np.isinf(a), inf_e), f"{msg} Inf positions differ"
    assert np.array_equal(np.sign(a[inf_e]), np.sign(expected[inf_e])), f"{msg} Inf signs differ"
    fin = np.isfinite(expected)
    err = np.abs(a[fin] - expected[fin])
    bound = tol * (np.nan_to_num(scale[fin], nan=0.0, posinf=0.0) + np.finfo(dt).tiny)
    if err.size and not np.all(err <= bound):
        i = int(np.argmax(err / bound))
        raise AssertionError(
            f"{msg} mismatch: max err {err[i]:.3e} > bound {bound[i]:.3e} "
            f"(tol {tol:.2e}, dtype {dt}, {int(np.sum(err > bound))}/{err.size} elements)"
        )


# ------------------------------------------------------------ gradients
# The adjoints of the forward definitions above, written out directly (gather becomes scatter and
# vice versa) so that gradients have a float64 oracle without any autograd library.  Every
# function takes channels-first arrays; the ``*_grads`` wrappers take the public argument forms.
def _pad_sources(size, before, after, mode):
    """For each position of an axis padded by ``np.pad``, the unpadded index it copies (-1: zero)."""
    idx = np.arange(size)
    if mode == "zeros":
        return np.pad(idx, (before, after), constant_values=-1)
    return np.pad(idx, (before, after), mode=_NP_PAD_MODE[mode])


def _unpad(gp, sizes, before, after, mode):
    """Adjoint of the padding: every padded position's gradient is added to the element it copies."""
    g = gp
    for axis, (size, b, a) in enumerate(zip(sizes, before, after), start=2):
        src = _pad_sources(size, b, a, mode)
        keep = src >= 0
        out = np.zeros(g.shape[:axis] + (size,) + g.shape[axis + 1 :])
        np.add.at(np.moveaxis(out, axis, 0), src[keep], np.moveaxis(g, axis, 0)[keep])
        g = out
    return g


def _conv_taps(kernel, dilation, out_sizes, stride):
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield tap, tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                         for t, d, o, s in zip(tap, dilation, out_sizes, stride))


def conv_nd_input_grad(x_shape, w, gy, stride=1, pad_before=0, pad_after=None, dilation=1,
                       groups=1, padding_mode="zeros"):
    """dL/dx of L = <conv_nd(x, w, ...), gy>: scatter gy through every tap, then fold the padding."""
    w, gy = _f64(w), _f64(gy)
    nd = len(x_shape) - 2
    stride, dilation = normalize_tuple(stride, nd), normalize_tuple(dilation, nd)
    before = normalize_tuple(pad_before, nd)
    after = before if pad_after is None else normalize_tuple(pad_after, nd)
    cig, cog = w.shape[1], w.shape[0] // groups
    gxp = np.zeros((x_shape[0], x_shape[1], *(i + b + a for i, b, a in zip(x_shape[2:], before, after))))
    for tap, sl in _conv_taps(w.shape[2:], dilation, gy.shape[2:], stride):
        for g in range(groups):
            wg = w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap]  # (cog, cig)
            gxp[(slice(None), slice(g * cig, (g + 1) * cig)) + sl] += np.einsum(
                "no...,oc->nc...", gy[:, g * cog : (g + 1) * cog], wg)
    return _unpad(gxp, x_shape[2:], before, after, padding_mode)


def conv_nd_weight_grad(x, w_shape, gy, stride=1, pad_before=0, pad_after=None, dilation=1,
                        groups=1, padding_mode="zeros"):
    """dL/dw of L = <conv_nd(x, w, ...), gy>: each tap correlates the padded x with gy."""
    x, gy = _f64(x), _f64(gy)
    nd = x.ndim - 2
    stride, dilation = normalize_tuple(stride, nd), normalize_tuple(dilation, nd)
    before = normalize_tuple(pad_before, nd)
    after = before if pad_after is None else normalize_tuple(pad_after, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after)), mode=_NP_PAD_MODE[padding_mode])
    cig, cog = w_shape[1], w_shape[0] // groups
    gw = np.zeros(w_shape)
    sp = "xyz"[:nd]  # the spatial axes, summed (einsum, not BLAS: see conv_nd)
    for tap, sl in _conv_taps(w_shape[2:], dilation, gy.shape[2:], stride):
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            gw[(slice(g * cog, (g + 1) * cog), slice(None)) + tap] = np.einsum(
                f"no{sp},nc{sp}->oc", gy[:, g * cog : (g + 1) * cog], patch[:, g * cig : (g + 1) * cig])
    return gw


def _convt_full(x_shape, w_shape, stride, padding, output_padding, groups, dilation, padding_after,
                gy):
    """gy placed into the uncropped output of :func:`conv_transpose_nd` (zeros where cropped)."""
    nd = len(x_shape) - 2
    stride, dilation = normalize_tuple(stride, nd), normalize_tuple(dilation, nd)
    padding = normalize_tuple(padding, nd)
    padding_after = padding if padding_after is None else normalize_tuple(padding_after, nd)
    output_padding = normalize_tuple(output_padding, nd)
    full = [(i - 1) * s + d * (k - 1) + 1 + a for i, s, d, k, a in
            zip(x_shape[2:], stride, dilation, w_shape[2:], output_padding)]
    gyf = np.zeros((x_shape[0], w_shape[1] * groups, *full))
    gyf[(slice(None), slice(None)) + tuple(slice(b, f - a) for b, a, f in
                                           zip(padding, padding_after, full))] = _f64(gy)
    return gyf, list(_conv_taps(w_shape[2:], dilation, x_shape[2:], stride))


def conv_transpose_nd_input_grad(x_shape, w, gy, stride=1, padding=0, output_padding=0, groups=1,
                                 dilation=1, padding_after=None):
    """dL/dx of L = <conv_transpose_nd(x, w, ...), gy>: gather gy at every tap."""
    w = _f64(w)
    gyf, taps = _convt_full(x_shape, w.shape, stride, padding, output_padding, groups, dilation,
                            padding_after, gy)
    cig, cog = w.shape[0] // groups, w.shape[1]
    gx = np.zeros(x_shape)
    for tap, sl in taps:
        for g in range(groups):
            wg = w[(slice(g * cig, (g + 1) * cig), slice(None)) + tap]  # (cig, cog)
            part = gyf[(slice(None), slice(g * cog, (g + 1) * cog)) + sl]  # (N, cog, *I)
            gx[:, g * cig : (g + 1) * cig] += np.einsum("no...,co->nc...", part, wg)
    return gx


def conv_transpose_nd_weight_grad(x, w_shape, gy, stride=1, padding=0, output_padding=0, groups=1,
                                  dilation=1, padding_after=None):
    """dL/dw of L = <conv_transpose_nd(x, w, ...), gy>."""
    x = _f64(x)
    gyf, taps = _convt_full(x.shape, w_shape, stride, padding, output_padding, groups, dilation,
                            padding_after, gy)
    cig, cog = w_shape[0] // groups, w_shape[1]
    gw = np.zeros(w_shape)
    sp = "xyz"[:x.ndim - 2]  # the spatial axes, summed (einsum, not BLAS: see conv_nd)
    for tap, sl in taps:
        part = gyf[(slice(None), slice(None)) + sl]
        for g in range(groups):
            gw[(slice(g * cig, (g + 1) * cig), slice(None)) + tap] = np.einsum(
                f"nc{sp},no{sp}->co", x[:, g * cig : (g + 1) * cig], part[:, g * cog : (g + 1) * cog])
    return gw


def bias_grad(gy, layout=None):
    """dL/db: grad_output summed over everything but the channel axis."""
    gy = to_channels_first(_f64(gy), layout)
    return gy.sum(axis=(0, *range(2, gy.ndim)))


def conv_grads(x, w, gy, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
               layout=None):
    """(dL/dx, dL/dw, dL/db) of conv{1,2,3}d with the public argument forms; dL/dx in ``layout``."""
    xc, gc = to_channels_first(x, layout), to_channels_first(gy, layout)
    nd = xc.ndim - 2
    stride, dilation = normalize_tuple(stride, nd), normalize_tuple(dilation, nd)
    before, after = normalize_padding(padding, nd, xc.shape[2:], np.shape(w)[2:], stride, dilation)
    args = (gc, stride, before, after, dilation, groups, padding_mode)
    gx = conv_nd_input_grad(xc.shape, w, *args)
    return (from_channels_first(gx, layout), conv_nd_weight_grad(xc, np.shape(w), *args),
            bias_grad(gc))


def conv_transpose_grads(x, w, gy, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                         layout=None):
    """(dL/dx, dL/dw, dL/db) of conv_transpose{1,2,3}d with the public argument forms."""
    xc, gc = to_channels_first(x, layout), to_channels_first(gy, layout)
    before, after = normalize_padding(padding, xc.ndim - 2)
    args = (gc, stride, before, output_padding, groups, dilation, after)
    gx = conv_transpose_nd_input_grad(xc.shape, w, *args)
    return (from_channels_first(gx, layout), conv_transpose_nd_weight_grad(xc, np.shape(w), *args),
            bias_grad(gc))


def depthwise_conv2d_grads(x, w, gy, stride=1, padding=0, dilation=1, layout=None):
    c = to_channels_first(x, layout).shape[1]
    return conv_grads(x, w, gy, stride, padding, dilation, groups=c, layout=layout)


def separable_conv2d_grads(x, dw, pw, gy, stride=1, padding=0, dilation=1, layout=None):
    """(dL/dx, dL/d(depthwise weight), dL/d(pointwise weight), dL/db)."""
    xc, gc = to_channels_first(x, layout), to_channels_first(gy, layout)
    mid = depthwise_conv2d(xc, dw, None, stride, padding, dilation)
    gmid, gpw, gb = conv_grads(mid, pw, gc)
    gx, gdw, _ = depthwise_conv2d_grads(xc, dw, gmid, stride, padding, dilation)
    return from_channels_first(gx, layout), gdw, gpw, gb


def spatially_separable_conv2d_grads(x, vw, hw, gy, stride=1, padding=0, dilation=1, groups=1,
                                     layout=None):
    """(dL/dx, dL/d(vertical weight), dL/d(horizontal weight), dL/db)."""
    xc, gc = to_channels_first(x, layout), to_channels_first(gy, layout)
    kh, kw = np.shape(vw)[2], np.shape(hw)[3]
    sh, sw = normalize_tuple(stride, 2, "stride")
    dh, dw = normalize_tuple(dilation, 2, "dilation")
    before, after = normalize_padding(padding, 2, xc.shape[2:], (kh, kw), (sh, sw), (dh, dw))
    first = ((sh, 1), (before[0], 0), (after[0], 0), (dh, 1), groups)
    second = ((1, sw), (0, before[1]), (0, after[1]), (1, dw), groups)
    mid = conv_nd(xc, vw, None, *first)
    gmid = conv_nd_input_grad(mid.shape, hw, gc, *second)
    ghw = conv_nd_weight_grad(mid, np.shape(hw), gc, *second)
    gx = conv_nd_input_grad(xc.shape, vw, gmid, *first)
    gvw = conv_nd_weight_grad(xc, np.shape(vw), gmid, *first)
    return from_channels_first(gx, layout), gvw, ghw, bias_grad(gc)


def flattened_conv2d_grads(x, channel_w, vertical_w, horizontal_w, gy, stride=1, padding=0,
                           dilation=1, layout=None):
    """(dL/dx, dL/d(channel), dL/d(vertical), dL/d(horizontal), dL/db), by the chain rule through
    the rank-1 weight of :func:`flattened_weight`."""
    ch, v, h = _f64(channel_w), _f64(vertical_w), _f64(horizontal_w)
    gx, gw, gb = conv_grads(x, flattened_weight(ch, v, h), gy, stride, padding, dilation,
                            layout=layout)
    return (gx, np.einsum("ocij,oi,oj->oc", gw, v, h), np.einsum("ocij,oc,oj->oi", gw, ch, h),
            np.einsum("ocij,oc,oi->oj", gw, ch, v), gb)


def channel_shuffle_grad(gy, groups, layout=None):
    """dL/dx of L = <channel_shuffle(x, groups), gy>: output channel j is input channel perm[j]."""
    gc = to_channels_first(_f64(gy), layout)
    c = gc.shape[1]
    perm = channel_shuffle(np.arange(c).reshape(1, c), groups)[0]
    gx = np.zeros_like(gc)
    gx[:, perm] = gc
    return from_channels_first(gx, layout)


def shuffled_grouped_conv2d_grads(x, w, gy, groups, stride=1, padding=0, dilation=1,
                                  shuffle_groups=None, padding_mode="zeros", layout=None):
    """(dL/dx, dL/dw, dL/db) of a grouped conv2d (bias included) followed by a channel shuffle."""
    g = channel_shuffle_grad(gy, groups if shuffle_groups is None else shuffle_groups, layout)
    return conv_grads(x, w, g, stride, padding, dilation, groups, padding_mode, layout)
