/* Passes: a convolution as stride phases (conv/passes.h). */
#include <limits.h>
#include "conv/passes.h"

typedef struct {
    int64_t o0, os, q, is;
    int64_t ntaps;
    int64_t *pos, *k; /* padded offset and kernel index of each tap */
} dim_phase;

/* Fills phases[a] for one dimension; returns the number of non-empty phases, -1 on no memory. */
static int dim_phases(const cconv_conv_desc *d, int a, dim_phase **out, int64_t *padlo, int64_t *padded)
{
    const int64_t I = d->in_size[a], K = d->kernel[a], S = d->stride[a], Dl = d->dilation[a];
    const int64_t pb = d->pad_before[a], O = d->out_size[a];
    /* At most one phase per stride residue and per output: a stride of 2**62 has a few phases. */
    const int64_t nph = d->transposed ? min64(S, O) : 1;
    if (nph > INT_MAX) return -1; /* more phases than passes can ever be allocated */
    dim_phase *ph = cconv_alloc_zeroed((size_t)nph * sizeof *ph);
    if (!ph) return -1;
    int count = 0;
    if (!d->transposed) {
        ph[0] = (dim_phase){0, 1, O, S, K, cconv_alloc((size_t)K * 8), cconv_alloc((size_t)K * 8)};
        if (!ph[0].pos || !ph[0].k) { cconv_free(ph[0].pos); cconv_free(ph[0].k); cconv_free(ph); return -1; }
        for (int64_t k = 0; k < K; k++) { ph[0].pos[k] = k * Dl; ph[0].k[k] = k; }
        *padlo = pb;
        *padded = I + pb + d->pad_after[a];
        *out = ph;
        return 1;
    }
    /* Output o receives x[i] * w[k] where o = i*S - pb + k*Dl. With o + pb = q*S + r (phase r),
     * the taps are the k with k*Dl = r (mod S), and i = q - m_k, m_k = (k*Dl - r) / S. */
    int64_t lo = 0, hi = 0;
    /* The residues r = (o + pb) mod S of the outputs o, in increasing order: all of them when
     * S <= O, else O consecutive ones from pb mod S, wrapping past S at most once. */
    const int64_t r0 = S <= O ? 0 : pb % S, first = S <= O || r0 <= S - O ? 0 : S - r0;
    for (int64_t j = 0; j < nph; j++) {
        const int64_t i = (first + j) % nph, r = i < S - r0 ? r0 + i : i - (S - r0);
        const int64_t qmin = ceil_div(pb - r, S), qmax = floor_div(O - 1 + pb - r, S);
        if (qmin > qmax) continue;
        dim_phase *p = &ph[count++];
        p->o0 = qmin * S + r - pb;
        p->os = S;
        p->q = qmax - qmin + 1;
        p->is = 1;
        p->pos = cconv_alloc((size_t)K * 8);
        p->k = cconv_alloc((size_t)K * 8);
        if (!p->pos || !p->k) goto nomem; /* count already includes this phase */
        p->ntaps = 0;
        for (int64_t k = 0; k < K; k++) {
            const int64_t t = k * Dl - r;
            if (((t % S) + S) % S) continue;
            const int64_t m = floor_div(t, S);
            p->k[p->ntaps] = k;
            p->pos[p->ntaps++] = qmin - m; /* + padlo below */
            if (m - qmin > lo) lo = m - qmin;
            if (qmax - m - (I - 1) > hi) hi = qmax - m - (I - 1);
        }
    }
    for (int c = 0; c < count; c++)
        for (int64_t t = 0; t < ph[c].ntaps; t++) ph[c].pos[t] += lo;
    *padlo = lo;
    *padded = I + lo + hi;
    *out = ph;
    return count;
nomem:
    for (int c = 0; c < count; c++) { cconv_free(ph[c].pos); cconv_free(ph[c].k); }
    cconv_free(ph);
    return -1;
}

