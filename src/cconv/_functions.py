"""The public convolution functions. Each one: arrays -> Geometry (cconv._api) -> plan -> run."""
from __future__ import annotations

import dataclasses
import functools
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar, Union, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _api, _registry
from ._core import Plan as _CPlan, channel_shuffle_into as _shuffle_into, flattened_into as _flattened_into
from ._api import check_bias, contiguous, conv_geometry, result_dtype

# Annotations of the public signatures (kept simple: the functions check their arguments).
Size = Union[int, Sequence[int]]
Padding = Union[int, str, Sequence[Any]]
Array = NDArray[Any]
_F = TypeVar("_F", bound=Callable[..., Any])
# Typed, so that the annotated parameters it converts are arrays in the bodies below.
as_array = cast(Callable[..., Array], _api.as_array)

# Algorithms with which the planner chooses per stage: these keep the fused kernels of composite
# functions. Any other algorithm= runs a composite function's stages unfused, each stage planned
# with that algorithm exactly as conv2d(algorithm=...) plans it.
_CHOOSING = ("auto", "exact")


def _public(fn: _F) -> _F:
    """The entry of every public function, the one place that handles unbatched x: (C, *spatial)
    runs as a batch of one, and the result (and out=, if given) is unbatched."""
    op = _registry.OPERATIONS[fn.__name__]

    @functools.wraps(fn)
    def entry(x, *args, **kwargs):
        x = as_array("x", x)
        if op.batched_ndim(x.shape, kwargs.get("layout")) == x.ndim:
            return fn(x, *args, **kwargs)
        out = kwargs.get("out")
        if isinstance(out, np.ndarray):
            if out.ndim != x.ndim:
                raise ValueError(f"out must have the unbatched shape ({x.ndim}-D, like x), got "
                                 f"shape {out.shape}")
            kwargs["out"] = out[None]
        y = fn(x[None], *args, **kwargs)
        return out if out is not None else y[0]

    return cast(_F, entry)


def _check_algorithm(algorithm):
    if algorithm not in _api.ALGORITHMS:
        raise ValueError(f"algorithm must be one of {_api.ALGORITHMS}, got {algorithm!r}")


def _execute(plan, x, y, target, dtype):
    """Runs a C plan on x (any strides, cast to dtype) into target, then y (see output_array)."""
    if y.size:
        plan.execute(np.ascontiguousarray(x, dtype=dtype), target)
        if target is not y:
            y[...] = target
    return y


def run_convolution(geom, x, weight, bias, dtype, out=None, inputs=(), algorithm="auto"):
    """Runs one convolution (a Geometry); x, weight, bias are arrays (any strides), cast to dtype
    here. The internal entry point for cconv.grad."""
    y, target = _api.output_array(out, geom.out_shape, dtype, inputs)
    # The plan is built even for an empty batch, so its checks (algorithm=) still run.
    plan = _CPlan(geom.desc(algorithm), contiguous(weight, dtype), contiguous(bias, dtype))
    return _execute(plan, x, y, target, dtype)


def _conv(nd, transposed, x, weight, bias, stride, padding, dilation, groups, padding_mode,
          output_padding, layout, out, algorithm):
    _check_algorithm(algorithm)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    dtype = result_dtype(x, weight, bias)
    geom = conv_geometry(nd, x.shape, weight.shape, stride, padding, dilation, groups,
                         padding_mode=padding_mode, layout=layout, transposed=transposed,
                         output_padding=output_padding)
    check_bias(bias, geom.out_channels)
    return run_convolution(geom, x, weight, bias, dtype, out, (x, weight, bias), algorithm)


@_public
def conv1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto") -> Array:
    """1-D convolution (cross-correlation) like torch.nn.functional.conv1d.

    x (N, C_in, L) or layout="NWC" (N, L, C_in); weight (C_out, C_in/groups, k)."""
    return _conv(1, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm)


@_public
def conv2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto") -> Array:
    """2-D convolution (cross-correlation) like torch.nn.functional.conv2d.

    x (N, C_in, H, W) or layout="NHWC"; weight (C_out, C_in/groups, kh, kw); padding: int,
    (ph, pw), ((top, bottom), (left, right)), "valid" or "same"; padding_mode: zeros, reflect,
    replicate, circular; algorithm: auto, gemm, depthwise (one input channel per group),
    grouped (2-8 input channels per group: the depthwise kernels), reference."""
    return _conv(2, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm)


