/* Reference kernels: plain loops over the definition, gather form (each output sums its own
 * terms in a fixed order), any layout, padding mode and transposition. The always-built fallback,
 * the CCONV_ALGO_REFERENCE choice and an oracle for the fast paths. */
#include "internal.h"
#include "padmap.h"

#define REF_BODY(T)                                                                                \
    const T *x = (const T *)xv, *w = (const T *)wv, *b = (const T *)bv;                            \
    T *y = (T *)yv;                                                                                \
    const int64_t N = d->batch, Ci = d->in_channels, Co = d->out_channels, G = d->groups;          \
    const int64_t Cig = Ci / G, Cog = Co / G;                                                      \
    const int64_t *I = d->in_size, *K = d->kernel, *S = d->stride, *Dl = d->dilation;              \
    const int64_t *P = d->pad_before, *O = d->out_size;                                            \
    const int64_t isp = I[0] * I[1] * I[2], osp = O[0] * O[1] * O[2], ksz = K[0] * K[1] * K[2];    \
    _Pragma("omp parallel for schedule(static) num_threads(nt)")                                   \
    for (int64_t job = 0; job < N * Co; job++) {                                                   \
        const int64_t n = job / Co, co = job % Co, g = co / Cog, col = co % Cog;                    \
        for (int64_t o = 0; o < osp; o++) {                                                        \
            const int64_t oz = o / (O[1] * O[2]), oy = (o / O[2]) % O[1], ox = o % O[2];            \
            const int64_t oc[3] = {oz, oy, ox};                                                    \
            T acc = 0;                                                                             \
            for (int64_t cil = 0; cil < Cig; cil++) {                                              \
                const int64_t ci = g * Cig + cil;                                                  \
                for (int64_t kk = 0; kk < ksz; kk++) {                                             \
                    const int64_t kc[3] = {kk / (K[1] * K[2]), (kk / K[2]) % K[1], kk % K[2]};      \
                    int64_t src[3];                                                                \
                    int ok = 1, zero = 0;                                                          \
                    for (int a = 0; a < 3 && ok; a++) {                                            \
                        if (!d->transposed) {                                                      \
                            src[a] = cconv_pad_source(oc[a] * S[a] - P[a] + kc[a] * Dl[a], I[a],    \
                                                      d->padding_mode);                            \
                            zero |= src[a] < 0;                                                    \
                        } else {                                                                   \
                            int64_t t = oc[a] + P[a] - kc[a] * Dl[a];                              \
                            ok = t >= 0 && t % S[a] == 0 && t / S[a] < I[a];                       \
                            src[a] = ok ? t / S[a] : 0;                                            \
                        }                                                                          \
                    }                                                                              \
                    if (!ok) continue;                                                             \
                    const int64_t sp = zero ? 0 : (src[0] * I[1] + src[1]) * I[2] + src[2];        \
                    /* a zero-padding tap still multiplies (0 * Inf = NaN, as the definition) */  \
                    const T xval = zero ? (T)0                                                     \
                                 : d->channels_last ? x[(n * isp + sp) * Ci + ci]                  \
                                                    : x[(n * Ci + ci) * isp + sp];                 \
                    const T wval = d->transposed ? w[(ci * Cog + col) * ksz + kk]                  \
                                                 : w[(co * Cig + cil) * ksz + kk];                 \
                    acc += xval * wval;                                                            \
                }                                                                                  \
            }                                                                                      \
            if (b) acc += b[co];                                                                   \
            if (d->channels_last) y[(n * osp + o) * Co + co] = acc;                                \
            else y[(n * Co + co) * osp + o] = acc;                                                 \
        }                                                                                          \
    }

cconv_status cconv_reference_conv(const cconv_conv_desc *d, const void *xv, const void *wv,
                                  const void *bv, void *yv)
{
    const int nt = cconv_threads();
    (void)nt;
    if (d->dtype == CCONV_FLOAT64) {
        REF_BODY(double)
    } else {
        REF_BODY(float)
    }
    return CCONV_OK;
}
