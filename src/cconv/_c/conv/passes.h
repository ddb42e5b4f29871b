/* Passes (conv/passes.c): the GEMM family's and the depthwise drivers' view of a convolution.
 *
 * A forward convolution is one pass; a transposed convolution is split into stride phases
 * (sub-pixel convolution), each a stride-1 convolution over the input with the subset of taps
 * that lands on that phase, so no zeros are inserted and no col2im scatter is needed. A pass
 * computes outputs o = o0 + q*os for q < Q and reads padded input at q*is + tap offset, per
 * dimension. */
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

/* The passes of d into *passes (npasses of them) and the padded input they read into pad. Taps
 * are element offsets into a padded buffer of C values a pixel; wmerge > 1 folds the kernel's
 * columns into the reduction (only kw = 0 taps). CCONV_ERR_OVERFLOW when the padded buffer's
 * size does not fit int64 (checked before any offset is made). */
cconv_status cconv_passes_make(const cconv_conv_desc *d, int64_t C, int64_t wmerge, cconv_padding *pad,
                               pass_t **passes, int *npasses);
void cconv_passes_free(pass_t *passes, int npasses);

#endif
