/* libFuzzer harness over the public C API (include/cconv.h).
 *
 * The input bytes choose an ISA, a thread count, an entry point and a convolution descriptor
 * (dims 1-3, every field drawn mostly from small values and sometimes from a table of edge values:
 * 0, 1, negatives, INT32/INT64 limits, ...). Every call must either return an error status or
 * succeed; a descriptor cconv_conv_output_size rejects must be rejected by every entry point.
 * Where the problem is small (<= WORK_CAP multiply-adds, <= BYTES_CAP bytes per tensor) the inputs
 * are filled deterministically and the result is compared with a float64 oracle: the library's
 * plain-loop reference (algorithm CCONV_ALGO_REFERENCE) for convolutions, plain loops written
 * here for the weight and input gradients, the fused 1x1 steps and the shuffle.
 *
 * Tolerance (as tests/reference.py's assert_conv_close): per element
 *   |y - ref| <= tol * (conv(|x|, |w|) + |b| + tiny),  tol = 1e-10 (float64), 1e-5 sqrt(K) (float32)
 * with K the products summed into one output. With an injected NaN/Inf, NaN and Inf must appear
 * exactly where the reference has them, except on Winograd plans, whose transforms mix
 * neighbouring pixels (an Inf there turns whole tiles into NaN): those are only run.
 *
 * Build: tests/fuzz/build.sh (libFuzzer + ASan/UBSan with clang, and a plain replay binary). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cconv.h"
#include "internal.h"
#include "core/padmap.h"

#define WORK_CAP 1000000.0
#define BYTES_CAP (4.0 * 1024 * 1024)

/* ------------------------------------------------------------ input decoding */
typedef struct {
    const uint8_t *p;
    size_t n;
} src_t;

static unsigned u8(src_t *s)
{
    if (!s->n) return 0;
    s->n--;
    return *s->p++;
}

static const int64_t SPECIAL[] = {0, 1, -1, -2, 2, 3, INT64_MAX, INT64_MIN, INT32_MAX,
                                  (int64_t)INT32_MAX + 1, ((int64_t)1 << 32) + 1, (int64_t)1 << 62,
                                  1 << 20, 65536, 3037000500LL, -((int64_t)1 << 40), 7, 17, 33, 64,
                                  255, 4097, 1 << 24, (1 << 24) + 1};
#define NSPECIAL ((int)(sizeof SPECIAL / sizeof SPECIAL[0]))

/* Mostly lo..hi; the top 24 byte values pick an edge value instead. */
static int64_t pick(src_t *s, int64_t lo, int64_t hi)
{
    const unsigned b = u8(s);
    if (b < 256 - NSPECIAL) return lo + (int64_t)(b % (unsigned)(hi - lo + 1));
    return SPECIAL[b - (256 - NSPECIAL)];
}

/* a*b wrapped to int64 (the harness may build descriptors whose products overflow; the library
 * must reject those, the harness must not itself overflow making them) */
static int64_t wmul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* ------------------------------------------------------------ data */
static uint64_t rng_state;
static double rnd(void) /* in [-1, 1), multiples of 1/1024 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)((int64_t)(rng_state >> 40) % 1024) / 1024.0;
}

typedef struct {
    int64_t n;
    void *v;    /* in the descriptor's dtype */
    double *d;  /* the same values in float64 */
} buf_t;

static int buf_new(buf_t *b, int64_t n, int f64, int special)
{
    b->n = n;
    b->v = malloc((size_t)(n ? n : 1) * (f64 ? 8 : 4));
    b->d = malloc((size_t)(n ? n : 1) * 8);
    if (!b->v || !b->d) {
        free(b->v);
        free(b->d);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = rnd();
        if (f64) {
            ((double *)b->v)[i] = v;
        } else {
            ((float *)b->v)[i] = (float)v;
            v = (float)v;
        }
        b->d[i] = v;
    }
    /* special: 1 NaN, 2 +Inf, 3 -Inf at one position */
    if (special && n) {
        const int64_t at = (int64_t)(rng_state % (uint64_t)n);
        const double v = special == 1 ? NAN : special == 2 ? INFINITY : -INFINITY;
        if (f64) ((double *)b->v)[at] = v;
        else ((float *)b->v)[at] = (float)v;
        b->d[at] = v;
    }
    return 1;
}

static void buf_free(buf_t *b)
{
    free(b->v);
    free(b->d);
    b->v = b->d = NULL;
}

static double *abs_copy(const double *a, int64_t n)
{
    double *r = malloc((size_t)(n ? n : 1) * 8);
    if (!r) abort();
    for (int64_t i = 0; i < n; i++) r[i] = fabs(a[i]);
    return r;
}

static double get(const void *v, int f64, int64_t i) { return f64 ? ((const double *)v)[i] : ((const float *)v)[i]; }

static const cconv_conv_desc *current; /* for the failure message */
static const char *current_note = "";

