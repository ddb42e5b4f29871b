/* Input gradient (cconv_conv_input_grad, see include/cconv.h), on top of the public plan API.
 *
 * Forward d: the gradient of the padded input on a region per dimension (zero padding: the
 * input's own positions; other modes: the whole padded axis, its border then folded back). The
 * depthwise route, and the grouped one for stride 1 and a few channels a group, exist because the
 * transposed GEMM wastes most of its tile there; they need finite filters: 0 * Inf would put NaN
 * where the gradient has no term. The fold adds each padded
 * position's gradient onto its source in a fixed order: dimension by dimension (D, H, W), the
 * border before the input, then the one after; a replicated edge receives the sum of its border
 * as NumPy's add.reduce sums it (pairwise when the dimension is the innermost one of size > 1,
 * else in order), so that this file reproduces the NumPy code it replaced bit for bit.
 *
 * Transposed d: the forward convolution of grad_output, cropped to the input size where
 * output_padding reaches past what the forward convolution produces. */
#include "core/plan.h"

/* grad/input_grad_run.c.in, per element type: dst (outer, n, inner) <- src (outer, b + n + e,
 * inner) folded along the middle axis; x (N, C, X[0..2]) in d's layout <- channel c*m + j of g
 * (N, C*m, O[0..2]) zero-inserted by the stride (position u*s holds g[u]), from position start on;
 * y += x. */
typedef void ig_fold_fn(const void *src, void *dst, int64_t outer, int64_t inner, int64_t n, int64_t b,
                        int64_t e, cconv_padding_mode mode);
typedef void ig_gather_fn(const void *g, void *x, const cconv_conv_desc *d, int64_t m, int64_t j,
                          const int64_t *start, const int64_t *X);
typedef void ig_add_fn(void *y, const void *x, int64_t n);
ig_fold_fn cconv_ig_fold_f32, cconv_ig_fold_f64;
ig_gather_fn cconv_ig_gather_f32, cconv_ig_gather_f64;
ig_add_fn cconv_ig_add_f32, cconv_ig_add_f64;

/* The elements of an (n, c, s[0], s[1], s[2]) array of es-byte elements, in *count: 0 when its
 * bytes do not fit in int64. */
static int count5(int64_t n, int64_t c, const int64_t *s, size_t es, int64_t *count)
{
    int64_t r, bytes;
    if (!cconv_mul(n, c, &r) || !cconv_mul(r, s[0], &r) || !cconv_mul(r, s[1], &r) || !cconv_mul(r, s[2], &r) ||
        !cconv_mul(r, (int64_t)es, &bytes))
        return 0;
    *count = r;
    return 1;
}

/* dst (outer, L[0], L[1], L[2], inner) <- the block of src (outer, T[0], T[1], T[2], inner) that
 * starts at start[0..2]. */
static void crop(const char *src, const int64_t *T, const int64_t *start, char *dst, const int64_t *L,
                 int64_t outer, int64_t inner, size_t es)
{
    const size_t run = (size_t)(L[2] * inner) * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i0 = 0; i0 < L[0]; i0++)
            for (int64_t i1 = 0; i1 < L[1]; i1++) {
                int64_t s = ((o * T[0] + start[0] + i0) * T[1] + start[1] + i1) * T[2] + start[2];
                int64_t t = ((o * L[0] + i0) * L[1] + i1) * L[2];
                memcpy(dst + (size_t)(t * inner) * es, src + (size_t)(s * inner) * es, run);
            }
}

/* Runs the convolution d on x into y, through a plan like any caller of the public API; where the
 * result is larger than L (start: the first position kept), into a scratch array cropped into y. */
static cconv_status conv_cropped(cconv_conv_desc *d, const void *x, const void *w, void *y,
                                 const int64_t *start, const int64_t *L)
{
    cconv_status st = cconv_conv_output_size(d);
    if (st != CCONV_OK) return st;
    int whole = 1;
    for (int a = 0; a < 3; a++) whole &= start[a] == 0 && d->out_size[a] == L[a];
    if (whole) return cconv_conv(d, x, w, NULL, y);
    const size_t es = cconv_dtype_size(d->dtype);
    int64_t n;
    if (!count5(d->batch, d->out_channels, d->out_size, es, &n)) return CCONV_ERR_OVERFLOW;
    void *t = cconv_alloc((size_t)n * es);
    if (!t) return CCONV_ERR_NOMEM;
    st = cconv_conv(d, x, w, NULL, t);
    const int cl = d->channels_last;
    if (st == CCONV_OK)
        crop(t, d->out_size, start, y, L, d->batch * (cl ? 1 : d->out_channels), cl ? d->out_channels : 1, es);
    cconv_free(t);
    return st;
}

