/* A band of the padded input, copied channels-last into a per-thread buffer: the GEMM and
 * Winograd drivers read their input through it. */
#ifndef CCONV_BAND_H
#define CCONV_BAND_H
#include "core/plan.h"

/* DS planes x R rows x WB columns x C_in of the padded channels-last input. */
typedef struct {
    int64_t DS, R, WB;
} cconv_band;

/* Jobs per call to aim for, so that batch-1 layers split into enough jobs for a few threads while
 * large batches keep tall bands (less halo copied). A constant, not the thread count: the
 * blocking, and so every output's order of summation, depends on the shape only. */
#define CCONV_MIN_JOBS 16

void cconv_fill_band_f32(const cconv_conv_desc *d, const cconv_isa_table *isa, const cconv_padding *pad,
                         const float *x, int64_t *const map[3], int64_t n, int64_t zd0, int64_t zh0,
                         int64_t zw0, const cconv_band *b, float *dst);
void cconv_fill_band_f64(const cconv_conv_desc *d, const cconv_isa_table *isa, const cconv_padding *pad,
                         const double *x, int64_t *const map[3], int64_t n, int64_t zd0, int64_t zh0,
                         int64_t zw0, const cconv_band *b, double *dst);

#endif
