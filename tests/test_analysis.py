"""cconv.analysis: the article's worked numbers (shared/VARIANTS.md), output shapes against the
real functions, and the cost model against a naive implementation that counts its own
multiplications and additions."""

from fractions import Fraction
import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as R

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
import cconv.analysis as A  # noqa: E402

# (tiny calls run on the calling thread by themselves: no thread fixture needed)


# =========================================================================== worked numbers

@pytest.mark.parametrize("i,k,s,p,o", [(4, 3, 1, 0, 2), (5, 4, 1, 2, 6), (5, 3, 1, 1, 5),
                                       (5, 3, 1, 2, 7), (5, 3, 2, 0, 2), (5, 3, 2, 1, 3),
                                       (6, 3, 2, 1, 3)])
def test_output_size_article_cases(i, k, s, p, o):
    assert A.output_size(i, k, stride=s, padding=p) == o
    assert A.output_size(i, k, s, p) == o
    assert A.output_size(i, k, s, (p, p)) == o


def test_output_size_dilated_article_case():
    assert A.output_size(7, 3, dilation=2) == 3
    assert A.output_size(7, 3, 1, 0, 2) == 3


def test_transposed_output_size_article_cases():
    assert A.transposed_output_size(2, 3) == 4          # 2x2 input, 3x3 kernel, s=1 -> 4x4
    assert A.output_size(5, 3, stride=2) == 2           # forward 5 -> 2 with s=2 ...
    assert A.transposed_output_size(2, 3, stride=2) == 5  # ... and its transpose 2 -> 5
    assert A.transposed_output_size(2, 3, 2, 0, 1) == 6   # output_padding a=1 recovers i=6
    assert A.output_size(6, 3, stride=2) == 2
    assert A.output_shape("conv_transpose2d", (1, 1, 2, 2), (1, 1, 3, 3)) == (1, 1, 4, 4)
    assert A.output_shape("conv_transpose2d", (1, 1, 2, 2), (1, 1, 3, 3), stride=2) == (1, 1, 5, 5)


def test_output_size_padding_forms():
    assert A.output_size(5, 3, padding="valid") == 3
    assert A.output_size(5, 3, padding="same") == 5
    assert A.output_size(5, 3, stride=2, padding="same") == 3      # ceil(5 / 2)
    assert A.output_size(5, 4, padding=(1, 2)) == 5                # asymmetric pair
    assert A.output_size(np.int64(5), np.int32(3)) == 3
    assert A.transposed_output_size(3, 3, 2, (1, 0)) == 6


def test_output_size_is_the_kernels_arithmetic():
    # the kernels' own arithmetic (cconv._geometry), checked against the independent oracle
    for i, k, s, p, d in itertools.product(range(1, 8), range(1, 4), range(1, 4), range(3), range(1, 3)):
        if i + 2 * p - d * (k - 1) - 1 < 0:
            with pytest.raises(ValueError):
                A.output_size(i, k, s, p, d)
            continue
        o = A.output_size(i, k, s, p, d)
        assert o == cconv._geometry.output_size(i, k, s, p, d) == R.conv_output_size(i, k, s, p, d)
        for a in range(max(s, d)):
            t = cconv._geometry.transposed_output_size(o, k, s, p, a, d)
            if t >= 1:
                assert A.transposed_output_size(o, k, s, p, a, d) == t


@pytest.mark.parametrize("call,exc", [
    (lambda: A.output_size(3, 5), ValueError),                 # kernel larger than input
    (lambda: A.output_size(0, 1), ValueError),
    (lambda: A.output_size(5, 3, stride=0), ValueError),
    (lambda: A.output_size(5, 3, padding=-1), ValueError),
    (lambda: A.output_size(5, 3, padding="full"), ValueError),
    (lambda: A.output_size(5.0, 3), TypeError),
    (lambda: A.output_size(True, 3), TypeError),
    (lambda: A.output_size(5, 3, padding=(1, 2, 3)), TypeError),
    (lambda: A.transposed_output_size(2, 3, stride=2, output_padding=2), ValueError),
    (lambda: A.transposed_output_size(1, 1, padding=1), ValueError),  # no output left
])
def test_size_errors(call, exc):
    with pytest.raises(exc):
        call()


