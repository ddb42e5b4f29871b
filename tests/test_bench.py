"""The benchmark tooling keeps working: `python -m cconv.bench`, the shared case tables and their
NumPy baseline, the machine's measured limits, and the asv suite in asv_bench/ (imported and run
once, directly, not via asv).

Fast by design (a few seconds): tiny cases only, one call per asv benchmark on its smallest case,
short measurements of the machine into a temporary cache.
"""
import importlib
import inspect
import math
import os
import platform
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cconv
from cconv.bench import cases as bc
from cconv.bench import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASV_DIR = os.path.join(ROOT, "asv_bench")


def _has(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def _machine_cache(tmp_path_factory, monkeypatch):
    """The machine's limits go to a cache shared by this module's tests (measured once), never to
    the user's; overrides from the environment are cleared."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv(machine.ENV_PEAK, raising=False)
    monkeypatch.delenv(machine.ENV_BANDWIDTH, raising=False)


@pytest.fixture(autouse=True)
def _restore_threads():
    """The bench and asv set thread counts process-wide; put them back for the other tests.
    One thread meanwhile: these tiny calls only get slower with more, and much slower when
    the machine is busy (threads waiting for each other at every barrier)."""
    n = cconv.get_num_threads()
    cconv.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
    else:
        with threadpool_limits(limits=None):
            yield
    cconv.set_num_threads(n)


# --------------------------------------------------------------------------- the script

def test_bench_script_quick_writes_markdown(tmp_path):
    md = tmp_path / "bench.md"
    png = tmp_path / "bench.png"
    cmd = [sys.executable, "-m", "cconv.bench", "--variants", "t_conv2d,t_shuffle,t_separable",
           "--quick", "--threads", "1", "--markdown", str(md)]
    if _has("matplotlib"):
        cmd += ["--png", str(png)]
    # run from elsewhere: the cconv imported here must be found whatever PYTHONPATH says
    src = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    assert "| case | cconv ms |" in text
    for name in ("tiny conv2d", "tiny channel_shuffle", "tiny separable_conv2d"):
        assert f"| {name} |" in text
    assert "[3/3]" in r.stderr                  # progress, case by case
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert "; malloc: every block from the heap" in text   # the script's own process only
    assert "| tiny conv2d |" in r.stdout        # the table on stdout too
    if _has("torch"):
        assert "torch/cconv" in text
    if _has("matplotlib"):
        assert png.stat().st_size > 1000


def test_bench_main_every_tiny_case_without_torch(tmp_path, capsys):
    """All tiny cases (one per public function and gradient), both layouts, float64, errors
    checked against the NumPy baseline; no torch needed."""
    from cconv import bench
    for layout in ("NCHW", "NHWC"):
        md = tmp_path / f"{layout}.md"
        status = bench.main(["--variants", "tiny", "--no-torch", "--dtype", "float64",
                             "--layout", layout, "--repeat", "1", "--target", "0",
                             "--threads", "1", "--markdown", str(md)])
        assert status == 0
        rows = [line for line in md.read_text().splitlines() if line.startswith("| tiny")]
        assert len(rows) == len(bc.TINY)
        for line in rows:
            err = line.split("|")[-3].strip()
            assert err.endswith("(numpy)"), line
            assert float(err.split()[0]) < 1e-12, line
    capsys.readouterr()


@pytest.mark.skipif(not (_has("onnx") and _has("onnxruntime")),
                    reason="onnx or onnxruntime not installed")
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_bench_ort_column_present_and_finite(tmp_path, capsys, layout):
    """A conv and a transposed conv (timed against ORT, channels-last too) and the shuffle (ORT
    cannot: '-')."""
    from cconv import bench
    md = tmp_path / "ort.md"
    status = bench.main(["--variants", "t_conv2d,t_convT2d,t_shuffle", "--quick", "--no-torch",
                         "--repeat", "1", "--target", "0", "--threads", "1", "--layout", layout,
                         "--markdown", str(md)])
    assert status == 0
    text = md.read_text()
    head = next(line for line in text.splitlines() if line.startswith("| case |"))
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols[1:4] == ["cconv ms", "ORT ms", "ORT/cconv"], cols
    rows = {c[0]: c for c in ([x.strip() for x in line.strip("|").split("|")]
                              for line in text.splitlines() if line.startswith("| tiny"))}
    for name in ("tiny conv2d", "tiny conv_transpose2d"):
        t_ort, ratio = float(rows[name][2]), float(rows[name][3].rstrip("x"))
        assert math.isfinite(t_ort) and t_ort > 0 and math.isfinite(ratio) and ratio > 0, rows[name]
        assert rows[name][-2].endswith("(ORT)") and float(rows[name][-2].split()[0]) < 1e-5
    assert rows["tiny channel_shuffle"][2:4] == ["- (shuffle)", "-"]
    assert "geometric mean of ORT/cconv:" in text and "over 2 case(s)" in text
    capsys.readouterr()


def test_bench_without_onnxruntime_says_so_once(monkeypatch, tmp_path, capsys):
    """onnxruntime missing (simulated): one note on stderr, no ORT column, status 0."""
    from cconv.bench import run
    monkeypatch.setattr(run, "_import_onnxruntime", lambda: None)
    md = tmp_path / "no_ort.md"
    assert run.main(["--variants", "t_conv2d,t_convT2d", "--no-torch", "--repeat", "1",
                     "--target", "0", "--threads", "1", "--markdown", str(md)]) == 0
    err = capsys.readouterr().err
    assert err.count("ONNX Runtime is not installed") == 1
    assert "ORT" not in md.read_text().split("\n\n- ")[0]   # the table and summary


def test_bench_ort_mismatch_is_reported_not_timed(monkeypatch, tmp_path, capsys):
    """An anchor that disagrees with cconv is a bug to report: '- (mismatch ...)', status 1."""
    from cconv.bench import run
    fake = type("FakeModule", (), {"__version__": "0"})
    monkeypatch.setattr(run, "_import_onnxruntime", lambda: (fake, fake))
    monkeypatch.setattr(bc, "ort_callable", lambda onnx, ort, case, x, weights, threads, cl:
                        lambda: np.zeros(bc.out_shape(case), x.dtype) + 1)
    md = tmp_path / "mismatch.md"
    assert run.main(["--variants", "t_conv2d", "--no-torch", "--repeat", "1", "--target", "0",
                     "--threads", "1", "--markdown", str(md)]) == 1
    row = next(line for line in md.read_text().splitlines() if line.startswith("| tiny conv2d"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("- (mismatch") and cells[3] == "-", cells
    assert "geometric mean of ORT" not in md.read_text()
    capsys.readouterr()


def test_ort_unsupported_reasons():
    by = {c.key: c for c in bc.TINY}
    assert bc.ort_unsupported(by["t_conv2d"], np.float32) is None
    assert bc.ort_unsupported(by["t_conv2d"], np.float64) == "float64"
    assert bc.ort_unsupported(by["t_shuffle"], np.float32) == "shuffle"
    assert bc.ort_unsupported(by["t_shuffled_grouped"], np.float32) == "shuffle"
    assert bc.ort_unsupported(by["t_grad_conv2d"], np.float32) == "gradient"


# (transposed, x shape, w shape, stride, padding per axis, dilation, groups, output_padding)
_ONNX_MODELS = {
    "conv": (False, (2, 3, 9, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, (0, 0)),
    "grouped_strided": (False, (1, 6, 10, 9), (9, 2, 3, 3), (2, 1), (1, 0), (1, 1), 3, (0, 0)),
    "asymmetric_pads": (False, (1, 3, 8, 8), (5, 3, 3, 2), (1, 2), ((0, 2), (1, 0)), (1, 1), 1,
                        (0, 0)),
    "dilated": (False, (1, 4, 12, 11), (4, 4, 3, 3), (1, 1), (2, 3), (2, 3), 1, (0, 0)),
    "transposed_output_padding": (True, (2, 4, 5, 6), (4, 3, 3, 4), (2, 3), (1, 0), (1, 1), 1,
                                  (1, 2)),
    "transposed_grouped_dilated": (True, (1, 4, 5, 5), (4, 2, 3, 3), (2, 2), (1, 1), (2, 1), 2,
                                   (1, 0)),
}


@pytest.mark.skipif(not (_has("onnx") and _has("onnxruntime")),
                    reason="onnx or onnxruntime not installed")
@pytest.mark.parametrize("name", sorted(_ONNX_MODELS))
@pytest.mark.parametrize("channels_last", [False, True])
def test_onnx_model_matches_cconv(name, channels_last):
    """Channels-last: the model transposes around its Conv nodes, fed the NHWC array."""
    import onnx
    import onnxruntime
    transposed, xs, ws, stride, padding, dilation, groups, output_padding = _ONNX_MODELS[name]
    rng = np.random.default_rng(5)
    x = bc.to_layout(rng.standard_normal(xs, dtype=np.float32), channels_last)
    w = rng.standard_normal(ws, dtype=np.float32)
    model = bc.onnx_model(onnx, x.shape, x.dtype, [(w, transposed, stride, padding, dilation,
                                                     groups, output_padding)], channels_last)
    got = bc.ort_session(onnxruntime, model, 1).run(None, {"x": x})[0]
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              layout="NHWC" if channels_last else "NCHW")
    if transposed:
        ref = cconv.conv_transpose2d(x, w, output_padding=output_padding, **kw)
    else:
        ref = cconv.conv2d(x, w, **kw)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def test_geomean_summary_per_group_and_anchor():
    """One line per anchor and group (and over all groups), from the cases each anchor ran."""
    from cconv.bench import run

    def row(group, t_cconv, **anchor):
        r = run.Row(bc.Case(f"k{len(anchor)}{t_cconv}", "n", "conv2d", (1, 1, 1, 1), (), (), group))
        r.cconv, r.anchor = t_cconv, anchor
        return r
    rows = [row("suite", 1.0, torch=2.0, ORT=0.5), row("suite", 1.0, torch=8.0),
            row("batch1", 2.0, torch=1.0, ORT=4.0)]
    assert run.geomean_summary(rows).splitlines() == [
        "geometric mean of torch/cconv: 4.00x over 2 case(s) (suite)",
        "geometric mean of torch/cconv: 0.50x over 1 case(s) (batch1)",
        "geometric mean of torch/cconv: 2.00x over 3 case(s) (all)",
        "geometric mean of ORT/cconv: 0.50x over 1 case(s) (suite)",
        "geometric mean of ORT/cconv: 2.00x over 1 case(s) (batch1)",
        "geometric mean of ORT/cconv: 1.00x over 2 case(s) (all)"]


def test_bench_list_and_unknown_variant(capsys):
    from cconv import bench
    assert bench.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "dense3x3" in out and "resnet50" in out
    assert bench.main(["--variants", "no-such-case"]) == 2


# --------------------------------------------------------------------------- the tables

def test_every_public_function_is_benchmarked():
    assert set(cconv._registry.NAMES) <= set(bc.PUBLIC_FUNCTIONS)
    script = {c.fn for c in bc.select(None)}
    asv = {c.fn for t in bc.NETWORKS.values() for c in t} | {c.fn for c in bc.SUITE + bc.FUNCTIONS}
    tiny = {c.fn for c in bc.TINY}
    grads = {c.base_fn for c in bc.GRAD + bc.NETWORK_GRADS if c.is_grad}
    for fn in bc.PUBLIC_FUNCTIONS:
        assert fn in script, f"{fn} missing from python -m cconv.bench"
        assert fn in asv, f"{fn} missing from the asv tables"
        assert fn in tiny and "grad." + fn in tiny, f"{fn} missing from the tiny cases"
        assert fn in grads, f"gradient of {fn} missing from the benchmark tables"


def test_suite_matches_benchmarks_md():
    """The suite's FLOP counts reproduce the GFLOP/s column of docs/benchmarks.md from its torch ms."""
    expect = {"dense3x3": (14.9, 125), "dense3x3_s2": (4.1, 223), "stem7x7": (2.3, 208),
              "pointwise": (6.8, 121), "depthwise": (2.3, 29), "depthwise_s2": (1.1, 15),
              "grouped_g32": (4.5, 51), "pointwise_g3": (1.4, 176), "dilated_d2": (21.3, 227),
              "dilated_d4": (20.4, 237), "transposed4x4_s2": (10.1, 213), "conv3d": (48.3, 230),
              "conv1d": (92.5, 139), "b1_dense3x3_64": (1.24, 186), "b1_dense3x3_256": (1.15, 201),
              "b1_pointwise": (0.58, 178), "b1_depthwise": (2.41, 3.4)}
    cases = {c.key: c for c in bc.SUITE + bc.BATCH1}
    assert len(cases) == 18
    for key, (ms, gflops) in expect.items():
        got = bc.flops(cases[key]) / (ms * 1e-3) / 1e9
        assert got == pytest.approx(gflops, rel=0.05), key


def test_output_shapes_match_cconv():
    for case in bc.TINY:
        if not case.is_grad:
            x, w, _ = bc.make_inputs(case, np.float32)
            assert bc.cconv_callable(cconv, case, x, w)().shape == bc.out_shape(case), case.key
    for case in bc.all_cases():   # every table, without computing anything
        kw = case.kwargs
        args = (kw.pop("groups"),) if case.base_fn == "channel_shuffle" else case.weights
        assert tuple(cconv.analysis.output_shape(case.base_fn, case.x, *args, **kw)) == \
            bc.out_shape(case), case.key


def test_flops_agree_with_cconv_analysis():
    """Two independent counts: the tables' own and cconv.analysis.cost."""
    for case in bc.all_cases():
        if not case.is_grad:
            assert bc.analysis_flops(case, cconv.analysis) == bc.flops(case), case.key


@pytest.mark.parametrize("channels_last", [False, True])
def test_numpy_baseline_matches_cconv(channels_last):
    """The im2col baseline (the bench's NumPy column and asv's peakmem_reference) is right."""
    for case in bc.TINY:
        x, w, dy = bc.make_inputs(case, np.float64, channels_last, seed=1)
        got = bc.cconv_callable(cconv, case, x, w, dy, channels_last)()
        ref = bc.numpy_callable(case, x, w, dy, channels_last)()
        if not isinstance(got, tuple):
            got, ref = (got,), (ref,)
        assert len(got) == len(ref), case.key
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10, err_msg=case.key)


