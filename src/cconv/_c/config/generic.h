/* Configuration of the generic microkernels: 16-byte vectors (SSE2 on x86-64, lowered by the
 * compiler on other targets); no FMA instruction, no masked loads, no streaming stores beyond
 * SSE2's. Included by every ukernels/ template instance of this ISA and by its table. */
#ifndef CCONV_CONFIG_GENERIC_H
#define CCONV_CONFIG_GENERIC_H

#define VBYTES 16

/* GEMM tiles: MR pixels x NV vectors of output channels. */
#define GEMM_MR_wide 4
#define GEMM_NV_wide 2
/* No mid tile: the wide tile has 2 vectors and is the mid one too (config/table.c.in). */
#define GEMM_MR_mid GEMM_MR_wide
#define GEMM_NV_mid 0
#define GEMM_MR_narrow 8
#define GEMM_NV_narrow 1

/* Weight-gradient tiles: the wide one is the 2-vector one; no separate mid tile. */
#define GW_MR_wide GEMM_MR_wide
#define GW_NV_wide 2
#define GW_MR_mid GW_MR_wide
#define GW_NV_mid 0
#define GW_MR_narrow GEMM_MR_narrow
#define GW_NV_narrow 1

/* No masked loads: no direct (band-free) channels-first depthwise kernel. */
#define HAS_DW_DIRECT 0

#endif