/* d's adjoint: transposed flipped, channels exchanged, its input sized as d's output. */
static cconv_conv_desc adjoint(const cconv_conv_desc *d)
{
    cconv_conv_desc t = *d;
    t.transposed = !d->transposed;
    t.in_channels = d->out_channels;
    t.out_channels = d->in_channels;
    for (int a = 0; a < 3; a++) {
        t.in_size[a] = d->out_size[a];
        t.output_padding[a] = 0;
    }
    return t;
}

/* The gradient for the padded input on the region [lo, lo + L) per dimension, as one transposed
 * convolution of g: symmetric padding q (the crop it can do itself), output_padding op (so that
 * its output reaches lo + L), then the crop of what is left. */
static cconv_status region_transposed(const cconv_conv_desc *d, const void *g, const void *w,
                                      const int64_t *lo, const int64_t *L, void *gp)
{
    cconv_conv_desc t = adjoint(d);
    int64_t start[3];
    t.padding_mode = CCONV_PAD_ZEROS;
    for (int a = 0; a < 3; a++) {
        const int64_t s = d->stride[a];
        const int64_t padded = d->in_size[a] + d->pad_before[a] + d->pad_after[a];
        const int64_t r = (padded - d->dilation[a] * (d->kernel[a] - 1) - 1) % s; /* never read */
        const int64_t hi_unused = padded - (lo[a] + L[a]);
        const int64_t q = lo[a] < hi_unused ? lo[a] : hi_unused;
        const int64_t op = r - hi_unused + q;
        t.pad_before[a] = t.pad_after[a] = q;
        t.output_padding[a] = op > 0 ? op : 0;
        start[a] = lo[a] - q;
    }
    return conv_cropped(&t, g, w, gp, start, L);
}


/* One input channel per group (finite filters): the region's gradient is the correlation of g,
 * zero-inserted by the stride, with the flipped filters, by the depthwise forward kernel; one
 * convolution per channel multiplier j, the results added in order of j. */
static cconv_status region_depthwise(const cconv_conv_desc *d, const void *g, const void *w,
                                     const int64_t *lo, const int64_t *L, void *gp)
{
    const int64_t N = d->batch, C = d->in_channels, m = d->out_channels / C;
    const int64_t K = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t es = cconv_dtype_size(d->dtype);
    const int f64 = d->dtype == CCONV_FLOAT64;
    cconv_conv_desc dd = *d;
    int64_t start[3], X[3], ngp, nx;
    int empty = 0, direct = m == 1;
    dd.in_channels = dd.out_channels = dd.groups = C;
    dd.padding_mode = CCONV_PAD_ZEROS;
    for (int a = 0; a < 3; a++) {
        /* input position v of the correlation reads the zero-inserted g at v - before */
        const int64_t U = d->stride[a] * (d->out_size[a] - 1) + 1;
        const int64_t before = d->dilation[a] * (d->kernel[a] - 1) - lo[a];
        const int64_t after = L[a] + lo[a] - U;
        start[a] = before < 0 ? -before : 0;
        X[a] = U - (after < 0 ? -after : 0) - start[a];
        empty |= X[a] <= 0;
        direct &= d->stride[a] == 1 && start[a] == 0 && X[a] == U;
        dd.in_size[a] = X[a];
        dd.stride[a] = 1;
        dd.output_padding[a] = 0;
        dd.pad_before[a] = before > 0 ? before : 0;
        dd.pad_after[a] = after > 0 ? after : 0;
    }
    if (!count5(N, C, L, es, &ngp)) return CCONV_ERR_OVERFLOW;
    if (empty) {
        memset(gp, 0, (size_t)ngp * es);
        return CCONV_OK;
    }
    if (!count5(N, C, X, es, &nx)) return CCONV_ERR_OVERFLOW;
    cconv_status st = cconv_conv_output_size(&dd);
    if (st != CCONV_OK) return st;
    for (int a = 0; a < 3; a++)
        if (dd.out_size[a] != L[a]) return CCONV_ERR_INVALID; /* never: the padding above reaches L */
    char *wj = cconv_alloc((size_t)(C * K) * es);
    void *x = direct ? NULL : cconv_alloc((size_t)nx * es);
    void *sum = m > 1 ? cconv_alloc((size_t)ngp * es) : NULL;
    if (!wj || (!direct && !x) || (m > 1 && !sum)) st = CCONV_ERR_NOMEM;
    for (int64_t j = 0; j < m && st == CCONV_OK; j++) {
        /* filter c of step j: filter c*m + j, flipped in every dimension (its taps reversed) */
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < K; t++)
                cconv_copy1(wj + (size_t)(c * K + t) * es, (const char *)w + (size_t)((c * m + j) * K + K - 1 - t) * es, es);
        if (!direct) (f64 ? cconv_ig_gather_f64 : cconv_ig_gather_f32)(g, x, d, m, j, start, X);
        st = cconv_conv(&dd, direct ? g : x, wj, NULL, j ? sum : gp);
        if (st == CCONV_OK && j) (f64 ? cconv_ig_add_f64 : cconv_ig_add_f32)(gp, sum, ngp);
    }
    cconv_free(sum);
    cconv_free(x);
    cconv_free(wj);
    return st;
}

