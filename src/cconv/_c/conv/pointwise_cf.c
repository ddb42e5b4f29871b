/* Pointwise (1x1, stride 1, no padding) channels-first: Y[n] = W X[n] is a plain GEMM on the NCHW
 * arrays. Many output channels: the GEMM tile with roles swapped (output channels as its MR rows,
 * pixels as its NR columns), weights broadcast from the filters as given, pixel panels copied
 * without a transpose, tile rows contiguous output rows. Few: the pw_cf tile on x's rows in place
 * (conv/pointwise_cf_run.c.in), weights packed for its broadcasts. */
#include <stdio.h>
#include <string.h>
#include "conv/gemm.h"
#include "conv/pointwise_cf.h"

static int pointwise_cf_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    int ok = !d->transposed && !d->channels_last;
    for (int a = 0; a < 3; a++)
        ok &= d->kernel[a] == 1 && d->stride[a] == 1 && d->pad_before[a] == 0 && d->pad_after[a] == 0;
    if (!ok && n) snprintf(why, n, "a channels-first forward 1x1 convolution with stride 1 and no padding");
    return !ok;
}

/* x's rows read in place (no panel copy) on planes of at least PW_IN_PLACE_MIN_HW pixels, for at
 * most PW_IN_PLACE_MAX_COG output channels a group or a group's filters within
 * PW_IN_PLACE_MAX_WBYTES (short reductions, as MobileNet's expansions): there the copy and the
 * tile's accumulator round trip cost as much as the tiles, while many channels on long
 * reductions share a panel better, and small planes would copy their tail once a job
 * (docs/perf-notes.md). */
#define PW_IN_PLACE_MIN_HW 256
#define PW_IN_PLACE_MAX_COG 48
#define PW_IN_PLACE_MAX_WBYTES (24 * 1024)

/* The panel path's tile (output channels as its rows, pixels as its columns): of the wide, mid and
 * narrow tiles, the one with the fewest pixel and channel slots (computed or wasted) over its
 * speed; small images (a 7x7 plane: 49 pixels, two 48-pixel panels) waste most of a wide one. */
static cconv_tile_kernel panel_tile(const cconv_conv_desc *d, const cconv_isa_table *isa)
{
    const int dt = d->dtype == CCONV_FLOAT64;
    const int64_t P = d->batch * d->in_size[0] * d->in_size[1] * d->in_size[2], cog = d->out_channels / d->groups;
    const cconv_tile_kernel *cand[3] = {&isa->wide[dt], &isa->mid[dt], &isa->narrow[dt]};
    cconv_tile_kernel best = *cand[0];
    double cost = 0;
    for (int i = 0; i < 3; i++) {
        const cconv_tile_kernel *t = cand[i];
        const double c = (double)((P + t->nr - 1) / t->nr * t->nr) * (double)((cog + t->mr - 1) / t->mr * t->mr) /
                         cconv_gemm_tile_speed(isa, dt, t);
        if (i == 0 || c < cost) cost = c, best = *t;
    }
    return best;
}

static void pointwise_cf_destroy(void *state)
{
    pointwise_cf_state *s = state;
    if (!s) return;
    cconv_free(s->weight);
    cconv_free(s->wpack);
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
    const int64_t G = d->groups, cog = d->out_channels / G;
    s->in_place = d->in_size[0] * d->in_size[1] * d->in_size[2] >= PW_IN_PLACE_MIN_HW &&
                  (cog <= PW_IN_PLACE_MAX_COG || cog * cig * (int64_t)es <= PW_IN_PLACE_MAX_WBYTES);
    if (!s->in_place) {
        s->tile = panel_tile(d, p->isa);
        const size_t wb = (size_t)(d->out_channels * cig) * es;
        s->weight = cconv_alloc(wb);
        if (!s->weight) return CCONV_ERR_NOMEM;
        memcpy(s->weight, weight, wb);
        p->weight_bytes = (int64_t)wb;
        p->workspace_bytes = cig * s->tile.nr * cconv_threads() * (int64_t)es;
        return CCONV_OK;
    }
    const int64_t ntile = (cog + CCONV_PW_MR - 1) / CCONV_PW_MR;
    const size_t pb = (size_t)(G * ntile * cig * CCONV_PW_MR) * es;
    char *pack = cconv_alloc(pb);
    if (!pack) return CCONV_ERR_NOMEM;
    s->wpack = pack;
    for (int64_t g = 0; g < G; g++)
        cconv_pack_pw_rows(pack + (size_t)(g * ntile * cig * CCONV_PW_MR) * es,
                           (const char *)weight + (size_t)(g * cog * cig) * es, cog, cig, es);
    p->weight_bytes = (int64_t)pb;
    p->workspace_bytes = cig * CCONV_PW_CF_TAIL_BYTES * cconv_threads();
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
