/* Plans: validate a descriptor, choose an algorithm, pack weights, then execute.
 *
 * Every algorithm reads a padded copy of the input (all padding modes are materialised there, so
 * kernels never test borders); the GEMM family copies only the band of input each job reads, into
 * a per-thread buffer (see gemm_band), or reads x in place where no copy is needed. The GEMM family runs "passes": a forward convolution is one pass;
 * a transposed convolution is split into stride phases (sub-pixel convolution), each a stride-1
 * convolution over the input with the subset of taps that lands on that phase, so no zeros are
 * inserted and no col2im scatter is needed. A pass computes outputs o = o0 + q*os for q < Q and
 * reads padded input at q*is + tap offset, per dimension. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "padmap.h"

typedef struct {
    int64_t o0[3], os[3], q[3], is[3];
    int ntaps;
    ptrdiff_t *taps;  /* element offsets into the padded buffer */
    int64_t *tap_k;   /* linear kernel index (kd*KH + kh)*KW + kw of each tap */
    void *wpack;      /* GEMM: [g][cout block][kc block][tap][k][NR]; depthwise: see pack_depthwise */
} pass_t;

struct cconv_plan {
    cconv_conv_desc d;
    cconv_algorithm algo;
    const cconv_isa_table *isa;
    cconv_tile_kernel tile;
    int64_t padlo[3], padded[3];
    int64_t cig, cog, nblk, kc;
    /* GEMM channel blocks. With few output channels per group (cog < NR), one block packs gpb
     * whole groups side by side in the NR columns, with block-diagonal weights over their gpb*cig
     * input channels: the tile then runs a gpb times longer reduction per call instead of one
     * mostly-empty tile per group. kmax: reduction length of a block; nblocks: blocks in all. */
    int64_t gpb, kmax, nblocks;
    /* A packed block multiplies every input channel it holds by the other groups' zero weights,
     * so an Inf or NaN in one group's input would reach the other groups' outputs (0 * Inf =
     * NaN). Calls whose input holds one run a plan made then from weight_copy with one group per
     * block (one_group_blocks), which reads each group's input for that group only. */
    int one_group_blocks;
    /* With few input channels (a stem: 3), the KW taps of one kernel row read one contiguous run
     * of KW*C_in values of the channels-last input, so they are folded into the reduction
     * (k = kw*C_in + c) instead of running KW tile loops of C_in steps each. wmerge: KW folded
     * this way, else 1. */
    int64_t wmerge;
    /* When cog % NR fits a narrower tile (mid or narrow), each group's last block runs on it
     * (its weights packed that wide) instead of a partly empty wide tile (C_out 128 on AVX-512:
     * blocks 48, 48 and a 32 on the mid tile; C_out 64: 48 and a 16 on the narrow one). */
    int has_tail;
    cconv_tile_kernel tail;
    /* Pointwise (1x1, stride 1, no padding) channels-first: Y[n] = W X[n] is a plain GEMM on the
     * NCHW arrays, so the tile runs with roles swapped (output channels as its MR rows, pixels as
     * its NR columns): weights are broadcast from weight_copy (C_out x cig, as given), pixel
     * panels are copied row by row (no transpose), and tile rows are contiguous output rows. */
    int pw_cf;
    /* Flattened bands (cconv_flattened_conv2d) run sub-plans on a band of rows in place: x's
     * channel stride for a pw_cf plan, y's for a channels-first depthwise one; 0: the plane size. */
    int64_t pw_xs, dw_ys;
    int npasses;
    pass_t *passes;
    void *bias;
    void *weight_copy; /* reference, Winograd and gpb > 1 GEMM plans: the filters as given */
    /* Winograd (winograd.inc): transformed weights U [36][cout block][C_in][NR]. Calls whose
     * input holds Inf or NaN (the transforms would spread them to neighbouring outputs), or every
     * call when the weights do, run a GEMM plan made then from weight_copy. */
    void *wino_u;
    int fallback_always;
    /* GEMM: every packed weight is finite, so a tap whose rows all lie in the zero padding adds
     * exactly nothing (0 * w, never 0 * Inf) and run_gemm skips it (see tile_taps). */
    int wfinite;
    int64_t weight_bytes, workspace_bytes;
};