def test_depthwise_separable_article_numbers():
    x, full = (1, 3, 7, 7), (128, 3, 3, 3)
    standard = A.cost("conv2d", x, full)
    assert standard.multiplications == 86_400  # 5 * 5 outputs * 128 filters * 3 * 3 * 3 taps
    dw, pw = A.stage_costs("separable_conv2d", x, (3, 1, 3, 3), (128, 3, 1, 1))
    assert (dw.multiplications, pw.multiplications) == (675, 9_600)
    sep = A.cost("separable_conv2d", x, (3, 1, 3, 3), (128, 3, 1, 1))
    assert sep.multiplications == 10_275 == dw.multiplications + pw.multiplications
    ratio = Fraction(sep.multiplications, standard.multiplications)
    assert ratio == Fraction(1, 128) + Fraction(1, 3 * 3)     # 1/N_c + 1/h^2
    assert round(float(ratio) * 100, 1) == 11.9
    assert sep.output_shape == standard.output_shape == (1, 128, 5, 5)
    # the depthwise part alone is depthwise_conv2d
    assert A.cost("depthwise_conv2d", x, (3, 1, 3, 3)) == dw
    # parameters: 128 * 27 = 3456 vs 27 + 384 = 411
    assert standard.parameters == 3_456 and sep.parameters == 411


def test_spatially_separable_article_numbers():
    std = A.cost("conv2d", (1, 1, 5, 5), (1, 1, 3, 3))
    vert, horz = A.stage_costs("spatially_separable_conv2d", (1, 1, 5, 5), (1, 1, 3, 1), (1, 1, 1, 3))
    assert std.multiplications == 81
    assert (vert.multiplications, horz.multiplications) == (45, 27)
    assert (vert + horz).multiplications == 72
    assert (vert + horz).output_shape == std.output_shape == (1, 1, 3, 3)
    # Sobel: 6 parameters instead of 9
    assert std.parameters == 9 and (vert + horz).parameters == 6


@given(n=st.integers(1, 24), m=st.integers(1, 7))
def test_spatially_separable_general_formula(n, m):
    if m > n:
        return
    std = A.cost("conv2d", (1, 1, n, n), (1, 1, m, m)).multiplications
    sep = A.cost("spatially_separable_conv2d", (1, 1, n, n), (1, 1, m, 1), (1, 1, 1, m)).multiplications
    assert std == (n - m + 1) ** 2 * m ** 2
    assert sep == n * (n - m + 1) * m + (n - m + 1) ** 2 * m


def test_spatially_separable_ratio_tends_to_2_over_m():
    for m in (3, 5, 7):
        n = 10_000
        std = A.cost("conv2d", (1, 1, n, n), (1, 1, m, m)).multiplications
        sep = A.cost("spatially_separable_conv2d", (1, 1, n, n), (1, 1, m, 1), (1, 1, 1, m)).multiplications
        assert abs(sep / std - 2 / m) < 1e-3


def test_receptive_field_article_numbers():
    layers = [(3, 1, 1), (3, 1, 2), (3, 1, 4)]
    assert [A.receptive_field(layers[:n]) for n in (1, 2, 3)] == [3, 7, 15]
    assert A.receptive_field(layers) == 1 + 2 * (1 + 2 + 4)
    assert A.receptive_field([(3, 1, 4)]) == 9          # one 3x3 layer, d=4 alone: 9x9
    assert A.receptive_field([((3, 3), (1, 1), (d, d)) for d in (1, 2, 4)]) == (15, 15)


def test_receptive_field_forms():
    assert A.receptive_field([]) == 1
    assert A.receptive_field([3, 3, 3]) == 7                         # bare kernels
    assert A.receptive_field([(3, 2), (3, 2), (3,)]) == 1 + 2 + 4 + 8  # strides multiply
    assert A.receptive_field([(7, 2), (3, 2), (3, 1)]) == 7 + 2 * 2 + 2 * 4
    assert A.receptive_field([((3, 5), 1, (1, 2)), (3, (2, 1))]) == (5, 11)
    for bad, exc in [(3, TypeError), ([(3, 1, 1, 1)], ValueError), ([(0, 1, 1)], ValueError),
                     ([((3, 3), (1, 1, 1))], ValueError), ([(3.0,)], TypeError), ([None], TypeError)]:
        with pytest.raises(exc):
            A.receptive_field(bad)


def _reach(layers, size):
    """Input positions output 0 depends on: the stack (all-ones kernels, conv1d) run on every
    one-hot input at once (the batch axis holds the positions)."""
    y = np.eye(size)[:, None, :]
    for k, s, d in layers:
        y = cconv.conv1d(y, np.ones((1, 1, k)), stride=s, dilation=d)
    return np.nonzero(y[:, 0, 0])[0].tolist()


@given(ks=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)), max_size=4))
def test_receptive_field_matches_a_real_network(ks):
    """The receptive field is the span of the inputs one output depends on; a dilated stack may
    leave holes inside it ("gridding")."""
    rf = A.receptive_field(ks)
    reach = _reach(ks, rf + 8)
    assert reach[0] == 0 and reach[-1] == rf - 1
    with pytest.raises(ValueError):   # and it is the smallest input that gives an output
        _reach(ks, rf - 1) if rf > 1 else A.output_size(0, 1)


