"""64-bit sizes (docs/leaks.md).

Fast (default run): sizes whose products overflow int64, and huge logical shapes that cost no
memory (numpy.lib.stride_tricks.as_strided with zero strides) or out-of-range integer arguments,
must fail with a clear ValueError or MemoryError -- never crash, hang or try to allocate the
petabytes they describe (the calls run under an address-space limit of 2 GiB more than the
process already maps, so such an attempt fails fast instead of taking the machine down).

Slow (pytest --run-slow): tensors of more than 2**31 elements through the GEMM path (conv2d),
the depthwise path and the weight gradient, checked on sampled outputs against float64 sums.
Shapes keep each test under ~10 GB of RAM.
"""
import contextlib
import re
import resource
import threading
import time

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
import cconv.grad  # noqa: E402
from cconv import _geometry, _core  # noqa: E402

GiB = 1 << 30


@contextlib.contextmanager
def address_space_limit(extra=2 * GiB):
    """RLIMIT_AS at the current mapped size + extra, restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    limit = mapped + extra if hard == resource.RLIM_INFINITY else min(mapped + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_bounded(fn, timeout=60):
    """fn() in a thread, under the address-space limit; its exception (or None) and result. A call
    still running after `timeout` seconds fails the test (a hang)."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    with address_space_limit():
        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(timeout)
    assert not t.is_alive(), f"call still running after {timeout} s"
    return box.get("error"), box.get("result")


def fake(shape, dtype=np.float32):
    """An array of any logical shape backed by one element (all strides 0)."""
    return as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


# ---------------------------------------------------------------- fast: the C descriptor checks

BASE = _geometry.conv_geometry(2, (1, 1, 4, 4), (1, 1, 1, 1)).desc()
BIG = 2**62


def _desc(**fields):
    return BASE.replace(**fields)


# Descriptors whose size products overflow int64 (or that are out of range): the C core's own
# validation, reached directly (the Python layer rejects these before it gets there).
C_DESCRIPTORS = {
    "batch x channels": _desc(batch=BIG, in_channels=4),
    "input plane": _desc(in_size=(2**22, 2**22, 2**22)),
    "dilated kernel span": _desc(kernel=(1, 1, BIG), dilation=(1, 1, 4)),
    "input + padding": _desc(pad_before=(0, 0, 2**63 - 1), pad_after=(0, 0, 1)),
    "weights": _desc(in_channels=2**40, out_channels=2**40),
    "transposed output": _desc(transposed=True, in_size=(1, 1, BIG), stride=(1, 1, 4)),
    "taps past 2**24": _desc(kernel=(300, 300, 300), in_size=(300, 300, 300)),
    "output channels x output": _desc(out_channels=BIG, batch=4),
}


@pytest.mark.parametrize("name", list(C_DESCRIPTORS))
def test_c_descriptor_overflow_rejected(name):
    d = C_DESCRIPTORS[name]
    w = np.zeros(1, np.float32)
    err, _ = run_bounded(lambda: _core.Plan(d, w, None))
    assert isinstance(err, ValueError), f"{name}: {err!r}"
    assert "size overflows int64" in str(err) or "invalid convolution descriptor" in str(err), str(err)
    x = np.zeros(1, np.float32)
    err, _ = run_bounded(lambda: _core.weight_grad_into(d, x, x, x))
    assert isinstance(err, ValueError) and "convolution descriptor" in str(err), f"{name}: {err!r}"


# ---------------------------------------------------------------- fast: the Python API

X = np.arange(50, dtype=np.float32).reshape(1, 2, 5, 5) / 50
W = np.arange(54, dtype=np.float32).reshape(3, 2, 3, 3) / 54
WT = np.ones((2, 3, 3, 3), np.float32)

