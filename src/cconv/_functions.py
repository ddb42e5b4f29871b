"""The public convolution functions. Each one: arrays -> Geometry (cconv._geometry) -> plan -> run."""
from __future__ import annotations

import functools
import math
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar, Union, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _geometry, _registry
from ._core import Plan as _CPlan, channel_shuffle_into as _shuffle_into, flattened_into as _flattened_into
from ._geometry import activation_bounds, check_bias, contiguous, conv_geometry, result_dtype

# Annotations of the public signatures (kept simple: the functions check their arguments).
Size = Union[int, Sequence[int]]
Padding = Union[int, str, Sequence[Any]]
Activation = Union[None, str, Sequence[Optional[float]]]
Array = NDArray[Any]
_F = TypeVar("_F", bound=Callable[..., Any])
# Typed, so that the annotated parameters it converts are arrays in the bodies below.
as_array = cast(Callable[..., Array], _geometry.as_array)

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
    if algorithm not in _geometry.ALGORITHMS:
        raise ValueError(f"algorithm must be one of {_geometry.ALGORITHMS}, got {algorithm!r}")


def _execute(plan, x, y, target, dtype):
    """Runs a C plan on x (any strides, cast to dtype) into target, then y (see output_array)."""
    if y.size:
        plan.execute(np.ascontiguousarray(x, dtype=dtype), target)
        if target is not y:
            y[...] = target
    return y


def run_convolution(geom, x, weight, bias, dtype, out=None, inputs=(), algorithm="auto", act=None):
    """Runs one convolution (a Geometry); x, weight, bias are arrays (any strides), cast to dtype
    here; act: activation bounds (activation_bounds) fused into its stores. The internal entry
    point for cconv.grad."""
    y, target = _geometry.output_array(out, geom.out_shape, dtype, inputs)
    # The plan is built even for an empty batch, so its checks (algorithm=) still run.
    plan = _CPlan(geom.desc(algorithm, activation=act), contiguous(weight, dtype), contiguous(bias, dtype))
    return _execute(plan, x, y, target, dtype)


def _conv(nd, transposed, x, weight, bias, stride, padding, dilation, groups, padding_mode,
          output_padding, layout, out, algorithm, activation):
    _check_algorithm(algorithm)
    act = activation_bounds(activation)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    dtype = result_dtype(x, weight, bias)
    geom = conv_geometry(nd, x.shape, weight.shape, stride, padding, dilation, groups,
                         padding_mode=padding_mode, layout=layout, transposed=transposed,
                         output_padding=output_padding)
    check_bias(bias, geom.out_channels)
    return run_convolution(geom, x, weight, bias, dtype, out, (x, weight, bias), algorithm, act)


@_public
def conv1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto", activation: Activation = None) -> Array:
    """1-D convolution (cross-correlation) like torch.nn.functional.conv1d.

    The 1-D case of :func:`conv2d`: each filter slides along the signal and the products are
    summed, the kernel not flipped.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, L)``
        Input; ``(N, L, C_in)`` with ``layout="NWC"``. An unbatched ``(C_in, L)`` input gives
        an unbatched result.
    weight : array_like, shape ``(C_out, C_in / groups, k)``
        Filters.
    bias : array_like, shape ``(C_out,)``, optional
        Default None (no bias).
    stride : int or (int,), optional
        Step between output positions. Default 1.
    padding : int, (int,), ((int, int),), "valid" or "same", optional
        Padding per side, or ``((before, after),)``. Default 0.
    dilation : int or (int,), optional
        Spacing between kernel taps. Default 1.
    groups : int, optional
        Number of independent channel groups; divides ``C_in`` and ``C_out``. Default 1.
    padding_mode : {"zeros", "reflect", "replicate", "circular", "symmetric"}, optional
        See :func:`conv2d`. Default "zeros".
    layout : {None, "NCW", "NWC"}, optional
        Default None (``"NCW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into. Default None.
    algorithm : {"auto", "exact", "gemm", "depthwise", "grouped", "reference"}, optional
        See :func:`conv2d` (Winograd is 2-D and 3-D only). Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OL)``
        ``(N, OL, C_out)`` with ``layout="NWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        Inconsistent shapes, a kernel larger than the padded input, an unknown option or an
        unusable `out`, as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, conv_transpose1d, plan_conv1d, cconv.grad.conv1d_input, cconv.grad.conv1d_weight

    Notes
    -----
    ``y[n, o, i] = bias[o] + sum_{c, p} weight[o, c, p] * x_pad[n, (o // G) * (C_in / groups) + c,
    i*s + p*d]`` with ``G = C_out / groups``, and
    ``OL = floor((L + pad_before + pad_after - d * (k - 1) - 1) / s) + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    >>> cconv.conv1d(x, np.array([[[1.0, 0.0, -1.0]]]))
    array([[[-2., -2., -2.]]])
    >>> cconv.conv1d(x, np.array([[[1.0, 0.0, -1.0]]]), padding=1, padding_mode="replicate")
    array([[[-1., -2., -2., -2., -1.]]])
    >>> cconv.conv1d(np.ones((2, 4, 100)), np.ones((6, 2, 5)), stride=2, groups=2).shape
    (2, 6, 48)
    """
    return _conv(1, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm, activation)


