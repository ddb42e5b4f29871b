/* Pointwise (1x1, stride 1, no padding) channels-first convolution. */
#ifndef CCONV_POINTWISE_CF_H
#define CCONV_POINTWISE_CF_H
#include "core/plan.h"

/* In place: the bytes of a row's last pixels copied with zero padding (a multiple of every ISA's
 * pw_cf block: up to 4 vectors of 64 bytes). */
#define CCONV_PW_CF_TAIL_BYTES 256

typedef struct {
    cconv_tile_kernel tile; /* of the panel path */
    void *weight; /* of the panel path: the filters as given, C_out x C_in/groups */
    int in_place; /* x rows read in place by the ISA's pw_cf tile (else pixel panels) */
    void *wpack;  /* for in_place: [group][tile of CCONV_PW_MR output channels][C_in/groups][CCONV_PW_MR] */
} pointwise_cf_state;

/* xs: x's channel stride (0: the plane size). */
cconv_status cconv_pointwise_cf_run_f32(const cconv_plan *p, const pointwise_cf_state *s, const float *x,
                                        float *y, int64_t xs, int64_t sg);
cconv_status cconv_pointwise_cf_run_f64(const cconv_plan *p, const pointwise_cf_state *s, const double *x,
                                        double *y, int64_t xs, int64_t sg);

#endif