@pytest.mark.skipif(not _has("torch"), reason="torch not installed")
@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_side_matches_cconv(channels_last):
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_torch_side(torch, channels_last)
    finally:
        torch.set_num_threads(threads)


def _check_torch_side(torch, channels_last):
    for case in bc.TINY:
        x, w, dy = bc.make_inputs(case, np.float64, channels_last, seed=2)
        got = bc.cconv_callable(cconv, case, x, w, dy, channels_last)()
        run, to_numpy = bc.torch_callable(torch, case, x, w, dy, channels_last)
        ref = to_numpy(run())
        if not isinstance(got, tuple):
            got, ref = (got,), (ref,)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10, err_msg=case.key)


@pytest.mark.skipif(not _has("torch"), reason="torch not installed")
def test_torch_side_runs_channels_last_memory_format():
    """NHWC arrays reach torch as its channels_last memory format (no copy): its 2-D
    convolutions then run channels-last and return channels_last tensors. (Its 3-D ones do for
    the suite's shapes, not for tiny ones: too slow a check here.)"""
    import torch
    by = {c.key: c for c in bc.TINY}
    for key in ("t_conv2d", "t_conv2d_g", "t_depthwise", "t_convT2d"):
        x, w, _ = bc.make_inputs(by[key], np.float32, True)
        run, _ = bc.torch_callable(torch, by[key], x, w, None, True)
        assert run().is_contiguous(memory_format=torch.channels_last), key
        assert bc._torch_tensor(torch, x, True).data_ptr() == x.ctypes.data


