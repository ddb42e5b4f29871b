"""cconv.dask: every forward function over chunked dask arrays equals the in-memory call, for
random chunkings (chunks smaller than the halo included), every padding form, both dtypes; the
graph holds each weight once; threads inside tasks; a distributed LocalCluster run; and a volume
larger than the workers' memory limit."""
import logging
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
import dask.core  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

import cconv  # noqa: E402
import cconv.dask as cd  # noqa: E402

FLOATS = (np.float32, np.float64)


@pytest.fixture(autouse=True, scope="module")
def one_cconv_thread():
    """Tiny blocks: OpenMP start-up would dominate (and spin-waiting threads are slow on small
    CI machines), so the in-memory references and the sync scheduler run one cconv thread."""
    cconv.set_num_threads(1)
    yield
    cconv.set_num_threads(0)


def tol(dtype):
    return dict(rtol=3e-5, atol=3e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-11, atol=1e-11)


def random_chunks(rng, n, tiny=False):
    """A random partition of n; tiny=True gives chunks of 1 to 2 (smaller than any halo here)."""
    out, left = [], n
    while left:
        c = int(rng.integers(1, 3)) if tiny else int(rng.integers(1, max(2, n // 2 + 2)))
        c = min(c, left)
        out.append(c)
        left -= c
    return tuple(out)


def chunked(a, rng, tiny=False):
    """a as a dask array with random chunks on every axis."""
    return da.from_array(a, chunks=tuple(random_chunks(rng, n, tiny) for n in a.shape))


def arr(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# (function, x shape, weight shapes, has bias, kwargs)
CASES = [
    ("conv1d", (2, 3, 17), [(4, 3, 3)], True, {}),
    ("conv1d", (2, 3, 17), [(4, 3, 3)], True, dict(padding="same", stride=2, dilation=3)),
    ("conv1d", (1, 4, 19), [(6, 2, 4)], False, dict(padding=((3, 1),), groups=2)),
    ("conv1d", (2, 3, 13), [(2, 3, 5)], True, dict(padding=2, padding_mode="reflect", stride=2)),
    ("conv1d", (2, 3, 11), [(2, 3, 3)], True, dict(padding=5, padding_mode="replicate")),
    ("conv1d", (2, 11, 3), [(2, 3, 3)], True, dict(padding=(4,), padding_mode="circular",
                                                   stride=3, layout="NWC")),
    ("conv2d", (2, 3, 13, 11), [(4, 3, 3, 3)], True, dict(padding="same", dilation=2)),
    ("conv2d", (2, 3, 13, 11), [(4, 3, 3, 2)], True, dict(padding=((2, 0), (1, 3)), stride=(2, 3))),
    ("conv2d", (1, 2, 12, 10), [(3, 2, 3, 5)], True, dict(padding=(1, 2), padding_mode="reflect")),
    ("conv2d", (1, 2, 12, 10), [(3, 2, 4, 3)], False, dict(padding=3, stride=2,
                                                           padding_mode="replicate")),
    ("conv2d", (2, 9, 8, 6), [(3, 2, 3, 3)], True, dict(padding=((2, 1), (0, 3)), groups=3,
                                                        padding_mode="circular", layout="NHWC")),
    ("conv2d", (1, 3, 14, 12), [(2, 3, 3, 3)], True, dict(padding="valid", stride=3)),
    ("conv2d", (1, 2, 7, 6), [(2, 2, 2, 2)], True, dict(padding=5, stride=2)),  # bias-only blocks
    ("conv2d", (2, 4, 9, 8), [(4, 1, 3, 3)], True, dict(padding="same", groups=4, stride=2)),
    ("conv3d", (1, 2, 7, 8, 6), [(3, 2, 3, 3, 3)], True, dict(padding="same",
                                                             padding_mode="reflect")),
    ("conv3d", (2, 2, 9, 7, 8), [(2, 2, 2, 3, 3)], False, dict(padding=((1, 0), (0, 2), (2, 2)),
                                                              stride=(2, 1, 3), dilation=(1, 2, 1))),
    ("conv3d", (1, 5, 7, 4, 6), [(4, 3, 3, 1, 2)], True, dict(padding=(1, 0, 1), groups=2,
                                                             padding_mode="circular",
                                                             layout="NDHWC")),
    ("conv_transpose1d", (2, 3, 11), [(3, 4, 3)], True, dict(stride=2, padding=1,
                                                            output_padding=1)),
    ("conv_transpose1d", (1, 4, 9), [(4, 1, 2)], True, dict(stride=5, groups=2, padding=3,
                                                           output_padding=4)),  # holes
    ("conv_transpose1d", (2, 9, 4), [(4, 2, 3)], False, dict(dilation=3, output_padding=2,
                                                            stride=2, layout="NWC")),
    ("conv_transpose2d", (2, 4, 9, 7), [(4, 3, 3, 2)], True, dict(stride=(2, 3), padding=(1, 0),
                                                                  output_padding=(1, 2))),
    ("conv_transpose2d", (1, 6, 8, 5), [(6, 2, 3, 3)], True, dict(stride=2, dilation=2, groups=3,
                                                                  padding=2)),
    ("conv_transpose2d", (1, 7, 6, 3), [(3, 2, 4, 4)], True, dict(stride=3, padding=1,
                                                                  layout="NHWC")),
    ("conv_transpose3d", (1, 2, 5, 6, 4), [(2, 3, 3, 2, 3)], True, dict(stride=(2, 1, 3),
                                                                        padding=(1, 0, 2),
                                                                        output_padding=(1, 0, 2))),
    ("depthwise_conv2d", (2, 3, 11, 9), [(6, 1, 3, 3)], True, dict(padding="same")),
    ("depthwise_conv2d", (1, 11, 9, 2), [(2, 1, 5, 2)], False, dict(padding=((2, 2), (1, 0)),
                                                                    stride=2, dilation=(1, 3),
                                                                    layout="NHWC")),
    ("separable_conv2d", (2, 3, 12, 10), [(6, 1, 3, 3), (5, 6, 1, 1)], True,
     dict(padding="same", stride=2)),
    ("separable_conv2d", (1, 10, 9, 4), [(4, 1, 2, 3), (3, 4, 1, 1)], False,
     dict(padding=((0, 2), (1, 1)), dilation=2, layout="NHWC")),
    ("spatially_separable_conv2d", (2, 4, 12, 10), [(6, 2, 3, 1), (4, 3, 1, 5)], True,
     dict(padding="same", groups=2)),
    ("spatially_separable_conv2d", (1, 11, 13, 3), [(2, 3, 4, 1), (5, 2, 1, 2)], True,
     dict(padding=((3, 0), (1, 2)), stride=(2, 3), dilation=(2, 1), layout="NHWC")),
    ("flattened_conv2d", (2, 3, 12, 10), [(4, 3), (4, 3), (4, 5)], True, dict(padding="same")),
    ("flattened_conv2d", (1, 9, 11, 2), [(3, 2), (3, 2), (3, 4)], True,
     dict(padding=((1, 0), (2, 3)), stride=(3, 2), layout="NHWC")),
]


def _call(module, name, x, weights, bias, kwargs):
    return getattr(module, name)(x, *weights, bias, **kwargs)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{sorted(c[4].items())}")
def test_matches_in_memory(case, dtype):
    name, x_shape, w_shapes, has_bias, kwargs = case
    rng = np.random.default_rng(abs(hash((name, x_shape, str(kwargs)))) % 2**32)
    x = arr(rng, x_shape, dtype)
    ws = [arr(rng, s, dtype) for s in w_shapes]
    ref = _call(cconv, name, x, ws, None, kwargs)
    bias = arr(rng, ref.shape[-1 if "layout" in kwargs else 1], dtype) if has_bias else None
    ref = _call(cconv, name, x, ws, bias, kwargs)
    for trial, tiny in enumerate((True, False, False)):
        dx = chunked(x, rng, tiny)
        y = _call(cd, name, dx, ws, bias, kwargs)
        assert isinstance(y, da.Array) and y.shape == ref.shape and y.dtype == ref.dtype
        got = y.compute(scheduler="threads" if trial == 1 else "sync")
        np.testing.assert_allclose(got, ref, **tol(dtype), err_msg=f"chunks {dx.chunks}")
    # one chunk holding everything
    y = _call(cd, name, da.from_array(x, chunks=-1), ws, bias, kwargs)
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, **tol(dtype))


@pytest.mark.parametrize("layout", [None, "NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int16])
def test_channel_shuffle(layout, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5, 4, 6) if layout == "NHWC" else (3, 6, 5, 4)) * 100).astype(dtype)
    ref = cconv.channel_shuffle(x, 3, layout=layout)
    for tiny in (True, False):
        y = cd.channel_shuffle(chunked(x, rng, tiny), 3, layout=layout)
        assert y.dtype == ref.dtype
        np.testing.assert_array_equal(y.compute(), ref)
    x5 = rng.standard_normal((2, 4, 3, 2, 8)).astype(np.float32)
    ref = cconv.channel_shuffle(x5, 4, layout="NDHWC")
    np.testing.assert_array_equal(cd.channel_shuffle(chunked(x5, rng), 4, layout="NDHWC").compute(), ref)


# ----------------------------------------------------------------- property test: random geometry

@st.composite
def conv_case(draw):
    nd = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    last = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    size = tuple(draw(st.integers(1, 9 if nd < 3 else 6)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    layout = ("NWC", "NHWC", "NDHWC")[nd - 1] if last else None
    x_shape = (draw(st.integers(1, 2)), *size, cin) if last else (draw(st.integers(1, 2)), cin, *size)
    kw = dict(stride=stride, dilation=dilation, groups=groups, layout=layout)
    if transposed:
        w_shape = (cin, cout // groups, *kernel)
        kw["padding"] = tuple(draw(st.integers(0, 4)) for _ in range(nd))
        kw["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1))
                                     for s, d in zip(stride, dilation))
    else:
        w_shape = (cout, cin // groups, *kernel)
        kw["padding_mode"] = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular",
                                                   "symmetric")))
        kw["padding"] = draw(st.one_of(
            st.sampled_from(("same", "valid")), st.integers(0, 4),
            st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4)) for _ in range(nd)])))
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    chunks = tuple(st.lists(st.integers(1, max(1, n)), min_size=1, max_size=n).map(
        lambda cs, n=n: _fit(cs, n)) for n in x_shape)
    chunks = tuple(draw(c) for c in chunks)
    return name, x_shape, w_shape, kw, chunks, draw(st.sampled_from(FLOATS))


