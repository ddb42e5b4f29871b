"""Gradients (backward passes) of every cconv convolution, mirroring ``torch.nn.grad``.

Same argument conventions as the forward functions (and as ``torch.nn.grad``): the gradient of a
loss L with respect to a convolution's input or weight, given ``grad_output`` = dL/dy.

Plain convolutions (``torch.nn.grad`` names)::

    conv1d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
                 *, padding_mode="zeros", layout=None)              -> dL/dx, shape input_shape
    conv1d_weight(input, weight_shape, grad_output, <same>)         -> dL/dw, shape weight_shape
    conv2d_input / conv2d_weight / conv3d_input / conv3d_weight     (same signatures)
    bias(grad_output, *, layout=None)                               -> dL/db, shape (C_out,)

Transposed convolutions (arguments in the order of ``conv_transpose*d``)::

    conv_transpose{1,2,3}d_input(input_shape, weight, grad_output, stride=1, padding=0,
                                 output_padding=0, groups=1, dilation=1, *, layout=None)
    conv_transpose{1,2,3}d_weight(input, weight_shape, grad_output, <same>)

Composite variants (all gradients at once; ``grad_bias`` is always returned, it is the gradient of
the bias whether or not the forward call used one; ``input_grad=False`` skips dL/dx, returning
None in its place, e.g. for a network's first layer)::

    depthwise_conv2d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                           *, layout=None)
    depthwise_conv2d_weight(input, weight_shape, grad_output, stride=1, padding=0, dilation=1,
                            *, layout=None)
    depthwise_conv2d_grads(x, weight, grad_output, stride=1, padding=0, dilation=1, *,
                           layout=None, input_grad=True)    -> (grad_x, grad_weight, grad_bias)
    separable_conv2d_grads(x, depthwise_weight, pointwise_weight, grad_output, stride=1,
                           padding=0, dilation=1, *, layout=None, input_grad=True)
        -> (grad_x, grad_depthwise_weight, grad_pointwise_weight, grad_bias)
    spatially_separable_conv2d_grads(x, vertical_weight, horizontal_weight, grad_output,
                                     stride=1, padding=0, dilation=1, groups=1, *, layout=None,
                                     input_grad=True)
        -> (grad_x, grad_vertical_weight, grad_horizontal_weight, grad_bias)
    flattened_conv2d_grads(x, channel_weight, vertical_weight, horizontal_weight, grad_output,
                           stride=1, padding=0, dilation=1, *, layout=None, input_grad=True)
        -> (grad_x, grad_channel_weight, grad_vertical_weight, grad_horizontal_weight, grad_bias)
    shuffled_grouped_conv2d_grads(x, weight, grad_output, groups, stride=1, padding=0,
                                  dilation=1, *, shuffle_groups=None, padding_mode="zeros",
                                  layout=None, input_grad=True)
        -> (grad_x, grad_weight, grad_bias)
    channel_shuffle_input(grad_output, groups, *, layout=None)   (the inverse shuffle)

The composite functions recompute their intermediate activations (one forward stage each) and
compute every gradient in the common dtype of all their inputs (the single-purpose functions use
that of the two arrays they take, as torch.nn.grad does).

How it is computed (all on top of cconv's forward kernels, so every result is bitwise identical for
any thread count and across calls: each output element is reduced in a fixed order):

* grad input = one C call (``cconv_conv_input_grad``, src/cconv/_c/grad/input_grad.c): the transposed
  convolution of grad_output (conv_transpose with the output_padding that recovers the input size;
  asymmetric padding runs on the padded size and crops). For reflect/replicate/circular/symmetric
  padding the gradient with respect to the *padded* input is computed and its border folded back
  onto the input positions it was copied from. At stride 1 with one group, where the auto rule
  picks Winograd for the equivalent forward correlation (flipped filter, C_in and C_out swapped,
  padding dilation*(k-1) - crop), the C planner runs it so (a 3x3 layer's grad input); otherwise
  the transposed GEMM. Depthwise convolutions (C_in/groups == 1) with finite filters use the
  depthwise forward kernel with the flipped filter on grad_output (zero-inserted when strided)
  instead, since the transposed GEMM wastes most of its tile there. A transposed convolution's
  grad input is the forward convolution of grad_output.
* grad weight = one C call (``cconv_conv_weight_grad``, src/cconv/_c/grad/weight_grad.c):
  ``dw[co, ci, k] = sum_{n, o} x_pad[n, ci, o*s + k*d] * g[n, co, o]`` is a GEMM whose reduction
  over batch and pixels is huge. It is cut into units (image, output plane, band of rows and
  columns) grouped into chunks, both fixed by the shape alone; each chunk's partial is accumulated
  by one thread and the partials are summed in chunk order, so the result is bitwise identical for
  any thread count. x and grad_output are read in place (NCHW or NHWC); each unit's padded input
  rows (any padding mode: the gradient of reflect/replicate/circular reaches the weights through
  the values copied) go into a per-thread band in cache. Dense, strided, dilated, grouped, 1x1,
  1-D/3-D run a register tile of (ci, tap) rows x output channels over grad_output packed per unit
  (when the input channels take several blocks, packed once per call into one reorder copy of
  grad_output, at most 64 MiB, so the blocks do not each pack it again);
  depthwise and narrow groups (C_in/groups * C_out/groups <= 16, or C_out/groups <= 2) run a
  bandwidth-bound pair kernel (one sweep per channel pair, all taps in registers).
* grad bias = a NumPy sum over batch and pixels.

dtypes follow the forward rule (float32 stays float32, float64 stays float64, mixed promotes).

Example (one gradient-descent step of a 3x3 layer on the loss ``L = mean(y ** 2)``)::

    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    >>> y = cconv.conv2d(x, w, padding=1)
    >>> g = 2 * y / y.size                                  # dL/dy
    >>> gw = cconv.grad.conv2d_weight(x, w.shape, g, padding=1)
    >>> gx = cconv.grad.conv2d_input(x.shape, w, g, padding=1)
    >>> gx.shape, gw.shape, cconv.grad.bias(g).shape
    ((4, 3, 8, 8), (5, 3, 3, 3), (5,))
    >>> bool(np.mean(cconv.conv2d(x, w - 0.1 * gw, padding=1) ** 2) < np.mean(y ** 2))
    True
"""
import functools
import inspect

