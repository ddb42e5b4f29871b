/* Configuration of the generic microkernels: 16-byte vectors (SSE2 on x86-64, lowered by the
 * compiler on other targets); no FMA instruction, no masked loads. */
#ifndef CCONV_CONFIG_GENERIC_H
#define CCONV_CONFIG_GENERIC_H

#define VBYTES 16

#define GEMM_MR_wide 4
#define GEMM_NV_wide 2
#define GEMM_MR_narrow 8
#define GEMM_NV_narrow 1

/* No masked loads: no direct (band-free) channels-first depthwise kernel. */
#define HAS_DW_DIRECT 0

/* GEMM blocking (conv/gemm.c; measurements: docs/perf-notes.md): a kc block's weights (taps x kc
 * x NR) within KC bytes, reused from L2 by a chunk of tiles whose accumulators take MC bytes; a
 * band buffer of BAND bytes. */
#define GEMM_KC_BYTES (256 * 1024)
#define GEMM_MC_BYTES (64 * 1024)
#define GEMM_BAND_BYTES (512 * 1024)

/* The channels-first direct tile (conv/direct_cf.c): 4 output channels x 2 vectors of
 * pixels, as the GEMM's wide tile. */
#define CFD_MR 4
#define CFD_NV 2

#include "config/roles.h"
#endif
