/* Winograd F(4x4, 3x3): filter transform, blocking, auto's cost rule, GEMM fallback for Inf/NaN. */
#include <stdio.h>
#include <string.h>
#include "conv/winograd.h"

#define WINO_BYTES (512 * 1024)
/* Below WINO_MIN_TILES tiles fitting a job's buffers, streaming U (4x the direct weights) costs
 * more than the multiplications saved, unless jobs need not split the output channels (nch == 1:
 * each V serves every cout block). Split jobs save less a tile, so the filter transform needs
 * twice WINO_MIN_CALL_TILES in the call to pay off (docs/perf-notes.md, docs/winograd.md). */
#define WINO_MIN_TILES 6
#define WINO_MIN_CALL_TILES 128
/* Outputs over the tiles' 16 each: under half used (d6 on 33x33: 6 rows a phase, 2 tiles of 4),
 * Winograd did not clearly beat the GEMM (docs/perf-notes.md). */
#define WINO_MIN_USE 0.5

void cconv_wino_geometry(const cconv_conv_desc *d, const cconv_tile_kernel *tile, int64_t nblk, wino_geom *g)
{
    const int64_t K = d->kernel[0] * d->in_channels, es = (int64_t)cconv_dtype_size(d->dtype);
    const int64_t MR = tile->mr, NR = tile->nr;
    g->dh = d->dilation[1];
    g->dw = d->dilation[2];
    const int64_t ph = g->dh * g->dw;
    g->th = ((d->out_size[1] + g->dh - 1) / g->dh + 3) / 4;
    g->tw = ((d->out_size[2] + g->dw - 1) / g->dw + 3) / 4;
    g->fit = WINO_BYTES / (36 * (K + nblk * NR) * es);
    const int64_t tb = max64(1, max64(MR, g->fit) / ph); /* per phase */
    g->TCB = min64(g->tw, tb);
    g->TRB = max64(1, min64(g->th, tb / g->TCB));
    g->nbr = (g->th + g->TRB - 1) / g->TRB;
    g->nbc = (g->tw + g->TCB - 1) / g->TCB;
    /* Few tile bands: split the output channels too. */
    const int64_t jobs = max64(1, d->batch) * d->out_size[0] * g->nbr * g->nbc;
    const int64_t nch = min64(nblk, max64(1, (CCONV_MIN_JOBS + jobs - 1) / jobs));
    g->bpc = (nblk + nch - 1) / nch;
    g->nch = (nblk + g->bpc - 1) / g->bpc;
    g->tiles = g->TRB * g->TCB * ph;
    g->TBp = (g->tiles + MR - 1) / MR * MR;
    g->R = g->dh * (4 * g->TRB + 2);
    g->WB = g->dw * (4 * g->TCB + 2);
}

int cconv_wino_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    const int kernel = d->kernel[1] != 3 || d->kernel[2] != 3, groups = d->groups != 1;
    const int stride = d->stride[1] != 1 || d->stride[2] != 1 || (d->transposed && d->stride[0] != 1);
    if (!kernel && !groups && !stride && !d->transposed) return 0;
    if (n == 0) return 1;
    char miss[3][160];
    int k = 0;
    if (kernel)
        snprintf(miss[k++], sizeof miss[0], "a 3x3 kernel in the last two spatial dimensions (2-D or 3-D), "
                 "got %lldx%lld", (long long)d->kernel[1], (long long)d->kernel[2]);
    if (groups) snprintf(miss[k++], sizeof miss[0], "groups=1, got groups=%lld", (long long)d->groups);
    if (stride && d->transposed)
        snprintf(miss[k++], sizeof miss[0], "stride 1 in every dimension for a transposed convolution, "
                 "got (%lld, %lld, %lld)", (long long)d->stride[0], (long long)d->stride[1],
                 (long long)d->stride[2]);
    else if (stride)
        snprintf(miss[k++], sizeof miss[0], "stride 1 in the last two spatial dimensions, got (%lld, %lld)",
                 (long long)d->stride[1], (long long)d->stride[2]);
    else if (k == 0) /* transposed: the forward equivalent's padding would be negative */
        snprintf(miss[k++], sizeof miss[0], "padding <= dilation * (kernel - 1) for a transposed convolution");
    snprintf(why, n, "Winograd F(4x4, 3x3) needs %s%s%s%s%s (use 'gemm' or 'auto')", miss[0],
             k > 1 ? "; " : "", k > 1 ? miss[1] : "", k > 2 ? "; " : "", k > 2 ? miss[2] : "");
    return 1;
}

static int wino_cannot(const cconv_conv_desc *d, char *why, size_t n)
{
    if (cconv_wino_cannot(d, why, n)) return 1;
    if (!d->transposed) return 0;
    if (n) snprintf(why, n, "a transposed convolution runs as its forward equivalent (winograd_transposed)");
    return 1;
}

/* Enough channels to keep the GEMMs long, enough tiles per job to reuse U (4x the weights). */
int cconv_wino_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight)
{
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    if (cig < 16 || cog < 16) return 0;
    const cconv_tile_kernel tile = isa->mid[d->dtype == CCONV_FLOAT64];
    wino_geom g;
    cconv_wino_geometry(d, &tile, (cog + tile.nr - 1) / tile.nr, &g);
    /* The filter transform costs what dozens of tiles save: ask for WINO_MIN_CALL_TILES in the
     * call. The scan of the filters for Inf/NaN comes last: it reads them all. */
    const double tile_outputs = 16.0 * (double)(g.th * g.tw * g.dh * g.dw);
    const int64_t call_tiles = d->batch * d->out_size[0] * g.th * g.tw * g.dh * g.dw;
    const int few_fit = g.fit < WINO_MIN_TILES;
    return (!few_fit || g.nch == 1) && g.tiles >= 4 && call_tiles >= (few_fit ? 2 : 1) * WINO_MIN_CALL_TILES &&
           (double)(d->out_size[1] * d->out_size[2]) >= WINO_MIN_USE * tile_outputs &&
           cconv_all_finite(weight, cog * cig * d->kernel[0] * 9, d->dtype);
}