def test_dilated_stack_has_no_holes():
    """The article's 1, 2, 4 stack covers its 15 pixels densely, one d=4 layer does not."""
    assert _reach([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 20) == list(range(15))
    assert _reach([(3, 1, 4)], 20) == [0, 4, 8]


@pytest.mark.parametrize("k,s,uneven", [(3, 2, True), (5, 2, True), (4, 2, False), (2, 2, False),
                                        (1, 1, False), (3, 1, False), (1, 2, True), (6, 3, False),
                                        (4, 3, True)])
def test_checkerboard_article_cases(k, s, uneven):
    assert A.checkerboard(k, s) is uneven
    assert A.checkerboard((k, k), (s, s)) is uneven
    assert A.checkerboard((k, 4), (s, 2)) is uneven       # any uneven dimension counts


def test_checkerboard_pattern_article():
    # stride 2, kernel 3: interior rows/columns alternate 1 and 2 -> 1, 2, 4 checkerboard
    p = A.overlap_pattern((4, 4), 3, stride=2)
    assert p.shape == (9, 9)
    np.testing.assert_array_equal(p[2:7, 2:7], np.outer([2, 1, 2, 1, 2], [2, 1, 2, 1, 2]))
    # kernel 4: even overlap inside (2 x 2 = 4 everywhere away from the border)
    q = A.overlap_pattern((4, 4), 4, stride=2)
    assert np.all(q[2:-2, 2:-2] == 4)
    # 1-D from an int size
    np.testing.assert_array_equal(A.overlap_pattern(3, 3, 2), [1, 1, 2, 1, 2, 1, 1])


@given(k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 4))
def test_checkerboard_is_uneven_interior_overlap(k, s, d):
    """Definition check: the interior (away from both borders) of the 1-D overlap pattern is
    constant iff checkerboard() is False."""
    i = 6 * (k * d + s)
    p = A.overlap_pattern(i, k, stride=s, dilation=d)
    margin = d * (k - 1) + s
    interior = p[margin:len(p) - margin]
    assert len(interior) >= 2 * s
    assert A.checkerboard(k, s, d) == (len(set(interior.tolist())) > 1)
    if d == 1:
        assert A.checkerboard(k, s) == (k % s != 0)