TOO_BIG = "more bytes than a 64-bit size can hold"
HUGE_ARGUMENTS = {
    # out-of-range integers
    "padding 2**62": (lambda: cconv.conv2d(X, W, padding=2**62), ValueError, TOO_BIG),
    "padding 2**63": (lambda: cconv.conv2d(X, W, padding=2**63), ValueError, r"padding must be < 2\*\*62"),
    "per-side padding 2**61": (lambda: cconv.conv2d(X, W, padding=((2**61, 2**61), (0, 0))), ValueError, TOO_BIG),
    "conv1d padding 2**62": (lambda: cconv.conv1d(X[:, :, 0], W[:, :, 0], padding=2**62), ValueError, TOO_BIG),
    "conv3d padding 2**62": (lambda: cconv.conv3d(X[:, :, None], W[:, :, None], padding=(2**62, 0, 0)),
                             ValueError, TOO_BIG),
    "stride 2**63": (lambda: cconv.conv2d(X, W, stride=2**63), ValueError, r"stride must be < 2\*\*62"),
    "stride -1": (lambda: cconv.conv2d(X, W, stride=-1), ValueError, "stride must be >= 1"),
    "dilation 2**62": (lambda: cconv.conv2d(X, W, dilation=2**62), ValueError, "larger than the padded input"),
    "dilation 2**40, padding 2**41": (lambda: cconv.conv2d(X, W, dilation=2**40, padding=2**41), ValueError, TOO_BIG),
    "dilation 2**63": (lambda: cconv.conv2d(X, W, dilation=2**63), ValueError, r"dilation must be < 2\*\*62"),
    "groups 2**62": (lambda: cconv.conv2d(X, W, groups=2**62), ValueError, "groups=.* must divide"),
    "groups 2**64": (lambda: cconv.conv2d(X, W, groups=2**64), ValueError, "groups=.* must divide"),
    "transposed stride 2**61": (lambda: cconv.conv_transpose2d(X, WT, stride=2**61), ValueError, TOO_BIG),
    "transposed output_padding 2**40": (lambda: cconv.conv_transpose2d(X, WT, stride=2**40, output_padding=2**40 - 1),
                                        ValueError, TOO_BIG),
    "plan padding 2**62": (lambda: cconv.plan_conv2d(X.shape, W, padding=2**62), ValueError, TOO_BIG),
    # huge logical shapes in no memory
    "kernel 2**40": (lambda: cconv.conv2d(X, fake((3, 2, 2**40, 1))), ValueError, "larger than the padded input"),
    "input 2**41 elements": (lambda: cconv.conv2d(fake((1, 2, 2**20, 2**20)), W), MemoryError,
                             r"output of shape \(1, 3, 1048574, 1048574\) .* cannot be allocated"),
    "input 2**41 elements, tiny output": (lambda: cconv.conv2d(fake((1, 2, 2**20, 2**20)), W, stride=2**19),
                                          MemoryError, "Unable to allocate 8.00 TiB"),
    "weight 2**41 elements": (lambda: cconv.conv2d(fake((1, 2**20, 4, 4)), fake((2**21, 2**20, 1, 1))),
                              MemoryError, "TiB"),
    "depthwise 2**40 elements": (lambda: cconv.depthwise_conv2d(fake((1, 2**20, 2**10, 2**10)), fake((2**20, 1, 3, 3))),
                                 MemoryError, "output of shape .* cannot be allocated"),
    "separable 2**40 output channels": (lambda: cconv.separable_conv2d(X, np.ones((2, 1, 3, 3), np.float32),
                                                                       fake((2**40, 2, 1, 1))),
                                        MemoryError, "output of shape .* cannot be allocated"),
    "channel_shuffle 2**60 elements": (lambda: cconv.channel_shuffle(fake((2**20, 2**20, 2**20)), 2), MemoryError, "EiB"),
    "grad weight of 2**40 filters": (lambda: cconv.grad.conv2d_weight(X, (2**40, 2, 3, 3), fake((1, 2**40, 3, 3))),
                                     MemoryError, r"output of shape \(1099511627776, 2, 3, 3\) .* cannot be allocated"),
    "grad weight, input 2**41 elements": (lambda: cconv.grad.conv2d_weight(fake((1, 2, 2**20, 2**20)), (3, 2, 3, 3),
                                                                           fake((1, 3, 2**20 - 2, 2**20 - 2))),
                                          MemoryError, "TiB"),
    "grad input of 2**41 elements": (lambda: cconv.grad.conv2d_input((1, 2, 2**20, 2**20), W,
                                                                     fake((1, 3, 2**20 - 2, 2**20 - 2))),
                                     MemoryError, "TiB"),
}


@pytest.mark.parametrize("name", list(HUGE_ARGUMENTS))
def test_huge_arguments_fail_cleanly(name):
    fn, exc, match = HUGE_ARGUMENTS[name]
    err, result = run_bounded(fn)
    assert err is not None, f"{name}: returned {getattr(result, 'shape', result)!r} instead of raising"
    assert isinstance(err, exc), f"{name}: expected {exc.__name__}, got {err!r}"
    assert re.search(match, str(err)), f"{name}: message {str(err)!r} lacks {match!r}"


