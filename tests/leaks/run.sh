#!/usr/bin/env bash
# Leak check of the C core (docs/leaks.md): builds tests/leaks/plan_loop.c against the core sources
# twice and runs it
#   (a) under valgrind memcheck with CCONV_ISA=avx2 and CCONV_ISA=generic (valgrind cannot execute
#       AVX-512), failing on any definite leak or memory error;
#   (b) built with -fsanitize=address (LeakSanitizer on) with every ISA the CPU runs.
# Exits non-zero on any leak, memory error or failed check. Usage: tests/leaks/run.sh [reps]
#   CCONV_LEAKS_SKIP_VALGRIND=1 skips (a); CC picks the compiler (gcc by default).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/leaks"
REPS=${1:-3}
CC=${CC:-gcc}
mkdir -p "$OUT"
cd "$ROOT"

# Every C file of the core with its target flags, as setup.py compiles them (tools/cbuild.py
# expands the kernel templates into $OUT/gen).
SOURCES=$(python3 tools/cbuild.py sources "$OUT/gen")
CFLAGS="-g1 -O1 -std=gnu11 -fopenmp -fno-omit-frame-pointer -Iinclude -Isrc/cconv/_c"
WRAP="-Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=posix_memalign"

# build VARIANT EXTRA_FLAGS: objects in $OUT/VARIANT, each rebuilt when its source or a file of the
# core is newer, as many compiles side by side as there are cores.
build() {
    local extra=$2 dir="$OUT/$1"
    mkdir -p "$dir"
    # (sed: xargs would join a line ending in a blank, a file without flags, to the next)
    printf '%s\n' "$SOURCES" tests/leaks/plan_loop.c | sed 's/[[:blank:]]*$//' |
        CC_="$CC $CFLAGS $extra" DIR_="$dir" xargs -L1 -P "$(nproc)" sh -c '
            o="$DIR_/$(basename "$0" .c).o"
            if [ -e "$o" ] && [ -z "$(find "$0" src/cconv/_c include tools/cbuild.py -newer "$o" | head -1)" ]; then
                exit 0
            fi
            exec $CC_ "$@" -c "$0" -o "$o"'
    local objs=()
    while IFS=$'\t' read -r src _; do objs+=("$dir/$(basename "$src" .c).o"); done <<< "$SOURCES"
    $CC $CFLAGS $extra $WRAP "${objs[@]}" "$dir/plan_loop.o" -lm -o "$dir/plan_loop"
}

fail=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if [ -z "${CCONV_LEAKS_SKIP_VALGRIND:-}" ]; then
    command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)"; exit 2; }
    build plain ""
    for isa in avx2 generic; do
        echo "== valgrind, CCONV_ISA=$isa"
        # Superblocks of at most 30 instructions (default 60): translating the AVX2 direct
        # depthwise kernel's unrolled 5x5 stride-2 loop (masked loads) at 60 exhausts valgrind's
        # temporary storage ("VEX temporary storage exhausted"). What memcheck checks is the same.
        if ! CCONV_ISA=$isa valgrind --vex-guest-max-insns=30 --leak-check=full --errors-for-leak-kinds=definite \
                --show-leak-kinds=definite --error-exitcode=1 --log-file="$OUT/valgrind-$isa.log" \
                "$OUT/plain/plan_loop" "$REPS" > "$OUT/stdout-valgrind-$isa.txt"; then
            echo "FAILED: see $OUT/valgrind-$isa.log"; fail=1
        fi
        tail -1 "$OUT/stdout-valgrind-$isa.txt"
        grep -E "definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY" "$OUT/valgrind-$isa.log" || true
    done
fi

build asan "-fsanitize=address"
for isa in $("$OUT/asan/plan_loop" --isas 2>/dev/null || echo "avx512 avx2 generic"); do
    echo "== AddressSanitizer + LeakSanitizer, CCONV_ISA=$isa"
    if ! CCONV_ISA=$isa ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:halt_on_error=1 \
            "$OUT/asan/plan_loop" "$REPS" > "$OUT/stdout-asan-$isa.txt" 2> "$OUT/asan-$isa.log"; then
        echo "FAILED: see $OUT/asan-$isa.log"; fail=1
    fi
    head -1 "$OUT/stdout-asan-$isa.txt"
    tail -1 "$OUT/stdout-asan-$isa.txt"
done
[ $fail = 0 ] && echo "leak check passed" || echo "leak check FAILED"
exit $fail
