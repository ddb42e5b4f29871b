"""The worked numbers of the survey article, reproduced with cconv's public
functions, plus the identities behind the variants.  The article's operation
and parameter counts are checked against cconv.analysis in test_analysis.py."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R
from helpers import use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

IMAGE = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=float
)
KERNEL = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=float)


def true_convolution_2d(x, k):
    """Textbook convolution by its definition: y[i, j] = sum x[i + m, j + n] k[K-1-m, K-1-n]."""
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for m in range(kh):
                for n in range(kw):
                    out[i, j] += x[i + m, j + n] * k[kh - 1 - m, kw - 1 - n]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_cross_correlation_example(dtype, layout, isa):
    x = IMAGE[None, :, :, None] if layout == "NHWC" else IMAGE[None, None]
    with use_isa(isa):
        y = cconv.conv2d(x.astype(dtype), KERNEL[None, None].astype(dtype), layout=layout)
    y = y[0, :, :, 0] if layout == "NHWC" else y[0, 0]
    np.testing.assert_array_equal(y, [[12, 12, 17], [10, 17, 19], [9, 6, 14]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_true_convolution_is_the_flipped_kernel(dtype, isa):
    expected = [[18, 20, 19], [10, 9, 17], [11, 8, 14]]
    np.testing.assert_array_equal(true_convolution_2d(IMAGE, KERNEL), expected)
    with use_isa(isa):
        y = cconv.conv2d(IMAGE[None, None].astype(dtype), np.flip(KERNEL, (0, 1))[None, None].astype(dtype))
    np.testing.assert_array_equal(y[0, 0], expected)


@pytest.mark.parametrize(
    "i,k,s,p,o",
    [(4, 3, 1, 0, 2), (5, 4, 1, 2, 6), (5, 3, 1, 1, 5), (5, 3, 1, 2, 7), (5, 3, 2, 0, 2), (5, 3, 2, 1, 3),
     (6, 3, 2, 1, 3)],
)
def test_output_sizes(i, k, s, p, o):
    assert R.conv_output_size(i, k, s, p) == o
    assert cconv.conv1d(np.ones((1, 1, i)), np.ones((1, 1, k)), stride=s, padding=p).shape == (1, 1, o)
    assert cconv.conv2d(np.ones((1, 1, i, i)), np.ones((1, 1, k, k)), stride=s, padding=p).shape == (1, 1, o, o)
    y = cconv.conv3d(np.ones((1, 1, i, i, 2)), np.ones((1, 1, k, k, 1)), stride=(s, s, 1), padding=(p, p, 0))
    assert y.shape == (1, 1, o, o, 2)


def test_dilated_output_size():
    # i=7, k=3, d=2 -> 3 (the dilated kernel spans 5)
    assert cconv.conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), dilation=2).shape == (1, 1, 3, 3)


def test_padding_same_and_valid():
    x = np.ones((1, 1, 5, 6))
    w = np.ones((1, 1, 3, 3))
    assert cconv.conv2d(x, w, padding="valid").shape == (1, 1, 3, 4)
    assert cconv.conv2d(x, w, padding="same").shape == (1, 1, 5, 6)
    # stride > 1, TensorFlow rule: ceil(i / s)
    assert cconv.conv2d(x, w, padding="same", stride=2).shape == (1, 1, 3, 3)
    assert cconv.conv2d(x, np.ones((1, 1, 4, 2)), padding="same", stride=(2, 4)).shape == (1, 1, 3, 2)


def test_same_padding_puts_the_odd_pixel_at_the_end():
    # 6 inputs, k=3, s=2: out 3, total pad 1 -> (0 before, 1 after): taps [0..2], [2..4], [4..6)
    x = np.arange(1.0, 7.0)[None, None]
    y = cconv.conv1d(x, np.ones((1, 1, 3)), stride=2, padding="same")
    np.testing.assert_array_equal(y[0, 0], [1 + 2 + 3, 3 + 4 + 5, 5 + 6 + 0])
    # even kernel, stride 1: k=4 -> total 3 -> (1 before, 2 after)
    y = cconv.conv1d(x, np.ones((1, 1, 4)), padding="same")
    np.testing.assert_array_equal(y[0, 0], [0 + 1 + 2 + 3, 10, 14, 18, 4 + 5 + 6, 5 + 6])


@pytest.mark.parametrize(
    "i_fwd,k,s,p",
    [(4, 3, 1, 0), (5, 3, 2, 0), (5, 3, 2, 1), (6, 3, 2, 1), (5, 4, 1, 2), (7, 3, 3, 1)],
)
def test_transposed_output_size_recovers_the_input(i_fwd, k, s, p):
    o = R.conv_output_size(i_fwd, k, s, p)
    a = (i_fwd + 2 * p - k) % s
    assert R.conv_transpose_output_size(o, k, s, p, a) == i_fwd
    y = cconv.conv_transpose2d(np.ones((1, 1, o, o)), np.ones((1, 1, k, k)), stride=s, padding=p,
                               output_padding=a)
    assert y.shape == (1, 1, i_fwd, i_fwd)


def test_transposed_examples():
    # 2x2 input, 3x3 kernel, stride 1 -> 4x4
    y = cconv.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)))
    assert y.shape == (1, 1, 4, 4)
    # scatter: each input pixel adds the full kernel at its position
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    # stride 2 (forward 5x5 -> 2x2) back to 5x5
    assert cconv.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2).shape == (1, 1, 5, 5)
    # dilated transposed: o' = s(i'-1) + a + d(k-1) + 1 - 2p
    y = cconv.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), stride=2, dilation=3,
                               output_padding=2, padding=1)
    assert y.shape[2:] == (2 * 2 + 2 + 3 * 2 + 1 - 2,) * 2


@pytest.mark.parametrize("k,s", [(3, 2), (4, 2), (5, 2), (6, 2), (3, 3), (6, 3), (4, 3)])
def test_checkerboard_overlap(k, s):
    """Transposed conv of a constant image is uneven exactly when s does not divide k."""
    y = cconv.conv_transpose1d(np.ones((1, 1, 12)), np.ones((1, 1, k)), stride=s)[0, 0]
    interior = y[k : len(y) - k]
    even = np.all(interior == interior[0])
    assert even == (k % s == 0), interior


def test_dilated_receptive_field():
    """3x3 layers with d = 1, 2, 4 see 3x3, 7x7, 15x15; one 3x3 layer with d = 4 spans 9x9."""
    x = np.zeros((1, 1, 31, 31))
    x[0, 0, 15, 15] = 1.0
    w = np.ones((1, 1, 3, 3))

    def extent(y):
        rows, cols = np.nonzero(y[0, 0])
        return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1

    y = x
    for d, rf in [(1, 3), (2, 7), (4, 15)]:  # each layer widens the field by 2d: 1 + 2 * (1 + 2 + 4)
        y = cconv.conv2d(y, w, padding="same", dilation=d)
        assert extent(y) == (rf, rf)
    assert extent(cconv.conv2d(x, w, padding="same", dilation=4)) == (9, 9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sobel_is_spatially_separable(dtype, isa):
    v = np.array([1.0, 2.0, 1.0])
    h = np.array([-1.0, 0.0, 1.0])
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # np.outer(v, h): 6 numbers, not 9
    x = np.random.default_rng(0).integers(-5, 6, (2, 1, 8, 9)).astype(dtype)
    with use_isa(isa):
        full = cconv.conv2d(x, sobel[None, None].astype(dtype))
        sep = cconv.spatially_separable_conv2d(
            x, v.reshape(1, 1, 3, 1).astype(dtype), h.reshape(1, 1, 1, 3).astype(dtype)
        )
        flat = cconv.flattened_conv2d(x, np.ones((1, 1), dtype), v[None].astype(dtype), h[None].astype(dtype))
    # integer data: every path is exact
    np.testing.assert_array_equal(sep, full)
    np.testing.assert_array_equal(flat, full)


def test_spatially_separable_multiplication_count():
    """5x5 image, 3x3 kernel, no padding: 81 multiplications vs 45 + 27 = 72."""
    n, m = 5, 3
    x = np.ones((1, 1, n, n))
    vertical = cconv.conv2d(x, np.ones((1, 1, m, 1)))
    horizontal = cconv.conv2d(vertical, np.ones((1, 1, 1, m)))
    assert vertical.shape[2:] == (n - m + 1, n) and horizontal.shape[2:] == (n - m + 1,) * 2
    assert horizontal.size * m * m == 81
    assert (vertical.size * m, horizontal.size * m) == (45, 27)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_separable_example(dtype, isa):
    """7x7x3 input, 128 filters 3x3x3, valid: the depthwise-then-pointwise pair equals the
    standard convolution with the product weight (86,400 mults vs 675 + 9,600)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 7, 7)).astype(dtype)
    dw = rng.standard_normal((3, 1, 3, 3)).astype(dtype)
    pw = rng.standard_normal((128, 3, 1, 1)).astype(dtype)
    with use_isa(isa):
        mid = cconv.depthwise_conv2d(x, dw)
        y = cconv.separable_conv2d(x, dw, pw)
        # the equivalent standard conv has weight W[o, c, i, j] = pw[o, c] * dw[c, i, j]
        w_full = (pw[:, :, 0, 0][:, :, None, None] * dw[None, :, 0]).astype(dtype)
        y_std = cconv.conv2d(x, w_full)
        y_two = cconv.conv2d(mid, pw)
    assert mid.shape == (1, 3, 5, 5) and y.shape == (1, 128, 5, 5)
    scale = R.magnitude(R.separable_conv2d, x, dw, pw)
    for got in (y, y_std, y_two):
        R.assert_conv_close(got, R.separable_conv2d(x, dw, pw), scale, dtype, 27)


