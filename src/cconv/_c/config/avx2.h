/* Configuration of the AVX2 + FMA microkernels (compiled with -mavx2 -mfma, tools/cbuild.py).
 * 16 ymm registers: wide tile 6x2 vectors = 12 accumulators (also the mid tile), narrow 12x1:
 * 6x2 was the fastest of the shapes measured on L1-resident data (docs/perf-notes.md). */
#ifndef CCONV_CONFIG_AVX2_H
#define CCONV_CONFIG_AVX2_H

#define VBYTES 32

/* GEMM tiles: MR pixels x NV vectors of output channels. */
#define GEMM_MR_wide 6
#define GEMM_NV_wide 2
/* No mid tile: the wide tile has 2 vectors and is the mid one too (config/table.c.in). */
#define GEMM_MR_mid GEMM_MR_wide
#define GEMM_NV_mid 0
#define GEMM_MR_narrow 12
#define GEMM_NV_narrow 1

/* Weight-gradient tiles: the wide one is the 2-vector one; no separate mid tile. */
#define GW_MR_wide GEMM_MR_wide
#define GW_NV_wide 2
#define GW_MR_mid GW_MR_wide
#define GW_NV_mid 0
#define GW_MR_narrow GEMM_MR_narrow
#define GW_NV_narrow 1

/* Masked loads exist (vmaskmov), but the direct depthwise kernel needs AVX-512's mask registers
 * and lane shifts: none here. */
#define HAS_DW_DIRECT 0

#endif
