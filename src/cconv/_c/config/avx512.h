/* Configuration of the AVX-512 microkernels (compiled with -mavx512f -mavx2 -mfma).
 * 32 zmm registers: wide tile 8 pixels x 3 vectors = 24 accumulators (3 weight vectors + 1
 * broadcast left); mid 14x2 for blocks of 17-32 channels, narrow 14x1. On L1-resident data 8x3
 * reached the FMA peak on Zen 4; on Sapphire Rapids 14x2 was the best (docs/perf-notes.md).
 * Weight-gradient wide tile 6 rows x 4 vectors: in the drivers faster than 14x2 (14 row pointers
 * live, some spilled) and 8x3 (48 columns leave 16 of 64); 14x2 where it pads fewer columns. */
#ifndef CCONV_CONFIG_AVX512_H
#define CCONV_CONFIG_AVX512_H

#define VBYTES 64

#define GEMM_MR_wide 8
#define GEMM_NV_wide 3
#define GEMM_MR_mid 14
#define GEMM_NV_mid 2
#define GEMM_MR_narrow 14
#define GEMM_NV_narrow 1
/* Channels-last outputs (conv/gemm.c: choose_gemm_tile): 6 pixels x 4 vectors, 6 row pointers
 * (14x2's 14 do not fit the 16 general registers) and x read once for 64 channels. */
#define GEMM_MR_cl 6
#define GEMM_NV_cl 4

/* The weight gradient's wide tile (its mid and narrow ones are the GEMM's). */
#define GW_MR_wide 6
#define GW_NV_wide 4

/* Masked loads and lane shifts: the direct (band-free) channels-first depthwise kernel. */
#define HAS_DW_DIRECT 1

/* GEMM blocking (conv/gemm.c; measurements: docs/perf-notes.md): a kc block's weights (taps x kc
 * x NR) within KC bytes, reused from L2 by a chunk of tiles whose accumulators take MC bytes; a
 * band buffer of BAND bytes. */
#define GEMM_KC_BYTES (256 * 1024)
#define GEMM_MC_BYTES (64 * 1024)
#define GEMM_BAND_BYTES (512 * 1024)

/* The channels-first direct tile (conv/direct_cf.c): 8 output channels x 3 vectors of
 * pixels, 24 accumulators, 3 input vectors and a broadcast. */
#define CFD_MR 8
#define CFD_NV 3

#include "config/roles.h"
#endif
