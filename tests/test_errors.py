"""Bad input: every error is a Python exception of the documented type whose
message names the offending argument; never a crash, never a silent result."""

import numpy as np
import pytest

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

rng = np.random.default_rng(0)
X1 = rng.standard_normal((2, 4, 9))
X2 = rng.standard_normal((2, 4, 7, 8))
X3 = rng.standard_normal((1, 4, 5, 5, 5))
W1 = rng.standard_normal((6, 4, 3))
W2 = rng.standard_normal((6, 4, 3, 3))
W3 = rng.standard_normal((6, 4, 3, 3, 3))
WT2 = rng.standard_normal((4, 6, 3, 3))  # transposed: (C_in, C_out/g, kh, kw)
DW = rng.standard_normal((8, 1, 3, 3))  # depthwise, C=4, m=2
PW = rng.standard_normal((5, 8, 1, 1))
VW = rng.standard_normal((6, 4, 3, 1))
HW = rng.standard_normal((5, 6, 1, 3))
CH, FV, FH = rng.standard_normal((5, 4)), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))


def conv2d(**kw):
    return lambda: cconv.conv2d(kw.pop("x", X2), kw.pop("w", W2), **kw)


def convt2d(**kw):
    return lambda: cconv.conv_transpose2d(kw.pop("x", X2), kw.pop("w", WT2), **kw)


