/* The GEMM family's plan: blocking and tile choice (conv/gemm.h). */
#include <string.h>
#include "conv/gemm.h"

/* The narrowest of the narrow, mid and wide tiles that holds ncol output channels (the wide
 * one when none does). */
static cconv_tile_kernel narrowest_tile(const cconv_isa_table *isa, int dt, int64_t ncol)
{
    if (ncol <= isa->narrow[dt].nr) return isa->narrow[dt];
    if (ncol <= isa->mid[dt].nr) return isa->mid[dt];
    return isa->wide[dt];
}

void cconv_gemm_band_geometry(const cconv_conv_desc *d, const gemm_state *s, const pass_t *ps, gemm_band *b)
{
    const int64_t Ci = d->in_channels, Hp = s->pad.size[1], Wp = s->pad.size[2];
    const int64_t es = (int64_t)cconv_dtype_size(d->dtype);
    /* The extent the taps of every pass read, so that stride phases share one band geometry. */
    int64_t span[3] = {1, 1, 1};
    for (int i = 0; i < s->npasses; i++)
        for (int t = 0; t < s->passes[i].ntaps; t++) {
            const int64_t lin = s->passes[i].taps[t] / Ci;
            span[0] = max64(span[0], lin / (Wp * Hp) + 1);
            span[1] = max64(span[1], (lin / Wp) % Hp + 1);
            span[2] = max64(span[2], lin % Wp + s->wmerge);
        }
    const int64_t Q1 = ps->q[1], Q2 = ps->q[2], MR = s->tile.mr;
    const int64_t pix_bytes = span[0] * Ci * es; /* one buffer column of one row */
    b->WS = Q2;
    if (span[1] * ((Q2 - 1) * ps->is[2] + span[2]) * pix_bytes > s->band_bytes) {
        const int64_t cols = s->band_bytes / (span[1] * pix_bytes);
        b->WS = max64(MR, ((cols - span[2]) / ps->is[2] + 1) / MR * MR);
        b->WS = min64(b->WS, Q2);
    }
    b->WB = (b->WS - 1) * ps->is[2] + span[2];
    /* Rows: as many as fit the budget, but enough jobs; and tall enough that the halo rows
     * (copied by two bands) cost at most about half a copy more. */
    const int64_t row_bytes = b->WB * pix_bytes, planes = max64(1, d->batch * ps->q[0]); /* batch may be 0 */
    const int64_t bands_wanted = (CCONV_MIN_JOBS + planes - 1) / planes;
    int64_t cap = (Q1 + bands_wanted - 1) / bands_wanted;
    /* But bands of >= GEMM_MIN_BAND_PIX outputs where channel blocks can be split instead: a job
     * streams its weights once per band (one-row bands of 14x14 were L3-bound: docs/perf-notes.md). */
    if (s->nblocks > 1 && cap * b->WS < GEMM_MIN_BAND_PIX) {
        cap = min64(Q1, (GEMM_MIN_BAND_PIX + b->WS - 1) / b->WS);
        cap = (Q1 + (Q1 + cap - 1) / cap - 1) / ((Q1 + cap - 1) / cap); /* even bands */
    }
    const int64_t fit = (s->band_bytes / row_bytes - span[1]) / ps->is[1] + 1;
    const int64_t tall = 2 * (span[1] - ps->is[1]);
    int64_t B = max64(min64(fit, cap), min64(tall, cap));
    b->B = max64(1, min64(B, Q1));
    b->R = (b->B - 1) * ps->is[1] + span[1];
    b->DS = span[0];
    b->nbh = (Q1 + b->B - 1) / b->B;
    b->nbw = (Q2 + b->WS - 1) / b->WS;
    /* Split the channel blocks too when there are few bands (batch 1, small images). */
    b->blocks = s->nblocks;
    const int64_t want = (CCONV_MIN_JOBS + planes * b->nbh * b->nbw - 1) / (planes * b->nbh * b->nbw);
    const int64_t nr = min64(b->blocks, max64(1, want));
    b->rs = (b->blocks + nr - 1) / nr;
    b->nr = (b->blocks + b->rs - 1) / b->rs;
    b->direct = 0;
    if (d->channels_last) {
        b->direct = 1;
        for (int a = 0; a < 3; a++)
            if (s->pad.lo[a] != 0 || s->pad.size[a] != d->in_size[a]) b->direct = 0;
    }
    b->shared = !b->direct && b->nr > 1;
    if (b->direct || b->shared) { b->DS = s->pad.size[0]; b->R = Hp; b->WB = Wp; }
}