def _fit(cs, n):
    out, left = [], n
    for c in cs:
        if left == 0:
            break
        out.append(min(c, left))
        left -= out[-1]
    if left:
        out.append(left)
    return tuple(out)


@given(conv_case())
def test_property_random_geometry_and_chunks(case):
    name, x_shape, w_shape, kw, chunks, dtype = case
    rng = np.random.default_rng(0)
    x, w = arr(rng, x_shape, dtype), arr(rng, w_shape, dtype)
    try:
        ref = getattr(cconv, name)(x, w, **kw)
    except ValueError as e:
        with pytest.raises(ValueError, match=str(e)[:30].replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            getattr(cd, name)(da.from_array(x, chunks=chunks), w, **kw)
        return
    bias = arr(rng, ref.shape[-1 if kw["layout"] else 1], dtype)
    ref = getattr(cconv, name)(x, w, bias, **kw)
    y = getattr(cd, name)(da.from_array(x, chunks=chunks), w, bias, **kw)
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, **tol(dtype))


# ----------------------------------------------------------------- graph, chunks, laziness

def test_output_chunks_follow_input_chunks_over_stride():
    x = da.zeros((2, 3, 64, 48), chunks=(1, 3, 16, 16))
    w = np.ones((4, 3, 3, 3))
    y = cd.conv2d(x, w, padding="same", stride=2)
    assert y.chunks == ((1, 1), (4,), (8, 8, 8, 8), (8, 8, 8))
    y = cd.conv2d(x, w, padding="same")
    assert y.chunks[2:] == x.chunks[2:]
    y = cd.conv_transpose2d(da.zeros((1, 3, 32, 32), chunks=(1, 3, 8, 8)), np.ones((3, 2, 4, 4)),
                            stride=2, padding=1)
    assert y.chunks[2:] == ((16, 16, 16, 16),) * 2