import numpy as np

from . import _geometry
from ._geometry import as_array, conv_geometry, result_dtype
from ._core import input_grad_into as _input_grad_into, weight_grad_into as _weight_grad_into
from ._functions import (
    channel_shuffle as _channel_shuffle, depthwise_stages, flattened_stages,
    run_convolution as _run, separable_stages, shuffle_stage, shuffled_grouped_stages,
    spatially_separable_stages,
)

__all__ = [
    "conv1d_input", "conv2d_input", "conv3d_input",
    "conv1d_weight", "conv2d_weight", "conv3d_weight", "bias",
    "conv_transpose1d_input", "conv_transpose2d_input", "conv_transpose3d_input",
    "conv_transpose1d_weight", "conv_transpose2d_weight", "conv_transpose3d_weight",
    "depthwise_conv2d_input", "depthwise_conv2d_weight", "depthwise_conv2d_grads",
    "separable_conv2d_grads", "spatially_separable_conv2d_grads", "flattened_conv2d_grads",
    "shuffled_grouped_conv2d_grads", "channel_shuffle_input",
]


def __dir__():
    # The gradients only: not the helpers imported above (np, as_array, the stage builders, ...).
    return sorted(__all__)

# ------------------------------------------------------------------ small helpers

def _spatial_axes(geom):
    return tuple(range(1, 1 + geom.nd)) if geom.channels_last else tuple(range(2, 2 + geom.nd))


def _check_grad_output(g, shape, name="grad_output"):
    """g: an array or a shape."""
    got = tuple(g.shape) if hasattr(g, "shape") else tuple(g)
    if got != tuple(shape):
        raise ValueError(f"{name} has shape {got}, but the convolution's output has "
                         f"shape {tuple(shape)}")


def _shape_arg(name, shape):
    return _geometry.shape_tuple(name, shape)


# ------------------------------------------------------------------ grad input

def _input_grad(geom, w, g, dtype):
    """dL/dx for the convolution `geom` (forward or transposed); w and g as its weight and output."""
    out = _geometry.output_array(None, geom.x_shape, dtype, ())[0]
    return _input_grad_into(geom.desc(), _geometry.contiguous(g, dtype), _geometry.contiguous(w, dtype), out)


# ------------------------------------------------------------------ grad weight

def _weight_grad(geom, x, g, dtype):
    """dL/dw for the forward convolution `geom` (not transposed); x and g in geom's layout."""
    out = _geometry.output_array(None, geom.weight_shape, dtype, ())[0]
    return _weight_grad_into(geom.desc(), _geometry.contiguous(x, dtype), _geometry.contiguous(g, dtype), out)


# ------------------------------------------------------------------ public: plain convolutions

def _conv_input(nd, input_shape, weight, grad_output, stride, padding, dilation, groups,
                padding_mode, layout):
    weight, g = as_array("weight", weight), as_array("grad_output", grad_output)
    geom = conv_geometry(nd, _shape_arg("input_shape", input_shape), weight.shape, stride, padding,
                         dilation, groups, padding_mode=padding_mode, layout=layout,
                         x_name="input")
    _check_grad_output(g, geom.out_shape)
    return _input_grad(geom, weight, g, result_dtype(weight, g))


def _conv_weight(nd, input, weight_shape, grad_output, stride, padding, dilation, groups,
                 padding_mode, layout):
    x, g = as_array("input", input), as_array("grad_output", grad_output)
    geom = conv_geometry(nd, x.shape, _shape_arg("weight_shape", weight_shape), stride, padding,
                         dilation, groups, padding_mode=padding_mode, layout=layout,
                         x_name="input")
    _check_grad_output(g, geom.out_shape)
    return _weight_grad(geom, x, g, result_dtype(x, g))


def conv1d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                 padding_mode="zeros", layout=None):
    """Gradient of conv1d with respect to its input (like torch.nn.grad.conv1d_input).

    Given ``grad_output`` = dL/dy for ``y = conv1d(x, weight, ...)``, returns dL/dx: the
    transposed convolution of ``grad_output`` with ``weight``, cropped or folded back onto the
    input for every padding form and padding mode of :func:`cconv.conv1d`.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, L)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_out, C_in / groups, k)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv1d`); defaults 1, 0, 1, 1, "zeros",
        None (``"NCW"``).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`; dtype of ``weight`` and ``grad_output`` promoted as in the
        forward functions.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv1d_weight, bias, cconv.conv1d, cconv.conv_transpose1d

    Notes
    -----
    ``y`` is linear in ``x``, so ``<dL/dx, x> = <grad_output, conv1d(x, weight)>`` for any ``x``
    (the gradient is the adjoint of the convolution applied to ``grad_output``).

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 10)), rng.standard_normal((4, 3, 3))
    >>> g = rng.standard_normal(cconv.conv1d(x, w, padding=1).shape)
    >>> gx = cconv.grad.conv1d_input(x.shape, w, g, padding=1)
    >>> gx.shape == x.shape
    True
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv1d(x, w, padding=1)))
    True
    """
    return _conv_input(1, input_shape, weight, grad_output, stride, padding, dilation, groups,
                       padding_mode, layout)