int cconv_gemm_passes_share_bands(const cconv_conv_desc *d, const gemm_state *s)
{
    if (s->npasses < 2 || s->npasses > GEMM_FUSE_MAX_PASSES) return 0;
    gemm_band b0, bi;
    memset(&b0, 0, sizeof b0);
    cconv_gemm_band_geometry(d, s, &s->passes[0], &b0);
    for (int i = 1; i < s->npasses; i++) {
        memset(&bi, 0, sizeof bi);
        cconv_gemm_band_geometry(d, s, &s->passes[i], &bi);
        if (memcmp(&b0, &bi, sizeof b0)) return 0;
        for (int a = 0; a < 3; a++)
            if (s->passes[i].q[a] != s->passes[0].q[a] || s->passes[i].is[a] != s->passes[0].is[a]) return 0;
    }
    return 1;
}

/* The channel blocking for main tile t (gemm_state: gpb, tail). */
static void set_gemm_tile(const cconv_conv_desc *d, const cconv_isa_table *isa, gemm_state *s, cconv_tile_kernel t)
{
    const int dt = d->dtype == CCONV_FLOAT64;
    const int64_t G = d->groups, cog = s->cog;
    s->tile = t;
    s->nblk = (cog + t.nr - 1) / t.nr;
    s->gpb = G > 1 && cog < t.nr && !s->one_group_blocks ? min64(t.nr / cog, G) : 1;
    s->kmax = s->gpb * s->cig * s->wmerge;
    s->has_tail = 0;
    if (s->gpb == 1 && cog % t.nr != 0) {
        s->tail = narrowest_tile(isa, dt, cog % t.nr);
        s->has_tail = s->tail.nr < t.nr && s->tail.nr >= cog % t.nr; /* the cl tile is wider than wide */
    }
    s->nblocks = s->gpb > 1 ? (G + s->gpb - 1) / s->gpb : G * s->nblk;
}

/* Tile t's speed relative to the wide tile's (docs/perf-notes.md): mid 0.95, narrow 0.75 (0.87 in
 * the Zen 4 driver, 0.70-0.74 alone on an Intel Xeon: its MR row pointers outnumber the registers);
 * the cl tile 1.0 (1.01-1.03 alone on that Xeon). */
double cconv_gemm_tile_speed(const cconv_isa_table *isa, int dt, const cconv_tile_kernel *t)
{
    return t->nr == isa->narrow[dt].nr ? 0.75 : t->nr == isa->mid[dt].nr ? 0.95 : 1.0;
}

/* Register-tile slots (computed or wasted) a plan runs, over the tiles' speeds. */
static double gemm_tile_cost(const cconv_conv_desc *d, const cconv_isa_table *isa, const gemm_state *s)
{
    const int dt = d->dtype == CCONV_FLOAT64;
    double cost = 0;
    for (int i = 0; i < s->npasses; i++) {
        gemm_band b;
        cconv_gemm_band_geometry(d, s, &s->passes[i], &b);
        const int64_t Q1 = s->passes[i].q[1], Q2 = s->passes[i].q[2];
        for (int last = 0; last < 2; last++) {
            const cconv_tile_kernel *t = last && s->has_tail ? &s->tail : &s->tile;
            const int64_t nblocks = last ? (s->has_tail ? 1 : 0) : s->nblk - (s->has_tail ? 1 : 0);
            const double speed = cconv_gemm_tile_speed(isa, dt, t);
            double slots = 0; /* per image plane and block: pixel slots of every job */
            for (int64_t h0 = 0; h0 < Q1; h0 += b.B)
                for (int64_t w0 = 0; w0 < Q2; w0 += b.WS) {
                    const int64_t npix = min64(b.B, Q1 - h0) * min64(b.WS, Q2 - w0);
                    slots += (double)((npix + t->mr - 1) / t->mr * t->mr);
                }
            cost += slots * (double)(nblocks * d->groups * t->nr) / speed;
        }
    }
    return cost;
}

/* The larger of the passes' weights per reduction step of a tile nr wide (taps x nr elements). */
static int64_t weight_bytes_per_k(const gemm_state *s, int64_t nr, size_t es)
{
    int64_t per_k = 0;
    for (int i = 0; i < s->npasses; i++) per_k = max64(per_k, (int64_t)s->passes[i].ntaps * nr * (int64_t)es);
    return per_k;
}

