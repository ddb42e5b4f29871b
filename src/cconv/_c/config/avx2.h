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

#include "config/roles.h"
#endif