def conv2d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                 padding_mode="zeros", layout=None):
    """Gradient of conv2d with respect to its input (like torch.nn.grad.conv2d_input).

    Given ``grad_output`` = dL/dy for ``y = conv2d(x, weight, ...)``, returns dL/dx: the
    transposed convolution of ``grad_output`` with ``weight``, cropped or folded back onto the
    input for every padding form and padding mode of :func:`cconv.conv2d`.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, H, W)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_out, C_in / groups, kh, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv2d`); defaults 1, 0, 1, 1, "zeros",
        None (``"NCHW"``).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`; dtype of ``weight`` and ``grad_output`` promoted as in the
        forward functions.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv2d_weight, bias, cconv.conv2d, cconv.conv_transpose2d

    Notes
    -----
    ``y`` is linear in ``x``, so ``<dL/dx, x> = <grad_output, conv2d(x, weight)>`` for any ``x``
    (the gradient is the adjoint of the convolution applied to ``grad_output``).
    At stride 1 with one group a 3x3 layer's input gradient may run as Winograd (see
    :func:`cconv.conv2d`); ``cconv.set_allow_lossy(False)`` forbids it.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv2d(x, w, padding=1).shape)
    >>> gx = cconv.grad.conv2d_input(x.shape, w, g, padding=1)
    >>> gx.shape == x.shape
    True
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv2d(x, w, padding=1)))
    True
    """
    return _conv_input(2, input_shape, weight, grad_output, stride, padding, dilation, groups,
                       padding_mode, layout)


def conv3d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                 padding_mode="zeros", layout=None):
    """Gradient of conv3d with respect to its input (like torch.nn.grad.conv3d_input).

    Given ``grad_output`` = dL/dy for ``y = conv3d(x, weight, ...)``, returns dL/dx: the
    transposed convolution of ``grad_output`` with ``weight``, cropped or folded back onto the
    input for every padding form and padding mode of :func:`cconv.conv3d`.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, D, H, W)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_out, C_in / groups, kd, kh, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv3d`); defaults 1, 0, 1, 1, "zeros",
        None (``"NCDHW"``).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`; dtype of ``weight`` and ``grad_output`` promoted as in the
        forward functions.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv3d_weight, bias, cconv.conv3d, cconv.conv_transpose3d

    Notes
    -----
    ``y`` is linear in ``x``, so ``<dL/dx, x> = <grad_output, conv3d(x, weight)>`` for any ``x``
    (the gradient is the adjoint of the convolution applied to ``grad_output``).
    At stride 1 with one group a 3x3 layer's input gradient may run as Winograd (see
    :func:`cconv.conv2d`); ``cconv.set_allow_lossy(False)`` forbids it.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 2, 4, 4, 4)), rng.standard_normal((3, 2, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv3d(x, w, padding=1).shape)
    >>> gx = cconv.grad.conv3d_input(x.shape, w, g, padding=1)
    >>> gx.shape == x.shape
    True
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv3d(x, w, padding=1)))
    True
    """
    return _conv_input(3, input_shape, weight, grad_output, stride, padding, dilation, groups,
                       padding_mode, layout)


def conv1d_weight(input, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                  padding_mode="zeros", layout=None):
    """Gradient of conv1d with respect to its weight (like torch.nn.grad.conv1d_weight).

    Given the forward input and ``grad_output`` = dL/dy for ``y = conv1d(input, weight, ...)``,
    returns dL/dweight, for every padding form and padding mode of :func:`cconv.conv1d`.
    Deterministic: bitwise identical for any number of threads.

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, L)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_out, C_in / groups, k)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv1d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; dtype of ``input`` and ``grad_output`` promoted.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv1d_input, bias, cconv.conv1d

    Notes
    -----
    ``dL/dw[o, c, p...] = sum_(n, i...) x_pad[n, c', i*s + p*d] * grad_output[n, o, i...]``
    (``c'`` the input channel of group ``o // (C_out / groups)``), reduced in a fixed order.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 10)), rng.standard_normal((4, 3, 3))
    >>> g = rng.standard_normal(cconv.conv1d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv1d_weight(x, w.shape, g, stride=2)
    >>> gw.shape == w.shape
    True
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv1d(x, w, stride=2)))
    True
    """
    return _conv_weight(1, input, weight_shape, grad_output, stride, padding, dilation, groups,
                        padding_mode, layout)


def conv2d_weight(input, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                  padding_mode="zeros", layout=None):
    """Gradient of conv2d with respect to its weight (like torch.nn.grad.conv2d_weight).

    Given the forward input and ``grad_output`` = dL/dy for ``y = conv2d(input, weight, ...)``,
    returns dL/dweight, for every padding form and padding mode of :func:`cconv.conv2d`.
    Deterministic: bitwise identical for any number of threads.

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, H, W)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_out, C_in / groups, kh, kw)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv2d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; dtype of ``input`` and ``grad_output`` promoted.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv2d_input, bias, cconv.conv2d

    Notes
    -----
    ``dL/dw[o, c, p...] = sum_(n, i...) x_pad[n, c', i*s + p*d] * grad_output[n, o, i...]``
    (``c'`` the input channel of group ``o // (C_out / groups)``), reduced in a fixed order.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv2d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv2d_weight(x, w.shape, g, stride=2)
    >>> gw.shape == w.shape
    True
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv2d(x, w, stride=2)))
    True
    """
    return _conv_weight(2, input, weight_shape, grad_output, stride, padding, dilation, groups,
                        padding_mode, layout)


