/* Pointwise (1x1, stride 1, no padding) channels-first: Y[n] = W X[n] is a plain GEMM on the NCHW
 * arrays, run on the GEMM tile with roles swapped (output channels as its MR rows, pixels as its NR
 * columns): weights broadcast from the filters as given, pixel panels copied without a transpose,
 * tile rows contiguous output rows. */
#include <stdio.h>
#include <string.h>
#include "conv/pointwise_cf.h"

static int pointwise_cf_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    int ok = !d->transposed && !d->channels_last;
    for (int a = 0; a < 3; a++)
        ok &= d->kernel[a] == 1 && d->stride[a] == 1 && d->pad_before[a] == 0 && d->pad_after[a] == 0;
    if (!ok && n) snprintf(why, n, "a channels-first forward 1x1 convolution with stride 1 and no padding");
    return !ok;
}

static void pointwise_cf_destroy(void *state)
{
    pointwise_cf_state *s = state;
    if (!s) return;
    cconv_free(s->weight);
    cconv_free(s);
}

static cconv_status pointwise_cf_create(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    const size_t es = cconv_dtype_size(d->dtype);
    const int64_t cig = d->in_channels / d->groups;
    pointwise_cf_state *s = cconv_alloc_zeroed(sizeof *s);
    if (!s) return CCONV_ERR_NOMEM;
    p->state = s;
    s->tile = p->isa->wide[d->dtype == CCONV_FLOAT64];
    const size_t wb = (size_t)(d->out_channels * cig) * es;
    s->weight = cconv_alloc(wb);
    if (!s->weight) return CCONV_ERR_NOMEM;
    memcpy(s->weight, weight, wb);
    p->weight_bytes = (int64_t)wb;
    p->workspace_bytes = cig * s->tile.nr * cconv_threads() * (int64_t)es;
    return CCONV_OK;
}

static cconv_status pointwise_cf_execute(const cconv_plan *p, const cconv_exec *e)
{
    const pointwise_cf_state *s = p->state;
    return p->d.dtype == CCONV_FLOAT64
        ? cconv_pointwise_cf_run_f64(p, s, e->x, e->y, e->x_cstride, e->shuffle_groups)
        : cconv_pointwise_cf_run_f32(p, s, e->x, e->y, e->x_cstride, e->shuffle_groups);
}

const cconv_impl cconv_impl_pointwise_cf = {
    .name = "gemm_pointwise_cf", .algorithm = CCONV_ALGO_GEMM, .cannot = pointwise_cf_cannot,
    .create = pointwise_cf_create, .execute = pointwise_cf_execute, .destroy = pointwise_cf_destroy,
    .shuffles = 1,
};
