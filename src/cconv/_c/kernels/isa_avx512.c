/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 8 pixels x 2 vectors = 16 accumulators (as the prototype in BENCHMARKS.md), narrow 14x1. */
#define VBYTES 64
#define WIDE_MR 8
#define NARROW_MR 14
#define ISA_NAME "avx512"
#define ISA_TABLE cconv_isa_avx512
#include "kernels.inc"
