"""Argument normalisation shared by every public function: the one place inputs are checked.

Every convolution becomes a `Geometry` (shapes, stride, padding, ...) that maps 1:1 onto the C
descriptor; multi-step variants (separable, flattened, ...) are lists of geometries built here
too, so `cconv.analysis` and `cconv.dask` see exactly what the kernels compute.

dtype rule: the result dtype is NumPy's promotion of the inputs' dtypes (float32 stays float32,
float64 stays float64, float32 with float64 gives float64), except that bool and integer
dtypes compute in float64, float16 in float32 and long double in float64. Complex, object, string
and other non-numeric dtypes raise TypeError.
"""
import contextvars
import dataclasses
from dataclasses import dataclass
import functools
import math
import numbers
import operator

import numpy as np

LAYOUTS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
# "reflect" mirrors without repeating the edge (NumPy "reflect", SciPy "mirror", torch "reflect");
# "symmetric" repeats it (NumPy "symmetric", SciPy "reflect"); docs/tutorial.md has the table.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
ALGORITHMS = ("auto", "exact", "gemm", "winograd", "depthwise", "grouped", "reference")
# Algorithms whose rounding differs from a direct convolution's (Winograd's transforms add error
# that grows with the values' magnitude: several times float32 direct convolution's).
LOSSY_ALGORITHMS = ("winograd",)
_INT64_MAX = 2**63 - 1
_SIZE_MAX = 2**62  # any single size, stride or padding; products are checked separately


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def int_tuple(name, value, nd, minimum):
    """An int or a length-nd sequence of ints, each >= minimum, as a tuple."""
    if _is_int(value):
        vals = (operator.index(value),) * nd
    else:
        try:
            vals = tuple(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or a sequence of {nd} ints, got {value!r}") from None
        if len(vals) != nd or not all(_is_int(v) for v in vals):
            raise ValueError(f"{name} must be an int or a sequence of {nd} ints, got {value!r}")
        vals = tuple(operator.index(v) for v in vals)
    if any(v < minimum for v in vals):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    if any(v > _SIZE_MAX for v in vals):
        raise ValueError(f"{name} must be < 2**62 in every dimension, got {value!r}")
    return vals


def shape_tuple(name, shape):
    """A shape argument (`name` ends in "_shape": x_shape, input_shape, weight_shape) as a tuple
    of ints. An array passed in its place is named by type and shape, not printed."""
    dims = getattr(shape, "shape", None)
    if dims is not None and len(dims) != 1:  # an array or tensor, not a 1-D array of sizes
        t = type(shape)
        raise TypeError(f"{name} must be a shape (a sequence of ints), got a {t.__module__}."
                        f"{t.__qualname__} of shape {tuple(dims)}: pass {name[:-len('_shape')]}.shape")
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        what = type(shape).__name__ if dims is None and not isinstance(shape, (tuple, list)) else \
            f"{type(shape).__name__} {shape!r:.80}"
        raise TypeError(f"{name} must be a shape (a sequence of ints), got {what}") from None


def channels_last(layout, nd, name="layout"):
    """True for the channels-last layout of an nd-dim convolution, False for channels-first."""
    if layout is None:
        return False
    first, last = LAYOUTS[nd]
    if isinstance(layout, str) and layout.upper() in (first, last):
        return layout.upper() == last
    raise ValueError(f"{name} must be {first!r} or {last!r} for a {nd}-D convolution, got {layout!r}")


def output_size(i, k, stride=1, padding=0, dilation=1):
    """Output length of a convolution: floor((i + pad_total - d(k-1) - 1) / s) + 1.

    `padding` is the per-side padding (int) or a (before, after) pair."""
    pb, pa = (padding, padding) if _is_int(padding) else padding
    return (i + pb + pa - dilation * (k - 1) - 1) // stride + 1


def transposed_output_size(i, k, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of a transposed convolution: s(i-1) + d(k-1) + 1 + a - pad_total."""
    pb, pa = (padding, padding) if _is_int(padding) else padding
    return stride * (i - 1) + dilation * (k - 1) + 1 + output_padding - pb - pa


def same_padding(i, k, stride, dilation):
    """TensorFlow's "same": output ceil(i/s); the odd pixel of padding goes at the end."""
    out = -(-i // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - i, 0)
    return total // 2, total - total // 2


def normalize_padding(padding, nd, in_size, kernel, stride, dilation, transposed=False):
    """(before, after) tuples from every accepted padding form:
    int, per-dimension ints, per-side pairs ((b0, a0), (b1, a1), ...), "valid" or "same"."""
    if isinstance(padding, str):
        if transposed:
            raise ValueError(f"padding must be an int or a sequence of ints for a transposed "
                             f"convolution, got {padding!r}")
        mode = padding.lower()
        if mode == "valid":
            return (0,) * nd, (0,) * nd
        if mode == "same":
            pairs = [same_padding(i, k, s, d) for i, k, s, d in zip(in_size, kernel, stride, dilation)]
            return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if _is_int(padding):
        p = int_tuple("padding", padding, nd, 0)
        return p, p
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}") from None
    if len(items) != nd:
        raise ValueError(f"padding must have {nd} entries (one per spatial dimension), got {padding!r}")
    before, after = [], []
    for item in items:
        if _is_int(item):
            before.append(int(item))
            after.append(int(item))
        else:
            try:
                b, a = item
            except (TypeError, ValueError):
                raise ValueError(f"padding entries must be ints or (before, after) pairs, got {padding!r}") from None
            if transposed:
                raise ValueError(f"padding of a transposed convolution must be symmetric ints, got {padding!r}")
            if not (_is_int(b) and _is_int(a)):
                raise ValueError(f"padding entries must be ints or (before, after) pairs, got {padding!r}")
            before.append(int(b))
            after.append(int(a))
    if min(before + after) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if max(before + after) > _SIZE_MAX:
        raise ValueError(f"padding must be < 2**62, got {padding!r}")
    return tuple(before), tuple(after)


@dataclass(frozen=True)
class Geometry:
    """One convolution (or transposed convolution), every size resolved."""
    nd: int
    transposed: bool
    channels_last: bool
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_size: tuple
    kernel: tuple
    stride: tuple
    dilation: tuple
    pad_before: tuple
    pad_after: tuple
    output_padding: tuple
    padding_mode: str
    out_size: tuple

    kind = "conv"

    def _shape(self, c, size):
        return (self.batch, *size, c) if self.channels_last else (self.batch, c, *size)

    @functools.cached_property
    def x_shape(self):  # cached: every call reads it
        return self._shape(self.in_channels, self.in_size)

    @functools.cached_property
    def out_shape(self):  # cached: every call reads it
        return self._shape(self.out_channels, self.out_size)

    @property
    def weight_shape(self):
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    def desc(self, algorithm="auto", allow_lossy=None, activation=None):
        """The C descriptor (cconv._core.Descriptor), made once per geometry, effective
        algorithm (the algorithm as the lossy-algorithm setting allows: effective_algorithm) and
        activation bounds (activation_bounds)."""
        algorithm = effective_algorithm(algorithm, allow_lossy)
        d = self._descs.get((algorithm, activation))
        if d is None:
            from ._core import Descriptor
            d = self._descs[algorithm, activation] = Descriptor(**self._desc, algorithm=algorithm,
                                                                activation=activation)
        return d

    @functools.cached_property
    def _descs(self):  # (algorithm, activation bounds) -> Descriptor
        return {}

    def with_batch(self, batch):
        """This geometry for `batch` images, remembered with its descriptors (chunked runs and
        plans of other batch sizes ask for it on every call)."""
        if batch == self.batch:
            return self
        g = self._batches.get(batch)
        if g is None:
            if len(self._batches) >= 16:
                self._batches.clear()
            g = self._batches[batch] = dataclasses.replace(self, batch=batch)
        return g

    @functools.cached_property
    def _batches(self):  # batch -> Geometry
        return {}

    @functools.cached_property
    def _desc(self):  # computed once per geometry (conv_geometry remembers geometries)
        lead = 3 - self.nd

        def pad3(t, fill):
            return (fill,) * lead + tuple(t)

        return dict(transposed=self.transposed, channels_last=self.channels_last,
                    padding_mode=self.padding_mode, batch=self.batch,
                    in_channels=self.in_channels, out_channels=self.out_channels, groups=self.groups,
                    in_size=pad3(self.in_size, 1), kernel=pad3(self.kernel, 1),
                    stride=pad3(self.stride, 1), dilation=pad3(self.dilation, 1),
                    pad_before=pad3(self.pad_before, 0), pad_after=pad3(self.pad_after, 0),
                    output_padding=pad3(self.output_padding, 0))


@dataclass(frozen=True)
class ShuffleStage:
    """channel_shuffle: a channel permutation."""
    shape: tuple
    groups: int
    channels_last: bool
    kind = "shuffle"

    @property
    def out_shape(self):
        return self.shape


def _check_size(name, shape, itemsize=8):
    n = itemsize
    for s in shape:
        n *= int(s)
    if n > _INT64_MAX:
        raise ValueError(f"{name} of shape {tuple(shape)} has more bytes than a 64-bit size can hold")


_KEY_ATOMS = frozenset((int, str, type(None)))


def _cache_key(v):
    """v itself when it is made only of exact ints, strings, None and tuples of them (so that equal
    keys mean equal arguments: 1 == 1.0 == True as dict keys, yet only 1 is a valid stride);
    anything else raises _Uncacheable."""
    t = type(v)
    if t in _KEY_ATOMS:
        return v
    if t is tuple:
        for e in v:
            if type(e) not in _KEY_ATOMS:
                _cache_key(e)  # a nested tuple is checked the same way; anything else raises
        return v
    raise _Uncacheable


class _Uncacheable(Exception):
    pass


_GEOMETRIES: dict = {}  # argument values -> Geometry: the checks cost more than a small convolution


def remembered(builder):
    """builder (shapes and arguments -> a list of stages) with its result remembered for repeated
    calls with the same argument values, as conv_geometry's; each call gets its own list."""
    memo: dict = {}

    @functools.wraps(builder)
    def build(*args, **kwargs):
        try:
            key = (_cache_key(args), _cache_key(tuple(kwargs.items())))
            stages = memo.get(key)
        except (_Uncacheable, TypeError):  # TypeError: an unhashable shape entry
            key = stages = None
        if stages is None:
            stages = builder(*args, **kwargs)
            if key is not None:
                if len(memo) >= 256:
                    memo.clear()
                memo[key] = stages
        return list(stages)

    return build


def conv_geometry(nd, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, *,
                  padding_mode="zeros", layout=None, transposed=False, output_padding=0,
                  x_name="x", w_name="weight"):
    """Validates one convolution's arguments against the shapes; returns its Geometry
    (remembered for repeated calls with the same arguments)."""
    try:  # shapes go through int() either way, so equal values give equal geometries
        key = (nd, bool(transposed), x_name, w_name, tuple(x_shape), tuple(w_shape),
               _cache_key(stride), _cache_key(padding), _cache_key(dilation), _cache_key(groups),
               _cache_key(padding_mode), _cache_key(layout), _cache_key(output_padding))
        g = _GEOMETRIES.get(key)
    except (_Uncacheable, TypeError):  # TypeError: an unhashable shape entry
        key = g = None
    if g is None:
        g = _conv_geometry(nd, x_shape, w_shape, stride, padding, dilation, groups,
                           padding_mode=padding_mode, layout=layout, transposed=transposed,
                           output_padding=output_padding, x_name=x_name, w_name=w_name)
        if key is not None:
            if len(_GEOMETRIES) >= 1024:
                _GEOMETRIES.clear()
            _GEOMETRIES[key] = g
    return g


def _conv_geometry(nd, x_shape, w_shape, stride, padding, dilation, groups, *, padding_mode,
                   layout, transposed, output_padding, x_name, w_name):
    x_shape, w_shape = shape_tuple(f"{x_name}_shape", x_shape), shape_tuple(f"{w_name}_shape", w_shape)
    last = channels_last(layout, nd)

    def hint(channels):
        """Points at layout= when x's channels are on the other side of its spatial dimensions."""
        other = x_shape[1] if last else x_shape[-1]
        return f" (did you mean layout={LAYOUTS[nd][0 if last else 1]!r}?)" if other == channels else ""

    if len(x_shape) != nd + 2:
        names = LAYOUTS[nd][1 if last else 0]
        raise ValueError(f"{x_name} must be {nd + 2}-D ({names}) for a {nd}-D convolution, "
                         f"got shape {x_shape}")
    if len(w_shape) != nd + 2:
        what = "(C_in, C_out/groups, *kernel)" if transposed else "(C_out, C_in/groups, *kernel)"
        raise ValueError(f"{w_name} must be {nd + 2}-D {what}, got shape {w_shape}")
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    batch = x_shape[0]
    cin = x_shape[-1] if last else x_shape[1]
    in_size = x_shape[1:-1] if last else x_shape[2:]
    kernel = w_shape[2:]
    if cin < 1:
        raise ValueError(f"{x_name} must have at least one channel, got shape {x_shape}")
    if min(in_size) < 1:
        raise ValueError(f"{x_name} has an empty spatial dimension: shape {x_shape}")
    if min(kernel) < 1 or min(w_shape[:2]) < 1:
        raise ValueError(f"{w_name} has an empty dimension: shape {w_shape}")
    needed = w_shape[0] if transposed else w_shape[1] * groups
    if cin % groups:
        raise ValueError(f"groups={groups} must divide the input channels {cin} of {x_name} "
                         f"(shape {x_shape}){hint(needed)}")
    if transposed:
        if w_shape[0] != cin:
            raise ValueError(f"{w_name} shape {w_shape} needs {cin} input channels in dimension 0 "
                             f"to match {x_name} shape {x_shape}{hint(needed)}")
        cout = w_shape[1] * groups
    else:
        if w_shape[1] * groups != cin:
            raise ValueError(f"{w_name} shape {w_shape} expects {w_shape[1] * groups} input channels "
                             f"(C_in/groups={w_shape[1]}, groups={groups}) but {x_name} shape "
                             f"{x_shape} has {cin}{hint(needed)}")
        if w_shape[0] % groups:
            raise ValueError(f"groups={groups} must divide the output channels {w_shape[0]} of "
                             f"{w_name} (shape {w_shape})")
        cout = w_shape[0]
    stride = int_tuple("stride", stride, nd, 1)
    dilation = int_tuple("dilation", dilation, nd, 1)
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if transposed and padding_mode != "zeros":
        raise ValueError(f"padding_mode must be 'zeros' for a transposed convolution, got {padding_mode!r}")
    pb, pa = normalize_padding(padding, nd, in_size, kernel, stride, dilation, transposed)
    if transposed:
        op = int_tuple("output_padding", output_padding, nd, 0)
        for a in range(nd):
            if op[a] >= max(stride[a], dilation[a]):
                raise ValueError(f"output_padding {op} must be smaller than stride {stride} or "
                                 f"dilation {dilation} in every dimension")
        out_size = tuple(transposed_output_size(i, k, s, (b, e), o, d)
                         for i, k, s, b, e, o, d in zip(in_size, kernel, stride, pb, pa, op, dilation))
        if min(out_size) < 1:
            raise ValueError(f"padding {padding!r} leaves no output for {x_name} shape {x_shape} and "
                             f"kernel {kernel} with stride {stride} (output size {out_size})")
    else:
        op = (0,) * nd
        if padding_mode == "reflect" and any(b >= i or e >= i for b, e, i in zip(pb, pa, in_size)):
            raise ValueError(f"reflect padding {padding!r} must be smaller than the input size "
                             f"{in_size} of {x_name} (shape {x_shape})")
        if padding_mode in ("circular", "symmetric") and any(
                b > i or e > i for b, e, i in zip(pb, pa, in_size)):
            raise ValueError(f"{padding_mode} padding {padding!r} must not exceed the input size "
                             f"{in_size} of {x_name} (shape {x_shape})")
        out_size = tuple(output_size(i, k, s, (b, e), d)
                         for i, k, s, b, e, d in zip(in_size, kernel, stride, pb, pa, dilation))
        if min(out_size) < 1:
            span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            padded = tuple(i + b + e for i, b, e in zip(in_size, pb, pa))
            raise ValueError(f"{w_name} kernel {kernel} (dilated span {span}) is larger than the padded "
                             f"input {padded} of {x_name} shape {x_shape}")
    g = Geometry(nd, bool(transposed), last, batch, cin, cout, groups, in_size, kernel, stride,
                 dilation, pb, pa, op, padding_mode, out_size)
    _check_size(x_name, g.x_shape)
    _check_size("output", g.out_shape)
    _check_size(w_name, w_shape)
    # An empty batch passes the byte counts with any sizes, but the C descriptor holds each size
    # in an int64.
    for what, shape in ((x_name, x_shape), (w_name, w_shape), ("output", out_size)):
        if max(shape) > _SIZE_MAX:
            raise ValueError(f"{what} has a size >= 2**62: shape {shape}")
    return g


# ---------------------------------------------------------------------------- arrays and dtypes

def as_array(name, a, optional=False):
    """a as a real numeric ndarray; None only where optional (then None is returned)."""
    if a is None:
        if optional:
            return None
        raise TypeError(f"{name} must be an array, got None")
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (float32 or float64 computed natively), "
                        f"got dtype {arr.dtype}")
    return arr


_RESULT_DTYPES: dict = {}  # the inputs' dtypes -> result_dtype (np.result_type takes microseconds)


def result_dtype(*arrays):
    """The compute and result dtype (see the module docstring)."""
    key = tuple([a.dtype for a in arrays if a is not None])
    dt = _RESULT_DTYPES.get(key)
    if dt is None:
        dt = _promote(key)
        if len(_RESULT_DTYPES) >= 256:
            _RESULT_DTYPES.clear()
        _RESULT_DTYPES[key] = dt
    return dt


def _promote(dtypes):
    dt = np.result_type(*dtypes)
    if dt.kind in "biu" or dt == np.longdouble:
        return np.dtype(np.float64)
    if dt == np.float16:
        return np.dtype(np.float32)
    return dt


def check_bias(bias, channels, name="bias"):
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != channels):
        raise ValueError(f"{name} must have shape ({channels},) to match the output channels, "
                         f"got shape {bias.shape}")


