/* The implementation list, and the public plan API on top of it. */
#include <stdio.h>
#include <string.h>
#include "core/plan.h"

/* In auto's order, which is the policy (auto and exact take the first that can and whose prefer
 * accepts; algorithm= the first of that algorithm that can):
 * - a transposed 3x3 stride-1 convolution as its forward Winograd equivalent (input gradients);
 * - the channels-first direct form of the GEMM for grouped convolutions of 4-24 channels a group
 *   and dense ones of at most 8 output channels (no transposes; its prefer says where);
 * - depthwise (C_out/groups <= 4) and grouped (2-8 input channels per group, few outputs) before
 *   Winograd and the GEMM, whose tiles would be mostly zero there;
 * - Winograd for 3x3 stride 1 with enough channels and tiles to pay for its transforms;
 * - the GEMM family, which runs everything, its pointwise channels-first form first;
 * - the reference algorithm only when asked for (or CCONV_USE_REFERENCE). */
static const cconv_impl *const IMPLS[] = {
    &cconv_impl_winograd_transposed,
    &cconv_impl_direct_cf,
    &cconv_impl_depthwise,
    &cconv_impl_grouped,
    &cconv_impl_winograd,
    &cconv_impl_pointwise_cf,
    &cconv_impl_gemm,
    &cconv_impl_reference,
};
enum { NIMPLS = sizeof IMPLS / sizeof IMPLS[0] };

/* The implementation for d, or NULL with why (n bytes) when the algorithm asked for cannot run it. */
static const cconv_impl *choose(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight,
                                char *why, size_t n)
{
    const int any = d->algorithm == CCONV_ALGO_AUTO || d->algorithm == CCONV_ALGO_EXACT;
    int refused = 0;
    for (int i = 0; i < NIMPLS; i++) {
        const cconv_impl *impl = IMPLS[i];
        if (any) {
            if ((impl->lossy && d->algorithm == CCONV_ALGO_EXACT) || impl->algorithm == CCONV_ALGO_REFERENCE ||
                (impl->cannot && impl->cannot(d, NULL, 0)))
                continue;
            if (!impl->prefer || impl->prefer(d, isa, weight)) return impl;
            continue;
        }
        if (impl->algorithm != d->algorithm) continue;
        /* the first refusal's reason: the implementation the algorithm's name stands for first */
        if (!impl->cannot || !impl->cannot(d, refused ? NULL : why, refused ? 0 : n)) return impl;
        refused = 1;
    }
    if (!refused && n) snprintf(why, n, "no implementation of this algorithm runs it");
    return NULL;
}

void cconv_plan_destroy(cconv_plan *p)
{
    if (!p) return;
    if (p->impl && p->impl->destroy) p->impl->destroy(p->state);
    cconv_free(p->bias);
    cconv_free(p);
}

cconv_status cconv_plan_make(const cconv_conv_desc *d, const cconv_impl *impl, const void *weight,
                             const void *bias, cconv_plan **out)
{
    *out = NULL;
    const cconv_isa_table *isa = cconv_active_isa();
    if (!impl) impl = choose(d, isa, weight, NULL, 0);
    if (!impl) return CCONV_ERR_UNSUPPORTED;
    cconv_plan *p = cconv_alloc_zeroed(sizeof *p);
    if (!p) return CCONV_ERR_NOMEM;
    p->d = *d;
    p->impl = impl;
    p->isa = isa;
    const size_t bb = (size_t)d->out_channels * cconv_dtype_size(d->dtype);
    if (bias && !(p->bias = cconv_alloc(bb))) {
        cconv_plan_destroy(p);
        return CCONV_ERR_NOMEM;
    }
    if (bias) memcpy(p->bias, bias, bb);
    const cconv_status st = impl->create(p, weight);
    if (st == CCONV_OK) {
        *out = p;
        return CCONV_OK;
    }
    cconv_plan_destroy(p);
    if (st == CCONV_USE_REFERENCE) return cconv_plan_make(d, &cconv_impl_reference, weight, bias, out);
    return st;
}

static cconv_status prepare(const cconv_conv_desc *desc, cconv_conv_desc *d)
{
    *d = *desc;
    const cconv_status st = cconv_conv_output_size(d);
    if (st == CCONV_OK) cconv_desc_clamp_strides(d);
    return st;
}

cconv_status cconv_plan_create(const cconv_conv_desc *desc, const void *weight, const void *bias,
                               cconv_plan **out)
{
    if (!out || !desc || !weight) return CCONV_ERR_INVALID;
    *out = NULL;
    cconv_conv_desc d;
    const cconv_status st = prepare(desc, &d);
    if (st != CCONV_OK) return st;
    return cconv_plan_make(&d, NULL, weight, bias, out);
}