@st.composite
def transposed_geoms(draw, nd=None):
    nd = nd or draw(st.integers(1, 3))
    size = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dil))
    pad = tuple(min(draw(st.integers(0, 3)), (s * (i - 1) + a + d * (k - 1)) // 2)
                for i, k, s, d, a in zip(size, kernel, stride, dil, op))
    return size, kernel, stride, pad, op, dil


@given(transposed_geoms())
def test_overlap_pattern_is_conv_transpose_of_ones(g):
    size, kernel, stride, pad, op, dil = g
    nd = len(size)
    fn = getattr(cconv, f"conv_transpose{nd}d")
    y = fn(np.ones((1, 1) + size), np.ones((1, 1) + kernel), stride=stride, padding=pad,
           output_padding=op, dilation=dil)
    p = A.overlap_pattern(size, kernel, stride, pad, op, dil)
    assert p.dtype == np.int64
    np.testing.assert_array_equal(p, y[0, 0])


@given(transposed_geoms(nd=1))
def test_transposed_additions_do_not_need_the_output(g):
    """The additions of a transposed conv come from a histogram of the overlap counts computed
    without materialising the output; it must agree with the pattern itself."""
    (i,), (k,), (s,), (p,), (a,), (d,) = g
    pattern = A.overlap_pattern(i, k, s, p, a, d)
    vals, mult = np.unique(pattern, return_counts=True)
    assert A._overlap_histogram(i, k, s, d, p, p, a) == dict(zip(vals.tolist(), mult.tolist()))
    c = A.cost("conv_transpose1d", (1, 1, i), (1, 1, k), stride=s, padding=p, output_padding=a,
               dilation=d)
    assert c.additions == int(np.maximum(pattern - 1, 0).sum())


def test_transposed_cost_of_a_huge_signal_is_instant():
    c = A.cost("conv_transpose1d", (1, 2, 10**12), (2, 3, 16), stride=4, padding=6)
    assert c.output_shape == (1, 3, 4 * 10**12)
    assert c.multiplications == 2 * 10**12 * 3 * 16
    # interior outputs get 2 channels x 4 taps = 8 products (7 additions); the borders fewer
    assert 3 * 7 * (4 * 10**12 - 24) < c.additions < 3 * 7 * 4 * 10**12


def test_overlap_pattern_validates_like_the_functions():
    with pytest.raises(ValueError):
        A.overlap_pattern((2, 2), 3, stride=2, output_padding=2)
    with pytest.raises(ValueError):
        A.overlap_pattern((1, 1), 1, padding=1)
    with pytest.raises(ValueError):
        A.overlap_pattern((1, 1, 1, 1), 1)
    with pytest.raises(ValueError):
        A.overlap_pattern((2, 2), (3, 3, 3))


def test_grouped_halves_parameters():
    h = w = 3
    d_in, d_out = 8, 16
    x = (1, d_in, 9, 9)
    full = A.cost("conv2d", x, (d_out, d_in, h, w))
    grouped = A.cost("conv2d", x, (d_out, d_in // 2, h, w), groups=2)
    assert full.parameters == h * w * d_in * d_out
    assert grouped.parameters == (h * w * (d_in // 2) * (d_out // 2)) * 2 == full.parameters // 2
    assert grouped.multiplications * 2 == full.multiplications
    assert grouped.output_shape == full.output_shape


def test_shufflenet_unit_costs():
    """Pointwise grouped conv, shuffle, depthwise, pointwise grouped (a ShuffleNet unit)."""
    x = (1, 240, 28, 28)
    parts = [A.cost("conv2d", x, (60, 80, 1, 1), groups=3),
             A.cost("channel_shuffle", (1, 60, 28, 28), 3),
             A.cost("depthwise_conv2d", (1, 60, 28, 28), (60, 1, 3, 3), padding=1),
             A.cost("conv2d", (1, 60, 28, 28), (240, 20, 1, 1), groups=3)]
    total = sum(parts)
    assert parts[1].multiplications == 0 and parts[1].parameters == 0
    assert parts[1].bytes_moved == 2 * 60 * 28 * 28 * 4
    assert total.multiplications == 28 * 28 * (60 * 80 + 60 * 9 + 240 * 20)
    assert total.output_shape == (1, 240, 28, 28)


@pytest.mark.parametrize("bias", [None, True])
@pytest.mark.parametrize("layout", [None, "NHWC"])
def test_shuffled_grouped_costs_conv2d_plus_a_shuffle(bias, layout):
    """The conv stage costs what conv2d with the same groups costs, bias included (the forward
    adds it before the shuffle); the shuffle stage adds no arithmetic and no parameters, only
    its unfused read and write of the output (bytes_moved counts every stage unfused)."""
    x = (2, 240, 28, 28) if layout is None else (2, 28, 28, 240)
    kw = dict(stride=2, padding=1, bias=bias, layout=layout, itemsize=np.float64)
    conv = A.cost("conv2d", x, (60, 80, 3, 3), groups=3, **kw)
    parts = A.stage_costs("shuffled_grouped_conv2d", x, (60, 80, 3, 3), 3, shuffle_groups=4, **kw)
    assert parts[0] == conv
    assert (parts[1].multiplications, parts[1].additions, parts[1].parameters) == (0, 0, 0)
    assert parts[1].bytes_moved == 2 * math.prod(conv.output_shape) * 8
    total = A.cost("shuffled_grouped_conv2d", x, (60, 80, 3, 3), groups=3, shuffle_groups=4, **kw)
    assert total == sum(parts)
    assert (total.multiplications, total.additions, total.flops, total.parameters) == \
        (conv.multiplications, conv.additions, conv.flops, conv.parameters)
    assert total.parameters == 60 * 80 * 9 + (60 if bias else 0)
    assert total.output_shape == conv.output_shape == \
        A.output_shape("shuffled_grouped_conv2d", x, (60, 80, 3, 3), 3, stride=2, padding=1,
                       layout=layout)
    with pytest.raises(ValueError, match="bias"):   # checked against the conv's C_out
        A.cost("shuffled_grouped_conv2d", x, (60, 80, 3, 3), 3, bias=(61,), layout=layout)


# =========================================================================== the Cost object

def test_cost_object():
    c = A.cost("conv2d", (2, 3, 6, 6), (4, 3, 3, 3), bias=True)
    assert dataclasses.is_dataclass(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.multiplications = 0
    outputs = 2 * 4 * 4 * 4
    assert c.multiplications == outputs * 27
    assert c.additions == c.multiplications - outputs + outputs   # 26 per output + bias
    assert c.flops == 2 * c.multiplications
    assert c.parameters == 4 * 27 + 4
    assert c.bytes_moved == 4 * (2 * 3 * 36 + 4 * 27 + 4 + outputs)
    assert c.arithmetic_intensity == c.flops / c.bytes_moved
    assert c.output_shape == (2, 4, 4, 4)
    r = repr(c)
    assert r.startswith("Cost(multiplications=3_456, additions=3_456, flops=6_912")
    assert "output_shape=(2, 4, 4, 4)" in r and "arithmetic_intensity=" in r
    assert set(dataclasses.asdict(c)) == {"multiplications", "additions", "flops", "parameters",
                                          "output_shape", "bytes_moved", "arithmetic_intensity"}
    nob = A.cost("conv2d", (2, 3, 6, 6), (4, 3, 3, 3))
    assert nob.additions == nob.multiplications - outputs
    assert nob.parameters == 4 * 27


def test_cost_addition():
    a = A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3))
    b = A.cost("conv2d", (1, 5, 6, 6), (7, 5, 1, 1), bias=True)
    s = a + b
    assert s.multiplications == a.multiplications + b.multiplications
    assert s.additions == a.additions + b.additions
    assert s.parameters == a.parameters + b.parameters
    assert s.bytes_moved == a.bytes_moved + b.bytes_moved
    assert s.flops == a.flops + b.flops
    assert s.output_shape == b.output_shape
    assert s.arithmetic_intensity == s.flops / s.bytes_moved
    assert sum([a, b]) == s
    with pytest.raises(TypeError):
        a + 1


def test_cost_itemsize():
    c4 = A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3))
    c8 = A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3), itemsize=8)
    assert c8.bytes_moved == 2 * c4.bytes_moved
    assert A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3), itemsize=np.float64) == c8
    assert A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3), itemsize="float32") == c4
    with pytest.raises(ValueError):
        A.cost("conv2d", (1, 3, 8, 8), (5, 3, 3, 3), itemsize=0)


