"""Replays the kept fuzz corpora (tests/fuzz/corpus/) through the fuzz harnesses' oracles.

* fuzz_api: every file through tests/fuzz/fuzz_api.py's check_input (the public Python API:
  a right answer or ValueError/TypeError/MemoryError), in this process.
* fuzz_desc: the C harness tests/fuzz/fuzz_desc.c (the C API against the C reference) built by
  tests/fuzz/build.sh as a plain replay binary (gcc, no libFuzzer), run over every file.
Both corpora hold the minimised inputs of the fuzzing runs and every input that once found a bug
(docs/fuzzing.md)."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FUZZ = os.path.join(HERE, "fuzz")
CORPUS = os.path.join(FUZZ, "corpus")

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")


def _corpus(name):
    d = os.path.join(CORPUS, name)
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


def test_python_corpus_replays_clean():
    pytest.importorskip("atheris", reason="atheris (FuzzedDataProvider) decodes the fuzz inputs")
    sys.path.insert(0, FUZZ)
    try:
        import fuzz_api
    finally:
        sys.path.remove(FUZZ)
    files = _corpus("fuzz_api")
    assert files, "tests/fuzz/corpus/fuzz_api is empty"
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            fuzz_api.check_input(data)
        except Exception as e:
            raise AssertionError(f"{os.path.relpath(path, ROOT)}: {type(e).__name__}: {e}") from e


def _sources():
    """Every file the replay binary is built from: the C core's (tools/cbuild.py) and the harness's."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import cbuild
    finally:
        sys.path.pop(0)
    return cbuild.inputs() + [os.path.join(FUZZ, f) for f in ("fuzz_desc.c", "replay_main.c", "build.sh")]


@pytest.mark.long  # an ASan + UBSan build of the C core, then 275 inputs: minutes
def test_c_corpus_replays_clean():
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the C fuzz corpus replays through a gcc-built binary")
    files = _corpus("fuzz_desc")
    assert files, "tests/fuzz/corpus/fuzz_desc is empty"
    outdir = os.path.join(ROOT, "build", "fuzz-replay")
    binary = os.path.join(outdir, "fuzz_desc_replay")
    # Rebuilt only when a source changed: the AVX-512 kernel file takes minutes to compile.
    if not os.path.exists(binary) or os.path.getmtime(binary) < max(map(os.path.getmtime, _sources())):
        r = subprocess.run(["sh", os.path.join(FUZZ, "build.sh"), "replay", outdir], cwd=ROOT,
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"building the replay binary failed:\n{r.stdout}\n{r.stderr}"
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:allocator_may_return_null=1:"
                                       "max_allocation_size_mb=2048",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([binary, *files], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, f"C corpus replay failed:\n{r.stdout[-2000:]}\n{r.stderr[-6000:]}"
    assert f"replayed {len(files)} inputs" in r.stdout


# ------------------------------------------------------------------ findings, one test each

@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
def test_reference_algorithm_multiplies_zero_padding():
    """algorithm="reference" skipped zero-padding taps, so an Inf weight gave a finite border
    where the definition (and every other algorithm) gives 0 * Inf = NaN."""
    import numpy as np

    import reference as R

    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 3, 3))
    w[0, 0, 0, 0] = np.inf
    for algorithm in ("reference", "gemm", "auto"):
        y = cconv.conv2d(x, w, padding=1, algorithm=algorithm)
        r = R.conv2d(x, w, padding=1)
        assert np.array_equal(np.isnan(y), np.isnan(r)), algorithm
        assert np.isnan(y[0, 0, 0, 0]), algorithm


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
def test_grouped_gemm_keeps_nan_in_its_group():
    """The GEMM tile packs several small groups per block with zero weights across groups, so a
    NaN/Inf in one group's input reached the other groups' outputs (0 * NaN)."""
    import numpy as np

    import reference as R

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((1, 8, 5, 7)).astype(dtype)
        x[0, 7, 2, 3] = np.nan   # last group only
        x[0, 6, 0, 0] = np.inf
        w = rng.standard_normal((8, 2, 3, 3)).astype(dtype)
        for algorithm in ("gemm", "auto"):
            y = cconv.conv2d(x, w, groups=4, padding=1, algorithm=algorithm)
            r = R.conv2d(x, w, groups=4, padding=1)
            R.assert_conv_close(y, r, R.magnitude(R.conv2d, x, w, groups=4, padding=1), dtype, 18)
            assert np.isfinite(y[:, :6]).all()
        yt = cconv.conv_transpose2d(x, w, groups=4, algorithm="gemm")
        rt = R.conv_transpose2d(x, w, groups=4)
        assert np.array_equal(np.isnan(yt), np.isnan(rt))


