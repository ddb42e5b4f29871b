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

#include "config/roles.h"
#endif
