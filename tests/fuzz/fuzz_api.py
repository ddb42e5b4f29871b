"""atheris harness over cconv's public Python API.

Each input draws (atheris.FuzzedDataProvider) one public function -- conv1d/2d/3d,
conv_transpose1d/2d/3d, depthwise/separable/spatially separable/flattened conv2d, grouped conv2d,
channel_shuffle, shuffled_grouped_conv2d, the plan_* API, the cconv.grad functions -- and
arguments of every kind: shapes with 0, 1, huge and negative sizes (huge ones as zero-stride
broadcast views, so nothing big is allocated), strides, every padding form ("same", "valid", ints,
per-dimension tuples, per-side pairs, and malformed ones), padding modes, dilations, groups,
layouts, dtypes (float32/64, ints, bool, float16, complex, object), algorithms, out= arrays (right,
wrong shape or dtype, read-only, non-contiguous, overlapping an input, not an array), input
arrangements (Fortran, non-contiguous, negative strides, read-only), NaN/Inf values and
non-array inputs.

Oracle (check_input): a call either returns the right answer or raises ValueError, TypeError or
MemoryError. "Right": for the forward functions, the float64 reference of tests/reference.py
within tests/reference.py's assert_conv_close bounds (float32 1e-5 sqrt(K), float64 1e-10, times
conv(|x|, |w|) + |b|; NaN/Inf exactly where the reference has them); for the gradients, the
float64 gradients of tests/reference.py element by element (Inf/NaN exactly where they are) and
the adjoint identities <conv(x, w), g> = <x, grad_input(g)> = <w, grad_weight(x, g)> (float64
reference, same relative tolerances) and the output shape; for the composite gradients, shapes and
dtype. Anything else -- another exception type, a wrong answer, a crash or sanitizer report -- is a
finding.

Run (see docs/fuzzing.md):
    PYTHONPATH=src python tests/fuzz/fuzz_api.py [libFuzzer flags] [corpus dirs]
tests/test_fuzz_regressions.py replays tests/fuzz/corpus/fuzz_api through check_input.
"""
import math
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: reference.py

import atheris  # noqa: E402

with atheris.instrument_imports(include=["cconv"]):
    import cconv  # noqa: E402
    from cconv import grad as G  # noqa: E402

import reference as R  # noqa: E402

ALLOWED = (ValueError, TypeError, MemoryError)
WORK_CAP = 2e5          # multiply-adds for which the float64 reference is computed
HUGE = (2**40, 2**62, 2**63, 2**64, 10**30)  # never allocatable: replays stay fast without ASan
LAYOUT_NAMES = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
ISAS = cconv.available_isas()


class Finding(AssertionError):
    pass