static void fail(const char *what, int64_t i, double got, double want, double bound)
{
    fprintf(stderr, "fuzz_desc: %s mismatch at %lld: got %.17g want %.17g (bound %.3g) %s\n", what,
            (long long)i, got, want, bound, current_note);
    if (current) {
        const cconv_conv_desc *d = current;
        fprintf(stderr, "  isa %s dtype %d transposed %d channels_last %d mode %d algorithm %d N %lld Ci %lld "
                "Co %lld G %lld\n", cconv_get_isa(), d->dtype, d->transposed, d->channels_last, d->padding_mode,
                d->algorithm, (long long)d->batch, (long long)d->in_channels, (long long)d->out_channels,
                (long long)d->groups);
        for (int a = 0; a < 3; a++)
            fprintf(stderr, "  dim %d: in %lld k %lld s %lld dil %lld pad %lld/%lld op %lld out %lld\n", a,
                    (long long)d->in_size[a], (long long)d->kernel[a], (long long)d->stride[a],
                    (long long)d->dilation[a], (long long)d->pad_before[a], (long long)d->pad_after[a],
                    (long long)d->output_padding[a], (long long)d->out_size[a]);
    }
    abort();
}

/* assert_conv_close over n elements of y (dtype) against ref/scale (float64). */
static void check_close(const char *what, const void *y, int f64, const double *ref, const double *scale,
                        int64_t n, double terms, int nonfinite_exact)
{
    const double tol = f64 ? 1e-10 : 1e-5 * sqrt(terms > 1 ? terms : 1);
    const double tiny = f64 ? 2.2250738585072014e-308 : 1.1754943508222875e-38;
    for (int64_t i = 0; i < n; i++) {
        const double a = get(y, f64, i), e = ref[i];
        if (isnan(e) || isinf(e)) {
            if (!nonfinite_exact) continue;
            if (isnan(e) != isnan(a) || (isinf(e) && a != e)) fail(what, i, a, e, 0);
            continue;
        }
        if (!nonfinite_exact && !isfinite(a)) continue;
        double sc = scale[i];
        if (!isfinite(sc)) sc = 0;
        const double bound = tol * (sc + tiny);
        if (!(fabs(a - e) <= bound)) fail(what, i, a, e, bound);
    }
}

/* ------------------------------------------------------------ oracles */
static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* float64 reference of d (any dtype) on float64 data. */
static void ref_conv(const cconv_conv_desc *d, const double *x, const double *w, const double *b, double *y)
{
    cconv_conv_desc r = *d;
    r.dtype = CCONV_FLOAT64;
    r.algorithm = CCONV_ALGO_REFERENCE;
    cconv_set_num_threads(1);
    if (cconv_conv(&r, x, w, b, y) != CCONV_OK) abort();
}

/* grad_weight[co, cil, kk] = sum over n, o of go[n, co, o] * x[n, ci, src(o, kk)]; forward d. */
static void ref_weight_grad(const cconv_conv_desc *d, const double *x, const double *go, double *gw)
{
    const int64_t N = d->batch, Ci = d->in_channels, Co = d->out_channels, G = d->groups;
    const int64_t Cig = Ci / G, Cog = Co / G;
    const int64_t *I = d->in_size, *K = d->kernel, *S = d->stride, *Dl = d->dilation, *P = d->pad_before;
    const int64_t *O = d->out_size;
    const int64_t isp = prod3(I), osp = prod3(O), ksz = prod3(K);
    for (int64_t co = 0; co < Co; co++)
        for (int64_t cil = 0; cil < Cig; cil++)
            for (int64_t kk = 0; kk < ksz; kk++) {
                const int64_t ci = (co / Cog) * Cig + cil;
                const int64_t kc[3] = {kk / (K[1] * K[2]), (kk / K[2]) % K[1], kk % K[2]};
                double acc = 0;
                for (int64_t n = 0; n < N; n++)
                    for (int64_t o = 0; o < osp; o++) {
                        const int64_t oc[3] = {o / (O[1] * O[2]), (o / O[2]) % O[1], o % O[2]};
                        int64_t src[3];
                        int zero = 0;
                        for (int a = 0; a < 3; a++) {
                            src[a] = cconv_pad_source(oc[a] * S[a] - P[a] + kc[a] * Dl[a], I[a], d->padding_mode);
                            zero |= src[a] < 0;
                        }
                        const int64_t sp = zero ? 0 : (src[0] * I[1] + src[1]) * I[2] + src[2];
                        /* a zero-padding tap multiplies too: 0 * Inf = NaN, as the definition */
                        const double xv = zero ? 0.0
                                          : d->channels_last ? x[(n * isp + sp) * Ci + ci] : x[(n * Ci + ci) * isp + sp];
                        const double gv = d->channels_last ? go[(n * osp + o) * Co + co] : go[(n * Co + co) * osp + o];
                        acc += xv * gv;
                    }
                gw[(co * Cig + cil) * ksz + kk] = acc;
            }
}

/* grad_input = the adjoint of d (forward or transposed) applied to go: gx[x position] +=
 * go[y position] * w[tap] over the pairs of positions a tap joins (forward: through the padding
 * mode's source, so a padded copy's gradient reaches its source; transposed: as tests/reference.py,
 * a position its padding crops is a zero of grad_output, and 0 * Inf = NaN). */