def test_stride_2_62_is_a_valid_convolution():
    """A huge stride is not an error: one output per dimension, the first window."""
    y = cconv.conv2d(X, W, stride=2**62)
    assert y.shape == (1, 3, 1, 1)
    want = np.einsum("cij,ocij->o", X[0, :, :3, :3].astype(np.float64), W.astype(np.float64))
    np.testing.assert_allclose(y[0, :, 0, 0], want, rtol=1e-5)


@pytest.mark.parametrize("layout", [None, "NHWC"])
@pytest.mark.parametrize("algorithm,groups", [("auto", 4), ("depthwise", 4), ("gemm", 1), ("grouped", 2)])
@pytest.mark.parametrize("stride", [2**40, (2**40, 2**40), (2**62, 3)])
def test_stride_past_the_input(stride, algorithm, groups, layout):
    """Strides longer than the input (one output row or column) on every path: the depthwise
    kernels used to size their stride-phase buffers by the stride (2**40 phases: out of memory;
    two such strides overflowed the size: SIGSEGV)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((8, 4 // groups, 3, 3))
    if layout:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    err, y = run_bounded(lambda: cconv.conv2d(x, w, stride=stride, padding=1, groups=groups, layout=layout,
                                              algorithm=algorithm))
    assert err is None, repr(err)
    want = cconv.conv2d(x, w, stride=stride, padding=1, groups=groups, layout=layout, algorithm="reference")
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    err, gw = run_bounded(lambda: cconv.grad.conv2d_weight(x, w.shape, g, stride=stride, padding=1, groups=groups,
                                                           layout=layout))
    assert err is None, repr(err)
    # dL/dw of y = sum(g * y): the first window of each output channel's group only
    s = (stride, stride) if isinstance(stride, int) else stride
    xp = np.pad(x if layout is None else x.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (1, 1), (1, 1)))
    gc = g if layout is None else g.transpose(0, 3, 1, 2)
    want_gw = np.zeros(w.shape)
    cog, cig = 8 // groups, 4 // groups
    for co in range(8):
        c0 = co // cog * cig
        for i in range(gc.shape[2]):
            for j in range(gc.shape[3]):
                want_gw[co] += np.einsum("n,ncij->cij", gc[:, co, i, j],
                                         xp[:, c0:c0 + cig, i * s[0]:i * s[0] + 3, j * s[1]:j * s[1] + 3])
    np.testing.assert_allclose(gw, want_gw, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- slow: > 2**31 elements

def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _need(gb):
    if _mem_available() < gb * 1e9:
        pytest.skip(f"needs {gb} GB of available RAM, has {_mem_available() / 1e9:.1f}")


def _random(shape, seed):
    """float32 uniform(-1, 1) filled in place, chunk by chunk (no float64 temporary)."""
    a = np.empty(shape, np.float32)
    flat = a.reshape(-1)
    rng = np.random.default_rng(seed)
    step = 1 << 26
    for i in range(0, flat.size, step):
        chunk = flat[i:i + step]
        rng.random(out=chunk, dtype=np.float32)
        chunk *= 2
        chunk -= 1
    return a


def _samples(shape, n, seed):
    """n output indices: random ones plus the very last (the largest offsets)."""
    rng = np.random.default_rng(seed)
    idx = [tuple(int(rng.integers(s)) for s in shape) for _ in range(n)]
    return idx + [tuple(s - 1 for s in shape)]


def _window(x, n, c, oh, ow, kh, kw, stride, pad):
    """x[n, c] around output (oh, ow), zero padded, as float64 (kh, kw)."""
    H, W = x.shape[2:]
    out = np.zeros((kh, kw))
    for i in range(kh):
        h = oh * stride - pad + i
        if not 0 <= h < H:
            continue
        for j in range(kw):
            w = ow * stride - pad + j
            if 0 <= w < W:
                out[i, j] = x[n, c, h, w]
    return out


def _report(request, name, t0):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\n{name}: {time.perf_counter() - t0:.1f} s, peak RSS {peak:.2f} GB")


@pytest.mark.slow
def test_gemm_output_over_2_31_elements(request):
    """conv2d on the GEMM path writing 2.15e9 outputs (8.6 GB), from a 1.1 GB input."""
    _need(11)
    t0 = time.perf_counter()
    H = W_ = 16400  # 8 x 16400^2 = 2.152e9 > 2**31 outputs
    x = _random((1, 1, H, W_), 1)
    w = _random((8, 1, 3, 3), 2)
    b = _random((8,), 3)
    y = cconv.conv2d(x, w, b, padding=1, algorithm="gemm")
    assert y.size > 2**31
    for n, co, oh, ow in _samples(y.shape, 300, 4):
        want = b[co] + np.sum(_window(x, n, 0, oh, ow, 3, 3, 1, 1) * w[co, 0])
        assert abs(y[n, co, oh, ow] - want) <= 1e-5 * (1 + abs(want)), (n, co, oh, ow, y[n, co, oh, ow], want)
    _report(request, "gemm", t0)


@pytest.mark.slow
def test_depthwise_input_over_2_31_elements(request):
    """depthwise_conv2d (the depthwise path) reading one 2.15e9-element plane (8.6 GB), stride 4."""
    _need(11)
    t0 = time.perf_counter()
    H = W_ = 46400  # 46400^2 = 2.153e9 > 2**31 inputs in one channel
    x = _random((1, 1, H, W_), 5)
    w = _random((1, 1, 5, 5), 6)
    y = cconv.depthwise_conv2d(x, w, stride=4, padding=2)
    assert x.size > 2**31
    for n, c, oh, ow in _samples(y.shape, 300, 7):
        want = np.sum(_window(x, n, c, oh, ow, 5, 5, 4, 2) * w[c, 0])
        assert abs(y[n, c, oh, ow] - want) <= 1e-5 * (1 + abs(want)), (n, c, oh, ow, y[n, c, oh, ow], want)
    _report(request, "depthwise", t0)


@pytest.mark.slow
def test_weight_grad_input_over_2_31_elements(request):
    """cconv.grad.conv2d_weight over a 2.15e9-element input (8.6 GB): every weight sums 1.3e8
    products; checked against float64 sums taken in row blocks."""
    _need(11)
    t0 = time.perf_counter()
    H = W_ = 46400
    stride, K, Co = 4, 3, 2
    x = _random((1, 1, H, W_), 8)
    OH = (H - K) // stride + 1
    g = _random((1, Co, OH, OH), 9)
    gw = cconv.grad.conv2d_weight(x, (Co, 1, K, K), g, stride=stride)
    assert x.size > 2**31 and gw.shape == (Co, 1, K, K)
    want = np.zeros((Co, K, K))
    scale = np.zeros((Co, K, K))
    rows = 2048
    for r0 in range(0, OH, rows):
        r1 = min(OH, r0 + rows)
        for i in range(K):
            for j in range(K):
                xs = x[0, 0, r0 * stride + i:(r1 - 1) * stride + i + 1:stride, j:(OH - 1) * stride + j + 1:stride]
                xs = xs.astype(np.float64)
                for co in range(Co):
                    p = xs * g[0, co, r0:r1]
                    want[co, i, j] += p.sum()
                    scale[co, i, j] += np.abs(p).sum()
    err = np.abs(gw[:, 0].astype(np.float64) - want)
    # float32 sums of 1.3e8 products: allow 2e-6 of the sum of their magnitudes (a sum that
    # lost or misplaced a block of products would be off by ~sqrt(block) x 0.3, far more)
    assert np.all(err <= 2e-6 * scale), (err / scale).max()
    _report(request, "weight gradient", t0)


@pytest.mark.slow
def test_gemm_channels_last_input_over_2_31_elements(request):
    """conv2d channels-last on the GEMM path, unpadded (x read in place), over a 2.15e9-element
    input (8.6 GB), stride 2."""
    _need(11)
    t0 = time.perf_counter()
    H = W_ = 32800  # 2 x 32800^2 = 2.152e9 > 2**31 inputs
    x = _random((1, H, W_, 2), 10)
    w = _random((1, 2, 3, 3), 11)
    y = cconv.conv2d(x, w, stride=2, layout="NHWC", algorithm="gemm")
    assert x.size > 2**31
    xc = x.transpose(0, 3, 1, 2)  # a view: the windows below read the same memory
    for n, oh, ow, co in _samples(y.shape, 300, 12):
        want = sum(np.sum(_window(xc, n, c, oh, ow, 3, 3, 2, 0) * w[co, c]) for c in range(2))
        assert abs(y[n, oh, ow, co] - want) <= 1e-5 * (1 + abs(want)), (n, oh, ow, co, y[n, oh, ow, co], want)
    _report(request, "gemm channels-last", t0)