@pytest.mark.parametrize("call", [
    lambda: cconv.conv2d(None, [[[[1.0]]]]),
    lambda: cconv.conv2d([[[[1.0]]]], None),
    lambda: cconv.depthwise_conv2d(None, [[[[1.0]]]]),
    lambda: cconv.separable_conv2d([[[[1.0]]]], None, [[[[1.0]]]]),
    lambda: cconv.flattened_conv2d([[[[1.0]]]], [[1.0]], None, [[1.0]]),
    lambda: cconv.plan_conv2d((1, 1, 1, 1), None),
    lambda: cconv.grad.conv2d_weight(None, (1, 1, 1, 1), [[[[1.0]]]]),
])
def test_none_array_is_a_type_error(call):
    """None where an array is required raised AttributeError ('NoneType' has no 'shape')."""
    with pytest.raises(TypeError, match="None"):
        call()


def test_huge_size_with_empty_batch_is_a_value_error():
    """An empty batch passed the byte-count checks with a size of 2**64 (or an output past int64),
    and filling the C descriptor raised OverflowError."""
    import numpy as np

    w = np.ones((1, 1, 1))
    for shape in ((0, 1, 2**64), (0, 1, 2**62 + 1)):
        with pytest.raises(ValueError, match="2\\*\\*62"):
            cconv.plan_conv1d(shape, w)
    with pytest.raises(ValueError, match="2\\*\\*62"):
        cconv.plan_conv1d((0, 1, 2**62), w, padding=2**62)


def _same_nonfinite(actual, expected):
    import numpy as np

    return (np.array_equal(np.isnan(actual), np.isnan(expected)) and
            np.array_equal(np.isposinf(actual), np.isposinf(expected)) and
            np.array_equal(np.isneginf(actual), np.isneginf(expected)))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
@pytest.mark.parametrize("isa", cconv.available_isas())
def test_depthwise_nhwc_weight_grad_meets_zero_padding(isa):
    """The channels-last depthwise weight gradient skipped zero-padding taps, so an Inf/NaN of
    grad_output at a border never met the padding's zeros: finite where the definition (and
    every other layout) gives 0 * Inf = NaN."""
    import numpy as np

    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 5, 6, 7)).astype(dtype)           # NCHW
        g = rng.standard_normal((2, 5, 6, 7)).astype(dtype)
        g[0, 1, 0, 0] = np.inf     # top-left corner: taps of row 0 and column 0 are padding
        g[1, 3, 5, 2] = np.nan     # bottom row
        with cconv.use_isa(isa):
            first = cconv.grad.conv2d_weight(x, (5, 1, 3, 3), g, padding=1, groups=5)
            last = cconv.grad.conv2d_weight(x.transpose(0, 2, 3, 1), (5, 1, 3, 3),
                                            g.transpose(0, 2, 3, 1), padding=1, groups=5,
                                            layout="NHWC")
        assert np.isnan(first[1, 0, 0]).all() and np.isnan(first[1, 0, :, 0]).all()
        assert np.isnan(first[3, 0, 2]).all()
        assert np.isfinite(first[[0, 2, 4]]).all()
        assert _same_nonfinite(last, first)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
@pytest.mark.parametrize("isa", cconv.available_isas())
def test_transposed_nonfinite_weight_leaves_unreached_outputs(isa):
    """Transposed plans (stride phases, and the forward Winograd form at stride 1) read zero
    padding where the scatter definition has no term, so an Inf weight put NaN at outputs it never
    reaches: the output_padding positions, which get the bias alone."""
    import numpy as np

    import reference as R

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((2, 3, 3, 3))
    w[1, 2, 0, 0] = np.inf
    b = np.array([0.5, -1.0, 2.0])
    for stride, padding, output_padding in ((2, 1, 1), (1, 1, 0), (3, 1, 2), (2, 0, 1), (1, 0, 0)):
        r = R.conv_transpose2d(x, w, b, stride, padding, output_padding)
        assert np.isfinite(r).any() and not np.isfinite(r).all()
        for algorithm in ("auto", "gemm", "reference"):
            with cconv.use_isa(isa):
                y = cconv.conv_transpose2d(x, w, b, stride, padding, output_padding, algorithm=algorithm)
            assert _same_nonfinite(y, r), (stride, padding, algorithm)



