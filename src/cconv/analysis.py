"""Convolution arithmetic and cost models: the survey article's analysis as an API.

Everything here works on *shapes*, never on data, and goes through the same argument
validation the kernels use (``cconv._geometry`` / ``cconv._functions.describe``), so the numbers
describe exactly what the functions compute:

* :func:`output_size`, :func:`transposed_output_size`: one spatial dimension's size.
* :func:`output_shape`: the shape any public function returns, from the argument shapes.
* :func:`cost`, :func:`stage_costs`: multiplications, additions, FLOPs, parameters, minimum
  memory traffic and arithmetic intensity of a call (a :class:`Cost`).
* :func:`receptive_field`: receptive field of a stack of (dilated, strided) layers.
* :func:`checkerboard`, :func:`overlap_pattern`: uneven overlap of transposed convolutions.

Example (the article's depthwise separable example)::

    >>> from cconv import analysis
    >>> analysis.cost("conv2d", (1, 3, 7, 7), (128, 3, 3, 3)).multiplications
    86400
    >>> analysis.cost("separable_conv2d", (1, 3, 7, 7), (3, 1, 3, 3), (128, 3, 1, 1)).multiplications
    10275
"""
import dataclasses
from dataclasses import dataclass, field
import itertools
import math
import numbers

import numpy as np

from . import _geometry, _registry

__all__ = [
    "output_size", "transposed_output_size", "output_shape", "stages", "cost", "stage_costs",
    "Cost", "receptive_field", "checkerboard", "overlap_pattern", "FUNCTIONS",
]

#: Names of the public functions the shape and cost models understand: all of them.
FUNCTIONS = _registry.NAMES


# --------------------------------------------------------------------------- validation helpers

def _int(name, v, minimum):
    if not _geometry._is_int(v):
        raise TypeError(f"{name} must be an int, got {v!r}")
    v = int(v)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _pad_pair(padding):
    """int (per side) or (before, after) -> (before, after), both >= 0."""
    if _geometry._is_int(padding):
        p = _int("padding", padding, 0)
        return p, p
    try:
        b, a = padding
    except (TypeError, ValueError):
        raise TypeError(f"padding must be an int or a (before, after) pair, got {padding!r}") from None
    return _int("padding (before)", b, 0), _int("padding (after)", a, 0)


# --------------------------------------------------------------------------- sizes