def conv3d_weight(input, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                  padding_mode="zeros", layout=None):
    """Gradient of conv3d with respect to its weight (like torch.nn.grad.conv3d_weight).

    Given the forward input and ``grad_output`` = dL/dy for ``y = conv3d(input, weight, ...)``,
    returns dL/dweight, for every padding form and padding mode of :func:`cconv.conv3d`.
    Deterministic: bitwise identical for any number of threads.

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, D, H, W)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_out, C_in / groups, kd, kh, kw)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.conv3d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; dtype of ``input`` and ``grad_output`` promoted.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv3d_input, bias, cconv.conv3d

    Notes
    -----
    ``dL/dw[o, c, p...] = sum_(n, i...) x_pad[n, c', i*s + p*d] * grad_output[n, o, i...]``
    (``c'`` the input channel of group ``o // (C_out / groups)``), reduced in a fixed order.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 2, 4, 4, 4)), rng.standard_normal((3, 2, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv3d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv3d_weight(x, w.shape, g, stride=2)
    >>> gw.shape == w.shape
    True
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv3d(x, w, stride=2)))
    True
    """
    return _conv_weight(3, input, weight_shape, grad_output, stride, padding, dilation, groups,
                        padding_mode, layout)


def bias(grad_output, *, layout=None):
    """Gradient with respect to the bias of any convolution: grad_output summed over the batch
    and every spatial position, shape (C_out,).

    Parameters
    ----------
    grad_output : array_like, shape ``(N, C_out, *spatial)``
        dL/dy of any convolution, 1 to 3 spatial dimensions; ``(N, *spatial, C_out)`` with a
        channels-last `layout`.
    layout : str, optional
        The forward call's layout (``"NCHW"``, ``"NHWC"``, ...). Default None (channels-first).

    Returns
    -------
    ndarray, shape ``(C_out,)``
        dL/dbias.

    Raises
    ------
    ValueError
        If `grad_output` is not 3-D to 5-D, or `layout` does not fit it.
    TypeError
        If `grad_output` is not real numeric.

    See Also
    --------
    conv2d_input, conv2d_weight

    Examples
    --------
    >>> import numpy as np
    >>> import cconv.grad
    >>> cconv.grad.bias(np.ones((2, 3, 4, 5)))
    array([40., 40., 40.])
    """
    g = as_array("grad_output", grad_output)
    if g.ndim not in (3, 4, 5):
        raise ValueError(f"grad_output must be 3-D to 5-D (N, C, *spatial), got shape {g.shape}")
    last = _geometry.channels_last(layout, g.ndim - 2)
    axes = tuple(a for a in range(g.ndim) if a != (g.ndim - 1 if last else 1))
    dtype = result_dtype(g)
    return np.asarray(g.sum(axis=axes, dtype=dtype), dtype)


# ------------------------------------------------------------------ public: transposed

def _tconv_geoms(nd, x_shape, w_shape, g_shape, stride, padding, output_padding, groups, dilation,
                 layout):
    """(transposed geometry, the forward geometry whose adjoint it is: conv of grad_output)."""
    tgeom = conv_geometry(nd, x_shape, w_shape, stride, padding, dilation, groups, layout=layout,
                          transposed=True, output_padding=output_padding, x_name="input")
    _check_grad_output(g_shape, tgeom.out_shape)
    fgeom = conv_geometry(nd, tgeom.out_shape, w_shape, stride, padding, dilation, groups,
                          layout=layout, x_name="grad_output")
    return tgeom, fgeom


def _conv_transpose_input(nd, input_shape, weight, grad_output, stride, padding, output_padding,
                          groups, dilation, layout):
    weight, g = as_array("weight", weight), as_array("grad_output", grad_output)
    tgeom, _ = _tconv_geoms(nd, _shape_arg("input_shape", input_shape), weight.shape, g.shape,
                            stride, padding, output_padding, groups, dilation, layout)
    return _input_grad(tgeom, weight, g, result_dtype(weight, g))


def _conv_transpose_weight(nd, input, weight_shape, grad_output, stride, padding, output_padding,
                           groups, dilation, layout):
    x, g = as_array("input", input), as_array("grad_output", grad_output)
    tgeom, fgeom = _tconv_geoms(nd, x.shape, _shape_arg("weight_shape", weight_shape), g.shape,
                                stride, padding, output_padding, groups, dilation, layout)
    dtype = result_dtype(x, g)
    if fgeom.out_size != tgeom.in_size:   # the conv of grad_output reaches past the input: zeros
        widths = [(0, 0)] * x.ndim
        for ax, o, i in zip(_spatial_axes(tgeom), fgeom.out_size, tgeom.in_size):
            widths[ax] = (0, o - i)
        x = np.pad(x, widths)
    # dL/dw[ci, co, k] = sum x[n, ci, i] g[n, co, i*s + k*d - p]: the weight gradient of the
    # convolution of grad_output (as input) producing x (as its output gradient).
    return _weight_grad(fgeom, g, x, dtype)


