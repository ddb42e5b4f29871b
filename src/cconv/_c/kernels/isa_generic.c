/* Portable kernels: 16-byte vectors (SSE2 on x86-64, lowered by GCC elsewhere). */
#define VBYTES 16
#define WIDE_MR 4
#define WIDE_NV 2
#define MID_MR WIDE_MR
#define NARROW_MR 8
#define ISA_NAME "generic"
#define ISA_TABLE cconv_isa_generic
#include "kernels.inc"
