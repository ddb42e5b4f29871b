/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 14 pixels x 2 vectors = 28 accumulators (2 weight vectors + 1 broadcast left): half
 * the weight loads per FMA of an 8x2 tile, measured a few % faster in the driver; narrow 14x1. */
#define VBYTES 64
#define WIDE_MR 14
#define NARROW_MR 14
#define ISA_NAME "avx512"
#define ISA_TABLE cconv_isa_avx512
#include "kernels.inc"
