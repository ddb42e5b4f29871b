"""Threads: OpenMP thread count does not change a single bit, the thread
settings round-trip, and many Python threads may call cconv at once (the GIL
is released around the kernels)."""

import concurrent.futures
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given

import reference as R
from helpers import arrange, conv_cases, conv_transpose_cases, num_threads, rand, use_isa

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")


def _variant_calls(rng, dtype, layout):
    """(name, thunk) pairs covering every public function on shapes big enough to be split."""
    last = layout == "NHWC"
    x = R.from_channels_first(rng.standard_normal((3, 12, 17, 19)), layout).astype(dtype)
    x = np.ascontiguousarray(x)
    w = rng.standard_normal((20, 12, 3, 3)).astype(dtype)
    wg = rng.standard_normal((21, 4, 3, 3)).astype(dtype)
    wt = rng.standard_normal((12, 7, 4, 4)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    dw = rng.standard_normal((24 if not last else 12, 1, 5, 5)).astype(dtype)
    pw = rng.standard_normal((16, dw.shape[0], 1, 1)).astype(dtype)
    vw = rng.standard_normal((9, 12, 5, 1)).astype(dtype)
    hw = rng.standard_normal((14, 9, 1, 5)).astype(dtype)
    ch, fv, fh = (rng.standard_normal(s).astype(dtype) for s in ((10, 12), (10, 3), (10, 5)))
    x1 = rng.standard_normal((2, 12, 50)).astype(dtype)
    x3 = rng.standard_normal((1, 12, 6, 7, 8)).astype(dtype)
    lay = dict(layout=layout)
    return [
        ("conv2d", lambda: cconv.conv2d(x, w, b, padding=1, **lay)),
        ("conv2d reflect stride", lambda: cconv.conv2d(x, w, b, stride=2, padding=2, padding_mode="reflect", **lay)),
        ("conv2d grouped dilated", lambda: cconv.conv2d(x, wg, None, padding="same", dilation=2, groups=3, **lay)),
        ("conv2d 1x1", lambda: cconv.conv2d(x, w[:, :, :1, :1], b, **lay)),
        ("conv1d", lambda: cconv.conv1d(x1, w[:, :, 0], b, padding=1)),
        ("conv3d", lambda: cconv.conv3d(x3, np.stack([w] * 2, axis=2), b, padding=1)),
        ("conv_transpose2d", lambda: cconv.conv_transpose2d(x, wt, None, stride=2, padding=1, **lay)),
        ("depthwise", lambda: cconv.depthwise_conv2d(x, dw, padding=2, **lay)),
        ("separable", lambda: cconv.separable_conv2d(x, dw, pw, padding=2, **lay)),
        ("spatially separable", lambda: cconv.spatially_separable_conv2d(x, vw, hw, padding=2, **lay)),
        ("flattened", lambda: cconv.flattened_conv2d(x, ch, fv, fh, padding=(1, 2), **lay)),
        ("channel_shuffle", lambda: cconv.channel_shuffle(x, 4, **lay)),
    ]


def test_thread_settings_roundtrip():
    old = cconv.get_num_threads()
    try:
        cconv.set_num_threads(1)
        assert cconv.get_num_threads() == 1
        cconv.set_num_threads(2)
        assert cconv.get_num_threads() == 2
    finally:
        cconv.set_num_threads(old)
    assert cconv.get_num_threads() == old


def test_show_config_mentions_isa_and_threads(capsys):
    cconv.show_config()
    text = capsys.readouterr().out
    assert cconv.get_isa() in text
    assert "thread" in text.lower() and "openmp" in text.lower()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_bitwise_identical_for_1_and_2_threads(dtype, layout, isa):
    rng = np.random.default_rng(11)
    calls = _variant_calls(rng, dtype, layout)
    with use_isa(isa):
        with num_threads(1):
            one = [fn() for _, fn in calls]
        with num_threads(2):
            two = [fn() for _, fn in calls]
        with num_threads(3):  # more threads than cores must still be exact
            three = [fn() for _, fn in calls]
    for (name, _), a, b, c in zip(calls, one, two, three):
        assert np.array_equal(a, b, equal_nan=True), f"{name}: 1 vs 2 threads differ"
        assert np.array_equal(a, c, equal_nan=True), f"{name}: 1 vs 3 threads differ"


@given(case=conv_cases())
def test_bitwise_identical_threads_property(case, isa):
    rng = np.random.default_rng(case.seed)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_out, case.c_in // case.groups, *case.kernel), case.w_dtype)
    fn = getattr(cconv, f"conv{case.nd}d")
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
              padding_mode=case.padding_mode, layout=case.layout)
    with use_isa(isa):
        with num_threads(1):
            a = fn(arrange(x, case.x_arr), w, **kw)
        with num_threads(2):
            b = fn(x, arrange(w, case.w_arr), **kw)
    assert np.array_equal(a, b)