class Case:
    """Draws values from the fuzzer's bytes; `clean` stays True while every argument drawn is of a
    well-formed kind (then a result is checked against the reference)."""

    def __init__(self, data):
        self.fdp = atheris.FuzzedDataProvider(data)
        self.rng = None

    def int(self, lo, hi):
        return self.fdp.ConsumeIntInRange(lo, hi)

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, in256):
        """True with probability ~in256/256."""
        return self.int(0, 255) < in256

    def size(self, lo, hi):
        """A dimension: mostly lo..hi, sometimes 0, negative or huge."""
        if self.chance(12):
            return self.pick((0, -1, 1) + HUGE)
        return self.int(lo, hi)

    def param(self, nd, lo, hi, minimum):
        """stride/dilation/output_padding: an int, a tuple, or something malformed."""
        k = self.int(0, 15)
        if k < 8:
            return self.int(lo, hi)
        if k < 13:
            return tuple(self.int(lo, hi) for _ in range(nd))
        return self.pick((minimum - 1, (lo,) * (nd + 1), 1.0, True, "1", None, [lo] * nd,
                          np.int64(lo), 2**63, -2**63, (lo, None)[:nd]))

    def padding(self, nd):
        k = self.int(0, 15)
        if k < 5:
            return self.int(0, 2)
        if k < 7:
            return self.pick(("same", "valid", "SAME", "Valid"))
        if k < 10:
            return tuple(self.int(0, 2) for _ in range(nd))
        if k < 13:
            return tuple((self.int(0, 2), self.int(0, 2)) for _ in range(nd))
        return self.pick((-1, "full", 1.5, None, (1,) * (nd + 1), ((1, 2, 3),) * nd, 2**62, 2**63,
                          ((0, -1),) * nd, [(0, 1)] * nd, np.int32(1)))

    def layout(self, nd):
        k = self.int(0, 15)
        if k < 6:
            return None
        if k < 13:
            return LAYOUT_NAMES[nd][self.int(0, 1)]
        if k < 14:
            return LAYOUT_NAMES[nd][self.int(0, 1)].lower()
        return self.pick(("NCHW" if nd != 2 else "NCW", "bogus", 3, b"NCHW"))

    def dtype(self):
        k = self.int(0, 31)
        if k < 14:
            return np.float32
        if k < 27:
            return np.float64
        return self.pick((np.float16, np.int32, np.bool_, np.complex64, object))

    def array(self, shape, dtype, name):
        """An array of `shape` (None for a shape that is not valid to allocate), in an arrangement
        chosen by the input; values in [-1, 1), sometimes a NaN/Inf; sometimes not an array."""
        shape = tuple(shape)
        k = self.int(0, 63)
        if k == 0:
            return self.pick((None, "x", 3.0, [[1.0, 2.0], [3.0]], {"a": 1}))
        if any(s < 0 for s in shape):
            return np.zeros((1,) * len(shape), np.float32)  # shape cannot be honoured: any array
        n = math.prod(shape)
        if n > 1 << 22 or any(s > 1 << 30 for s in shape):
            # huge: a zero-stride view, nothing allocated (numpy itself refuses some shapes)
            try:
                return np.broadcast_to(np.array(0.5, dtype=dtype), shape)
            except (ValueError, OverflowError):
                return np.zeros((1,) * len(shape), np.float32)
        if dtype is object:
            return np.full(shape, 1.0, dtype=object)
        a = np.asarray((self.rng.integers(-1024, 1024, size=shape) / 1024.0).astype(dtype))
        if n and dtype in (np.float32, np.float64, np.float16) and self.chance(16):
            a.flat[self.int(0, n - 1)] = self.pick((np.nan, np.inf, -np.inf))
        kind = self.int(0, 15)
        if kind == 10:
            a = np.asfortranarray(a)
        elif kind == 11 and a.ndim:
            big = np.zeros(tuple(2 * s for s in a.shape), dtype)
            big[(slice(None, None, 2),) * a.ndim] = a
            a = big[(slice(None, None, 2),) * a.ndim]
        elif kind == 12 and a.ndim:
            rev = (slice(None, None, -1),) * a.ndim
            a = a[rev].copy()[rev]
        elif kind == 13:
            a.flags.writeable = False
        elif kind == 14:
            a = a.tolist()
        return a

    def out(self, expect_shape, expect_dtype, inputs):
        """out=: None mostly; else right, wrong shape/dtype, read-only, strided, overlapping."""
        k = self.int(0, 15)
        if k < 9 or expect_shape is None:
            return None
        shape = tuple(expect_shape)
        if any(s < 0 or s > 1 << 20 for s in shape) or math.prod(shape) > 1 << 22:
            return None
        if k < 11:
            return np.full(shape, np.nan, expect_dtype)
        if k == 11:
            big = np.full(tuple(2 * s for s in shape) or (), np.nan, expect_dtype)
            return big[(slice(None, None, 2),) * len(shape)]
        if k == 12:
            return np.full(shape + (1,), np.nan, expect_dtype)
        if k == 13:
            return np.full(shape, np.nan, np.float32 if expect_dtype == np.float64 else np.float64)
        if k == 14:
            a = np.zeros(shape, expect_dtype)
            a.flags.writeable = False
            return a
        arrs = [a for a in inputs if isinstance(a, np.ndarray) and a.flags.writeable]
        if arrs:
            return arrs[0]  # overlaps an input (must be refused, whatever its shape)
        return [0.0]