def conv_transpose1d_input(input_shape, weight, grad_output, stride=1, padding=0,
                           output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose1d with respect to its input: the convolution of grad_output.

    ``y = conv_transpose1d(x, weight, ...)`` is the adjoint of ``cconv.conv1d`` with the same
    weight, so dL/dx is ``cconv.conv1d(grad_output, weight, stride=stride, padding=padding, ...)``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, L)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_in, C_out / groups, k)``
        The forward filters, as for :func:`cconv.conv_transpose1d`.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose1d`).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose1d_weight, cconv.conv_transpose1d, cconv.conv1d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))
    >>> g = rng.standard_normal(cconv.conv_transpose1d(x, w, stride=2).shape)
    >>> gx = cconv.grad.conv_transpose1d_input(x.shape, w, g, stride=2)
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv_transpose1d(x, w, stride=2)))
    True
    """
    return _conv_transpose_input(1, input_shape, weight, grad_output, stride, padding,
                                 output_padding, groups, dilation, layout)


def conv_transpose2d_input(input_shape, weight, grad_output, stride=1, padding=0,
                           output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose2d with respect to its input: the convolution of grad_output.

    ``y = conv_transpose2d(x, weight, ...)`` is the adjoint of ``cconv.conv2d`` with the same
    weight, so dL/dx is ``cconv.conv2d(grad_output, weight, stride=stride, padding=padding, ...)``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, H, W)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_in, C_out / groups, kh, kw)``
        The forward filters, as for :func:`cconv.conv_transpose2d`.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose2d`).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose2d_weight, cconv.conv_transpose2d, cconv.conv2d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((4, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv_transpose2d(x, w, stride=2).shape)
    >>> gx = cconv.grad.conv_transpose2d_input(x.shape, w, g, stride=2)
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv_transpose2d(x, w, stride=2)))
    True
    """
    return _conv_transpose_input(2, input_shape, weight, grad_output, stride, padding,
                                 output_padding, groups, dilation, layout)


def conv_transpose3d_input(input_shape, weight, grad_output, stride=1, padding=0,
                           output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose3d with respect to its input: the convolution of grad_output.

    ``y = conv_transpose3d(x, weight, ...)`` is the adjoint of ``cconv.conv3d`` with the same
    weight, so dL/dx is ``cconv.conv3d(grad_output, weight, stride=stride, padding=padding, ...)``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input ``x``, ``(N, C_in, D, H, W)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C_in, C_out / groups, kd, kh, kw)``
        The forward filters, as for :func:`cconv.conv_transpose3d`.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose3d`).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose3d_weight, cconv.conv_transpose3d, cconv.conv3d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 3, 2, 2, 2)), rng.standard_normal((3, 2, 2, 2, 2))
    >>> g = rng.standard_normal(cconv.conv_transpose3d(x, w, stride=2).shape)
    >>> gx = cconv.grad.conv_transpose3d_input(x.shape, w, g, stride=2)
    >>> np.allclose(np.vdot(gx, x), np.vdot(g, cconv.conv_transpose3d(x, w, stride=2)))
    True
    """
    return _conv_transpose_input(3, input_shape, weight, grad_output, stride, padding,
                                 output_padding, groups, dilation, layout)


def conv_transpose1d_weight(input, weight_shape, grad_output, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose1d with respect to its weight (C_in, C_out/groups, k).

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, L)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_in, C_out / groups, k)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose1d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; bitwise identical for any number of threads.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose1d_input, cconv.conv_transpose1d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))
    >>> g = rng.standard_normal(cconv.conv_transpose1d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv_transpose1d_weight(x, w.shape, g, stride=2)
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv_transpose1d(x, w, stride=2)))
    True
    """
    return _conv_transpose_weight(1, input, weight_shape, grad_output, stride, padding,
                                  output_padding, groups, dilation, layout)


def conv_transpose2d_weight(input, weight_shape, grad_output, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose2d with respect to its weight (C_in, C_out/groups, kh, kw).

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, H, W)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_in, C_out / groups, kh, kw)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose2d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; bitwise identical for any number of threads.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose2d_input, cconv.conv_transpose2d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((4, 3, 3, 3))
    >>> g = rng.standard_normal(cconv.conv_transpose2d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv_transpose2d_weight(x, w.shape, g, stride=2)
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv_transpose2d(x, w, stride=2)))
    True
    """
    return _conv_transpose_weight(2, input, weight_shape, grad_output, stride, padding,
                                  output_padding, groups, dilation, layout)


def conv_transpose3d_weight(input, weight_shape, grad_output, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1, *, layout=None):
    """Gradient of conv_transpose3d with respect to its weight (C_in, C_out/groups, kd, kh, kw).

    Parameters
    ----------
    input : array_like, shape ``(N, C_in, D, H, W)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        Shape of the forward filters, ``(C_in, C_out / groups, kd, kh, kw)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, output_padding, groups, dilation, layout
        The forward call's arguments (see :func:`cconv.conv_transpose3d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`; bitwise identical for any number of threads.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    conv_transpose3d_input, cconv.conv_transpose3d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 3, 2, 2, 2)), rng.standard_normal((3, 2, 2, 2, 2))
    >>> g = rng.standard_normal(cconv.conv_transpose3d(x, w, stride=2).shape)
    >>> gw = cconv.grad.conv_transpose3d_weight(x, w.shape, g, stride=2)
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.conv_transpose3d(x, w, stride=2)))
    True
    """
    return _conv_transpose_weight(3, input, weight_shape, grad_output, stride, padding,
                                  output_padding, groups, dilation, layout)


# ------------------------------------------------------------------ public: composite variants

def _stage_grads(geom, x, w, g, dtype, input_grad):
    gw = _weight_grad(geom, x, g, dtype)
    gx = _input_grad(geom, w, g, dtype) if input_grad else None
    return gx, gw


def _grads_chain(stages, x, weights, g, dtype, input_grad):
    """Backward through a chain of convolution stages: recompute the intermediates, then go
    back stage by stage. Returns (grad_x or None, [grad of each stage's weight])."""
    acts = [np.asarray(x)]
    for geom, w in zip(stages[:-1], weights[:-1]):
        acts.append(_run(geom, acts[-1], w, None, dtype))
    grads = [None] * len(stages)
    for i in range(len(stages) - 1, -1, -1):
        need = input_grad or i > 0
        gx, grads[i] = _stage_grads(stages[i], acts[i], weights[i], g, dtype, need)
        g = gx
    return g, grads


def depthwise_conv2d_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, *,
                           layout=None):
    """Gradient of depthwise_conv2d with respect to its input; weight (C*m, 1, kh, kw).

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward input, ``(N, C, H, W)`` (or per `layout`).
    input_size : tuple of int, optional
        PyTorch's name for `input_shape` (``torch.nn.grad``); give one or the other.
    weight : array_like, shape ``(C * m, 1, kh, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape ``(N, C * m, OH, OW)``.
    stride, padding, dilation, layout
        The forward call's arguments (see :func:`cconv.depthwise_conv2d`).

    Returns
    -------
    ndarray
        dL/dx, shape `input_shape`.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `input_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    depthwise_conv2d_weight, depthwise_conv2d_grads, cconv.depthwise_conv2d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((6, 1, 3, 3))
    >>> g = rng.standard_normal((2, 6, 6, 6))
    >>> gx = cconv.grad.depthwise_conv2d_input(x.shape, w, g, padding=1)
    >>> np.allclose(gx, cconv.grad.conv2d_input(x.shape, w, g, padding=1, groups=3))
    True
    """
    weight, g = as_array("weight", weight), as_array("grad_output", grad_output)
    (geom,) = depthwise_stages(_shape_arg("input_shape", input_shape), weight.shape, stride,
                               padding, dilation, layout)
    _check_grad_output(g, geom.out_shape)
    return _input_grad(geom, weight, g, result_dtype(weight, g))