@given(case=conv_transpose_cases())
def test_bitwise_identical_threads_transposed(case, isa):
    rng = np.random.default_rng(case.seed)
    x = rand(rng, case.x_shape(), case.x_dtype)
    w = rand(rng, (case.c_in, case.c_out // case.groups, *case.kernel), case.w_dtype)
    fn = getattr(cconv, f"conv_transpose{case.nd}d")
    kw = dict(stride=case.stride, padding=case.padding, output_padding=case.extra["output_padding"],
              dilation=case.dilation, groups=case.groups, layout=case.layout)
    with use_isa(isa):
        with num_threads(1):
            a = fn(x, w, **kw)
        with num_threads(2):
            b = fn(x, w, **kw)
    assert np.array_equal(a, b)


def test_many_python_threads_at_once():
    """64 calls of every variant from 8 Python threads: each equals its serial result."""
    rng = np.random.default_rng(12)
    calls = []
    for dtype in (np.float32, np.float64):
        for layout in ("NCHW", "NHWC"):
            calls += _variant_calls(rng, dtype, layout)
    serial = [fn() for _, fn in calls]
    jobs = list(range(len(calls))) * 3
    np.random.default_rng(0).shuffle(jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: (i, calls[i][1]()), jobs))
    for i, y in results:
        assert np.array_equal(y, serial[i], equal_nan=True), f"{calls[i][0]} differs under concurrency"


def test_threads_with_out_buffers_and_shared_inputs():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 8, 20, 20))
    x.flags.writeable = False
    w = rng.standard_normal((16, 8, 3, 3))
    expected = cconv.conv2d(x, w, padding=1)
    outs = [np.empty_like(expected) for _ in range(16)]
    barrier = threading.Barrier(8)

    def work(k):
        if k < 8:
            barrier.wait()
        return cconv.conv2d(x, w, padding=1, out=outs[k])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(work, range(16)))
    for k, y in enumerate(got):
        assert y is outs[k]
        np.testing.assert_array_equal(y, expected)


def test_set_isa_and_threads_from_other_threads_do_not_corrupt_results():
    """Changing thread count in one Python thread while others compute keeps results exact."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    expected = cconv.conv2d(x, w, padding=1)
    stop = threading.Event()
    old = cconv.get_num_threads()

    def toggler():
        n = 1
        while not stop.is_set():
            cconv.set_num_threads(n)
            n = 3 - n
            time.sleep(0.001)

    t = threading.Thread(target=toggler)
    t.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(lambda _: cconv.conv2d(x, w, padding=1), range(24)))
    finally:
        stop.set()
        t.join()
        cconv.set_num_threads(old)
    for y in got:
        np.testing.assert_array_equal(y, expected)


def test_gil_is_released_during_kernels():
    """While one thread runs a long convolution, the main thread keeps running Python code."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((1, 64, 64, 64))
    w = rng.standard_normal((64, 64, 3, 3))
    with num_threads(1):
        # calibrate: grow the batch until one call takes >= 0.2 s
        for _ in range(6):
            t0 = time.perf_counter()
            cconv.conv2d(x, w, padding=1)
            dt = time.perf_counter() - t0
            if dt >= 0.2:
                break
            x = np.concatenate([x, x])
        ratios = []
        for _attempt in range(3):  # a loaded machine can starve the loop; holding the GIL always does
            max_gap, elapsed = _longest_main_thread_stall(x, w)
            ratios.append((max_gap, elapsed))
            if max_gap < 0.6 * elapsed:
                break
    # holding the GIL for the whole kernel would stall this loop for ~elapsed seconds
    assert max_gap < 0.6 * elapsed, ratios


