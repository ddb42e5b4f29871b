#!/bin/sh
# Portability checks of cconv's C core (src/cconv/_c), without the Python extension: each check
# compiles the core with -Wall -Wextra -Werror, links it with tools/portability_main.c (a plain-C
# program that plans and runs every algorithm family and checks it against the reference
# algorithm) and runs the program. A link that succeeds proves the sources alone define every symbol they use.
#
#   gcc / clang        all ISA kernel files (x86-64), with OpenMP; clang without it too
#   aarch64 (+/-omp)   Debian's aarch64-linux-gnu-gcc: the generic ISA only, i.e. the path every
#                      non-x86 machine builds; run under qemu-aarch64 when it is installed, and its
#                      outputs compared with the x86-64 generic ISA's (they may differ in the last
#                      bits: aarch64 contracts a*b+c into fused multiply-adds)
#
# One line per check; exits nonzero if any fails. A check whose compiler is missing is reported
# as "skip" unless CCONV_PORTABILITY_STRICT=1 (then it fails). Usage: tools/check_portability.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/src/cconv/_c
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Optimisation: lower than setup.py's -O3 (which builds with the same warning flags) to keep the
# AVX-512 file's compile short: -O2 for gcc, whose maybe-uninitialized and bounds warnings come
# from its optimiser, -O1 for clang, whose warnings come from its front end (half of -O2's time).
opt() { case $1 in *clang*) echo -O1 ;; *) echo -O2 ;; esac; }
CFLAGS="-std=gnu11 -fno-math-errno -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-unused-function"
CFLAGS="$CFLAGS -I$ROOT/include -I$SRC"
STRICT=${CCONV_PORTABILITY_STRICT:-0}
status=0