@pytest.mark.parametrize("m", [1, 2])
def test_depthwise_equals_grouped_conv(m, isa):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 8, 8))
    w = rng.standard_normal((5 * m, 1, 3, 3))
    with use_isa(isa):
        a = cconv.depthwise_conv2d(x, w, padding=1)
        b = cconv.conv2d(x, w, padding=1, groups=5)
    R.assert_conv_close(a, b, R.magnitude(R.depthwise_conv2d, x, w, padding=1), np.float64, 9)


def test_grouped_conv_is_independent_convs_and_halves_parameters(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 6, 6))
    w = rng.standard_normal((12, 4, 3, 3))  # 2 groups: (3*3*8/2*12/2)*2 parameters, half of 3*3*8*12
    with use_isa(isa):
        y = cconv.conv2d(x, w, groups=2)
        y0 = cconv.conv2d(x[:, :4], w[:6])
        y1 = cconv.conv2d(x[:, 4:], w[6:])
    np.testing.assert_allclose(y, np.concatenate([y0, y1], axis=1), rtol=0, atol=1e-12)


def test_pointwise_is_a_gemm(isa):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 7))
    w = rng.standard_normal((9, 6, 1, 1))
    with use_isa(isa):
        y = cconv.conv2d(x, w)
        yg = cconv.conv2d(x, w[:, :2], groups=3)  # pointwise grouped (ShuffleNet)
        yl = cconv.conv2d(np.moveaxis(x, 1, -1), w, layout="NHWC")
    np.testing.assert_allclose(y, np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yl, np.einsum("oc,nhwc->nhwo", w[:, :, 0, 0], np.moveaxis(x, 1, -1)),
                               rtol=1e-12, atol=1e-12)
    expected = np.concatenate(
        [np.einsum("oc,nchw->nohw", w[3 * j : 3 * j + 3, :2, 0, 0], x[:, 2 * j : 2 * j + 2]) for j in range(3)],
        axis=1,
    )
    np.testing.assert_allclose(yg, expected, rtol=1e-12, atol=1e-12)