static void ref_input_grad(const cconv_conv_desc *d, const double *go, const double *w, double *gx)
{
    const int64_t N = d->batch, Ci = d->in_channels, Co = d->out_channels, G = d->groups;
    const int64_t Cig = Ci / G, Cog = Co / G;
    const int64_t *I = d->in_size, *K = d->kernel, *S = d->stride, *Dl = d->dilation, *P = d->pad_before;
    const int64_t *O = d->out_size;
    const int64_t isp = prod3(I), osp = prod3(O), ksz = prod3(K);
    /* the positions of x and of y a tap joins: forward, y's o reads x's source of o*s - p + k*dl;
     * transposed, x's i writes y's i*s - p + k*dl */
    const int64_t *A = d->transposed ? I : O, asp = d->transposed ? isp : osp;
    memset(gx, 0, (size_t)(N * Ci * isp) * 8);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t cil = 0; cil < Cig; cil++)
                for (int64_t kk = 0; kk < ksz; kk++) {
                    const int64_t ci = (co / Cog) * Cig + cil;
                    const int64_t kc[3] = {kk / (K[1] * K[2]), (kk / K[2]) % K[1], kk % K[2]};
                    const double wv = d->transposed ? w[(ci * Cog + co % Cog) * ksz + kk]
                                                    : w[(co * Cig + cil) * ksz + kk];
                    for (int64_t p = 0; p < asp; p++) {
                        const int64_t pc[3] = {p / (A[1] * A[2]), (p / A[2]) % A[1], p % A[2]};
                        int64_t q[3];
                        int skip = 0;
                        for (int a = 0; a < 3; a++) {
                            const int64_t z = pc[a] * S[a] - P[a] + kc[a] * Dl[a];
                            q[a] = d->transposed ? (z >= 0 && z < O[a] ? z : -1)
                                                 : cconv_pad_source(z, I[a], d->padding_mode);
                            skip |= q[a] < 0;
                        }
                        if (skip && d->transposed) {
                            double *t = d->channels_last ? &gx[(n * isp + p) * Ci + ci] : &gx[(n * Ci + ci) * isp + p];
                            *t += 0.0 * wv;
                        }
                        if (skip) continue;
                        const int64_t xs = d->transposed ? p : (q[0] * I[1] + q[1]) * I[2] + q[2];
                        const int64_t ys = d->transposed ? (q[0] * O[1] + q[1]) * O[2] + q[2] : p;
                        const double gv = d->channels_last ? go[(n * osp + ys) * Co + co] : go[(n * Co + co) * osp + ys];
                        double *t = d->channels_last ? &gx[(n * isp + xs) * Ci + ci] : &gx[(n * Ci + ci) * isp + xs];
                        *t += gv * wv;
                    }
                }
}

/* y (N, Co, S) = w (Co, Ci) x (N, Ci, S) + b, channels-first */
static void ref_pointwise(int64_t N, int64_t Ci, int64_t Co, int64_t S, const double *x, const double *w,
                          const double *b, double *y)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t s = 0; s < S; s++) {
                double acc = 0;
                for (int64_t ci = 0; ci < Ci; ci++) acc += w[co * Ci + ci] * x[(n * Ci + ci) * S + s];
                if (b) acc += b[co];
                y[(n * Co + co) * S + s] = acc;
            }
}

/* ------------------------------------------------------------ descriptor */
static void decode_desc(src_t *s, cconv_conv_desc *d, int *dims)
{
    memset(d, 0, sizeof *d);
    const unsigned flags = u8(s);
    *dims = 1 + (int)(flags % 3);
    d->dtype = (flags >> 2) & 1 ? CCONV_FLOAT64 : CCONV_FLOAT32;
    d->transposed = (flags >> 3) & 1;
    d->channels_last = (flags >> 4) & 1;
    const unsigned mode = u8(s);
    /* mostly a valid mode; sometimes an out-of-range enum value */
    d->padding_mode = (cconv_padding_mode)(mode < 240 ? (int)(mode % 5) : (int)mode - 245);
    const unsigned algo = u8(s);
    d->algorithm = (cconv_algorithm)(algo < 240 ? (int)(algo % 7) : (int)algo - 243);
    d->batch = pick(s, 0, 3);
    d->groups = pick(s, 1, 4);
    d->in_channels = wmul(d->groups, pick(s, 1, 5));
    d->out_channels = wmul(d->groups, pick(s, 1, 5));
    if (u8(s) >= 240) d->in_channels = pick(s, -2, 40); /* not a multiple of groups */
    for (int a = 0; a < 3; a++) {
        const int used = a >= 3 - *dims;
        d->in_size[a] = used ? pick(s, 1, 12) : 1;
        d->kernel[a] = used ? pick(s, 1, 5) : 1;
        d->stride[a] = used ? pick(s, 1, 3) : 1;
        d->dilation[a] = used ? pick(s, 1, 3) : 1;
        d->pad_before[a] = used ? pick(s, 0, 3) : 0;
        d->pad_after[a] = used ? (u8(s) & 1 ? d->pad_before[a] : pick(s, 0, 3)) : 0;
        d->output_padding[a] = used && d->transposed ? pick(s, 0, 2) : 0;
    }
    if (u8(s) >= 250) { /* a stray field off its 1-D/2-D value */
        const int a = (int)(u8(s) % 3);
        d->in_size[a] = pick(s, 0, 3);
        d->kernel[a] = pick(s, 0, 3);
    }
    /* garbage in out_size: plan creation must overwrite it */
    for (int a = 0; a < 3; a++) d->out_size[a] = pick(s, -1, 1);
}