# build NAME CC "ISAS" EXTRA_FLAGS [FROM]: compiles every C file of the core as setup.py does
# (tools/cbuild.py lists them with their target flags; ISAS: the ISA kernels to include) and
# tools/portability_main.c, as many side by side as there are cores, and links them into
# NAME/prog. With FROM (an earlier check's name) the kernel objects are that check's: the kernels
# use no OpenMP, so a serial build needs only the other files compiled again.
build() {
    name=$1 cc=$2 isas=$3 extra="$(opt "$2") $4" from=${5:-}
    dir=$TMP/$name
    mkdir -p "$dir/isa"
    # "OBJDIR<TAB>SOURCE<TAB>FLAGS" lines: the kernels' objects go to isa/, for a later FROM
    {
        python3 "$ROOT/tools/cbuild.py" sources "$dir/gen" --only core | sed "s|^|$dir	|"
        printf '%s\t%s\n' "$dir" "$ROOT/tools/portability_main.c"
        if [ -z "$from" ]; then
            # shellcheck disable=SC2046 # the options are words
            python3 "$ROOT/tools/cbuild.py" sources "$dir/gen" --only isa $(printf -- '--isa %s ' $isas) |
                sed "s|^|$dir/isa	|"
        fi
    } | sed 's/[[:blank:]]*$//' >"$dir/sources.txt" || return 1 # xargs joins a line ending in a blank to the next
    if [ -n "$from" ]; then cp "$TMP/$from"/isa/*.o "$dir/isa/" || return 1; fi
    CC_="$cc $CFLAGS $extra" xargs -L1 -P "$(nproc)" sh -c '
            d=$0 src=$1; shift
            o="$d/$(basename "$src" .c).o"
            $CC_ "$@" -c "$src" -o "$o" >"$o.log" 2>&1 || { head -40 "$o.log" >&2; exit 1; }' <"$dir/sources.txt" || return 1
    $cc $extra "$dir"/*.o "$dir"/isa/*.o -o "$dir/prog" -lm >"$dir/link.log" 2>&1 || { cat "$dir/link.log" >&2; return 1; }
}

report() { # report STATUS TEXT
    printf '%-5s %s\n' "$1" "$2"
    [ "$1" = FAIL ] && status=1
    return 0
}

have() { command -v "$1" >/dev/null 2>&1; }

skip() {
    if [ "$STRICT" = 1 ]; then report FAIL "$1 (missing: $2)"; else report skip "$1 ($2 not installed)"; fi
}

# check NAME CC "ISAS" FLAGS RUNNER [FROM]: build, then run the program (RUNNER: empty to run
# natively, "-" not to run, else the command prefix) and keep its generic outputs in $TMP/NAME.bin.
check() {
    name=$1 cc=$2 isas=$3 flags=$4 runner=$5 from=${6:-}
    t0=$(date +%s)
    if [ -n "$from" ] && [ ! -x "$TMP/$from/prog" ]; then
        report FAIL "$name: not built ($from failed)"
        return
    fi
    if ! build "$name" "$cc" "$isas" "$flags" "$from"; then
        report FAIL "$name: $cc $flags does not build cleanly"
        return
    fi
    if [ "$runner" = - ]; then
        report ok "$name: built and linked ($(($(date +%s) - t0)) s)"
        return
    fi
    if out=$($runner "$TMP/$name/prog" "$TMP/$name.bin" 2>&1); then
        report ok "$name: $out ($(($(date +%s) - t0)) s)"
    else
        printf '%s\n' "$out" >&2
        report FAIL "$name: $(printf '%s\n' "$out" | tail -n 1)"
    fi
}

# The native ISAs, as setup.py picks them.
case $(uname -m) in
x86_64 | amd64) NATIVE_ISAS="generic avx2 avx512" ;;
*) NATIVE_ISAS="generic" ;;
esac

# Three independent groups side by side (the AVX-512 files are the long compiles); each writes
# its lines to a file, printed in order at the end.
(check gcc gcc "$NATIVE_ISAS" "-fopenmp" "") >"$TMP/1.out" 2>"$TMP/1.err" &
g1=$!
(
    if have clang; then
        # OpenMP under clang needs libomp (Debian: libomp-dev); without it, check the serial build.
        if echo 'int main(void){return 0;}' | clang -fopenmp -x c - -o "$TMP/omp" >/dev/null 2>&1; then
            check clang clang "$NATIVE_ISAS" "-fopenmp" ""
            check clang-serial clang "$NATIVE_ISAS" "" "" clang
        else
            skip "clang with OpenMP" libomp-dev
            check clang-serial clang "$NATIVE_ISAS" "" ""
        fi
    else
        skip clang clang
    fi
) >"$TMP/2.out" 2>"$TMP/2.err" &
g2=$!
(
    if have aarch64-linux-gnu-gcc; then
        runner=-
        if have qemu-aarch64; then runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"; fi
        check aarch64 aarch64-linux-gnu-gcc generic "-fopenmp" "$runner"
        check aarch64-serial aarch64-linux-gnu-gcc generic "" "$runner" aarch64
        [ "$runner" = - ] && skip "aarch64 runs" qemu-user
    else
        skip aarch64 gcc-aarch64-linux-gnu
    fi
) >"$TMP/3.out" 2>"$TMP/3.err" &
g3=$!
wait $g1 $g2 $g3
cat "$TMP/1.err" "$TMP/2.err" "$TMP/3.err" >&2
cat "$TMP/1.out" "$TMP/2.out" "$TMP/3.out"
if grep -q '^FAIL' "$TMP/1.out" "$TMP/2.out" "$TMP/3.out"; then status=1; fi

if [ -s "$TMP/aarch64.bin" ] && [ -s "$TMP/gcc.bin" ]; then
    # relative to the largest |y|: float32 sums of up to 288 terms, rounded differently (2e-6 seen)
    if msg=$(python3 - "$TMP/gcc.bin" "$TMP/aarch64.bin" "$TMP/aarch64-serial.bin" 2>&1 <<'EOF'
import sys
import numpy as np
ref = np.fromfile(sys.argv[1])
worst = 0.0
for path in sys.argv[2:]:
    got = np.fromfile(path)
    assert got.shape == ref.shape, f"{path}: {got.size} values, x86-64 wrote {ref.size}"
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert err < 1e-4, f"{path}: relative difference {err:.3g} from x86-64"
    worst = max(worst, err)
print(f"{ref.size} values each, max relative difference {worst:.2g}")
EOF
    ); then report ok "aarch64 outputs match x86-64 generic: $msg"
    else report FAIL "aarch64 outputs vs x86-64 generic: $(printf '%s\n' "$msg" | tail -n 1)"
    fi
fi
exit $status