static void free_phases(dim_phase *ph[3], const int nph[3])
{
    for (int a = 0; a < 3; a++) {
        if (!ph[a]) continue;
        for (int i = 0; i < nph[a]; i++) { cconv_free(ph[a][i].pos); cconv_free(ph[a][i].k); }
        cconv_free(ph[a]);
        ph[a] = NULL;
    }
}


cconv_status cconv_passes_make(const cconv_conv_desc *d, int64_t C, int64_t wmerge, cconv_padding *pad,
                               pass_t **passes, int *npasses)
{
    dim_phase *ph[3] = {NULL, NULL, NULL};
    int nph[3] = {0, 0, 0};
    cconv_status st = CCONV_ERR_NOMEM;
    pass_t *out = NULL;
    int nout = 0;
    *passes = NULL;
    *npasses = 0;
    for (int a = 0; a < 3; a++) {
        nph[a] = dim_phases(d, a, &ph[a], &pad->lo[a], &pad->size[a]);
        if (nph[a] < 0) { nph[a] = 0; goto fail; }
    }
    const int64_t Hp = pad->size[1], Wp = pad->size[2];
    int64_t span; /* every tap offset below is less than this: checked before they are made */
    if (!cconv_mul(pad->size[0], Hp, &span) || !cconv_mul(span, Wp, &span) || !cconv_mul(span, C, &span)) {
        st = CCONV_ERR_OVERFLOW;
        goto fail;
    }
    /* Each pass owns an output at least: a count past INT_MAX could never be allocated. */
    const int64_t np = (int64_t)nph[0] * nph[1] * nph[2];
    if (np > INT_MAX) goto fail;
    out = cconv_alloc_zeroed(((size_t)np + 1) * sizeof *out);
    if (!out) goto fail;
    nout = (int)np;
    int pi = 0;
    for (int i0 = 0; i0 < nph[0]; i0++)
        for (int i1 = 0; i1 < nph[1]; i1++)
            for (int i2 = 0; i2 < nph[2]; i2++, pi++) {
                pass_t *ps = &out[pi];
                const dim_phase *f[3] = {&ph[0][i0], &ph[1][i1], &ph[2][i2]};
                const int64_t nw = wmerge > 1 ? 1 : f[2]->ntaps; /* folded: kw = 0 only */
                const int64_t nt = f[0]->ntaps * f[1]->ntaps * nw;
                for (int a = 0; a < 3; a++) {
                    ps->o0[a] = f[a]->o0; ps->os[a] = f[a]->os; ps->q[a] = f[a]->q; ps->is[a] = f[a]->is;
                }
                ps->ntaps = (int)nt;
                ps->taps = cconv_alloc((size_t)(nt + 1) * sizeof(ptrdiff_t));
                ps->tap_k = cconv_alloc((size_t)(nt + 1) * sizeof(int64_t));
                if (!ps->taps || !ps->tap_k) goto fail;
                int64_t t = 0;
                for (int64_t a = 0; a < f[0]->ntaps; a++)
                    for (int64_t b = 0; b < f[1]->ntaps; b++)
                        for (int64_t c = 0; c < nw; c++, t++) {
                            ps->taps[t] = (ptrdiff_t)(((f[0]->pos[a] * Hp + f[1]->pos[b]) * Wp + f[2]->pos[c]) * C);
                            ps->tap_k[t] = (f[0]->k[a] * d->kernel[1] + f[1]->k[b]) * d->kernel[2] + f[2]->k[c];
                        }
            }
    free_phases(ph, nph);
    *passes = out;
    *npasses = nout;
    return CCONV_OK;
fail:
    free_phases(ph, nph);
    cconv_passes_free(out, nout);
    return st;
}

void cconv_passes_free(pass_t *passes, int npasses)
{
    for (int i = 0; passes && i < npasses; i++) {
        cconv_free(passes[i].taps);
        cconv_free(passes[i].tap_k);
        cconv_free(passes[i].wpack);
    }
    cconv_free(passes);
}
