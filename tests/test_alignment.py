"""Results do not depend on where the arrays lie: the memory-bound kernels (channel shuffle in
both layouts, depthwise convolution, the channels-first band fill's transposes into the GEMM's
channels-last workspace) with inputs and outputs at element-aligned offsets from a page boundary,
including offsets that are not multiples of a vector or of a cache line, on every ISA path.

Shuffles are exact permutations, compared with NumPy's; convolutions are compared bitwise with the
same call on freshly allocated (64-byte aligned) arrays, and with the float64 reference. Speed
at these offsets is measured by `python -m cconv.bench.alignment` and asv_bench, not here."""
import numpy as np
import pytest

import reference as R
from helpers import num_threads, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
from cconv.bench.alignment import at_offset, page_buffer  # noqa: E402

# bytes past a page boundary: aligned, one float32, one float64, a quarter and a full cache
# line, half a page, one line and one float64 before the next page
OFFSETS = (0, 4, 8, 16, 64, 2048, 4032, 4088)


def placed(a, offset):
    """A copy of `a` starting `offset` bytes past a page boundary."""
    buf = page_buffer(a.nbytes)
    v = at_offset(buf, a.shape, offset, a.dtype)
    v[...] = a
    return v


def empty_at(shape, dtype, offset):
    return at_offset(page_buffer(int(np.prod(shape)) * np.dtype(dtype).itemsize), shape, offset, dtype)


def offsets_for(dtype):
    return [o for o in OFFSETS if o % np.dtype(dtype).itemsize == 0]


def pairs(dtype):
    """(input offset, output offset): every offset for each, against an aligned other side."""
    offs = offsets_for(dtype)
    return sorted({(0, o) for o in offs} | {(o, 0) for o in offs} | {(16, 4088 // 8 * 8), (4032, 64)})


# channels 20 = 4 groups of 5: a 4x4 register block and a tail; 24 in 2 groups: the 2x4 path
SHUFFLES = [("NCHW", (2, 12, 7, 9), 3), ("NCHW", (2, 20, 5, 3), 4), ("NHWC", (2, 5, 7, 20), 4),
            ("NHWC", (2, 3, 5, 24), 2), ("NHWC", (1, 4, 6, 36), 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout,shape,groups", SHUFFLES)
def test_channel_shuffle_at_offsets(layout, shape, groups, dtype, isa):
    x = np.random.default_rng(groups).standard_normal(shape).astype(dtype)
    expected = R.channel_shuffle(x, groups, layout)
    for xo, yo in pairs(dtype):
        xp, y = placed(x, xo), empty_at(shape, dtype, yo)
        with use_isa(isa):
            r = cconv.channel_shuffle(xp, groups, layout=layout, out=y)
        assert r is y
        np.testing.assert_array_equal(y, expected, err_msg=f"x at {xo}, out at {yo}")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_channel_shuffle_threaded_at_offsets(layout, isa):
    """Large enough (over 1 MiB) to be split across threads."""
    shape = (2, 64, 48, 48) if layout == "NCHW" else (2, 48, 48, 64)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = R.channel_shuffle(x, 4, layout)
    for xo, yo in [(0, 16), (16, 0), (0, 4032), (4, 2048)]:
        y = empty_at(shape, np.float32, yo)
        with use_isa(isa), num_threads(2):
            cconv.channel_shuffle(placed(x, xo), 4, layout=layout, out=y)
        np.testing.assert_array_equal(y, expected, err_msg=f"x at {xo}, out at {yo}")


def _check_conv_at_offsets(fn, x, w, kw, dtype, isa, reference):
    """fn(x, w, **kw) into outputs at each offset: bitwise the aligned call's result, and close
    to the float64 reference."""
    with use_isa(isa):
        aligned = fn(x, w, **kw)
    ref = reference(x, w, **kw)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(aligned, ref, rtol=tol, atol=tol * np.abs(ref).max())
    for xo, yo in pairs(dtype):
        y = empty_at(aligned.shape, dtype, yo)
        with use_isa(isa):
            fn(placed(x, xo), placed(w, yo), out=y, **kw)
        np.testing.assert_array_equal(y, aligned, err_msg=f"x at {xo}, out and weight at {yo}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_at_offsets(layout, stride, dtype, isa):
    rng = np.random.default_rng(stride)
    shape = (2, 19, 11, 13) if layout == "NCHW" else (2, 11, 13, 19)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((19, 1, 3, 3)).astype(dtype)
    kw = dict(stride=stride, padding=1, layout=layout)
    _check_conv_at_offsets(cconv.depthwise_conv2d, x, w, kw, dtype, isa,
                           lambda x, w, **kw: R.depthwise_conv2d(x, w, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_gemm_band_fill_at_offsets(layout, dtype, isa):
    """The GEMM path's band fill: a channels-first input is transposed (8x8 register blocks and
    edges) into the channels-last workspace, a channels-last one copied."""
    rng = np.random.default_rng(1)
    shape = (2, 21, 9, 19) if layout == "NCHW" else (2, 9, 19, 21)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((10, 21, 3, 3)).astype(dtype)
    kw = dict(padding=1, layout=layout, algorithm="gemm")

    def ref(x, w, layout, padding, algorithm):
        return R.conv2d(x, w, padding=padding, layout=layout)
    _check_conv_at_offsets(cconv.conv2d, x, w, kw, dtype, isa, ref)
