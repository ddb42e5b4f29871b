"""Fused and native depthwise paths against the unfused composition and the float64 oracle.

separable_conv2d(fused=True) must equal running its two describe() stages one after the other;
depthwise kernels (channels-first row kernels, channels-last pixel kernels, any multiplier m) must
equal the reference algorithm; every result must be bitwise identical for 1 and 2 threads."""
import numpy as np
import pytest

import cconv
import reference as R
from helpers import threads_equal, use_isa

TOL = {np.float32: 2e-5, np.float64: 1e-12}

SEPARABLE = [
    # N, C, m, Co, H, W, k, stride, dilation
    (2, 5, 1, 7, 11, 13, 3, 1, 1),
    (1, 16, 2, 13, 20, 70, 5, 2, 1),   # rows wider than one register block, stride 2
    (3, 3, 1, 1, 9, 9, 3, 1, 2),       # one output channel (a partial pointwise block)
    (2, 8, 1, 12, 17, 33, 7, 2, 1),
    (1, 24, 1, 40, 15, 15, 3, 1, 1),
]


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SEPARABLE)
def test_fused_separable_equals_composition(isa, dtype, case):
    N, C, m, Co, H, W, k, s, d = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dw = rng.standard_normal((C * m, 1, k, k)).astype(dtype)
    pw = rng.standard_normal((Co, C * m, 1, 1)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    kw = dict(stride=s, padding=d * (k // 2), dilation=d)
    with use_isa(isa):
        fused = cconv.separable_conv2d(x, dw, pw, b, **kw)
        steps = cconv.separable_conv2d(x, dw, pw, b, fused=False, **kw)
        assert threads_equal(lambda: cconv.separable_conv2d(x, dw, pw, b, **kw))
    assert fused.shape == steps.shape
    assert _rel(fused, steps) < TOL[dtype]
    ref = R.conv2d(R.conv2d(x.astype(np.float64), dw, stride=s, padding=d * (k // 2), dilation=d,
                            groups=C), pw, b)
    assert _rel(fused, ref) < TOL[dtype]


FLATTENED = [
    # N, C_in, C_out, H, W, kh, kw, stride, padding, dilation
    (2, 5, 7, 9, 11, 3, 3, 1, 1, 1),              # whole images per job
    (1, 3, 4, 17, 6, 5, 3, 2, (2, 1), (1, 2)),    # batch 1: one image at a time
    (9, 6, 10, 70, 40, 3, 3, 1, 1, 1),            # bands of rows across threads (halo rows)
    (5, 4, 6, 61, 33, 3, 5, (2, 1), ((3, 0), (1, 2)), (2, 1)),
    (1, 2, 3, 3, 4, 3, 3, 1, 5, 1),               # bands that read padding only
    (6, 40, 9, 50, 50, 7, 1, 3, (3, 0), 1),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", FLATTENED)
def test_fused_flattened_equals_composition(isa, dtype, layout, case, monkeypatch):
    from cconv import _functions
    monkeypatch.setattr(_functions, "_CHUNK_BYTES", 5000)  # channels-last: several chunks
    N, Ci, Co, H, W, kh, kw, s, p, d = case
    rng = np.random.default_rng(sum(map(hash, map(str, case))) % 2**32)
    x = rng.standard_normal((N, Ci, H, W)).astype(dtype)
    ch = rng.standard_normal((Co, Ci)).astype(dtype)
    v = rng.standard_normal((Co, kh)).astype(dtype)
    h = rng.standard_normal((Co, kw)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    kwargs = dict(stride=s, padding=p, dilation=d)
    ref = R.flattened_conv2d(x.astype(np.float64), ch, v, h, b, **kwargs)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        ref = ref.transpose(0, 2, 3, 1)
    kwargs["layout"] = layout
    with use_isa(isa):
        fused = cconv.flattened_conv2d(x, ch, v, h, b, **kwargs)
        steps = cconv.flattened_conv2d(x, ch, v, h, b, fused=False, **kwargs)
        assert threads_equal(lambda: cconv.flattened_conv2d(x, ch, v, h, b, **kwargs))
    assert fused.shape == steps.shape == ref.shape
    assert _rel(fused, steps) < TOL[dtype]
    assert _rel(fused, ref) < TOL[dtype]


def test_fused_flattened_allocates_no_intermediate():
    """Peak traced memory (NumPy reports its buffers to tracemalloc): the fused call holds the
    output only, the staged one also its two (N, C_out, H, W) intermediates."""
    import tracemalloc
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8, 64, 64)).astype(np.float32)
    ch, v, h = (rng.standard_normal(s).astype(np.float32) for s in ((16, 8), (16, 3), (16, 3)))
    peaks = {}
    for fused in (True, False):
        cconv.flattened_conv2d(x, ch, v, h, padding=1, fused=fused)  # warm caches of plans
        tracemalloc.start()
        y = cconv.flattened_conv2d(x, ch, v, h, padding=1, fused=fused)
        peaks[fused] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[True] < 1.2 * y.nbytes
    assert peaks[False] > 1.8 * y.nbytes
    out = np.empty_like(y)
    assert cconv.flattened_conv2d(x, ch, v, h, padding=1, out=out) is out
    np.testing.assert_array_equal(out, cconv.flattened_conv2d(x, ch, v, h, padding=1))


def test_fused_separable_out_and_describe():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 10, 12)).astype(np.float32)
    dw = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    pw = rng.standard_normal((9, 6, 1, 1)).astype(np.float32)
    from cconv._functions import describe
    stages = describe("separable_conv2d", x.shape, dw.shape, pw.shape, padding=1, fused=True)
    out = np.empty(stages[-1].out_shape, np.float32)
    y = cconv.separable_conv2d(x, dw, pw, padding=1, out=out)
    assert y is out
    np.testing.assert_allclose(y, cconv.separable_conv2d(x, dw, pw, padding=1, fused=False),
                               rtol=1e-5, atol=1e-5)


SPATIALLY_SEPARABLE = [
    # N, C_in, C_mid, C_out, H, W, kh, kw, stride, padding, dilation, groups
    (3, 5, 7, 6, 11, 13, 3, 3, 1, 1, 1, 1),
    (5, 8, 12, 4, 17, 9, 7, 1, (2, 1), (3, 0), 1, 4),      # grouped, 1-wide horizontal pass
    (4, 6, 6, 6, 10, 21, 3, 5, 1, ((2, 0), (1, 3)), (1, 2), 6),  # per-channel (groups = C)
    (1, 16, 24, 40, 15, 15, 7, 7, (1, 2), 3, 1, 1),
]


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])  # one image, uneven chunks, whole batch
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SPATIALLY_SEPARABLE)
def test_fused_spatially_separable_equals_composition(isa, dtype, layout, case, chunk_bytes,
                                                      monkeypatch):
    """The chunked passes run the same kernels as the staged ones on a slice of the batch: equal
    bitwise, whatever the chunking and the thread count."""
    from cconv import _functions
    monkeypatch.setattr(_functions, "_CHUNK_BYTES", chunk_bytes)
    N, ci, cm, co, H, W, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(N * ci * cm)
    x = rng.standard_normal((N, ci, H, W)).astype(dtype)
    v = rng.standard_normal((cm, ci // g, kh, 1)).astype(dtype)
    h = rng.standard_normal((co, cm // g, 1, kw)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    kwargs = dict(stride=s, padding=p, dilation=d, groups=g)
    ref = R.spatially_separable_conv2d(x.astype(np.float64), v, h, b, **kwargs)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        ref = ref.transpose(0, 2, 3, 1)
    with use_isa(isa):
        fused = cconv.spatially_separable_conv2d(x, v, h, b, layout=layout, **kwargs)
        steps = cconv.spatially_separable_conv2d(x, v, h, b, layout=layout, fused=False, **kwargs)
        assert threads_equal(lambda: cconv.spatially_separable_conv2d(x, v, h, b, layout=layout,
                                                                      **kwargs))
    np.testing.assert_array_equal(fused, steps)
    assert _rel(fused, ref) < TOL[dtype]


def test_fused_spatially_separable_allocates_a_chunk_only(monkeypatch):
    """Traced peak: the fused call holds the output and one chunk of the intermediate (here one
    image's worth), the staged call the whole (N, C_mid, H, W) intermediate too."""
    import tracemalloc
    from cconv import _functions
    monkeypatch.setattr(_functions, "_CHUNK_BYTES", 1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 4, 48, 48)).astype(np.float32)
    v = rng.standard_normal((16, 4, 3, 1)).astype(np.float32)
    h = rng.standard_normal((16, 16, 1, 3)).astype(np.float32)
    peaks = {}
    for fused in (True, False):
        cconv.spatially_separable_conv2d(x, v, h, padding=1, fused=fused)
        tracemalloc.start()
        y = cconv.spatially_separable_conv2d(x, v, h, padding=1, fused=fused)
        peaks[fused] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[True] < 1.3 * y.nbytes   # output + one image of intermediate (1/8 of it)
    assert peaks[False] > 1.9 * y.nbytes  # output + the whole intermediate (as large)
    out = np.empty_like(y)
    assert cconv.spatially_separable_conv2d(x, v, h, padding=1, out=out) is out
    np.testing.assert_array_equal(out, y)


DEPTHWISE = [
    # C, m, H, W, kernel, stride, dilation, padding_mode
    (5, 1, 11, 13, (3, 3), 1, 1, "zeros"),
    (6, 1, 12, 13, (3, 3), 2, 1, "zeros"),
    (3, 2, 9, 10, (5, 5), 1, 1, "reflect"),
    (4, 1, 15, 30, (7, 7), 2, 1, "zeros"),
    (3, 1, 10, 9, (3, 3), 1, 2, "replicate"),
    (2, 3, 11, 17, (4, 4), 3, 1, "circular"),
    (17, 1, 9, 37, (2, 5), (1, 2), (2, 1), "zeros"),
    (33, 1, 3, 70, (3, 3), 1, 1, "zeros"),
    (24, 2, 8, 8, (3, 3), 1, 1, "zeros"),  # channels-last: vector + half-vector + scalar tails
    # channels-last 3x3 stride 1 (the 4-pixel stencil kernel): 3 and 2.5 vectors of channels
    (48, 1, 6, 20, (3, 3), 1, 1, "reflect"),
    (40, 1, 7, 9, (3, 3), 1, 1, "zeros"),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", DEPTHWISE)
def test_depthwise_kernels_match_reference(isa, dtype, layout, case):
    C, m, H, W, k, s, d, mode = case
    rng = np.random.default_rng(C * 7 + m)
    x = rng.standard_normal((2, C, H, W)).astype(dtype)
    w = rng.standard_normal((C * m, 1) + k).astype(dtype)
    b = rng.standard_normal(C * m).astype(dtype)
    dd = (d, d) if isinstance(d, int) else d
    pad = tuple(di * (ki // 2) for di, ki in zip(dd, k))
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    kw = dict(stride=s, padding=pad, dilation=d, groups=C, padding_mode=mode, layout=layout)
    with use_isa(isa):
        got = cconv.conv2d(x, w, b, algorithm="depthwise", **kw)
        ref = cconv.conv2d(x, w, b, algorithm="reference", **kw)
        assert threads_equal(lambda: cconv.conv2d(x, w, b, algorithm="depthwise", **kw))
    assert _rel(got, ref) < TOL[dtype]


def test_depthwise_channels_last_multiplier_is_native():
    x = np.zeros((1, 4, 4, 3), np.float32)
    p = cconv.plan_conv2d(x.shape, np.ones((6, 1, 3, 3), np.float32), groups=3, padding=1,
                          layout="NHWC")
    assert p.algorithm == "depthwise"


GROUPED = [
    # C_in, C_out, groups, H, W, kernel, stride, dilation, padding_mode
    (128 // 8, 128 // 8, 4, 14, 14, (3, 3), 1, 1, "zeros"),   # 4 in, 4 out per group
    (6, 12, 3, 11, 13, (3, 3), 2, 1, "reflect"),              # 2 in, 4 out
    (16, 8, 2, 9, 40, (5, 3), 1, 2, "zeros"),                 # 8 in, 4 out
    (9, 9, 3, 10, 10, (1, 1), 1, 1, "zeros"),                 # grouped 1x1
    (10, 5, 5, 12, 70, (3, 3), (2, 1), 1, "circular"),        # 2 in, 1 out
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", GROUPED)
def test_grouped_direct_matches_reference(isa, dtype, layout, case):
    cin, cout, g, H, W, k, s, d, mode = case
    rng = np.random.default_rng(cin + cout + g)
    x = rng.standard_normal((2, cin, H, W)).astype(dtype)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w = rng.standard_normal((cout, cin // g) + k).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    pad = tuple(d * (ki // 2) for ki in k)
    kw = dict(stride=s, padding=pad, dilation=d, groups=g, padding_mode=mode, layout=layout)
    with use_isa(isa):
        got = cconv.conv2d(x, w, b, algorithm="grouped", **kw)
        ref = cconv.conv2d(x, w, b, algorithm="reference", **kw)
        assert threads_equal(lambda: cconv.conv2d(x, w, b, algorithm="grouped", **kw))
    assert _rel(got, ref) < TOL[dtype]


def test_grouped_is_chosen_for_few_channels_per_group():
    w = np.ones((128, 4, 3, 3), np.float32)
    # channels-first, 4-24 channels a group in and >= 4 out go to the GEMM's direct form
    assert cconv.plan_conv2d((1, 64, 8, 8), np.ones((64, 2, 3, 3), np.float32), groups=32,
                             padding=1).algorithm == "grouped"
    assert cconv.plan_conv2d((1, 8, 8, 128), w, groups=32, padding=1,
                             layout="NHWC").algorithm == "grouped"
    # channels-last rows expanded to W x cig x C_out that overflow L2: the GEMM instead
    assert cconv.plan_conv2d((1, 8, 1024, 512), np.ones((512, 8, 3, 3), np.float32), groups=64,
                             padding=1, layout="NHWC").algorithm == "gemm"
    with pytest.raises(ValueError):  # 16 input channels per group: not the direct kernels' case
        cconv.plan_conv2d((1, 32, 8, 8), np.ones((32, 16, 3, 3), np.float32), groups=2,
                          algorithm="grouped")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cin, cout, groups, shuffle_groups, layout", [
    (16, 16, 4, 4, "NCHW"),     # grouped algorithm, fused shuffle
    (12, 24, 3, 4, "NCHW"),     # shuffle groups differ from conv groups
    (6, 12, 6, 3, "NCHW"),      # depthwise with m = 2, fused shuffle
    (24, 24, 2, 2, "NCHW"),     # 12 channels per group: GEMM, shuffle fused into its stores
    (240, 240, 3, 3, "NCHW"),   # GEMM blocks of 48 crossing the 80-channel shuffle groups
    (160, 96, 2, 4, "NCHW"),
    (16, 16, 4, 4, "NHWC"),
])
@pytest.mark.parametrize("k", [3, 1])   # 1x1: the pointwise GEMM path
def test_shuffled_grouped_equals_conv_then_shuffle(isa, dtype, cin, cout, groups, shuffle_groups,
                                                   layout, k):
    rng = np.random.default_rng(cin * cout)
    x = rng.standard_normal((2, cin, 9, 11)).astype(dtype)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    with use_isa(isa):
        got = cconv.shuffled_grouped_conv2d(x, w, groups, b, padding=k // 2,
                                            shuffle_groups=shuffle_groups, layout=layout)
        steps = cconv.channel_shuffle(cconv.conv2d(x, w, b, padding=k // 2, groups=groups,
                                                   layout=layout), shuffle_groups, layout=layout)
    np.testing.assert_array_equal(got, steps)
