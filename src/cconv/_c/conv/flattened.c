/* Fused flattened convolution (cconv_flattened_conv2d): a 1x1 then a depthwise convolution. A job
 * is (image, band of output rows): the 1x1 over the band's input rows of x, halo included (a
 * pointwise plan reading x in place), into a per-thread buffer that stays in L2, then the
 * depthwise over that (a plan with the band's own top/bottom padding) into the band's rows of y.
 * The banding depends on the thread count, the results do not: every output sums the same terms
 * in the same order whichever band computes it. */
#include "core/plan.h"
#include "core/act.h"

#define FLAT_BAND_BYTES (512 * 1024)

typedef struct {
    int64_t rows, pt, pb;       /* input rows of the band (clipped to the image), padding rows */
    cconv_plan *pw, *dw;
} flat_variant;

/* The bands of one call: band b of output rows runs variant band_var[b]. */
typedef struct {
    const flat_variant *var;
    const int *band_var;
    int64_t nb, OB, N, C, Ci, H, W, OH, OW, sh, ph, maxrows;
    const cconv_isa_table *isa; /* the calling thread's: the jobs run on OpenMP workers */
} flat_bands;

/* One job: image n, band b, through the intermediate buffer mid (rows of the 1x1's output). */
static cconv_status run_job(const flat_bands *f, const cconv_conv_desc *d, const void *bias, const void *x,
                            void *y, int64_t job, void *mid)
{
    const size_t es = cconv_dtype_size(d->dtype);
    const int64_t n = job / f->nb, b = job % f->nb, C = f->C, OH = f->OH, OW = f->OW, W = f->W;
    const flat_variant *v = &f->var[f->band_var[b]];
    const int64_t o0 = b * f->OB, on = (o0 + f->OB < OH ? o0 + f->OB : OH) - o0;
    char *yb = (char *)y + (size_t)(n * C * OH * OW + o0 * OW) * es;
    if (v->rows == 0) { /* the band reads padding only: bias */
        for (int64_t c = 0; c < C; c++) {
            char *yc = yb + (size_t)(c * OH * OW) * es;
            const void *bc = bias ? (const char *)bias + (size_t)c * es : (const void *)&(double){0};
            for (int64_t i = 0; i < on * OW; i++) cconv_copy1(yc + (size_t)i * es, bc, es);
            cconv_act_rows(d, f->isa, yc, 1, on * OW, 0);
        }
        return CCONV_OK;
    }
    /* the 1x1 reads the band's rows of x in place, the depthwise writes the band's rows of y */
    const char *xb = (const char *)x + (size_t)(n * f->Ci * f->H * W + (o0 * f->sh - f->ph + v->pt) * W) * es;
    const cconv_exec e1 = {.x = xb, .y = mid, .shuffle_groups = 1, .x_cstride = f->H * W};
    const cconv_exec e2 = {.x = mid, .y = yb, .shuffle_groups = 1, .y_cstride = OH * OW};
    cconv_status st = v->pw->impl->execute(v->pw, &e1);
    if (st == CCONV_OK) st = v->dw->impl->execute(v->dw, &e2);
    return st;
}

/* Jobs on all threads, each serial inside (outer), or one job at a time, each step parallel. */
static cconv_status run_bands(const flat_bands *f, const cconv_conv_desc *d, const void *bias, const void *x,
                              void *y, int outer)
{
    const size_t midn = (size_t)(f->C * f->maxrows * f->W + 1) * cconv_dtype_size(d->dtype);
    const int64_t njobs = f->N * f->nb;
    int failed = 0;
    if (!outer) {
        void *mid = cconv_alloc(midn);
        failed = !mid;
        for (int64_t job = 0; job < njobs && !failed; job++)
            failed = run_job(f, d, bias, x, y, job, mid) != CCONV_OK;
        cconv_free(mid);
        return failed ? CCONV_ERR_NOMEM : CCONV_OK;
    }
    const int nt = cconv_threads();
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        const int serial = cconv_set_serial(1);
        void *mid = cconv_alloc(midn);
        if (!mid) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic)
        for (int64_t job = 0; job < njobs; job++) {
            if (!failed && run_job(f, d, bias, x, y, job, mid) != CCONV_OK) {
#pragma omp atomic write
                failed = 1;
            }
        }
        cconv_free(mid);
        cconv_set_serial(serial);
    }
    return failed ? CCONV_ERR_NOMEM : CCONV_OK;
}

