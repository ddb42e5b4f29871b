/* Depthwise convolution (one input channel per group, any multiplier) and grouped convolution
 * with few input channels per group, on the depthwise kernels (conv/depthwise.h). */
#include <stdio.h>
#include "conv/depthwise.h"

static int dw_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    const int64_t cig = d->in_channels / d->groups;
    if (n == 0) return d->transposed || cig != 1; /* (snprintf formats even into no room) */
    if (d->transposed)
        snprintf(why, n, "it runs forward convolutions only, not transposed ones (use 'gemm' or 'auto')");
    else if (cig != 1)
        snprintf(why, n, "it needs one input channel per group (groups == in_channels), but this convolution "
                 "has %lld input channels per group (in_channels=%lld, groups=%lld)", (long long)cig,
                 (long long)d->in_channels, (long long)d->groups);
    return d->transposed || cig != 1;
}

/* Few input channels per group: each output sums cig*kd*kh*kw taps, too short a reduction for
 * the GEMM tile (its blocks would hold mostly zero, block-diagonal weights); the depthwise kernels
 * take it as more taps. */
static int grouped_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    const int64_t cig = d->in_channels / d->groups;
    if (d->transposed) return dw_cannot(d, why, n);
    if (cig < 1 || cig > 8) {
        if (n) snprintf(why, n, "it needs 1 to 8 input channels per group, but this convolution has %lld "
                 "(in_channels=%lld, groups=%lld)", (long long)cig, (long long)d->in_channels,
                 (long long)d->groups);
        return 1;
    }
    /* channels-last expansion indexes a pixel's channels with int32 lanes */
    if (d->channels_last && d->in_channels >= INT32_MAX) {
        if (n) snprintf(why, n, "channels-last input needs fewer than 2**31 - 1 channels, got %lld",
                 (long long)d->in_channels);
        return 1;
    }
    return 0;
}

static int dw_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight)
{
    (void)isa, (void)weight;
    return d->out_channels / d->groups <= 4;
}

static int grouped_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight)
{
    (void)isa, (void)weight;
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    if (!(cig >= 2 && cog <= 8 && d->groups > 1)) return 0;
    /* channels-last: the per-thread ring of expanded rows (kd*kh rows of W x cig x C_out)
     * should stay in L2, and a 1x1 kernel would use each expanded row once (the GEMM's
     * wasted block-diagonal FMAs cost less than the expansion then). */
    const double ring = (double)((d->kernel[0] - 1) * d->dilation[0] + 1) *
                        ((d->kernel[1] - 1) * d->dilation[1] + 1) * d->in_size[2] * cig *
                        d->out_channels * (d->dtype == CCONV_FLOAT64 ? 8 : 4);
    const int64_t taps = d->kernel[0] * d->kernel[1] * d->kernel[2];
    return !d->channels_last || (ring <= 1024.0 * 1024 && taps > 1);
}

static void dw_destroy(void *state)
{
    dw_state *s = state;
    if (!s) return;
    cconv_passes_free(s->passes, s->npasses);
    cconv_free(s);
}

/* Per-thread row rings and tap tables of the drivers, checked here once: the drivers size them
 * from the same products without checks. */
