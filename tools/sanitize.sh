#!/usr/bin/env bash
# Build cconv with AddressSanitizer and UndefinedBehaviorSanitizer in a scratch copy of this
# checkout, then run pytest against that build in the ordinary CPython, with the ASan runtime
# preloaded. The first report aborts the run (the build has no recovery), so a clean exit means
# no report.
#
#   tools/sanitize.sh                 # the CI subset (every algorithm, ISA, dtype, layout, grads)
#   tools/sanitize.sh tests           # the whole suite
#   tools/sanitize.sh tests/test_grad.py -k depthwise
#
# CCONV_SANITIZE_DIR=DIR builds in DIR (kept afterwards) instead of a temporary directory.
# CC=clang builds with clang's sanitizers instead of GCC's. CCONV_SANITIZE= (empty) makes an
# ordinary optimised build instead and runs the same tests on it: `CCONV_SANITIZE= CC=clang
# tools/sanitize.sh` is the suite on a clang build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-gcc}
sanitize=${CCONV_SANITIZE-address,undefined}
if [ -n "${CCONV_SANITIZE_DIR:-}" ]; then
    work=$CCONV_SANITIZE_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

# The tracked and untracked (not ignored) files, as they are in the working tree.
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$work"
(cd "$work" && CC="$cc" CCONV_SANITIZE="$sanitize" python setup.py -q build_ext --inplace >build.log 2>&1) \
    || { tail -n 40 "$work/build.log"; exit 1; }

if [ $# -eq 0 ]; then
    # Every algorithm and ISA path, forward and backward, both dtypes and layouts, the fused
    # variants, plans, padding edge cases and bad input: the hypothesis 'dev' profile keeps the
    # instrumented run to a few minutes.
    export CCONV_HYPOTHESIS_PROFILE=${CCONV_HYPOTHESIS_PROFILE:-dev}
    set -- tests/test_forward.py tests/test_grad.py tests/test_plans.py tests/test_fused.py \
        tests/test_winograd.py tests/test_depthwise_edges.py tests/test_band_fill.py \
        tests/test_errors.py tests/test_reference.py tests/test_direct_cf.py
fi

if [ -z "$sanitize" ]; then
    cd "$work"
    PYTHONPATH="$work/src" python -m pytest -q -p no:cacheprovider "$@"
    exit
fi
if [ "$cc" = clang ]; then
    asan=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
else
    asan=$("$cc" -print-file-name=libasan.so)
fi
# libstdc++ is preloaded too: ASan resolves its __cxa_throw interceptor when it starts, and python
# itself does not link libstdc++, so the first C++ exception (torch raising inside a test) would
# otherwise stop the run with "CHECK failed: real___cxa_throw".
preload="$asan $("$cc" -print-file-name=libstdc++.so.6)"
# detect_leaks=0: CPython itself keeps memory at exit (the leak checks run separately, see
# docs/checks.md). allocator_may_return_null=1: some tests ask for impossible sizes on purpose
# and expect MemoryError, which ASan would otherwise report as an error. PYTHONMALLOC=malloc
# sends Python's small objects through the interposed malloc too, so they get redzones.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd "$work"
# --capture=sys: pytest captures Python's streams only, so a report written to file descriptor 2
# reaches the log before the abort (with fd capture it would die with the test's captured output).
LD_PRELOAD="$preload" PYTHONMALLOC=malloc PYTHONPATH="$work/src" \
    python -m pytest -q -p no:cacheprovider --capture=sys "$@"