static int small_conv(const cconv_conv_desc *d)
{
    const double N = (double)d->batch, Ci = (double)d->in_channels, Co = (double)d->out_channels;
    const double isp = (double)prod3(d->in_size), osp = (double)prod3(d->out_size), ksz = (double)prod3(d->kernel);
    const double es = d->dtype == CCONV_FLOAT64 ? 8 : 4;
    const double work = N * Co * osp * (Ci / (double)d->groups) * ksz;
    return work <= WORK_CAP && N * Ci * isp * 8 <= BYTES_CAP && N * Co * osp * 8 <= BYTES_CAP &&
           Co * Ci * ksz * es <= BYTES_CAP;
}

static int weight_fits(const cconv_conv_desc *d)
{
    return (double)d->out_channels * (double)d->in_channels * (double)prod3(d->kernel) * 8 <= BYTES_CAP &&
           (double)d->out_channels * 8 <= BYTES_CAP;
}

static int64_t x_elems(const cconv_conv_desc *d) { return d->batch * d->in_channels * prod3(d->in_size); }
static int64_t y_elems(const cconv_conv_desc *d) { return d->batch * d->out_channels * prod3(d->out_size); }
static int64_t w_elems(const cconv_conv_desc *d)
{
    return (d->transposed ? d->in_channels * (d->out_channels / d->groups)
                          : d->out_channels * (d->in_channels / d->groups)) * prod3(d->kernel);
}

/* An algorithm named explicitly may decline; auto, GEMM and the reference take every valid one
 * (or find that its buffers cannot be allocated, or their sizes not even computed in int64). */
static void expect_created(const cconv_conv_desc *d, cconv_status st)
{
    if (st == CCONV_OK || st == CCONV_ERR_NOMEM || st == CCONV_ERR_OVERFLOW) return;
    if (st == CCONV_ERR_UNSUPPORTED && d->algorithm != CCONV_ALGO_AUTO && d->algorithm != CCONV_ALGO_GEMM &&
        d->algorithm != CCONV_ALGO_REFERENCE)
        return;
    fprintf(stderr, "fuzz_desc: plan_create(%s) failed on a valid descriptor: %s\n",
            cconv_algorithm_name(d->algorithm), cconv_status_string(st));
    abort();
}

/* ------------------------------------------------------------ entry points */
enum { OP_PLAN, OP_ONESHOT, OP_WGRAD, OP_SEPARABLE, OP_FLATTENED, OP_SHUFFLED, OP_SHUFFLE, OP_COUNT };