@_public
def conv3d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto") -> Array:
    """3-D convolution like torch.nn.functional.conv3d; x (N, C, D, H, W) or layout="NDHWC"."""
    return _conv(3, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm)


@_public
def conv_transpose1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto") -> Array:
    """Transposed 1-D convolution (the adjoint of conv1d); weight (C_in, C_out/groups, k)."""
    return _conv(1, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm)


@_public
def conv_transpose2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto") -> Array:
    """Transposed 2-D convolution like torch.nn.functional.conv_transpose2d.

    Output size per dimension: s(i-1) - 2p + d(k-1) + output_padding + 1."""
    return _conv(2, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm)


@_public
def conv_transpose3d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto") -> Array:
    """Transposed 3-D convolution; weight (C_in, C_out/groups, kd, kh, kw)."""
    return _conv(3, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm)


# ------------------------------------------------------------------ composite variants

def _channels(x_shape, layout):
    last = _api.channels_last(layout, 2)
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D ({'NHWC' if last else 'NCHW'}), got shape {tuple(x_shape)}")
    return x_shape[-1] if last else x_shape[1]


def depthwise_stages(x_shape, w_shape, stride=1, padding=0, dilation=1, layout=None,
                     padding_mode="zeros"):
    c = _channels(x_shape, layout)
    if len(w_shape) != 4 or w_shape[1] != 1 or w_shape[0] % max(c, 1):
        raise ValueError(f"weight must have shape (C*m, 1, kh, kw) with C={c} input channels, "
                         f"got shape {tuple(w_shape)}")
    return [conv_geometry(2, x_shape, w_shape, stride, padding, dilation, c,
                          padding_mode=padding_mode, layout=layout)]


def separable_stages(x_shape, dw_shape, pw_shape, stride=1, padding=0, dilation=1, layout=None,
                     padding_mode="zeros"):
    try:
        (dw,) = depthwise_stages(x_shape, dw_shape, stride, padding, dilation, layout, padding_mode)
    except ValueError as e:
        raise ValueError(str(e).replace("weight", "depthwise_weight")) from None
    if len(pw_shape) != 4 or tuple(pw_shape[2:]) != (1, 1):
        raise ValueError(f"pointwise_weight must have shape (C_out, C*m, 1, 1), got {tuple(pw_shape)}")
    pw = conv_geometry(2, dw.out_shape, pw_shape, layout=layout, x_name="depthwise output",
                       w_name="pointwise_weight")
    return [dw, pw]


def _split_hw(stride, padding, dilation, in_size, kernel):
    """Resolves 2-D stride/padding/dilation once, so the two 1-D passes of a factorised filter
    pad exactly as the full k_h x k_w filter would."""
    stride = _api.int_tuple("stride", stride, 2, 1)
    dilation = _api.int_tuple("dilation", dilation, 2, 1)
    pb, pa = _api.normalize_padding(padding, 2, in_size, kernel, stride, dilation)
    vert = dict(stride=(stride[0], 1), padding=((pb[0], pa[0]), (0, 0)), dilation=(dilation[0], 1))
    horz = dict(stride=(1, stride[1]), padding=((0, 0), (pb[1], pa[1])), dilation=(1, dilation[1]))
    return vert, horz


def _spatial(x_shape, layout):
    return tuple(x_shape[1:3]) if _api.channels_last(layout, 2) else tuple(x_shape[2:])


def spatially_separable_stages(x_shape, v_shape, h_shape, stride=1, padding=0, dilation=1,
                               groups=1, layout=None, padding_mode="zeros"):
    _channels(x_shape, layout)
    if len(v_shape) != 4 or v_shape[3] != 1:
        raise ValueError(f"vertical_weight must have shape (C_mid, C_in/groups, kh, 1), got {tuple(v_shape)}")
    if len(h_shape) != 4 or h_shape[2] != 1:
        raise ValueError(f"horizontal_weight must have shape (C_out, C_mid/groups, 1, kw), got {tuple(h_shape)}")
    vert, horz = _split_hw(stride, padding, dilation, _spatial(x_shape, layout), (v_shape[2], h_shape[3]))
    # Each pass pads only its own axis; index-mapping padding modes commute with a convolution
    # along the other axis, so this equals the full filter on the padded input.
    g1 = conv_geometry(2, x_shape, v_shape, groups=groups, padding_mode=padding_mode, layout=layout,
                       w_name="vertical_weight", **vert)
    g2 = conv_geometry(2, g1.out_shape, h_shape, groups=groups, padding_mode=padding_mode,
                       layout=layout, x_name="vertical output", w_name="horizontal_weight", **horz)
    return [g1, g2]