# --------------------------------------------------------------------------- asv

@pytest.fixture(scope="module")
def asv_modules():
    sys.path.insert(0, ASV_DIR)
    try:
        mods = [importlib.import_module(f"benchmarks.{name}") for name in (
            "bench_suite", "bench_networks", "bench_grad", "bench_smoke")]
        yield mods
    finally:
        sys.path.remove(ASV_DIR)


def _benchmark_classes(mod):
    return [obj for name, obj in vars(mod).items()
            if inspect.isclass(obj) and not name.startswith("_")]


def _smallest(cls):
    return min(cls.params[0], key=lambda k: bc.flops({c.key: c for c in cls.table}[k])
               + math.prod({c.key: c for c in cls.table}[k].x))


def test_asv_tables_cover_the_suite(asv_modules):
    names = {cls.__name__ for mod in asv_modules for cls in _benchmark_classes(mod)}
    for expected in ("Suite", "SuitePlanned", "SuiteTorch", "Batch1", "Functions", "ResNet50",
                     "MobileNetV2", "ShuffleNet", "DeepLab", "DCGAN", "Volumetric", "AudioText",
                     "Factorized", "Grad", "GradLayers", "Smoke", "SuiteOrt", "SmokeOrt"):
        assert expected in names
    suite = next(c for m in asv_modules for c in _benchmark_classes(m) if c.__name__ == "Suite")
    assert suite.params[0] == [c.key for c in bc.SUITE]
    assert suite.param_names == ["case", "dtype", "layout", "threads"]