/* Of the tiles that may run this plan, the one of least cost (gemm_tile_cost): where the wide
 * tile is wider than the mid one, whichever wastes less (14x14 jobs fill 14-pixel mid tiles but
 * leave 2 of 16 slots of 8-pixel wide ones empty); for channels-last outputs also the ISA's cl
 * tile (channels-first ones: slower in store_cf on fewer pixels), where its weights leave the
 * reduction in one kc block (choose_kc): a split changes the summation order and gained nothing
 * (docs/perf-notes.md). */
static void choose_gemm_tile(const cconv_conv_desc *d, const cconv_isa_table *isa, gemm_state *s)
{
    const int dt = d->dtype == CCONV_FLOAT64;
    if (s->gpb > 1) return;
    const cconv_tile_kernel *cl = &isa->cl[dt];
    const cconv_tile_kernel *cand[2];
    int nc = 0;
    if (s->tile.nr == isa->wide[dt].nr && isa->mid[dt].nr != isa->wide[dt].nr) cand[nc++] = &isa->mid[dt];
    /* 2 cog > nr: one group a block (gpb 1), as gemm_tile_cost counts */
    if (d->channels_last && cl->fn != isa->wide[dt].fn && 2 * s->cog > cl->nr &&
        weight_bytes_per_k(s, cl->nr, cconv_dtype_size(d->dtype)) * s->kmax <= isa->gemm_kc_bytes)
        cand[nc++] = cl;
    cconv_tile_kernel best = s->tile;
    double cost = gemm_tile_cost(d, isa, s);
    for (int i = 0; i < nc; i++) {
        set_gemm_tile(d, isa, s, *cand[i]);
        const double c = gemm_tile_cost(d, isa, s);
        if (c < cost) { cost = c; best = *cand[i]; }
    }
    if (nc) set_gemm_tile(d, isa, s, best);
}

static void gemm_destroy(void *state)
{
    gemm_state *s = state;
    if (!s) return;
    cconv_passes_free(s->passes, s->npasses);
    cconv_free(s->weight_copy);
    cconv_free(s);
}

/* Goto's blocking (config/<isa>.h): a kc block's weights (taps x kc x NR) within the ISA's
 * gemm_kc_bytes, each reused from L2 by a chunk of tiles (the driver runs every tile of the chunk
 * on one kc block before the next) instead of every kc block streaming through each tile; kc
 * blocks of even length. */
static void choose_kc(gemm_state *s, const cconv_isa_table *isa, size_t es)
{
    const int64_t per_k = weight_bytes_per_k(s, s->tile.nr, es);
    const int64_t K = s->kmax;
    s->kc = per_k > 0 ? isa->gemm_kc_bytes / per_k : K;
    if (s->kc < 1) s->kc = 1;
    if (s->kc >= K) s->kc = K;
    else s->kc = (K + (K + s->kc - 1) / s->kc - 1) / ((K + s->kc - 1) / s->kc); /* even blocks */
}

/* Per-thread band buffers and accumulators, plus the shared padded copy when a pass reads one. */
static cconv_status gemm_workspace(const cconv_conv_desc *d, const gemm_state *s, int64_t *bytes)
{
    const int64_t Ci = d->in_channels, es = (int64_t)cconv_dtype_size(d->dtype);
    int64_t ws = 0, copy_bytes;
    int shared = 0;
    for (int i = 0; i < s->npasses; i++) {
        gemm_band b;
        cconv_gemm_band_geometry(d, s, &s->passes[i], &b);
        if (b.shared) shared = 1;
        else if (!b.direct) ws = max64(ws, b.DS * b.R * b.WB * Ci);
    }
    *bytes = (ws + cconv_gemm_acc_elems(s, es)) * cconv_threads() * es;
    if (!shared) return CCONV_OK;
    const int64_t padded_elems = s->pad.size[0] * s->pad.size[1] * s->pad.size[2]; /* checked by the passes */
    if (!cconv_mul(d->batch, padded_elems, &copy_bytes) || !cconv_mul(copy_bytes, Ci * es, &copy_bytes))
        return CCONV_ERR_OVERFLOW;
    *bytes += copy_bytes;
    return CCONV_OK;
}