#: The named activations a convolution fuses into its stores, as (min, max) bounds:
#: torch.relu and torch.nn.functional.relu6 (hardtanh(0, 6)).
ACTIVATIONS = {"relu": (0.0, math.inf), "relu6": (0.0, 6.0)}


def activation_bounds(activation, name="activation"):
    """None (no activation), or the (min, max) float bounds of a fused activation: "relu",
    "relu6", or a pair (min, max) of real numbers, either None for unbounded (torch.clamp's
    min=, max=). Outputs become min(max(y, min), max) after the bias; NaN stays NaN."""
    if activation is None:
        return None
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    if isinstance(activation, (tuple, list)) and len(activation) == 2 and all(
            v is None or (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                          and not math.isnan(v)) for v in activation):
        lo, hi = activation
        return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))
    raise ValueError(f"{name} must be None, 'relu', 'relu6' or a pair (min, max) of real numbers "
                     f"(None for an unbounded side; not NaN), got {activation!r}")


def output_array(out, shape, dtype, inputs):
    """(result, target): target is C-contiguous, written by the kernel; result is what is returned.
    With out=, result is out (checked) and target is out itself when it is contiguous."""
    if out is None:
        try:
            y = np.empty(shape, dtype)
        except (MemoryError, ValueError) as e:
            raise MemoryError(f"output of shape {shape} and dtype {dtype} cannot be allocated: {e}") from None
        return y, y
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype} (the result dtype)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError("out overlaps an input array; pass a separate output buffer")
    if out.flags.c_contiguous:
        return out, out
    return out, np.empty(shape, dtype)