static int64_t floor_div(int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/* A forward stride longer than the padded input leaves one output along that dimension, read from
 * the first window whatever the stride. Plans take the smallest stride giving that one output
 * instead: the kernels lay their buffers out by stride phase, and a stride of 2**40 made those
 * 2**40 phases long (a failed allocation) or, with two such strides, overflowed their size (a
 * crash). Called on a validated descriptor (out_size filled); the output size is unchanged. */
static void clamp_strides(cconv_conv_desc *d)
{
    if (d->transposed) return; /* there the stride sets the output size */
    for (int a = 0; a < 3; a++) {
        const int64_t room = d->in_size[a] + d->pad_before[a] + d->pad_after[a] -
                             (d->dilation[a] * (d->kernel[a] - 1) + 1); /* >= 0, no overflow: validated */
        if (d->out_size[a] == 1 && d->stride[a] > room + 1) d->stride[a] = room + 1;
    }
}

/* ---------------------------------------------------------------- validation */

cconv_status cconv_conv_output_size(cconv_conv_desc *d)
{
    if (!d || (d->dtype != CCONV_FLOAT32 && d->dtype != CCONV_FLOAT64)) return CCONV_ERR_INVALID;
    if (d->padding_mode < CCONV_PAD_ZEROS || d->padding_mode > CCONV_PAD_SYMMETRIC) return CCONV_ERR_INVALID;
    if (d->algorithm < CCONV_ALGO_AUTO || d->algorithm > CCONV_ALGO_EXACT) return CCONV_ERR_INVALID;
    if (d->batch < 0 || d->in_channels < 1 || d->out_channels < 1 || d->groups < 1) return CCONV_ERR_INVALID;
    if (d->in_channels % d->groups || d->out_channels % d->groups) return CCONV_ERR_INVALID;
    if (d->transposed && d->padding_mode != CCONV_PAD_ZEROS) return CCONV_ERR_INVALID;
    for (int a = 0; a < 3; a++) {
        const int64_t i = d->in_size[a], k = d->kernel[a], s = d->stride[a], dl = d->dilation[a];
        const int64_t pb = d->pad_before[a], pa = d->pad_after[a], op = d->output_padding[a];
        int64_t span, t;
        if (i < 1 || k < 1 || s < 1 || dl < 1 || pb < 0 || pa < 0 || op < 0) return CCONV_ERR_INVALID;
        if (!cconv_mul(dl, k - 1, &span) || !cconv_add(span, 1, &span)) return CCONV_ERR_OVERFLOW;
        if (!d->transposed) {
            if (op != 0) return CCONV_ERR_INVALID;
            if (d->padding_mode == CCONV_PAD_REFLECT && (pb >= i || pa >= i)) return CCONV_ERR_INVALID;
            if ((d->padding_mode == CCONV_PAD_CIRCULAR || d->padding_mode == CCONV_PAD_SYMMETRIC) &&
                (pb > i || pa > i))
                return CCONV_ERR_INVALID;
            if (!cconv_add(i, pb, &t) || !cconv_add(t, pa, &t)) return CCONV_ERR_OVERFLOW;
            if (t < span) return CCONV_ERR_INVALID;
            d->out_size[a] = (t - span) / s + 1;
        } else {
            if (op >= (s > dl ? s : dl)) return CCONV_ERR_INVALID;
            if (!cconv_mul(i - 1, s, &t) || !cconv_add(t, span, &t) || !cconv_add(t, op, &t))
                return CCONV_ERR_OVERFLOW;
            if (pb >= t || pa >= t - pb) return CCONV_ERR_INVALID; /* (pb + pa may overflow) */
            t -= pb + pa;
            d->out_size[a] = t;
        }
    }
    /* Every tensor's element count must fit in int64 (and its byte count in size_t). */
    int64_t n, ksz, isp, osp;
    const int64_t *I = d->in_size, *O = d->out_size, *K = d->kernel;
    if (!cconv_mul(I[0], I[1], &isp) || !cconv_mul(isp, I[2], &isp)) return CCONV_ERR_OVERFLOW;
    if (!cconv_mul(O[0], O[1], &osp) || !cconv_mul(osp, O[2], &osp)) return CCONV_ERR_OVERFLOW;
    if (!cconv_mul(K[0], K[1], &ksz) || !cconv_mul(ksz, K[2], &ksz)) return CCONV_ERR_OVERFLOW;
    if (!cconv_mul(d->batch, d->in_channels, &n) || !cconv_mul(n, isp, &n) || !cconv_mul(n, 8, &n)) return CCONV_ERR_OVERFLOW;
    if (!cconv_mul(d->batch, d->out_channels, &n) || !cconv_mul(n, osp, &n) || !cconv_mul(n, 8, &n)) return CCONV_ERR_OVERFLOW;
    if (!cconv_mul(d->out_channels, d->in_channels / d->groups, &n) || !cconv_mul(n, ksz, &n) || !cconv_mul(n, 8, &n)) return CCONV_ERR_OVERFLOW;
    if (ksz > (1 << 24)) return CCONV_ERR_INVALID; /* taps are counted in int */
    return CCONV_OK;
}

/* ---------------------------------------------------------------- passes */

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
    const int64_t nph = d->transposed ? S : 1;
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
    for (int64_t r = 0; r < S; r++) {
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

/* The narrowest of the narrow, mid and wide tiles that holds ncol output channels (the wide
 * one when none does). */
static cconv_tile_kernel narrowest_tile(const cconv_isa_table *isa, int dt, int64_t ncol)
{
    if (ncol <= isa->narrow[dt].nr) return isa->narrow[dt];
    if (ncol <= isa->mid[dt].nr) return isa->mid[dt];
    return isa->wide[dt];
}

/* ---------------------------------------------------------------- weight packing */

/* GEMM weights: [g][cout block][kc block][tap][k][NR], columns past cog zero, k = kw*cig + c.
 * Units (g, cout block, kc block) are independent copies, so large filters pack on all threads
 * (a one-shot call pays for the packing). Within a unit, taps run inner: they are adjacent in the
 * source. */
#define PACK_GEMM(T, SFX)                                                                          \
    {                                                                                              \
        const T *w = (const T *)weight;                                                            \
        int ident = !d->transposed && p->wmerge == 1 && ps->ntaps == ksz;                          \
        for (int t = 0; t < ps->ntaps && ident; t++) ident = ps->tap_k[t] == t;                    \
        T *wp = (T *)ps->wpack;                                                                    \
        const int64_t col_stride = d->transposed ? ksz : cig * ksz;                                \
        const int64_t nkb = (p->kmax + p->kc - 1) / p->kc, units = G * p->nblk * nkb;              \
        const int nt = n >= (1 << 16) ? cconv_threads() : 1; /* n: elements packed (caller) */   \
        (void)nt;                                                                                  \
        int bad = 0;                                                                               \
        _Pragma("omp parallel for schedule(static) num_threads(nt) reduction(|:bad)")              \
        for (int64_t u = 0; u < units; u++) {                                                      \
            const int64_t kb = u % nkb, cb = (u / nkb) % p->nblk, g = u / (nkb * p->nblk);         \
            const int64_t ncol = cog - cb * NR < NR ? cog - cb * NR : NR;                          \
            const int64_t k0 = kb * p->kc, kn = p->kmax - k0 < p->kc ? p->kmax - k0 : p->kc;       \
            const int64_t bnr = p->has_tail && cb == p->nblk - 1 ? p->tail.nr : NR;                  \
            T *dst = wp + (g * p->nblk + cb) * p->kmax * ps->ntaps * NR + k0 * ps->ntaps * bnr;    \
            if (ident) {                                                                           \
                /* Forward, every tap in order: row j of this unit's source is one contiguous     \
                 * run of kn*ksz values, (k, t) in order; 4 rows x 4 values at a time through a   \
                 * register transpose (the element loop below, one value per row, made packing a  \
                 * large part of a one-shot batch-1 call; docs/perf-notes.md). */                 \
                const int64_t L = kn * ksz, rs = cig * ksz;                                        \
                int64_t j0 = 0;                                                                    \
                /* 16 rows at a time: each (k, t) then gets 16 contiguous values at once (a 64-byte \
                 * line for float), not 4 at four different times (dearer stores, docs/perf-notes.md) */ \
                for (; j0 + 16 <= ncol; j0 += 16) {                                                \
                    const T *src = w + ((g * cog + cb * NR + j0) * cig + k0) * ksz;                \
                    int64_t e = 0, kk = 0, t = 0;                                                  \
                    T tmp[4][16];                                                                  \
                    for (; e + 4 <= L; e += 4) {                                                   \
                        for (int q = 0; q < 4; q++) cconv_transpose4_##SFX(src + 4 * q * rs + e, rs, tmp[q], 4);\
                        for (int i = 0; i < 4; i++) {                                              \
                            T *o = dst + (t * kn + kk) * bnr + j0;                                 \
                            for (int q = 0; q < 4; q++) memcpy(o + 4 * q, tmp[q] + 4 * i, 4 * sizeof(T));\
                            if (++t == ksz) { t = 0; kk++; }                                       \
                        }                                                                          \
                    }                                                                              \
                    for (; e < L; e++) {                                                           \
                        for (int r = 0; r < 16; r++) dst[(t * kn + kk) * bnr + j0 + r] = src[r * rs + e];\
                        if (++t == ksz) { t = 0; kk++; }                                           \
                    }                                                                              \
                }                                                                                  \
                for (int64_t t = 0; t < ps->ntaps; t++)                                            \
                    for (int64_t k = 0; k < kn; k++) {                                             \
                        T *o = dst + (t * kn + k) * bnr;                                           \
                        const T *s = w + ((g * cog + cb * NR) * cig + k0 + k) * ksz + t;           \
                        for (int64_t j = j0; j < ncol; j++) o[j] = s[j * rs];                      \
                        for (int64_t j = ncol; j < bnr; j++) o[j] = 0;                             \
                    }                                                                              \
            } else                                                                                 \
            for (int64_t k = k0; k < k0 + kn; k++) {                                               \
                const int64_t kw = k / cig, c = k % cig; /* kw > 0: folded taps */                 \
                const T *src = w + kw + (d->transposed ? ((g * cig + c) * cog + cb * NR) * ksz     \
                                                       : ((g * cog + cb * NR) * cig + c) * ksz);   \
                for (int t = 0; t < ps->ntaps; t++) {                                              \
                    const T *s = src + ps->tap_k[t];                                               \
                    T *o = dst + ((int64_t)t * kn + (k - k0)) * bnr;                               \
                    for (int64_t j = 0; j < ncol; j++) o[j] = s[j * col_stride];                   \
                    for (int64_t j = ncol; j < bnr; j++) o[j] = 0;                                 \
                }                                                                                  \
            }                                                                                      \
            /* the unit just written is still in cache: check it here, not the weights again */   \
            bad |= !all_finite(dst, kn * ps->ntaps * bnr, d->dtype);                               \
        }                                                                                          \
        if (bad) p->wfinite = 0;                                                                   \
    }

/* GEMM weights with gpb groups per block: [block][kc block][tap][k][NR]; block b covers groups
 * g0 = b*gpb.., its k runs over their gn*cig input channels and column j is output channel
 * g0*cog + j; the weight is zero unless input and output channel are in the same group. */
#define PACK_GEMM_GROUPS(T)                                                                        \
    {                                                                                              \
        const T *w = (const T *)weight;                                                            \
        T *base = (T *)ps->wpack;                                                                  \
        for (int64_t b = 0; b < p->nblocks; b++) {                                                 \
            const int64_t g0 = b * p->gpb, gn = G - g0 < p->gpb ? G - g0 : p->gpb, K = gn * cig;   \
            T *dst = base + b * ps->ntaps * p->kmax * NR;                                          \
            for (int64_t k0 = 0; k0 < K; k0 += p->kc) {                                            \
                const int64_t kn = K - k0 < p->kc ? K - k0 : p->kc;                                \
                for (int t = 0; t < ps->ntaps; t++)                                                \
                    for (int64_t k = k0; k < k0 + kn; k++)                                         \
                        for (int64_t j = 0; j < NR; j++, dst++) {                                  \
                            const int64_t ci = g0 * cig + k, co = g0 * cog + j;                    \
                            if (j >= gn * cog || ci / cig != co / cog) { *dst = 0; continue; }     \
                            *dst = d->transposed ? w[(ci * cog + co % cog) * ksz + ps->tap_k[t]]   \
                                                 : w[(co * cig + ci % cig) * ksz + ps->tap_k[t]];  \
                        }                                                                          \
            }                                                                                      \
        }                                                                                          \
        if (!all_finite(base, p->nblocks * ps->ntaps * p->kmax * NR, d->dtype)) p->wfinite = 0;   \
    }

/* Depthwise/grouped weights: channels-first [co][ci in group][tap]; channels-last [tap][ci][co]. */
#define PACK_DW(T)                                                                                 \
    {                                                                                              \
        const T *w = (const T *)weight;                                                            \
        T *dst = (T *)ps->wpack;                                                                   \
        for (int64_t co = 0; co < Co; co++)                                                        \
            for (int64_t ci = 0; ci < cig; ci++)                                                   \
                for (int t = 0; t < ps->ntaps; t++) {                                              \
                    const T v = w[(co * cig + ci) * ksz + ps->tap_k[t]];                           \
                    if (d->channels_last) dst[(t * cig + ci) * Co + co] = v;                       \
                    else dst[(co * cig + ci) * ps->ntaps + t] = v;                                 \
                }                                                                                  \
    }

/* ---------------------------------------------------------------- GEMM bands */

/* A GEMM job computes a band of B output rows x WS output columns (one image, one output depth,
 * a range of output-channel blocks). Unless the input can be read in place (channels-last, no
 * padding), the job first builds a padded channels-last copy of just the input its band reads
 * (DS planes x R rows x WB columns x C_in) in a per-thread buffer that stays in L2. That replaces
 * a padded copy of the whole batch (one more pass over memory, and for NCHW a transpose through
 * memory) by a copy into cache, and bounds the workspace to one buffer per thread. Halo rows are
 * copied once per band; bands are sized so the buffer fits GEMM_BAND_BYTES. */
#define GEMM_BAND_BYTES (512 * 1024)
/* Jobs per pass to aim for (images x output planes x bands x channel-block ranges), so that
 * batch-1 layers still split into enough equal jobs for a few threads while large batches keep
 * tall bands (less halo copied). A constant: the blocking depends only on the shape, never on the
 * thread count, so every output is summed in the same order whatever the number of threads. */
#define GEMM_MIN_JOBS 16
#define GEMM_MIN_BAND_PIX 128

typedef struct {
    int64_t B, WS;        /* output rows and columns of a band */
    int64_t DS, R, WB;    /* planes, rows and columns of the band's input buffer */
    int64_t nbh, nbw;     /* bands along H and along W */
    int64_t blocks, rs, nr; /* (group, cout block) pairs, pairs per job, ranges */
    int direct;           /* read x in place: DS, R, WB are the whole input's sizes */
    int shared;           /* read one padded channels-last copy of the whole input, made once
                           * per call: when jobs split the channel blocks (nr > 1) each band
                           * would otherwise be copied nr times. DS, R, WB as for direct. */
} gemm_band;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void gemm_band_geometry(const cconv_plan *p, const pass_t *ps, gemm_band *b)
{
    const cconv_conv_desc *d = &p->d;
    const int64_t Ci = d->in_channels, Hp = p->padded[1], Wp = p->padded[2];
    const int64_t es = (int64_t)cconv_dtype_size(d->dtype);
    /* The input extent the taps read: of every pass, so that stride phases share one band
     * geometry (gemm_passes_share_bands) at the cost of a row or column more per band. */
    int64_t span[3] = {1, 1, 1};
    for (int i = 0; i < p->npasses; i++)
        for (int t = 0; t < p->passes[i].ntaps; t++) {
            const int64_t lin = p->passes[i].taps[t] / Ci;
            span[0] = max64(span[0], lin / (Wp * Hp) + 1);
            span[1] = max64(span[1], (lin / Wp) % Hp + 1);
            span[2] = max64(span[2], lin % Wp + p->wmerge);
        }
    const int64_t Q1 = ps->q[1], Q2 = ps->q[2], MR = p->tile.mr;
    const int64_t pix_bytes = span[0] * Ci * es; /* one buffer column of one row */
    /* Columns: the whole row unless a single row of it overflows the budget. */
    b->WS = Q2;
    if (span[1] * ((Q2 - 1) * ps->is[2] + span[2]) * pix_bytes > GEMM_BAND_BYTES) {
        const int64_t cols = GEMM_BAND_BYTES / (span[1] * pix_bytes);
        b->WS = max64(MR, ((cols - span[2]) / ps->is[2] + 1) / MR * MR);
        b->WS = min64(b->WS, Q2);
    }
    b->WB = (b->WS - 1) * ps->is[2] + span[2];
    /* Rows: as many as fit the budget, but enough jobs; and tall enough that the halo rows
     * (span - stride, copied by two bands) cost at most about half a copy more. */
    const int64_t row_bytes = b->WB * pix_bytes, planes = max64(1, d->batch * ps->q[0]); /* batch may be 0 */
    const int64_t bands_wanted = (GEMM_MIN_JOBS + planes - 1) / planes;
    int64_t cap = (Q1 + bands_wanted - 1) / bands_wanted;
    /* But bands of >= GEMM_MIN_BAND_PIX outputs where channel blocks can be split instead: a job
     * streams its blocks' weights through the cache once per band, and one-row bands of a 14x14
     * image (batch 1) used each weight for 14 outputs only (L3-bound, slower: docs/perf-notes.md). */
    if (p->nblocks > 1 && cap * b->WS < GEMM_MIN_BAND_PIX) {
        cap = min64(Q1, (GEMM_MIN_BAND_PIX + b->WS - 1) / b->WS);
        cap = (Q1 + (Q1 + cap - 1) / cap - 1) / ((Q1 + cap - 1) / cap); /* even bands */
    }
    const int64_t fit = (GEMM_BAND_BYTES / row_bytes - span[1]) / ps->is[1] + 1;
    const int64_t tall = 2 * (span[1] - ps->is[1]);
    int64_t B = max64(min64(fit, cap), min64(tall, cap));
    b->B = max64(1, min64(B, Q1));
    b->R = (b->B - 1) * ps->is[1] + span[1];
    b->DS = span[0];
    b->nbh = (Q1 + b->B - 1) / b->B;
    b->nbw = (Q2 + b->WS - 1) / b->WS;
    /* Split the channel blocks too when there are few bands (batch 1, small images). */
    b->blocks = p->nblocks;
    const int64_t want = (GEMM_MIN_JOBS + planes * b->nbh * b->nbw - 1) / (planes * b->nbh * b->nbw);
    const int64_t nr = min64(b->blocks, max64(1, want));
    b->rs = (b->blocks + nr - 1) / nr;
    b->nr = (b->blocks + b->rs - 1) / b->rs;
    b->direct = 0;
    if (d->channels_last) {
        b->direct = 1;
        for (int a = 0; a < 3; a++)
            if (p->padlo[a] != 0 || p->padded[a] != d->in_size[a]) b->direct = 0;
    }
    b->shared = !b->direct && b->nr > 1;
    if (b->direct || b->shared) { b->DS = p->padded[0]; b->R = Hp; b->WB = Wp; }
}

/* Whether all passes (stride phases) of a GEMM plan have the same band geometry, output grid and
 * input steps, so that run_gemm runs them together, job by job, on one band fill each. */
#define GEMM_FUSE_MAX_PASSES 64
static int gemm_passes_share_bands(const cconv_plan *p)
{
    if (p->npasses < 2 || p->npasses > GEMM_FUSE_MAX_PASSES) return 0;
    gemm_band b0, bi;
    memset(&b0, 0, sizeof b0);
    gemm_band_geometry(p, &p->passes[0], &b0);
    for (int i = 1; i < p->npasses; i++) {
        memset(&bi, 0, sizeof bi);
        gemm_band_geometry(p, &p->passes[i], &bi);
        if (memcmp(&b0, &bi, sizeof b0)) return 0;
        for (int a = 0; a < 3; a++)
            if (p->passes[i].q[a] != p->passes[0].q[a] || p->passes[i].is[a] != p->passes[0].is[a]) return 0;
    }
    return 1;
}

/* The GEMM's channel blocking for main tile t: blocks of t.nr output channels per group (or gpb
 * small groups per block), each group's last block on the narrowest tile that holds it. */
static void set_gemm_tile(cconv_plan *p, cconv_tile_kernel t)
{
    const int dt = p->d.dtype == CCONV_FLOAT64;
    const int64_t G = p->d.groups, cog = p->cog;
    p->tile = t;
    p->nblk = (cog + t.nr - 1) / t.nr;
    p->gpb = G > 1 && cog < t.nr && !p->one_group_blocks ? min64(t.nr / cog, G) : 1;
    p->kmax = p->gpb * p->cig * p->wmerge;
    p->has_tail = 0;
    if (p->gpb == 1 && cog % t.nr != 0) {
        p->tail = narrowest_tile(p->isa, dt, cog % t.nr);
        p->has_tail = p->tail.nr < t.nr;
    }
    p->nblocks = p->gpb > 1 ? (G + p->gpb - 1) / p->gpb : G * p->nblk;
}

/* Register-tile slots (pixels x channels, computed or wasted) a plan runs, over its speed:
 * every job runs ceil(npix / MR) tiles per channel block. Relative speeds, from measurements in
 * the driver (docs/perf-notes.md): the 2-vector mid tile 0.95 of the 3-vector wide one, the
 * narrow one 0.87. */
static double gemm_tile_cost(const cconv_plan *p)
{
    const cconv_isa_table *isa = p->isa;
    const int dt = p->d.dtype == CCONV_FLOAT64;
    double cost = 0;
    for (int i = 0; i < p->npasses; i++) {
        gemm_band b;
        gemm_band_geometry(p, &p->passes[i], &b);
        const int64_t Q1 = p->passes[i].q[1], Q2 = p->passes[i].q[2];
        for (int last = 0; last < 2; last++) {
            const cconv_tile_kernel *t = last && p->has_tail ? &p->tail : &p->tile;
            const int64_t nblocks = last ? (p->has_tail ? 1 : 0) : p->nblk - (p->has_tail ? 1 : 0);
            const double speed = t->nr == isa->narrow[dt].nr ? 0.87 : t->nr == isa->mid[dt].nr ? 0.95 : 1.0;
            double slots = 0; /* per image plane and block: pixel slots of every job */
            for (int64_t h0 = 0; h0 < Q1; h0 += b.B)
                for (int64_t w0 = 0; w0 < Q2; w0 += b.WS) {
                    const int64_t npix = min64(b.B, Q1 - h0) * min64(b.WS, Q2 - w0);
                    slots += (double)((npix + t->mr - 1) / t->mr * t->mr);
                }
            cost += slots * (double)(nblocks * p->d.groups * t->nr) / speed;
        }
    }
    return cost;
}

/* Where the wide tile is wider than the mid one, keep whichever wastes less: jobs of 14x14-pixel
 * rows, say, fill 14-pixel mid tiles exactly but leave 2 of 16 slots empty in 8-pixel wide
 * ones (measured slower, docs/perf-notes.md). */
static void choose_gemm_tile(cconv_plan *p)
{
    const int dt = p->d.dtype == CCONV_FLOAT64;
    if (p->gpb > 1 || p->tile.nr != p->isa->wide[dt].nr || p->isa->mid[dt].nr == p->isa->wide[dt].nr) return;
    const double wide = gemm_tile_cost(p);
    const cconv_tile_kernel w = p->tile;
    set_gemm_tile(p, p->isa->mid[dt]);
    if (gemm_tile_cost(p) >= wide) set_gemm_tile(p, w);
}

/* Winograd F(4x4, 3x3) jobs: (image, band of tile rows, band of tile columns, chunk of cout
 * blocks). A job transforms its tiles' inputs (V: 36 x tiles x C_in), runs 36 GEMMs with U into
 * M (36 x cout blocks x tiles x NR) and transforms M back to outputs; V and M are sized to
 * WINO_BYTES, so they stay in L2/L3 while U streams past. Fixed by the shape only.
 *
 * Dilation dh x dw: the outputs of one phase (rows py + dh*i, columns px + dw*j) are an undilated
 * 3x3 convolution over every dh-th padded row and dw-th column, so a tile is 4x4 outputs of one
 * phase. A job takes its band of tile rows and columns in every phase: dense output rows
 * [4*dh*tr0, 4*dh*(tr0 + TRB)) read the consecutive padded rows [4*dh*tr0, +R), one band that all
 * phases share (the band fill is the undilated one; the patches are strided views of it). */
typedef struct {
    int64_t dh, dw;     /* dilation: phases per tile row and column */
    int64_t th, tw;     /* 4x4 output tiles of a phase along H and W */
    int64_t TRB, TCB;   /* tile rows and columns of a job (per phase) */
    int64_t nbr, nbc;   /* bands along H and W */
    int64_t tiles;      /* tiles of a full job: TRB*TCB*dh*dw */
    int64_t TBp;        /* those rounded up to whole register tiles */
    int64_t R, WB;      /* input rows and columns of a job's band buffer: dh*(4*TRB + 2), dw*(4*TCB + 2) */
    int64_t bpc, nch;   /* cout blocks per chunk, chunks */
    int64_t fit;        /* tiles whose V and M fit WINO_BYTES (a job has at least MR, and every phase) */
} wino_geom;

#define WINO_BYTES (512 * 1024)
/* Below this many tiles fitting a job's buffers, streaming U (4x the direct weights) past them
 * costs more than the multiplications saved -- unless the jobs need not split the output
 * channels (nch == 1: enough images and bands), so each tile is transformed once and its V
 * serves every cout block. Jobs that split the channels save less a tile (U streams from L3), so
 * the filter transform needs twice WINO_MIN_CALL_TILES in the call to pay off
 * (docs/perf-notes.md, docs/winograd.md). */
#define WINO_MIN_TILES 6
#define WINO_MIN_CALL_TILES 128
/* Outputs over the tiles' 16 each: a phase's few rows (large dilation on a small image: d6 on
 * 33x33 gives 6 per phase, 2 tiles of 4) waste most of the last tile; under half used, Winograd
 * did not clearly beat the GEMM path (docs/perf-notes.md). */
#define WINO_MIN_USE 0.5

static void wino_geometry(const cconv_plan *p, wino_geom *g)
{
    const cconv_conv_desc *d = &p->d;
    const int64_t K = d->kernel[0] * d->in_channels, es = (int64_t)cconv_dtype_size(d->dtype);
    const int64_t MR = p->tile.mr, NR = p->tile.nr, nblk = p->nblk;
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
    /* Few tile bands (batch 1, small images): split the output channels too. */
    const int64_t jobs = max64(1, d->batch) * d->out_size[0] * g->nbr * g->nbc;
    const int64_t nch = min64(nblk, max64(1, (GEMM_MIN_JOBS + jobs - 1) / jobs));
    g->bpc = (nblk + nch - 1) / nch;
    g->nch = (nblk + g->bpc - 1) / g->bpc;
    g->tiles = g->TRB * g->TCB * ph;
    g->TBp = (g->tiles + MR - 1) / MR * MR;
    g->R = g->dh * (4 * g->TRB + 2);
    g->WB = g->dw * (4 * g->TCB + 2);
}

/* Tile t of a job with ntc tile columns: tile row ti and column tj of phase (py, px), taken as
 * dense tile row ti*dh + py and column tj*dw + px. Its first output, and its patch's first entry
 * in the band, is at row r0 = 4*dh*ti + py and column c0 = 4*dw*tj + px relative to the job's. */
static void wino_tile_origin(const wino_geom *g, int64_t ntc, int64_t t, int64_t *r0, int64_t *c0)
{
    const int64_t u = t / (ntc * g->dw), v = t % (ntc * g->dw);
    *r0 = u / g->dh * 4 * g->dh + u % g->dh;
    *c0 = v / g->dw * 4 * g->dw + v % g->dw;
}

/* 3x3 along H and W with stride 1, any dilation; one group; 2-D, or 3-D with any depth kernel,
 * stride and dilation (any padding mode, layout and dtype). */
static int can_winograd(const cconv_conv_desc *d)
{
    return !d->transposed && d->groups == 1 && d->kernel[1] == 3 && d->kernel[2] == 3 &&
           d->stride[1] == 1 && d->stride[2] == 1;
}

static int all_finite(const void *w, int64_t n, cconv_dtype dt)
{
    int bad = 0;
    if (dt == CCONV_FLOAT64) for (int64_t i = 0; i < n; i++) bad |= ((const double *)w)[i] * 0 != 0;
    else for (int64_t i = 0; i < n; i++) bad |= ((const float *)w)[i] * 0 != 0;
    return !bad;
}

/* One input channel per group, any multiplier m = cog, any layout (depthwise.inc). */
static int can_depthwise(const cconv_conv_desc *d)
{
    const int64_t cig = d->in_channels / d->groups;
    return !d->transposed && cig == 1;
}

/* Few input channels per group: each output sums cig*kd*kh*kw taps, too short a reduction for
 * the GEMM tile (whose blocks would pack NR/cog groups with block-diagonal, mostly zero weights);
 * the depthwise kernels take it as more taps (channels-last: on rows expanded per ci). */
static int can_grouped(const cconv_conv_desc *d)
{
    const int64_t cig = d->in_channels / d->groups;
    /* channels-last expansion indexes a pixel's channels with int32 lanes */
    return !d->transposed && cig >= 1 && cig <= 8 && (!d->channels_last || d->in_channels < INT32_MAX);
}

static cconv_algorithm choose_algorithm(const cconv_conv_desc *d, const cconv_isa_table *isa,
                                        const void *weight)
{
    const int64_t cig = d->in_channels / d->groups, cog = d->out_channels / d->groups;
    if (can_depthwise(d) && cog <= 4) return CCONV_ALGO_DEPTHWISE;
    if (can_grouped(d) && cig >= 2 && cog <= 8 && d->groups > 1) {
        /* channels-last: the per-thread ring of expanded rows (kd*kh rows of W x cig x C_out)
         * should stay in L2, and a 1x1 kernel would use each expanded row once (the GEMM's
         * wasted block-diagonal FMAs cost less than the expansion then). */
        const double ring = (double)((d->kernel[0] - 1) * d->dilation[0] + 1) *
                            ((d->kernel[1] - 1) * d->dilation[1] + 1) * d->in_size[2] * cig *
                            d->out_channels * (d->dtype == CCONV_FLOAT64 ? 8 : 4);
        const int64_t taps = d->kernel[0] * d->kernel[1] * d->kernel[2];
        if (!d->channels_last || (ring <= 1024.0 * 1024 && taps > 1)) return CCONV_ALGO_GROUPED;
    }
    /* Winograd where its 4x fewer multiplications outweigh streaming the 4x larger transformed
     * weights: enough channels to keep the GEMMs long, enough tiles per job to reuse U. */
    if (d->algorithm != CCONV_ALGO_EXACT && can_winograd(d) && cig >= 16 && cog >= 16) {
        cconv_plan probe = {.d = *d};
        probe.tile = isa->mid[d->dtype == CCONV_FLOAT64];
        probe.nblk = (cog + probe.tile.nr - 1) / probe.tile.nr;
        wino_geom g;
        wino_geometry(&probe, &g);
        /* (Images of a few tiles, 14x14 outputs, still gain: U then streams from L3 per tile row.)
         * The filter transform (mostly writing U) must pay for itself within one call too: it
         * costs what dozens of tiles save (docs/perf-notes.md), so ask for WINO_MIN_CALL_TILES
         * tiles in the call. The scan of the filters for Inf/NaN comes last: it reads them all. */
        const double tile_outputs = 16.0 * (double)(g.th * g.tw * g.dh * g.dw);
        const int64_t call_tiles = d->batch * d->out_size[0] * g.th * g.tw * g.dh * g.dw;
        const int few_fit = g.fit < WINO_MIN_TILES;
        if ((!few_fit || g.nch == 1) && g.tiles >= 4 && call_tiles >= (few_fit ? 2 : 1) * WINO_MIN_CALL_TILES &&
            (double)(d->out_size[1] * d->out_size[2]) >= WINO_MIN_USE * tile_outputs &&
            all_finite(weight, cog * cig * d->kernel[0] * 9, d->dtype))
            return CCONV_ALGO_WINOGRAD;
    }
    return CCONV_ALGO_GEMM;
}

void cconv_plan_destroy(cconv_plan *p)
{
    if (!p) return;
    for (int i = 0; p->passes && i < p->npasses; i++) { /* (passes is NULL if its alloc failed) */
        cconv_free(p->passes[i].taps);
        cconv_free(p->passes[i].tap_k);
        cconv_free(p->passes[i].wpack);
    }
    cconv_free(p->passes);
    cconv_free(p->bias);
    cconv_free(p->weight_copy);
    cconv_free(p->wino_u);
    cconv_free(p);
}

/* padlo/padded of a plan that runs no stride phases (forward, one pass): the descriptor's own. */
static void plain_padding(cconv_plan *p)
{
    for (int a = 0; a < 3; a++) {
        p->padlo[a] = p->d.pad_before[a];
        p->padded[a] = p->d.in_size[a] + p->d.pad_before[a] + p->d.pad_after[a];
    }
}

/* Winograd weights: U[xi][cb][k][NR] = (G g G^T)[xi] of filter (cb*NR + j, k), k = depth tap *
 * C_in + input channel (2-D: one depth tap), computed in double,
 * zero columns past C_out. The filters are kept too, for the GEMM fallback (made only when a call
 * meets Inf or NaN: execute.inc). */
static cconv_status plan_winograd(cconv_plan *p, const void *weight)
{
    const cconv_conv_desc *d = &p->d;
    const int dt = d->dtype == CCONV_FLOAT64;
    const int64_t Ci = d->in_channels, Co = d->out_channels, KD = d->kernel[0], K = KD * Ci;
    const size_t es = cconv_dtype_size(d->dtype);
    p->tile = p->isa->mid[dt]; /* 2 vectors: 36 GEMMs per block, a third block of 16 wastes more */
    const int64_t NR = p->tile.nr;
    p->nblk = (Co + NR - 1) / NR;
    const size_t wb = (size_t)(Co * K * 9) * es, n = (size_t)(36 * p->nblk * K * NR);
    p->weight_copy = cconv_alloc(wb);
    p->wino_u = cconv_alloc(n * es);
    if (!p->weight_copy || !p->wino_u) return CCONV_ERR_NOMEM;
    memcpy(p->weight_copy, weight, wb);
    /* auto only picks Winograd for finite filters (choose_algorithm checked them) */
    p->fallback_always = d->algorithm != CCONV_ALGO_AUTO && !all_finite(weight, Co * K * 9, d->dtype);
    /* KB input channels at a time through a scratch [36][KB][NR], then 36 runs of KB*NR: the
     * 36 destinations are xs apart (often a power of two: one cache set), so short writes
     * straight into U thrashed. */
    enum { KB = 16 };
    const size_t xs = (size_t)(p->nblk * K * NR); /* U's stride between the 36 xi */
    /* Units (cout block, KB channels) write disjoint parts of U, so they run on all threads
     * (a one-shot call pays for the transform, a sizeable part of a batch-1 call:
     * docs/perf-notes.md) when there are enough filters to share. */
    const int64_t nkb = (K + KB - 1) / KB, units = p->nblk * nkb;
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
                memcpy((char *)p->wino_u + (x * xs + (size_t)((cb * K + k0) * NR)) * es,
                       scratch + (size_t)(x * kn * NR) * es, (size_t)(kn * NR) * es);
        }
        cconv_free(scratch);
    }
    if (failed) return CCONV_ERR_NOMEM;
    plain_padding(p);
    wino_geom g;
    wino_geometry(p, &g);
    p->weight_bytes = (int64_t)(n * es + wb);
    p->workspace_bytes = (KD * g.R * g.WB * Ci + 36 * g.TBp * (K + g.bpc * NR)) * (int64_t)es * cconv_threads();
    return CCONV_OK;
}