def test_channels_rechunked_and_batch_blockwise():
    rng = np.random.default_rng(1)
    x = arr(rng, (4, 6, 10, 10), np.float64)
    w = arr(rng, (5, 6, 3, 3), np.float64)
    dx = da.from_array(x, chunks=(1, 2, 5, 5))
    y = cd.conv2d(dx, w, padding=1)
    assert y.chunks[:2] == ((1, 1, 1, 1), (5,))
    np.testing.assert_allclose(y.compute(), cconv.conv2d(x, w, padding=1), rtol=1e-12)


def _graph_bytes(y):
    return len(pickle.dumps(dict(y.__dask_graph__()), protocol=5))


def test_weights_in_graph_once():
    """Growing the weight by B bytes grows the whole graph by about B, not B per task."""
    rng = np.random.default_rng(2)
    x = da.zeros((2, 32, 64, 64), chunks=(1, 32, 8, 8))  # 128 output blocks
    small = cd.conv2d(x, arr(rng, (8, 32, 3, 3), np.float64), arr(rng, 8, np.float64), padding=1)
    big_w = arr(rng, (64, 32, 3, 3), np.float64)
    big = cd.conv2d(x, big_w, arr(rng, 64, np.float64), padding="same")
    assert np.prod(big.numblocks) == 128
    grew = _graph_bytes(big) - _graph_bytes(small)
    assert grew < 1.2 * big_w.nbytes, f"graph grew by {grew} bytes for a {big_w.nbytes}-byte weight"
    # the weight is one node that every block task names by key
    holders = [k for k, v in dict(big.__dask_graph__()).items()
               if getattr(getattr(v, "value", v), "shape", None) == big_w.shape]
    assert len(holders) == 1
    # same weights, same node: two calls share it
    y2 = cd.conv2d(x, big_w, padding=2)
    keys = set(dict(big.__dask_graph__())) & set(dict(y2.__dask_graph__()))
    assert holders[0] in keys


