/* A transposed convolution with stride 1 and one group is the forward correlation with the
 * flipped filter, C_in and C_out swapped, padded by d(k-1) - p before and d(k-1) - p +
 * output_padding after: run on Winograd as that forward plan (the input gradient of 3x3 layers). */
#include <stdio.h>
#include <string.h>
#include "conv/winograd.h"

/* f: the forward equivalent of d, when it exists and Winograd can run it; of d's output size and
 * tensors, so valid as d is. */
static int forward_equivalent(const cconv_conv_desc *d, cconv_conv_desc *f)
{
    if (!d->transposed || d->groups != 1) return 0;
    *f = *d;
    f->transposed = 0;
    f->algorithm = CCONV_ALGO_WINOGRAD;
    for (int a = 0; a < 3; a++) {
        const int64_t span = d->dilation[a] * (d->kernel[a] - 1);
        if (d->stride[a] != 1) return 0;
        f->pad_before[a] = span - d->pad_before[a];
        f->pad_after[a] = span - d->pad_after[a] + d->output_padding[a];
        f->output_padding[a] = 0;
        if (f->pad_before[a] < 0 || f->pad_after[a] < 0) return 0;
    }
    return !cconv_wino_cannot(f, NULL, 0);
}

static int wt_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    cconv_conv_desc f;
    if (forward_equivalent(d, &f)) return 0;
    /* (for a transposed d that passes its stride, kernel and group checks: the padding's fault) */
    if (!cconv_wino_cannot(d, why, n) && n) snprintf(why, n, "it runs transposed convolutions only");
    return 1;
}

static int wt_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight)
{
    cconv_conv_desc f;
    return forward_equivalent(d, &f) && cconv_wino_prefer(&f, isa, weight);
}

static void wt_destroy(void *state) { cconv_plan_destroy(state); }

static cconv_status wt_create(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    cconv_conv_desc f;
    forward_equivalent(d, &f);
    /* An Inf or NaN filter would reach outputs the scatter definition never gives it (see
     * conv/gemm.c): the reference algorithm then. Under auto, wt_prefer has read them already.
     * Finite filters: the inner plan (as under auto) does not read them again either. */
    if (d->algorithm != CCONV_ALGO_AUTO && !cconv_all_finite(weight, cconv_filter_count(d), d->dtype))
        return CCONV_USE_REFERENCE;
    f.algorithm = CCONV_ALGO_AUTO;
    const int64_t Ci = f.in_channels, Co = f.out_channels;
    const int64_t ksz = f.kernel[0] * f.kernel[1] * f.kernel[2];
    const size_t es = cconv_dtype_size(f.dtype);
    char *fw = cconv_alloc((size_t)(Ci * Co * ksz) * es);
    if (!fw) return CCONV_ERR_NOMEM;
    /* forward [co][ci][r] = transposed [ci][co][ksz - 1 - r] */
    for (int64_t co = 0; co < Co; co++)
        for (int64_t ci = 0; ci < Ci; ci++)
            for (int64_t r = 0; r < ksz; r++)
                cconv_copy1(fw + (size_t)((co * Ci + ci) * ksz + r) * es,
                            (const char *)weight + (size_t)((ci * Co + co) * ksz + ksz - 1 - r) * es, es);
    cconv_plan *inner;
    const cconv_status st = cconv_plan_make(&f, &cconv_impl_winograd, fw, p->bias, &inner);
    cconv_free(fw);
    if (st != CCONV_OK) return st;
    p->state = inner;
    p->weight_bytes = inner->weight_bytes;
    p->workspace_bytes = inner->workspace_bytes;
    return CCONV_OK;
}

static cconv_status wt_execute(const cconv_plan *p, const cconv_exec *e)
{
    const cconv_plan *inner = p->state;
    return inner->impl->execute(inner, e);
}

const cconv_impl cconv_impl_winograd_transposed = {
    .name = "winograd_transposed", .algorithm = CCONV_ALGO_WINOGRAD, .lossy = 1, .cannot = wt_cannot,
    .prefer = wt_prefer, .create = wt_create, .execute = wt_execute, .destroy = wt_destroy,
};