@_public
def conv2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto", activation: Activation = None) -> Array:
    """2-D convolution (cross-correlation) like torch.nn.functional.conv2d.

    Slides each filter over the (padded) input and sums the products, without flipping the
    kernel. Any stride, padding, dilation and groups; channels-first or -last layout.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        Input; ``(N, H, W, C_in)`` with ``layout="NHWC"``. An unbatched ``(C_in, H, W)``
        (channels-last ``(H, W, C_in)``) input gives an unbatched result.
    weight : array_like, shape ``(C_out, C_in / groups, kh, kw)``
        Filters (the same order for either layout).
    bias : array_like, shape ``(C_out,)``, optional
        Added to every output position of each channel. Default None (no bias).
    stride : int or (int, int), optional
        Step between output positions. Default 1.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", optional
        Padding per side for both dimensions, per dimension ``(ph, pw)``, or per side
        ``((top, bottom), (left, right))``. ``"valid"`` is 0; ``"same"`` gives
        ``ceil(H / stride)`` outputs (TensorFlow's rule: an odd pixel of padding goes at the
        end). Default 0.
    dilation : int or (int, int), optional
        Spacing between kernel taps. Default 1.
    groups : int, optional
        Split the channels into `groups` independent convolutions; must divide ``C_in`` and
        ``C_out``. ``groups == C_in`` is a depthwise convolution. Default 1.
    padding_mode : {"zeros", "reflect", "replicate", "circular", "symmetric"}, optional
        Values of the padded border: zeros; the mirror image without the edge pixel (NumPy's
        "reflect", SciPy's "mirror"); the edge pixel repeated; the input wrapped around; the
        mirror image including the edge pixel (NumPy's "symmetric", SciPy's "reflect").
        Default "zeros".
    layout : {None, "NCHW", "NHWC"}, optional
        Memory layout of `x` and of the result. Default None (``"NCHW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into (any strides; must not overlap an
        input). Default None (a new array).
    algorithm : {"auto", "exact", "gemm", "winograd", "depthwise", "grouped", "reference"}, optional
        ``"auto"`` (default) picks the fastest kernel for the layer; ``"exact"`` does the same
        among algorithms that round like direct convolution (never Winograd). The others force
        one kernel: ``"depthwise"`` needs one input channel per group, ``"grouped"`` at most 8,
        ``"winograd"`` a 3x3 kernel with stride 1 and one group; ``"reference"`` is the naive
        loop.
    activation : {None, "relu", "relu6"} or (min, max), optional
        Applied to every output after the bias, in the kernels' stores (while the output tile is
        in registers or L1: no extra pass over the output): ``"relu"`` is ``max(y, 0)``
        (``torch.relu``), ``"relu6"`` is ``min(max(y, 0), 6)`` (``F.relu6``), a pair
        ``(min, max)`` of real numbers clamps (``torch.clamp``; either may be None: unbounded).
        NaN stays NaN and -0.0 stays -0.0, as in PyTorch; the result is bitwise the unfused
        one clamped. The gradients (:mod:`cconv.grad`) take no activation: they differentiate
        the convolution alone. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        The convolution (``(N, OH, OW, C_out)`` with ``layout="NHWC"``; `out` if given). Its
        dtype is the promotion of the inputs' dtypes: float32 stays float32, integers compute
        in float64, float16 in float32.

    Raises
    ------
    ValueError
        If the shapes disagree (dimensions, channels, `groups`, `bias`), the dilated kernel
        exceeds the padded input, an option is out of range or unknown, a forced `algorithm`
        cannot run this layer (or is Winograd while lossy algorithms are forbidden), or `out`
        has the wrong shape or dtype, is read-only or overlaps an input.
    TypeError
        If an array is not real numeric, an integer argument is not an int, or `out` is not
        an ndarray.

    See Also
    --------
    conv1d, conv3d, conv_transpose2d, depthwise_conv2d, plan_conv2d
    cconv.grad.conv2d_input, cconv.grad.conv2d_weight : The backward pass.
    cconv.analysis.output_shape : The output shape without computing.

    Notes
    -----
    With stride ``s``, dilation ``d``, ``G = C_out / groups`` filters per group and ``x_pad``
    the input padded by `padding` and `padding_mode`::

        y[n, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q]
                        * x_pad[n, (o // G) * (C_in / groups) + c, i*s_h + p*d_h, j*s_w + q*d_w]

    and the output size per dimension is
    ``OH = floor((H + pad_top + pad_bottom - d_h * (kh - 1) - 1) / s_h) + 1``.

    ``algorithm="auto"`` may choose Winograd F(4x4, 3x3) for 3x3 layers with stride 1, one group
    and at least 16 input and output channels. Its float32 error is about ten times that of
    direct convolution (a few 1e-6 relative to ``sum |x * w|``; float64: about 1e-15). To
    forbid it use ``algorithm="exact"``, or for every call ``cconv.set_allow_lossy(False)``
    (process-wide) or ``with cconv.allow_lossy(False):`` (this thread or task only).
    Results are bitwise identical for any number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cconv.conv2d(x, np.ones((1, 1, 2, 2)))
    array([[[[10., 14., 18.],
             [26., 30., 34.],
             [42., 46., 50.]]]])

    Against the definition (zero padding 1, so the 8x8 size is kept):

    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 8, 8))
    >>> w = rng.standard_normal((4, 3, 3, 3))
    >>> y = cconv.conv2d(x, w, padding=1)
    >>> y.shape
    (2, 4, 8, 8)
    >>> xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    >>> win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    >>> np.allclose(y, np.einsum("ncijpq,ocpq->noij", win, w))
    True
    >>> cconv.conv2d(x, w, stride=2, padding="same", padding_mode="reflect").shape
    (2, 4, 4, 4)
    """
    return _conv(2, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm, activation)


@_public
def conv3d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: Size = 1,
           padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
           layout: Optional[str] = None, out: Optional[Array] = None,
           algorithm: str = "auto", activation: Activation = None) -> Array:
    """3-D convolution (cross-correlation) like torch.nn.functional.conv3d.

    The 3-D case of :func:`conv2d`, for volumes and video.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, D, H, W)``
        Input; ``(N, D, H, W, C_in)`` with ``layout="NDHWC"``. An unbatched
        ``(C_in, D, H, W)`` input gives an unbatched result.
    weight : array_like, shape ``(C_out, C_in / groups, kd, kh, kw)``
        Filters.
    bias : array_like, shape ``(C_out,)``, optional
        Default None (no bias).
    stride : int or (int, int, int), optional
        Step between output positions. Default 1.
    padding : int, 3 ints, 3 (before, after) pairs, "valid" or "same", optional
        As in :func:`conv2d`, with three dimensions. Default 0.
    dilation : int or (int, int, int), optional
        Spacing between kernel taps. Default 1.
    groups : int, optional
        Number of independent channel groups. Default 1.
    padding_mode : {"zeros", "reflect", "replicate", "circular", "symmetric"}, optional
        See :func:`conv2d`. Default "zeros".
    layout : {None, "NCDHW", "NDHWC"}, optional
        Default None (``"NCDHW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into. Default None.
    algorithm : {"auto", "exact", "gemm", "winograd", "depthwise", "grouped", "reference"}, optional
        See :func:`conv2d`; Winograd needs ``kh = kw = 3`` with stride 1 along H and W (any
        depth kernel). Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OD, OH, OW)``
        ``(N, OD, OH, OW, C_out)`` with ``layout="NDHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        Inconsistent shapes, a kernel larger than the padded input, an unknown option or an
        unusable `out`, as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, conv_transpose3d, plan_conv3d, cconv.dask.conv3d

    Notes
    -----
    The sum of :func:`conv2d` over one more dimension; per dimension
    ``out = floor((in + pad_before + pad_after - d * (k - 1) - 1) / s) + 1``.
    ``algorithm="auto"`` may choose Winograd for ``kd x 3 x 3`` layers with stride 1 in H and W,
    one group and many channels, whose float32 error is about ten times that of direct
    convolution; ``algorithm="exact"`` or ``cconv.set_allow_lossy(False)`` /
    ``cconv.allow_lossy(False)`` forbid it.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.ones((1, 2, 4, 5, 6), dtype=np.float32)
    >>> w = np.ones((3, 2, 3, 3, 3), dtype=np.float32)
    >>> y = cconv.conv3d(x, w, padding=1)
    >>> y.shape, y.dtype
    ((1, 3, 4, 5, 6), dtype('float32'))
    >>> float(y[0, 0, 1, 1, 1]), float(y[0, 0, 0, 0, 0])   # 2*27 taps inside, 2*8 at a corner
    (54.0, 16.0)
    """
    return _conv(3, False, x, weight, bias, stride, padding, dilation, groups, padding_mode, 0,
                 layout, out, algorithm, activation)


