/* Channels-first direct convolution (stride 1, one plane): output channels as the tile's rows,
 * vectors of a padded input plane's positions as its columns, so neither x nor y is transposed. */
#ifndef CCONV_DIRECT_CF_H
#define CCONV_DIRECT_CF_H
#include "core/plan.h"

typedef struct {
    cconv_cfd_kernel tile;
    int ntaps;         /* kernel height x width */
    int nv;            /* vectors of a tile's grid positions (up to the kernel's nv) */
    int64_t wp;        /* a padded input row: the grid's pitch */
    int64_t rb;        /* output rows of a job */
    int64_t plane;     /* a job's buffer per input channel: its padded rows, then a tile's overrun */
    ptrdiff_t *taps;   /* each tap's offset in a buffer plane, in the filters' (row, column) order */
    void *weight;      /* [group][block of MR output channels][tap][C_in/groups][MR], zeros past C_out/groups */
} direct_cf_state;

/* map: source row and column of each padded coordinate (-1: zero; cconv_pad_maps' map[1], map[2]);
 * xs, ys: channel strides of x and y (0: the plane sizes). */
cconv_status cconv_direct_cf_run_f32(const cconv_plan *p, const direct_cf_state *s, const float *x, float *y,
                                     int64_t *const map[3], int64_t xs, int64_t ys, int64_t sg);
cconv_status cconv_direct_cf_run_f64(const cconv_plan *p, const direct_cf_state *s, const double *x, double *y,
                                     int64_t *const map[3], int64_t xs, int64_t ys, int64_t sg);

#endif
