/* Passes: the GEMM family's and the depthwise drivers' view of a convolution. A forward
 * convolution is one pass; a transposed one is split into stride phases, each a stride-1
 * convolution with the taps that land on that phase (no inserted zeros, no col2im scatter). Per
 * dimension a pass computes outputs o = o0 + q*os for q < Q, reading padded input at q*is + tap. */
#ifndef CCONV_PASSES_H
#define CCONV_PASSES_H
#include "core/plan.h"

typedef struct {
    int64_t o0[3], os[3], q[3], is[3];
    int ntaps;
    ptrdiff_t *taps;  /* element offsets into the padded buffer */
    int64_t *tap_k;   /* linear kernel index (kd*KH + kh)*KW + kw of each tap */
    void *wpack;      /* the packed filters of the pass (the implementation's layout) */
} pass_t;

/* The passes of d, and the padded input they read into pad. Taps are element offsets into a
 * padded buffer of C values a pixel; wmerge > 1 folds the kernel's columns into the reduction
 * (kw = 0 taps only). CCONV_ERR_OVERFLOW when the padded buffer's size does not fit int64. */
cconv_status cconv_passes_make(const cconv_conv_desc *d, int64_t C, int64_t wmerge, cconv_padding *pad,
                               pass_t **passes, int *npasses);
void cconv_passes_free(pass_t *passes, int npasses);

#endif
