/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 8 pixels x 3 vectors = 24 accumulators (3 weight vectors + 1 broadcast left); mid
 * 14x2 (28 accumulators) for blocks of 17-32 channels, narrow 14x1.
 * Alone on L1-resident data (kc 64-256, 9 taps): on Zen 4 (2026-12-03) 8x3 ran at 116 GFLOP/s a
 * core (the FMA peak), 14x2 at 109, 6x4 at 113, 12x2 and 10x2 at 102-111, 14x1 at 101; on
 * Sapphire Rapids (2026-12-02) 14x2 was the best (91-95% of peak), 8x3 slower.
 * Weight-gradient tile: 6 rows x 4 vectors (64 output channels), or 14x2 where that pads fewer
 * columns with 7% credit to 6x4 (gw_tile in plan.c: 32, 65-96, 129-160 output channels). On Zen 4 (2026-12-04, 1 thread, in the drivers) 6x4 ran 4-10% faster than
 * 14x2 (conv_transpose2d 256->128 4x4 s2 N8 23.3 -> 21.7 ms, dense 3x3 64->64 N8 56x56 19.7 ->
 * 18.9, dilated 46.1 vs 51.0, pointwise NHWC 12.9 -> 11.6); 8x3 ran 5-40% slower (48 columns
 * leave a 16-wide remainder of 64). 14x2 keeps 14 row pointers live and spills some of them. */
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