def test_blocks_read_only_their_halo():
    """Each output block depends on its own input chunk whole plus slabs of its neighbours no
    thicker than the kernel's reach, so distributed moves halos, not chunks."""
    rng = np.random.default_rng(8)
    x = arr(rng, (1, 2, 48, 40), np.float64)
    w = arr(rng, (3, 2, 5, 3), np.float64)  # dilation (2, 3): reach 4 rows, 3 columns each side
    dx = da.from_array(x, chunks=(1, 2, 16, 8))
    y = cd.conv2d(dx, w, padding="same", dilation=(2, 3), padding_mode="circular")
    graph = dict(y.__dask_graph__())
    halo_keys = [k for k in graph if isinstance(k, tuple) and k[0].startswith("halo-")]
    assert halo_keys
    for slab in dask.get(graph, halo_keys):
        h, wd = slab.shape[2:]
        assert (h <= 4 or h == 16) and (wd <= 3 or wd == 8) and (h, wd) != (16, 8), slab.shape
    deps = y.__dask_graph__().get_all_dependencies()
    for key in dask.core.flatten(y.__dask_keys__()):
        chunks = [d for d in deps[key] if isinstance(d, tuple) and d[0] == dx.name]
        assert len(chunks) <= 1, (key, chunks)
    np.testing.assert_allclose(y.compute(), cconv.conv2d(x, w, padding="same", dilation=(2, 3),
                                                         padding_mode="circular"), rtol=1e-12)


def test_weight_changed_after_building_is_not_seen():
    rng = np.random.default_rng(9)
    x, w = arr(rng, (1, 2, 8, 8), np.float64), arr(rng, (2, 2, 3, 3), np.float64)
    ref = cconv.conv2d(x, w)
    y = cd.conv2d(da.from_array(x, chunks=4), w)
    w[...] = 0
    np.testing.assert_allclose(y.compute(), ref, rtol=1e-12)