def contiguous(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


# ---------------------------------------------------------------------------- lossy algorithms
# cconv.allow_lossy (context-local, like cconv.use_isa) overrides the process-wide
# cconv.set_allow_lossy; None: no block is active.
lossy_override = contextvars.ContextVar("cconv_allow_lossy", default=None)
_allow_lossy = True


def set_allow_lossy(flag):
    global _allow_lossy
    _allow_lossy = check_lossy_flag(flag)


def get_allow_lossy():
    flag = lossy_override.get()
    return _allow_lossy if flag is None else flag


def check_lossy_flag(flag):
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"allow_lossy takes True or False, got {flag!r}")
    return bool(flag)


def effective_algorithm(algorithm, allow_lossy=None):
    """The algorithm a plan is asked for: "auto" becomes "exact" when lossy algorithms are
    disallowed (allow_lossy None: the current setting), and a lossy one raises."""
    if allow_lossy is None:
        allow_lossy = get_allow_lossy()
    if allow_lossy:
        return algorithm
    if algorithm == "auto":
        return "exact"
    if algorithm in LOSSY_ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is lossy (Winograd rounds differently from a "
                         f"direct convolution: several times its float32 error) and lossy "
                         f"algorithms are disallowed here (cconv.allow_lossy(False) or "
                         f"cconv.set_allow_lossy(False)); use 'exact' or 'gemm', or allow them")
    return algorithm