static cconv_status dw_workspace(const cconv_conv_desc *d, const dw_state *s, int64_t *bytes)
{
    const int64_t *K = d->kernel, *Dl = d->dilation, S2 = d->stride[2], Co = d->out_channels;
    const int64_t cig = d->in_channels / d->groups, cog = Co / d->groups;
    const int64_t es = (int64_t)cconv_dtype_size(d->dtype);
    const int64_t slots = ((K[0] - 1) * Dl[0] + 1) * ((K[1] - 1) * Dl[1] + 1);
    int64_t ws, t;
    if (!d->channels_last) {
        const int64_t row = s->pad.size[2] / S2 + (s->pad.size[2] % S2 != 0) + CCONV_DW_SLACK;
        if (!cconv_mul(cig, slots, &t) || !cconv_mul(t, S2, &t) || !cconv_mul(t, row, &t) ||
            !cconv_mul(t, es, &t) || !cconv_add(t, 128 * 1024, &ws))
            return CCONV_ERR_OVERFLOW;
    } else {
        /* a thread's ring of expanded rows (cig * Co a pixel) and row pointers; the shared zero
         * row, column offsets and rotated weights and bias (stride-1 rows, cconv_dw_run_cl) */
        const int64_t pixb = cig * Co * es;
        ws = 0;
        if ((cig > 1 || cog > 1) && (!cconv_mul(slots, d->in_size[2], &ws) || !cconv_mul(ws, pixb, &ws)))
            return CCONV_ERR_OVERFLOW;
        if (!cconv_add(ws, (K[0] * K[1] + 1) * 8, &ws) || !cconv_mul(ws, cconv_threads(), &ws) ||
            !cconv_mul(d->in_size[2], pixb, &t) || !cconv_add(ws, t, &ws) ||
            !cconv_mul(d->out_size[2], K[2] * 8, &t) || !cconv_add(ws, t, &ws) ||
            !cconv_mul(K[0] * K[1] * K[2] + 1, Co * es, &t) || !cconv_add(ws, t, bytes))
            return CCONV_ERR_OVERFLOW;
        return CCONV_OK;
    }
    if (!cconv_mul(ws, cconv_threads(), &ws) || !cconv_add(ws, Co * es, &ws)) return CCONV_ERR_OVERFLOW;
    *bytes = ws;
    return CCONV_OK;
}

static cconv_status dw_create(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    const int64_t Co = d->out_channels, cig = d->in_channels / d->groups;
    const int64_t ksz = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t es = cconv_dtype_size(d->dtype);
    dw_state *s = cconv_alloc_zeroed(sizeof *s);
    if (!s) return CCONV_ERR_NOMEM;
    p->state = s;
    cconv_status st = cconv_passes_make(d, d->channels_last ? d->in_channels : 1, 1, &s->pad, &s->passes,
                                        &s->npasses);
    if (st != CCONV_OK) return st;
    pass_t *ps = &s->passes[0];
    ps->wpack = cconv_alloc((size_t)(Co * cig * ps->ntaps) * es);
    if (!ps->wpack) return CCONV_ERR_NOMEM;
    p->weight_bytes = Co * cig * ps->ntaps * (int64_t)es;
    for (int64_t co = 0; co < Co; co++)
        for (int64_t ci = 0; ci < cig; ci++)
            for (int t = 0; t < ps->ntaps; t++) {
                const size_t dst = d->channels_last ? (size_t)((t * cig + ci) * Co + co)
                                                    : (size_t)((co * cig + ci) * ps->ntaps + t);
                cconv_copy1((char *)ps->wpack + dst * es,
                            (const char *)weight + (size_t)((co * cig + ci) * ksz + ps->tap_k[t]) * es, es);
            }
    return dw_workspace(d, s, &p->workspace_bytes);
}

static cconv_status dw_execute(const cconv_plan *p, const cconv_exec *e)
{
    const cconv_conv_desc *d = &p->d;
    const dw_state *s = p->state;
    int64_t *map[3];
    if (!cconv_pad_maps(d, &s->pad, map)) return CCONV_ERR_NOMEM;
    cconv_status st;
    if (d->dtype == CCONV_FLOAT64)
        st = d->channels_last ? cconv_dw_run_cl_f64(p, s, e->x, e->y, map)
                              : cconv_dw_run_cf_f64(p, s, e->x, e->y, map, e->shuffle_groups, e->y_cstride);
    else
        st = d->channels_last ? cconv_dw_run_cl_f32(p, s, e->x, e->y, map)
                              : cconv_dw_run_cf_f32(p, s, e->x, e->y, map, e->shuffle_groups, e->y_cstride);
    cconv_free(map[0]);
    return st;
}

const cconv_impl cconv_impl_depthwise = {
    .name = "depthwise", .algorithm = CCONV_ALGO_DEPTHWISE, .cannot = dw_cannot,
    .prefer = dw_prefer, .create = dw_create, .execute = dw_execute, .destroy = dw_destroy,
    .shuffles = 1,
};
const cconv_impl cconv_impl_grouped = {
    .name = "grouped", .algorithm = CCONV_ALGO_GROUPED, .cannot = grouped_cannot,
    .prefer = grouped_prefer, .create = dw_create, .execute = dw_execute, .destroy = dw_destroy,
    .shuffles = 1,
};