/* Whether region_grouped takes d's region [lo, lo + L): stride 1, a few channels a group both
 * ways (the grouped forward kernels' range; the transposed GEMM would waste most of its tile on
 * them: 8x 128->128 g32 3x3 at 56x56 took 114 ms that way, 51 ms this one, docs/perf-notes.md),
 * and no padding past the kernel's span (g would need cropping). */
static int region_grouped_fits(const cconv_conv_desc *d, const int64_t *lo, const int64_t *L)
{
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    if (d->groups < 2 || cig < 2 || cig > 8 || cog < 2 || cog > 8) return 0;
    for (int a = 0; a < 3; a++) {
        const int64_t span = d->dilation[a] * (d->kernel[a] - 1);
        if (d->stride[a] != 1 || lo[a] > span || L[a] + lo[a] - d->out_size[a] < 0) return 0;
    }
    return 1;
}

/* Narrow groups, stride 1 (finite filters, region_grouped_fits): the region's gradient is the
 * correlation of g with each group's filters flipped and their channels exchanged, a forward
 * grouped convolution. */
static cconv_status region_grouped(const cconv_conv_desc *d, const void *g, const void *w, const int64_t *lo,
                                   const int64_t *L, void *gp)
{
    const int64_t G = d->groups, cig = d->in_channels / G, cog = d->out_channels / G;
    const int64_t K = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t es = cconv_dtype_size(d->dtype);
    cconv_conv_desc dd = *d;
    dd.in_channels = d->out_channels;
    dd.out_channels = d->in_channels;
    dd.padding_mode = CCONV_PAD_ZEROS;
    for (int a = 0; a < 3; a++) {
        /* output position v reads g at v + tap*dilation - before */
        dd.in_size[a] = d->out_size[a];
        dd.pad_before[a] = d->dilation[a] * (d->kernel[a] - 1) - lo[a];
        dd.pad_after[a] = L[a] + lo[a] - d->out_size[a];
        dd.output_padding[a] = 0;
    }
    cconv_status st = cconv_conv_output_size(&dd);
    if (st != CCONV_OK) return st;
    for (int a = 0; a < 3; a++)
        if (dd.out_size[a] != L[a]) return CCONV_ERR_INVALID; /* never: the padding above reaches L */
    char *wf = cconv_alloc((size_t)(d->in_channels * cog * K) * es);
    if (!wf) return CCONV_ERR_NOMEM;
    /* filter (group q, input channel i) of the exchange, from its output channel o: w's filter
     * (q, o), at input channel i, taps reversed */
    for (int64_t q = 0; q < G; q++)
        for (int64_t i = 0; i < cig; i++)
            for (int64_t o = 0; o < cog; o++)
                for (int64_t t = 0; t < K; t++)
                    cconv_copy1(wf + (size_t)(((q * cig + i) * cog + o) * K + t) * es,
                                (const char *)w + (size_t)(((q * cog + o) * cig + i) * K + K - 1 - t) * es, es);
    st = cconv_conv(&dd, g, wf, NULL, gp);
    cconv_free(wf);
    return st;
}

/* grad_input <- the region gradient gp (N, C, L[0..2]) folded, dimension by dimension, onto the
 * positions its padding copied. */