/* A transposed convolution with stride 1 and one group is the forward correlation with the
 * flipped filter, C_in and C_out swapped, padded by d(k-1) - p before and d(k-1) - p +
 * output_padding after. f: that forward descriptor, when it exists and Winograd can run it. */
static int transposed_as_winograd(const cconv_conv_desc *d, cconv_conv_desc *f)
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
    return can_winograd(f) && cconv_conv_output_size(f) == CCONV_OK;
}

/* Plans a stride-1 transposed convolution as its forward Winograd equivalent (see above): the
 * filter flipped and C_in/C_out swapped into a scratch copy. This is what makes cconv.grad's input
 * gradient of a 3x3 layer (a transposed convolution of grad_output) run on Winograd. */
static cconv_status plan_transposed_winograd(const cconv_conv_desc *f, const void *weight,
                                             const void *bias, cconv_plan **out)
{
    const int64_t Ci = f->in_channels, Co = f->out_channels;
    const int64_t ksz = f->kernel[0] * f->kernel[1] * f->kernel[2];
    const size_t es = cconv_dtype_size(f->dtype);
    char *fw = cconv_alloc((size_t)(Ci * Co * ksz) * es);
    if (!fw) return CCONV_ERR_NOMEM;
    /* forward [co][ci][r] = transposed [ci][co][ksz - 1 - r] */
#define FLIP_SWAP(T)                                                                               \
    for (int64_t co = 0; co < Co; co++)                                                            \
        for (int64_t ci = 0; ci < Ci; ci++)                                                        \
            for (int64_t r = 0; r < ksz; r++)                                                      \
                ((T *)fw)[(co * Ci + ci) * ksz + r] = ((const T *)weight)[(ci * Co + co) * ksz + ksz - 1 - r];
    if (f->dtype == CCONV_FLOAT64) { FLIP_SWAP(double) } else { FLIP_SWAP(float) }
#undef FLIP_SWAP
    const cconv_status st = cconv_plan_create(f, fw, bias, out);
    cconv_free(fw);
    return st;
}

