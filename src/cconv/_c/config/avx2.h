/* Configuration of the AVX2 + FMA microkernels (compiled with -mavx2 -mfma). 16 ymm registers:
 * wide tile 6x2 vectors = 12 accumulators, the fastest shape measured on L1-resident data
 * (docs/perf-notes.md); narrow 12x1. */
#ifndef CCONV_CONFIG_AVX2_H
#define CCONV_CONFIG_AVX2_H

#define VBYTES 32

#define GEMM_MR_wide 6
#define GEMM_NV_wide 2
#define GEMM_MR_narrow 12
#define GEMM_NV_narrow 1

/* Masked loads (vmaskmov): the direct (band-free) channels-first depthwise kernel, a load per tap
 * column where AVX-512 shifts lanes. */
#define HAS_DW_DIRECT 1

/* GEMM blocking (conv/gemm.c; measurements: docs/perf-notes.md): a kc block's weights (taps x kc
 * x NR) within KC bytes, reused from L2 by a chunk of tiles whose accumulators take MC bytes; a
 * band buffer of BAND bytes: half of Zen 3's 512 KiB L2, which also holds a block's weights (3x3,
 * 128 channels: 74 KB). */
#define GEMM_KC_BYTES (256 * 1024)
#define GEMM_MC_BYTES (64 * 1024)
#define GEMM_BAND_BYTES (256 * 1024)

/* The channels-first direct tile (conv/direct_cf.c): 4 output channels x 3 vectors of
 * pixels: 12 accumulators, 3 input vectors and a broadcast (a divisor of the usual 8, 16, 32
 * channels per group). */
#define CFD_MR 4
#define CFD_NV 3

#include "config/roles.h"
#endif