def flattened_stages(x_shape, ch_shape, v_shape, h_shape, stride=1, padding=0, dilation=1,
                     layout=None, padding_mode="zeros"):
    _channels(x_shape, layout)
    if len(ch_shape) != 2 or len(v_shape) != 2 or len(h_shape) != 2 or not (
            ch_shape[0] == v_shape[0] == h_shape[0]):
        raise ValueError(f"channel_weight (C_out, C_in), vertical_weight (C_out, kh) and "
                         f"horizontal_weight (C_out, kw) must share C_out, got {tuple(ch_shape)}, "
                         f"{tuple(v_shape)}, {tuple(h_shape)}")
    cout = ch_shape[0]
    vert, horz = _split_hw(stride, padding, dilation, _spatial(x_shape, layout), (v_shape[1], h_shape[1]))
    g1 = conv_geometry(2, x_shape, (cout, ch_shape[1], 1, 1), layout=layout, w_name="channel_weight")
    g2 = conv_geometry(2, g1.out_shape, (cout, 1, v_shape[1], 1), groups=cout,
                       padding_mode=padding_mode, layout=layout, x_name="channel output",
                       w_name="vertical_weight", **vert)
    g3 = conv_geometry(2, g2.out_shape, (cout, 1, 1, h_shape[1]), groups=cout,
                       padding_mode=padding_mode, layout=layout, x_name="vertical output",
                       w_name="horizontal_weight", **horz)
    return [g1, g2, g3]


def _run_stages(stages, x, weights, bias, out, inputs, algorithm):
    dtype = result_dtype(x, *weights, bias)
    check_bias(bias, stages[-1].out_channels)
    y = x
    for i, (geom, w) in enumerate(zip(stages, weights)):
        last = i == len(stages) - 1
        y = run_convolution(geom, y, w, bias if last else None, dtype, out if last else None,
                            inputs, algorithm)
    return y


@_public
def depthwise_conv2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, dilation: Size = 1, *,
                     padding_mode: str = "zeros", layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto") -> Array:
    """Depthwise 2-D convolution: each input channel convolved with its own m filters.

    weight (C*m, 1, kh, kw); output channel c*m + j comes from input channel c."""
    _check_algorithm(algorithm)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    stages = depthwise_stages(x.shape, weight.shape, stride, padding, dilation, layout, padding_mode)
    return _run_stages(stages, x, [weight], bias, out, (x, weight, bias), algorithm)


@_public
def separable_conv2d(x: ArrayLike, depthwise_weight: ArrayLike, pointwise_weight: ArrayLike,
                     bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                     dilation: Size = 1, *, padding_mode: str = "zeros",
                     layout: Optional[str] = None, out: Optional[Array] = None,
                     algorithm: str = "auto", fused: bool = True) -> Array:
    """Depthwise separable convolution (MobileNet, Xception): depthwise k x k, then 1x1.

    depthwise_weight (C*m, 1, kh, kw), pointwise_weight (C_out, C*m, 1, 1), bias (C_out).
    fused=True (the default; channels-first only) computes both stages band by band of output rows
    in cache, so the (N, C*m, OH, OW) intermediate is never allocated: less memory traffic and a
    lower peak memory. fused=False runs the two stages one after the other (same result up to
    rounding: the 1x1 sums the channels in the same order, but with different FMA contraction)."""
    _check_algorithm(algorithm)
    x = as_array("x", x)
    dw, pw, bias = (as_array("depthwise_weight", depthwise_weight),
                    as_array("pointwise_weight", pointwise_weight), as_array("bias", bias, optional=True))
    stages = separable_stages(x.shape, dw.shape, pw.shape, stride, padding, dilation, layout,
                              padding_mode)
    if not fused or stages[0].channels_last or algorithm not in _CHOOSING:
        return _run_stages(stages, x, [dw, pw], bias, out, (x, dw, pw, bias), algorithm)
    # Fused: the same two stages (describe() lists them), run band by band in cache.
    dtype = result_dtype(x, dw, pw, bias)
    check_bias(bias, stages[1].out_channels)
    y, target = _api.output_array(out, stages[1].out_shape, dtype, (x, dw, pw, bias))
    if y.size == 0:
        return y
    plan = _CPlan(stages[0].desc("depthwise"), contiguous(dw, dtype), None)
    plan.execute_separable(np.ascontiguousarray(x, dtype=dtype),
                           contiguous(pw, dtype).reshape(pw.shape[0], -1), contiguous(bias, dtype), target)
    if target is not y:
        y[...] = target
    return y