/* weight_copy: the first wb bytes of the filters as given. Returns 0 when out of memory. */
static int keep_filters(cconv_plan *p, const void *weight, size_t wb)
{
    p->weight_copy = cconv_alloc(wb);
    if (!p->weight_copy) return 0;
    memcpy(p->weight_copy, weight, wb);
    return 1;
}

static cconv_status create_plan(const cconv_conv_desc *desc, const void *weight, const void *bias,
                                int one_group_blocks, cconv_plan **out);

cconv_status cconv_plan_create(const cconv_conv_desc *desc, const void *weight, const void *bias,
                               cconv_plan **out)
{
    return create_plan(desc, weight, bias, 0, out);
}

static cconv_status create_plan(const cconv_conv_desc *desc, const void *weight, const void *bias,
                                int one_group_blocks, cconv_plan **out)
{
    if (!out || !desc || !weight) return CCONV_ERR_INVALID;
    *out = NULL;
    cconv_plan *p = cconv_alloc_zeroed(sizeof *p);
    if (!p) return CCONV_ERR_NOMEM;
    p->one_group_blocks = one_group_blocks;
    p->d = *desc;
    cconv_conv_desc *d = &p->d;
    cconv_status st = cconv_conv_output_size(d);
    if (st != CCONV_OK) { cconv_free(p); return st; }
    clamp_strides(d);
    const size_t es = cconv_dtype_size(d->dtype);
    const int64_t G = d->groups, Co = d->out_channels, Ci = d->in_channels;
    const int64_t cig = Ci / G, cog = Co / G;
    const int64_t ksz = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t filter_bytes = (size_t)(d->transposed ? Ci * cog : Co * cig) * (size_t)ksz * es;
    p->cig = cig;
    p->cog = cog;
    p->isa = cconv_active_isa();
    /* A transposed convolution's phases (and its forward Winograd form) read zero padding where
     * the scatter definition has no term at all: harmless for finite filters (0 * w = 0), but an
     * Inf or NaN filter would put NaN at outputs it never reaches (output_padding, borders). Such
     * filters run the reference algorithm, which sums exactly the definition's terms: decided
     * here for an explicit Winograd (which reads every filter anyway), after packing for GEMM
     * (below; auto never picks Winograd for non-finite filters). */
    cconv_conv_desc f;
    cconv_algorithm req = d->algorithm;
    if (req == CCONV_ALGO_WINOGRAD && transposed_as_winograd(d, &f) &&
        !all_finite(weight, (int64_t)(filter_bytes / es), d->dtype))
        req = CCONV_ALGO_REFERENCE;
    /* (auto's choice reads the filters only to check them for Inf/NaN: any order will do) */
    if (transposed_as_winograd(d, &f) &&
        (req == CCONV_ALGO_WINOGRAD ||
         (req == CCONV_ALGO_AUTO && choose_algorithm(&f, p->isa, weight) == CCONV_ALGO_WINOGRAD))) {
        cconv_free(p);
        return plan_transposed_winograd(&f, weight, bias, out);
    }
    if (req == CCONV_ALGO_AUTO || req == CCONV_ALGO_EXACT) p->algo = choose_algorithm(d, p->isa, weight);
    else if (req == CCONV_ALGO_DEPTHWISE && !can_depthwise(d)) { cconv_free(p); return CCONV_ERR_UNSUPPORTED; }
    else if (req == CCONV_ALGO_GROUPED && !can_grouped(d)) { cconv_free(p); return CCONV_ERR_UNSUPPORTED; }
    else if (req == CCONV_ALGO_WINOGRAD && !can_winograd(d)) { cconv_free(p); return CCONV_ERR_UNSUPPORTED; }
    else p->algo = req;

    if (bias) {
        p->bias = cconv_alloc((size_t)Co * es);
        if (!p->bias) goto nomem;
        memcpy(p->bias, bias, (size_t)Co * es);
    }
    if (p->algo == CCONV_ALGO_WINOGRAD) {
        st = plan_winograd(p, weight);
        if (st != CCONV_OK) { cconv_plan_destroy(p); return st; }
        *out = p;
        return CCONV_OK;
    }
    if (p->algo == CCONV_ALGO_REFERENCE) {
        if (!keep_filters(p, weight, filter_bytes)) goto nomem;
        p->weight_bytes = (int64_t)filter_bytes;
        *out = p;
        return CCONV_OK;
    }

    /* Per-dimension phases, then their cartesian product as passes. */
    dim_phase *ph[3] = {NULL, NULL, NULL};
    int nph[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        nph[a] = dim_phases(d, a, &ph[a], &p->padlo[a], &p->padded[a]);
        if (nph[a] < 0) { nph[a] = 0; goto phases_nomem; }
    }
    int64_t padded_elems;
    {
        const int64_t Hp = p->padded[1], Wp = p->padded[2];
        const int dt = d->dtype == CCONV_FLOAT64;
        const int64_t C = (p->algo != CCONV_ALGO_GEMM && !d->channels_last) ? 1 : Ci;
        int64_t span; /* every tap offset below is less than this: checked before they are made */
        if (!cconv_mul(p->padded[0], Hp, &padded_elems) || !cconv_mul(padded_elems, Wp, &padded_elems) ||
            !cconv_mul(padded_elems, C, &span))
            goto phases_overflow;
        if (p->algo == CCONV_ALGO_GEMM) {
            p->wmerge = 1;
            if (!d->transposed && G == 1 && Ci < 32 && d->dilation[2] == 1 && d->kernel[2] > 1)
                p->wmerge = d->kernel[2];
            set_gemm_tile(p, narrowest_tile(p->isa, dt, cog));
        }
        /* Each pass owns at least one output, so a count past INT_MAX could never be allocated. */
        const int64_t npasses = (int64_t)nph[0] * nph[1] * nph[2];
        if (npasses > INT_MAX) goto phases_nomem;
        p->passes = cconv_alloc_zeroed(((size_t)npasses + 1) * sizeof *p->passes);
        if (!p->passes) goto phases_nomem;
        p->npasses = (int)npasses; /* only now: cconv_plan_destroy walks npasses passes */
        int pi = 0;
        for (int i0 = 0; i0 < nph[0]; i0++)
            for (int i1 = 0; i1 < nph[1]; i1++)
                for (int i2 = 0; i2 < nph[2]; i2++, pi++) {
                    pass_t *ps = &p->passes[pi];
                    const dim_phase *f[3] = {&ph[0][i0], &ph[1][i1], &ph[2][i2]};
                    const int64_t nw = p->wmerge > 1 ? 1 : f[2]->ntaps; /* folded: kw = 0 only */
                    const int64_t nt = f[0]->ntaps * f[1]->ntaps * nw;
                    for (int a = 0; a < 3; a++) {
                        ps->o0[a] = f[a]->o0; ps->os[a] = f[a]->os; ps->q[a] = f[a]->q; ps->is[a] = f[a]->is;
                    }
                    ps->ntaps = (int)nt;
                    ps->taps = cconv_alloc((size_t)(nt + 1) * sizeof(ptrdiff_t));
                    ps->tap_k = cconv_alloc((size_t)(nt + 1) * sizeof(int64_t));
                    if (!ps->taps || !ps->tap_k) goto phases_nomem;
                    int64_t t = 0;
                    for (int64_t a = 0; a < f[0]->ntaps; a++)
                        for (int64_t b = 0; b < f[1]->ntaps; b++)
                            for (int64_t c = 0; c < nw; c++, t++) {
                                ps->taps[t] = (ptrdiff_t)(((f[0]->pos[a] * Hp + f[1]->pos[b]) * Wp + f[2]->pos[c]) * C);
                                ps->tap_k[t] = (f[0]->k[a] * d->kernel[1] + f[1]->k[b]) * d->kernel[2] + f[2]->k[c];
                            }
                }
    }
    free_phases(ph, nph);
    if (p->algo == CCONV_ALGO_GEMM) choose_gemm_tile(p);

    if (p->algo == CCONV_ALGO_GEMM && !d->channels_last && !d->transposed) {
        p->pw_cf = 1;
        for (int a = 0; a < 3; a++)
            if (d->kernel[a] != 1 || d->stride[a] != 1 || p->padlo[a] != 0 || p->padded[a] != d->in_size[a])
                p->pw_cf = 0;
    }
    if (p->pw_cf) {
        p->tile = p->isa->wide[d->dtype == CCONV_FLOAT64];
        const size_t wb = (size_t)(Co * cig) * es;
        if (!keep_filters(p, weight, wb)) goto nomem;
        p->weight_bytes = (int64_t)wb;
        p->workspace_bytes = (int64_t)cig * p->tile.nr * cconv_threads() * (int64_t)es;
        *out = p;
        return CCONV_OK;
    }

    /* Pack weights per pass. */
    if (p->algo == CCONV_ALGO_GEMM) {
        const int64_t NR = p->tile.nr;
        p->wfinite = 1; /* until a pack finds otherwise */
        /* Channel blocks keep one block's weights (taps x kc x NR) within ~256 KiB of L2. */
        int64_t per_k = (int64_t)p->passes[0].ntaps * NR * (int64_t)es;
        for (int i = 1; i < p->npasses; i++)
            if ((int64_t)p->passes[i].ntaps * NR * (int64_t)es > per_k) per_k = (int64_t)p->passes[i].ntaps * NR * (int64_t)es;
        const int64_t K = p->kmax;
        p->kc = per_k > 0 ? (256 * 1024) / per_k : K;
        if (p->kc < 1) p->kc = 1;
        if (p->kc >= K) p->kc = K;
        else p->kc = (K + (K + p->kc - 1) / p->kc - 1) / ((K + p->kc - 1) / p->kc); /* even blocks */
        /* (for the one-group-per-block plan that calls with Inf or NaN input run) */
        if (p->gpb > 1 && !keep_filters(p, weight, filter_bytes)) goto nomem;
        for (int i = 0; i < p->npasses; i++) {
            pass_t *ps = &p->passes[i];
            const size_t n = (size_t)(p->nblocks * ps->ntaps * p->kmax * NR);
            ps->wpack = cconv_alloc(n * es);
            if (!ps->wpack) goto nomem;
            p->weight_bytes += (int64_t)(n * es);
            if (p->gpb > 1) {
                if (d->dtype == CCONV_FLOAT64) PACK_GEMM_GROUPS(double) else PACK_GEMM_GROUPS(float)
            } else {
                if (d->dtype == CCONV_FLOAT64) PACK_GEMM(double, f64) else PACK_GEMM(float, f32)
            }
        }
        int64_t ws = 0;
        int shared = 0;
        for (int i = 0; i < p->npasses; i++) {
            gemm_band b;
            gemm_band_geometry(p, &p->passes[i], &b);
            if (b.shared) shared = 1;
            else if (!b.direct) ws = max64(ws, b.DS * b.R * b.WB * Ci);
        }
        p->workspace_bytes = ws * cconv_threads() * (int64_t)es;
        int64_t copy_bytes;
        if (shared && (!cconv_mul(d->batch, padded_elems, &copy_bytes) || !cconv_mul(copy_bytes, Ci * (int64_t)es, &copy_bytes)))
            goto overflow;
        if (shared) p->workspace_bytes += copy_bytes;
    } else {
        pass_t *ps = &p->passes[0];
        ps->wpack = cconv_alloc((size_t)(Co * cig * ps->ntaps) * es);
        if (!ps->wpack) goto nomem;
        p->weight_bytes = Co * cig * ps->ntaps * (int64_t)es;
        if (d->dtype == CCONV_FLOAT64) PACK_DW(double) else PACK_DW(float)
        /* Per-thread row rings and tap tables of depthwise.inc (no padded copy of the input). */
        const int64_t *K = d->kernel, *Dl = d->dilation, S2 = d->stride[2];
        const int64_t slots = ((K[0] - 1) * Dl[0] + 1) * ((K[1] - 1) * Dl[1] + 1);
        /* Checked here once: depthwise.inc sizes its rings from the same products (a row of
         * ceil(padded / stride) + CCONV_DW_SLACK elements per column phase) without checks. */
        int64_t ws, t;
        if (!d->channels_last) {
            const int64_t row = p->padded[2] / S2 + (p->padded[2] % S2 != 0) + 32;
            if (!cconv_mul(cig, slots, &t) || !cconv_mul(t, S2, &t) || !cconv_mul(t, row, &t) ||
                !cconv_mul(t, (int64_t)es, &t) || !cconv_add(t, 128 * 1024, &ws))
                goto overflow;
        } else {
            ws = 0;
            if (cog > 1 && (!cconv_mul(slots, d->in_size[2], &ws) || !cconv_mul(ws, Co * (int64_t)es, &ws)))
                goto overflow;
            if (!cconv_mul(d->out_size[2], ksz * 8, &t) || !cconv_add(ws, t, &ws)) goto overflow;
        }
        if (!cconv_mul(ws, cconv_threads(), &ws) || !cconv_add(ws, Co * (int64_t)es, &ws)) goto overflow;
        p->workspace_bytes = ws;
        (void)padded_elems;
    }
    /* (see above; the filters as given, after packing has read them all: not wfinite, which also
     * sees the packed buffer's padding) */
    if (d->transposed && p->algo == CCONV_ALGO_GEMM && !all_finite(weight, (int64_t)(filter_bytes / es), d->dtype)) {
        cconv_conv_desc r = *desc;
        r.algorithm = CCONV_ALGO_REFERENCE;
        cconv_plan_destroy(p);
        return create_plan(&r, weight, bias, one_group_blocks, out);
    }
    *out = p;
    return CCONV_OK;

phases_overflow:
    free_phases(ph, nph);
overflow:
    cconv_plan_destroy(p);
    return CCONV_ERR_OVERFLOW;
phases_nomem:
    free_phases(ph, nph);
nomem:
    cconv_plan_destroy(p);
    return CCONV_ERR_NOMEM;
}