static void wino_destroy(void *state)
{
    wino_state *s = state;
    if (!s) return;
    cconv_free(s->u);
    cconv_free(s->weight);
    cconv_free(s);
}

/* U[xi][cb][k][NR] = (G g G^T)[xi] of filter (cb*NR + j, k), k = depth tap * C_in + input
 * channel; zero columns past C_out. The filters are kept for the GEMM fallback. */
static cconv_status wino_create(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    const int dt = d->dtype == CCONV_FLOAT64;
    const int64_t Ci = d->in_channels, Co = d->out_channels, KD = d->kernel[0], K = KD * Ci;
    const size_t es = cconv_dtype_size(d->dtype);
    wino_state *s = cconv_alloc_zeroed(sizeof *s);
    if (!s) return CCONV_ERR_NOMEM;
    p->state = s;
    s->tile = p->isa->mid[dt];
    const int64_t NR = s->tile.nr;
    s->nblk = (Co + NR - 1) / NR;
    const size_t wb = (size_t)(Co * K * 9) * es, n = (size_t)(36 * s->nblk * K * NR);
    s->weight = cconv_alloc(wb);
    s->u = cconv_alloc(n * es);
    if (!s->weight || !s->u) return CCONV_ERR_NOMEM;
    memcpy(s->weight, weight, wb);
    /* auto only picks Winograd for finite filters (cconv_wino_prefer checked them) */
    s->fallback_always = d->algorithm != CCONV_ALGO_AUTO && !cconv_all_finite(weight, Co * K * 9, d->dtype);
    /* KB input channels at a time through a scratch [36][KB][NR]: U's 36 destinations are xs
     * apart (often a power of two, one cache set), and short writes straight into U thrashed. */
    enum { KB = 16 };
    const size_t xs = (size_t)(s->nblk * K * NR); /* U's stride between the 36 xi */
    /* Units (cout block, KB channels) write disjoint parts of U: on all threads when there are
     * enough filters (a one-shot batch-1 call pays for the transform: docs/perf-notes.md). */
    const int64_t nkb = (K + KB - 1) / KB, units = s->nblk * nkb;
    const int nt = Co * K >= 4096 ? cconv_threads() : 1;
    int failed = 0;
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        char *scratch = cconv_alloc((size_t)(36 * KB * NR) * es);
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t u = 0; u < units; u++) {
            if (!scratch) continue;
            const int64_t cb = u / nkb, k0 = u % nkb * KB, kn = K - k0 < KB ? K - k0 : KB;
            for (int64_t k = k0; k < k0 + kn; k++) /* k = depth tap * C_in + input channel */
                p->isa->wino_filter[dt]((const char *)weight + (size_t)(((cb * NR * Ci + k % Ci) * KD + k / Ci) * 9) * es,
                                        (ptrdiff_t)(K * 9), Co - cb * NR < NR ? Co - cb * NR : NR, NR,
                                        scratch + (size_t)((k - k0) * NR) * es, (ptrdiff_t)(kn * NR));
            for (int x = 0; x < 36; x++)
                memcpy((char *)s->u + (x * xs + (size_t)((cb * K + k0) * NR)) * es,
                       scratch + (size_t)(x * kn * NR) * es, (size_t)(kn * NR) * es);
        }
        cconv_free(scratch);
    }
    if (failed) return CCONV_ERR_NOMEM;
    cconv_padding_plain(d, &s->pad);
    wino_geom g;
    cconv_wino_geometry(d, &s->tile, s->nblk, &g);
    p->weight_bytes = (int64_t)(n * es + wb);
    p->workspace_bytes = (KD * g.R * g.WB * Ci + 36 * g.TBp * (K + g.bpc * NR)) * (int64_t)es * cconv_threads();
    return CCONV_OK;
}

/* The GEMM plan of the filters, made for the call: exact about where Inf and NaN go. */
static cconv_status wino_fallback(const cconv_plan *p, const cconv_exec *e)
{
    return cconv_plan_run_once(&p->d, &cconv_impl_gemm, ((const wino_state *)p->state)->weight, p->bias, e);
}

static cconv_status wino_execute(const cconv_plan *p, const cconv_exec *e)
{
    const wino_state *s = p->state;
    if (s->fallback_always) return wino_fallback(p, e);
    int64_t *map[3];
    if (!cconv_pad_maps(&p->d, &s->pad, map)) return CCONV_ERR_NOMEM;
    int nonfinite = 0;
    cconv_status st = p->d.dtype == CCONV_FLOAT64 ? cconv_wino_run_f64(p, s, e->x, e->y, map, &nonfinite)
                                                  : cconv_wino_run_f32(p, s, e->x, e->y, map, &nonfinite);
    if (st == CCONV_OK && nonfinite) st = wino_fallback(p, e);
    cconv_free(map[0]);
    return st;
}

const cconv_impl cconv_impl_winograd = {
    .name = "winograd", .algorithm = CCONV_ALGO_WINOGRAD, .lossy = 1, .cannot = wino_cannot,
    .prefer = cconv_wino_prefer, .create = wino_create, .execute = wino_execute, .destroy = wino_destroy,
};
