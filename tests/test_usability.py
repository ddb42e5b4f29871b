"""What a new user trips over: error messages that say what to do, plans that take any batch size
and never round silently, "symmetric" padding, the lossy-algorithm switch, decompose's output
fed straight into the separable convolution, torch.nn.grad's keyword names."""
import contextvars
import inspect
import itertools
import threading

import numpy as np
import pytest

import reference as R
from helpers import use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
from cconv import decompose as D, grad as G  # noqa: E402

RNG = np.random.default_rng(20261206)


def _rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ messages

def test_shape_arguments_given_an_array_name_it_without_printing_it():
    x, w = _rand(2, 3, 40, 40), _rand(4, 3, 3, 3)
    g = _rand(2, 4, 38, 38)
    calls = [
        (lambda: cconv.plan_conv2d(x, w), "x_shape", "x.shape"),
        (lambda: G.conv2d_input(x, w, g), "input_shape", "input.shape"),
        (lambda: G.conv2d_weight(x, w, g), "weight_shape", "weight.shape"),
        (lambda: G.depthwise_conv2d_input(x, _rand(3, 1, 3, 3), g), "input_shape", "input.shape"),
        (lambda: G.conv_transpose2d_weight(g, w, x), "weight_shape", "weight.shape"),
    ]
    for call, name, hint in calls:
        with pytest.raises(TypeError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(name) and f"pass {hint}" in msg and "numpy.ndarray" in msg, msg
        assert len(msg) < 200, msg  # the array itself is not in it
    with pytest.raises(TypeError, match=r"^input_shape must be a shape"):
        G.conv2d_input((2, 3.0, 40, 40), w, g)
    with pytest.raises(TypeError, match=r"^input_shape must be a shape .*got NoneType"):
        G.conv2d_input(None, w, g)
    # a 1-D array of sizes is a shape
    np.testing.assert_array_equal(G.conv2d_input(np.array(x.shape), w, g),
                                  G.conv2d_input(x.shape, w, g))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_channels_last_array_without_layout_suggests_it(nd):
    first, last = cconv._api.LAYOUTS[nd]
    conv = getattr(cconv, f"conv{nd}d")
    x_last = _rand(2, *(5,) * nd, 3)
    w = _rand(4, 3, *(3,) * nd)
    with pytest.raises(ValueError, match=f"did you mean layout='{last}'"):
        conv(x_last, w)
    with pytest.raises(ValueError, match=f"did you mean layout='{first}'"):
        conv(np.moveaxis(x_last, -1, 1), w, layout=last)
    tconv = getattr(cconv, f"conv_transpose{nd}d")
    with pytest.raises(ValueError, match=f"did you mean layout='{last}'"):
        tconv(x_last, _rand(3, 4, *(3,) * nd))
    with pytest.raises(ValueError) as e:  # no channel count fits: no hint
        conv(_rand(2, 2, *(5,) * nd), w)
    assert "layout" not in str(e.value)
    assert conv(x_last, w, layout=last).shape == (2, *(3,) * nd, 4)


def test_each_refused_algorithm_gives_its_own_reason():
    x = _rand(1, 16, 12, 12)
    cases = [
        (dict(algorithm="winograd", stride=2), "stride 1"),
        (dict(algorithm="winograd", groups=2, weight=(8, 8, 3, 3)), "groups=1"),
        (dict(algorithm="winograd", weight=(8, 16, 5, 5)), "3x3"),
        (dict(algorithm="depthwise"), "one input channel per group"),
        (dict(algorithm="grouped"), "1 to 8 input channels per group"),
    ]
    for kw, reason in cases:
        w = _rand(*kw.pop("weight", (8, 16, 3, 3)))
        with pytest.raises(ValueError) as e:
            cconv.conv2d(x, w, **kw)
        msg = str(e.value)
        assert f"algorithm '{kw['algorithm']}' cannot run this convolution" in msg, msg
        assert reason in msg, msg
        if kw["algorithm"] != "depthwise":
            assert "depthwise" not in msg, msg
    with pytest.raises(ValueError, match="forward convolutions only"):
        cconv.conv_transpose2d(x, _rand(16, 4, 3, 3), algorithm="depthwise")
    with pytest.raises(ValueError, match="stride 1 in every dimension for a transposed"):
        cconv.conv_transpose2d(x, _rand(16, 4, 3, 3), stride=2, algorithm="winograd")