cconv_status cconv_plan_unsupported(const cconv_conv_desc *desc, char *why, size_t n)
{
    if (!desc || !why || n == 0) return CCONV_ERR_INVALID;
    cconv_conv_desc d;
    const cconv_status st = prepare(desc, &d);
    if (st != CCONV_OK) return st;
    if (d.algorithm == CCONV_ALGO_AUTO || d.algorithm == CCONV_ALGO_EXACT) return CCONV_OK;
    /* (an explicit algorithm's choice never reads the filters) */
    return choose(&d, cconv_active_isa(), NULL, why, n) ? CCONV_OK : CCONV_ERR_UNSUPPORTED;
}

const cconv_conv_desc *cconv_plan_desc(const cconv_plan *p) { return &p->d; }
cconv_algorithm cconv_plan_algorithm(const cconv_plan *p) { return p->impl->algorithm; }
const char *cconv_plan_implementation(const cconv_plan *p) { return p->impl->name; }
int64_t cconv_plan_weight_bytes(const cconv_plan *p) { return p->weight_bytes; }
int64_t cconv_plan_workspace_bytes(const cconv_plan *p) { return p->workspace_bytes; }

cconv_status cconv_plan_run_once(const cconv_conv_desc *d, const cconv_impl *impl, const void *weight,
                                 const void *bias, const cconv_exec *e)
{
    cconv_plan *f;
    cconv_status st = cconv_plan_make(d, impl, weight, bias, &f);
    if (st != CCONV_OK) return st;
    st = f->impl->execute(f, e);
    cconv_plan_destroy(f);
    return st;
}

/* Below about a million multiply-adds: starting (and on a busy machine waiting for) an OpenMP
 * team costs more than the work. */
int cconv_small_work(const cconv_conv_desc *d)
{
    const int64_t *sz = d->transposed ? d->in_size : d->out_size;
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    const double per = d->transposed ? (double)cog * d->in_channels : (double)cig * d->out_channels;
    return cconv_small_macs((double)d->batch * per * (double)(sz[0] * sz[1] * sz[2]) *
                            (double)(d->kernel[0] * d->kernel[1] * d->kernel[2]));
}

int cconv_small_macs(double macs) { return macs < (double)(1 << 20); }

void cconv_pack_pw_rows(void *dst, const void *src, int64_t rows, int64_t K, size_t es)
{
    const int64_t nblk = (rows + CCONV_PW_MR - 1) / CCONV_PW_MR;
    for (int64_t b = 0; b < nblk; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < CCONV_PW_MR; i++) {
                const int64_t r = b * CCONV_PW_MR + i;
                char *o = (char *)dst + (size_t)((b * K + k) * CCONV_PW_MR + i) * es;
                if (r < rows) cconv_copy1(o, (const char *)src + (size_t)(r * K + k) * es, es);
                else cconv_copy1(o, &(double){0}, es); /* all bits zero: 0.0 of either type */
            }
}

cconv_status cconv_plan_run(const cconv_plan *p, const cconv_exec *e)
{
    if (p->d.batch == 0) return CCONV_OK;
    const int serial = cconv_set_serial(cconv_small_work(&p->d));
    const cconv_status st = p->impl->execute(p, e);
    cconv_set_serial(serial);
    return st;
}

cconv_status cconv_plan_execute(const cconv_plan *p, const void *x, void *y)
{
    if (!p || !x || !y) return CCONV_ERR_INVALID;
    const cconv_exec e = {.x = x, .y = y, .shuffle_groups = 1};
    return cconv_plan_run(p, &e);
}

cconv_status cconv_plan_execute_shuffled(const cconv_plan *p, int64_t shuffle_groups, const void *x,
                                         void *y)
{
    if (!p || !x || !y || shuffle_groups < 1) return CCONV_ERR_INVALID;
    if (p->d.out_channels % shuffle_groups) return CCONV_ERR_INVALID;
    if (!p->impl->shuffles || p->d.channels_last) return CCONV_ERR_UNSUPPORTED;
    const cconv_exec e = {.x = x, .y = y, .shuffle_groups = shuffle_groups};
    return cconv_plan_run(p, &e);
}

cconv_status cconv_conv(const cconv_conv_desc *d, const void *x, const void *weight,
                        const void *bias, void *y)
{
    cconv_plan *p;
    cconv_status st = cconv_plan_create(d, weight, bias, &p);
    if (st != CCONV_OK) return st;
    st = cconv_plan_execute(p, x, y);
    cconv_plan_destroy(p);
    return st;
}
