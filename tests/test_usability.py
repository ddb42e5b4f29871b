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
    first, last = cconv._geometry.LAYOUTS[nd]
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


# ------------------------------------------------------------------ ConvPlan

def test_plan_never_rounds_its_input_to_a_narrower_dtype():
    w = _rand(4, 3, 3, 3)
    p32 = cconv.plan_conv2d((2, 3, 9, 9), w, dtype=np.float32)
    x = _rand(2, 3, 9, 9)
    with pytest.raises(TypeError, match=r"float64.*x\.astype\(np\.float32\).*dtype=np\.float64"):
        p32(x)
    with pytest.raises(TypeError, match=r"dtype=np\.float64"):
        p32(np.ones((2, 3, 9, 9), np.int64))  # int64 computes in float64 one-shot
    np.testing.assert_array_equal(p32(x.astype(np.float16)),
                                  cconv.conv2d(x.astype(np.float16), w.astype(np.float32)))
    # widening is exact: a float64 plan takes float32 input, as the one-shot function does
    p64 = cconv.plan_conv2d((2, 3, 9, 9), w)
    y = p64(x.astype(np.float32))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, cconv.conv2d(x.astype(np.float32), w,
                                                  algorithm=p64.algorithm))


@pytest.mark.parametrize("layout", [None, "NHWC"])
def test_plan_runs_any_batch_size(layout):
    w, b = _rand(6, 4, 3, 3, dtype=np.float32), _rand(6, dtype=np.float32)
    shape = (3, 4, 11, 10) if layout is None else (3, 11, 10, 4)
    plan = cconv.plan_conv2d(shape, w, b, padding=1, layout=layout)
    w_kept, b_kept = w.copy(), b.copy()
    w[...] = 0  # the plan keeps its own weights, for other batch sizes too
    b[...] = 0
    for n in (5, 1, 3, 0, 8, 2, 7, 9, 5):
        x = _rand(n, *shape[1:], dtype=np.float32)
        y = plan(x)
        assert y.shape == (n,) + plan.out_shape[1:]
        np.testing.assert_array_equal(y, cconv.conv2d(x, w_kept, b_kept, padding=1, layout=layout,
                                                      algorithm=plan.algorithm))
        np.testing.assert_allclose(y, R.conv2d(x, w_kept, b_kept, padding=1, layout=layout),
                                   rtol=1e-4, atol=1e-4)
    assert len(plan._plans) <= plan._MAX_EXTRA_BATCH_SIZES  # memory stays bounded
    with pytest.raises(ValueError, match="any batch size"):
        plan(_rand(3, *shape[1:-1], shape[-1] + 1, dtype=np.float32))


def test_plan_keeps_its_algorithm_and_lossy_setting_for_other_batch_sizes():
    w = _rand(48, 64, 3, 3, dtype=np.float32)
    fast = cconv.plan_conv2d((2, 64, 30, 30), w, padding=1)
    assert fast.algorithm == "winograd"  # the shape auto runs with Winograd (see test below)
    x = _rand(3, 64, 30, 30, dtype=np.float32)
    with cconv.allow_lossy(False):
        y = fast(x)  # made with lossy allowed: keeps it
        exact = cconv.plan_conv2d((2, 64, 30, 30), w, padding=1)
    np.testing.assert_array_equal(y, cconv.conv2d(x, w, padding=1, algorithm="winograd"))
    assert exact.algorithm == "gemm"
    np.testing.assert_array_equal(exact(x), cconv.conv2d(x, w, padding=1, algorithm="gemm"))