# Chunked fusion (spatially separable; flattened channels-last): images per chunk so that a
# chunk's intermediate (8 MiB, at least one image) stays in L3 (32 MiB here) between the two
# passes. Not smaller: both passes are compute-bound, so cache residency buys little time, while
# every chunk ends each pass with idle threads (N32 Inception 7x1 + 1x7: 1.2 MB chunks 3% slower
# than staged, 0.6 MB 13%). Fixed, not scaled by the thread count, so the chunks (and the
# results) do not depend on it.
_CHUNK_BYTES = 8 << 20


@_public
def spatially_separable_conv2d(x: ArrayLike, vertical_weight: ArrayLike,
                               horizontal_weight: ArrayLike, bias: Optional[ArrayLike] = None,
                               stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
                               groups: int = 1, *, padding_mode: str = "zeros",
                               layout: Optional[str] = None, out: Optional[Array] = None,
                               algorithm: str = "auto", fused: bool = True) -> Array:
    """k_h x 1 convolution then 1 x k_w convolution (e.g. Sobel = [1,2,1]^T x [-1,0,1]).

    stride/padding/dilation given per (h, w) apply to the vertical pass on h, the horizontal on w.
    fused=True (the default, both layouts) runs the two passes a chunk of images at a time, the
    chunk's intermediate (8 MiB, at least one image) still in cache when the horizontal pass reads
    it: a batch whose (N, C_mid, OH, W) intermediate is larger never allocates it whole.
    fused=False runs the passes one after the other over the whole batch (the same kernels on
    other slices of the batch: the results are bitwise equal)."""
    _check_algorithm(algorithm)
    x = as_array("x", x)
    v, h, bias = (as_array("vertical_weight", vertical_weight),
                  as_array("horizontal_weight", horizontal_weight), as_array("bias", bias, optional=True))
    stages = spatially_separable_stages(x.shape, v.shape, h.shape, stride, padding, dilation,
                                        groups, layout, padding_mode)
    inputs = (x, v, h, bias)
    if not fused or algorithm not in _CHOOSING:
        return _run_stages(stages, x, [v, h], bias, out, inputs, algorithm)
    return _run_chunked(stages, x, [v, h], bias, out, inputs, algorithm)