def test_asv_benchmarks_run_once(asv_modules):
    """setup + every time_/peakmem_/track_ method, once, on each class's smallest case
    (float32, channels-first and -last, one thread); NotImplementedError is asv's skip."""
    ran, skipped = 0, []
    for mod in asv_modules:
        for cls in _benchmark_classes(mod):
            key = _smallest(cls)
            methods = [n for n in dir(cls) if n.startswith(("time_", "peakmem_", "track_"))
                       and callable(getattr(cls, n))]
            assert methods, cls.__name__
            for layout in ("NCHW", "NHWC"):
                params = (key, "float32", layout, 1)
                bench = cls()
                bench.min_track_seconds = 0.0
                bench.torch_samples = 1
                try:
                    bench.setup(*params)
                except NotImplementedError as e:
                    skipped.append((cls.__name__, layout, str(e)))
                    continue
                for name in methods:
                    value = getattr(bench, name)(*params)
                    if name.startswith("track_"):   # GFLOP/s of a shuffle is 0
                        assert np.isfinite(value) and value >= 0, (cls.__name__, name, value)
                        assert value > 0 or "shuffle" in key, (cls.__name__, name, key)
                    ran += 1
    assert ran > 40
    has_ort = _has("onnx") and _has("onnxruntime")
    for name, layout, why in skipped:   # torch or onnxruntime missing
        if name.endswith("Ort"):
            assert why.startswith("onnxruntime:"), (name, why)
            assert not has_ort, (name, layout, why)
        else:
            assert "torch" in why, (name, why)


