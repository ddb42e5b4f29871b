"""The registry of public operations (cconv._registry) against everything built from it or kept
by hand beside it; the keywords every function shares; unbatched input."""
import inspect

import numpy as np
import pytest

import cconv
from cconv import _geometry, _registry, analysis

OPS = list(_registry.OPERATIONS.values())
C = 4  # input channels of every sample call

# name -> (batched channels-first x shape, required arguments after x (shapes, or groups), kwargs)
SAMPLES = {
    "conv1d": ((2, C, 9), [(6, C, 3)], dict(padding=1)),
    "conv2d": ((2, C, 7, 8), [(6, C, 3, 3)], dict(padding=1)),
    "conv3d": ((2, C, 5, 6, 7), [(6, C, 3, 3, 3)], dict(padding=1)),
    "conv_transpose1d": ((2, C, 9), [(C, 3, 3)], dict(stride=2)),
    "conv_transpose2d": ((2, C, 7, 8), [(C, 3, 3, 3)], dict(stride=2)),
    "conv_transpose3d": ((2, C, 5, 6, 7), [(C, 3, 3, 3, 3)], dict(stride=2)),
    "depthwise_conv2d": ((2, C, 7, 8), [(2 * C, 1, 3, 3)], dict(padding=1)),
    "separable_conv2d": ((2, C, 7, 8), [(C, 1, 3, 3), (5, C, 1, 1)], dict(padding=1)),
    "spatially_separable_conv2d": ((2, C, 7, 8), [(6, C, 3, 1), (5, 6, 1, 3)], dict(padding=1)),
    "flattened_conv2d": ((2, C, 7, 8), [(5, C), (5, 3), (5, 3)], dict(padding=1)),
    "channel_shuffle": ((2, C, 7, 8), [2], {}),
    "shuffled_grouped_conv2d": ((2, C, 7, 8), [(6, C // 2, 3, 3), 2], dict(padding=1)),
}


def _arrays(name, seed=0):
    rng = np.random.default_rng(seed)
    x_shape, required, kwargs = SAMPLES[name]
    args = [a if isinstance(a, int) else rng.standard_normal(a) for a in required]
    return rng.standard_normal(x_shape), args, dict(kwargs)


def _params(sig):
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_every_operation_has_a_sample():
    assert set(SAMPLES) == set(_registry.NAMES)


# ------------------------------------------------------------------ the records

@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_signature_matches_record(op):
    assert _params(inspect.signature(getattr(cconv, op.name))) == _params(op.signature)
    if op.plan:
        assert _params(inspect.signature(getattr(cconv, op.plan_name))) == _params(op.plan_signature)


def test_public_functions_are_the_records():
    fns = {n for n in cconv.__all__ if inspect.isfunction(getattr(cconv, n))
           and getattr(cconv, n).__module__ == "cconv._functions" and not n.startswith("plan_")}
    assert fns == set(_registry.NAMES)
    plans = {n for n in cconv.__all__ if n.startswith("plan_")}
    assert plans == {op.plan_name for op in OPS if op.plan}
    assert analysis.FUNCTIONS == _registry.NAMES


def test_benchmark_tables_follow_records():
    """The benchmark tables keep their own lists (asv loads them against older builds, which
    have no registry): they must name exactly the registry's functions and plans."""
    from cconv.bench import cases

    assert tuple(cases.PUBLIC_FUNCTIONS) == _registry.NAMES
    planned = tuple(op.name for op in _registry.OPERATIONS.values() if op.plan_name)
    assert tuple(cases.PLANNED_FUNCTIONS) == planned


def test_dask_follows_records():
    cd = pytest.importorskip("cconv.dask")
    assert cd.__all__ == [op.name for op in OPS if op.dask]
    for op in OPS:
        if op.dask:
            fn = getattr(cd, op.name)
            assert _params(inspect.signature(fn)) == _params(op.dask_signature)
            assert fn.__name__ == op.name and fn.__module__ == "cconv.dask"


def test_grad_follows_records():
    from cconv import grad
    named = [g for op in OPS for g in op.grad]
    assert len(named) == len(set(named))
    assert set(named) | {"bias"} == set(grad.__all__)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_describe_gives_the_output_shape(op):
    x, args, kwargs = _arrays(op.name)
    shapes = [a if isinstance(a, int) else a.shape for a in args]
    stages = _registry.describe(op.name, x.shape, *shapes, **kwargs)
    assert stages[-1].out_shape == op.function(x, *args, **kwargs).shape
    assert analysis.output_shape(op.name, x.shape, *shapes, **kwargs) == stages[-1].out_shape
    with pytest.raises(TypeError):
        _registry.describe(op.name, x.shape, *shapes, no_such_argument=1)


def test_public_names_only():
    assert not {"os", "contextlib", "numbers", "warnings"} & set(dir(cconv))
    assert set(cconv.__all__) <= set(dir(cconv))
    from cconv import grad
    assert not {"np", "as_array", "result_dtype", "conv_geometry"} & set(dir(grad))
    assert set(grad.__all__) == set(dir(grad))


# ------------------------------------------------------------------ shared keywords

MODES = [m for m in _geometry.PADDING_MODES]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("algorithm", ["auto", "depthwise", "gemm", "reference"])
def test_depthwise_is_conv2d_with_groups(mode, algorithm):
    x, (w,), _ = _arrays("depthwise_conv2d")
    b = np.arange(2.0 * C)
    got = cconv.depthwise_conv2d(x, w, b, padding=1, padding_mode=mode, algorithm=algorithm)
    want = cconv.conv2d(x, w, b, padding=1, groups=C, padding_mode=mode, algorithm=algorithm)
    np.testing.assert_array_equal(got, want)


def _stages_by_conv2d(name, x, args, b, mode, algorithm, padding=1):
    """The composite function as its conv2d stages, each with the given algorithm."""
    run = dict(padding_mode=mode, algorithm=algorithm)
    if name == "separable_conv2d":
        dw, pw = args
        return cconv.conv2d(cconv.conv2d(x, dw, padding=padding, groups=C, **run), pw, b, **run)
    if name == "spatially_separable_conv2d":
        v, h = args
        y = cconv.conv2d(x, v, padding=(padding, 0), **run)
        return cconv.conv2d(y, h, b, padding=(0, padding), **run)
    if name == "flattened_conv2d":
        ch, v, h = args
        co = ch.shape[0]
        y = cconv.conv2d(x, ch.reshape(co, -1, 1, 1), **run)
        y = cconv.conv2d(y, v.reshape(co, 1, -1, 1), padding=(padding, 0), groups=co, **run)
        return cconv.conv2d(y, h.reshape(co, 1, 1, -1), b, padding=(0, padding), groups=co, **run)
    raise AssertionError(name)


COMPOSITES = ["separable_conv2d", "spatially_separable_conv2d", "flattened_conv2d"]


@pytest.mark.parametrize("name", COMPOSITES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("algorithm", ["gemm", "reference"])
def test_named_algorithm_runs_each_stage(name, mode, algorithm):
    """A named algorithm runs the stages unfused, each as conv2d(algorithm=...) runs it, whatever
    fused= says: bitwise the conv2d stages."""
    x, args, _ = _arrays(name)
    b = np.arange(5.0)
    want = _stages_by_conv2d(name, x, args, b, mode, algorithm)
    for fused in (True, False):
        got = getattr(cconv, name)(x, *args, b, padding=1, padding_mode=mode, algorithm=algorithm,
                                   fused=fused)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", COMPOSITES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_padding_mode_of_composites(name, mode, layout):
    """fused and unfused agree with the stages and with conv2d of the full filter on the padded
    input (index-mapping padding commutes with a convolution along the other axis)."""
    x, args, _ = _arrays(name)
    b = np.arange(5.0)
    fn = getattr(cconv, name)
    want = _stages_by_conv2d(name, x, args, b, mode, "auto")
    if name == "separable_conv2d":
        dw, pw = args
        full = np.einsum("oc,ckl->ockl", pw[:, :, 0, 0], dw[:, 0])
    elif name == "spatially_separable_conv2d":
        v, h = args
        full = np.einsum("mcI,omJ->ocIJ", v[..., 0], h[:, :, 0])
    else:
        ch, v, h = args
        full = np.einsum("oc,oi,oj->ocij", ch, v, h)
    np.testing.assert_allclose(cconv.conv2d(x, full, b, padding=1, padding_mode=mode), want,
                               rtol=1e-12, atol=1e-12)
    to = (lambda a: np.moveaxis(a, 1, -1)) if layout == "NHWC" else (lambda a: a)
    for fused in (True, False):
        got = fn(to(x), *args, b, padding=1, padding_mode=mode, layout=layout, fused=fused)
        np.testing.assert_allclose(got, to(want), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("algorithm", ["auto", "gemm", "grouped", "reference"])
def test_shuffled_grouped_keywords(mode, algorithm):
    x, (w, g), _ = _arrays("shuffled_grouped_conv2d")
    b = np.arange(6.0)
    got = cconv.shuffled_grouped_conv2d(x, w, g, b, padding=1, padding_mode=mode,
                                        algorithm=algorithm)
    want = cconv.channel_shuffle(cconv.conv2d(x, w, b, padding=1, groups=g, padding_mode=mode,
                                              algorithm=algorithm), g)
    np.testing.assert_array_equal(got, want)


def test_algorithm_errors():
    x, args, _ = _arrays("separable_conv2d")
    with pytest.raises(ValueError, match="algorithm"):
        cconv.separable_conv2d(x, *args, algorithm="fft")
    with pytest.raises(ValueError, match="depthwise"):  # the 1x1 stage is not depthwise
        cconv.separable_conv2d(x, *args, algorithm="depthwise")
    for name in ("depthwise_conv2d", "spatially_separable_conv2d", "flattened_conv2d",
                 "shuffled_grouped_conv2d"):
        x, args, _ = _arrays(name)
        with pytest.raises(ValueError, match="algorithm"):
            getattr(cconv, name)(x, *args, algorithm="fft")


# ------------------------------------------------------------------ channel_shuffle out=

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_channel_shuffle_out(dtype):
    x = np.arange(2 * 6 * 3 * 2).reshape(2, 6, 3, 2).astype(dtype)
    want = cconv.channel_shuffle(x, 3)
    out = np.full(x.shape, -1, dtype)
    assert cconv.channel_shuffle(x, 3, out=out) is out
    np.testing.assert_array_equal(out, want)
    strided = np.full((2, 6, 3, 4), -1, dtype)[..., ::2]  # not contiguous
    assert cconv.channel_shuffle(x, 3, out=strided) is strided
    np.testing.assert_array_equal(strided, want)


def test_channel_shuffle_rejects_bad_out():
    x = np.zeros((2, 6, 3, 3), np.float32)
    bad = [(np.zeros((2, 6, 3, 4), np.float32), ValueError, "shape"),
           (np.zeros(x.shape, np.float64), ValueError, "dtype"),
           (x, ValueError, "overlaps"),
           ([[0.0]], TypeError, "out")]
    for out, exc, match in bad:
        with pytest.raises(exc, match=match):
            cconv.channel_shuffle(x, 3, out=out)
    ro = np.zeros(x.shape, np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        cconv.channel_shuffle(x, 3, out=ro)


# ------------------------------------------------------------------ unbatched input

@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("last", [False, True], ids=["channels_first", "channels_last"])
def test_unbatched_is_batch_of_one(op, last):
    x, args, kwargs = _arrays(op.name)
    x = x[0]
    nd = op.nd or x.ndim - 1
    if last:
        kwargs["layout"] = _geometry.LAYOUTS[nd][1]
        x = np.moveaxis(x, 0, -1)
    elif op.nd is None:  # channel_shuffle: a 3-D x is batched 1-D unless layout says otherwise
        kwargs["layout"] = _geometry.LAYOUTS[nd][0]
    fn = op.function
    want = fn(x[None], *args, **kwargs)[0]
    got = fn(x, *args, **kwargs)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    shapes = [a if isinstance(a, int) else a.shape for a in args]
    assert analysis.output_shape(op.name, x.shape, *shapes, **kwargs) == got.shape
    one, batch = (analysis.cost(op.name, s, *shapes, **kwargs) for s in (x.shape, x[None].shape))
    assert one.output_shape == got.shape and one.flops == batch.flops
    out = np.empty_like(want)
    assert fn(x, *args, out=out, **kwargs) is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="out"):
        fn(x, *args, out=np.empty((1,) + want.shape, want.dtype), **kwargs)


def test_channel_shuffle_dimensions():
    """Without layout=, x is batched as torch.channel_shuffle reads it; layout= names the spatial
    dimensions, so x may then be unbatched."""
    x = np.arange(24.0).reshape(6, 4)
    with pytest.raises(ValueError, match="layout="):
        cconv.channel_shuffle(x, 3)
    np.testing.assert_array_equal(cconv.channel_shuffle(x, 3, layout="NCW"),
                                  cconv.channel_shuffle(x[None], 3)[0])
    x3 = np.arange(48.0).reshape(2, 6, 4)  # batched 1-D
    np.testing.assert_array_equal(cconv.channel_shuffle(x3, 3)[1],
                                  cconv.channel_shuffle(x3[1], 3, layout="NCW"))
    with pytest.raises(ValueError, match=r"unbatched \(CHW\)"):
        cconv.channel_shuffle(x, 3, layout="NCHW")


@pytest.mark.parametrize("name, x_shape, hint", [
    ("conv2d", (7, 8), r"x\[None, None\]"),
    ("conv1d", (9,), r"x\[None, None\]"),
    ("depthwise_conv2d", (7, 8), r"x\[None\]"),
])
def test_image_without_channels_is_explained(name, x_shape, hint):
    _, args, _ = _arrays(name)
    with pytest.raises(ValueError, match=hint):
        getattr(cconv, name)(np.zeros(x_shape), *args)


def test_channels_last_hint():
    with pytest.raises(ValueError, match=r"x\[None, \.\.\., None\]"):
        cconv.conv2d(np.zeros((7, 8)), np.zeros((1, 1, 3, 3)), layout="NHWC")


def test_unbatched_dask():
    da = pytest.importorskip("dask.array")
    import cconv.dask as cd
    for name in ("conv2d", "separable_conv2d", "channel_shuffle"):
        x, args, kwargs = _arrays(name)
        kwargs["layout"] = "NCHW"
        got = getattr(cd, name)(da.from_array(x[0], chunks=(C, 3, 4)), *args, **kwargs).compute()
        np.testing.assert_array_equal(got, getattr(cconv, name)(x[0], *args, **kwargs))