def test_plan_from_many_threads_with_several_batch_sizes():
    w = _rand(5, 3, 3, 3)
    plan = cconv.plan_conv2d((2, 3, 8, 8), w)
    xs = [_rand(n, 3, 8, 8) for n in (1, 2, 3, 4, 5, 6, 7) * 3]
    want = [cconv.conv2d(x, w, algorithm=plan.algorithm) for x in xs]
    got = [None] * len(xs)

    def run(i):
        got[i] = plan(xs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ symmetric padding

SYMMETRIC_CASES = [
    # nd, x shape (N, C, *S), weight shape, kwargs
    (1, (2, 3, 7), (4, 3, 3), dict(padding=2)),
    (1, (1, 2, 4), (2, 2, 5), dict(padding=((4, 3),), dilation=1)),      # pad == size
    (2, (2, 3, 7, 6), (4, 3, 3, 3), dict(padding=1)),
    (2, (1, 4, 5, 8), (6, 2, 3, 2), dict(padding=((2, 5), (0, 3)), stride=(2, 1), groups=2)),
    (2, (2, 2, 6, 6), (3, 2, 3, 3), dict(padding="same", dilation=2)),
    (2, (1, 3, 4, 4), (3, 1, 3, 3), dict(padding=4, groups=3)),            # depthwise, pad == size
    (3, (1, 2, 4, 5, 3), (2, 2, 3, 3, 2), dict(padding=(1, 2, 3), stride=(1, 2, 1))),
]


@pytest.mark.parametrize("case", SYMMETRIC_CASES, ids=lambda c: f"{c[0]}d-{c[1]}")
@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("algorithm", ["auto", "gemm", "reference"])
def test_symmetric_padding_is_numpy_symmetric(case, layout, algorithm, isa):
    nd, xs, ws, kw = case
    x, w, b = _rand(*xs), _rand(*ws), _rand(ws[0])
    conv = getattr(cconv, f"conv{nd}d")
    lay = None if layout == "first" else R.CHANNELS_LAST[nd]
    xl = R.from_channels_first(x, lay)
    with use_isa(isa):
        y = conv(xl, w, b, padding_mode="symmetric", layout=lay, algorithm=algorithm, **kw)
    want = getattr(R, f"conv{nd}d")(x, w, b, padding_mode="symmetric", **kw)  # np.pad symmetric
    R.assert_conv_close(R.to_channels_first(y, lay), want,
                        R.magnitude(getattr(R, f"conv{nd}d"), x, w, b, padding_mode="symmetric", **kw),
                        np.float64, int(np.prod(ws[1:])))


def test_symmetric_differs_from_reflect_and_is_scipy_reflect():
    x, one = np.arange(5.0).reshape(1, 1, 5), np.ones((1, 1, 1))  # a 1-tap filter: y = padded x
    np.testing.assert_array_equal(cconv.conv1d(x, one, padding=2, padding_mode="symmetric")[0, 0],
                                  [1, 0, 0, 1, 2, 3, 4, 4, 3])
    np.testing.assert_array_equal(cconv.conv1d(x, one, padding=2, padding_mode="reflect")[0, 0],
                                  [2, 1, 0, 1, 2, 3, 4, 3, 2])
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    img, k = _rand(9, 8), _rand(3, 3)
    # the table in docs/tutorial.md
    for ours, scipys in [("zeros", "constant"), ("reflect", "mirror"), ("symmetric", "reflect"),
                         ("replicate", "nearest"), ("circular", "wrap")]:
        got = cconv.conv2d(img[None, None], k[None, None], padding=1, padding_mode=ours)[0, 0]
        np.testing.assert_allclose(got, scipy_ndimage.correlate(img, k, mode=scipys), atol=1e-12,
                                   err_msg=ours)


def test_symmetric_padding_limits():
    x, w = _rand(1, 2, 4, 4), _rand(2, 2, 3, 3)
    assert cconv.conv2d(x, w, padding=4, padding_mode="symmetric").shape == (1, 2, 10, 10)
    with pytest.raises(ValueError, match="symmetric padding .* must not exceed"):
        cconv.conv2d(x, w, padding=5, padding_mode="symmetric")
    with pytest.raises(ValueError, match="padding_mode must be one of .*symmetric"):
        cconv.conv2d(x, w, padding_mode="mirror")
    wg = _rand(4, 1, 3, 3)
    np.testing.assert_allclose(
        cconv.shuffled_grouped_conv2d(x, wg, 2, padding=1, padding_mode="symmetric"),
        R.channel_shuffle(R.conv2d(x, wg, padding=1, groups=2, padding_mode="symmetric"), 2),
        atol=1e-12)


def _fd(f, a, idx, h=1e-3):
    a_p, a_m = a.copy(), a.copy()
    a_p[idx] += h
    a_m[idx] -= h
    return (f(a_p) - f(a_m)) / (2 * h)


@pytest.mark.parametrize("case", SYMMETRIC_CASES[:2] + SYMMETRIC_CASES[3:4] + SYMMETRIC_CASES[5:6],
                         ids=lambda c: f"{c[0]}d-{c[1]}")
def test_symmetric_padding_gradients(case):
    """Central finite differences (the convolution is linear: exact up to rounding), and the
    weight gradient equals that of the valid convolution of the np.pad(symmetric) input."""
    nd, xs, ws, kw = case
    x, w = _rand(*xs), _rand(*ws)
    conv = getattr(cconv, f"conv{nd}d")
    kw = dict(kw, padding_mode="symmetric")
    g = _rand(*conv(x, w, **kw).shape)
    gx = getattr(G, f"conv{nd}d_input")(x.shape, w, g, **kw)
    gw = getattr(G, f"conv{nd}d_weight")(x, w.shape, g, **kw)
    for idx in itertools.product(*map(range, x.shape)):
        fd = _fd(lambda a: float(np.vdot(conv(a, w, **kw), g)), x, idx)
        assert abs(fd - gx[idx]) <= 1e-8 * (1 + abs(fd)), (idx, fd, gx[idx])
    before, after = R.normalize_padding(kw["padding"], nd, xs[2:], ws[2:], kw.get("stride", 1),
                                        kw.get("dilation", 1))
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after)), mode="symmetric")
    valid = {k: v for k, v in kw.items() if k not in ("padding", "padding_mode")}
    np.testing.assert_allclose(gw, getattr(G, f"conv{nd}d_weight")(xp, w.shape, g, **valid),
                               rtol=1e-12, atol=1e-12)