static void run_forward(src_t *s, cconv_conv_desc *d, int op)
{
    cconv_conv_desc v = *d;
    const cconv_status vst = cconv_conv_output_size(&v);
    const int f64 = d->dtype == CCONV_FLOAT64;
    const int with_bias = u8(s) & 1;
    const int special_x = (int)(u8(s) % 8), special_w = (int)(u8(s) % 8);
    static uint8_t dummy[256]; /* weights/x/y for descriptors that must be rejected */
    if (vst != CCONV_OK) {
        cconv_plan *p = (cconv_plan *)0x1;
        const cconv_status st = op == OP_ONESHOT ? cconv_conv(d, dummy, dummy, NULL, dummy)
                                                 : cconv_plan_create(d, dummy, NULL, &p);
        if (st == CCONV_OK) {
            fprintf(stderr, "fuzz_desc: an invalid descriptor (%s) was accepted\n", cconv_status_string(vst));
            abort();
        }
        if (op != OP_ONESHOT && p != NULL) {
            fprintf(stderr, "fuzz_desc: failed plan_create left *plan set\n");
            abort();
        }
        return;
    }
    if (!weight_fits(&v)) return;
    const int small = small_conv(&v);
    buf_t w, b = {0}, x = {0};
    if (!buf_new(&w, w_elems(&v), f64, special_w < 4 ? special_w : 0)) return;
    if (with_bias && !buf_new(&b, v.out_channels, f64, 0)) { buf_free(&w); return; }
    if (op == OP_ONESHOT) {
        if (small && buf_new(&x, x_elems(&v), f64, special_x < 4 ? special_x : 0)) {
            void *y = malloc((size_t)(y_elems(&v) ? y_elems(&v) : 1) * (f64 ? 8 : 4));
            const cconv_status st = cconv_conv(d, x.v, w.v, b.v, y);
            expect_created(d, st);
            free(y);
            buf_free(&x);
        }
        buf_free(&w);
        buf_free(&b);
        return;
    }
    cconv_plan *p = NULL;
    cconv_status st = cconv_plan_create(d, w.v, b.v, &p);
    if (!small) {
        /* too big to run: planning alone (packing, workspace sizes) must still be sound */
        if (st != CCONV_OK && st != CCONV_ERR_NOMEM && st != CCONV_ERR_UNSUPPORTED && st != CCONV_ERR_OVERFLOW) abort();
        if (st == CCONV_OK) {
            (void)cconv_plan_weight_bytes(p);
            (void)cconv_plan_workspace_bytes(p);
            cconv_plan_destroy(p);
        }
        buf_free(&w);
        buf_free(&b);
        return;
    }
    expect_created(d, st);
    if (st != CCONV_OK) { buf_free(&w); buf_free(&b); return; }
    const cconv_conv_desc *pd = cconv_plan_desc(p);
    for (int a = 0; a < 3; a++)
        if (pd->out_size[a] != v.out_size[a]) abort();
    const cconv_algorithm algo = cconv_plan_algorithm(p);
    if (algo == CCONV_ALGO_AUTO) abort();
    (void)cconv_plan_weight_bytes(p);
    (void)cconv_plan_workspace_bytes(p);
    if (!buf_new(&x, x_elems(&v), f64, special_x < 4 ? special_x : 0)) {
        cconv_plan_destroy(p);
        buf_free(&w);
        buf_free(&b);
        return;
    }
    const int64_t ny = y_elems(&v);
    void *y = malloc((size_t)(ny ? ny : 1) * (f64 ? 8 : 4));
    double *ref = malloc((size_t)(ny ? ny : 1) * 8), *scale = malloc((size_t)(ny ? ny : 1) * 8);
    if (!y || !ref || !scale) abort();
    ref_conv(&v, x.d, w.d, b.d, ref);
    {
        double *ax = abs_copy(x.d, x.n), *aw = abs_copy(w.d, w.n), *ab = b.d ? abs_copy(b.d, b.n) : NULL;
        ref_conv(&v, ax, aw, ab, scale);
        free(ax);
        free(aw);
        free(ab);
    }
    const double terms = (double)(v.in_channels / v.groups) * (double)prod3(v.kernel);
    cconv_set_num_threads(1 + (int)(u8(s) & 1));
    st = cconv_plan_execute(p, x.v, y);
    if (st != CCONV_OK && st != CCONV_ERR_NOMEM) abort();
    current = &v;
    char note[128];
    snprintf(note, sizeof note, "(plan algorithm %s, special x %d w %d, threads %d)", cconv_algorithm_name(algo),
             special_x, special_w, cconv_get_num_threads());
    current_note = note;
    const int exact = algo != CCONV_ALGO_WINOGRAD;
    if (st == CCONV_OK) check_close("forward", y, f64, ref, scale, ny, terms, exact);

    if (op == OP_SHUFFLED && ny) {
        int64_t g = pick(s, 1, 4);
        if (u8(s) & 1) g = v.out_channels; /* a divisor that always fits */
        void *ys = malloc((size_t)ny * (f64 ? 8 : 4));
        if (!ys) abort();
        const cconv_status ss = cconv_plan_execute_shuffled(p, g, x.v, ys);
        const int ok_g = g >= 1 && v.out_channels % g == 0;
        if (!ok_g && ss == CCONV_OK) abort();
        if (ss == CCONV_OK && st == CCONV_OK) {
            /* output channel c*(C/g) + j at j*g + c */
            const int64_t C = v.out_channels, osp = prod3(v.out_size), cpg = C / g;
            for (int64_t n = 0; n < v.batch; n++)
                for (int64_t ci = 0; ci < C; ci++) {
                    const int64_t co = (ci % cpg) * g + ci / cpg;
                    for (int64_t o = 0; o < osp; o++) {
                        const double a = get(ys, f64, (n * C + co) * osp + o), e = get(y, f64, (n * C + ci) * osp + o);
                        if (!(a == e || (isnan(a) && isnan(e)))) fail("shuffled", (n * C + co) * osp + o, a, e, 0);
                    }
                }
        } else if (ss != CCONV_OK && ok_g && ss != CCONV_ERR_UNSUPPORTED && ss != CCONV_ERR_NOMEM) {
            abort();
        }
        free(ys);
    }
    if (op == OP_SEPARABLE && ny) {
        /* the 1x1 after the depthwise plan: pw (Co2, Cmid) */
        const int64_t Co2 = pick(s, 0, 6), Cm = v.out_channels, osp = prod3(v.out_size);
        if (Co2 < 1) {
            if (cconv_plan_execute_separable(p, w.v, NULL, Co2, x.v, y) == CCONV_OK) abort();
        } else if (Co2 <= 64) {
            buf_t pw, pb = {0};
            const int pbias = u8(s) & 1;
            if (!buf_new(&pw, Co2 * Cm, f64, 0)) abort();
            if (pbias && !buf_new(&pb, Co2, f64, 0)) abort();
            const int64_t n2 = v.batch * Co2 * osp;
            void *y2 = malloc((size_t)(n2 ? n2 : 1) * (f64 ? 8 : 4));
            double *r2 = malloc((size_t)(n2 ? n2 : 1) * 8), *s2 = malloc((size_t)(n2 ? n2 : 1) * 8);
            if (!y2 || !r2 || !s2) abort();
            const cconv_status ss = cconv_plan_execute_separable(p, pw.v, pb.v, Co2, x.v, y2);
            if (ss == CCONV_OK) {
                if (v.channels_last || v.in_channels != v.groups || algo != CCONV_ALGO_DEPTHWISE ||
                    v.in_size[0] != 1 || v.kernel[0] != 1 || v.out_size[0] != 1 || v.pad_before[0] != 0)
                    abort();
                ref_pointwise(v.batch, Cm, Co2, osp, ref, pw.d, pb.d, r2);
                double *apw = abs_copy(pw.d, pw.n), *apb = pb.d ? abs_copy(pb.d, pb.n) : NULL;
                ref_pointwise(v.batch, Cm, Co2, osp, scale, apw, apb, s2);
                free(apw);
                free(apb);
                check_close("separable", y2, f64, r2, s2, n2, terms * (double)Cm, 1);
            } else if (ss != CCONV_ERR_UNSUPPORTED && ss != CCONV_ERR_NOMEM) {
                abort();
            }
            free(y2);
            free(r2);
            free(s2);
            buf_free(&pw);
            buf_free(&pb);
        }
    }
    current = NULL;
    current_note = "";
    free(y);
    free(ref);
    free(scale);
    buf_free(&x);
    cconv_plan_destroy(p);
    buf_free(&w);
    buf_free(&b);
}