@_public
def conv_transpose1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto", activation: Activation = None) -> Array:
    """Transposed 1-D convolution (the adjoint of conv1d); weight (C_in, C_out/groups, k).

    Also called fractionally strided convolution or "deconvolution": each input element
    scatters a copy of the filter, scaled by its value, into the output; ``stride > 1``
    upsamples. It is the gradient of :func:`conv1d` with respect to its input.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, L)``
        Input; ``(N, L, C_in)`` with ``layout="NWC"``. An unbatched ``(C_in, L)`` input gives
        an unbatched result.
    weight : array_like, shape ``(C_in, C_out / groups, k)``
        Filters (input channels first, as in PyTorch).
    bias : array_like, shape ``(C_out,)``, optional
        Default None (no bias).
    stride : int or (int,), optional
        Step between input positions in the output. Default 1.
    padding : int or (int,), optional
        Cropped from each side of the full output (symmetric ints only). Default 0.
    output_padding : int or (int,), optional
        Extra outputs added at the end of each dimension, to pick one of the input sizes a
        strided convolution maps to the same output size; smaller than
        ``max(stride, dilation)``. Default 0.
    groups : int, optional
        Number of independent channel groups; divides ``C_in`` and ``C_out``. Default 1.
    dilation : int or (int,), optional
        Spacing between kernel taps. Default 1.
    layout : {None, "NCW", "NWC"}, optional
        Default None (``"NCW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into. Default None.
    algorithm : {"auto", "exact", "gemm", "reference"}, optional
        Kernel choice, see :func:`conv2d`. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OL)``
        ``(N, OL, C_out)`` with ``layout="NWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        Inconsistent shapes, asymmetric or string `padding`, `output_padding` too large,
        padding that leaves no output, an unknown option or an unusable `out`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv1d, conv_transpose2d, plan_conv_transpose1d, cconv.grad.conv_transpose1d_input

    Notes
    -----
    ``y[n, g*G + o, i*s + p*d - pad] += x[n, c, i] * weight[c, o, p]`` for every input channel
    ``c`` of group ``g`` (``G = C_out / groups``), then the bias; the output size is
    ``OL = s * (L - 1) - 2 * pad + d * (k - 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> cconv.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """
    return _conv(1, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm, activation)


@_public
def conv_transpose2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto", activation: Activation = None) -> Array:
    """Transposed 2-D convolution like torch.nn.functional.conv_transpose2d.

    Also called fractionally strided convolution or "deconvolution": each input pixel scatters
    a copy of the filter, scaled by its value, into the output, so ``stride=2`` doubles the
    size (decoders, segmentation, GAN generators). It is the adjoint of :func:`conv2d` with
    the same weight: the gradient of conv2d with respect to its input.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        Input; ``(N, H, W, C_in)`` with ``layout="NHWC"``. An unbatched ``(C_in, H, W)``
        input gives an unbatched result.
    weight : array_like, shape ``(C_in, C_out / groups, kh, kw)``
        Filters (input channels first, as in PyTorch).
    bias : array_like, shape ``(C_out,)``, optional
        Default None (no bias).
    stride : int or (int, int), optional
        Step between input positions in the output. Default 1.
    padding : int or (int, int), optional
        Cropped from each side of the full output (symmetric ints only). Default 0.
    output_padding : int or (int, int), optional
        Extra outputs added at the end of each dimension, to pick one of the input sizes a
        strided convolution maps to the same output size; smaller than
        ``max(stride, dilation)``. Default 0.
    groups : int, optional
        Number of independent channel groups; divides ``C_in`` and ``C_out``. Default 1.
    dilation : int or (int, int), optional
        Spacing between kernel taps. Default 1.
    layout : {None, "NCHW", "NHWC"}, optional
        Default None (``"NCHW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into. Default None.
    algorithm : {"auto", "exact", "gemm", "winograd", "reference"}, optional
        Kernel choice, see :func:`conv2d`; ``"winograd"`` needs 3x3 (in H and W), stride 1 and
        one group. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        ``(N, OH, OW, C_out)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        Inconsistent shapes, asymmetric or string `padding`, `output_padding` too large,
        padding that leaves no output, an unknown option or an unusable `out`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, conv_transpose1d, conv_transpose3d, plan_conv_transpose2d
    cconv.grad.conv_transpose2d_input, cconv.grad.conv_transpose2d_weight
    cconv.analysis.checkerboard : Uneven overlap (checkerboard artifacts).

    Notes
    -----
    For every input channel ``c`` of group ``g`` (``G = C_out / groups``)::

        y[n, g*G + o, i*s_h + p*d_h - pad_h, j*s_w + q*d_w - pad_w] +=
            x[n, c, i, j] * weight[c, o, p, q]

    then the bias. Output size per dimension:
    ``OH = s_h * (H - 1) - 2 * pad_h + d_h * (kh - 1) + output_padding_h + 1``.

    With stride 1 and one group a transposed convolution is a convolution with the flipped
    filter, so for 3x3 kernels ``algorithm="auto"`` may run it as Winograd, whose float32 error
    is about ten times that of direct convolution; ``algorithm="exact"`` or
    ``cconv.set_allow_lossy(False)`` / ``cconv.allow_lossy(False)`` forbid it.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> cconv.conv_transpose2d(x, np.ones((1, 1, 2, 2)), stride=2)   # nearest upsampling
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.],
             [3., 3., 4., 4.],
             [3., 3., 4., 4.]]]])

    The adjoint of conv2d: ``<conv2d(a, w), b> == <a, conv_transpose2d(b, w)>``.

    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((4, 3, 3, 3))
    >>> a = rng.standard_normal((2, 3, 9, 9))
    >>> b = rng.standard_normal((2, 4, 4, 4))
    >>> ta = cconv.conv_transpose2d(b, w, stride=2, padding=0)
    >>> ta.shape
    (2, 3, 9, 9)
    >>> np.allclose(np.vdot(cconv.conv2d(a, w, stride=2), b), np.vdot(a, ta))
    True
    """
    return _conv(2, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm, activation)


@_public
def conv_transpose3d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, output_padding: Size = 0,
                     groups: int = 1, dilation: Size = 1, *, layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto", activation: Activation = None) -> Array:
    """Transposed 3-D convolution; weight (C_in, C_out/groups, kd, kh, kw).

    The 3-D case of :func:`conv_transpose2d` (volumetric upsampling): the adjoint of
    :func:`conv3d`.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, D, H, W)``
        Input; ``(N, D, H, W, C_in)`` with ``layout="NDHWC"``. An unbatched
        ``(C_in, D, H, W)`` input gives an unbatched result.
    weight : array_like, shape ``(C_in, C_out / groups, kd, kh, kw)``
        Filters (input channels first, as in PyTorch).
    bias : array_like, shape ``(C_out,)``, optional
        Default None (no bias).
    stride : int or (int, int, int), optional
        Step between input positions in the output. Default 1.
    padding : int or (int, int, int), optional
        Cropped from each side of the full output (symmetric ints only). Default 0.
    output_padding : int or (int, int, int), optional
        Extra outputs added at the end of each dimension, to pick one of the input sizes a
        strided convolution maps to the same output size; smaller than
        ``max(stride, dilation)``. Default 0.
    groups : int, optional
        Number of independent channel groups; divides ``C_in`` and ``C_out``. Default 1.
    dilation : int or (int, int, int), optional
        Spacing between kernel taps. Default 1.
    layout : {None, "NCDHW", "NDHWC"}, optional
        Default None (``"NCDHW"``).
    out : ndarray, optional
        Array of the result's shape and dtype to write into. Default None.
    algorithm : {"auto", "exact", "gemm", "winograd", "reference"}, optional
        Kernel choice, see :func:`conv2d`; ``"winograd"`` needs 3x3 (in H and W), stride 1 and
        one group. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OD, OH, OW)``
        ``(N, OD, OH, OW, C_out)`` with ``layout="NDHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        Inconsistent shapes, asymmetric or string `padding`, `output_padding` too large,
        padding that leaves no output, an unknown option or an unusable `out`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv3d, conv_transpose2d, plan_conv_transpose3d, cconv.grad.conv_transpose3d_input

    Notes
    -----
    As :func:`conv_transpose2d` with three dimensions; per dimension
    ``out = s * (in - 1) - 2 * pad + d * (k - 1) + output_padding + 1``.
    Stride-1, one-group ``kd x 3 x 3`` layers may run as Winograd under ``algorithm="auto"``
    (see :func:`conv_transpose2d`).

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.ones((1, 2, 2, 3, 4), dtype=np.float32)
    >>> cconv.conv_transpose3d(x, np.ones((2, 5, 2, 2, 2), np.float32), stride=2).shape
    (1, 5, 4, 6, 8)
    """
    return _conv(3, True, x, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, out, algorithm, activation)


