/* AVX2 + FMA kernels (compiled with -mavx2 -mfma only for this file). 16 ymm registers:
 * wide tile 6x2 vectors = 12 accumulators, narrow 12x1. */
#define VBYTES 32
#define WIDE_MR 6
#define WIDE_NV 2
#define NARROW_MR 12
#define ISA_NAME "avx2"
#define ISA_TABLE cconv_isa_avx2
#include "kernels.inc"
