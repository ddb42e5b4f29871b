"""Memory stays flat over many small calls (docs/leaks.md).

A loop of small calls through the Python API -- a one-shot conv2d (plan created and destroyed each
call), a reused plan, a weight gradient, a depthwise convolution, an argument error raised in
Python and one raised by the C core after it allocated the plan -- must not grow the resident set
once warmed up. The C core alone is checked under valgrind and LeakSanitizer by tests/leaks/run.sh;
this catches leaks in the Cython layer and the Python wrappers too (a plan never destroyed, an
array kept alive by a cache).
"""
import os
import resource

import numpy as np
import pytest

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
import cconv.grad  # noqa: E402

# Growth allowed after the warm-up. A leak of the smallest thing a call allocates -- one output
# array (~200 bytes with its header) or one C plan (~1 KiB with its packed weights) -- once per
# iteration of the loop (100000 / 6 calls = 16666 iterations) grows the RSS by >= 3.3 MB: a
# 200-byte bytearray kept per iteration measured +3.7 MiB. A clean run measured 0 KiB of growth.
MAX_GROWTH = 2 << 20


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _calls():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    xd = rng.standard_normal((1, 4, 6, 6))
    wd = rng.standard_normal((4, 1, 3, 3))
    plan = cconv.plan_conv2d(x.shape, w, b, padding=1)

    def conv():
        return cconv.conv2d(x, w, b)

    def planned():
        return plan(x)

    def grad():
        return cconv.grad.conv2d_weight(x, w.shape, g)

    def depthwise():
        return cconv.depthwise_conv2d(xd, wd, padding=1)

    def bad_argument():  # rejected in Python, before any C call
        with pytest.raises(ValueError, match="stride"):
            cconv.conv2d(x, w, stride=0)

    def refused_by_c():  # the C core allocates the plan, then Winograd refuses stride 2
        with pytest.raises(ValueError, match="winograd"):
            cconv.conv2d(x, w, stride=2, algorithm="winograd")

    return [conv, planned, grad, depthwise, bad_argument, refused_by_c]


def _check_flat(n_calls):
    calls = _calls()
    iterations = n_calls // len(calls)
    warm = max(iterations // 5, 1000)
    for _ in range(warm):
        for c in calls:
            c()
    before = _rss()
    for _ in range(iterations):
        for c in calls:
            c()
    growth = _rss() - before
    assert growth < MAX_GROWTH, (f"RSS grew by {growth / 2**20:.2f} MiB over {iterations * len(calls)} "
                                 f"calls after the warm-up (limit {MAX_GROWTH / 2**20:.0f} MiB)")
    return growth


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")
def test_rss_flat_over_100k_calls():
    _check_flat(100_000)