# ------------------------------------------------------------------ composite variants

def _channels(x_shape, layout):
    last = _geometry.channels_last(layout, 2)
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


@_geometry.remembered
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
    stride = _geometry.int_tuple("stride", stride, 2, 1)
    dilation = _geometry.int_tuple("dilation", dilation, 2, 1)
    pb, pa = _geometry.normalize_padding(padding, 2, in_size, kernel, stride, dilation)
    vert = dict(stride=(stride[0], 1), padding=((pb[0], pa[0]), (0, 0)), dilation=(dilation[0], 1))
    horz = dict(stride=(1, stride[1]), padding=((0, 0), (pb[1], pa[1])), dilation=(1, dilation[1]))
    return vert, horz


def _spatial(x_shape, layout):
    return tuple(x_shape[1:3]) if _geometry.channels_last(layout, 2) else tuple(x_shape[2:])


@_geometry.remembered
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


@_geometry.remembered
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


def _run_stages(stages, x, weights, bias, out, inputs, algorithm, act=None, first=(None, None)):
    """The stages one after the other; the last one takes bias, out and the activation bounds act,
    the first of two takes first = (its bias, its activation bounds)."""
    dtype = result_dtype(x, *weights, bias, first[0])
    check_bias(bias, stages[-1].out_channels)
    y = x
    for i, (geom, w) in enumerate(zip(stages, weights)):
        last = i == len(stages) - 1
        b, a = (bias, act) if last else first if i == 0 else (None, None)
        y = run_convolution(geom, y, w, b, dtype, out if last else None, inputs, algorithm, a)
    return y


@_public
def depthwise_conv2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size = 1, padding: Padding = 0, dilation: Size = 1, *,
                     padding_mode: str = "zeros", layout: Optional[str] = None,
                     out: Optional[Array] = None, algorithm: str = "auto", activation: Activation = None) -> Array:
    """Depthwise 2-D convolution: each input channel convolved with its own m filters.

    The spatial half of MobileNet's separable convolution: no sum across channels. The same as
    ``conv2d(x, weight, groups=C)``, run by kernels made for one input channel per group.

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        Input; ``(N, H, W, C)`` with ``layout="NHWC"``. An unbatched ``(C, H, W)`` input gives
        an unbatched result.
    weight : array_like, shape ``(C * m, 1, kh, kw)``
        ``m`` filters per input channel (the channel multiplier): output channel ``c*m + j``
        comes from input channel ``c``.
    bias : array_like, shape ``(C * m,)``, optional
        Default None (no bias).
    stride, padding, dilation, padding_mode, layout, out
        As in :func:`conv2d`.
    algorithm : {"auto", "exact", "depthwise", "grouped", "gemm", "reference"}, optional
        See :func:`conv2d`. Depthwise layers never run Winograd, so "auto" and "exact" agree.
        Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C * m, OH, OW)``
        ``(N, OH, OW, C * m)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        If `x` is not 4-D, `weight` is not ``(C * m, 1, kh, kw)``, or as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, separable_conv2d, cconv.grad.depthwise_conv2d_grads

    Notes
    -----
    ``y[n, c*m + j, i, l] = bias[c*m + j] + sum_{p, q} weight[c*m + j, 0, p, q]
    * x_pad[n, c, i*s_h + p*d_h, l*s_w + q*d_w]``; output sizes as in :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 6, 6))
    >>> w = rng.standard_normal((6, 1, 3, 3))                 # m = 2 filters per channel
    >>> y = cconv.depthwise_conv2d(x, w, padding=1)
    >>> y.shape
    (2, 6, 6, 6)
    >>> np.allclose(y, cconv.conv2d(x, w, padding=1, groups=3))
    True
    """
    _check_algorithm(algorithm)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    act = activation_bounds(activation)
    stages = depthwise_stages(x.shape, weight.shape, stride, padding, dilation, layout, padding_mode)
    return _run_stages(stages, x, [weight], bias, out, (x, weight, bias), algorithm, act)