def depthwise_conv2d_weight(input, weight_shape, grad_output, stride=1, padding=0, dilation=1, *,
                            layout=None):
    """Gradient of depthwise_conv2d with respect to its weight (C*m, 1, kh, kw).

    Parameters
    ----------
    input : array_like, shape ``(N, C, H, W)``
        The forward input (or per `layout`).
    weight_shape : tuple of int
        ``(C * m, 1, kh, kw)``.
    weight_size : tuple of int, optional
        PyTorch's name for `weight_shape` (``torch.nn.grad``); give one or the other.
    grad_output : array_like
        dL/dy, of the forward output's shape ``(N, C * m, OH, OW)``.
    stride, padding, dilation, layout
        The forward call's arguments (see :func:`cconv.depthwise_conv2d`).

    Returns
    -------
    ndarray
        dL/dweight, shape `weight_shape`.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If `weight_shape` is not a sequence of ints or an array is not real numeric.

    See Also
    --------
    depthwise_conv2d_input, depthwise_conv2d_grads, cconv.depthwise_conv2d

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((3, 1, 3, 3))
    >>> g = rng.standard_normal((2, 3, 4, 4))
    >>> gw = cconv.grad.depthwise_conv2d_weight(x, w.shape, g)
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, cconv.depthwise_conv2d(x, w)))
    True
    """
    x, g = as_array("input", input), as_array("grad_output", grad_output)
    (geom,) = depthwise_stages(x.shape, _shape_arg("weight_shape", weight_shape), stride, padding,
                               dilation, layout)
    _check_grad_output(g, geom.out_shape)
    return _weight_grad(geom, x, g, result_dtype(x, g))


def depthwise_conv2d_grads(x, weight, grad_output, stride=1, padding=0, dilation=1, *,
                           layout=None, input_grad=True):
    """All gradients of depthwise_conv2d: (grad_x, grad_weight, grad_bias).

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        The forward input (or per `layout`).
    weight : array_like, shape ``(C * m, 1, kh, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, layout
        The forward call's arguments (see :func:`cconv.depthwise_conv2d`).
    input_grad : bool, optional
        False skips dL/dx (returned as None), e.g. for a network's first layer. Default True.

    Returns
    -------
    grad_x : ndarray or None
        dL/dx, shape of `x` (None if ``input_grad=False``).
    grad_weight : ndarray
        dL/dweight, shape of `weight`.
    grad_bias : ndarray, shape ``(C * m,)``
        dL/dbias.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If an array is not real numeric.

    See Also
    --------
    depthwise_conv2d_input, depthwise_conv2d_weight, cconv.depthwise_conv2d

    Notes
    -----
    The intermediate activations are recomputed (one forward stage each); every gradient is
    computed in the common dtype of all the inputs. ``grad_bias`` is returned whether or not
    the forward call used a bias.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv.grad
    >>> x, w = np.ones((1, 2, 5, 5)), np.ones((2, 1, 3, 3))
    >>> gx, gw, gb = cconv.grad.depthwise_conv2d_grads(x, w, np.ones((1, 2, 3, 3)))
    >>> gx.shape, gw.shape, gb
    ((1, 2, 5, 5), (2, 1, 3, 3), array([9., 9.]))
    """
    x, w, g = as_array("x", x), as_array("weight", weight), as_array("grad_output", grad_output)
    stages = depthwise_stages(x.shape, w.shape, stride, padding, dilation, layout)
    _check_grad_output(g, stages[-1].out_shape)
    dtype = result_dtype(x, w, g)
    gx, (gw,) = _grads_chain(stages, x, [w], g, dtype, input_grad)
    return gx, gw, bias(g, layout=layout)


def separable_conv2d_grads(x, depthwise_weight, pointwise_weight, grad_output, stride=1,
                           padding=0, dilation=1, *, layout=None, input_grad=True):
    """All gradients of separable_conv2d (depthwise k x k, then 1x1).

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        The forward input (or per `layout`).
    depthwise_weight : array_like, shape ``(C * m, 1, kh, kw)``
        The forward depthwise filters.
    pointwise_weight : array_like, shape ``(C_out, C * m, 1, 1)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, layout
        The forward call's arguments (see :func:`cconv.separable_conv2d`).
    input_grad : bool, optional
        False skips dL/dx (returned as None), e.g. for a network's first layer. Default True.

    Returns
    -------
    grad_x : ndarray or None
        dL/dx (None if ``input_grad=False``).
    grad_depthwise_weight, grad_pointwise_weight : ndarray
        Of the weights' shapes.
    grad_bias : ndarray, shape ``(C_out,)``

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If an array is not real numeric.

    See Also
    --------
    cconv.separable_conv2d, depthwise_conv2d_grads

    Notes
    -----
    The intermediate activations are recomputed (one forward stage each); every gradient is
    computed in the common dtype of all the inputs. ``grad_bias`` is returned whether or not
    the forward call used a bias.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 6, 6))
    >>> dw, pw = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((5, 3, 1, 1))
    >>> g = rng.standard_normal((2, 5, 4, 4))
    >>> gx, gdw, gpw, gb = cconv.grad.separable_conv2d_grads(x, dw, pw, g)
    >>> y = cconv.separable_conv2d(x, dw, pw)
    >>> np.allclose(np.vdot(gpw, pw), np.vdot(g, y)), np.allclose(np.vdot(gx, x), np.vdot(g, y))
    (True, True)
    """
    x, g = as_array("x", x), as_array("grad_output", grad_output)
    dw = as_array("depthwise_weight", depthwise_weight)
    pw = as_array("pointwise_weight", pointwise_weight)
    stages = separable_stages(x.shape, dw.shape, pw.shape, stride, padding, dilation, layout)
    _check_grad_output(g, stages[-1].out_shape)
    dtype = result_dtype(x, dw, pw, g)
    gx, (gdw, gpw) = _grads_chain(stages, x, [dw, pw], g, dtype, input_grad)
    return gx, gdw, gpw, bias(g, layout=layout)