const cconv_conv_desc *cconv_plan_desc(const cconv_plan *p) { return &p->d; }
cconv_algorithm cconv_plan_algorithm(const cconv_plan *p) { return p->algo; }
int64_t cconv_plan_weight_bytes(const cconv_plan *p) { return p->weight_bytes; }
int64_t cconv_plan_workspace_bytes(const cconv_plan *p) { return p->workspace_bytes; }

/* ---------------------------------------------------------------- execution */

/* Source index of every padded coordinate (cconv_pad_source per dimension), in one allocation
 * the caller frees as map[0]. Returns 0 when out of memory. */
static int pad_maps(const cconv_plan *p, int64_t *map[3])
{
    const cconv_conv_desc *d = &p->d;
    map[0] = cconv_alloc((size_t)(p->padded[0] + p->padded[1] + p->padded[2]) * sizeof(int64_t));
    if (!map[0]) return 0;
    map[1] = map[0] + p->padded[0];
    map[2] = map[1] + p->padded[1];
    for (int a = 0; a < 3; a++)
        for (int64_t z = 0; z < p->padded[a]; z++)
            map[a][z] = cconv_pad_source(z - p->padlo[a], d->in_size[a],
                                         d->transposed ? CCONV_PAD_ZEROS : d->padding_mode);
    return 1;
}

