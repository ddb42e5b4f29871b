#!/bin/sh
# Builds the C fuzz harness over every C core source, with each ISA kernel file's own -m flags:
#   fuzz_desc         libFuzzer + ASan + UBSan (clang; CC=clang-14 etc. to pick another)
#   fuzz_desc_replay  the same harness with a main() that runs given files/directories,
#                     ASan + UBSan, no libFuzzer (gcc by default: REPLAY_CC)
# Usage: tests/fuzz/build.sh [fuzzer|replay|all] [OUTDIR]   (default: all, build/fuzz)
set -eu
cd "$(dirname "$0")/../.."
what=${1:-all}
out=${2:-build/fuzz}
mkdir -p "$out"
gen="$out/gen"
# The core's C files and their target flags (tools/cbuild.py, as setup.py compiles them): the
# ISA-independent ones, and the ISA kernels with their -m flags.
CORE=$(python3 tools/cbuild.py sources "$gen" --only core | cut -f1)
KERNELS=$(python3 tools/cbuild.py sources "$gen" --only isa)
# The ISA kernels build at KERNEL_OPT (default -O0): with the sanitizers, -O1 took over ten CPU
# minutes on the AVX-512 kernels with clang, -O0 about fifteen seconds, and checks the same accesses.
KOPT=${KERNEL_OPT:--O0}
COMMON="-g -std=gnu11 -fno-omit-frame-pointer -fno-sanitize-recover=all -fopenmp -Iinclude -Isrc/cconv/_c"

# build CC SAN_COMPILE SAN_LINK OUTPUT EXTRA_SOURCES
build() {
    cc=$1 san_c=$2 san_l=$3 bin=$4 extra=$5
    objdir="$out/obj-$(basename "$bin")"
    rm -rf "$objdir"
    mkdir -p "$objdir"
    # one compile per kernel file, as many side by side as there are cores
    # (sed: xargs would join a line ending in a blank, a file without flags, to the next)
    printf '%s\n' "$KERNELS" | sed 's/[[:blank:]]*$//' | CC_="$cc $COMMON $KOPT $san_c" DIR_="$objdir" xargs -L1 -P "$(nproc)" \
        sh -c 'exec $CC_ "$@" -c "$0" -o "$DIR_/$(basename "$0" .c).o"'
    # shellcheck disable=SC2086 # the lists are words
    $cc $COMMON -O1 $san_c $CORE tests/fuzz/fuzz_desc.c $extra "$objdir"/*.o $san_l -lm -o "$bin"
    echo "built $bin"
}

case $what in
fuzzer|all)
    build "${CC:-clang}" "-fsanitize=fuzzer-no-link,address,undefined" "-fsanitize=fuzzer,address,undefined" \
        "$out/fuzz_desc" "" ;;
esac
case $what in
replay|all)
    build "${REPLAY_CC:-gcc}" "-fsanitize=address,undefined" "-fsanitize=address,undefined" \
        "$out/fuzz_desc_replay" tests/fuzz/replay_main.c ;;
esac