def output_size(i, k, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one dimension.

    ``o = floor((i + p_before + p_after - d(k - 1) - 1) / s) + 1`` (Dumoulin & Visin), the
    formula the kernels use (``cconv._geometry.output_size``).

    Parameters
    ----------
    i : int
        Input length, >= 1.
    k : int
        Kernel length, >= 1.
    stride : int, optional
        >= 1. Default 1.
    padding : int, (int, int), "valid" or "same", optional
        Padding per side, a ``(before, after)`` pair, ``"valid"`` (0) or ``"same"``
        (TensorFlow's rule, output ``ceil(i / s)``, as the functions accept it). Default 0.
    dilation : int, optional
        >= 1. Default 1.

    Returns
    -------
    int
        The output length, >= 1.

    Raises
    ------
    ValueError
        If the dilated kernel does not fit in the padded input (the functions reject such calls
        too), or an argument is out of range.
    TypeError
        If an argument is not an int (or `padding` not a pair or string).

    See Also
    --------
    transposed_output_size, output_shape

    Examples
    --------
    >>> from cconv.analysis import output_size
    >>> output_size(5, 3, stride=2, padding=1)
    3
    >>> output_size(7, 3, dilation=2)
    3
    >>> output_size(7, 3, stride=2, padding="same")
    4
    """
    i = _int("i", i, 1)
    k = _int("k", k, 1)
    stride = _int("stride", stride, 1)
    dilation = _int("dilation", dilation, 1)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            padding = (0, 0)
        elif mode == "same":
            padding = _geometry.same_padding(i, k, stride, dilation)
        else:
            raise ValueError(f"padding must be an int, a (before, after) pair, 'valid' or 'same', "
                             f"got {padding!r}")
    pb, pa = _pad_pair(padding)
    o = _geometry.output_size(i, k, stride, (pb, pa), dilation)
    if o < 1:
        raise ValueError(f"kernel {k} with dilation {dilation} (span {dilation * (k - 1) + 1}) is "
                         f"larger than the padded input {i + pb + pa}")
    return o


def transposed_output_size(i, k, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of a transposed convolution along one dimension.

    ``o' = s(i' - 1) + a + d(k - 1) + 1 - p_before - p_after``, the formula the kernels use
    (``cconv._geometry.transposed_output_size``).

    Parameters
    ----------
    i : int
        Input length, >= 1.
    k : int
        Kernel length, >= 1.
    stride : int, optional
        >= 1. Default 1.
    padding : int or (int, int), optional
        Cropped per side, or a ``(before, after)`` pair (the conv_transpose functions themselves
        take symmetric padding). Default 0.
    output_padding : int, optional
        ``a`` above; must be smaller than ``max(stride, dilation)``, as in the functions and
        PyTorch. Default 0.
    dilation : int, optional
        >= 1. Default 1.

    Returns
    -------
    int
        The output length, >= 1.

    Raises
    ------
    ValueError
        If `output_padding` is too large, the padding leaves no output, or an argument is out of
        range.
    TypeError
        If an argument is not an int (or `padding` not a pair).

    See Also
    --------
    output_size, overlap_pattern

    Examples
    --------
    >>> from cconv.analysis import transposed_output_size
    >>> transposed_output_size(2, 3)          # 2x2 -> 4x4
    4
    >>> transposed_output_size(2, 3, stride=2)  # the adjoint of 5 -> 2 with s=2
    5
    """
    i = _int("i", i, 1)
    k = _int("k", k, 1)
    stride = _int("stride", stride, 1)
    dilation = _int("dilation", dilation, 1)
    output_padding = _int("output_padding", output_padding, 0)
    if output_padding >= max(stride, dilation):
        raise ValueError(f"output_padding {output_padding} must be smaller than stride {stride} "
                         f"or dilation {dilation}")
    pb, pa = _pad_pair(padding)
    o = _geometry.transposed_output_size(i, k, stride, (pb, pa), output_padding, dilation)
    if o < 1:
        raise ValueError(f"padding {padding!r} leaves no output (size {o}) for input {i}, "
                         f"kernel {k}, stride {stride}, dilation {dilation}")
    return o


# --------------------------------------------------------------------------- call binding

def _as_shape(a):
    """An array (anything with .shape) or a shape -> tuple of ints."""
    if hasattr(a, "shape"):
        return tuple(int(s) for s in a.shape)
    try:
        return tuple(a)
    except TypeError:
        raise TypeError(f"expected a shape (sequence of ints) or an array, got {a!r}") from None


def _bind(fn, x_shape, args, kwargs):
    """Binds the arguments exactly as the public function would; returns
    (name, x_shape, weight shapes / groups, stage kwargs, bias argument)."""
    op = _registry.get(fn)
    try:
        bound = op.signature.bind(x_shape, *args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{op.name}: {e}") from None
    # the required parameters after x: the weights (and groups, an int argument, not a shape)
    weights = [bound.arguments[w] if w == "groups" else _as_shape(bound.arguments[w])
               for w in op.required]
    rest = {k: v for k, v in bound.arguments.items()
            if k not in op.required and k != "x" and k not in _registry.RUN_ONLY}
    return op.name, _as_shape(bound.arguments["x"]), weights, rest, bound.arguments.get("bias")


def _resolve(fn, x_shape, args, kwargs):
    """(stages, index of the stage that adds the bias or None), every argument validated as the
    function validates it. The bias belongs to the last convolution, which is not the last stage
    of shuffled_grouped_conv2d: the forward adds it before the shuffle."""
    name, x_shape, weights, rest, bias = _bind(fn, x_shape, args, kwargs)
    unbatched = _registry.get(name).batched_ndim(x_shape, rest.get("layout")) != len(x_shape)
    sts = _registry.describe(name, (1,) * unbatched + x_shape, *weights, **rest)
    convs = [i for i, st in enumerate(sts) if not isinstance(st, _geometry.ShuffleStage)]
    if not convs or not _bias_present(bias, sts[convs[-1]].out_channels):
        return sts, None, unbatched
    return sts, convs[-1], unbatched


def stages(fn, x_shape, *weight_shapes, **conv_kwargs):
    """The validated stages (``cconv._geometry.Geometry`` or ``ShuffleStage``) that ``fn`` runs for
    these argument shapes: the same arguments as the function, arrays or their shapes.

    Composite functions run several convolutions: ``separable_conv2d`` is a depthwise then a
    1x1 stage, ``spatially_separable_conv2d`` a k_h x 1 then a 1 x k_w stage,
    ``flattened_conv2d`` a 1x1, a vertical and a horizontal (depthwise) stage;
    ``shuffled_grouped_conv2d`` is a grouped convolution then a ``ShuffleStage``.

    Parameters
    ----------
    fn : str or callable
        A public function's name (``"conv2d"``, ``"separable_conv2d"``, ...; see ``FUNCTIONS``)
        or the function itself.
    x_shape : tuple of int or array_like
        The input's shape (or the input).
    *weight_shapes : tuple of int or array_like
        The function's other required arguments: the weights' shapes (or the weights;
        ``groups`` for ``channel_shuffle`` and ``shuffled_grouped_conv2d``).
    **conv_kwargs
        The function's keyword (or further positional) arguments.

    Returns
    -------
    list
        The stages in order; each has ``x_shape`` and ``out_shape`` (convolutions also
        ``weight_shape``, ``stride``, ``pad_before``, ``pad_after``, ``dilation``, ``groups``...).

    Raises
    ------
    ValueError, TypeError
        As the function itself for the same arguments; ValueError for an unknown `fn`.

    See Also
    --------
    output_shape, stage_costs

    Examples
    --------
    >>> from cconv import analysis
    >>> [s.weight_shape for s in analysis.stages("separable_conv2d", (1, 3, 7, 7),
    ...                                          (3, 1, 3, 3), (8, 3, 1, 1))]
    [(3, 1, 3, 3), (8, 3, 1, 1)]
    """
    return _resolve(fn, x_shape, weight_shapes, conv_kwargs)[0]


def output_shape(fn, x_shape, *weight_shapes, **conv_kwargs):
    """The shape ``fn(x, *weights, **conv_kwargs)`` returns, without computing anything.

    Parameters
    ----------
    fn : str or callable
        A public function's name (``"conv2d"``, ``"separable_conv2d"``, ...; see ``FUNCTIONS``)
        or the function itself.
    x_shape : tuple of int or array_like
        The input's shape (or the input).
    *weight_shapes : tuple of int or array_like
        The function's other required arguments: the weights' shapes (or the weights;
        ``groups`` for ``channel_shuffle`` and ``shuffled_grouped_conv2d``).
    **conv_kwargs
        The function's keyword (or further positional) arguments.

    Returns
    -------
    tuple of int
        The result's shape.

    Raises
    ------
    ValueError, TypeError
        As the function itself for the same arguments; ValueError for an unknown `fn`.

    See Also
    --------
    output_size, stages

    Examples
    --------
    >>> from cconv.analysis import output_shape
    >>> output_shape("conv2d", (1, 3, 7, 7), (128, 3, 3, 3), padding="same")
    (1, 128, 7, 7)
    >>> output_shape("conv_transpose2d", (1, 8, 4, 4), (8, 3, 4, 4), stride=2, padding=1)
    (1, 3, 8, 8)
    """
    sts, _, unbatched = _resolve(fn, x_shape, weight_shapes, conv_kwargs)
    return tuple(sts[-1].out_shape)[unbatched:]


# --------------------------------------------------------------------------- costs

@dataclass(frozen=True)
class Cost:
    """Operation counts and minimum memory traffic of one call (see :func:`cost`).

    ``a + b`` is the cost of running ``a`` and then ``b``: every count adds up and
    ``output_shape`` is ``b``'s; ``sum(costs)`` works too. Frozen (immutable).

    Parameters
    ----------
    multiplications, additions : int
        Arithmetic operations (conventions in :func:`cost`).
    parameters : int
        Weight and bias elements.
    output_shape : tuple of int
        The shape of the (last stage's) result.
    bytes_moved : int
        Minimum memory traffic in bytes.

    Attributes
    ----------
    flops : int
        ``2 * multiplications``.
    arithmetic_intensity : float
        ``flops / bytes_moved`` (0.0 when nothing is moved).

    See Also
    --------
    cost, stage_costs

    Examples
    --------
    >>> from cconv.analysis import Cost
    >>> c = Cost(10, 8, 3, (1, 2), 40) + Cost(5, 4, 1, (1, 1), 20)
    >>> c.multiplications, c.flops, c.output_shape, c.arithmetic_intensity
    (15, 30, (1, 1), 0.5)
    """
    multiplications: int
    additions: int
    flops: int = field(init=False)
    parameters: int
    output_shape: tuple
    bytes_moved: int
    arithmetic_intensity: float = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "output_shape", tuple(self.output_shape))
        object.__setattr__(self, "flops", 2 * self.multiplications)
        ai = self.flops / self.bytes_moved if self.bytes_moved else 0.0
        object.__setattr__(self, "arithmetic_intensity", ai)

    def __add__(self, other):
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.multiplications + other.multiplications,
                    self.additions + other.additions,
                    self.parameters + other.parameters,
                    other.output_shape,
                    self.bytes_moved + other.bytes_moved)

    def __radd__(self, other):
        if isinstance(other, numbers.Integral) and other == 0:  # sum(costs)
            return self
        return NotImplemented

    def __repr__(self):
        return (f"Cost(multiplications={self.multiplications:_}, additions={self.additions:_}, "
                f"flops={self.flops:_}, parameters={self.parameters:_}, "
                f"output_shape={self.output_shape}, bytes_moved={self.bytes_moved:_}, "
                f"arithmetic_intensity={self.arithmetic_intensity:.3g})")


def _prod(t):
    return math.prod(int(v) for v in t)


def _overlap_1d(i, k, stride=1, dilation=1, pad_before=0, pad_after=0, output_padding=0):
    """Per output position of a 1-D transposed convolution, how many (input, tap) products land
    there (int64 array of length ``transposed_output_size``); no validation."""
    full = stride * (i - 1) + dilation * (k - 1) + 1 + output_padding
    pos = (np.arange(i, dtype=np.int64)[:, None] * stride
           + np.arange(k, dtype=np.int64)[None, :] * dilation).ravel()
    counts = np.bincount(pos, minlength=full)
    return counts[pad_before:full - pad_after].astype(np.int64)


def _overlap_histogram(i, k, stride=1, dilation=1, pad_before=0, pad_after=0, output_padding=0):
    """{count: how many kept output positions receive that many products} for a 1-D transposed
    convolution, without materialising the output: the same numbers as
    ``np.unique(_overlap_1d(...), return_counts=True)`` in O(K * (d K / s + 1)) time, whatever
    the input length (a long signal must not cost memory proportional to it)."""
    s, d = stride, dilation
    full = s * (i - 1) + d * (k - 1) + 1 + output_padding
    lo, hi = pad_before, full - pad_after
    first, last = d * (k - 1), s * (i - 1)   # interior: every tap lands on a real input
    hist = {}

    def add(count, n):
        if n > 0:
            hist[count] = hist.get(count, 0) + n

    def edge(u, v):  # positions [u, v), enumerated through the products landing there
        if u >= v:
            return
        pos = []
        for t in range(k):
            a = max(0, -(-(u - t * d) // s))
            b = min(i - 1, (v - 1 - t * d) // s)
            if a <= b:
                pos.append(np.arange(a, b + 1, dtype=np.int64) * s + t * d)
        hit = 0
        if pos:
            _, counts = np.unique(np.concatenate(pos), return_counts=True)
            vals, mult = np.unique(counts, return_counts=True)
            for c, n in zip(vals.tolist(), mult.tolist()):
                add(c, n)
                hit += n
        add(0, (v - u) - hit)

    edge(lo, min(hi, first))
    a, b = max(lo, first), min(hi, last + 1)
    if a < b:  # interior: the count depends on the position modulo the stride only
        per_residue = {}
        for t in range(k):
            per_residue[t * d % s] = per_residue.get(t * d % s, 0) + 1
        hit = 0
        for rho, c in per_residue.items():
            n = (b - rho + s - 1) // s - (a - rho + s - 1) // s
            add(c, n)
            hit += n
        add(0, (b - a) - hit)
    edge(max(lo, first, last + 1), hi)
    return hist


def _transposed_additions(g):
    """Exact additions to sum the products landing in the kept outputs:
    sum over outputs of max(contributions - 1, 0). Contributions factorise over dimensions
    (and C_in/groups channels), so this sums over the per-dimension histograms."""
    cig = g.in_channels // g.groups
    hists = [list(_overlap_histogram(g.in_size[a], g.kernel[a], g.stride[a], g.dilation[a],
                                     g.pad_before[a], g.pad_after[a], g.output_padding[a]).items())
             for a in range(g.nd)]
    total = 0
    for combo in itertools.product(*hists):
        n = cig * math.prod(v for v, _ in combo)
        if n > 1:
            total += (n - 1) * math.prod(m for _, m in combo)
    return g.batch * g.out_channels * total


def _stage_cost(st, bias, itemsize):
    if isinstance(st, _geometry.ShuffleStage):
        n = _prod(st.shape)
        return Cost(0, 0, 0, st.shape, 2 * n * itemsize)
    outputs = _prod(st.out_shape)
    weights = _prod(st.weight_shape)
    nbias = st.out_channels if bias else 0
    if st.transposed:
        mults = (st.batch * st.in_channels * _prod(st.in_size)
                 * (st.out_channels // st.groups) * _prod(st.kernel))
        adds = _transposed_additions(st)
    else:
        taps = (st.in_channels // st.groups) * _prod(st.kernel)
        mults = outputs * taps
        adds = outputs * (taps - 1)
    if bias:
        adds += outputs
    traffic = (_prod(st.x_shape) + weights + nbias + outputs) * itemsize
    return Cost(mults, adds, weights + nbias, st.out_shape, traffic)


def _bias_present(bias, out_channels):
    if bias is None or bias is False:
        return False
    if bias is True:
        return True
    if hasattr(bias, "shape"):
        shape = tuple(bias.shape)
    else:
        try:
            items = tuple(bias)
        except TypeError:
            raise TypeError(f"bias must be None, a bool, an array or its shape, got {bias!r}") from None
        shape = items if all(_geometry._is_int(v) for v in items) else np.shape(items)
    if tuple(shape) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},) to match the output channels, "
                         f"got shape {tuple(shape)}")
    return True


def _itemsize(itemsize):
    if _geometry._is_int(itemsize):
        return _int("itemsize", itemsize, 1)
    return np.dtype(itemsize).itemsize


def stage_costs(fn, x_shape, *weight_shapes, itemsize=4, **conv_kwargs):
    """The :class:`Cost` of each stage ``fn`` runs (one for the plain convolutions, two for
    separable, spatially separable and shuffled grouped (the conv, then the shuffle), three for
    flattened); their sum is :func:`cost`.

    The bias, if any, belongs to the last convolution stage (for shuffled_grouped_conv2d the
    conv: the forward adds it before shuffling).

    Parameters
    ----------
    fn : str or callable
        A public function's name (``"conv2d"``, ``"separable_conv2d"``, ...; see ``FUNCTIONS``)
        or the function itself.
    x_shape : tuple of int or array_like
        The input's shape (or the input).
    *weight_shapes : tuple of int or array_like
        The function's other required arguments: the weights' shapes (or the weights;
        ``groups`` for ``channel_shuffle`` and ``shuffled_grouped_conv2d``).
    itemsize : int or dtype, optional
        Bytes per element, or a dtype. Default 4 (float32).
    **conv_kwargs
        The function's keyword arguments; ``bias`` may be None/False, True, an array or its
        shape ``(C_out,)``.

    Returns
    -------
    list of Cost
        One per stage.

    Raises
    ------
    ValueError, TypeError
        As the function itself for the same arguments; ValueError for an unknown `fn` or a
        `bias` of the wrong shape.

    See Also
    --------
    cost, stages

    Examples
    --------
    >>> from cconv import analysis
    >>> [c.multiplications for c in analysis.stage_costs(
    ...     "separable_conv2d", (1, 3, 7, 7), (3, 1, 3, 3), (128, 3, 1, 1))]
    [675, 9600]
    """
    sts, bias_at, unbatched = _resolve(fn, x_shape, weight_shapes, conv_kwargs)
    size = _itemsize(itemsize)
    costs = [_stage_cost(st, i == bias_at, size) for i, st in enumerate(sts)]
    if unbatched:  # the counts of a batch of one; the shapes the function returns
        costs = [dataclasses.replace(c, output_shape=c.output_shape[1:]) for c in costs]
    return costs


def cost(fn, x_shape, *weight_shapes, itemsize=4, **conv_kwargs):
    """Operation counts and memory traffic of ``fn(x, *weights, **conv_kwargs)``.

    Parameters
    ----------
    fn : str or callable
        A public function's name (``"conv2d"``, ``"separable_conv2d"``, ...; see ``FUNCTIONS``)
        or the function itself.
    x_shape : tuple of int or array_like
        The input's shape (or the input).
    *weight_shapes : tuple of int or array_like
        The function's other required arguments: the weights' shapes (or the weights;
        ``groups`` for ``channel_shuffle`` and ``shuffled_grouped_conv2d``).
    itemsize : int or dtype, optional
        Bytes per element, or a dtype. Default 4 (float32).
    **conv_kwargs
        The function's keyword arguments; ``bias`` may be None/False, True, an array or its
        shape ``(C_out,)``.

    Returns
    -------
    Cost
        The counts summed over the stages (see :func:`stage_costs`).

    Raises
    ------
    ValueError, TypeError
        As the function itself for the same arguments; ValueError for an unknown `fn` or a
        `bias` of the wrong shape.

    See Also
    --------
    stage_costs, Cost, output_shape

    Notes
    -----
    Conventions, per convolution stage:

    * ``multiplications``: one per weight tap per output element, as the article counts:
      ``N * C_out * prod(out) * (C_in / groups) * prod(kernel)``. Taps that fall on padding
      are counted (a dense convolution forms those products). The article's examples:
      conv2d 7x7x3 input, 128 filters 3x3 valid -> 86,400; separable_conv2d -> 675 + 9,600.
      **Transposed** convolutions count the products actually formed by the scatter
      definition, one per input element per weight tap:
      ``N * C_in * prod(in) * (C_out / groups) * prod(kernel)`` (products that land in the
      ``padding`` border are formed and then cropped; they are counted). This is *not* the
      count of the equivalent direct convolution over a zero-inserted input, whose extra
      products are all by zero.
    * ``additions``: the additions needed to sum the products of every output element, i.e.
      ``products landing on it - 1`` (never negative), plus one per output element for the
      bias if there is one. For a convolution that is
      ``multiplications - outputs (+ outputs with bias)``; for a transposed convolution the
      per-output counts come from :func:`overlap_pattern` (cropped products need no addition;
      output_padding positions with no product need none).
    * ``flops = 2 * multiplications``: one multiply-accumulate is two floating-point operations,
      the usual hardware convention (bias additions are not counted in ``flops``). Careful:
      the MobileNet/ShuffleNet papers' "FLOPs"/"mult-adds" (e.g. ShuffleNet's 10-150 MFLOPs
      budget) are multiply-adds, i.e. ``multiplications`` here.
    * ``parameters``: weight elements of every stage plus C_out bias values.
    * ``bytes_moved``: the minimum memory traffic of the unfused stages, each reading its input
      and weights (and the bias) once and writing its output once:
      ``itemsize * (input + weights + bias + output)`` summed over the stages, so the
      intermediate of a composite function is written and read back. ``channel_shuffle`` reads
      and writes its input once (no arithmetic); so does the shuffle stage of
      ``shuffled_grouped_conv2d``, counted unfused like the others (the forward writes the
      shuffled order directly when it can, saving that traffic).
    * ``arithmetic_intensity = flops / bytes_moved`` (FLOPs per byte, roofline model).

    Examples
    --------
    >>> from cconv.analysis import cost
    >>> cost("conv2d", (1, 3, 7, 7), (128, 3, 3, 3)).multiplications
    86400
    >>> c = cost("conv2d", (1, 3, 7, 7), (128, 3, 3, 3), bias=True)
    >>> c.parameters, c.flops
    (3584, 172800)
    """
    return sum(stage_costs(fn, x_shape, *weight_shapes, itemsize=itemsize, **conv_kwargs))


# --------------------------------------------------------------------------- receptive fields

def _per_dim(name, v, minimum):
    """int -> (v,), sequence -> tuple; each >= minimum."""
    if _geometry._is_int(v):
        return (_int(name, v, minimum),)
    try:
        items = tuple(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {v!r}") from None
    if not items:
        raise ValueError(f"{name} must not be empty")
    return tuple(_int(name, x, minimum) for x in items)


def _broadcast(name, values):
    """Per-dim tuples (length 1 = scalar) broadcast to one common length; (nd, tuples, any_tuple)."""
    lengths = {len(v) for v in values if len(v) != 1}
    if len(lengths) > 1:
        raise ValueError(f"{name}: per-dimension tuples of different lengths {sorted(lengths)}")
    nd = lengths.pop() if lengths else 1
    return nd, [v * nd if len(v) == 1 else v for v in values]


def receptive_field(layers):
    """Receptive field (in input pixels, per dimension) of one output of a stack of layers: the
    span from the first to the last input pixel it depends on.

    With dilation the pixels inside need not all be used, e.g. a single d=4 layer uses 3 of its
    9; the 1, 2, 4 stack uses all 15.

    Parameters
    ----------
    layers : sequence
        One ``(kernel, stride, dilation)`` per layer, first layer first; stride and dilation may
        be left out (``(kernel,)``, ``(kernel, stride)`` or a bare ``kernel``); each entry is an
        int or a per-dimension tuple.

    Returns
    -------
    int or tuple of int
        The receptive field; a tuple when any entry is a tuple.

    Raises
    ------
    ValueError
        If a layer has more than 3 entries, a value is below 1, or tuples differ in length.
    TypeError
        If `layers` or an entry is not a sequence or int.

    See Also
    --------
    output_size

    Notes
    -----
    ``r = 1 + sum_l d_l (k_l - 1) * prod_(j < l) s_j``.

    Examples
    --------
    >>> from cconv.analysis import receptive_field
    >>> [receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)][:n]) for n in (1, 2, 3)]
    [3, 7, 15]
    >>> receptive_field([(3, 1, 4)])   # one 3x3 layer with dilation 4 alone spans 9x9
    9
    >>> receptive_field([((7, 1), 2), 3])     # 7x1 stride 2, then 3x3: 1 + 6 + 2*2, 1 + 2*2
    (11, 5)
    """
    try:
        layers = list(layers)
    except TypeError:
        raise TypeError(f"layers must be a sequence of (kernel, stride, dilation), got {layers!r}") from None
    parsed, any_tuple = [], False
    for n, layer in enumerate(layers):
        if _geometry._is_int(layer):
            layer = (layer,)
        try:
            layer = tuple(layer)
        except TypeError:
            raise TypeError(f"layer {n} must be (kernel, stride, dilation), got {layer!r}") from None
        if not 1 <= len(layer) <= 3:
            raise ValueError(f"layer {n} must be (kernel, stride, dilation), got {layer!r}")
        any_tuple |= any(not _geometry._is_int(v) for v in layer)
        k, s, d = layer + (1,) * (3 - len(layer))
        parsed += [_per_dim(f"layer {n} kernel", k, 1), _per_dim(f"layer {n} stride", s, 1),
                   _per_dim(f"layer {n} dilation", d, 1)]
    nd, parsed = _broadcast("receptive_field", parsed) if parsed else (1, [])
    rf, jump = [1] * nd, [1] * nd
    for n in range(0, len(parsed), 3):
        k, s, d = parsed[n:n + 3]
        for a in range(nd):
            rf[a] += d[a] * (k[a] - 1) * jump[a]
            jump[a] *= s[a]
    return tuple(rf) if any_tuple else rf[0]


# --------------------------------------------------------------------------- checkerboard

def checkerboard(kernel, stride, dilation=1):
    """True when a transposed convolution's overlap is uneven (checkerboard artifacts,
    distill.pub/2016/deconv-checkerboard): away from the borders, some output pixels receive
    more (input, tap) products than others.

    Parameters
    ----------
    kernel, stride : int or tuple of int
        Per dimension, or one value for all.
    dilation : int or tuple of int, optional
        Default 1.

    Returns
    -------
    bool
        True if any dimension is uneven.

    Raises
    ------
    ValueError
        If a value is below 1 or tuples differ in length.
    TypeError
        If an argument is not an int or a sequence of ints.

    See Also
    --------
    overlap_pattern : The counts themselves.

    Notes
    -----
    With dilation 1 that is exactly ``kernel % stride != 0`` in some dimension (stride 2:
    kernels 3 and 5 are uneven, 2 and 4 even). With dilation ``d`` the taps sit at multiples of
    ``d``; the overlap is even iff ``kernel % stride == 0`` and ``gcd(d, stride) == 1``
    (otherwise some residues mod stride get no product at all).

    Examples
    --------
    >>> from cconv.analysis import checkerboard
    >>> checkerboard(3, 2), checkerboard(4, 2), checkerboard(4, 2, dilation=2)
    (True, False, True)
    """
    _, (k, s, d) = _broadcast("checkerboard", [_per_dim("kernel", kernel, 1),
                                               _per_dim("stride", stride, 1),
                                               _per_dim("dilation", dilation, 1)])
    return any(si > 1 and (ki % si != 0 or math.gcd(di, si) > 1) for ki, si, di in zip(k, s, d))


def overlap_pattern(input_size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    """How many products land on each output pixel of a transposed convolution of an input of
    spatial size ``input_size`` with one input and one output channel.

    It equals ``conv_transpose{1,2,3}d`` of an all-ones input with an all-ones kernel; every
    argument is validated as that function does. Uneven interior counts are the checkerboard
    pattern (:func:`checkerboard`); borders are always lower unless padding crops them.

    Parameters
    ----------
    input_size : int or tuple of int
        Spatial size: an int for 1-D, a tuple of 1 to 3 ints.
    kernel : int or tuple of int
        Kernel size, per dimension or one for all.
    stride, padding, output_padding, dilation : int or tuple of int, optional
        As for ``cconv.conv_transpose2d``. Defaults 1, 0, 0, 1.

    Returns
    -------
    ndarray of int64
        Of the output's spatial shape.

    Raises
    ------
    ValueError, TypeError
        As ``conv_transpose{1,2,3}d`` for the same arguments; ValueError for more than 3
        dimensions.

    See Also
    --------
    checkerboard, transposed_output_size

    Examples
    --------
    >>> from cconv.analysis import overlap_pattern
    >>> overlap_pattern((3, 3), 3, stride=2)[:3, :3]
    array([[1, 1, 2],
           [1, 1, 2],
           [2, 2, 4]])
    >>> overlap_pattern(4, 4, stride=2)       # kernel 4, stride 2: even inside
    array([1, 1, 2, 2, 2, 2, 2, 2, 1, 1])
    """
    size = _per_dim("input_size", input_size, 1)
    nd = len(size)
    if nd not in _geometry.LAYOUTS:
        raise ValueError(f"input_size must have 1 to 3 dimensions, got {input_size!r}")
    k = _geometry.int_tuple("kernel", kernel, nd, 1)
    g = _geometry.conv_geometry(nd, (1, 1, *size), (1, 1, *k), stride, padding, dilation,
                           transposed=True, output_padding=output_padding,
                           x_name="input", w_name="kernel")
    out = np.ones((), dtype=np.int64)
    for a in range(nd):
        c = _overlap_1d(g.in_size[a], g.kernel[a], g.stride[a], g.dilation[a], g.pad_before[a],
                       g.pad_after[a], g.output_padding[a])
        out = np.multiply.outer(out, c)
    return out
