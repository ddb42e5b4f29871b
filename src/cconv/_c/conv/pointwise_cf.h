/* Pointwise (1x1, stride 1, no padding) channels-first convolution. */
#ifndef CCONV_POINTWISE_CF_H
#define CCONV_POINTWISE_CF_H
#include "core/plan.h"

typedef struct {
    cconv_tile_kernel tile;
    void *weight; /* the filters as given: C_out x C_in/groups */
} pointwise_cf_state;

/* xs: x's channel stride (0: the plane size). */
cconv_status cconv_pointwise_cf_run_f32(const cconv_plan *p, const pointwise_cf_state *s, const float *x,
                                        float *y, int64_t xs, int64_t sg);
cconv_status cconv_pointwise_cf_run_f64(const cconv_plan *p, const pointwise_cf_state *s, const double *x,
                                        double *y, int64_t xs, int64_t sg);

#endif