def test_unfused_bytes_count_the_intermediate():
    x = (1, 3, 7, 7)
    dw, pw = A.stage_costs("separable_conv2d", x, (3, 1, 3, 3), (128, 3, 1, 1), bias=True)
    mid = 3 * 5 * 5
    assert dw.bytes_moved == 4 * (3 * 49 + 27 + mid)
    assert pw.bytes_moved == 4 * (mid + 384 + 128 + 128 * 25)
    assert dw.parameters == 27 and pw.parameters == 384 + 128   # bias in the last stage


def test_cost_takes_the_functions_arguments():
    x, w = np.zeros((1, 3, 9, 9)), np.zeros((4, 3, 3, 3))
    by_kw = A.cost("conv2d", x.shape, w.shape, stride=2, padding=1)
    assert A.cost("conv2d", x, w, None, 2, 1) == by_kw                  # positional, arrays
    assert A.cost(cconv.conv2d, x.shape, w.shape, stride=2, padding=1) == by_kw
    assert A.cost("conv2d", x, weight=w, stride=2, padding=1, algorithm="gemm", out=None) == by_kw
    with_b = A.cost("conv2d", x, w, np.zeros(4), 2, 1)
    assert with_b == A.cost("conv2d", x, w, (4,), 2, 1) == A.cost("conv2d", x, w, True, 2, 1)
    assert with_b.parameters == by_kw.parameters + 4
    assert A.output_shape("separable_conv2d", (1, 3, 9, 9), (6, 1, 3, 3), (8, 6, 1, 1), None, 2,
                          "same", 1, layout="NCHW") == (1, 8, 5, 5)
    assert A.output_shape("channel_shuffle", (2, 4, 4, 6), 3, layout="NHWC") == (2, 4, 4, 6)


@pytest.mark.parametrize("call,exc", [
    (lambda: A.cost("conv4d", (1, 1, 4), (1, 1, 1)), ValueError),
    (lambda: A.cost("plan_conv2d", (1, 1, 4, 4), (1, 1, 1, 1)), ValueError),
    (lambda: A.cost("conv2d", (1, 3, 8, 8)), TypeError),                       # missing weight
    (lambda: A.cost("conv2d", (1, 3, 8, 8), (4, 3, 3, 3), stide=2), TypeError),
    (lambda: A.cost("conv2d", (1, 3, 8, 8), (4, 2, 3, 3)), ValueError),        # channel mismatch
    (lambda: A.cost("conv2d", (1, 3, 8, 8), (4, 3, 3, 3), bias=(5,)), ValueError),
    (lambda: A.cost("conv2d", (1, 3, 8, 8), (4, 3, 3, 3), bias=np.zeros((4, 1))), ValueError),
    (lambda: A.cost("conv2d", (1, 3, 2, 2), (4, 3, 3, 3)), ValueError),        # kernel too big
    (lambda: A.output_shape("conv2d", (1, 3, 8, 8), (4, 3, 3, 3), np.zeros(5)), ValueError),
    (lambda: A.cost("channel_shuffle", (1, 4, 2, 2), 2, bias=True), TypeError),
    (lambda: A.cost("depthwise_conv2d", (1, 4, 5, 5), (4, 1, 3, 3), groups=4), TypeError),
    (lambda: A.output_shape("separable_conv2d", (1, 3, 8, 8), (3, 1, 3, 3), (4, 3, 3, 3)), ValueError),
    (lambda: A.output_shape("channel_shuffle", (1, 5, 4, 4), 2), ValueError),
])
def test_cost_errors(call, exc):
    with pytest.raises(exc):
        call()


# =========================================================================== shapes vs the functions

