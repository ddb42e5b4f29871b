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

# Kernel files and their target flags: the ISA_KERNELS table of setup.py.
KERNELS=$(python3 - <<'EOF'
import ast, platform, re
src = open("setup.py").read()
x86 = platform.machine().lower() in ("x86_64", "amd64")
print("src/cconv/_c/kernels/isa_generic.c|")  # every target; no flags of its own
for m in re.finditer(r'"(isa_\w+\.c)"\)\]?\s*[:=]\s*(\[[^\]]*\])', src):
    if x86 and m.group(1) != "isa_generic.c":
        print(f"src/cconv/_c/kernels/{m.group(1)}|{','.join(ast.literal_eval(m.group(2)))}")
EOF
)
CORE=$(echo src/cconv/_c/*.c) # every core source; the ISA kernel files are below it
CFLAGS="-g1 -O1 -std=gnu11 -fopenmp -fno-omit-frame-pointer -Iinclude -Isrc/cconv/_c"
WRAP="-Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=posix_memalign"

# build VARIANT EXTRA_FLAGS: objects in $OUT/VARIANT, rebuilt when a source is newer (kernel files in
# parallel: the AVX-512 one is the slow compile).
build() {
    local v=$1 extra=$2 dir="$OUT/$1" objs=() pids=()
    mkdir -p "$dir"
    for entry in $KERNELS; do
        local src=${entry%%|*} flags=${entry#*|}
        local obj="$dir/$(basename "$src" .c).o"
        objs+=("$obj")
        if [ ! -e "$obj" ] || [ -n "$(find src/cconv/_c/kernels src/cconv/_c/internal.h include -newer "$obj" | head -1)" ]; then
            $CC $CFLAGS $extra ${flags//,/ } -c "$src" -o "$obj" & pids+=($!)
        fi
    done
    for src in $CORE tests/leaks/plan_loop.c; do
        local obj="$dir/$(basename "$src" .c).o"
        objs+=("$obj")
        $CC $CFLAGS $extra -c "$src" -o "$obj" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    $CC $CFLAGS $extra $WRAP "${objs[@]}" -lm -o "$dir/plan_loop"
}

fail=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if [ -z "${CCONV_LEAKS_SKIP_VALGRIND:-}" ]; then
    command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)"; exit 2; }
    build plain ""
    for isa in avx2 generic; do
        echo "== valgrind, CCONV_ISA=$isa"
        if ! CCONV_ISA=$isa valgrind --leak-check=full --errors-for-leak-kinds=definite \
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