@_public
def separable_conv2d(x: ArrayLike, depthwise_weight: ArrayLike, pointwise_weight: ArrayLike,
                     bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                     dilation: Size = 1, *, padding_mode: str = "zeros",
                     layout: Optional[str] = None, out: Optional[Array] = None,
                     algorithm: str = "auto", fused: bool = True,
                     activation: Activation = None, depthwise_bias: Optional[ArrayLike] = None,
                     depthwise_activation: Activation = None) -> Array:
    """Depthwise separable convolution (MobileNet, Xception): depthwise k x k, then 1x1.

    A :func:`depthwise_conv2d` followed by a pointwise (1x1) :func:`conv2d` that mixes the
    channels: about ``k*k`` times fewer multiplications than a full convolution.

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        Input; ``(N, H, W, C)`` with ``layout="NHWC"``; or unbatched ``(C, H, W)``.
    depthwise_weight : array_like, shape ``(C * m, 1, kh, kw)``
        The depthwise filters, ``m`` per input channel.
    pointwise_weight : array_like, shape ``(C_out, C * m, 1, 1)``
        The 1x1 filters.
    bias : array_like, shape ``(C_out,)``, optional
        Added after the pointwise stage. Default None.
    stride, padding, dilation, padding_mode
        Of the depthwise stage, as in :func:`conv2d`.
    layout, out, algorithm
        As in :func:`conv2d`. ``"auto"`` and ``"exact"`` (the default "auto" included) keep
        the fused kernels; any other algorithm runs the two stages unfused, each planned with
        it. Neither stage is ever Winograd.
    fused : bool, optional
        True (default; channels-first only) computes both stages band by band of output rows in
        cache, so the ``(N, C*m, OH, OW)`` intermediate is never allocated: less memory traffic
        and a lower peak memory. False runs the two stages one after the other (the same result
        up to rounding: the 1x1 sums the channels in the same order, with different FMA
        contraction).
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the pointwise stage's stores, after `bias`; see :func:`conv2d`. Default None.
    depthwise_bias : array_like, shape ``(C * m,)``, optional
        Added to the depthwise stage's output. Default None.
    depthwise_activation : {None, "relu", "relu6"} or (min, max), optional
        Applied to the depthwise stage's output after `depthwise_bias`, before the pointwise
        stage, in both paths (fused: on the band in cache). A MobileNet block is
        ``depthwise_bias=b1, depthwise_activation="relu6", bias=b2, activation="relu6"``.
        Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        ``(N, OH, OW, C_out)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        If the weights do not have the shapes above, or as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    depthwise_conv2d, conv2d, cconv.grad.separable_conv2d_grads
    cconv.analysis.cost : Multiplications saved against conv2d.

    Notes
    -----
    ``y = conv2d(depthwise_conv2d(x, depthwise_weight, None, stride, padding, dilation),
    pointwise_weight, bias)``; output sizes as in :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 8, 8))
    >>> dw = rng.standard_normal((3, 1, 3, 3))
    >>> pw = rng.standard_normal((16, 3, 1, 1))
    >>> y = cconv.separable_conv2d(x, dw, pw, padding=1)
    >>> y.shape
    (2, 16, 8, 8)
    >>> np.allclose(y, cconv.conv2d(cconv.conv2d(x, dw, padding=1, groups=3), pw))
    True
    """
    _check_algorithm(algorithm)
    x = as_array("x", x)
    dw, pw, bias = (as_array("depthwise_weight", depthwise_weight),
                    as_array("pointwise_weight", pointwise_weight), as_array("bias", bias, optional=True))
    dbias = as_array("depthwise_bias", depthwise_bias, optional=True)
    act, dact = activation_bounds(activation), activation_bounds(depthwise_activation, "depthwise_activation")
    stages = separable_stages(x.shape, dw.shape, pw.shape, stride, padding, dilation, layout,
                              padding_mode)
    check_bias(dbias, stages[0].out_channels, "depthwise_bias")
    inputs = (x, dw, pw, bias, dbias)
    if not fused or stages[0].channels_last or algorithm not in _CHOOSING:
        return _run_stages(stages, x, [dw, pw], bias, out, inputs, algorithm, act, (dbias, dact))
    # Fused: the same two stages (describe() lists them), run band by band in cache.
    dtype = result_dtype(*inputs)
    check_bias(bias, stages[1].out_channels)
    y, target = _geometry.output_array(out, stages[1].out_shape, dtype, inputs)
    if y.size == 0:
        return y
    plan = _CPlan(stages[0].desc("depthwise", activation=dact), contiguous(dw, dtype), contiguous(dbias, dtype))
    plan.execute_separable(np.ascontiguousarray(x, dtype=dtype),
                           contiguous(pw, dtype).reshape(pw.shape[0], -1), contiguous(bias, dtype), target,
                           act)
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
                               algorithm: str = "auto", fused: bool = True,
                               activation: Activation = None) -> Array:
    """k_h x 1 convolution then 1 x k_w convolution (e.g. Sobel = [1,2,1]^T x [-1,0,1]).

    A separable (rank-1) k_h x k_w filter as two 1-D passes: ``k_h + k_w`` instead of
    ``k_h * k_w`` taps (Inception's 7x1 + 1x7). :func:`cconv.decompose.spatially_separable`
    factors a full kernel into this form.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        Input; ``(N, H, W, C_in)`` with ``layout="NHWC"``; or unbatched ``(C_in, H, W)``.
    vertical_weight : array_like, shape ``(C_mid, C_in / groups, kh, 1)``
        The vertical (first) pass.
    horizontal_weight : array_like, shape ``(C_out, C_mid / groups, 1, kw)``
        The horizontal (second) pass.
    bias : array_like, shape ``(C_out,)``, optional
        Added after the horizontal pass. Default None.
    stride, padding, dilation : optional
        As in :func:`conv2d`, for the whole ``kh x kw`` filter: the H parts apply to the
        vertical pass, the W parts to the horizontal one.
    groups : int, optional
        Channel groups of both passes. Default 1.
    padding_mode, layout, out, algorithm
        As in :func:`conv2d`; an algorithm other than "auto" or "exact" runs the passes
        unfused, each planned with it (these 1-D passes never run Winograd).
    fused : bool, optional
        True (default, both layouts) runs the two passes a chunk of images at a time, the
        chunk's intermediate (8 MiB, at least one image) still in cache when the horizontal
        pass reads it, so a large ``(N, C_mid, OH, W)`` intermediate is never allocated whole.
        False runs the passes one after the other over the whole batch; the results are
        bitwise equal.
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the horizontal pass, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        ``(N, OH, OW, C_out)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        If the weights do not have the shapes above, or as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, flattened_conv2d, cconv.decompose.spatially_separable,
    cconv.grad.spatially_separable_conv2d_grads

    Notes
    -----
    With ``C_mid == C_in`` and ``groups == C_in`` each channel is filtered by the outer product
    ``vertical[c] x horizontal[c]``; in general the result is
    ``conv2d(conv2d(x, vertical_weight, ...), horizontal_weight, ...)``. Output sizes as in
    :func:`conv2d` for the ``kh x kw`` filter.

    Examples
    --------
    The Sobel filter, as two passes and as one 3x3 filter:

    >>> import numpy as np
    >>> import cconv
    >>> x = np.random.default_rng(0).standard_normal((1, 1, 6, 7))
    >>> v = np.array([1.0, 2.0, 1.0]).reshape(1, 1, 3, 1)
    >>> h = np.array([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    >>> y = cconv.spatially_separable_conv2d(x, v, h, padding=1)
    >>> y.shape
    (1, 1, 6, 7)
    >>> sobel = np.outer(v.ravel(), h.ravel()).reshape(1, 1, 3, 3)
    >>> np.allclose(y, cconv.conv2d(x, sobel, padding=1))
    True
    """
    _check_algorithm(algorithm)
    x = as_array("x", x)
    v, h, bias = (as_array("vertical_weight", vertical_weight),
                  as_array("horizontal_weight", horizontal_weight), as_array("bias", bias, optional=True))
    stages = spatially_separable_stages(x.shape, v.shape, h.shape, stride, padding, dilation,
                                        groups, layout, padding_mode)
    inputs, act = (x, v, h, bias), activation_bounds(activation)
    if not fused or algorithm not in _CHOOSING:
        return _run_stages(stages, x, [v, h], bias, out, inputs, algorithm, act)
    return _run_chunked(stages, x, [v, h], bias, out, inputs, algorithm, act)