def test_shuffled_grouped_convolution(isa):
    """group conv -> channel_shuffle -> group conv lets every output see every input group."""
    rng = np.random.default_rng(5)
    g = 3
    x = rng.standard_normal((1, 6, 5, 5))
    w1 = rng.standard_normal((6, 2, 1, 1))
    w2 = rng.standard_normal((6, 2, 1, 1))
    with use_isa(isa):
        a = cconv.conv2d(x, w1, groups=g)
        s = cconv.channel_shuffle(a, g)
        y = cconv.conv2d(s, w2, groups=g)
    np.testing.assert_array_equal(s, R.channel_shuffle(a, g))
    np.testing.assert_allclose(y, R.conv2d(R.channel_shuffle(R.conv2d(x, w1, groups=g), g), w2, groups=g),
                               rtol=1e-12, atol=1e-12)
    # without the shuffle, output group 0 depends only on input group 0; with it, on all groups
    x2 = x.copy()
    x2[:, 2:4] += 1.0  # input group 1 reaches output group 0 only through the shuffle
    with use_isa(isa):
        y2 = cconv.conv2d(cconv.channel_shuffle(cconv.conv2d(x2, w1, groups=g), g), w2, groups=g)
        n2 = cconv.conv2d(cconv.conv2d(x2, w1, groups=g), w2, groups=g)
        n1 = cconv.conv2d(cconv.conv2d(x, w1, groups=g), w2, groups=g)
    assert not np.allclose(y2[:, :2], y[:, :2])
    np.testing.assert_array_equal(n2[:, :2], n1[:, :2])
    # shuffling with g then with C/g restores the order
    np.testing.assert_array_equal(cconv.channel_shuffle(s, 6 // g), a)


@st.composite
def adjoint_cases(draw):
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    i = tuple(max(1, dd * (kk - 1) + 1 - 2 * pp) + draw(st.integers(0, 4 if nd < 3 else 2))
              for kk, dd, pp in zip(k, d, p))
    g = draw(st.integers(1, 2))
    return nd, k, s, d, p, i, g, draw(st.integers(1, 2)) * g, draw(st.integers(1, 2)) * g, draw(st.integers(0, 999))


@given(case=adjoint_cases())
def test_adjoint_identity(case, isa):
    """<conv(x), y> = <x, conv_transpose(y)> (the article's "C^T C = I" is wrong; this is the truth)."""
    nd, k, s, d, p, i, g, c_in, c_out, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c_in, *i))
    w = rng.standard_normal((c_out, c_in // g, *k))
    o = tuple(R.conv_output_size(ii, kk, ss, pp, dd) for ii, kk, ss, pp, dd in zip(i, k, s, p, d))
    a = tuple((ii + 2 * pp - dd * (kk - 1) - 1) % ss for ii, kk, ss, pp, dd in zip(i, k, s, p, d))
    y = rng.standard_normal((2, c_out, *o))
    conv = getattr(cconv, f"conv{nd}d")
    convt = getattr(cconv, f"conv_transpose{nd}d")
    with use_isa(isa):
        cx = conv(x, w, stride=s, padding=p, dilation=d, groups=g)
        cty = convt(y, w, stride=s, padding=p, output_padding=a, dilation=d, groups=g)
    assert cx.shape == y.shape and cty.shape == x.shape
    lhs, rhs = np.vdot(cx, y), np.vdot(x, cty)
    scale = np.vdot(np.abs(x), convt(np.abs(y), np.abs(w), stride=s, padding=p, output_padding=a, dilation=d,
                                     groups=g))
    assert abs(lhs - rhs) <= 1e-12 * scale + 1e-300, (lhs, rhs, scale)