def _padding(draw, nd, transposed):
    if transposed:
        return draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * nd)))
    return draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * nd),
                          st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd),
                          st.sampled_from(["valid", "same"])))


@st.composite
def calls(draw):
    """(function name, x, weights, kwargs) for any public function; may be invalid."""
    name = draw(st.sampled_from(A.FUNCTIONS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nd = int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else 2
    last = draw(st.booleans())
    layout = R.CHANNELS_LAST[nd] if last else draw(st.sampled_from([None, R.CHANNELS_FIRST[nd]]))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    size = tuple(draw(st.integers(1, 6 if nd < 3 else 4)) for _ in range(nd))
    x = rng.standard_normal((n, *size, c) if last else (n, c, *size))
    kw = dict(layout=layout)
    if name == "channel_shuffle":
        return name, x, [draw(st.integers(1, 4))], kw
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    kw.update(stride=tuple(draw(st.integers(1, 3)) for _ in range(nd)),
              dilation=tuple(draw(st.integers(1, 2)) for _ in range(nd)))
    transposed = name.startswith("conv_transpose")
    kw["padding"] = _padding(draw, nd, transposed)
    bias_c = None
    if name.startswith("conv"):
        g = draw(st.sampled_from([d for d in (1, 2, 3, 4) if c % d == 0]))
        kw["groups"] = g
        co = g * draw(st.integers(1, 3))
        if transposed:
            # mostly valid (a < max(stride, dilation)), sometimes not
            hi = [max(a, b) - 1 for a, b in zip(kw["stride"], kw["dilation"])]
            kw["output_padding"] = tuple(draw(st.integers(0, h if draw(st.integers(0, 3)) else 2))
                                         for h in hi)
            ws = [(c, co // g, *k)]
        else:
            kw["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
            ws = [(co, c // g, *k)]
        bias_c = co
    elif name == "depthwise_conv2d":
        m = draw(st.integers(1, 2))
        ws = [(c * m, 1, *k)]
        bias_c = c * m
    elif name == "separable_conv2d":
        m, co = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        ws = [(c * m, 1, *k), (co, c * m, 1, 1)]
        bias_c = co
    elif name == "spatially_separable_conv2d":
        g = draw(st.sampled_from([d for d in (1, 2) if c % d == 0]))
        kw["groups"] = g
        mid, co = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
        ws = [(mid, c // g, k[0], 1), (co, mid // g, 1, k[1])]
        bias_c = co
    elif name == "shuffled_grouped_conv2d":
        g = draw(st.sampled_from([d for d in (1, 2, 3, 4) if c % d == 0]))
        co = g * draw(st.integers(1, 3))
        kw.update(groups=g, shuffle_groups=draw(st.sampled_from([None, 1, 2, 3])),  # may not divide
                  padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])))
        ws = [(co, c // g, *k)]
        bias_c = co
    else:  # flattened
        co = draw(st.integers(1, 3))
        ws = [(co, c), (co, k[0]), (co, k[1])]
        bias_c = co
    weights = [rng.standard_normal(s) for s in ws]
    if draw(st.booleans()):   # sometimes of the wrong length
        kw["bias"] = rng.standard_normal(bias_c + (draw(st.integers(0, 5)) == 0))
    return name, x, weights, kw


@given(calls())
def test_output_shape_matches_the_functions(call):
    name, x, weights, kw = call
    fn = getattr(cconv, name)
    try:
        y = fn(x, *weights, **kw)
    except ValueError:
        with pytest.raises(ValueError):
            A.output_shape(name, x.shape, *[np.shape(w) for w in weights], **kw)
        with pytest.raises(ValueError):
            A.cost(name, x, *weights, **kw)
        return
    shapes = [w if name == "channel_shuffle" else np.shape(w) for w in weights]
    assert A.output_shape(name, x.shape, *shapes, **kw) == y.shape
    assert A.output_shape(fn, x, *weights, **kw) == y.shape
    c = A.cost(name, x, *weights, **kw)
    assert c.output_shape == y.shape
    params = sum(np.size(w) for w in weights) if name != "channel_shuffle" else 0
    if kw.get("bias") is not None:
        params += kw["bias"].size
    assert c.parameters == params


# =========================================================================== naive counting

class Counter:
    def __init__(self):
        self.mul = 0
        self.add = 0

    def times(self, a, b):
        self.mul += 1
        return a * b

    def plus(self, a, b):
        self.add += 1
        return a + b


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def naive_conv(cnt, x, w, bias=None, stride=1, pad_before=0, pad_after=0, dilation=1, groups=1):
    """Channels-first gather convolution with zero padding, scalar by scalar; every tap is
    multiplied (padding included) and summed left to right, then the bias is added."""
    nd = x.ndim - 2
    s, d, pb, pa = (_tup(v, nd) for v in (stride, dilation, pad_before, pad_after))
    n, ci = x.shape[:2]
    co, cig = w.shape[:2]
    k = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(pb, pa)))
    out = tuple((xp.shape[2 + a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(nd))
    y = np.zeros((n, co, *out))
    cog = co // groups
    for b, o in itertools.product(range(n), range(co)):
        g = o // cog
        for p in itertools.product(*map(range, out)):
            acc = None
            for c in range(cig):
                for t in itertools.product(*map(range, k)):
                    idx = tuple(p[a] * s[a] + t[a] * d[a] for a in range(nd))
                    v = cnt.times(xp[(b, g * cig + c) + idx], w[(o, c) + t])
                    acc = v if acc is None else cnt.plus(acc, v)
            if bias is not None:
                acc = cnt.plus(acc, bias[o])
            y[(b, o) + p] = acc
    return y


def naive_conv_transpose(cnt, x, w, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                         groups=1):
    """Scatter definition: every (input element, tap) product is formed; it is added into the
    output only where it lands inside the cropped output."""
    nd = x.ndim - 2
    s, d, p, op = (_tup(v, nd) for v in (stride, dilation, padding, output_padding))
    n, ci = x.shape[:2]
    cog = w.shape[1]
    k = w.shape[2:]
    cig = ci // groups
    out = tuple(s[a] * (x.shape[2 + a] - 1) + d[a] * (k[a] - 1) + 1 + op[a] - 2 * p[a]
                for a in range(nd))
    y = np.zeros((n, cog * groups, *out))
    seen = np.zeros(y.shape, bool)
    for b, c in itertools.product(range(n), range(ci)):
        g = c // cig
        for i in itertools.product(*map(range, x.shape[2:])):
            for o in range(cog):
                for t in itertools.product(*map(range, k)):
                    v = cnt.times(x[(b, c) + i], w[(c, o) + t])
                    pos = tuple(i[a] * s[a] + t[a] * d[a] - p[a] for a in range(nd))
                    if all(0 <= pos[a] < out[a] for a in range(nd)):
                        at = (b, g * cog + o) + pos
                        y[at] = cnt.plus(y[at], v) if seen[at] else v
                        seen[at] = True
    if bias is not None:
        for at in itertools.product(*map(range, y.shape)):
            y[at] = cnt.plus(y[at], bias[at[1]])
    return y


def _resolved_padding(padding, nd, size, kernel, stride, dilation):
    return R.normalize_padding(padding, nd, size, kernel, _tup(stride, nd), _tup(dilation, nd))


@st.composite
def small_conv(draw, transposed=False):
    nd = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    smax = {1: 6, 2: 4, 3: 3}[nd]
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    g = draw(st.integers(1, 2))
    ci, co = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    if transposed:
        size = tuple(draw(st.integers(1, smax)) for _ in range(nd))
        op = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
        pad = tuple(min(draw(st.integers(0, 2)), (sa * (i - 1) + a + da * (ka - 1)) // 2)
                    for i, ka, sa, da, a in zip(size, k, s, d, op))
        w = rng.standard_normal((ci, co // g, *k))
        kw = dict(stride=s, padding=pad, output_padding=op, dilation=d, groups=g)
    else:
        pad = _padding(draw, nd, False)
        if isinstance(pad, str):
            lo = [dd * (kk - 1) + 1 if pad == "valid" else 1 for kk, dd in zip(k, d)]
        else:
            b, a = R.normalize_padding(pad, nd)
            lo = [max(1, dd * (kk - 1) + 1 - bb - aa) for kk, dd, bb, aa in zip(k, d, b, a)]
        size = tuple(lo_ + draw(st.integers(0, 2)) for lo_ in lo)
        if any(v > smax + 2 for v in size):
            size = tuple(min(v, smax + 2) for v in size)
        w = rng.standard_normal((co, ci // g, *k))
        kw = dict(stride=s, padding=pad, dilation=d, groups=g)
    x = rng.standard_normal((n, ci, *size))
    bias = rng.standard_normal(co) if draw(st.booleans()) else None
    return nd, x, w, bias, kw


@given(small_conv())
def test_cost_counts_a_naive_convolution(case):
    nd, x, w, bias, kw = case
    try:
        expected = getattr(cconv, f"conv{nd}d")(x, w, bias, **kw)
    except ValueError:
        return  # a kernel larger than the (clipped) input: nothing to count
    pb, pa = _resolved_padding(kw["padding"], nd, x.shape[2:], w.shape[2:], kw["stride"], kw["dilation"])
    cnt = Counter()
    y = naive_conv(cnt, x, w, bias, kw["stride"], pb, pa, kw["dilation"], kw["groups"])
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    c = A.cost(f"conv{nd}d", x, w, bias, **kw)
    assert (c.multiplications, c.additions) == (cnt.mul, cnt.add)
    assert c.flops == 2 * cnt.mul


@given(small_conv(transposed=True))
def test_cost_counts_a_naive_transposed_convolution(case):
    nd, x, w, bias, kw = case
    expected = getattr(cconv, f"conv_transpose{nd}d")(x, w, bias, **kw)
    cnt = Counter()
    y = naive_conv_transpose(cnt, x, w, bias, **kw)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    c = A.cost(f"conv_transpose{nd}d", x, w, bias, **kw)
    assert (c.multiplications, c.additions) == (cnt.mul, cnt.add)
    # the formula the docstring states
    n, ci = x.shape[:2]
    assert c.multiplications == n * ci * math.prod(x.shape[2:]) * w.shape[1] * math.prod(w.shape[2:])


@st.composite
def small_composite(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    name = draw(st.sampled_from(["depthwise_conv2d", "separable_conv2d",
                                 "spatially_separable_conv2d", "flattened_conv2d"]))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = _padding(draw, 2, False)
    c = draw(st.integers(1, 3))
    size = tuple(dd * (kk - 1) + 1 + draw(st.integers(0, 2)) for kk, dd in zip(k, d))
    x = rng.standard_normal((draw(st.integers(1, 2)), c, *size))
    kw = dict(stride=s, padding=pad, dilation=d)
    co = draw(st.integers(1, 3))
    if name == "depthwise_conv2d":
        m = draw(st.integers(1, 2))
        ws, co = [(c * m, 1, *k)], c * m
    elif name == "separable_conv2d":
        m = draw(st.integers(1, 2))
        ws = [(c * m, 1, *k), (co, c * m, 1, 1)]
    elif name == "spatially_separable_conv2d":
        ws = [(draw(st.integers(1, 3)), c, k[0], 1), None]
        ws[1] = (co, ws[0][0], 1, k[1])
    else:
        ws = [(co, c), (co, k[0]), (co, k[1])]
    weights = [rng.standard_normal(sh) for sh in ws]
    bias = rng.standard_normal(co) if draw(st.booleans()) else None
    return name, x, weights, bias, kw


def naive_composite(cnt, name, x, weights, bias, stride, padding, dilation):
    """The composite functions from their definitions, each pass a naive counting conv."""
    k = (weights[0].shape[2], weights[-1].shape[3]) if name == "spatially_separable_conv2d" else (
        (weights[1].shape[1], weights[2].shape[1]) if name == "flattened_conv2d" else weights[0].shape[2:])
    (pt, pl), (pbm, pr) = _resolved_padding(padding, 2, x.shape[2:], k, stride, dilation)
    sh, sw = stride
    dh, dw = dilation
    c = x.shape[1]
    if name == "depthwise_conv2d":
        return naive_conv(cnt, x, weights[0], bias, stride, (pt, pl), (pbm, pr), dilation, c)
    if name == "separable_conv2d":
        mid = naive_conv(cnt, x, weights[0], None, stride, (pt, pl), (pbm, pr), dilation, c)
        return naive_conv(cnt, mid, weights[1], bias)
    if name == "spatially_separable_conv2d":
        mid = naive_conv(cnt, x, weights[0], None, (sh, 1), (pt, 0), (pbm, 0), (dh, 1))
        return naive_conv(cnt, mid, weights[1], bias, (1, sw), (0, pl), (0, pr), (1, dw))
    ch, v, h = weights
    co = ch.shape[0]
    mid = naive_conv(cnt, x, ch[:, :, None, None])
    mid = naive_conv(cnt, mid, v[:, None, :, None], None, (sh, 1), (pt, 0), (pbm, 0), (dh, 1), co)
    return naive_conv(cnt, mid, h[:, None, None, :], bias, (1, sw), (0, pl), (0, pr), (1, dw), co)


@given(small_composite())
def test_cost_counts_naive_composites(case):
    name, x, weights, bias, kw = case
    try:
        expected = getattr(cconv, name)(x, *weights, bias, **kw)
    except ValueError:
        return
    cnt = Counter()
    y = naive_composite(cnt, name, x, weights, bias, **kw)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    c = A.cost(name, x, *weights, bias, **kw)
    assert (c.multiplications, c.additions) == (cnt.mul, cnt.add)
    assert c == sum(A.stage_costs(name, x, *weights, bias, **kw))


# =========================================================================== the tutorial

def test_tutorial_output_is_current():
    """docs/tutorial.md shows the output its code prints (examples/tutorial_article.py --check)."""
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "examples", "tutorial_article.py")
    assert os.path.exists(script) and os.path.exists(os.path.join(root, "docs", "tutorial.md"))
    spec = importlib.util.spec_from_file_location("tutorial_article", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.run(check=True, echo=False) == 0