def test_dask_array_weights():
    rng = np.random.default_rng(4)
    x = arr(rng, (2, 4, 12, 11), np.float32)
    w = arr(rng, (6, 4, 3, 3), np.float32)
    b = arr(rng, 6, np.float32)
    ref = cconv.conv2d(x, w, b, padding="same", stride=2)
    y = cd.conv2d(chunked(x, rng), da.from_array(w, chunks=2), da.from_array(b, chunks=3),
                  padding="same", stride=2)
    np.testing.assert_allclose(y.compute(), ref, **tol(np.float32))


def test_mixed_and_integer_dtypes_follow_cconv():
    rng = np.random.default_rng(5)
    x = rng.integers(-5, 5, (1, 2, 9, 9)).astype(np.int16)
    w = arr(rng, (3, 2, 3, 3), np.float32)
    ref = cconv.conv2d(x, w, padding=1)
    y = cd.conv2d(chunked(x, rng), w, padding=1)
    assert y.dtype == ref.dtype == np.float32  # NumPy promotion of int16 and float32
    x = x.astype(np.int64)
    ref = cconv.conv2d(x, w, padding=1)
    y = cd.conv2d(chunked(x, rng), w, padding=1)
    assert y.dtype == ref.dtype == np.float64
    np.testing.assert_allclose(y.compute(), ref, rtol=1e-6)
    x32 = arr(rng, (1, 2, 9, 9), np.float32)
    y = cd.conv2d(chunked(x32, rng), w.astype(np.float64), padding=1)
    assert y.dtype == np.float64


def test_numpy_input_accepted():
    rng = np.random.default_rng(6)
    x, w = arr(rng, (1, 2, 8, 8), np.float64), arr(rng, (2, 2, 3, 3), np.float64)
    np.testing.assert_allclose(cd.conv2d(x, w).compute(), cconv.conv2d(x, w))


def test_lazy_until_computed():
    calls = []

    def boom(b):
        calls.append(1)
        raise RuntimeError("computed too early")

    x = da.zeros((1, 2, 16, 16), chunks=(1, 2, 4, 4)).map_blocks(
        boom, dtype=np.float64, meta=np.empty((0, 0, 0, 0)))
    y = cd.conv2d(x, np.ones((2, 2, 3, 3)), padding="same")
    y = cd.conv_transpose2d(y, np.ones((2, 2, 3, 3)), stride=2)
    assert not calls and y.shape == (1, 2, 33, 33)