def _run_chunked(stages, x, weights, bias, out, inputs, algorithm):
    """Two convolution stages (either layout: batch first) run a chunk of images at a time into
    slices of the output, through one reused chunk-sized intermediate (see _CHUNK_BYTES)."""
    dtype = result_dtype(*inputs)
    check_bias(bias, stages[1].out_channels)
    y, target = _api.output_array(out, stages[1].out_shape, dtype, inputs)
    n = x.shape[0]
    mid_image = int(np.prod(stages[0].out_shape[1:])) * dtype.itemsize
    if y.size == 0 or mid_image == 0:
        return _run_stages(stages, x, weights, bias, out, inputs, algorithm)  # nothing to chunk
    nchunks = -(-n * mid_image // _CHUNK_BYTES)
    nb = -(-n // nchunks)  # even chunks: at most two chunk sizes, so at most four plans
    w1, w2, b = contiguous(weights[0], dtype), contiguous(weights[1], dtype), contiguous(bias, dtype)
    plans = {}
    xc = np.ascontiguousarray(x, dtype=dtype)
    mid = np.empty((nb,) + stages[0].out_shape[1:], dtype)
    for n0 in range(0, n, nb):
        c = min(nb, n - n0)
        if c not in plans:
            g1, g2 = (dataclasses.replace(g, batch=c) for g in stages)
            plans[c] = (_CPlan(g1.desc(algorithm), w1, None), _CPlan(g2.desc(algorithm), w2, b))
        p1, p2 = plans[c]
        p2.execute(p1.execute(xc[n0:n0 + c], mid[:c]), target[n0:n0 + c])
    if target is not y:
        y[...] = target
    return y


@_public
def flattened_conv2d(x: ArrayLike, channel_weight: ArrayLike, vertical_weight: ArrayLike,
                     horizontal_weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, dilation: Size = 1, *,
                     padding_mode: str = "zeros", layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto",
                     fused: bool = True) -> Array:
    """Flattened convolution (arXiv 1412.5474): 1x1 across channels, then a vertical and a
    horizontal 1-D filter per output channel. With finite values it equals conv2d with the rank-1
    filters W[o, c, i, j] = channel[o, c] * vertical[o, i] * horizontal[o, j] (zero padding); with
    Inf or NaN the three stages in turn define the result.

    fused=True (the default) runs the 1x1 and then one depthwise pass with the kh x kw filters
    vertical[o, i] * horizontal[o, j] (products rounded once to the dtype): channels-first band
    by band of output rows in cache, so no (N, C_out, H, W) intermediate is allocated;
    channels-last a chunk of images at a time, like spatially_separable_conv2d. fused=False runs
    the three stages one after the other (same result up to rounding)."""
    _check_algorithm(algorithm)
    x = as_array("x", x)
    ch, v, h, bias = (as_array("channel_weight", channel_weight),
                      as_array("vertical_weight", vertical_weight),
                      as_array("horizontal_weight", horizontal_weight), as_array("bias", bias, optional=True))
    stages = flattened_stages(x.shape, ch.shape, v.shape, h.shape, stride, padding, dilation, layout,
                              padding_mode)
    cout = ch.shape[0]
    inputs = (x, ch, v, h, bias)
    # The fused pass multiplies vertical * horizontal before it meets the data; with an Inf or NaN
    # about, that moves NaNs (Inf * 0 in the product, not in the stages), so such calls run the
    # stages. A sum is finite iff every element is, bar overflow (which just takes the stages too).
    if not fused or algorithm not in _CHOOSING or not all(np.isfinite(np.sum(a)) for a in (x, ch, v, h) if a.size):
        weights = [ch.reshape(cout, -1, 1, 1), v.reshape(cout, 1, -1, 1), h.reshape(cout, 1, 1, -1)]
        return _run_stages(stages, x, weights, bias, out, inputs, algorithm)
    dtype = result_dtype(*inputs)
    vert, horz = stages[1], stages[2]
    dw = conv_geometry(2, stages[0].out_shape, (cout, 1, v.shape[1], h.shape[1]),
                       (vert.stride[0], horz.stride[1]),
                       ((vert.pad_before[0], vert.pad_after[0]), (horz.pad_before[1], horz.pad_after[1])),
                       (vert.dilation[0], horz.dilation[1]), cout, padding_mode=padding_mode,
                       layout=layout)
    k = (v.astype(np.float64)[:, :, None] * h.astype(np.float64)[:, None, :]).astype(dtype)
    # The 1x1, then the one depthwise pass, a chunk of images at a time: channels-last, and for
    # the padding modes other than zeros, which the banded kernel below does not implement.
    if stages[0].channels_last or padding_mode != "zeros":
        return _run_chunked([stages[0], dw], x, [ch.reshape(cout, -1, 1, 1), k[:, None]], bias, out,
                            inputs, algorithm)
    check_bias(bias, cout)
    y, target = _api.output_array(out, horz.out_shape, dtype, inputs)
    if y.size == 0:
        return y
    _flattened_into(dw.desc(algorithm), np.ascontiguousarray(k).reshape(cout, 1, *k.shape[1:]),
                    contiguous(bias, dtype), contiguous(ch, dtype), np.ascontiguousarray(x, dtype=dtype),
                    target)
    if target is not y:
        y[...] = target
    return y


def shuffle_stage(x_shape, groups, layout=None):
    x_shape = tuple(x_shape)
    if len(x_shape) < 3:
        raise ValueError(f"x must have batch, channel and spatial dimensions (at least 3-D, as "
                         f"torch.channel_shuffle), got shape {x_shape}")
    last = False
    if layout is not None:
        nd = len(x_shape) - 2
        if nd not in _api.LAYOUTS:
            raise ValueError(f"layout {layout!r} needs a 3-D to 5-D x, got shape {x_shape}")
        last = _api.channels_last(layout, nd)
    if not _api._is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c = x_shape[-1] if last else x_shape[1]
    if c % groups:
        raise ValueError(f"groups={groups} must divide the {c} channels of x (shape {x_shape})")
    return _api.ShuffleStage(x_shape, int(groups), last)


def shuffle_stages(x_shape, groups, layout=None):
    return [shuffle_stage(x_shape, groups, layout)]


@_public
def channel_shuffle(x: ArrayLike, groups: int, *, layout: Optional[str] = None,
                    out: Optional[Array] = None) -> Array:
    """ShuffleNet channel shuffle, same result as torch.nn.functional.channel_shuffle: channel
    g*(C/groups) + j moves to j*groups + g. Float arrays use the C kernel; other numeric dtypes
    are permuted exactly with NumPy."""
    x = as_array("x", x)
    st = shuffle_stage(x.shape, groups, layout)
    y, target = _api.output_array(out, x.shape, x.dtype, (x,))  # a shuffle keeps the dtype
    if x.dtype not in (np.float32, np.float64):
        axis = x.ndim - 1 if st.channels_last else 1
        c = x.shape[axis]
        split = x.reshape(x.shape[:axis] + (st.groups, c // st.groups) + x.shape[axis + 1:])
        swapped = np.swapaxes(split, axis, axis + 1)
        target.reshape(swapped.shape)[...] = swapped  # target is contiguous: a view
    else:
        _shuffle_into(np.ascontiguousarray(x), target, st.groups, st.channels_last)
    if target is not y:
        y[...] = target
    return y


def shuffled_grouped_stages(x_shape, w_shape, groups, stride=1, padding=0, dilation=1,
                            shuffle_groups=None, padding_mode="zeros", layout=None):
    conv = conv_geometry(2, x_shape, w_shape, stride, padding, dilation, groups,
                         padding_mode=padding_mode, layout=layout)
    return [conv, shuffle_stage(conv.out_shape, groups if shuffle_groups is None else shuffle_groups,
                                layout)]


@_public
def shuffled_grouped_conv2d(x: ArrayLike, weight: ArrayLike, groups: int,
                            bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                            dilation: Size = 1, *, shuffle_groups: Optional[int] = None,
                            padding_mode: str = "zeros", layout: Optional[str] = None,
                            out: Optional[Array] = None, algorithm: str = "auto") -> Array:
    """ShuffleNet's grouped convolution followed by a channel shuffle, in one call:
    channel_shuffle(conv2d(x, weight, bias, groups=groups, ...), shuffle_groups) with
    shuffle_groups defaulting to groups. Channels-first, the output channels are written directly
    in shuffled order (no second pass over memory) by the depthwise, grouped and GEMM algorithms;
    channels-last and Winograd plans run the two steps one after another."""
    _check_algorithm(algorithm)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    conv, shuf = shuffled_grouped_stages(x.shape, weight.shape, groups, stride, padding, dilation,
                                         shuffle_groups, padding_mode, layout)
    dtype = result_dtype(x, weight, bias)
    check_bias(bias, conv.out_channels)
    plan = _CPlan(conv.desc(algorithm), contiguous(weight, dtype), contiguous(bias, dtype))
    y, target = _api.output_array(out, conv.out_shape, dtype, (x, weight, bias))
    if y.size == 0:
        return y
    xc = np.ascontiguousarray(x, dtype=dtype)
    if plan.algorithm in ("depthwise", "grouped", "gemm") and not conv.channels_last:
        plan.execute_shuffled(xc, target, shuf.groups)
    else:
        tmp = plan.execute(xc, np.empty(conv.out_shape, dtype))
        _shuffle_into(tmp, target, shuf.groups, shuf.channels_last)
    if target is not y:
        y[...] = target
    return y


# ------------------------------------------------------------------ shapes only

def conv_stages(nd, transposed, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros", layout=None, output_padding=0):
    """The stage builder of conv{nd}d / conv_transpose{nd}d (see cconv._registry)."""
    return [conv_geometry(nd, x_shape, w_shape, stride, padding, dilation, groups,
                          padding_mode=padding_mode, layout=layout, transposed=transposed,
                          output_padding=output_padding)]


describe = _registry.describe


# ------------------------------------------------------------------ reusable plans

class ConvPlan:
    """A convolution planned once for one input shape: weights packed, algorithm chosen.

    `plan(x)` runs it; `plan.algorithm` tells what was chosen. Thread-safe: one plan may run from
    several threads at once.

    The batch size is free: x may have any batch size; a size other than the planned one gets its
    own C plan (same algorithm, made on first use from the plan's private copy of the weights,
    the last few kept). The dtype is not: the plan computes in `plan.dtype`, and x whose dtype
    would promote the result beyond it (float64 into a float32 plan) raises TypeError rather than
    being rounded silently, as torch refuses a float64 input to a float32 layer. x of a dtype
    that promotes to the plan's (float32 or float16 into a float64 plan) is converted."""

    _MAX_EXTRA_BATCH_SIZES = 4  # C plans kept for batch sizes other than the planned one

    def __init__(self, geom, weight, bias, dtype, algorithm):
        self.geometry = geom
        self.dtype = dtype
        w, b = contiguous(weight, dtype), contiguous(bias, dtype)
        self._lossy = _api.get_allow_lossy()  # plans keep the setting they were made with
        self._plan = _CPlan(geom.desc(algorithm), w, b)
        # Private copies (the caller may change its arrays), for the plans of other batch sizes.
        self._weight = w.copy() if np.may_share_memory(w, weight) else w
        self._bias = b.copy() if b is not None and np.may_share_memory(b, bias) else b
        self._plans = {}  # other batch sizes -> C plan, in the order made
        self._lock = threading.Lock()

    def _plan_for(self, batch):
        """(geometry, C plan) for x with `batch` images; the planned algorithm either way."""
        if batch == self.geometry.batch:
            return self.geometry, self._plan
        with self._lock:
            plan = self._plans.get(batch)
        g = dataclasses.replace(self.geometry, batch=batch)
        if plan is None:
            plan = _CPlan(g.desc(self.algorithm, self._lossy), self._weight, self._bias)
            with self._lock:
                if len(self._plans) >= self._MAX_EXTRA_BATCH_SIZES:  # drop the first made
                    del self._plans[next(iter(self._plans))]
                self._plans[batch] = plan
        return g, plan

    @property
    def algorithm(self):
        return self._plan.algorithm

    @property
    def out_shape(self):
        return self.geometry.out_shape

    @property
    def weight_bytes(self):
        return self._plan.weight_bytes

    @property
    def workspace_bytes(self):
        return self._plan.workspace_bytes

    def __call__(self, x, *, out=None):
        x = as_array("x", x)
        planned = self.geometry.x_shape
        if x.ndim != len(planned) or x.shape[1:] != planned[1:]:
            raise ValueError(f"x has shape {x.shape}, but this plan was made for {planned} "
                             f"(any batch size, the other dimensions as planned)")
        wider = result_dtype(x, np.empty(0, self.dtype))
        if wider != self.dtype:
            raise TypeError(f"x has dtype {x.dtype}, but this plan computes in {self.dtype}: pass "
                            f"x.astype(np.{self.dtype}) to compute in {self.dtype}, or make the "
                            f"plan with dtype=np.{wider} (a plan never rounds its input to a "
                            f"narrower dtype)")
        g, plan = self._plan_for(x.shape[0])
        y, target = _api.output_array(out, g.out_shape, self.dtype, (x,))
        return _execute(plan, x, y, target, self.dtype)

    def __repr__(self):
        g = self.geometry
        return (f"ConvPlan({'transposed ' if g.transposed else ''}{g.nd}-D, x {g.x_shape} -> "
                f"{g.out_shape}, {self.dtype}, algorithm={self.algorithm!r})")


def _plan(nd, transposed, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
          output_padding, layout, dtype, algorithm):
    _check_algorithm(algorithm)
    weight, bias = as_array("weight", weight), as_array("bias", bias, optional=True)
    dtype = result_dtype(weight, bias) if dtype is None else result_dtype(np.empty(0, dtype))
    geom = conv_geometry(nd, x_shape, weight.shape, stride, padding, dilation, groups,
                         padding_mode=padding_mode, layout=layout, transposed=transposed,
                         output_padding=output_padding)
    check_bias(bias, geom.out_channels)
    return ConvPlan(geom, weight, bias, dtype, algorithm)


def plan_conv1d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv1d on inputs of shape x_shape (dtype defaults to the weight's)."""
    return _plan(1, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, dtype, algorithm)


def plan_conv2d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv2d: `p = plan_conv2d(x.shape, w); y = p(x)`."""
    return _plan(2, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, dtype, algorithm)


def plan_conv3d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv3d."""
    return _plan(3, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, dtype, algorithm)


def plan_conv_transpose1d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose1d."""
    return _plan(1, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, dtype, algorithm)


def plan_conv_transpose2d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose2d."""
    return _plan(2, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, dtype, algorithm)


def plan_conv_transpose3d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose3d."""
    return _plan(3, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, dtype, algorithm)
