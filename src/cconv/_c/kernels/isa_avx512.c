/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 8 pixels x 3 vectors = 24 accumulators (3 weight vectors + 1 broadcast left); mid
 * 14x2 (28 accumulators) for blocks of 17-32 channels, narrow 14x1. On L1-resident data 8x3
 * reached the FMA peak on Zen 4, ahead of the other shapes; on Sapphire Rapids 14x2 was the
 * best (docs/perf-notes.md).
 * Weight-gradient tile: 6 rows x 4 vectors (64 output channels), or 14x2 where that pads fewer
 * columns with 7% credit to 6x4 (gw_tile in plan.c: 32, 65-96, 129-160 output channels). In the
 * drivers 6x4 ran faster than 14x2, and 8x3 slower (48 columns leave a 16-wide remainder of 64;
 * docs/perf-notes.md). 14x2 keeps 14 row pointers live and spills some of them. */
#define VBYTES 64
#define WIDE_MR 8
#define WIDE_NV 3
#define MID_MR 14
#define NARROW_MR 14
#define GW_WIDE_MR 6
#define GW_WIDE_NV 4
#define ISA_NAME "avx512"
#define ISA_TABLE cconv_isa_avx512
#include "kernels.inc"
