"""The tools that judge a restructuring of the C core: tools/compare_builds.py (speed, old build
against new) and tools/c_metrics.py (size, function length). Fast: one tiny bench process."""
import datetime
import importlib.machinery
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_builds = _load("compare_builds")
c_metrics = _load("c_metrics")

C_SOURCE = """\
#include <stddef.h>

struct pair {
    int a;
};

static const int table[] = {
    1, 2,
};

/* a comment */
static int GWC(run_gw_)(const float *x,
                        int n)
{
    int s = 0;
    return s;
}

#define BODY(T) \\
    T x;        \\
    (void)x;

int plain_${SFX}(void) {
    return 0;
}
"""


def test_c_metrics_finds_functions_and_multiline_macros():
    found = c_metrics.functions(C_SOURCE.split("\n"))
    assert found == [("GWC(run_gw_)", 12, 6), ("BODY (macro)", 19, 3), ("plain_${SFX}", 23, 3)]


def test_c_metrics_counts_the_c_core_of_this_checkout():
    files = c_metrics.c_files(ROOT)
    assert "include/cconv.h" in files
    assert all(f.startswith(("src/cconv/_c/", "include/")) for f in files)
    assert not any(f.startswith("build/") for f in files)


def _report(ratios, failed=()):
    best = {("g", f"case {i}"): (q, 1.0) for i, q in enumerate(ratios)}   # old / new = q
    args = compare_builds.parse_args(["old", "new"])
    info = {"old": ("rev", "avx2"), "new": ("rev", "avx2")}
    return compare_builds.report(best, list(failed), args, info, "cmd",
                                 datetime.datetime.now(datetime.timezone.utc), 0.5)


@pytest.mark.parametrize("ratios, ok", [
    ([1.0, 1.0], True),
    ([1.2, 0.96], True),
    ([1.2, 0.94], False),      # one case below 0.95
    ([1.01, 0.98], False),     # geometric mean below 1
])
def test_compare_builds_rule(ratios, ok):
    text, passed = _report(ratios)
    assert passed is ok
    assert ("**PASS**" if ok else "**FAIL**") in text


def test_compare_builds_fails_on_a_failed_case():
    text, passed = _report([1.1], failed=["case [g] (new)"])
    assert not passed and "case [g] (new)" in text


def test_compare_builds_reads_the_bench_table(tmp_path):
    built = [f for f in os.listdir(os.path.join(ROOT, "src", "cconv"))
             if f.startswith("_core.") and f.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))]
    if not built:
        pytest.skip("the extension is not built in place in src/cconv")
    times = compare_builds.bench(ROOT, ["--variants", "t_shuffle", "--quick", "--no-torch",
                                        "--no-numpy", "--threads", "1"], str(tmp_path))
    assert list(times) == ["tiny channel_shuffle"]
    assert 0 < times["tiny channel_shuffle"] < 1
