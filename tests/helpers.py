"""Helpers shared by the cconv tests: ISA switching, memory arrangements,
hypothesis strategies for every variant's arguments."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import reference as R

try:
    import cconv
except ImportError:  # the test modules skip themselves
    cconv = None

FLOATS = (np.float32, np.float64)
MODES = ("zeros", "reflect", "replicate", "circular")
# "auto" twice as often; "depthwise" only applies to one input channel per group
ALGORITHMS = ("auto", "gemm", "reference", "auto", "depthwise")
ARRANGEMENTS = ("c", "f", "noncontig", "negstride", "readonly")


# --------------------------------------------------------------------- ISA
@contextlib.contextmanager
def use_isa(name):
    """Run the block with the given ISA path forced; restore the previous one."""
    if cconv is None or name in ("default", "<cconv not importable>"):
        yield
        return
    with cconv.use_isa(name):
        assert cconv.get_isa() == name
        yield


def threads_equal(fn):
    """fn() gives bitwise the same array with 1 and with 2 threads."""
    with num_threads(1):
        a = fn()
    with num_threads(2):
        b = fn()
    return np.array_equal(a, b)


@contextlib.contextmanager
def num_threads(n):
    prev = cconv.get_num_threads()
    cconv.set_num_threads(n)
    try:
        yield
    finally:
        cconv.set_num_threads(prev)


# ---------------------------------------------------------- arrangements
def arrange(a, kind):
    """Return an array equal to ``a`` with the given memory arrangement.

    c: C-contiguous copy; f: Fortran order; noncontig: every other element of
    a bigger buffer; negstride: a reversed view of a reversed copy; readonly:
    a non-writeable C-contiguous copy.
    """
    a = np.asarray(a)
    if kind == "c":
        return np.ascontiguousarray(a).copy()
    if kind == "f":
        return np.asfortranarray(a).copy(order="F")
    if kind == "noncontig":
        big = np.full(tuple(2 * s for s in a.shape) + (2,), np.nan, dtype=a.dtype)
        view = big[(slice(None, None, 2),) * a.ndim + (1,)]
        view[...] = a
        assert a.size <= 1 or not view.flags.c_contiguous
        return view
    if kind == "negstride":
        rev = (slice(None, None, -1),) * a.ndim
        return a[rev].copy()[rev]
    if kind == "readonly":
        b = np.ascontiguousarray(a).copy()
        b.flags.writeable = False
        return b
    raise ValueError(kind)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def result_dtype(*arrays):
    return np.result_type(*(a for a in arrays if a is not None))


def maybe_scalar(t, draw):
    """Pass a uniform tuple as a bare int half of the time."""
    if len(set(t)) == 1 and draw(st.booleans()):
        return t[0]
    return tuple(t)


# ------------------------------------------------------------ strategies
@dataclass
class ConvCase:
    nd: int
    n: int
    groups: int
    c_in: int
    c_out: int
    in_sizes: tuple
    kernel: tuple
    stride: object
    dilation: object
    padding: object
    padding_mode: str
    bias: bool
    x_dtype: type
    w_dtype: type
    layout: object  # None or a layout string
    x_arr: str
    w_arr: str
    use_out: object  # None, or the memory arrangement of an out= buffer
    seed: int
    extra: dict = field(default_factory=dict)
    algorithm: str = "auto"

    @property
    def channels_last(self):
        return self.layout is not None and R.LAYOUTS[self.layout][1]

    def x_shape(self):
        if self.channels_last:
            return (self.n, *self.in_sizes, self.c_in)
        return (self.n, self.c_in, *self.in_sizes)


def _padding_form(draw, nd, max_pad=2):
    form = draw(st.sampled_from(["int", "tuple", "pairs", "valid", "same"]))
    if form == "int":
        return draw(st.integers(0, max_pad))
    if form == "tuple":
        return tuple(draw(st.integers(0, max_pad)) for _ in range(nd))
    if form == "pairs":
        return tuple(
            (draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad))) for _ in range(nd)
        )
    return form


def _common(draw, nd, dtypes=FLOATS):
    x_dtype = draw(st.sampled_from(dtypes))
    # mostly matching dtypes, sometimes mixed (promotes like NumPy)
    w_dtype = x_dtype if draw(st.integers(0, 3)) else draw(st.sampled_from(dtypes))
    layout_kind = draw(st.sampled_from(["none", "first", "last", "last"]))
    layout = {"none": None, "first": R.CHANNELS_FIRST[nd], "last": R.CHANNELS_LAST[nd]}[layout_kind]
    x_arr = draw(st.sampled_from(ARRANGEMENTS))
    w_arr = draw(st.sampled_from(ARRANGEMENTS))
    return dict(
        x_dtype=x_dtype,
        w_dtype=w_dtype,
        layout=layout,
        x_arr=x_arr,
        w_arr=w_arr,
        use_out=draw(st.sampled_from([None, None, "c", "c", "f", "noncontig"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _sizes_for(draw, nd, kernel, stride, dilation, padding, padding_mode, max_extra):
    """Spatial sizes that make the case valid (output >= 1, reflect/circular pads fit)."""
    sizes = []
    for i in range(nd):
        ext = dilation[i] * (kernel[i] - 1) + 1
        if isinstance(padding, str):
            if padding == "valid":
                lo = ext
            else:  # same: pads are at most ceil((ext - 1) / 2)
                lo = 1 if padding_mode in ("zeros", "replicate") else (ext - 1 + 1) // 2 + 1
        else:
            before, after = R.normalize_padding(padding, nd)
            b, a = before[i], after[i]
            lo = max(1, ext - b - a)
            if padding_mode == "reflect":
                lo = max(lo, b + 1, a + 1)
            elif padding_mode == "circular":
                lo = max(lo, b, a)
        sizes.append(lo + draw(st.integers(0, max_extra)))
    return tuple(sizes)


@st.composite
def conv_cases(draw, nd=None, dtypes=FLOATS, modes=MODES, max_groups=3):
    nd = draw(st.sampled_from([1, 2, 3])) if nd is None else nd
    kmax, extra = {1: (5, 4), 2: (3, 3), 3: (3, 2)}[nd]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2 if nd == 3 else 3)) for _ in range(nd))
    padding = _padding_form(draw, nd)
    padding_mode = draw(st.sampled_from(modes))
    sizes = _sizes_for(draw, nd, kernel, stride, dilation, padding, padding_mode, extra)
    groups = draw(st.integers(1, max_groups))
    cig = draw(st.integers(1, 3))
    cog = draw(st.integers(1, 3))
    com = _common(draw, nd, dtypes)
    return ConvCase(
        nd=nd,
        n=draw(st.sampled_from([1, 1, 2, 0])),
        groups=groups,
        c_in=groups * cig,
        c_out=groups * cog,
        in_sizes=sizes,
        kernel=kernel,
        stride=maybe_scalar(stride, draw),
        dilation=maybe_scalar(dilation, draw),
        padding=padding,
        padding_mode=padding_mode,
        algorithm=draw(st.sampled_from(ALGORITHMS)),
        **com,
    )


@st.composite
def conv_transpose_cases(draw, nd=None, dtypes=FLOATS, max_groups=3):
    nd = draw(st.sampled_from([1, 2, 3])) if nd is None else nd
    kmax, imax = {1: (5, 5), 2: (3, 4), 3: (3, 3)}[nd]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    sizes = tuple(draw(st.integers(1, imax)) for _ in range(nd))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    pads = []
    for i, k, s, d, a in zip(sizes, kernel, stride, dilation, out_pad):
        p = draw(st.integers(0, 3))
        # keep the output non-empty: o' = s(i-1) + a + d(k-1) + 1 - 2p >= 1
        pads.append(min(p, (s * (i - 1) + a + d * (k - 1)) // 2))
    groups = draw(st.integers(1, max_groups))
    com = _common(draw, nd, dtypes)
    return ConvCase(
        nd=nd,
        n=draw(st.sampled_from([1, 1, 2, 0])),
        groups=groups,
        c_in=groups * draw(st.integers(1, 3)),
        c_out=groups * draw(st.integers(1, 3)),
        in_sizes=sizes,
        kernel=kernel,
        stride=maybe_scalar(stride, draw),
        dilation=maybe_scalar(dilation, draw),
        padding=maybe_scalar(tuple(pads), draw),
        padding_mode="zeros",
        extra={"output_padding": maybe_scalar(out_pad, draw)},
        algorithm=draw(st.sampled_from(ALGORITHMS[:3])),
        **com,
    )


@st.composite
def conv2d_variant_cases(draw, dtypes=FLOATS, max_groups=1, max_kernel=4):
    """2-D case for depthwise/separable/spatially-separable/flattened (zeros padding)."""
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(2))
    padding = _padding_form(draw, 2)
    sizes = _sizes_for(draw, 2, kernel, stride, dilation, padding, "zeros", 4)
    groups = draw(st.integers(1, max_groups))
    com = _common(draw, 2, dtypes)
    return ConvCase(
        nd=2,
        n=draw(st.sampled_from([1, 1, 2, 0])),
        groups=groups,
        c_in=groups * draw(st.integers(1, 4)),
        c_out=groups * draw(st.integers(1, 4)),
        in_sizes=sizes,
        kernel=kernel,
        stride=maybe_scalar(stride, draw),
        dilation=maybe_scalar(dilation, draw),
        padding=padding,
        padding_mode="zeros",
        extra={"multiplier": draw(st.integers(1, 3)), "c_mid": groups * draw(st.integers(1, 3))},
        **com,
    )


# ------------------------------------------------------------- running
def make_out(expected_shape, dtype):
    return np.full(expected_shape, np.nan, dtype=dtype)


def check_call(fn, args, kwargs, expected, scale, terms, case, isa, originals):
    """Call ``fn`` (with ``out=`` if the case asks), compare with the oracle, and
    check the inputs were not modified (``originals``: list of (array, copy))."""
    dtype = result_dtype(*[a for a, _ in originals])
    out = None
    if case.use_out:
        out = arrange(make_out(expected.shape, dtype), case.use_out)
        kwargs = dict(kwargs, out=out)
    with use_isa(isa):
        y = fn(*args, **kwargs)
    assert isinstance(y, np.ndarray)
    assert y.dtype == dtype, (y.dtype, dtype)
    if out is not None:
        assert y is out
    R.assert_conv_close(y, expected, scale, dtype, terms, msg=repr(case))
    for a, c in originals:
        assert np.array_equal(a, c, equal_nan=True), "input modified"
