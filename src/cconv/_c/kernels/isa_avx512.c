/* AVX-512 kernels (compiled with -mavx512f only for this file). 32 zmm registers:
 * wide tile 8 pixels x 3 vectors = 24 accumulators (3 weight vectors + 1 broadcast left); mid
 * 14x2 (28 accumulators) for blocks of 17-32 channels, narrow 14x1.
 * Alone on L1-resident data (kc 64-256, 9 taps): on Zen 4 (2026-12-03) 8x3 ran at 116 GFLOP/s a
 * core (the FMA peak), 14x2 at 109, 6x4 at 113, 12x2 and 10x2 at 102-111, 14x1 at 101; on
 * Sapphire Rapids (2026-12-02) 14x2 was the best (91-95% of peak), 8x3 slower. */
#define VBYTES 64
#define WIDE_MR 8
#define WIDE_NV 3
#define MID_MR 14
#define NARROW_MR 14
#define ISA_NAME "avx512"
#define ISA_TABLE cconv_isa_avx512
#include "kernels.inc"