static cconv_status gemm_make(cconv_plan *p, const void *weight, int one_group_blocks)
{
    const cconv_conv_desc *d = &p->d;
    const cconv_isa_table *isa = p->isa;
    const size_t es = cconv_dtype_size(d->dtype);
    const int dt = d->dtype == CCONV_FLOAT64;
    const int64_t G = d->groups, Ci = d->in_channels;
    gemm_state *s = cconv_alloc_zeroed(sizeof *s);
    if (!s) return CCONV_ERR_NOMEM;
    p->state = s;
    s->cig = Ci / G;
    s->cog = d->out_channels / G;
    s->one_group_blocks = one_group_blocks;
    s->wmerge = 1;
    s->mc_bytes = isa->gemm_mc_bytes;
    s->band_bytes = isa->gemm_band_bytes;
    if (!d->transposed && G == 1 && Ci < 32 && d->dilation[2] == 1 && d->kernel[2] > 1) s->wmerge = d->kernel[2];
    set_gemm_tile(d, isa, s, narrowest_tile(isa, dt, s->cog));
    cconv_status st = cconv_passes_make(d, Ci, s->wmerge, &s->pad, &s->passes, &s->npasses);
    if (st != CCONV_OK) return st;
    choose_gemm_tile(d, isa, s);
    choose_kc(s, isa, es);
    const size_t filter_bytes = (size_t)cconv_filter_count(d) * es;
    if (s->gpb > 1) {
        s->weight_copy = cconv_alloc(filter_bytes);
        if (!s->weight_copy) return CCONV_ERR_NOMEM;
        memcpy(s->weight_copy, weight, filter_bytes);
    }
    for (int i = 0; i < s->npasses; i++) {
        pass_t *ps = &s->passes[i];
        const size_t n = (size_t)(s->nblocks * ps->ntaps * s->kmax * s->tile.nr);
        ps->wpack = cconv_alloc(n * es);
        if (!ps->wpack) return CCONV_ERR_NOMEM;
        p->weight_bytes += (int64_t)(n * es);
    }
    s->wfinite = (dt ? cconv_gemm_pack_f64 : cconv_gemm_pack_f32)(d, s, weight);
    if ((st = gemm_workspace(d, s, &p->workspace_bytes)) != CCONV_OK) return st;
    /* Transposed phases read zero padding where the scatter definition has no term: an Inf or
     * NaN filter would put NaN at outputs it never reaches, so such filters run the reference
     * algorithm (wfinite: checked on the filters as given, by the packing). */
    if (d->transposed && !s->wfinite) return CCONV_USE_REFERENCE;
    return CCONV_OK;
}

static cconv_status gemm_create(cconv_plan *p, const void *weight) { return gemm_make(p, weight, 0); }
static cconv_status gemm_create_one_group(cconv_plan *p, const void *weight) { return gemm_make(p, weight, 1); }

static cconv_status gemm_execute(const cconv_plan *p, const cconv_exec *e);

/* What a call whose input holds Inf or NaN runs instead of a gpb > 1 plan. */
static const cconv_impl gemm_one_group = {
    .name = "gemm_one_group", .algorithm = CCONV_ALGO_GEMM, .create = gemm_create_one_group,
    .execute = gemm_execute, .destroy = gemm_destroy, .shuffles = 1,
};

static cconv_status gemm_execute(const cconv_plan *p, const cconv_exec *e)
{
    const cconv_conv_desc *d = &p->d;
    const gemm_state *s = p->state;
    const int64_t *I = d->in_size;
    if (s->gpb > 1 && !cconv_all_finite(e->x, d->batch * d->in_channels * I[0] * I[1] * I[2], d->dtype))
        return cconv_plan_run_once(d, &gemm_one_group, s->weight_copy, p->bias, e);
    int64_t *map[3];
    if (!cconv_pad_maps(d, &s->pad, map)) return CCONV_ERR_NOMEM;
    const cconv_status st = d->dtype == CCONV_FLOAT64
        ? cconv_gemm_run_f64(p, s, e->x, e->y, map, e->shuffle_groups)
        : cconv_gemm_run_f32(p, s, e->x, e->y, map, e->shuffle_groups);
    cconv_free(map[0]);
    return st;
}

const cconv_impl cconv_impl_gemm = {
    .name = "gemm", .algorithm = CCONV_ALGO_GEMM, .create = gemm_create,
    .execute = gemm_execute, .destroy = gemm_destroy, .shuffles = 1,
};