VE = ValueError
CASES = {
    # ranks
    "x rank 3 for conv2d": (conv2d(x=X1), VE, r"(?i)\bx\b|input"),
    "x rank 5 for conv2d": (conv2d(x=X3), VE, r"(?i)\bx\b|input"),
    "weight rank": (conv2d(w=W1), VE, r"weight"),
    "conv1d weight rank": (lambda: cconv.conv1d(X1, W2), VE, r"weight"),
    "conv3d x rank": (lambda: cconv.conv3d(X2, W3), VE, r"(?i)\bx\b|input"),
    "0-d x": (conv2d(x=np.float64(1.0)), VE, r"(?i)\bx\b|input"),
    "transposed weight rank": (convt2d(w=W1), VE, r"weight"),
    # channels and groups
    "channel mismatch": (conv2d(w=rng.standard_normal((6, 3, 3, 3))), VE, r"weight|channel"),
    "groups does not divide C_in": (conv2d(w=rng.standard_normal((6, 2, 3, 3)), groups=3), VE, r"groups"),
    "groups does not divide C_out": (conv2d(w=rng.standard_normal((5, 2, 3, 3)), groups=2), VE, r"groups"),
    "groups zero": (conv2d(groups=0), VE, r"groups"),
    "groups negative": (conv2d(groups=-2), VE, r"groups"),
    "transposed channel mismatch": (convt2d(w=rng.standard_normal((5, 6, 3, 3))), VE, r"weight|channel"),
    "transposed groups": (convt2d(groups=3), VE, r"groups"),
    "empty kernel": (conv2d(w=np.zeros((6, 4, 0, 3))), VE, r"weight|kernel"),
    "empty spatial input": (conv2d(x=np.zeros((2, 4, 0, 8))), VE, r"(?i)\bx\b|input|kernel|weight"),
    # geometry
    "kernel larger than padded input": (conv2d(w=rng.standard_normal((6, 4, 9, 3))), VE,
                                        r"(?i)kernel|weight|input|padding"),
    "dilated kernel too large": (conv2d(dilation=5), VE, r"(?i)kernel|weight|input|dilation"),
    "stride zero": (conv2d(stride=0), VE, r"stride"),
    "stride negative": (conv2d(stride=(1, -1)), VE, r"stride"),
    "stride wrong length": (conv2d(stride=(1, 1, 1)), VE, r"stride"),
    "dilation zero": (conv2d(dilation=0), VE, r"dilation"),
    "dilation negative": (conv2d(dilation=(-1, 1)), VE, r"dilation"),
    "padding negative": (conv2d(padding=-1), VE, r"padding"),
    "padding pair negative": (conv2d(padding=((0, -1), (1, 1))), VE, r"padding"),
    "padding wrong length": (conv2d(padding=(1, 1, 1)), VE, r"padding"),
    "padding bad string": (conv2d(padding="full"), VE, r"padding"),
    "padding bad pair": (conv2d(padding=((1, 2, 3), (1, 1))), VE, r"padding"),
    "reflect padding = input size": (conv2d(x=X2[:, :, :3, :3], padding=3, padding_mode="reflect"), VE,
                                     r"padding|reflect"),
    "reflect padding > input size": (conv2d(x=X2[:, :, :3, :3], padding=((0, 0), (4, 0)),
                                            padding_mode="reflect"), VE, r"padding|reflect"),
    "bad padding_mode": (conv2d(padding_mode="mirror"), VE, r"padding_mode"),
    "transposed padding same": (convt2d(padding="same"), (ValueError, TypeError), r"padding"),
    "transposed padding negative": (convt2d(padding=-1), VE, r"padding"),
    "transposed output empty": (convt2d(x=X2[:, :, :1, :1], padding=3), VE, r"(?i)padding|output"),
    "output_padding too large": (convt2d(stride=2, output_padding=2), VE, r"output_padding"),
    "output_padding negative": (convt2d(stride=2, output_padding=-1), VE, r"output_padding"),
    "transposed stride zero": (convt2d(stride=0), VE, r"stride"),
    "transposed dilation zero": (convt2d(dilation=0), VE, r"dilation"),
    # layout
    "bad layout": (conv2d(layout="NHCW"), VE, r"layout"),
    "layout for other rank": (conv2d(layout="NCW"), VE, r"layout"),
    "layout lower-case nonsense": (conv2d(layout="abcd"), VE, r"layout"),
    "conv1d 3d layout": (lambda: cconv.conv1d(X1, W1, layout="NCDHW"), VE, r"layout"),
    "shuffle bad layout": (lambda: cconv.channel_shuffle(X2, 2, layout="NCW"), VE, r"layout"),
    # bias
    "bias wrong length": (conv2d(bias=np.zeros(5)), VE, r"bias"),
    "bias 2-d": (conv2d(bias=np.zeros((6, 1))), VE, r"bias"),
    "transposed bias wrong length": (convt2d(bias=np.zeros(4)), VE, r"bias"),
    # out=
    "out wrong shape": (conv2d(out=np.zeros((2, 6, 5, 5))), VE, r"\bout\b"),
    "out wrong dtype": (conv2d(out=np.zeros((2, 6, 5, 6), np.float32)), (ValueError, TypeError), r"\bout\b"),
    "out not an array": (conv2d(out=[[0.0]]), (ValueError, TypeError), r"\bout\b"),
    "out read-only": (conv2d(out=np.broadcast_to(np.zeros(1), (2, 6, 5, 6))), VE, r"\bout\b"),
    # dtypes
    "complex x": (conv2d(x=X2.astype(np.complex128)), TypeError, r"(?i)\bx\b|input|complex|dtype"),
    "complex weight": (conv2d(w=W2.astype(np.complex64)), TypeError, r"(?i)weight|complex|dtype"),
    "complex bias": (conv2d(bias=np.zeros(6, np.complex128)), TypeError, r"(?i)bias|complex|dtype"),
    "object x": (conv2d(x=X2.astype(object)), TypeError, r"(?i)\bx\b|input|object|dtype"),
    "string x": (conv2d(x=np.full((2, 4, 7, 8), "a")), TypeError, r"(?i)\bx\b|input|str|dtype"),
    "bytes weight": (conv2d(w=np.full((6, 4, 3, 3), b"a")), TypeError, r"(?i)weight|dtype|bytes|S1"),
    "datetime x": (conv2d(x=np.zeros((2, 4, 7, 8), "datetime64[s]")), TypeError, r"(?i)\bx\b|input|dtype"),
    # variants
    "depthwise weight not (C*m,1,k,k)": (lambda: cconv.depthwise_conv2d(X2, rng.standard_normal((8, 2, 3, 3))),
                                         VE, r"weight"),
    "depthwise weight not multiple of C": (lambda: cconv.depthwise_conv2d(X2, rng.standard_normal((6, 1, 3, 3))),
                                           VE, r"weight|channel"),
    "separable pointwise channels": (lambda: cconv.separable_conv2d(X2, DW, rng.standard_normal((5, 7, 1, 1))),
                                     VE, r"pointwise"),
    "separable pointwise not 1x1": (lambda: cconv.separable_conv2d(X2, DW, rng.standard_normal((5, 8, 3, 3))),
                                    VE, r"pointwise"),
    "separable depthwise bad": (lambda: cconv.separable_conv2d(X2, rng.standard_normal((8, 2, 3, 3)), PW),
                                VE, r"depthwise"),
    "separable bias": (lambda: cconv.separable_conv2d(X2, DW, PW, np.zeros(8)), VE, r"bias"),
    "spatial vertical not kx1": (lambda: cconv.spatially_separable_conv2d(X2, rng.standard_normal((6, 4, 3, 2)), HW),
                                 VE, r"vertical"),
    "spatial horizontal not 1xk": (lambda: cconv.spatially_separable_conv2d(X2, VW, rng.standard_normal((5, 6, 2, 3))),
                                   VE, r"horizontal"),
    "spatial mid channels": (lambda: cconv.spatially_separable_conv2d(X2, VW, rng.standard_normal((5, 4, 1, 3))),
                             VE, r"horizontal|channel"),
    "spatial groups": (lambda: cconv.spatially_separable_conv2d(X2, VW, HW, groups=3), VE, r"groups"),
    "flattened channel_weight": (lambda: cconv.flattened_conv2d(X2, rng.standard_normal((5, 3)), FV, FH),
                                 VE, r"channel_weight"),
    "flattened vertical rows": (lambda: cconv.flattened_conv2d(X2, CH, rng.standard_normal((4, 3)), FH),
                                VE, r"vertical"),
    "flattened horizontal rank": (lambda: cconv.flattened_conv2d(X2, CH, FV, rng.standard_normal((5, 3, 1))),
                                  VE, r"horizontal"),
    "shuffle groups do not divide": (lambda: cconv.channel_shuffle(X2, 3), VE, r"groups"),
    "shuffle groups zero": (lambda: cconv.channel_shuffle(X2, 0), VE, r"groups"),
    "shuffle rank": (lambda: cconv.channel_shuffle(np.zeros((2, 4)), 2), VE, r"(?i)\bx\b|input|layout"),
    "shuffle complex": (lambda: cconv.channel_shuffle(X2.astype(complex), 2), TypeError,
                        r"(?i)\bx\b|input|complex|dtype"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name):
    fn, exc, pattern = CASES[name]
    with pytest.raises(exc, match=pattern):
        fn()


@pytest.mark.parametrize("bad", [1.5, "2", (1, 2.5), np.float64(2.0), [1], object()])
def test_non_integer_stride(bad):
    with pytest.raises((TypeError, ValueError), match="stride"):
        cconv.conv2d(X2, W2, stride=bad)


def test_numpy_integer_arguments_are_accepted():
    y = cconv.conv2d(X2, W2, stride=np.int64(2), padding=(np.int32(1), 1), dilation=np.uint8(1),
                     groups=np.int16(1))
    assert y.shape == (2, 6, 4, 4)


@pytest.mark.parametrize(
    "make",
    [
        # output spatial product overflows int64
        lambda: cconv.conv_transpose2d(np.ones((1, 1, 2, 2), np.float32), np.ones((1, 1, 1, 1), np.float32),
                                       stride=2**40),
        lambda: cconv.conv_transpose3d(np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 1, 1, 1)), stride=2**30),
        # kernel extent overflows
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), dilation=2**62),
        # padded size overflows
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), padding=2**62),
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), padding=(2**31, 2**31)),
        # arguments that do not fit in int64 at all
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), stride=2**70),
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), padding=2**64 + 1),
    ],
)
def test_size_overflow_is_an_error(make):
    """Products of sizes that overflow int64: ValueError (or MemoryError), never a crash or wrap-around."""
    with pytest.raises((ValueError, MemoryError, OverflowError)) as info:
        make()
    msg = str(info.value)
    assert msg, "error has no message"