cconv_status cconv_flattened_conv2d(const cconv_conv_desc *desc, const void *dw_weight, const void *bias,
                                    int64_t Ci, const void *cw, const void *x, void *y)
{
    if (!desc || !dw_weight || !cw || !x || !y || Ci < 1) return CCONV_ERR_INVALID;
    cconv_conv_desc d = *desc;
    cconv_status st = cconv_conv_output_size(&d);
    if (st != CCONV_OK) return st;
    cconv_desc_clamp_strides(&d);
    const int64_t C = d.in_channels;
    if (d.groups != C || d.out_channels != C || d.transposed || d.channels_last || !cconv_one_plane(&d) ||
        d.padding_mode != CCONV_PAD_ZEROS)
        return CCONV_ERR_UNSUPPORTED;
    if (d.batch == 0) return CCONV_OK;
    const int64_t N = d.batch, H = d.in_size[1], W = d.in_size[2], OH = d.out_size[1], OW = d.out_size[2];
    const int64_t sh = d.stride[1], ph = d.pad_before[1], span = (d.kernel[1] - 1) * d.dilation[1] + 1;
    const int64_t es = (int64_t)cconv_dtype_size(d.dtype);
    int64_t t;
    /* the band sizes below, x (N, Ci, H, W) and cw (C, Ci) must be addressable */
    if (!cconv_add(Ci, C, &t) || !cconv_mul(t, W, &t) || !cconv_mul(t, span + sh * OH, &t) || !cconv_mul(C, OH * OW, &t) ||
        !cconv_mul(N, Ci, &t) || !cconv_mul(t, H * W, &t) || !cconv_mul(t, es, &t) || !cconv_mul(C, Ci, &t) ||
        !cconv_mul(t, es, &t))
        return CCONV_ERR_OVERFLOW;
    /* Output rows per band: the input rows and the 1x1's output rows within FLAT_BAND_BYTES.
     * Jobs run on all threads (each serial inside) when there are >= 4 a thread, bands made
     * smaller for it only while the halo the 1x1 recomputes stays <= 1/4 of a band; else one
     * whole image at a time, each step on all threads (small steps were slower,
     * docs/perf-notes.md). */
    int64_t OB = 1;
    while (OB < OH && (OB * sh + span) * (Ci + C) * W * es <= FLAT_BAND_BYTES) OB++;
    const int64_t want = 4 * (int64_t)cconv_threads(), halo = span > sh ? span - sh : 0;
    int64_t ob = OB;
    while (N * ((OH + ob - 1) / ob) < want && (ob + 1) / 2 * sh >= 4 * halo && ob > 1) ob = (ob + 1) / 2;
    int outer = N * ((OH + ob - 1) / ob) >= want;
    OB = outer ? ob : OH;
    /* Whole images per job when they are about as small as a band and there are >= 2 a thread:
     * the 1x1 then recomputes no halo rows (docs/perf-notes.md). */
    if (N >= 2 * (int64_t)cconv_threads() && H * (Ci + C) * W * es <= 2 * FLAT_BAND_BYTES) {
        OB = OH;
        outer = 1;
    }
    const int64_t nb = (OH + OB - 1) / OB;
    flat_variant *var = cconv_alloc_zeroed((size_t)nb * sizeof *var);
    int *band_var = cconv_alloc((size_t)nb * sizeof *band_var);
    int nvar = 0;
    if (!var || !band_var) { st = CCONV_ERR_NOMEM; goto done; }
    int64_t maxrows = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t o0 = b * OB, o1 = o0 + OB < OH ? o0 + OB : OH;
        const int64_t i0u = o0 * sh - ph, i1u = (o1 - 1) * sh - ph + span;
        const int64_t i0 = i0u < 0 ? 0 : i0u > H ? H : i0u, i1 = i1u > H ? H : i1u < i0 ? i0 : i1u;
        flat_variant v = {i1 - i0, i0 - i0u, i1u - i1, NULL, NULL};
        int k = 0;
        while (k < nvar && !(var[k].rows == v.rows && var[k].pt == v.pt && var[k].pb == v.pb)) k++;
        band_var[b] = k;
        if (k < nvar) continue;
        var[nvar++] = v;
        if (v.rows == 0) continue; /* the band reads padding only: bias */
        maxrows = v.rows > maxrows ? v.rows : maxrows;
        cconv_conv_desc pd = d, dd = d;
        pd.batch = dd.batch = 1;
        pd.in_channels = Ci; pd.groups = 1; pd.in_size[1] = v.rows; pd.algorithm = CCONV_ALGO_GEMM;
        pd.activation = CCONV_ACT_NONE; /* the activation is the depthwise step's */
        for (int a = 0; a < 3; a++) {
            pd.kernel[a] = pd.stride[a] = pd.dilation[a] = 1;
            pd.pad_before[a] = pd.pad_after[a] = 0;
        }
        dd.in_size[1] = v.rows; dd.pad_before[1] = v.pt; dd.pad_after[1] = v.pb;
        if ((st = cconv_plan_create(&pd, cw, NULL, &var[k].pw)) != CCONV_OK) goto done;
        if (var[k].pw->impl != &cconv_impl_pointwise_cf) { st = CCONV_ERR_UNSUPPORTED; goto done; }
        if ((st = cconv_plan_create(&dd, dw_weight, bias, &var[k].dw)) != CCONV_OK) goto done;
        if (var[k].dw->impl != &cconv_impl_depthwise) { st = CCONV_ERR_UNSUPPORTED; goto done; }
    }
    const flat_bands fb = {var, band_var, nb, OB, N, C, Ci, H, W, OH, OW, sh, ph, maxrows, cconv_active_isa()};
    {
        /* cconv_plan_run's rule, on the 1x1's and the depthwise step's multiply-adds */
        const double macs = (double)N * OH * OW * C * (double)(Ci + d.kernel[1] * d.kernel[2]);
        const int serial = cconv_set_serial(cconv_small_macs(macs));
        st = run_bands(&fb, &d, bias, x, y, outer);
        cconv_set_serial(serial);
    }
done:
    for (int k = 0; k < nvar; k++) {
        cconv_plan_destroy(var[k].pw);
        cconv_plan_destroy(var[k].dw);
    }
    cconv_free(var);
    cconv_free(band_var);
    return st;
}