def test_symmetric_padding_in_dask():
    cd = pytest.importorskip("cconv.dask")
    da = pytest.importorskip("dask.array")
    x, w = _rand(2, 3, 17, 13), _rand(4, 3, 3, 5)
    y = cd.conv2d(da.from_array(x, chunks=(1, 3, 6, 5)), w, padding=(1, 4),
                  padding_mode="symmetric").compute(scheduler="sync")
    np.testing.assert_allclose(y, cconv.conv2d(x, w, padding=(1, 4), padding_mode="symmetric"),
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ lossy algorithms

# (2, 64, 30, 30) x (48, 64, 3, 3), padding 1: auto picks Winograd (asserted below).
WINO_X, WINO_W = (2, 64, 30, 30), (48, 64, 3, 3)


def test_allow_lossy_false_makes_auto_exact(isa):
    x, w = _rand(*WINO_X, dtype=np.float32), _rand(*WINO_W, dtype=np.float32)
    with use_isa(isa):
        assert cconv.plan_conv2d(x.shape, w, padding=1).algorithm == "winograd"
        gemm = cconv.conv2d(x, w, padding=1, algorithm="gemm")
        assert not np.array_equal(cconv.conv2d(x, w, padding=1), gemm)  # Winograd rounds otherwise
        assert cconv.get_allow_lossy()
        with cconv.allow_lossy(False):
            assert not cconv.get_allow_lossy()
            np.testing.assert_array_equal(cconv.conv2d(x, w, padding=1), gemm)
            assert cconv.plan_conv2d(x.shape, w, padding=1).algorithm == "gemm"
            with pytest.raises(ValueError, match="lossy"):
                cconv.conv2d(x, w, padding=1, algorithm="winograd")
            with cconv.allow_lossy(True):
                assert cconv.plan_conv2d(x.shape, w, padding=1).algorithm == "winograd"
        assert cconv.get_allow_lossy()
        np.testing.assert_array_equal(cconv.conv2d(x, w, padding=1, algorithm="exact"), gemm)


def test_allow_lossy_covers_transposed_and_3d():
    g = _rand(*WINO_X, dtype=np.float32)
    wt = _rand(64, 48, 3, 3, dtype=np.float32)
    x3 = _rand(1, 32, 6, 30, 30, dtype=np.float32)
    w3 = _rand(32, 32, 3, 3, 3, dtype=np.float32)
    # outside the block auto runs these with Winograd (cconv.grad's input gradient included)
    assert cconv.plan_conv_transpose2d(g.shape, wt, padding=1).algorithm == "winograd"
    assert cconv.plan_conv3d(x3.shape, w3, padding=1).algorithm == "winograd"
    with cconv.allow_lossy(False):
        assert cconv.plan_conv_transpose2d(g.shape, wt, padding=1).algorithm == "gemm"
        np.testing.assert_array_equal(cconv.conv_transpose2d(g, wt, padding=1),
                                      cconv.conv_transpose2d(g, wt, padding=1, algorithm="gemm"))
        # cconv.grad's input gradient of a 3x3 layer (a transposed convolution) too
        gy = _rand(2, 48, 30, 30, dtype=np.float32)
        w = _rand(*WINO_W, dtype=np.float32)
        np.testing.assert_array_equal(G.conv2d_input(WINO_X, w, gy, padding=1),
                                      cconv.conv_transpose2d(gy, w, padding=1, algorithm="gemm"))
        np.testing.assert_array_equal(cconv.conv3d(x3, w3, padding=1),
                                      cconv.conv3d(x3, w3, padding=1, algorithm="gemm"))


def test_set_allow_lossy_is_process_wide_and_allow_lossy_context_local():
    x, w = _rand(*WINO_X, dtype=np.float32), _rand(*WINO_W, dtype=np.float32)
    seen = {}

    def probe(key):
        seen[key] = (cconv.get_allow_lossy(), cconv.plan_conv2d(x.shape, w, padding=1).algorithm)

    def in_thread(key, fn=probe):
        t = threading.Thread(target=fn, args=(key,))
        t.start()
        t.join(timeout=60)
        assert not t.is_alive()

    with cconv.allow_lossy(False):
        in_thread("thread in block")            # a new thread does not inherit the block
        contextvars.copy_context().run(probe, "copied context")
    try:
        cconv.set_allow_lossy(False)
        in_thread("process-wide off")
        with cconv.allow_lossy(True):
            probe("block on")
    finally:
        cconv.set_allow_lossy(True)
    assert seen == {"thread in block": (True, "winograd"), "copied context": (False, "gemm"),
                    "process-wide off": (False, "gemm"), "block on": (True, "winograd")}
    for bad in ("no", 0, None):
        with pytest.raises(TypeError, match="allow_lossy"):
            cconv.set_allow_lossy(bad)
        with pytest.raises(TypeError, match="allow_lossy"):
            with cconv.allow_lossy(bad):
                pass
    assert cconv.get_allow_lossy()


def test_allow_lossy_carried_into_dask_graphs():
    cd = pytest.importorskip("cconv.dask")
    da = pytest.importorskip("dask.array")
    x, w = _rand(*WINO_X, dtype=np.float32), _rand(*WINO_W, dtype=np.float32)
    dx = da.from_array(x, chunks=WINO_X)  # one block: the shape auto runs with Winograd
    with cconv.allow_lossy(False):
        y = cd.conv2d(dx, w, padding=1)
        with pytest.raises(ValueError, match="lossy"):
            cd.conv2d(dx, w, padding=1, algorithm="winograd")
    lossy = cd.conv2d(dx, w, padding=1)
    assert y.name != lossy.name
    # computed outside the block, in worker threads: the block's setting still applies
    np.testing.assert_array_equal(y.compute(scheduler="threads"),
                                  cconv.conv2d(x, w, padding=1, algorithm="gemm"))
    np.testing.assert_array_equal(lossy.compute(scheduler="threads"),
                                  cconv.conv2d(x, w, padding=1, algorithm="winograd"))


# ------------------------------------------------------------------ decompose -> separable conv

def test_spatially_separable_weights_go_straight_in():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    x = _rand(2, 1, 12, 9)
    v, h, err = D.spatially_separable(sobel, as_weights=True)
    assert err < 1e-12 and v.shape == (1, 1, 3, 1) and h.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(cconv.spatially_separable_conv2d(x, v, h, padding=1),
                               cconv.conv2d(x, sobel[None, None].astype(float), padding=1),
                               atol=1e-12)
    # the same (blur) filter on every channel: a depthwise bank, groups=C
    g1 = np.exp(-np.linspace(-2, 2, 5) ** 2)
    bank = np.broadcast_to(np.outer(g1, g1), (3, 1, 5, 5))
    x3 = _rand(2, 3, 12, 9)
    v, h, err = D.spatially_separable(bank, as_weights=True)
    assert v.shape == (3, 1, 5, 1) and h.shape == (3, 1, 1, 5) and np.all(err < 1e-12)
    np.testing.assert_allclose(
        cconv.spatially_separable_conv2d(x3, v, h, padding=2, groups=3),
        cconv.conv2d(x3, bank, padding=2, groups=3), atol=1e-12)
    for bad in (np.ones((2, 3, 3)), np.ones((2, 2, 3, 3))):
        with pytest.raises(ValueError, match="as_weights"):
            D.spatially_separable(bad, as_weights=True)
    col, row, _ = D.spatially_separable(sobel)  # the default is unchanged: 1-D factors
    assert col.shape == row.shape == (3,)


# ------------------------------------------------------------------ torch.nn.grad keyword names

@pytest.mark.parametrize("nd", [1, 2, 3])
def test_grad_accepts_torch_keyword_names(nd):
    x, w = _rand(2, 3, *(6,) * nd), _rand(4, 3, *(3,) * nd)
    kw = dict(stride=2, padding=1)
    g = _rand(*getattr(cconv, f"conv{nd}d")(x, w, **kw).shape)
    f_in, f_w = getattr(G, f"conv{nd}d_input"), getattr(G, f"conv{nd}d_weight")
    np.testing.assert_array_equal(f_in(input_size=x.shape, weight=w, grad_output=g, **kw),
                                  f_in(x.shape, w, g, **kw))
    np.testing.assert_array_equal(f_w(input=x, weight_size=w.shape, grad_output=g, **kw),
                                  f_w(x, w.shape, g, **kw))
    with pytest.raises(TypeError, match="both input_shape and input_size"):
        f_in(x.shape, w, g, input_size=x.shape)
    with pytest.raises(TypeError, match="both weight_shape and weight_size"):
        f_w(x, weight_shape=w.shape, weight_size=w.shape, grad_output=g)
    assert "input_size" in inspect.signature(f_in).parameters
    assert "weight_size" in inspect.signature(f_w).parameters


def test_grad_torch_keyword_call_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = _rand(2, 3, 7, 6), _rand(4, 3, 3, 3)
    kw = dict(stride=1, padding=1)
    g = _rand(*cconv.conv2d(x, w, **kw).shape)
    t = torch.from_numpy
    np.testing.assert_allclose(
        G.conv2d_input(input_size=x.shape, weight=w, grad_output=g, **kw),
        torch.nn.grad.conv2d_input(input_size=x.shape, weight=t(w), grad_output=t(g), **kw).numpy(),
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        G.conv2d_weight(input=x, weight_size=w.shape, grad_output=g, **kw),
        torch.nn.grad.conv2d_weight(input=t(x), weight_size=w.shape, grad_output=t(g), **kw).numpy(),
        rtol=1e-12, atol=1e-12)