def test_validation_is_eager_and_matches_cconv():
    x = da.zeros((1, 4, 8, 8), chunks=4)
    cases = [
        (dict(weight=np.ones((2, 3, 3, 3))), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)), groups=3), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)), padding=8, padding_mode="reflect"), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)), padding="full"), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)), bias=np.ones(3)), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)), layout="NWC"), ValueError),
        (dict(weight=np.ones((2, 4, 3, 3)).astype(complex)), TypeError),
        (dict(weight=np.ones((2, 4, 3, 3)), algorithm="fastest"), ValueError),
    ]
    for kw, exc in cases:
        with pytest.raises(exc) as mem:
            cconv.conv2d(np.zeros(x.shape), **kw)
        with pytest.raises(exc) as lazy:
            cd.conv2d(x, **kw)
        assert str(lazy.value) == str(mem.value)
    with pytest.raises(ValueError, match="threads"):
        cd.conv2d(x, np.ones((2, 4, 3, 3)), threads=0)
    with pytest.raises(ValueError, match="output_padding"):
        cd.conv_transpose2d(x, np.ones((4, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="groups"):
        cd.channel_shuffle(x, 3)
    unknown = da.zeros((1, 4, 8, 8), chunks=4)
    unknown = unknown[unknown[:, 0, 0, 0] >= 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cd.conv2d(unknown, np.ones((2, 4, 3, 3)))


def test_import_cconv_does_not_import_dask():
    code = ("import sys, cconv, numpy as np; cconv.conv2d(np.ones((1,1,4,4)), np.ones((1,1,3,3)));"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------- threads

@pytest.fixture
def thread_probe(monkeypatch):
    """Records cconv's thread count inside every conv2d block call."""
    seen = []
    real = cconv._functions.conv2d

    def probe(*a, **k):
        seen.append(cconv.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(cconv._functions, "conv2d", probe)
    return seen


def test_threads_in_tasks(thread_probe):
    x = da.ones((2, 2, 16, 16), chunks=(1, 2, 8, 8))
    w = np.ones((2, 2, 3, 3))
    cconv.set_num_threads(2)
    try:
        cd.conv2d(x, w, padding=1).compute(scheduler="threads", num_workers=2)
        assert set(thread_probe) == {1}  # worker threads: one cconv thread each
        assert cconv.get_num_threads() == 2  # restored
        thread_probe.clear()
        cd.conv2d(x, w, padding=1, threads=3).compute(scheduler="threads", num_workers=2)
        assert set(thread_probe) == {3}
        assert cconv.get_num_threads() == 2
        thread_probe.clear()
        cd.conv2d(x, w, padding=1).compute(scheduler="sync")  # main thread: left alone
        assert set(thread_probe) == {2}
        thread_probe.clear()
        cd.conv2d(x, w, padding=1, threads=None).compute(scheduler="threads")
        assert set(thread_probe) == {2}
    finally:
        cconv.set_num_threads(1)


def test_threads_in_tasks_leave_other_threads_alone(thread_probe):
    """A task's thread count is its own: another thread's stays while the tasks run."""
    x = da.ones((4, 2, 32, 32), chunks=(1, 2, 8, 8))
    w = np.ones((2, 2, 3, 3))
    done, seen = threading.Event(), set()

    def run():
        try:
            cd.conv2d(x, w, padding=1).compute(scheduler="threads", num_workers=2)
        finally:
            done.set()

    cconv.set_num_threads(2)
    t = threading.Thread(target=run, daemon=True)
    try:
        t.start()
        while not done.is_set():
            seen.add(cconv.get_num_threads())
        t.join(timeout=60)
        assert not t.is_alive()
    finally:
        cconv.set_num_threads(1)
    assert set(thread_probe) == {1} and seen == {2}


@pytest.fixture
def isa_probe(monkeypatch):
    """Records the ISA in effect inside every conv2d block call."""
    seen = []
    real = cconv._functions.conv2d

    def probe(*a, **k):
        seen.append(cconv.get_isa())
        return real(*a, **k)

    monkeypatch.setattr(cconv._functions, "conv2d", probe)
    return seen


def test_use_isa_around_the_graph_reaches_its_tasks(isa_probe):
    """Worker threads do not inherit a use_isa block: the graph records it when built."""
    x = da.ones((2, 2, 16, 16), chunks=(1, 2, 8, 8))
    w = np.ones((2, 2, 3, 3))
    names = set()
    for isa in cconv.available_isas():
        with cconv.use_isa(isa):
            y = cd.conv2d(x, w, padding=1)
        names.add(y.name)
        isa_probe.clear()
        y.compute(scheduler="threads", num_workers=2)
        assert set(isa_probe) == {isa}
        isa_probe.clear()
        y.compute(scheduler="sync")
        assert set(isa_probe) == {isa}
    assert len(names) == len(cconv.available_isas())  # the ISA is part of the graph's name
    y = cd.conv2d(x, w, padding=1)  # built outside any block: the process's setting at run time
    isa_probe.clear()
    with cconv.use_isa("generic"):
        y.compute(scheduler="sync")
    assert set(isa_probe) == {cconv.get_isa()}


def test_threads_auto_restores_unpinned_setting():
    cconv.set_num_threads(0)  # follow OpenMP
    try:
        default = cconv.get_num_threads()
        x = da.ones((2, 2, 8, 8), chunks=(1, 2, 4, 4))
        cd.conv2d(x, np.ones((2, 2, 3, 3))).compute(scheduler="threads")
        assert cconv.get_num_threads() == default
    finally:
        cconv.set_num_threads(1)


# ----------------------------------------------------------------- distributed

MEMORY_LIMIT = 200 * 2**20


# Cluster results are awaited at most this long: a worker killed for its memory limit makes the
# scheduler retry forever instead of failing.
CLUSTER_TIMEOUT = 300


def _result(client, *collections):
    return [f.result(timeout=CLUSTER_TIMEOUT) for f in client.compute(list(collections))]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("under AddressSanitizer (tools/sanitize.sh) a worker's shadow memory counts "
                    "against the 200 MiB worker memory limit these tests are about")
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           memory_limit=MEMORY_LIMIT, dashboard_address=None,
                                           silence_logs=logging.ERROR)
        c = distributed.Client(cluster, timeout="30s")
        c.wait_for_workers(2, timeout=30)
    except Exception as e:  # pragma: no cover - sandboxes without sockets / fork
        pytest.skip(f"cannot start a distributed LocalCluster: {e!r}")
    yield c
    c.close()
    cluster.close()


def test_local_cluster_matches_in_memory(client):
    rng = np.random.default_rng(7)
    with dask.config.set(scheduler=client):
        picked = [CASES[3], CASES[8], CASES[14], CASES[21], CASES[29]]
        for i, (name, x_shape, w_shapes, has_bias, kwargs) in enumerate(picked):
            x = arr(rng, x_shape, np.float64)
            ws = [arr(rng, s, np.float64) for s in w_shapes]
            ref = _call(cconv, name, x, ws, None, kwargs)
            # tiny chunks make thousands of tasks: once is enough here (test_matches_in_memory
            # covers them on the local schedulers)
            y = _call(cd, name, chunked(x, rng, tiny=i == 0), ws, None, kwargs)
            np.testing.assert_allclose(_result(client, y)[0], ref, **tol(np.float64))
        # the weight travels as one graph node, scattered weights work too
        x = arr(rng, (2, 3, 20, 20), np.float32)
        w = arr(rng, (4, 3, 3, 3), np.float32)
        [fw] = client.scatter([w], broadcast=True)
        wd = da.from_delayed(fw, w.shape, w.dtype)
        y = cd.conv2d(chunked(x, rng), wd, padding="same", padding_mode="reflect")
        np.testing.assert_allclose(_result(client, y)[0], cconv.conv2d(x, w, padding="same",
                                                            padding_mode="reflect"), **tol(np.float32))
        threads = client.submit(_threads_in_task, pure=False).result(timeout=CLUSTER_TIMEOUT)
        assert threads == 1


def _threads_in_task():
    with cd._task_settings(None, "auto"):
        return cconv.get_num_threads()


def _peak_memory(dask_worker):
    return max(dask_worker.monitor.range_query(start=0)["memory"])


def test_volume_larger_than_worker_memory(client):
    """A 416 MiB volume, generated lazily on the workers, through two workers limited to
    200 MiB each: no worker ever holds the input, the output, or a large part of either."""
    workers = set(client.scheduler_info()["workers"])
    shape, chunks = (1, 1, 208, 512, 1024), (1, 1, 52, 128, 256)
    x = da.random.default_rng(0).random(shape, dtype=np.float32, chunks=chunks)
    assert x.nbytes > 2 * MEMORY_LIMIT
    w = np.full((1, 1, 3, 3, 3), 1 / 27, np.float32)
    y = cd.conv3d(x, w, padding="same", padding_mode="reflect")
    # a window across chunk borders on every axis, and its input with the halo
    window = (slice(None), slice(None), slice(45, 60), slice(120, 136), slice(250, 262))
    region = x[:, :, 44:61, 119:137, 249:263]
    mean, ymax, part, xpart = _result(client, y.mean(), y.max(), y[window], region)
    assert abs(float(mean) - 0.5) < 1e-3 and 0.5 < float(ymax) < 1.0
    np.testing.assert_allclose(part, cconv.conv3d(xpart, w), rtol=1e-5, atol=1e-6)
    # no worker died or was restarted, and none went over its limit
    assert set(client.scheduler_info()["workers"]) == workers
    peaks = client.run(_peak_memory)
    assert max(peaks.values()) < MEMORY_LIMIT, peaks