def spatially_separable_conv2d_grads(x, vertical_weight, horizontal_weight, grad_output, stride=1,
                                     padding=0, dilation=1, groups=1, *, layout=None,
                                     input_grad=True):
    """All gradients of spatially_separable_conv2d (kh x 1, then 1 x kw).

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        The forward input (or per `layout`).
    vertical_weight : array_like, shape ``(C_mid, C_in / groups, kh, 1)``
        The forward vertical filters.
    horizontal_weight : array_like, shape ``(C_out, C_mid / groups, 1, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, groups, layout
        The forward call's arguments (see :func:`cconv.spatially_separable_conv2d`).
    input_grad : bool, optional
        False skips dL/dx (returned as None), e.g. for a network's first layer. Default True.

    Returns
    -------
    grad_x : ndarray or None
        dL/dx (None if ``input_grad=False``).
    grad_vertical_weight, grad_horizontal_weight : ndarray
        Of the weights' shapes.
    grad_bias : ndarray, shape ``(C_out,)``

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If an array is not real numeric.

    See Also
    --------
    cconv.spatially_separable_conv2d

    Notes
    -----
    The intermediate activations are recomputed (one forward stage each); every gradient is
    computed in the common dtype of all the inputs. ``grad_bias`` is returned whether or not
    the forward call used a bias.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((1, 2, 6, 6))
    >>> v, h = rng.standard_normal((2, 2, 3, 1)), rng.standard_normal((4, 2, 1, 3))
    >>> g = rng.standard_normal((1, 4, 6, 6))
    >>> gx, gv, gh, gb = cconv.grad.spatially_separable_conv2d_grads(x, v, h, g, padding=1)
    >>> y = cconv.spatially_separable_conv2d(x, v, h, padding=1)
    >>> np.allclose(np.vdot(gh, h), np.vdot(g, y)), gv.shape, gb.shape
    (True, (2, 2, 3, 1), (4,))
    """
    x, g = as_array("x", x), as_array("grad_output", grad_output)
    v = as_array("vertical_weight", vertical_weight)
    h = as_array("horizontal_weight", horizontal_weight)
    stages = spatially_separable_stages(x.shape, v.shape, h.shape, stride, padding, dilation,
                                        groups, layout)
    _check_grad_output(g, stages[-1].out_shape)
    dtype = result_dtype(x, v, h, g)
    gx, (gv, gh) = _grads_chain(stages, x, [v, h], g, dtype, input_grad)
    return gx, gv, gh, bias(g, layout=layout)


def flattened_conv2d_grads(x, channel_weight, vertical_weight, horizontal_weight, grad_output,
                           stride=1, padding=0, dilation=1, *, layout=None, input_grad=True):
    """All gradients of flattened_conv2d (1x1 across channels, then a vertical and a horizontal
    1-D filter per output channel).

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        The forward input (or per `layout`).
    channel_weight : array_like, shape ``(C_out, C_in)``
        The forward 1x1 factor.
    vertical_weight : array_like, shape ``(C_out, kh)``
        The forward vertical factor.
    horizontal_weight : array_like, shape ``(C_out, kw)``
        The forward factors.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    stride, padding, dilation, layout
        The forward call's arguments (see :func:`cconv.flattened_conv2d`).
    input_grad : bool, optional
        False skips dL/dx (returned as None), e.g. for a network's first layer. Default True.

    Returns
    -------
    grad_x : ndarray or None
        dL/dx (None if ``input_grad=False``).
    grad_channel_weight, grad_vertical_weight, grad_horizontal_weight : ndarray
        Of the factors' shapes, ``(C_out, C_in)``, ``(C_out, kh)``, ``(C_out, kw)``.
    grad_bias : ndarray, shape ``(C_out,)``

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If an array is not real numeric.

    See Also
    --------
    cconv.flattened_conv2d

    Notes
    -----
    The intermediate activations are recomputed (one forward stage each); every gradient is
    computed in the common dtype of all the inputs. ``grad_bias`` is returned whether or not
    the forward call used a bias.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((1, 3, 6, 6))
    >>> ch, v, h = (rng.standard_normal((4, 3)) for _ in range(3))
    >>> g = rng.standard_normal((1, 4, 4, 4))
    >>> gx, gc, gv, gh, gb = cconv.grad.flattened_conv2d_grads(x, ch, v, h, g)
    >>> y = cconv.flattened_conv2d(x, ch, v, h)
    >>> np.allclose(np.vdot(gc, ch), np.vdot(g, y)), gv.shape
    (True, (4, 3))
    """
    x, g = as_array("x", x), as_array("grad_output", grad_output)
    ch = as_array("channel_weight", channel_weight)
    v = as_array("vertical_weight", vertical_weight)
    h = as_array("horizontal_weight", horizontal_weight)
    stages = flattened_stages(x.shape, ch.shape, v.shape, h.shape, stride, padding, dilation,
                              layout)
    _check_grad_output(g, stages[-1].out_shape)
    dtype = result_dtype(x, ch, v, h, g)
    cout = ch.shape[0]
    weights = [ch.reshape(cout, -1, 1, 1), v.reshape(cout, 1, -1, 1), h.reshape(cout, 1, 1, -1)]
    gx, (gc, gv, gh) = _grads_chain(stages, x, weights, g, dtype, input_grad)
    return (gx, gc.reshape(ch.shape), gv.reshape(v.shape), gh.reshape(h.shape),
            bias(g, layout=layout))