def _longest_main_thread_stall(x, w):
    done = threading.Event()
    elapsed = []

    def run():
        t0 = time.perf_counter()
        cconv.conv2d(x, w, padding=1)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    th = threading.Thread(target=run)
    last = time.perf_counter()
    max_gap = 0.0
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
    th.join()
    return max_gap, elapsed[0]


def test_omp_num_threads_and_cconv_isa_environment():
    """OMP_NUM_THREADS sets the default thread count; CCONV_ISA forces the path at import."""
    isas = cconv.available_isas()
    env = dict(os.environ, OMP_NUM_THREADS="1", CCONV_ISA=isas[-1])
    code = "import cconv; print(cconv.get_num_threads(), cconv.get_isa())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n, isa = out.stdout.split()
    assert isa == isas[-1]
    if cconv._core.has_openmp():
        assert n == "1"


def _import_cconv(**env):
    """(cconv.get_isa(), stderr) of `import cconv` in a fresh process with env set, warnings on."""
    out = subprocess.run([sys.executable, "-W", "always::RuntimeWarning", "-c",
                          "import cconv; print(cconv.get_isa())"],
                         env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip(), out.stderr


_UNAVAILABLE = [n for n in cconv.ISAS if n not in cconv.available_isas()] or [
    pytest.param("avx512", marks=pytest.mark.skip(reason="this CPU and build run every ISA"))]


@pytest.mark.parametrize("value", ["bogus", "AVX2", " avx2", *_UNAVAILABLE])
def test_cconv_isa_not_available_warns_once_at_import(value):
    isa, err = _import_cconv(CCONV_ISA=value)
    assert isa == cconv.available_isas()[0]
    assert err.count("RuntimeWarning") == 1, err
    assert f"CCONV_ISA={value!r} is not an instruction set this CPU and build can run" in err
    assert f"using {isa!r}" in err


@pytest.mark.parametrize("value", ["", "auto", *cconv.available_isas()])
def test_cconv_isa_available_imports_quietly(value):
    isa, err = _import_cconv(CCONV_ISA=value)
    assert isa == (value or "auto").replace("auto", cconv.available_isas()[0])
    assert "Warning" not in err, err


def test_threadpoolctl_limits_cconv():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl not installed")
    if not cconv._core.has_openmp():
        pytest.skip("built without OpenMP")
    old = cconv.get_num_threads()
    cconv.set_num_threads(0)  # follow OpenMP
    try:
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            assert cconv.get_num_threads() == 1
    finally:
        cconv.set_num_threads(old)


# ------------------------------------------------- use_isa and the thread count are per context

def _isa_calls(rng):
    """name -> function(plan) of a forward call, a planned call and a weight gradient big enough
    that the ISAs sum in different orders (and split over threads)."""
    x = rng.standard_normal((2, 16, 21, 19)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    gy = rng.standard_normal((2, 24, 21, 19)).astype(np.float32)
    return x, w, b, {
        "conv2d": lambda plan: cconv.conv2d(x, w, b, padding=1),
        "plan": lambda plan: plan(x),
        "weight grad": lambda plan: cconv.grad.conv2d_weight(x, w.shape, gy, padding=1),
    }


def _alone(isa, x, w, b, calls):
    with cconv.use_isa(isa):
        plan = cconv.plan_conv2d(x.shape, w, b, padding=1)
        return {name: fn(plan) for name, fn in calls.items()}


def test_use_isa_in_threads_is_per_thread():
    """Python threads at once, each in its own use_isa block (and each changing the process-wide
    thread count) for a bounded time: every call equals, bitwise, the result computed alone for
    that thread's ISA."""
    isas = cconv.available_isas()
    if len(isas) < 2:
        pytest.skip("one ISA on this CPU/build: nothing to mix")
    x, w, b, calls = _isa_calls(np.random.default_rng(16))
    expected = {isa: _alone(isa, x, w, b, calls) for isa in isas}
    # The test can only fail if the ISAs give different bits. They do in the optimised build; an
    # -O1 sanitizer build can contract the same multiply-adds in every ISA file.
    if all(np.array_equal(expected[isas[0]][name], expected[isa][name])
           for isa in isas[1:] for name in calls):
        pytest.skip("every ISA gives the same bits in this build: a mix-up would not show")
    default_isa, old_threads = cconv.get_isa(), cconv.get_num_threads()
    deadline = time.monotonic() + 2.0
    start = threading.Barrier(2 * len(isas))
    errors, counts = [], []

    def work(k, isa):
        try:
            start.wait(timeout=30)
            with cconv.use_isa(isa):
                plan = cconv.plan_conv2d(x.shape, w, b, padding=1)
                n = 0
                while time.monotonic() < deadline:
                    cconv.set_num_threads(1 + (n + k) % 3)
                    for name, fn in calls.items():
                        if cconv.get_isa() != isa:
                            errors.append(f"{isa}: get_isa() is {cconv.get_isa()}")
                        if not np.array_equal(fn(plan), expected[isa][name]):
                            errors.append(f"{isa}: {name} differs from its result alone")
                    n += 1
            counts.append(n)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(f"{isa}: {e!r}")

    threads = [threading.Thread(target=work, args=(k, isa), daemon=True)
               for k, isa in enumerate(isas * 2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a thread did not finish"
    finally:
        cconv.set_num_threads(old_threads)
    assert not errors, sorted(set(errors))
    assert len(counts) == len(threads) and min(counts) >= 1, counts
    assert cconv.get_isa() == default_isa  # the blocks did not leak out of their threads


def test_use_isa_in_asyncio_tasks_is_per_task():
    """Two asyncio tasks on one thread, each in its own use_isa block, taking turns inside it."""
    import asyncio

    isas = cconv.available_isas()
    if len(isas) < 2:
        pytest.skip("one ISA on this CPU/build: nothing to mix")
    x, w, b, calls = _isa_calls(np.random.default_rng(17))
    expected = {isa: _alone(isa, x, w, b, calls) for isa in isas}
    default_isa = cconv.get_isa()
    errors = []

    async def task(isa):
        with cconv.use_isa(isa):
            plan = cconv.plan_conv2d(x.shape, w, b, padding=1)
            for _ in range(5):
                await asyncio.sleep(0)  # the other task runs inside its own block here
                if cconv.get_isa() != isa:
                    errors.append(f"{isa}: get_isa() is {cconv.get_isa()}")
                for name, fn in calls.items():
                    if not np.array_equal(fn(plan), expected[isa][name]):
                        errors.append(f"{isa}: {name} differs from its result alone")

    async def main():
        await asyncio.wait_for(asyncio.gather(*(task(isa) for isa in isas)), timeout=120)

    asyncio.run(main())
    assert not errors, sorted(set(errors))
    assert cconv.get_isa() == default_isa


def test_use_isa_and_use_num_threads_check_their_argument():
    for bad in ("bogus", "AVX2", 3):
        with pytest.raises(ValueError, match="isa must be one of"):
            with cconv.use_isa(bad):
                pass
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="num_threads"):
            with cconv.use_num_threads(bad):
                pass
    with cconv.use_isa("auto"):
        assert cconv.get_isa() == cconv.available_isas()[0]


def test_use_num_threads_is_per_context_and_reaches_the_kernels():
    """The block's count is what plans size their per-thread scratch for; another thread (which
    does not inherit the block) and the code after the block see the process-wide count."""
    w = np.ones((24, 16, 3, 3), np.float32)
    old = cconv.get_num_threads()
    with num_threads(1):
        one = cconv.plan_conv2d((2, 16, 21, 19), w, padding=1).workspace_bytes
    with num_threads(2):
        two = cconv.plan_conv2d((2, 16, 21, 19), w, padding=1).workspace_bytes
        assert two > one
        with cconv.use_num_threads(3):
            assert cconv.get_num_threads() == 3
            three = cconv.plan_conv2d((2, 16, 21, 19), w, padding=1).workspace_bytes
            seen = []
            t = threading.Thread(target=lambda: seen.append(cconv.get_num_threads()))
            t.start()
            t.join(timeout=60)
            assert not t.is_alive() and seen == [2]
            with cconv.use_num_threads(None):
                assert cconv.get_num_threads() == 2
        assert cconv.get_num_threads() == 2
    # per-thread scratch plus, on some ISAs' plans, a shared part: linear in the thread count
    assert three - two == two - one
    assert cconv.get_num_threads() == old