static cconv_status fold_all(const cconv_conv_desc *d, void *gp, const int64_t *L, void *grad_input)
{
    const size_t es = cconv_dtype_size(d->dtype);
    int64_t S[3] = {L[0], L[1], L[2]}, n;
    int nfold = 0, done = 0;
    for (int a = 0; a < 3; a++) nfold += d->pad_before[a] || d->pad_after[a];
    void *other = NULL, *src = gp;
    if (nfold > 1) { /* a second buffer for the folds in between: each fold only shrinks the array */
        if (!count5(d->batch, d->in_channels, S, es, &n)) return CCONV_ERR_OVERFLOW;
        if (!(other = cconv_alloc((size_t)n * es))) return CCONV_ERR_NOMEM;
    }
    for (int a = 0; a < 3; a++) {
        const int64_t b = d->pad_before[a], e = d->pad_after[a];
        if (!b && !e) continue;
        void *dst = ++done == nfold ? grad_input : src == gp ? other : gp;
        int64_t outer = d->batch, inner = 1;
        for (int i = 0; i < a; i++) outer *= S[i];
        for (int i = a + 1; i < 3; i++) inner *= S[i];
        if (d->channels_last)
            inner *= d->in_channels;
        else
            outer *= d->in_channels;
        (d->dtype == CCONV_FLOAT64 ? cconv_ig_fold_f64 : cconv_ig_fold_f32)(src, dst, outer, inner, d->in_size[a],
                                                                            b, e, d->padding_mode);
        S[a] = d->in_size[a];
        src = dst;
    }
    cconv_free(other);
    return CCONV_OK;
}

cconv_status cconv_conv_input_grad(const cconv_conv_desc *desc, const void *grad_output, const void *weight,
                                   void *grad_input)
{
    if (!desc || !grad_output || !weight || !grad_input) return CCONV_ERR_INVALID;
    cconv_conv_desc d = *desc;
    d.activation = CCONV_ACT_NONE; /* the gradient of the convolution alone */
    cconv_status st = cconv_conv_output_size(&d);
    if (st != CCONV_OK) return st;
    const size_t es = cconv_dtype_size(d.dtype);
    int64_t nx, ny, nw;
    if (!count5(d.batch, d.in_channels, d.in_size, es, &nx) || !count5(d.batch, d.out_channels, d.out_size, es, &ny) ||
        !count5(d.transposed ? d.in_channels : d.out_channels,
                (d.transposed ? d.out_channels : d.in_channels) / d.groups, d.kernel, es, &nw))
        return CCONV_ERR_OVERFLOW;
    /* the gradient's own convolutions choose their algorithms: the forward's does not carry over */
    if (d.algorithm != CCONV_ALGO_EXACT && d.algorithm != CCONV_ALGO_REFERENCE) d.algorithm = CCONV_ALGO_AUTO;
    if (d.batch == 0) return CCONV_OK;

    if (d.transposed) { /* the forward convolution of grad_output, cropped to the input size */
        cconv_conv_desc f = adjoint(&d);
        const int64_t start[3] = {0, 0, 0};
        return conv_cropped(&f, grad_output, weight, grad_input, start, d.in_size);
    }

    /* per dimension, the padded positions [lo, lo + L) whose gradient is needed: the input's own
     * (zero padding), or the whole padded axis, to be folded */
    const int fold = d.padding_mode != CCONV_PAD_ZEROS &&
                     (d.pad_before[0] || d.pad_after[0] || d.pad_before[1] || d.pad_after[1] ||
                      d.pad_before[2] || d.pad_after[2]);
    int64_t lo[3], L[3], ngp;
    for (int a = 0; a < 3; a++) {
        lo[a] = fold ? 0 : d.pad_before[a];
        L[a] = d.in_size[a] + (fold ? d.pad_before[a] + d.pad_after[a] : 0);
    }
    if (!count5(d.batch, d.in_channels, L, es, &ngp)) return CCONV_ERR_OVERFLOW;
    void *gp = fold ? cconv_alloc((size_t)ngp * es) : grad_input;
    if (!gp) return CCONV_ERR_NOMEM;
    const int finite = cconv_all_finite(weight, nw, d.dtype);
    if (d.in_channels == d.groups && finite)
        st = region_depthwise(&d, grad_output, weight, lo, L, gp);
    else if (finite && region_grouped_fits(&d, lo, L))
        st = region_grouped(&d, grad_output, weight, lo, L, gp);
    else
        st = region_transposed(&d, grad_output, weight, lo, L, gp);
    if (st == CCONV_OK && fold) st = fold_all(&d, gp, L, grad_input);
    if (fold) cconv_free(gp);
    return st;
}
