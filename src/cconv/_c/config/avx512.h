/* Configuration of the AVX-512 microkernels (compiled with -mavx512f -mavx2 -mfma,
 * tools/cbuild.py). 32 zmm registers: wide tile 8 pixels x 3 vectors = 24 accumulators (3 weight
 * vectors + 1 broadcast left); mid 14x2 (28 accumulators) for blocks of 17-32 channels, narrow
 * 14x1. On L1-resident data 8x3 reached the FMA peak on Zen 4, ahead of the other shapes; on
 * Sapphire Rapids 14x2 was the best (docs/perf-notes.md).
 * Weight-gradient tile: 6 rows x 4 vectors (64 output channels), or 14x2 where that pads fewer
 * columns with 7% credit to 6x4 (gw_tile in plan.c: 32, 65-96, 129-160 output channels). In the
 * drivers 6x4 ran faster than 14x2, and 8x3 slower (48 columns leave a 16-wide remainder of 64;
 * docs/perf-notes.md). 14x2 keeps 14 row pointers live and spills some of them. */
#ifndef CCONV_CONFIG_AVX512_H
#define CCONV_CONFIG_AVX512_H

#define VBYTES 64

/* GEMM tiles: MR pixels x NV vectors of output channels. */
#define GEMM_MR_wide 8
#define GEMM_NV_wide 3
#define GEMM_MR_mid 14
#define GEMM_NV_mid 2
#define GEMM_MR_narrow 14
#define GEMM_NV_narrow 1

/* Weight-gradient tiles. */
#define GW_MR_wide 6
#define GW_NV_wide 4
#define GW_MR_mid GEMM_MR_mid
#define GW_NV_mid 2
#define GW_MR_narrow GEMM_MR_narrow
#define GW_NV_narrow 1

/* Masked loads and lane shifts: the direct (band-free) channels-first depthwise kernel. */
#define HAS_DW_DIRECT 1

#endif