@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
def test_flattened_nonfinite_follows_the_stages():
    """The fused flattened path multiplies vertical * horizontal before it meets the data, so
    with Inf/NaN its NaNs sat elsewhere than the three stages' (Inf * 0 inside the product):
    such calls run the stages. The inputs the Python fuzzer stopped on are replayed with the
    corpus; this checks both layouts and dtypes against the stage-by-stage reference."""
    import numpy as np

    import reference as R

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 5))
    ch, v, h = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    v[0, 1] = np.inf
    h[0, 0] = 0.0
    x[1, 2, 3, 3] = -np.inf
    for layout, xl in ((None, x), ("NHWC", x.transpose(0, 2, 3, 1))):
        r = R.flattened_conv2d(xl, ch, v, h, None, (2, 1), 1, (1, 2), layout=layout)
        for dtype in (np.float32, np.float64):
            for fused in (True, False):
                y = cconv.flattened_conv2d(xl.astype(dtype), ch.astype(dtype), v.astype(dtype),
                                           h.astype(dtype), None, (2, 1), 1, (1, 2), layout=layout,
                                           fused=fused)
                assert _same_nonfinite(y, r), (layout, dtype, fused)


@pytest.mark.parametrize("algorithm", ["auto", "depthwise"])
def test_depthwise_huge_padding_is_refused_not_a_crash(algorithm):
    """A padded width near 2**62 (one output column, the stride clamped to it) overflowed the
    depthwise row-ring sizes: a division by zero killed the process. The plan now refuses."""
    import numpy as np

    with pytest.raises(ValueError, match="overflow"):
        cconv.plan_conv2d((1, 2, 1, 1), np.ones((2, 1, 1, 1)), padding=((0, 0), (2**61, 2**61)),
                          stride=(1, 2**62), groups=2, algorithm=algorithm)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN on purpose
@pytest.mark.parametrize("layout", [None, "NHWC"])
def test_depthwise_input_grad_nonfinite_weight(layout):
    """The input gradient of a one-channel-per-group convolution correlates a zero-inserted,
    zero-padded grad_output with the flipped filter: an Inf filter met those zeros and made every
    input position NaN, where the gradient has Inf only where the Inf tap reaches."""
    import numpy as np

    import reference as R

    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((2, 1, 2, 2))
    w[0, 0, 1, 1] = np.inf
    kw = dict(stride=2, padding=2, dilation=2, groups=2)
    g = rng.standard_normal(cconv.conv2d(x, np.zeros_like(w), **kw).shape)
    if layout:
        x, g = x.transpose(0, 2, 3, 1), g.transpose(0, 2, 3, 1)
    r = R.conv_grads(x, w, g, layout=layout, **kw)[0]
    assert np.isfinite(r).any() and not np.isfinite(r).all()
    for dtype in (np.float32, np.float64):
        y = cconv.grad.conv2d_input(x.shape, w.astype(dtype), g.astype(dtype), layout=layout, **kw)
        assert _same_nonfinite(y, r), dtype


@pytest.mark.parametrize("k,stride,pad", [(3, 2**62, 1), (5, 2**62, 0), (5, 2**40, 1), (9, 4, 3), (4, 3, 1)])
def test_transposed_stride_longer_than_output(k, stride, pad):
    """A transposed convolution made one stride phase per residue of the stride: 2**62 phases
    for stride 2**62 (a size product that wrapped to a tiny allocation: heap corruption, or a
    loop of 2**62 steps). Phases are now the outputs' residues only. With one input position the
    result does not depend on the stride; (9, 4, 3) has residues that wrap past the stride."""
    import numpy as np

    import reference as R

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 1))
    w = rng.standard_normal((3, 2, k))
    want = R.conv_transpose1d(x, w, stride=1, padding=pad)
    got = cconv.conv_transpose1d(x, w, stride=stride, padding=pad)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if k > 1 + 2 * pad:
        return  # no forward convolution of a length-1 input, so no input gradient to take
    g = rng.standard_normal(cconv.conv1d(x, w.transpose(1, 0, 2), stride=stride, padding=pad).shape)
    want = cconv.grad.conv1d_input(x.shape, w.transpose(1, 0, 2), g, stride=1, padding=pad)
    got = cconv.grad.conv1d_input(x.shape, w.transpose(1, 0, 2), g, stride=stride, padding=pad)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
