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
C=src/cconv/_c
CORE=$(echo $C/*.c) # every core source; the ISA kernel files are below it
# The ISA kernel files build at KERNEL_OPT (default -O0): with the sanitizers, -O1 takes over ten
# CPU minutes on isa_avx512.c with clang, -O0 about fifteen seconds, and checks the same accesses.
KOPT=${KERNEL_OPT:--O0}
COMMON="-g -std=gnu11 -fno-omit-frame-pointer -fno-sanitize-recover=all -fopenmp -Iinclude -I$C"

# build CC SAN_COMPILE SAN_LINK OUTPUT EXTRA_SOURCES
build() {
    cc=$1 san_c=$2 san_l=$3 bin=$4 extra=$5
    objdir="$out/obj-$(basename "$bin")"
    mkdir -p "$objdir"
    objs=""
    for f in $C/kernels/isa_generic.c:"" $C/kernels/isa_avx2.c:"-mavx2 -mfma" \
             $C/kernels/isa_avx512.c:"-mavx512f -mavx2 -mfma"; do
        src=${f%%:*} flags=${f#*:}
        o="$objdir/$(basename "$src" .c).o"
        $cc $COMMON $KOPT $san_c $flags -c "$src" -o "$o" &
        objs="$objs $o"
    done
    wait
    $cc $COMMON -O1 $san_c $CORE tests/fuzz/fuzz_desc.c $extra $objs $san_l -lm -o "$bin"
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
