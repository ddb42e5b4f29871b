"""Reusable plans (cconv.plan_conv*d / ConvPlan) and the ``algorithm=`` choice:
a plan gives the same bits as the one-shot function, owns its weights, checks
its input shape, and may run from several threads at once."""

import concurrent.futures
import math

import numpy as np
import pytest
from hypothesis import given

import reference as R
from helpers import conv_cases, rand, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")


@given(case=conv_cases())
def test_plan_matches_function(case, isa):
    nd = case.nd
    rng = np.random.default_rng(case.seed)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), case.x_dtype)
    b = rand(rng, (case.c_out,), case.x_dtype) if case.bias else None
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
              padding_mode=case.padding_mode, layout=case.layout)
    with use_isa(isa):
        plan = getattr(cconv, f"plan_conv{nd}d")(x.shape, w, b, **kw)
        y_fn = getattr(cconv, f"conv{nd}d")(x, w, b, **kw)
    y = plan(x)
    assert y.dtype == case.x_dtype and plan.out_shape == y.shape
    np.testing.assert_array_equal(y, y_fn)
    R.assert_conv_close(y, getattr(R, f"conv{nd}d")(x, w, b, **kw),
                        R.magnitude(getattr(R, f"conv{nd}d"), x, w, b, **kw), case.x_dtype,
                        case.c_in // case.groups * math.prod(case.kernel))
    assert isinstance(plan.algorithm, str) and plan.algorithm
    assert plan.weight_bytes >= 0 and plan.workspace_bytes >= 0
    assert "ConvPlan" in repr(plan)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_transposed_plan_matches_function(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 6) + (4,) * nd)
    w = rng.standard_normal((6, 2) + (3,) * nd)
    b = rng.standard_normal(6)
    kw = dict(stride=2, padding=1, output_padding=1, groups=3)
    plan = getattr(cconv, f"plan_conv_transpose{nd}d")(x.shape, w, b, **kw)
    np.testing.assert_array_equal(plan(x), getattr(cconv, f"conv_transpose{nd}d")(x, w, b, **kw))


def test_plan_owns_its_weights():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 8, 8))
    w = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    plan = cconv.plan_conv2d(x.shape, w, b, padding=1)
    expected = R.conv2d(x, w, b, padding=1)
    w[...] = 0.0
    b[...] = 0.0
    del w, b
    R.assert_conv_close(plan(x), expected, R.magnitude(R.conv2d, x, np.ones((5, 4, 3, 3)) * 10, None, padding=1),
                        np.float64, 36)


def test_plan_checks_input_shape_and_out():
    w = np.ones((2, 3, 3, 3))
    plan = cconv.plan_conv2d((1, 3, 6, 6), w)
    with pytest.raises(ValueError, match=r"\bx\b"):
        plan(np.ones((1, 3, 7, 6)))
    with pytest.raises(ValueError, match=r"\bout\b"):
        plan(np.ones((1, 3, 6, 6)), out=np.empty((1, 2, 3, 3)))
    out = np.empty((1, 2, 4, 4))
    assert plan(np.ones((1, 3, 6, 6)), out=out) is out
    np.testing.assert_array_equal(out, 27.0)


def test_plan_dtype_argument():
    w = np.ones((2, 3, 3, 3))
    plan = cconv.plan_conv2d((1, 3, 5, 5), w, dtype=np.float32)
    y = plan(np.ones((1, 3, 5, 5), np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, 27.0)
    with pytest.raises(TypeError, match=r"x.astype\(np.float32\)"):  # never rounded silently
        plan(np.ones((1, 3, 5, 5)))


def test_one_plan_from_many_threads(isa):
    rng = np.random.default_rng(2)
    with use_isa(isa):
        plan = cconv.plan_conv2d((2, 16, 20, 20), rng.standard_normal((24, 16, 3, 3)).astype(np.float32), padding=1)
    xs = [rng.standard_normal((2, 16, 20, 20)).astype(np.float32) for _ in range(12)]
    serial = [plan(x) for x in xs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(plan, xs * 2))
    for i, y in enumerate(got):
        np.testing.assert_array_equal(y, serial[i % len(xs)])


@pytest.mark.parametrize("algorithm", ["auto", "gemm", "reference"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_every_algorithm_every_dim(algorithm, nd, isa):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 6) + (7,) * nd).astype(np.float32)
    w = rng.standard_normal((9, 3) + (3,) * nd).astype(np.float32)
    wt = rng.standard_normal((6, 2) + (3,) * nd).astype(np.float32)
    kw = dict(stride=2, padding=1, dilation=1, groups=3)
    ktw = dict(stride=2, padding=1, output_padding=1, groups=3)
    with use_isa(isa):
        y = getattr(cconv, f"conv{nd}d")(x, w[:, :2], algorithm=algorithm, **kw)
        yt = getattr(cconv, f"conv_transpose{nd}d")(x, wt, algorithm=algorithm, **ktw)
    R.assert_conv_close(y, getattr(R, f"conv{nd}d")(x, w[:, :2], **kw),
                        R.magnitude(getattr(R, f"conv{nd}d"), x, w[:, :2], **kw), np.float32, 2 * 3**nd)
    R.assert_conv_close(yt, getattr(R, f"conv_transpose{nd}d")(x, wt, **ktw),
                        R.magnitude(getattr(R, f"conv_transpose{nd}d"), x, wt, **ktw), np.float32, 2 * 3**nd)
    assert yt.shape[2:] == (14,) * nd


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_depthwise_algorithm(layout, isa):
    rng = np.random.default_rng(3)
    x = R.from_channels_first(rng.standard_normal((2, 8, 9, 9)), layout)
    w = rng.standard_normal((8, 1, 3, 3))
    with use_isa(isa):
        y = cconv.conv2d(x, w, padding=1, groups=8, layout=layout, algorithm="depthwise")
    R.assert_conv_close(y, R.conv2d(x, w, padding=1, groups=8, layout=layout),
                        R.magnitude(R.conv2d, x, w, padding=1, groups=8, layout=layout), np.float64, 9)


@pytest.mark.parametrize("n", [0, 2])
def test_unsupported_algorithm_is_rejected_whatever_the_batch(n):
    """Validation must not depend on whether there is work to do (N = 0)."""
    x = np.ones((n, 4, 5, 5))
    w = np.ones((4, 4, 3, 3))
    with pytest.raises(ValueError, match="algorithm"):
        cconv.conv2d(x, w, algorithm="depthwise")
    with pytest.raises(ValueError, match="algorithm"):
        cconv.conv_transpose2d(x, w, algorithm="depthwise")
    with pytest.raises(ValueError, match="algorithm"):
        cconv.conv2d(x, w, algorithm="fastest")