/* The input gradient of d (v: d validated) for grad_output go, against ref_input_grad. NaN and
 * Inf must land exactly where the definition puts them, except where the gradient's own
 * convolutions may run on Winograd (auto), whose transforms mix neighbouring pixels. */
static void run_input_grad(src_t *s, const cconv_conv_desc *d, const cconv_conv_desc *v, const buf_t *go)
{
    if (!weight_fits(v)) return;
    const int f64 = d->dtype == CCONV_FLOAT64;
    const int special = (int)(u8(s) % 8);
    buf_t w;
    if (!buf_new(&w, w_elems(v), f64, special < 4 ? special : 0)) return;
    const int64_t nx = x_elems(v);
    void *gx = malloc((size_t)(nx ? nx : 1) * (f64 ? 8 : 4));
    double *ref = malloc((size_t)(nx ? nx : 1) * 8), *scale = malloc((size_t)(nx ? nx : 1) * 8);
    if (!gx || !ref || !scale) abort();
    cconv_set_num_threads(1 + (int)(u8(s) & 1));
    const cconv_status st = cconv_conv_input_grad(d, go->v, w.v, gx);
    if (st == CCONV_OK) {
        current = v;
        current_note = special == 0 ? "(input_grad)" : "(input_grad, special in w)";
        ref_input_grad(v, go->d, w.d, ref);
        double *ag = abs_copy(go->d, go->n), *aw = abs_copy(w.d, w.n);
        ref_input_grad(v, ag, aw, scale);
        free(ag);
        free(aw);
        /* terms into one element: a tap's, times the padded copies folded onto it */
        double terms = (double)(v->transposed ? v->in_channels : v->out_channels) / (double)v->groups *
                       (double)prod3(v->kernel);
        for (int a = 0; a < 3; a++) terms *= (double)(1 + v->pad_before[a] + v->pad_after[a]);
        const int exact = d->algorithm == CCONV_ALGO_EXACT || d->algorithm == CCONV_ALGO_REFERENCE;
        check_close("input_grad", gx, f64, ref, scale, nx, terms, exact);
        current = NULL;
        current_note = "";
    } else if (st != CCONV_ERR_NOMEM) {
        abort();
    }
    free(gx);
    free(ref);
    free(scale);
    buf_free(&w);
}