# ------------------------------------------------------------------ oracles

def _f64(a):
    return np.asarray(a).astype(np.float64)


def _is_float_array(a):
    return isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)


def _result_dtype(*arrays):
    dts = [np.asarray(a).dtype for a in arrays if a is not None]
    return np.float64 if any(d == np.float64 for d in dts) else np.float32


def _close(actual, expected, scale, dtype, terms, what):
    try:
        R.assert_conv_close(actual, expected, scale, dtype, terms=terms, msg=what)
    except AssertionError as e:
        raise Finding(f"wrong answer: {e}") from None


def _dot_close(a, b, scale, dtype, terms, what):
    tol = 1e-5 * math.sqrt(max(terms, 1)) if dtype == np.float32 else 1e-10
    if not math.isfinite(scale):
        return
    if not abs(a - b) <= tol * (scale + 1e-300):
        raise Finding(f"wrong answer: {what}: {a!r} != {b!r} (scale {scale:.3g})")


def _ref_kwargs(kw):
    """The same arguments in the forms tests/reference.py takes (it knows only the canonical
    spellings the library also accepts: upper-case layouts, lower-case padding strings)."""
    r = {k: v for k, v in kw.items() if k != "fused"}
    if isinstance(r.get("layout"), str):
        r["layout"] = r["layout"].upper()
    if isinstance(r.get("padding"), str):
        r["padding"] = r["padding"].lower()
    return r


def _batched(ref, x, nd):
    """tests/reference.py takes batched input only; the library also takes an unbatched x
    (C, *spatial), which is a batch of one."""
    if np.ndim(x) != nd + 1:
        return ref
    return lambda x_, *args, **kw: ref(np.asarray(x_)[None], *args, **kw)[0]


def _work(*sizes):
    return math.prod(abs(int(s)) for s in sizes)


# ------------------------------------------------------------------ cases
# Each builder draws the arguments, returns (call, check): call() runs cconv, check(result)
# verifies a successful result (or returns without checking when the case is not clean).

