/* The channels-first direct convolution's plan (conv/direct_cf.h). With the input rows padded to
 * a pitch wp, output (r, c) and the input it reads at tap (i, j) lie a fixed distance apart,
 * i*dh*wp + j*dw, so Y[co][q] = bias + sum over taps t, channels ci of W[co][ci][t] * Xpad[ci][q +
 * off_t] on a flat grid q = r*wp + c: a register tile of MR output channels (weights broadcast) x
 * NR grid positions (vectors of the padded rows), the grid's padding columns computed, not
 * stored. The GEMM path would transpose x channels-last and its tiles back. */
#include <stdio.h>
#include <string.h>
#include "conv/direct_cf.h"
#include "conv/band.h"

/* Grouped convolutions of 2-64 channels a group and dense ones with at most 8 output channels,
 * the shapes it was measured on: the GEMM's tiles run wider dense convolutions well (an explicit
 * algorithm="gemm" keeps them there), one input channel a group is depthwise's (the composites
 * ask for that implementation) and 1x1 has its own channels-first form (pointwise_cf). */
static int direct_cf_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    const int64_t cig = d->in_channels / d->groups;
    const int ok = !d->transposed && !d->channels_last && cconv_one_plane(d) && d->stride[1] == 1 &&
                   d->stride[2] == 1 && d->kernel[1] * d->kernel[2] > 1 && cig >= 2 &&
                   (d->groups > 1 ? cig <= 64 : d->out_channels <= 8);
    if (!ok && n)
        snprintf(why, n, "a channels-first forward 1-D or 2-D convolution with stride 1, a kernel larger than "
                         "1x1, 2 or more input channels a group and at most 64 of them (grouped) or at most 8 output "
                         "channels (dense)");
    return !ok;
}

/* auto's rule (docs/perf-notes.md). Grouped: 4 to 24 input channels a group and at least 4
 * outputs, where the GEMM's tiles transpose a few channels at a time and the grouped kernels
 * broadcast one output channel at a time (1.2-2.5x both on AVX-512, 1.0-1.7x on AVX2); from 32
 * channels a group the GEMM ran as fast or faster (AVX2 0.86-1.01x), 2 channels a group the
 * grouped kernels (0.68x). Dense: at most 8 output channels (segmentation heads, the last layers
 * of image-to-image networks), whose GEMM tiles are mostly padding: 1.4-2.6x (AVX-512). A tile of
 * fewer than 8 output channels (AVX2's 4) reuses each input vector less: there the GEMM's tiles
 * won from 16 channels a group on small planes (0.88x at 7 x 7) and on dense layers of 256
 * input channels (0.86-0.89x). Each output is summed taps outer, channels inner as the GEMM sums
 * it in one kc block. */
static int direct_cf_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight)
{
    (void)weight;
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    const int narrow = isa->cfd[d->dtype == CCONV_FLOAT64].mr < 8;
    if (d->groups == 1) return !narrow || cig <= 96;
    if (narrow && cig >= 16 && d->out_size[1] * d->out_size[2] < 144) return 0;
    return cig >= 4 && cig <= 24 && cog >= 4;
}

static void direct_cf_destroy(void *state)
{
    direct_cf_state *s = state;
    if (!s) return;
    cconv_free(s->taps);
    cconv_free(s->weight);
    cconv_free(s);
}

/* Output rows of a job: its buffer (input rows with their halo, every channel of a group) within
 * half the ISA's band budget (in L2 while every block of output channels reads it), fewer when
 * the batch and groups give too few jobs for the threads. */
static int64_t job_rows(const cconv_conv_desc *d, const cconv_isa_table *isa, int64_t wp, int64_t span)
{
    const int64_t cig = d->in_channels / d->groups, OH = d->out_size[1];
    const int64_t row = cig * wp * (int64_t)cconv_dtype_size(d->dtype);
    int64_t rb = max64(1, isa->gemm_band_bytes / 2 / row - span);
    const int64_t per = (CCONV_MIN_JOBS + max64(1, d->batch * d->groups) - 1) / max64(1, d->batch * d->groups);
    rb = min64(rb, (OH + per - 1) / per);
    return max64(1, min64(rb, OH));
}

/* The tile's width in vectors: the fewest grid slots (computed, stored or not) of a block over the
 * tile's relative speed (narrower tiles broadcast each weight for fewer outputs); small planes
 * (7 x 7: a grid of 61 positions) waste most of a wide one. */