static void run_weight_grad(src_t *s, cconv_conv_desc *d)
{
    cconv_conv_desc v = *d;
    static uint8_t dummy[256];
    const cconv_status vst = cconv_conv_output_size(&v);
    if (vst != CCONV_OK) {
        if (cconv_conv_weight_grad(d, dummy, dummy, dummy) == CCONV_OK) abort();
        if (cconv_conv_input_grad(d, dummy, dummy, dummy) == CCONV_OK) abort();
        return;
    }
    if (v.transposed) {
        if (!small_conv(&v)) return;
        /* (must decline before touching the buffers: give it real ones all the same) */
    }
    if (!small_conv(&v)) return;
    const int f64 = d->dtype == CCONV_FLOAT64;
    const int special = (int)(u8(s) % 8);
    buf_t x, go;
    if (!buf_new(&x, x_elems(&v), f64, special < 4 ? special : 0)) return;
    if (!buf_new(&go, y_elems(&v), f64, special >= 4 && special < 7 ? special - 3 : 0)) { buf_free(&x); return; }
    const int64_t nw = v.out_channels * (v.in_channels / v.groups) * prod3(v.kernel);
    void *gw = malloc((size_t)(nw ? nw : 1) * (f64 ? 8 : 4));
    double *ref = malloc((size_t)(nw ? nw : 1) * 8), *scale = malloc((size_t)(nw ? nw : 1) * 8);
    if (!gw || !ref || !scale) abort();
    cconv_set_num_threads(1 + (int)(u8(s) & 1));
    const cconv_status st = cconv_conv_weight_grad(d, x.v, go.v, gw);
    if (v.transposed) {
        if (st != CCONV_ERR_UNSUPPORTED) abort();
    } else if (st == CCONV_OK) {
        current = &v;
        current_note = special == 0 ? "" : special < 4 ? "(special in x)" : "(special in grad_output)";
        ref_weight_grad(&v, x.d, go.d, ref);
        double *ax = abs_copy(x.d, x.n), *ag = abs_copy(go.d, go.n);
        ref_weight_grad(&v, ax, ag, scale);
        free(ax);
        free(ag);
        check_close("weight_grad", gw, f64, ref, scale, nw, (double)v.batch * (double)prod3(v.out_size), 1);
        current = NULL;
        current_note = "";
    } else if (st != CCONV_ERR_NOMEM) {
        abort();
    }
    free(gw);
    free(ref);
    free(scale);
    buf_free(&x);
    run_input_grad(s, d, &v, &go);
    buf_free(&go);
}

static void run_flattened(src_t *s, cconv_conv_desc *d)
{
    /* mostly the shape the entry point takes: depthwise, 2-D, channels-first, zeros */
    if (u8(s) < 200) {
        d->groups = d->out_channels = d->in_channels;
        d->channels_last = 0;
        d->transposed = 0;
        d->in_size[0] = d->kernel[0] = d->stride[0] = d->dilation[0] = 1;
        d->pad_before[0] = d->pad_after[0] = 0;
        d->padding_mode = CCONV_PAD_ZEROS;
    }
    const int64_t Ci = pick(s, 0, 5);
    const int f64 = d->dtype == CCONV_FLOAT64;
    static uint8_t dummy[256];
    cconv_conv_desc v = *d;
    const cconv_status vst = cconv_conv_output_size(&v);
    if (Ci > 64) return; /* valid, but more than the harness allocates */
    if (vst != CCONV_OK || Ci < 1) {
        if (cconv_flattened_conv2d(d, dummy, NULL, Ci, dummy, dummy, dummy) == CCONV_OK) abort();
        return;
    }
    const int64_t C = v.in_channels;
    cconv_conv_desc big = v; /* the 1x1 step's cost and sizes bound too */
    big.in_channels = Ci > C ? Ci : C;
    big.out_channels = C;
    big.groups = 1;
    if (!small_conv(&v) || !small_conv(&big)) return;
    const int special = (int)(u8(s) % 8);
    buf_t x, cw, dw, b = {0};
    const int64_t hw = prod3(v.in_size);
    if (!buf_new(&x, v.batch * Ci * hw, f64, special < 4 ? special : 0)) return;
    if (!buf_new(&cw, C * Ci, f64, 0)) abort();
    if (!buf_new(&dw, w_elems(&v), f64, 0)) abort();
    if ((u8(s) & 1) && !buf_new(&b, C, f64, 0)) abort();
    const int64_t ny = y_elems(&v);
    void *y = malloc((size_t)(ny ? ny : 1) * (f64 ? 8 : 4));
    if (!y) abort();
    cconv_set_num_threads(1 + (int)(u8(s) & 1));
    const cconv_status st = cconv_flattened_conv2d(d, dw.v, b.v, Ci, cw.v, x.v, y);
    const int supported = v.groups == C && v.out_channels == C && !v.transposed && !v.channels_last &&
                          v.in_size[0] == 1 && v.kernel[0] == 1 && v.out_size[0] == 1 &&
                          v.padding_mode == CCONV_PAD_ZEROS;
    /* an algorithm other than auto/depthwise asks for another kernel for the depthwise step */
    const int any_algo = v.algorithm == CCONV_ALGO_AUTO || v.algorithm == CCONV_ALGO_DEPTHWISE;
    if (st == CCONV_OK) {
        if (!supported) abort();
        const int64_t nm = v.batch * C * hw;
        double *mid = malloc((size_t)(nm ? nm : 1) * 8), *amid = malloc((size_t)(nm ? nm : 1) * 8);
        double *ref = malloc((size_t)(ny ? ny : 1) * 8), *scale = malloc((size_t)(ny ? ny : 1) * 8);
        if (!mid || !amid || !ref || !scale) abort();
        ref_pointwise(v.batch, Ci, C, hw, x.d, cw.d, NULL, mid);
        ref_conv(&v, mid, dw.d, b.d, ref);
        double *ax = abs_copy(x.d, x.n), *acw = abs_copy(cw.d, cw.n), *adw = abs_copy(dw.d, dw.n);
        double *ab = b.d ? abs_copy(b.d, b.n) : NULL;
        ref_pointwise(v.batch, Ci, C, hw, ax, acw, NULL, amid);
        ref_conv(&v, amid, adw, ab, scale);
        check_close("flattened", y, f64, ref, scale, ny, (double)Ci * (double)prod3(v.kernel), 1);
        free(ax);
        free(acw);
        free(adw);
        free(ab);
        free(mid);
        free(amid);
        free(ref);
        free(scale);
    } else if (st == CCONV_ERR_UNSUPPORTED) {
        if (supported && any_algo) abort();
    } else if (st != CCONV_ERR_NOMEM) {
        abort();
    }
    free(y);
    buf_free(&x);
    buf_free(&cw);
    buf_free(&dw);
    buf_free(&b);
}