def test_overflow_error_type_is_value_or_memory_error():
    """The issue asks for ValueError/MemoryError; a bare OverflowError from int conversion is not it."""
    with pytest.raises((ValueError, MemoryError)):
        cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), stride=2**70)


@pytest.mark.parametrize(
    "make",
    [
        # ~2**48 elements: beyond any address space, fails fast whatever the overcommit policy
        lambda: cconv.conv_transpose2d(np.ones((1, 1, 2, 2), np.float32), np.ones((1, 1, 1, 1), np.float32),
                                       stride=2**24),
        lambda: cconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), padding=2**23),
        lambda: cconv.conv_transpose1d(np.ones((1, 2**20, 2)), np.ones((2**20, 1, 1)), stride=2**40),
    ],
)
def test_output_too_large_to_allocate(make):
    with pytest.raises((MemoryError, ValueError)):
        make()


def test_out_overlapping_input_is_rejected():
    x = rng.standard_normal((1, 3, 5, 5))
    w = rng.standard_normal((3, 3, 1, 1))
    with pytest.raises(ValueError, match=r"\bout\b"):
        cconv.conv2d(x, w, out=x)
    # a view sharing memory with x
    big = rng.standard_normal((1, 6, 5, 5))
    with pytest.raises(ValueError, match=r"\bout\b"):
        cconv.conv2d(big[:, :3], w, out=big[:, 2:5][:, ::-1])
    # overlapping the weight or the bias
    w2 = np.zeros((1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"\bout\b"):
        cconv.conv2d(np.ones((1, 1, 9, 9)), w2, out=w2)


def test_zero_input_channels_give_bias_or_error():
    """C_in = 0: an empty sum (the bias) or a ValueError naming the channels; never a crash."""
    try:
        y = cconv.conv2d(np.zeros((1, 0, 5, 5)), np.zeros((2, 0, 3, 3)), np.array([1.0, 2.0]))
    except ValueError as e:
        assert "channel" in str(e) or "x" in str(e) or "weight" in str(e)
    else:
        assert y.shape == (1, 2, 3, 3)
        np.testing.assert_array_equal(y[0, 1], 2.0)


def test_errors_do_not_modify_inputs_or_out():
    x = rng.standard_normal((1, 4, 7, 8))
    w = rng.standard_normal((6, 4, 3, 3))
    out = np.full((1, 6, 5, 6), 7.0)
    xc, wc = x.copy(), w.copy()
    with pytest.raises(ValueError):
        cconv.conv2d(x, w, bias=np.zeros(3), out=out)
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(w, wc)
    assert np.all(out == 7.0)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        cconv.conv2d(X2, W2, strides=2)
    with pytest.raises(TypeError):
        cconv.conv_transpose2d(X2, WT2, padding_mode="reflect")


def test_layout_and_padding_mode_are_keyword_only():
    with pytest.raises(TypeError):
        cconv.conv2d(X2, W2, None, 1, 0, 1, 1, "zeros")


def test_error_messages_name_shapes():
    with pytest.raises(ValueError) as info:
        cconv.conv2d(X2, rng.standard_normal((6, 3, 3, 3)))
    msg = str(info.value)
    assert "3" in msg and "4" in msg, msg