static int tile_vectors(const cconv_conv_desc *d, const direct_cf_state *s)
{
    static const double speed[] = {0.75, 0.95, 1.0};
    const int64_t vl = s->tile.nr / s->tile.nv, OH = d->out_size[1], nrb = (OH + s->rb - 1) / s->rb;
    int best = s->tile.nv;
    double cost = 0;
    for (int nv = s->tile.nv; nv >= 1; nv--) {
        const int64_t nr = nv * vl, last = OH - (nrb - 1) * s->rb;
        const int64_t q = (s->rb - 1) * s->wp + d->out_size[2], ql = (last - 1) * s->wp + d->out_size[2];
        const double c = (double)((nrb - 1) * ((q + nr - 1) / nr) + (ql + nr - 1) / nr) * (double)nr /
                         speed[nv - 1 < 2 ? nv - 1 : 2];
        if (nv == s->tile.nv || c < cost) cost = c, best = nv;
    }
    return best;
}

static cconv_status direct_cf_create(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    const size_t es = cconv_dtype_size(d->dtype);
    const int64_t G = d->groups, cig = d->in_channels / G, cog = d->out_channels / G;
    const int64_t KH = d->kernel[1], KW = d->kernel[2], T = KH * KW;
    direct_cf_state *s = cconv_alloc_zeroed(sizeof *s);
    if (!s) return CCONV_ERR_NOMEM;
    p->state = s;
    s->tile = p->isa->cfd[d->dtype == CCONV_FLOAT64];
    s->ntaps = (int)T;
    s->wp = d->pad_before[2] + d->in_size[2] + d->pad_after[2];
    const int64_t span = (KH - 1) * d->dilation[1];
    s->rb = job_rows(d, p->isa, s->wp, span);
    s->plane = (s->rb + span) * s->wp + s->tile.nr;
    s->nv = tile_vectors(d, s);
    s->taps = cconv_alloc((size_t)T * sizeof *s->taps);
    if (!s->taps) return CCONV_ERR_NOMEM;
    for (int64_t i = 0; i < KH; i++)
        for (int64_t j = 0; j < KW; j++) s->taps[i * KW + j] = (ptrdiff_t)(i * d->dilation[1] * s->wp + j * d->dilation[2]);
    const int64_t MR = s->tile.mr, ncb = (cog + MR - 1) / MR;
    const size_t wn = (size_t)(G * ncb * T * cig * MR);
    s->weight = cconv_alloc_zeroed(wn * es);
    if (!s->weight) return CCONV_ERR_NOMEM;
    char *wp = s->weight;
    const char *w = weight;
    for (int64_t co = 0; co < G * cog; co++) {
        const int64_t g = co / cog, cb = co % cog / MR, i = co % cog % MR;
        for (int64_t ci = 0; ci < cig; ci++)
            for (int64_t t = 0; t < T; t++)
                cconv_copy1(wp + (size_t)((((g * ncb + cb) * T + t) * cig + ci) * MR + i) * es,
                            w + (size_t)((co * cig + ci) * T + t) * es, es);
    }
    p->weight_bytes = (int64_t)(wn * es);
    p->workspace_bytes = cig * s->plane * (int64_t)es * cconv_threads();
    return CCONV_OK;
}

static cconv_status direct_cf_execute(const cconv_plan *p, const cconv_exec *e)
{
    const direct_cf_state *s = p->state;
    const cconv_conv_desc *d = &p->d;
    cconv_padding pad;
    cconv_padding_plain(d, &pad);
    int64_t *map[3];
    if (!cconv_pad_maps(d, &pad, map)) return CCONV_ERR_NOMEM;
    const cconv_status st = d->dtype == CCONV_FLOAT64
        ? cconv_direct_cf_run_f64(p, s, e->x, e->y, map, e->x_cstride, e->y_cstride, e->shuffle_groups)
        : cconv_direct_cf_run_f32(p, s, e->x, e->y, map, e->x_cstride, e->y_cstride, e->shuffle_groups);
    cconv_free(map[0]);
    return st;
}

const cconv_impl cconv_impl_direct_cf = {
    .name = "direct_cf", .algorithm = CCONV_ALGO_GEMM, .cannot = direct_cf_cannot, .prefer = direct_cf_prefer,
    .create = direct_cf_create, .execute = direct_cf_execute, .destroy = direct_cf_destroy, .shuffles = 1,
};