def _run_chunked(stages, x, weights, bias, out, inputs, algorithm, act=None):
    """Two convolution stages (either layout: batch first) run a chunk of images at a time into
    slices of the output, through one reused chunk-sized intermediate (see _CHUNK_BYTES)."""
    dtype = result_dtype(*inputs)
    check_bias(bias, stages[1].out_channels)
    y, target = _geometry.output_array(out, stages[1].out_shape, dtype, inputs)
    n = x.shape[0]
    mid_image = math.prod(stages[0].out_shape[1:]) * dtype.itemsize
    if y.size == 0 or mid_image == 0:
        return _run_stages(stages, x, weights, bias, out, inputs, algorithm, act)  # nothing to chunk
    nchunks = -(-n * mid_image // _CHUNK_BYTES)
    nb = -(-n // nchunks)  # even chunks: at most two chunk sizes, so at most four plans
    w1, w2, b = contiguous(weights[0], dtype), contiguous(weights[1], dtype), contiguous(bias, dtype)
    plans = {}
    xc = np.ascontiguousarray(x, dtype=dtype)
    mid = np.empty((nb,) + stages[0].out_shape[1:], dtype)
    for n0 in range(0, n, nb):
        c = min(nb, n - n0)
        if c not in plans:
            g1, g2 = (g.with_batch(c) for g in stages)
            plans[c] = (_CPlan(g1.desc(algorithm), w1, None),
                        _CPlan(g2.desc(algorithm, activation=act), w2, b))
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
                     fused: bool = True, activation: Activation = None) -> Array:
    """Flattened convolution (arXiv 1412.5474): 1x1 across channels, then a vertical and a
    horizontal 1-D filter per output channel.

    With finite values it equals :func:`conv2d` with the rank-1 filters
    ``W[o, c, i, j] = channel[o, c] * vertical[o, i] * horizontal[o, j]``,
    at ``C_in + kh + kw`` instead of ``C_in * kh * kw`` parameters per filter; with Inf or NaN
    among the inputs, the three stages in turn define where NaN and Inf appear.
    :func:`cconv.decompose.flatten` fits these factors to a full filter bank.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        Input; ``(N, H, W, C_in)`` with ``layout="NHWC"``; or unbatched ``(C_in, H, W)``.
    channel_weight : array_like, shape ``(C_out, C_in)``
        The 1x1 stage.
    vertical_weight : array_like, shape ``(C_out, kh)``
        One vertical filter per output channel.
    horizontal_weight : array_like, shape ``(C_out, kw)``
        One horizontal filter per output channel.
    bias : array_like, shape ``(C_out,)``, optional
        Default None.
    stride, padding, dilation, padding_mode, layout, out, algorithm
        As in :func:`conv2d`, for the ``kh x kw`` filter; an algorithm other than "auto" or
        "exact" runs the three stages unfused, each planned with it (never Winograd).
    fused : bool, optional
        True (default) runs the 1x1 and then one depthwise pass with the ``kh x kw`` filters
        ``vertical[o, i] * horizontal[o, j]`` (products rounded once to the dtype):
        channels-first band by band of output rows in cache, so no ``(N, C_out, H, W)``
        intermediate is allocated; channels-last a chunk of images at a time. False runs the
        three stages one after the other (the same result up to rounding).
    activation : {None, "relu", "relu6"} or (min, max), optional
        After the bias; see :func:`conv2d`. Fused into the stores of the last stage when
        ``fused=False``; applied after the fused pass otherwise (its check for Inf and NaN needs
        the values before the clamp). Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        ``(N, OH, OW, C_out)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        If the three weights are not 2-D or do not share ``C_out``, or as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    conv2d, spatially_separable_conv2d, cconv.decompose.flatten,
    cconv.decompose.flattened_weight, cconv.grad.flattened_conv2d_grads

    Notes
    -----
    Output sizes as in :func:`conv2d` for the ``kh x kw`` filter.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 8, 8))
    >>> ch, v, h = (rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
    ...             rng.standard_normal((4, 5)))
    >>> y = cconv.flattened_conv2d(x, ch, v, h, padding=(1, 2))
    >>> y.shape
    (2, 4, 8, 8)
    >>> w = np.einsum("oc,oi,oj->ocij", ch, v, h)              # the full (4, 3, 3, 5) filters
    >>> np.allclose(y, cconv.conv2d(x, w, padding=(1, 2)))
    True
    """
    _check_algorithm(algorithm)
    x = as_array("x", x)
    ch, v, h, bias = (as_array("channel_weight", channel_weight),
                      as_array("vertical_weight", vertical_weight),
                      as_array("horizontal_weight", horizontal_weight), as_array("bias", bias, optional=True))
    stages = flattened_stages(x.shape, ch.shape, v.shape, h.shape, stride, padding, dilation, layout,
                              padding_mode)
    cout = ch.shape[0]
    inputs = (x, ch, v, h, bias)
    weights = [ch.reshape(cout, -1, 1, 1), v.reshape(cout, 1, -1, 1), h.reshape(cout, 1, 1, -1)]
    act = activation_bounds(activation)
    if not fused or algorithm not in _CHOOSING:
        return _run_stages(stages, x, weights, bias, out, inputs, algorithm, act)
    y = _flattened_fused(stages, x, weights[0], v, h, bias, out, inputs, algorithm, padding_mode,
                         layout)
    # The fused pass multiplies vertical * horizontal before it meets the data: with an Inf or NaN
    # about, that can move NaNs (Inf * 0 inside the product, not in the stages), so such results
    # are redone by the stages. A finite fused result implies finite filters and finite values
    # read, where both agree; its sum is finite iff every element is, bar overflow (which just
    # redoes the call too). Checked on the output, which exists, not on x (maybe a huge view).
    # The activation comes after the check: its clamp would turn an Inf into a bound (from Inf in
    # x, in the bias, or an overflow), and the fused values would stand where the stages' belong.
    with np.errstate(invalid="ignore", over="ignore"):   # Inf - Inf, overflow: no warning to the user
        finite = not y.size or np.isfinite(np.sum(y))
    if not finite:
        return _run_stages(stages, x, weights, bias, y, inputs, algorithm, act)
    if act is not None:  # as the kernels clamp, in y's dtype: NaN and -0.0 stay, min > max gives max
        np.clip(y, *(y.dtype.type(b) for b in act), out=y)
    return y


def _flattened_fused(stages, x, ch, v, h, bias, out, inputs, algorithm, padding_mode, layout):
    """flattened_conv2d's fused paths: the 1x1 (ch, already (C_out, C_in, 1, 1)), then one
    depthwise pass with the kh x kw filters vertical[o, i] * horizontal[o, j]."""
    cout = ch.shape[0]
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
        return _run_chunked([stages[0], dw], x, [ch, k[:, None]], bias, out, inputs, algorithm)
    check_bias(bias, cout)
    y, target = _geometry.output_array(out, horz.out_shape, dtype, inputs)
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
        if nd not in _geometry.LAYOUTS:
            raise ValueError(f"layout {layout!r} needs a 3-D to 5-D x, got shape {x_shape}")
        last = _geometry.channels_last(layout, nd)
    if not _geometry._is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c = x_shape[-1] if last else x_shape[1]
    if c % groups:
        raise ValueError(f"groups={groups} must divide the {c} channels of x (shape {x_shape})")
    return _geometry.ShuffleStage(x_shape, int(groups), last)


def shuffle_stages(x_shape, groups, layout=None):
    return [shuffle_stage(x_shape, groups, layout)]


@_public
def channel_shuffle(x: ArrayLike, groups: int, *, layout: Optional[str] = None,
                    out: Optional[Array] = None) -> Array:
    """ShuffleNet channel shuffle, same result as torch.nn.functional.channel_shuffle.

    Interleaves the channels of `groups` groups, so that the next grouped convolution sees
    channels from every group: channel ``g*(C/groups) + j`` moves to ``j*groups + g``.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)``
        Input with 1 to 3 spatial dimensions; channels last with a channels-last `layout`.
        Unbatched input, ``(C, *spatial)`` or ``(*spatial, C)``, gives an unbatched result:
        without `layout` only 2-D ``(C, L)`` is taken as unbatched (3-D and more are batched,
        as in torch), with one the layout's dimensions tell.
    groups : int
        Number of groups; must divide ``C``.
    layout : str, optional
        ``"NCW"``, ``"NCHW"``, ``"NCDHW"`` (channels-first) or ``"NWC"``, ``"NHWC"``,
        ``"NDHWC"`` (channels-last). Default None (channels-first).
    out : ndarray, optional
        Array of `x`'s shape and dtype to write into. Default None.

    Returns
    -------
    ndarray
        The shuffled array, of `x`'s shape and dtype (float arrays use the C kernel; other
        numeric dtypes are permuted exactly with NumPy).

    Raises
    ------
    ValueError
        If `x` has fewer than 3 dimensions, `groups` is not a positive int dividing ``C``, or
        `layout` does not fit ``x.ndim``.
    TypeError
        If `x` is not a real numeric array.

    See Also
    --------
    shuffled_grouped_conv2d
    cconv.grad.channel_shuffle_input : The inverse shuffle.

    Notes
    -----
    ``y[:, j*groups + g] = x[:, g*(C/groups) + j]``: the channels viewed as a
    ``(groups, C/groups)`` matrix, transposed.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x = np.arange(6.0).reshape(1, 6, 1, 1)
    >>> cconv.channel_shuffle(x, 2).ravel()
    array([0., 3., 1., 4., 2., 5.])
    >>> cconv.channel_shuffle(np.arange(6).reshape(1, 1, 6), 3, layout="NWC")
    array([[[0, 2, 4, 1, 3, 5]]])
    """
    x = as_array("x", x)
    st = shuffle_stage(x.shape, groups, layout)
    y, target = _geometry.output_array(out, x.shape, x.dtype, (x,))  # a shuffle keeps the dtype
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


@_geometry.remembered
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
                            out: Optional[Array] = None, algorithm: str = "auto", activation: Activation = None) -> Array:
    """ShuffleNet's grouped convolution followed by a channel shuffle, in one call.

    ``channel_shuffle(conv2d(x, weight, bias, groups=groups, ...), shuffle_groups)``.
    Channels-first, the output channels are written directly in shuffled order (no second
    pass over memory) by the depthwise, grouped and GEMM algorithms; channels-last and
    Winograd plans run the two steps one after another.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        Input; ``(N, H, W, C_in)`` with ``layout="NHWC"``; or unbatched ``(C_in, H, W)``.
    weight : array_like, shape ``(C_out, C_in / groups, kh, kw)``
        Filters of the grouped convolution.
    groups : int
        Channel groups of the convolution.
    bias : array_like, shape ``(C_out,)``, optional
        Added by the convolution, before the shuffle. Default None.
    stride, padding, dilation
        As in :func:`conv2d`.
    shuffle_groups : int, optional
        Groups of the shuffle; must divide ``C_out``. Default None (`groups`).
    padding_mode, layout, out, algorithm
        As in :func:`conv2d`.
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the stores of the grouped convolution, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ndarray, shape ``(N, C_out, OH, OW)``
        ``(N, OH, OW, C_out)`` with ``layout="NHWC"``; the dtype rule of :func:`conv2d`.

    Raises
    ------
    ValueError
        If `shuffle_groups` does not divide ``C_out``, or as for :func:`conv2d`.
    TypeError
        A non-numeric array or a non-int integer argument.

    See Also
    --------
    channel_shuffle, conv2d, cconv.grad.shuffled_grouped_conv2d_grads

    Notes
    -----
    Output sizes as in :func:`conv2d`. With ``groups=1`` a 3x3 stride-1 layer may run as
    Winograd under ``algorithm="auto"``; see :func:`conv2d` for its error and how to forbid it.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 8, 5, 5))
    >>> w = rng.standard_normal((8, 2, 3, 3))
    >>> y = cconv.shuffled_grouped_conv2d(x, w, 4, padding=1)
    >>> y.shape
    (2, 8, 5, 5)
    >>> np.allclose(y, cconv.channel_shuffle(cconv.conv2d(x, w, padding=1, groups=4), 4))
    True
    """
    _check_algorithm(algorithm)
    x, weight, bias = as_array("x", x), as_array("weight", weight), as_array("bias", bias, optional=True)
    conv, shuf = shuffled_grouped_stages(x.shape, weight.shape, groups, stride, padding, dilation,
                                         shuffle_groups, padding_mode, layout)
    dtype = result_dtype(x, weight, bias)
    check_bias(bias, conv.out_channels)
    plan = _CPlan(conv.desc(algorithm, activation=activation_bounds(activation)),
                  contiguous(weight, dtype), contiguous(bias, dtype))
    y, target = _geometry.output_array(out, conv.out_shape, dtype, (x, weight, bias))
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
    several threads at once. Made by :func:`plan_conv1d` ... :func:`plan_conv_transpose3d`
    (not constructed directly); repeated calls skip the argument checks, the algorithm choice
    and the weight packing. A plan keeps the instruction set it was made with.

    Attributes
    ----------
    algorithm : str
        The algorithm chosen (``"gemm"``, ``"winograd"``, ``"depthwise"``, ...).
    out_shape : tuple of int
        The shape of the result.
    dtype : numpy.dtype
        The compute and result dtype; inputs are cast to it.
    geometry : object
        The validated arguments (shapes, stride, padding, ...), internal.
    weight_bytes, workspace_bytes : int
        Memory held by the packed weights, and scratch memory a call uses.

    See Also
    --------
    plan_conv2d, conv2d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> w = np.ones((4, 1, 3, 3), dtype=np.float32)
    >>> plan = cconv.plan_conv2d((2, 4, 8, 8), w, padding=1, groups=4)
    >>> plan.algorithm, plan.out_shape, plan.dtype
    ('depthwise', (2, 4, 8, 8), dtype('float32'))
    >>> x = np.ones((2, 4, 8, 8), dtype=np.float32)
    >>> np.array_equal(plan(x), cconv.conv2d(x, w, padding=1, groups=4))
    True
    """

    _MAX_EXTRA_BATCH_SIZES = 4  # C plans kept for batch sizes other than the planned one

    def __init__(self, geom, weight, bias, dtype, algorithm, act=None):
        self.geometry = geom
        self._act = act
        self.dtype = dtype
        w, b = contiguous(weight, dtype), contiguous(bias, dtype)
        self._lossy = _geometry.get_allow_lossy()  # plans keep the setting they were made with
        self._plan = _CPlan(geom.desc(algorithm, activation=act), w, b)
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
        g = self.geometry.with_batch(batch)
        if plan is None:
            plan = _CPlan(g.desc(self.algorithm, self._lossy, self._act), self._weight, self._bias)
            with self._lock:
                if len(self._plans) >= self._MAX_EXTRA_BATCH_SIZES:  # drop the first made
                    del self._plans[next(iter(self._plans))]
                self._plans[batch] = plan
        return g, plan

    @property
    def algorithm(self):
        """The algorithm this plan runs (str)."""
        return self._plan.algorithm

    @property
    def out_shape(self):
        """The shape of the result (tuple of int)."""
        return self.geometry.out_shape

    @property
    def weight_bytes(self):
        """Bytes of the packed (or transformed) weights the plan holds (int)."""
        return self._plan.weight_bytes

    @property
    def workspace_bytes(self):
        """Bytes of scratch memory one call allocates (int)."""
        return self._plan.workspace_bytes

    def __call__(self, x, *, out=None):
        """Runs the plan.

        Parameters
        ----------
        x : array_like
            Input of exactly the shape the plan was made for (any dtype: cast to the plan's).
        out : ndarray, optional
            Array of shape `out_shape` and the plan's dtype to write into. Default None.

        Returns
        -------
        ndarray
            The convolution, shape `out_shape` (`out` if given).

        Raises
        ------
        ValueError
            If `x` has another shape, or `out` has the wrong shape or dtype, is read-only or
            overlaps `x`.
        TypeError
            If `x` is not a real numeric array or `out` not an ndarray.

        Examples
        --------
        >>> import numpy as np
        >>> import cconv
        >>> plan = cconv.plan_conv1d((1, 1, 5), np.ones((1, 1, 2)))
        >>> y = np.empty(plan.out_shape)
        >>> plan(np.arange(5.0).reshape(1, 1, 5), out=y) is y
        True
        >>> y
        array([[[1., 3., 5., 7.]]])
        """
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
        y, target = _geometry.output_array(out, g.out_shape, self.dtype, (x,))
        return _execute(plan, x, y, target, self.dtype)

    def __repr__(self):
        g = self.geometry
        return (f"ConvPlan({'transposed ' if g.transposed else ''}{g.nd}-D, x {g.x_shape} -> "
                f"{g.out_shape}, {self.dtype}, algorithm={self.algorithm!r})")


def _plan(nd, transposed, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
          output_padding, layout, activation, dtype, algorithm):
    _check_algorithm(algorithm)
    act = activation_bounds(activation)
    weight, bias = as_array("weight", weight), as_array("bias", bias, optional=True)
    dtype = result_dtype(weight, bias) if dtype is None else result_dtype(np.empty(0, dtype))
    geom = conv_geometry(nd, x_shape, weight.shape, stride, padding, dilation, groups,
                         padding_mode=padding_mode, layout=layout, transposed=transposed,
                         output_padding=output_padding)
    check_bias(bias, geom.out_channels)
    return ConvPlan(geom, weight, bias, dtype, algorithm, act)


def plan_conv1d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv1d on inputs of shape x_shape (dtype defaults to the weight's).

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, L)`` (or per `layout`).
    weight, bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`conv1d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv1d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv1d` for the same arguments.

    See Also
    --------
    plan_conv2d, conv1d, ConvPlan

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> plan = cconv.plan_conv1d((2, 3, 16), np.ones((4, 3, 5)), padding="same")
    >>> plan.out_shape
    (2, 4, 16)
    """
    return _plan(1, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, activation, dtype, algorithm)


def plan_conv2d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv2d: `p = plan_conv2d(x.shape, w); y = p(x)`.

    Checks the arguments, chooses the algorithm and packs the weights once; each call of the
    plan then only computes. Worth it for many calls on small inputs, or to see which
    algorithm ``"auto"`` picks.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, H, W)`` (or per `layout`).
    weight : array_like, shape ``(C_out, C_in / groups, kh, kw)``
        Filters; copied into the plan (later changes to `weight` do not affect it).
    bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`conv2d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv2d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv2d` for the same arguments.

    See Also
    --------
    conv2d, ConvPlan, plan_conv1d, plan_conv3d, plan_conv_transpose2d

    Notes
    -----
    The algorithm is chosen when the plan is made, so ``algorithm="exact"`` or
    ``cconv.allow_lossy(False)`` must be in effect then to keep Winograd out (see
    :func:`conv2d`).

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    >>> w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    >>> plan = cconv.plan_conv2d(x.shape, w, stride=2, algorithm="gemm")
    >>> plan.algorithm, plan.out_shape
    ('gemm', (1, 5, 3, 3))
    >>> np.array_equal(plan(x), cconv.conv2d(x, w, stride=2, algorithm="gemm"))
    True
    """
    return _plan(2, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, activation, dtype, algorithm)


def plan_conv3d(x_shape: Sequence[int], weight: ArrayLike, bias: Optional[ArrayLike] = None,
                stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1, *,
                padding_mode: str = "zeros", layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv3d.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, D, H, W)`` (or per `layout`).
    weight, bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`conv3d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv3d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv3d` for the same arguments.

    See Also
    --------
    conv3d, plan_conv2d, ConvPlan

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> plan = cconv.plan_conv3d((1, 2, 4, 4, 4), np.ones((3, 2, 3, 3, 3)))
    >>> plan.out_shape
    (1, 3, 2, 2, 2)
    """
    return _plan(3, False, x_shape, weight, bias, stride, padding, dilation, groups, padding_mode,
                 0, layout, activation, dtype, algorithm)