def shuffled_grouped_conv2d_grads(x, weight, grad_output, groups, stride=1, padding=0,
                                  dilation=1, *, shuffle_groups=None, padding_mode="zeros",
                                  layout=None, input_grad=True):
    """All gradients of shuffled_grouped_conv2d (grouped conv2d, then a channel shuffle):
    (grad_x, grad_weight, grad_bias).

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        The forward input (or per `layout`).
    weight : array_like, shape ``(C_out, C_in / groups, kh, kw)``
        The forward filters.
    grad_output : array_like
        dL/dy, of the forward output's shape.
    groups : int
        The convolution's channel groups (may be given by keyword).
    stride, padding, dilation, shuffle_groups, padding_mode, layout
        The forward call's arguments (see :func:`cconv.shuffled_grouped_conv2d`).
    input_grad : bool, optional
        False skips dL/dx (returned as None), e.g. for a network's first layer. Default True.

    Returns
    -------
    grad_x : ndarray or None
        dL/dx (None if ``input_grad=False``).
    grad_weight : ndarray
        Of the weight's shape.
    grad_bias : ndarray, shape ``(C_out,)``
        Of the bias the convolution adds before the shuffle.

    Raises
    ------
    ValueError
        If `grad_output` does not have the forward output's shape, or the arguments are invalid
        for the forward call.
    TypeError
        If an array is not real numeric.

    See Also
    --------
    cconv.shuffled_grouped_conv2d, channel_shuffle_input

    Notes
    -----
    The intermediate activations are recomputed (one forward stage each); every gradient is
    computed in the common dtype of all the inputs. ``grad_bias`` is returned whether or not
    the forward call used a bias.

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3))
    >>> g = rng.standard_normal((1, 4, 3, 3))
    >>> gx, gw, gb = cconv.grad.shuffled_grouped_conv2d_grads(x, w, g, 2)
    >>> y = cconv.shuffled_grouped_conv2d(x, w, 2)
    >>> np.allclose(np.vdot(gw, w), np.vdot(g, y)), np.allclose(np.vdot(gx, x), np.vdot(g, y))
    (True, True)
    """
    x, w, g = as_array("x", x), as_array("weight", weight), as_array("grad_output", grad_output)
    conv, shuf = shuffled_grouped_stages(x.shape, w.shape, groups, stride, padding, dilation,
                                         shuffle_groups, padding_mode, layout)
    _check_grad_output(g, shuf.out_shape)
    dtype = result_dtype(x, w, g)
    # The shuffle is a permutation: its gradient is the inverse shuffle, after which the conv
    # stage (and the bias, which the forward adds before shuffling) sees its own grad_output.
    g = channel_shuffle_input(g.astype(dtype, copy=False), shuf.groups, layout=layout)
    gx, (gw,) = _grads_chain([conv], x, [w], g, dtype, input_grad)
    return gx, gw, bias(g, layout=layout)


def channel_shuffle_input(grad_output, groups, *, layout=None):
    """Gradient of channel_shuffle(x, groups): the inverse permutation, which is the shuffle
    with C/groups groups.

    Parameters
    ----------
    grad_output : array_like, shape ``(N, C, *spatial)``
        dL/dy of ``channel_shuffle(x, groups)`` (channels last with a channels-last `layout`).
    groups : int
        The forward call's groups; divides ``C``.
    layout : str, optional
        The forward call's layout. Default None (channels-first).

    Returns
    -------
    ndarray
        dL/dx, of `grad_output`'s shape and dtype.

    Raises
    ------
    ValueError
        If `groups` does not divide ``C`` or `grad_output` has fewer than 3 dimensions.
    TypeError
        If `grad_output` is not real numeric.

    See Also
    --------
    cconv.channel_shuffle

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> import cconv.grad
    >>> x = np.arange(6.0).reshape(1, 6, 1)
    >>> np.array_equal(cconv.grad.channel_shuffle_input(cconv.channel_shuffle(x, 2), 2), x)
    True
    """
    g = as_array("grad_output", grad_output)
    st = shuffle_stage(g.shape, groups, layout)
    c = g.shape[-1] if st.channels_last else g.shape[1]
    return _channel_shuffle(g, c // st.groups, layout=layout)


# ------------------------------------------------------------------ torch.nn.grad's keyword names

_TORCH_NAMES = {"input_shape": "input_size", "weight_shape": "weight_size"}


def _accept_torch_names(fn):
    """fn, also taking its input_shape / weight_shape argument by torch.nn.grad's keyword name
    (input_size / weight_size), so that code written for torch.nn.grad runs unchanged."""
    sig = inspect.signature(fn)
    params = list(sig.parameters)
    ours = next(p for p in params if p in _TORCH_NAMES)
    theirs, position = _TORCH_NAMES[ours], params.index(ours)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if theirs in kwargs:
            if ours in kwargs or len(args) > position:
                raise TypeError(f"{fn.__name__}() got both {ours} and {theirs} (torch's name for "
                                f"it): pass one")
            kwargs[ours] = kwargs.pop(theirs)
        return fn(*args, **kwargs)

    setattr(wrapper, "__signature__", sig.replace(parameters=[*sig.parameters.values(), inspect.Parameter(
        theirs, inspect.Parameter.KEYWORD_ONLY, default=None)]))
    return wrapper


for _name in __all__:
    if any(p in _TORCH_NAMES for p in inspect.signature(globals()[_name]).parameters):
        globals()[_name] = _accept_torch_names(globals()[_name])
del _name