/* Below about a million multiply-adds a call runs on the calling thread: starting (and, on a
 * busy machine, waiting for) an OpenMP team costs more than the work. Thread count never
 * changes the result, so this is only a speed decision. */
static int small_work(const cconv_plan *p)
{
    const cconv_conv_desc *d = &p->d;
    const int64_t *sz = d->transposed ? d->in_size : d->out_size;
    const double per = d->transposed ? (double)p->cog * d->in_channels : (double)p->cig * d->out_channels;
    const double macs = (double)d->batch * per * (double)(sz[0] * sz[1] * sz[2]) *
                        (double)(d->kernel[0] * d->kernel[1] * d->kernel[2]);
    return macs < (double)(1 << 20);
}

#include "execute.inc"

cconv_status cconv_plan_execute(const cconv_plan *p, const void *x, void *y)
{
    if (!p || !x || !y) return CCONV_ERR_INVALID;
    if (p->d.batch == 0) return CCONV_OK;
    const int serial = cconv_set_serial(small_work(p));
    cconv_status st;
    if (p->algo == CCONV_ALGO_REFERENCE) st = cconv_reference_conv(&p->d, x, p->weight_copy, p->bias, y);
    else if (p->d.dtype == CCONV_FLOAT64) st = execute_f64(p, x, y, 1);
    else st = execute_f32(p, x, y, 1);
    cconv_set_serial(serial);
    return st;
}