def _conv_case(c, nd, transposed, plan=False):
    groups = c.pick((1, 1, 1, 2, 3)) if not c.chance(8) else c.pick((0, -1, 2**63, 1.0, "2"))
    g = groups if isinstance(groups, int) and 1 <= groups <= 4 else 1
    n = c.size(0, 3)
    cin = g * c.int(1, 3) if not c.chance(8) else c.size(0, 6)
    cout = g * c.int(1, 3) if not c.chance(8) else c.size(0, 6)
    sp = [c.size(1, 7) for _ in range(nd)]
    ks = [c.size(1, 4) for _ in range(nd)]
    stride = c.param(nd, 1, 3, 1)
    dilation = c.param(nd, 1, 2, 1)
    padding = c.padding(nd)
    mode = "zeros" if transposed or c.chance(128) else c.pick(("reflect", "replicate", "circular", "zeros", "wrap", None))
    outpad = c.param(nd, 0, 1, 0) if transposed and c.chance(96) else 0
    layout = c.layout(nd)
    last = layout in (LAYOUT_NAMES[nd][1], LAYOUT_NAMES[nd][1].lower())
    algorithm = c.pick(("auto",) * 4 + ("gemm", "winograd", "depthwise", "grouped", "reference", "fast", None))
    dt_x, dt_w = c.dtype(), c.dtype()
    x_shape = (n, *sp, cin) if last else (n, cin, *sp)
    if c.chance(6):
        x_shape = x_shape[:-1]  # wrong rank
    w_shape = (cin, cout // g if g else cout, *ks) if transposed else (cout, cin // g if g else cin, *ks)
    x = c.array(x_shape, dt_x, "x")
    w = c.array(w_shape, dt_w, "weight")
    bias = c.array((cout,) if not c.chance(8) else (cout + 1,), c.dtype(), "bias") if c.chance(128) else None
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    if transposed:
        kw["output_padding"] = outpad
    else:
        kw["padding_mode"] = mode
    ref_kw = _ref_kwargs(kw)
    fn = getattr(cconv, name)
    ref = getattr(R, name)
    y_dtype = (_result_dtype(x, w, bias) if all(_is_float_array(a) for a in (x, w)) and
               (bias is None or _is_float_array(bias)) else None)
    out = None
    if not plan:
        # a guess at the output shape, so out= is often right (the oracle does not rely on it)
        try:
            g_ = cconv._geometry.conv_geometry(nd, np.shape(x), np.shape(w), stride, padding, dilation, groups,
                                          padding_mode=mode if not transposed else "zeros", layout=layout,
                                          transposed=transposed, output_padding=outpad)
            out = c.out(g_.out_shape, y_dtype or np.float64, (x, w, bias))
        except Exception:
            out = c.out(None, None, ())

    def call():
        if plan:
            pfn = getattr(cconv, "plan_" + name)
            p = pfn(x_shape, w, bias, algorithm=algorithm, dtype=c_plan_dtype, **kw)
            _ = (p.algorithm, p.out_shape, p.weight_bytes, p.workspace_bytes, repr(p))
            return p(x)
        return fn(x, w, bias, out=out, algorithm=algorithm, **kw)

    c_plan_dtype = c.pick((None, np.float32, np.float64, "float32", np.int8, "bogus"))

    def check(y):
        arrays = (x, w, bias)
        if not all(a is None or _is_float_array(a) for a in arrays):
            return
        if plan and c_plan_dtype is not None:
            return
        if out is not None and y is not out:
            raise Finding("out= given but a different array returned")
        k = _work(n, cout, *(cin // max(g, 1), *ks)) * math.prod(max(1, int(v)) for v in sp) * 8
        if k > WORK_CAP * 8:
            return
        ref_ = _batched(ref, x, nd)
        expected = ref_(_f64(x), _f64(w), None if bias is None else _f64(bias), **ref_kw)
        scale = R.magnitude(ref_, x, w, bias, **ref_kw)
        _close(y, expected, scale, y.dtype, (cin // g) * math.prod(ks), name)
        want = _result_dtype(w, bias) if plan else y_dtype
        if y.dtype != want:
            raise Finding(f"dtype {y.dtype}, expected {want}")

    return call, check


def _variant_case(c):
    kind = c.pick(("depthwise", "separable", "spatial", "flattened", "shuffled", "grouped"))
    n = c.size(0, 3)
    cin = c.int(1, 4) if not c.chance(8) else c.size(0, 6)
    m = c.int(1, 2)
    cout = c.int(1, 4)
    sp = [c.size(1, 7) for _ in range(2)]
    kh, kw_ = c.size(1, 3), c.size(1, 3)
    stride = c.param(2, 1, 2, 1)
    dilation = c.param(2, 1, 2, 1)
    padding = c.padding(2)
    layout = c.layout(2)
    last = layout in ("NHWC", "nhwc")
    dt = c.dtype()
    fused = c.chance(160)
    x_shape = (n, *sp, cin) if last else (n, cin, *sp)
    x = c.array(x_shape, dt, "x")
    bias_n = cout
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    ref_kw = _ref_kwargs(kw)
    if kind == "depthwise":
        w = c.array((cin * m, 1, kh, kw_), c.dtype(), "weight")
        bias_n = cin * m
        weights = (w,)
        fn, ref = cconv.depthwise_conv2d, R.depthwise_conv2d
        terms = kh * kw_
    elif kind == "separable":
        dw = c.array((cin * m, 1, kh, kw_), c.dtype(), "dw")
        pw = c.array((cout, cin * m, 1, 1), c.dtype(), "pw")
        weights = (dw, pw)
        fn, ref = cconv.separable_conv2d, R.separable_conv2d
        kw["fused"] = fused
        terms = kh * kw_ * cin * m
    elif kind == "spatial":
        groups = c.pick((1, 1, 2))
        cmid = groups * c.int(1, 2)
        cout = groups * c.int(1, 2)
        bias_n = cout
        vw = c.array((cmid, cin // groups if cin % groups == 0 else 1, kh, 1), c.dtype(), "vw")
        hw = c.array((cout, cmid // groups, 1, kw_), c.dtype(), "hw")
        weights = (vw, hw)
        kw.update(groups=groups, fused=fused)
        ref_kw["groups"] = groups
        fn, ref = cconv.spatially_separable_conv2d, R.spatially_separable_conv2d
        terms = kh * kw_ * cin * cmid
    elif kind == "flattened":
        ch = c.array((cout, cin), c.dtype(), "ch")
        v = c.array((cout, kh), c.dtype(), "v")
        h = c.array((cout, kw_), c.dtype(), "h")
        weights = (ch, v, h)
        kw["fused"] = fused
        fn, ref = cconv.flattened_conv2d, R.flattened_conv2d
        terms = kh * kw_ * cin
    else:  # grouped conv2d / shuffled_grouped_conv2d
        groups = c.pick((1, 2, 3, 4)) if not c.chance(8) else c.pick((0, -2, 2**62))
        g = groups if isinstance(groups, int) and groups >= 1 else 1
        cin = g * c.int(1, 3)
        cout = g * c.int(1, 3)
        bias_n = cout
        x_shape = (n, *sp, cin) if last else (n, cin, *sp)
        x = c.array(x_shape, dt, "x")
        w = c.array((cout, cin // g, kh, kw_), c.dtype(), "weight")
        weights = (w,)
        terms = kh * kw_ * (cin // g)
        mode = c.pick(("zeros", "reflect", "replicate", "circular"))
        if kind == "shuffled":
            sg = c.pick((None, None, 1, 2, 3, 0, g))
            kw.update(shuffle_groups=sg, padding_mode=mode)
            fn = lambda x, w, b=None, **k: cconv.shuffled_grouped_conv2d(x, w, groups, b, **k)  # noqa: E731

            def ref(x, w, b=None, **k):
                k = dict(k)
                s = k.pop("shuffle_groups")
                y = R.conv2d(x, w, b, groups=groups, **k)
                return R.channel_shuffle(y, groups if s is None else s, k.get("layout"))

            ref_kw.update(shuffle_groups=sg, padding_mode=mode)
        else:
            kw.update(groups=groups, padding_mode=mode)
            ref_kw.update(groups=groups, padding_mode=mode)
            fn, ref = cconv.conv2d, R.conv2d
    bias = c.array((bias_n,), c.dtype(), "bias") if c.chance(128) else None
    out = c.out(None, None, ()) if c.chance(200) else None

    def call():
        return fn(x, *weights, bias, out=out, **kw)

    def check(y):
        arrays = (x, *weights, bias)
        if not all(a is None or _is_float_array(a) for a in arrays):
            return
        if _work(n, cin * m + cout, cout + 1, kh * kw_ * 4) * math.prod(max(1, int(v)) for v in sp) > WORK_CAP:
            return
        expected = ref(*(None if a is None else _f64(a) for a in arrays), **ref_kw)
        scale = R.magnitude(ref, *arrays, **ref_kw)
        _close(y, expected, scale, y.dtype, terms, kind)
        if y.dtype != _result_dtype(*arrays):
            raise Finding(f"{kind}: dtype {y.dtype}, expected {_result_dtype(*arrays)}")

    return call, check


def _shuffle_case(c):
    nd = c.int(1, 3)
    layout = c.layout(nd) if c.chance(128) else None
    groups = c.pick((1, 2, 3, 4)) if not c.chance(12) else c.pick((0, -1, 2**63, 1.5, "2", None, True))
    shape = [c.size(0, 3), c.size(0, 6)] + [c.size(1, 4) for _ in range(nd)]
    if c.chance(8):
        shape = shape[:c.int(0, len(shape))]
    last = isinstance(layout, str) and layout.upper() == LAYOUT_NAMES[nd][1]
    if last and len(shape) >= 3:
        shape = [shape[0]] + shape[2:] + [shape[1]]
    x = c.array(shape, c.pick((np.float32, np.float64, np.int16, np.float16)), "x")
    inverse = c.chance(64)

    def call():
        if inverse:
            return G.channel_shuffle_input(x, groups, layout=layout)
        return cconv.channel_shuffle(x, groups, layout=layout)

    def check(y):
        if not isinstance(x, np.ndarray) or x.dtype == object:
            return
        lay = layout.upper() if isinstance(layout, str) else None
        if inverse:
            back = R.channel_shuffle(np.asarray(y), groups, lay)
            ok = np.array_equal(back, x, equal_nan=x.dtype.kind == "f")
        else:
            ok = np.array_equal(y, R.channel_shuffle(x, groups, lay), equal_nan=x.dtype.kind == "f")
        if not ok or np.asarray(y).dtype != x.dtype:
            raise Finding("channel_shuffle: wrong permutation or dtype")

    return call, check


def _grad_case(c):
    nd = c.int(1, 3)
    transposed = c.chance(80)
    which = c.pick(("input", "weight", "bias", "composite"))
    groups = c.pick((1, 1, 2))
    n = c.size(0, 2)
    cin = groups * c.int(1, 2)
    cout = groups * c.int(1, 2)
    sp = [c.size(1, 6) for _ in range(nd)]
    ks = [c.size(1, 3) for _ in range(nd)]
    stride = c.param(nd, 1, 2, 1)
    dilation = c.param(nd, 1, 2, 1)
    padding = c.padding(nd) if not transposed else c.int(0, 1)
    mode = "zeros" if transposed or c.chance(128) else c.pick(("reflect", "replicate", "circular"))
    layout = c.layout(nd)
    dt = c.dtype()
    last = layout in (LAYOUT_NAMES[nd][1], LAYOUT_NAMES[nd][1].lower())
    x_shape = (n, *sp, cin) if last else (n, cin, *sp)
    w_shape = (cin, cout // groups, *ks) if transposed else (cout, cin // groups, *ks)
    x = c.array(x_shape, dt, "x")
    w = c.array(w_shape, c.dtype(), "weight")
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    if transposed:
        kw["output_padding"] = 0
        fwd = getattr(cconv, f"conv_transpose{nd}d")
        prefix = f"conv_transpose{nd}d"
    else:
        kw["padding_mode"] = mode
        fwd = getattr(cconv, f"conv{nd}d")
        prefix = f"conv{nd}d"
    # grad_output shaped like the forward output (when that is computable)
    try:
        y0 = fwd(np.zeros(x_shape, np.float64), np.zeros(w_shape, np.float64), **kw)
        g_shape = y0.shape
    except Exception:
        g_shape = x_shape
    if c.chance(8):
        g_shape = tuple(g_shape)[:-1] + (tuple(g_shape)[-1] + 1,) if len(g_shape) else g_shape
    gout = c.array(g_shape, c.dtype(), "grad_output")
    input_shape = x_shape if not c.chance(8) else c.pick(((-1,) * len(x_shape), "x", (1.5,) * len(x_shape), x_shape[:-1]))
    weight_shape = w_shape if not c.chance(8) else c.pick(((0,) * len(w_shape), None, w_shape + (1,)))

    def call():
        if which == "input":
            return getattr(G, prefix + "_input")(input_shape, w, gout, **kw)
        if which == "weight":
            return getattr(G, prefix + "_weight")(x, weight_shape, gout, **kw)
        if which == "bias" or nd != 2 or transposed:
            if isinstance(gout, np.ndarray) and gout.size > 1 << 24:
                return None  # a huge zero-stride view: summing it is real (slow) work
            return G.bias(gout, layout=layout)
        comp = c.pick(("depthwise", "shuffled"))
        if comp == "depthwise":
            return G.depthwise_conv2d_grads(x, w, gout, stride, padding, dilation, layout=layout,
                                            input_grad=c.chance(128))
        return G.shuffled_grouped_conv2d_grads(x, w, gout, groups, stride, padding, dilation,
                                              padding_mode=mode, layout=layout, input_grad=c.chance(128))

    def check(r):
        arrays = (x, w, gout)
        if r is None or not all(_is_float_array(a) for a in arrays):
            return
        if which == "composite":
            for a in r if isinstance(r, tuple) else (r,):
                if a is not None and not isinstance(a, np.ndarray):
                    raise Finding("composite gradient returned a non-array")
            return
        if which == "bias":
            axes = tuple(a for a in range(gout.ndim) if a != (gout.ndim - 1 if last else 1))
            expected = _f64(gout).sum(axis=axes)
            _close(r, expected, np.abs(_f64(gout)).sum(axis=axes), r.dtype, gout.size, "bias grad")
            return
        if _work(n, cin, cout, *ks) * math.prod(max(1, int(v)) for v in sp) > WORK_CAP:
            return
        if r.shape != tuple(x_shape if which == "input" else w_shape):
            raise Finding(f"grad {which} shape {r.shape}, expected {x_shape if which == 'input' else w_shape}")
        # element by element against the float64 gradient of tests/reference.py (Inf/NaN exactly
        # where it has them), and the adjoint identity <conv(x, w), g> = <x, grad_input(g)> =
        # <w, grad_weight(x, g)> in float64, which ties the gradient to the forward definition
        ref_kw = _ref_kwargs(kw)
        grads = R.conv_transpose_grads if transposed else R.conv_grads
        i = 0 if which == "input" else 1
        dt = np.float64 if r.dtype == np.float64 else np.float32
        terms = _work(n, cin, cout, *ks, *sp)
        expected = grads(_f64(x), _f64(w), _f64(gout), **ref_kw)[i]
        scale = grads(np.abs(_f64(x)), np.abs(_f64(w)), np.abs(_f64(gout)), **ref_kw)[i]
        _close(r, expected, scale, dt, terms, f"{prefix} grad {which}")
        if not all(np.isfinite(a).all() for a in arrays):
            return
        ref = getattr(R, prefix)
        lhs = float(np.sum(ref(_f64(x), _f64(w), **ref_kw) * _f64(gout)))
        scale = float(np.sum(R.magnitude(ref, x, w, **ref_kw) * np.abs(_f64(gout))))
        rhs = float(np.sum((_f64(x) if which == "input" else _f64(w)) * _f64(r)))
        _dot_close(lhs, rhs, scale, dt, terms, f"{prefix} {which} adjoint")

    return call, check


def check_input(data):
    """Runs one fuzz input through the oracle; raises Finding (or lets an unexpected exception
    through) when the library misbehaves."""
    c = Case(data)
    c.rng = np.random.default_rng(c.int(0, 255))
    isa = ISAS[c.int(0, len(ISAS) - 1)]
    threads = c.int(1, 2)
    kind = c.int(0, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy casts of NaN etc.
        if kind < 6:
            call, check = _conv_case(c, c.int(1, 3), False)
        elif kind < 8:
            call, check = _conv_case(c, c.int(1, 3), True)
        elif kind < 9:
            call, check = _conv_case(c, c.int(1, 3), c.chance(64), plan=True)
        elif kind < 12:
            call, check = _variant_case(c)
        elif kind < 13:
            call, check = _shuffle_case(c)
        else:
            call, check = _grad_case(c)
        prev = cconv.get_num_threads()
        cconv.set_num_threads(threads)
        try:
            with cconv.use_isa(isa):
                try:
                    result = call()
                except ALLOWED:
                    return
                check(result)
        finally:
            cconv.set_num_threads(prev)


def test_one_input(data):
    try:
        check_input(data)
    except Finding:
        raise
    except ALLOWED:
        raise  # from the harness's own oracle code: still worth a look
    except Exception as e:
        raise Finding(f"unexpected {type(e).__name__}: {e}") from e


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