def test_alignment_script_runs(capsys):
    """python -m cconv.bench.alignment: the offset table (each kernel) and the --fresh table."""
    from cconv.bench import alignment
    kernels = ",".join(alignment.KERNELS)
    alignment.main(["--kernels", kernels, "--offsets", "0,16", "--rounds", "1", "--threads", "1",
                    "--target", "0"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    for name in alignment.KERNELS:
        assert [r[1] for r in rows if r[0] == name] == ["0", "16"], name
    try:
        alignment.main(["--fresh", "--rounds", "1", "--threads", "1", "--cpu-time",
                        "--target", "0"])
    finally:
        alignment.CLOCK[0] = alignment.time.perf_counter
    assert "channel_shuffle (4,96,48,48) g4  cconv out=" in capsys.readouterr().out
    with pytest.raises(SystemExit):   # CPU time adds up threads: 1 thread only
        alignment.main(["--cpu-time", "--threads", "2"])


def test_asv_alignment_runs_once():
    """The channel-shuffle alignment benchmarks (their own parameters): setup and each method."""
    sys.path.insert(0, ASV_DIR)
    try:
        mod = importlib.import_module("benchmarks.bench_alignment")
    finally:
        sys.path.remove(ASV_DIR)
    for layout in mod.ShuffleAlignment.params[0]:
        for offset in mod.ShuffleAlignment.params[1]:
            bench = mod.ShuffleAlignment()
            bench.setup(layout, offset, 1)
            y = bench.ys[offset]
            assert (y.ctypes.data - bench.x.ctypes.data) % 4096 == offset
            y[...] = 0
            assert bench.time_channel_shuffle(layout, offset, 1) is None
            np.testing.assert_array_equal(y, bc.np_shuffle(bench.x, 4, layout == "NHWC"))
            assert 0 < bench.track_alias_ratio(layout, offset, 1) < 100


def test_asv_setup_skips_impossible_thread_counts(asv_modules):
    suite = next(c for m in asv_modules for c in _benchmark_classes(m) if c.__name__ == "Suite")
    with pytest.raises(NotImplementedError):
        suite().setup("shuffle_g4", "float32", "NCHW", (os.cpu_count() or 1) + 1)


@pytest.mark.skipif(shutil.which("asv") is None, reason="asv not installed")
def test_asv_check():
    """`asv check` imports every benchmark and validates their signatures (offline: -E existing
    uses this interpreter, nothing is built or downloaded)."""
    r = subprocess.run(["asv", "check", "-E", f"existing:{sys.executable}"], cwd=ASV_DIR,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No problems found" in r.stdout, r.stdout


@pytest.mark.skipif(shutil.which("asv") is None or not os.environ.get("CCONV_ASV_SMOKE"),
                    reason="set CCONV_ASV_SMOKE=1 to run asv's Smoke subset for real (~40 s)")
def test_asv_smoke_quick_run(tmp_path, monkeypatch):
    """What CI runs so the suite never rots: every kind of benchmark, through asv itself, once.
    HOME points at a temporary directory so `asv machine` writes its file there, and the
    machine's limits too: measured here by this build, read by the build asv runs (which may
    predate the FMA loop), as they are in use."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME")
    machine.limits(cconv.get_isa(), "float32", 1)
    env = dict(os.environ)
    existing = f"existing:{sys.executable}"
    r = subprocess.run(["asv", "machine", "--yes"], cwd=ASV_DIR, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["asv", "run", "-E", existing, "--quick", "--bench", "Smoke", "--dry-run"],
                       cwd=ASV_DIR, env=env, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failed" not in r.stdout, r.stdout
    assert r.stdout.count(" ok") >= 7, r.stdout


# --------------------------------------------------------------------------- the machine's limits

def test_machine_limits_measured_plausible_and_cached(monkeypatch):
    """Measured once into the cache (both dtypes and both bandwidths at once), then read back
    without measuring; --remeasure measures again."""
    isa = cconv.get_isa()
    machine.clear_cache()
    calls = []
    measure_peak, measure_bandwidth = machine.measure_peak, machine.measure_bandwidth
    monkeypatch.setattr(machine, "measure_peak", lambda *a: calls.append("peak") or measure_peak(*a))
    monkeypatch.setattr(machine, "measure_bandwidth",
                        lambda t: calls.append("bw") or measure_bandwidth(t, nbytes=32 << 20))
    lim = machine.limits(isa, "float32", 1)
    assert calls == ["peak", "peak", "bw"]
    assert os.path.isfile(machine.cache_path())
    # one core of a 2010s-2020s x86 or ARM CPU: a few GFLOP/s (SSE2) to a few hundred (AVX-512)
    assert 1 < lim.peak_gflops < 1000, lim
    assert 0.5 < lim.bandwidth_gbs < 1000 and 0.5 < lim.copy_gbs < 1000, lim
    assert (lim.isa, lim.dtype, lim.threads) == (isa, "float32", 1)
    lim64 = machine.limits(isa, np.float64, 1)   # from the cache
    assert calls == ["peak", "peak", "bw"]
    # the same FMAs on half as many lanes: about half the GFLOP/s (clock drift allowed)
    assert 0.3 < lim64.peak_gflops / lim.peak_gflops < 0.7, (lim, lim64)
    assert "measured" in lim.label() and isa in lim.label() and "triad" in lim.label()
    assert machine.limits(isa, "float32", 1) == lim
    machine.limits(isa, "float32", 1, remeasure=True)
    assert calls == ["peak", "peak", "bw"] * 2


def test_machine_peak_scales_with_threads_and_isas():
    """The FMA loop of every ISA, float32: wider vectors are not much slower (Zen 4 splits
    512-bit FMAs in two; other work on the machine adds noise); a team of two reports two."""
    gflops = {isa: machine.measure_peak(isa, "float32", 1, seconds=0.02)[0]
              for isa in cconv.available_isas()}
    for wide, narrow in zip(cconv.available_isas(), cconv.available_isas()[1:]):
        assert gflops[wide] > 0.6 * gflops[narrow], gflops
    flops, seconds, team = cconv._core.fma_peak(cconv.get_isa(), "float64", 1000, 2)
    assert team == (2 if cconv._core.has_openmp() else 1) and flops > 0 and seconds > 0
    with pytest.raises(ValueError, match="isa 'sse9'"):
        cconv._core.fma_peak("sse9", "float32", 1000, 1)


def test_machine_overrides_beat_measurements(monkeypatch):
    monkeypatch.setattr(machine, "measure_peak", None)        # measuring would fail
    monkeypatch.setattr(machine, "measure_bandwidth", None)
    monkeypatch.setenv(machine.ENV_PEAK, "50")
    monkeypatch.setenv(machine.ENV_BANDWIDTH, " 10.5 ")
    lim = machine.limits("avx2", np.float64, 2)
    assert (lim.peak_gflops, lim.bandwidth_gbs) == (50.0, 10.5)   # per core x 2 threads / 2
    assert machine.ENV_PEAK in lim.label() and machine.ENV_BANDWIDTH in lim.label()
    lim = machine.limits("avx2", "float32", 2, peak_per_core=10, bandwidth=3)  # arguments first
    assert (lim.peak_gflops, lim.bandwidth_gbs) == (20.0, 3.0)
    assert "--peak" in lim.label()


@pytest.mark.parametrize("value", ["fast", "-3", "nan", "inf", "0"])
def test_bad_peak_and_bandwidth_in_environment_warn_and_measure(monkeypatch, value):
    monkeypatch.setenv(machine.ENV_PEAK, value)
    monkeypatch.setenv(machine.ENV_BANDWIDTH, value)
    monkeypatch.setattr(machine, "measure_peak", lambda isa, dtype, threads: (7.0, threads))
    monkeypatch.setattr(machine, "measure_bandwidth", lambda threads: {"copy": 2.0, "triad": 3.0})
    machine.clear_cache()
    with pytest.warns(RuntimeWarning) as record:
        lim = machine.limits("generic", "float32", 1)
    assert (lim.peak_gflops, lim.bandwidth_gbs, lim.copy_gbs) == (7.0, 3.0, 2.0)
    assert [str(w.message) for w in record] == [
        f"{machine.ENV_PEAK}={value!r} is not a positive number; measuring instead",
        f"{machine.ENV_BANDWIDTH}={value!r} is not a positive number; measuring instead"]
    machine.clear_cache()


def test_machine_cache_unreadable_or_from_elsewhere_is_remeasured(monkeypatch):
    monkeypatch.setattr(machine, "measure_peak", lambda isa, dtype, threads: (7.0, threads))
    monkeypatch.setattr(machine, "measure_bandwidth", lambda threads: {"copy": 2.0, "triad": 3.0})
    path = machine.cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for text in ("{not json", '{"version": 0, "measured": {}}'):
        with open(path, "w") as f:
            f.write(text)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            assert machine.limits("generic", "float32", 3).peak_gflops == 7.0
        assert machine.load_cache()[machine.peak_key("generic", "float64", 3)]["gflops"] == 7.0
    machine.clear_cache()
