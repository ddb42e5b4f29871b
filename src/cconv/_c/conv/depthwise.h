/* Depthwise and grouped convolutions with few input channels per group (conv/depthwise.c);
 * drivers: conv/depthwise_run.c.in. */
#ifndef CCONV_DEPTHWISE_H
#define CCONV_DEPTHWISE_H
#include "conv/passes.h"

/* Slack after each stride phase of a row of the separable path's band: kernels read up to one
 * vector (at most 16 elements) past the run they use. */
#define CCONV_DW_SLACK 32
/* Outputs are written with streaming stores when input and output together are larger than this
 * and than half the L3 (streaming smaller ones was slower, docs/perf-notes.md). */
#define CCONV_DW_STREAM_BYTES (8.0 * 1024 * 1024)

typedef struct {
    cconv_padding pad;
    int npasses; /* 1 */
    pass_t *passes; /* wpack: channels-first [co][ci in group][tap]; channels-last [tap][ci][co] */
} dw_state;

/* ys: y's channel stride (0: the plane size); sg: channel_shuffle groups fused into the stores. */
cconv_status cconv_dw_run_cf_f32(const cconv_plan *p, const dw_state *dws, const float *x, float *y,
                                 int64_t *const map[3], int64_t sg, int64_t ys);
cconv_status cconv_dw_run_cf_f64(const cconv_plan *p, const dw_state *dws, const double *x, double *y,
                                 int64_t *const map[3], int64_t sg, int64_t ys);
cconv_status cconv_dw_run_cl_f32(const cconv_plan *p, const dw_state *dws, const float *x, float *y,
                                 int64_t *const map[3]);
cconv_status cconv_dw_run_cl_f64(const cconv_plan *p, const dw_state *dws, const double *x, double *y,
                                 int64_t *const map[3]);
/* The fused separable convolution: this depthwise plan, then a 1x1 with pw packed
 * [Co2/CCONV_PW_MR blocks][Cmid][CCONV_PW_MR], bias pw_bias (or NULL) and pw_act's activation,
 * channels-first. */
cconv_status cconv_dw_run_separable_f32(const cconv_plan *p, const dw_state *dws, const float *pw, int64_t Co2,
                                        const float *pw_bias, const cconv_conv_desc *pw_act, const float *x,
                                        float *y, int64_t *const map[3]);
cconv_status cconv_dw_run_separable_f64(const cconv_plan *p, const dw_state *dws, const double *pw, int64_t Co2,
                                        const double *pw_bias, const cconv_conv_desc *pw_act, const double *x,
                                        double *y, int64_t *const map[3]);

#endif