/* The weight gradient's tile for cog output channels a group: the narrow one when it holds them,
 * else whichever of the wide and mid ones computes fewer padded columns for its speed (6x4 ran
 * faster than 14x2, docs/perf-notes.md: the mid tile's columns count 7% more, so C_out 64 takes
 * one 64-wide block, 32 one 32-wide one). */
static const cconv_gw_tile_kernel *gw_tile(const cconv_isa_table *isa, int dt, int64_t cog)
{
    const cconv_gw_tile_kernel *w = &isa->gw_wide[dt], *m = &isa->gw_mid[dt];
    if (cog <= isa->gw_narrow[dt].nr) return &isa->gw_narrow[dt];
    const double cw = (double)((cog + w->nr - 1) / w->nr * w->nr);
    const double cm = (double)((cog + m->nr - 1) / m->nr * m->nr) * (w->nr > m->nr ? 1.07 : 1.0);
    return cm < cw ? m : w;
}

/* Register-tile slots (rows padded to MR, columns to NR) of a weight gradient with `rows` (input
 * channel, tap) rows and `cols` output channels. */
static double gw_slots(const cconv_isa_table *isa, int dt, int64_t rows, int64_t cols)
{
    const cconv_gw_tile_kernel *t = gw_tile(isa, dt, cols);
    return (double)((rows + t->mr - 1) / t->mr * t->mr) * (double)((cols + t->nr - 1) / t->nr * t->nr);
}

/* A channels-last 1x1 (stride 1, unpadded, one group) weight gradient dw[co][ci] = sum_p gy[p][co]
 * x[p][ci] is symmetric in x and grad_output: with them exchanged, the output channels become the
 * tile's rows and C_in its columns. Taken where that pads clearly less (C_out 24 on 14x2 tiles uses
 * 24 of 32 columns; as rows, 24 of 24): also the band transposes the smaller of the two tensors.
 * Not taken where the slots are within 8%: there the exchange did not win consistently
 * (docs/perf-notes.md). */
static int gw_swap_roles(const cconv_conv_desc *d, const cconv_isa_table *isa)
{
    if (!d->channels_last || d->groups != 1) return 0;
    for (int a = 0; a < 3; a++)
        if (d->kernel[a] != 1 || d->stride[a] != 1 || d->pad_before[a] || d->pad_after[a]) return 0;
    const int64_t Ci = d->in_channels, Co = d->out_channels;
    if (Ci <= 16 || Co <= 16) return 0; /* narrow tiles and the pair kernel: left as they are */
    const int dt = d->dtype == CCONV_FLOAT64;
    return gw_slots(isa, dt, Co, Ci) < 0.92 * gw_slots(isa, dt, Ci, Co);
}

/* Weight gradient of the (forward) convolution desc on ISA isa; see gradw.inc. may_swap: whether
 * gw_swap_roles may exchange x and grad_output (not again inside the exchanged call). */
static cconv_status weight_grad(const cconv_conv_desc *desc, const void *x, const void *grad_output,
                                void *grad_weight, const cconv_isa_table *isa, int may_swap)
{
    cconv_plan p;
    memset(&p, 0, sizeof p);
    p.d = *desc;
    cconv_conv_desc *d = &p.d;
    cconv_status st = cconv_conv_output_size(d);
    if (st != CCONV_OK) return st;
    if (d->transposed) return CCONV_ERR_UNSUPPORTED; /* pass the forward convolution it adjoins */
    clamp_strides(d);
    const int64_t G = d->groups, cig = d->in_channels / G, cog = d->out_channels / G;
    const int64_t ksz = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t es = cconv_dtype_size(d->dtype);
    if (d->batch == 0) {
        memset(grad_weight, 0, (size_t)(d->out_channels * cig * ksz) * es);
        return CCONV_OK;
    }
    plain_padding(&p);
    const int dt = d->dtype == CCONV_FLOAT64;
    if (may_swap && gw_swap_roles(d, isa)) {
        /* dw^T = the weight gradient with x and grad_output exchanged, then one transpose. */
        cconv_conv_desc sd = *d;
        sd.in_channels = d->out_channels;
        sd.out_channels = d->in_channels;
        void *t = cconv_alloc((size_t)(d->in_channels * d->out_channels) * es);
        if (!t) return CCONV_ERR_NOMEM;
        st = weight_grad(&sd, grad_output, x, t, isa, 0);
        if (st == CCONV_OK)
            isa->transpose[dt](t, (ptrdiff_t)d->out_channels, d->in_channels, d->out_channels, grad_weight,
                               (ptrdiff_t)d->in_channels);
        cconv_free(t);
        return st;
    }
    int64_t *map[3];
    if (!pad_maps(&p, map)) return CCONV_ERR_NOMEM;
    const double macs = (double)d->batch * (double)(d->out_size[0] * d->out_size[1] * d->out_size[2]) *
                        (double)d->out_channels * (double)(cig * ksz);
    const int serial = cconv_set_serial(macs < (double)(1 << 20));
    if (d->channels_last && G == d->in_channels && G == d->out_channels) {
        st = dt ? run_gw_dw_cl_f64(d, isa, map, x, grad_output, grad_weight)
                : run_gw_dw_cl_f32(d, isa, map, x, grad_output, grad_weight);
    } else {
        const cconv_gw_tile_kernel *tile = gw_tile(isa, dt, cog);
        gw_geom q;
        if (!gw_geometry(d, tile, isa->gw_narrow[dt].nr, &q)) st = CCONV_ERR_OVERFLOW;
        else st = dt ? run_gw_f64(d, isa, tile, &q, p.padded, map, x, grad_output, grad_weight)
                     : run_gw_f32(d, isa, tile, &q, p.padded, map, x, grad_output, grad_weight);
    }
    cconv_set_serial(serial);
    cconv_free(map[0]);
    return st;
}