static void run_channel_shuffle(src_t *s)
{
    const unsigned flags = u8(s);
    const int dt_raw = (int)(flags & 3); /* 2, 3: out-of-range dtypes */
    const int cl = (flags >> 2) & 1;
    const int64_t N = pick(s, 0, 3), g = pick(s, 0, 4), C = (u8(s) & 1) ? wmul(g, pick(s, 0, 4)) : pick(s, -1, 12);
    const int64_t S = pick(s, 0, 20);
    const int f64 = dt_raw == 1;
    static uint8_t dummy[256];
    const double total = (double)N * (double)C * (double)S;
    const int valid = N >= 0 && C >= 0 && S >= 0 && g >= 1 && C % g == 0 && dt_raw <= 1;
    if (valid && total * 8 > BYTES_CAP) return; /* too big to allocate here */
    if (!valid) {
        const cconv_status st = cconv_channel_shuffle((cconv_dtype)dt_raw, cl, N, C, S, g, dummy, dummy);
        if (st == CCONV_OK) {
            fprintf(stderr, "fuzz_desc: channel_shuffle accepted dtype=%d N=%lld C=%lld S=%lld g=%lld\n", dt_raw,
                    (long long)N, (long long)C, (long long)S, (long long)g);
            abort();
        }
        return;
    }
    int64_t nc, elems;
    if (__builtin_mul_overflow(N, C, &nc) || __builtin_mul_overflow(nc, S, &elems)) {
        /* (N * C past int64 with S == 0: the library refuses the sizes, or it has nothing to do) */
        const cconv_status st = cconv_channel_shuffle((cconv_dtype)dt_raw, cl, N, C, S, g, dummy, dummy);
        if (st != CCONV_ERR_OVERFLOW && !(st == CCONV_OK && S == 0)) abort();
        return;
    }
    if (elems == 0) {
        if (cconv_channel_shuffle((cconv_dtype)dt_raw, cl, N, C, S, g, dummy, dummy) != CCONV_OK) abort();
        return;
    }
    buf_t x;
    if (!buf_new(&x, elems, f64, 0)) return;
    void *y = malloc((size_t)(x.n ? x.n : 1) * (f64 ? 8 : 4));
    if (!y) abort();
    cconv_set_num_threads(1 + (int)(u8(s) & 1));
    if (cconv_channel_shuffle((cconv_dtype)dt_raw, cl, N, C, S, g, x.v, y) != CCONV_OK) abort();
    const int64_t cpg = g ? C / g : 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ci = 0; ci < C; ci++) {
            const int64_t co = (ci % cpg) * g + ci / cpg;
            for (int64_t t = 0; t < S; t++) {
                const int64_t src = cl ? (n * S + t) * C + ci : (n * C + ci) * S + t;
                const int64_t dst = cl ? (n * S + t) * C + co : (n * C + co) * S + t;
                if (get(y, f64, dst) != x.d[src]) fail("channel_shuffle", dst, get(y, f64, dst), x.d[src], 0);
            }
        }
    free(y);
    buf_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    src_t s = {data, size};
    static const char *const isas[] = {"avx512", "avx2", "generic", "auto", "bogus"};
    const char *isa = isas[u8(&s) % 5];
    const cconv_status ist = cconv_set_isa(isa);
    if (!strcmp(isa, "bogus") ? ist == CCONV_OK : (ist == CCONV_OK) != (!strcmp(isa, "auto") || cconv_isa_available(isa)))
        abort();
    const int op = (int)(u8(&s) % OP_COUNT);
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)u8(&s);
    cconv_set_num_threads(1);
    if (op == OP_SHUFFLE) {
        run_channel_shuffle(&s);
    } else {
        cconv_conv_desc d;
        int dims;
        decode_desc(&s, &d, &dims);
        if (op == OP_SEPARABLE && u8(&s) < 200) { /* mostly the depthwise plan it takes */
            d.groups = d.in_channels;
            d.out_channels = wmul(d.in_channels, 1 + (int64_t)(u8(&s) % 3));
            d.algorithm = CCONV_ALGO_DEPTHWISE;
        }
        if (op == OP_WGRAD) run_weight_grad(&s, &d);
        else if (op == OP_FLATTENED) run_flattened(&s, &d);
        else run_forward(&s, &d, op);
    }
    cconv_set_isa(NULL);
    cconv_set_num_threads(0);
    return 0;
}
