/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 14 pixels x 2 vectors = 28 accumulators (2 weight vectors + 1 broadcast left): half
 * the weight loads per FMA of an 8x2 tile, measured a few % faster in the driver; narrow 14x1.
 * Alone on L1-resident data (Sapphire Rapids class, 2026-12-02) 14x2 ran at 91-95% of the FMA peak;
 * 12x2, 10x2, 8x3, 7x4, 4x4 were slower, 6x4 equal only at kc >= 256. */
#define VBYTES 64
#define WIDE_MR 14
#define WIDE_NV 2
#define NARROW_MR 14
#define ISA_NAME "avx512"
#define ISA_TABLE cconv_isa_avx512
#include "kernels.inc"