cconv_status cconv_conv_weight_grad(const cconv_conv_desc *desc, const void *x, const void *grad_output,
                                    void *grad_weight)
{
    if (!desc || !x || !grad_output || !grad_weight) return CCONV_ERR_INVALID;
    return weight_grad(desc, x, grad_output, grad_weight, cconv_active_isa(), 1);
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


/* The fused 2-D paths (separable, flattened) compute one output plane from one input plane: the
 * descriptor must be 2-D in fact, its one output plane reading the input plane, not padding. */
static int one_plane(const cconv_conv_desc *d)
{
    return d->in_size[0] == 1 && d->kernel[0] == 1 && d->out_size[0] == 1 && d->pad_before[0] == 0;
}

/* Fused separable convolution: the depthwise plan dw, then a 1x1 convolution with pw (Co2, Cmid)
 * and bias (Co2 or NULL), channels-first 2-D only; y is (N, Co2, OH, OW). */
cconv_status cconv_plan_execute_separable(const cconv_plan *p, const void *pw, const void *bias,
                                          int64_t Co2, const void *x, void *y)
{
    if (!p || !pw || !x || !y || Co2 < 1) return CCONV_ERR_INVALID;
    const cconv_conv_desc *d = &p->d;
    if (p->algo != CCONV_ALGO_DEPTHWISE || d->in_channels != d->groups || d->channels_last || !one_plane(d))
        return CCONV_ERR_UNSUPPORTED;
    const int64_t Cm = d->out_channels, nblk = Co2 / CCONV_PW_MR + (Co2 % CCONV_PW_MR != 0);
    const size_t es = cconv_dtype_size(d->dtype);
    int64_t t; /* the packed pointwise weights and y must be addressable */
    if (!cconv_mul(nblk * CCONV_PW_MR, Cm, &t) || !cconv_mul(t, (int64_t)es, &t) ||
        !cconv_mul(d->batch, Co2, &t) || !cconv_mul(t, d->out_size[1] * d->out_size[2], &t) ||
        !cconv_mul(t, (int64_t)es, &t))
        return CCONV_ERR_OVERFLOW;
    if (d->batch == 0) return CCONV_OK;
    void *pack = cconv_alloc((size_t)(nblk * Cm * CCONV_PW_MR) * es);
    int64_t *map[3];
    if (!pack || !pad_maps(p, map)) { cconv_free(pack); return CCONV_ERR_NOMEM; }
    /* [block][k][6], zeros past Co2, so the kernel broadcasts from one contiguous run per k. */
#define PACK_PW(T)                                                                                 \
    for (int64_t b = 0; b < nblk; b++)                                                             \
        for (int64_t k = 0; k < Cm; k++)                                                           \
            for (int64_t i = 0; i < CCONV_PW_MR; i++) {                                            \
                const int64_t co = b * CCONV_PW_MR + i;                                            \
                ((T *)pack)[(b * Cm + k) * CCONV_PW_MR + i] = co < Co2 ? ((const T *)pw)[co * Cm + k] : (T)0; \
            }
    cconv_status st;
    const int serial = cconv_set_serial(small_work(p));
    if (d->dtype == CCONV_FLOAT64) {
        PACK_PW(double)
        st = run_separable_cf_f64(p, pack, Co2, bias, x, y, map);
    } else {
        PACK_PW(float)
        st = run_separable_cf_f32(p, pack, Co2, bias, x, y, map);
    }
#undef PACK_PW
    cconv_set_serial(serial);
    cconv_free(pack);
    cconv_free(map[0]);
    return st;
}

/* Fused flattened convolution (see cconv.h). A job is (image, band of output rows): it runs the
 * 1x1 over the band's input rows of x, halo included (a pointwise plan for that many rows, reading
 * x in place), into a per-thread buffer that stays in L2, then the depthwise over that (a plan
 * with the band's own top/bottom padding) straight into the band's rows of y: x is read and y
 * written once. The banding depends on the thread count, the results do not: every output sums
 * the same terms in the same order whichever band computes it (1x1 over C_in in order, then the
 * depthwise taps in order). */
#define FLAT_BAND_BYTES (512 * 1024)

typedef struct {
    int64_t rows, pt, pb;       /* input rows of the band (clipped to the image), padding rows */
    cconv_plan *pw, *dw;
} flat_variant;

cconv_status cconv_flattened_conv2d(const cconv_conv_desc *desc, const void *dw_weight, const void *bias,
                                    int64_t Ci, const void *cw, const void *x, void *y)
{
    if (!desc || !dw_weight || !cw || !x || !y || Ci < 1) return CCONV_ERR_INVALID;
    cconv_conv_desc d = *desc;
    cconv_status st = cconv_conv_output_size(&d);
    if (st != CCONV_OK) return st;
    clamp_strides(&d);
    const int64_t C = d.in_channels;
    if (d.groups != C || d.out_channels != C || d.transposed || d.channels_last || !one_plane(&d) ||
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
     * whole image at a time, each step on all threads (batch 1: small steps in a band of rows
     * were slower, docs/perf-notes.md; the image's intermediate, C x H x W, then stays in L2 or L3). */
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
        for (int a = 0; a < 3; a++) {
            pd.kernel[a] = pd.stride[a] = pd.dilation[a] = 1;
            pd.pad_before[a] = pd.pad_after[a] = 0;
        }
        dd.in_size[1] = v.rows; dd.pad_before[1] = v.pt; dd.pad_after[1] = v.pb;
        if ((st = cconv_plan_create(&pd, cw, NULL, &var[k].pw)) != CCONV_OK) goto done;
        if (!var[k].pw->pw_cf) { st = CCONV_ERR_UNSUPPORTED; goto done; }
        var[k].pw->pw_xs = H * W; /* reads the band's rows of x in place */
        if ((st = cconv_plan_create(&dd, dw_weight, bias, &var[k].dw)) != CCONV_OK) goto done;
        if (var[k].dw->algo != CCONV_ALGO_DEPTHWISE) { st = CCONV_ERR_UNSUPPORTED; goto done; }
        var[k].dw->dw_ys = OH * OW; /* writes the band's rows of y in place */
    }
    int failed = 0;
    const int nt = cconv_threads();
    (void)nt;
#define FLAT_JOB(T, SFX)                                                                           \
    {                                                                                              \
        const int64_t n = job / nb, b = job % nb;                                                  \
        const flat_variant *v = &var[band_var[b]];                                                 \
        const int64_t o0 = b * OB, on = (o0 + OB < OH ? o0 + OB : OH) - o0;                        \
        T *yb = (T *)y + n * C * OH * OW + o0 * OW;                                                \
        if (v->rows == 0) {                                                                        \
            for (int64_t c = 0; c < C; c++)                                                        \
                for (int64_t i = 0; i < on * OW; i++) yb[c * OH * OW + i] = bias ? ((const T *)bias)[c] : (T)0;\
        } else {                                                                                   \
            const T *xb = (const T *)x + n * Ci * H * W + (o0 * sh - ph + v->pt) * W;              \
            cconv_status s1 = execute_##SFX(v->pw, xb, mid, 1);                                    \
            if (s1 == CCONV_OK) s1 = execute_##SFX(v->dw, mid, yb, 1);                             \
            if (s1 != CCONV_OK) {                                                                  \
                _Pragma("omp atomic write") failed = 1;                                            \
            }                                                                                      \
        }                                                                                          \
    }
#define FLAT_RUN(T, SFX)                                                                           \
    if (outer) {                                                                                   \
        _Pragma("omp parallel num_threads(nt)")                                                    \
        {                                                                                          \
            const int serial = cconv_set_serial(1);                                                \
            T *mid = cconv_alloc((size_t)(C * maxrows * W + 1) * sizeof(T));                       \
            if (!mid) {                                                                            \
                _Pragma("omp atomic write") failed = 1;                                            \
            }                                                                                      \
            _Pragma("omp for schedule(dynamic)")                                                   \
            for (int64_t job = 0; job < N * nb; job++) {                                           \
                if (!failed) FLAT_JOB(T, SFX)                                                      \
            }                                                                                      \
            cconv_free(mid);                                                                       \
            cconv_set_serial(serial);                                                              \
        }                                                                                          \
    } else {                                                                                       \
        /* one job at a time, each step parallel inside */                                        \
        T *mid = cconv_alloc((size_t)(C * maxrows * W + 1) * sizeof(T));                           \
        failed = !mid;                                                                             \
        for (int64_t job = 0; job < N * nb && !failed; job++) FLAT_JOB(T, SFX)                     \
        cconv_free(mid);                                                                           \
    }
    if (d.dtype == CCONV_FLOAT64) { FLAT_RUN(double, f64) } else { FLAT_RUN(float, f32) }
#undef FLAT_RUN
#undef FLAT_JOB
    st = failed ? CCONV_ERR_NOMEM : CCONV_OK;
done:
    for (int k = 0; k < nvar; k++) {
        cconv_plan_destroy(var[k].pw);
        cconv_plan_destroy(var[k].dw);
    }
    cconv_free(var);
    cconv_free(band_var);
    return st;
}

/* A channels-first depthwise, grouped or GEMM plan whose output channels are written directly in
 * channel_shuffle(y, shuffle_groups) order: ShuffleNet's grouped conv + shuffle in one pass. */
cconv_status cconv_plan_execute_shuffled(const cconv_plan *p, int64_t shuffle_groups, const void *x,
                                         void *y)
{
    if (!p || !x || !y || shuffle_groups < 1) return CCONV_ERR_INVALID;
    const cconv_conv_desc *d = &p->d;
    if (d->out_channels % shuffle_groups) return CCONV_ERR_INVALID;
    if ((p->algo != CCONV_ALGO_DEPTHWISE && p->algo != CCONV_ALGO_GROUPED && p->algo != CCONV_ALGO_GEMM) ||
        d->channels_last)
        return CCONV_ERR_UNSUPPORTED;
    if (d->batch == 0) return CCONV_OK;
    const int serial = cconv_set_serial(small_work(p));
    const cconv_status st = d->dtype == CCONV_FLOAT64 ? execute_f64(p, x, y, shuffle_groups)
                                                      : execute_f32(p, x, y, shuffle_groups);
    cconv_set_serial(serial);
    return st;
}