def plan_conv_transpose1d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose1d.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, L)`` (or per `layout`).
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`conv_transpose1d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv_transpose1d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose1d` for the same arguments.

    See Also
    --------
    conv_transpose1d, plan_conv2d, ConvPlan

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> plan = cconv.plan_conv_transpose1d((1, 2, 5), np.ones((2, 3, 3)), stride=2)
    >>> plan.out_shape
    (1, 3, 11)
    """
    return _plan(1, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, activation, dtype, algorithm)


def plan_conv_transpose2d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose2d.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, H, W)`` (or per `layout`).
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`conv_transpose2d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv_transpose2d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose2d` for the same arguments.

    See Also
    --------
    conv_transpose2d, plan_conv2d, ConvPlan

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> plan = cconv.plan_conv_transpose2d((1, 2, 4, 4), np.ones((2, 3, 4, 4)), stride=2, padding=1)
    >>> plan.out_shape
    (1, 3, 8, 8)
    """
    return _plan(2, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, activation, dtype, algorithm)


def plan_conv_transpose3d(x_shape: Sequence[int], weight: ArrayLike,
                          bias: Optional[ArrayLike] = None, stride: Size = 1, padding: Padding = 0,
                          output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                          layout: Optional[str] = None, activation: Activation = None, dtype: Any = None,
                          algorithm: str = "auto") -> ConvPlan:
    """A reusable plan for conv_transpose3d.

    Parameters
    ----------
    x_shape : tuple of int
        Shape of the inputs the plan will run on, ``(N, C_in, D, H, W)`` (or per `layout`).
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`conv_transpose3d`.
    dtype : {None, numpy.float32, numpy.float64}, optional
        Compute dtype. Default None (the dtype rule applied to `weight` and `bias`).
    algorithm : str, optional
        As in :func:`conv_transpose3d`; chosen now, once. Default "auto".
    activation : {None, "relu", "relu6"} or (min, max), optional
        Fused into the plan's output stores, after the bias; see :func:`conv2d`. Default None.

    Returns
    -------
    ConvPlan
        Call it with an input of shape `x_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose3d` for the same arguments.

    See Also
    --------
    conv_transpose3d, plan_conv2d, ConvPlan

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> plan = cconv.plan_conv_transpose3d((1, 2, 2, 2, 2), np.ones((2, 3, 2, 2, 2)), stride=2)
    >>> plan.out_shape
    (1, 3, 4, 4, 4)
    """
    return _plan(3, True, x_shape, weight, bias, stride, padding, dilation, groups, "zeros",
                 output_padding, layout, activation, dtype, algorithm)
