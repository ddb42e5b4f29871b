/* Leak and failure-path driver for the C core (tests/leaks/run.sh builds and runs it).
 *
 * For every entry point of cconv.h and every algorithm, layout, dtype and dimensionality it:
 *   1. runs create -> execute -> destroy (or the one-shot call) a few times and checks the status;
 *   2. injects an allocation failure: linked with -Wl,--wrap=malloc,--wrap=calloc,
 *      --wrap=posix_memalign, it fails the n-th allocation the core makes, for n = 1, 2, ... until
 *      a run makes fewer than n allocations. Each such run must return CCONV_ERR_NOMEM (or succeed
 *      with output bitwise equal to the clean run's), never crash, and free what it allocated;
 *   3. drives the arguments the core rejects after it has allocated (an algorithm that refuses a
 *      descriptor the validation accepted, an allocation too large to succeed).
 * Leaks are the job of valgrind / LeakSanitizer around this program; it exits non-zero when a
 * status or an output is wrong. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cconv.h"

/* ---------------------------------------------------------------- allocation failure injection */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
int __real_posix_memalign(void **p, size_t a, size_t n);

static long fail_at;      /* fail the fail_at-th counted allocation; 0: never */
static long n_allocs;     /* counted allocations since arm() */
static int fired;

static int should_fail(void)
{
    if (fail_at <= 0) return 0;
    if (__atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED) != fail_at) return 0;
    __atomic_store_n(&fired, 1, __ATOMIC_RELAXED);
    return 1;
}
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (should_fail()) return 12; /* ENOMEM */
    return __real_posix_memalign(p, a, n);
}
static void arm(long n) { n_allocs = 0; fired = 0; fail_at = n; }

/* ---------------------------------------------------------------- scenarios */

enum { K_PLAN, K_CONV, K_GRAD, K_IGRAD, K_SEP, K_FLAT, K_SHUF, K_CSHUF };

typedef struct {
    const char *name;
    int kind;
    int dt, cl, algo, nd, tr, pm;       /* dtype, channels_last, algorithm, dims, transposed, padding */
    int64_t N, Ci, Co, G, in, k, s, dl, p, op;
    int64_t extra;                      /* SEP: Co2; FLAT: Ci of the 1x1; SHUF, CSHUF: groups */
    int nan_x, nan_w;                   /* put a NaN in x / in the weights */
    int bias;
    cconv_status expect;
} spec;

static cconv_conv_desc desc_of(const spec *s)
{
    cconv_conv_desc d;
    memset(&d, 0, sizeof d);
    d.dtype = s->dt ? CCONV_FLOAT64 : CCONV_FLOAT32;
    d.transposed = s->tr;
    d.channels_last = s->cl;
    d.padding_mode = (cconv_padding_mode)s->pm;
    d.algorithm = (cconv_algorithm)s->algo;
    d.batch = s->N;
    d.in_channels = s->Ci;
    d.out_channels = s->Co;
    d.groups = s->G ? s->G : 1;
    const int nd = s->nd ? s->nd : 2;
    for (int a = 0; a < 3; a++) {
        const int used = a >= 3 - nd;
        d.in_size[a] = used ? s->in : 1;
        d.kernel[a] = used ? s->k : 1;
        d.stride[a] = used && s->s ? s->s : 1;
        d.dilation[a] = used && s->dl ? s->dl : 1;
        d.pad_before[a] = d.pad_after[a] = used ? s->p : 0;
        d.output_padding[a] = used ? s->op : 0;
    }
    return d;
}

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

static void *xalloc(size_t bytes) /* the driver's own buffers: never counted, never failed */
{
    void *p = __real_malloc(bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "driver: out of memory\n"); exit(2); }
    return p;
}

static void fill(void *buf, int64_t n, int dt, unsigned seed, int nan)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        const double v = (double)((seed >> 8) & 0xffff) / 65536.0 - 0.5;
        if (dt) ((double *)buf)[i] = v; else ((float *)buf)[i] = (float)v;
    }
    if (nan && n > 0) {
        if (dt) ((double *)buf)[n / 2] = NAN; else ((float *)buf)[n / 2] = NAN;
    }
}

typedef struct {
    void *x, *w, *b, *y, *aux; /* aux: SEP pointwise weight, FLAT 1x1 weight */
    size_t ybytes;
} bufs;

/* Buffers for s (computed from the clean descriptor); y zeroed. */
static int make_bufs(const spec *s, bufs *b)
{
    memset(b, 0, sizeof *b);
    const size_t es = s->dt ? 8 : 4;
    if (s->kind == K_CSHUF) {
        const int64_t n = s->N * s->Ci * s->in;
        b->x = xalloc((size_t)n * es);
        fill(b->x, n, s->dt, 1, 0);
        b->ybytes = (size_t)n * es;
        b->y = xalloc(b->ybytes);
        return 1;
    }
    cconv_conv_desc d = desc_of(s);
    if (cconv_conv_output_size(&d) != CCONV_OK) return 0;
    const int64_t G = d.groups, ksz = prod3(d.kernel);
    const int64_t xin = s->kind == K_FLAT ? s->extra : s->Ci;
    const int64_t nx = d.batch * xin * prod3(d.in_size);
    int64_t co = d.out_channels;
    if (s->kind == K_SEP) co = s->extra;
    const int64_t ny = d.batch * co * prod3(d.out_size);
    const int64_t nw = (d.transposed ? d.in_channels * (d.out_channels / G)
                                     : d.out_channels * (d.in_channels / G)) * ksz;
    b->x = xalloc((size_t)nx * es);
    fill(b->x, nx, s->dt, 2, s->nan_x);
    b->w = xalloc((size_t)nw * es);
    fill(b->w, nw, s->dt, 3, s->nan_w);
    const int64_t nb = s->kind == K_SEP ? s->extra : d.out_channels;
    if (s->bias) { b->b = xalloc((size_t)nb * es); fill(b->b, nb, s->dt, 4, 0); }
    if (s->kind == K_SEP) { b->aux = xalloc((size_t)(s->extra * d.out_channels) * es); fill(b->aux, s->extra * d.out_channels, s->dt, 5, 0); }
    if (s->kind == K_FLAT) { b->aux = xalloc((size_t)(d.in_channels * s->extra) * es); fill(b->aux, d.in_channels * s->extra, s->dt, 5, 0); }
    /* GRAD, IGRAD: grad_output (y-sized) is aux, the result (grad_weight, grad_input) is y */
    if (s->kind == K_GRAD || s->kind == K_IGRAD) {
        b->aux = xalloc((size_t)ny * es);
        fill(b->aux, ny, s->dt, 6, 0);
        b->ybytes = (size_t)(s->kind == K_GRAD ? nw : nx) * es;
    } else {
        b->ybytes = (size_t)ny * es;
    }
    b->y = xalloc(b->ybytes);
    return 1;
}

static void free_bufs(bufs *b)
{
    free(b->x); free(b->w); free(b->b); free(b->y); free(b->aux);
}

/* One run of scenario s: its whole life cycle through the public API. */
static cconv_status run_once(const spec *s, bufs *b)
{
    memset(b->y, 0, b->ybytes);
    cconv_conv_desc d = desc_of(s);
    cconv_plan *p = NULL;
    cconv_status st;
    switch (s->kind) {
    case K_CONV:
        return cconv_conv(&d, b->x, b->w, b->b, b->y);
    case K_GRAD:
        return cconv_conv_weight_grad(&d, b->x, b->aux, b->y);
    case K_IGRAD:
        return cconv_conv_input_grad(&d, b->aux, b->w, b->y);
    case K_FLAT:
        return cconv_flattened_conv2d(&d, b->w, b->b, s->extra, b->aux, b->x, b->y);
    case K_CSHUF:
        return cconv_channel_shuffle(d.dtype, s->cl, s->N, s->Ci, s->in, s->extra, b->x, b->y);
    default:
        break;
    }
    st = cconv_plan_create(&d, b->w, s->kind == K_SEP ? NULL : b->b, &p);
    if (st != CCONV_OK) {
        if (p) { fprintf(stderr, "%s: failed create left a plan\n", s->name); exit(1); }
        return st;
    }
    /* the accessors must work on every plan */
    if (!cconv_plan_desc(p) || cconv_plan_weight_bytes(p) < 0 || cconv_plan_workspace_bytes(p) < 0 ||
        !cconv_algorithm_name(cconv_plan_algorithm(p))) {
        fprintf(stderr, "%s: bad plan accessors\n", s->name);
        exit(1);
    }
    for (int r = 0; r < 2 && st == CCONV_OK; r++) {
        if (s->kind == K_PLAN) st = cconv_plan_execute(p, b->x, b->y);
        else if (s->kind == K_SEP) st = cconv_plan_execute_separable(p, b->aux, b->b, s->extra, b->x, b->y);
        else st = cconv_plan_execute_shuffled(p, s->extra, b->x, b->y);
    }
    cconv_plan_destroy(p);
    return st;
}

#define F32 0
#define F64 1
#define CL 1
#define AUTO CCONV_ALGO_AUTO
#define GEMM CCONV_ALGO_GEMM
#define DW CCONV_ALGO_DEPTHWISE
#define REF CCONV_ALGO_REFERENCE
#define GRP CCONV_ALGO_GROUPED
#define WINO CCONV_ALGO_WINOGRAD
#define UNSUP CCONV_ERR_UNSUPPORTED

static const spec SPECS[] = {
    /* GEMM family, forward */
    {"gemm 2d f32 cf 3x3", K_PLAN, F32, 0, GEMM, 2, 0, 0, 2, 8, 16, 1, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"gemm 2d f64 cl 3x3 s2", K_PLAN, F64, CL, GEMM, 2, 0, 0, 2, 8, 16, 1, 9, 3, 2, 1, 1, 0, 0, 0, 0, 1},
    {"gemm 2d f32 cl no pad (in place)", K_PLAN, F32, CL, GEMM, 2, 0, 0, 2, 8, 16, 1, 9, 3, 1, 1, 0, 0, 0, 0, 0, 0},
    {"gemm pointwise cf f32", K_PLAN, F32, 0, GEMM, 2, 0, 0, 2, 16, 24, 1, 7, 1, 1, 1, 0, 0, 0, 0, 0, 1},
    {"gemm pointwise cf f64", K_PLAN, F64, 0, AUTO, 2, 0, 0, 1, 16, 40, 1, 5, 1, 1, 1, 0, 0, 0, 0, 0, 0},
    {"gemm stem cl 3 ch (folded taps)", K_PLAN, F32, CL, GEMM, 2, 0, 0, 1, 3, 16, 1, 12, 3, 2, 1, 1, 0, 0, 0, 0, 1},
    {"gemm groups packed per block", K_PLAN, F32, 0, GEMM, 2, 0, 0, 1, 64, 8, 4, 6, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"gemm shared band copy (split blocks)", K_PLAN, F32, 0, GEMM, 2, 0, 0, 1, 32, 256, 1, 6, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"gemm reflect", K_PLAN, F32, 0, GEMM, 2, 0, CCONV_PAD_REFLECT, 1, 4, 8, 1, 7, 3, 1, 1, 2, 0, 0, 0, 0, 0},
    {"gemm replicate f64 cl", K_PLAN, F64, CL, GEMM, 2, 0, CCONV_PAD_REPLICATE, 1, 4, 8, 1, 7, 3, 1, 2, 2, 0, 0, 0, 0, 0},
    {"gemm circular", K_PLAN, F32, 0, GEMM, 2, 0, CCONV_PAD_CIRCULAR, 1, 4, 8, 1, 7, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"gemm 1d", K_PLAN, F32, 0, GEMM, 1, 0, 0, 2, 5, 7, 1, 20, 5, 2, 1, 2, 0, 0, 0, 0, 1},
    {"gemm 3d f64", K_PLAN, F64, 0, GEMM, 3, 0, 0, 1, 4, 6, 1, 6, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"gemm 3d cl dilated", K_PLAN, F32, CL, AUTO, 3, 0, 0, 1, 4, 6, 2, 7, 3, 1, 2, 2, 0, 0, 0, 0, 0},
    {"auto 2d f32 (gemm)", K_PLAN, F32, 0, AUTO, 2, 0, 0, 1, 8, 8, 1, 8, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"batch 0", K_PLAN, F32, 0, AUTO, 2, 0, 0, 0, 8, 8, 1, 8, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"one-shot cconv_conv f32", K_CONV, F32, 0, AUTO, 2, 0, 0, 2, 8, 16, 1, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"one-shot cconv_conv f64 cl", K_CONV, F64, CL, AUTO, 2, 0, 0, 1, 8, 16, 2, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    /* transposed */
    {"transposed s2 (stride phases)", K_PLAN, F32, 0, GEMM, 2, 1, 0, 2, 8, 6, 1, 5, 3, 2, 1, 1, 1, 0, 0, 0, 1},
    {"transposed s3 d2 f64 cl", K_PLAN, F64, CL, AUTO, 2, 1, 0, 1, 4, 6, 2, 5, 3, 3, 2, 1, 2, 0, 0, 0, 0},
    {"transposed 1d", K_PLAN, F32, 0, AUTO, 1, 1, 0, 1, 3, 5, 1, 9, 4, 2, 1, 0, 0, 0, 0, 0, 1},
    {"transposed 3d", K_PLAN, F32, 0, AUTO, 3, 1, 0, 1, 3, 4, 1, 4, 3, 2, 1, 1, 1, 0, 0, 0, 0},
    {"transposed s1 as winograd", K_PLAN, F32, 0, WINO, 2, 1, 0, 1, 16, 16, 1, 10, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"transposed s1 as winograd f64 cl", K_PLAN, F64, CL, WINO, 2, 1, 0, 1, 16, 16, 1, 10, 3, 1, 1, 0, 0, 0, 0, 0, 0},
    /* depthwise and grouped */
    {"depthwise cf f32", K_PLAN, F32, 0, DW, 2, 0, 0, 2, 8, 8, 8, 11, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"depthwise cf x2 multiplier s2", K_PLAN, F32, 0, AUTO, 2, 0, 0, 1, 8, 16, 8, 11, 5, 2, 1, 2, 0, 0, 0, 0, 0},
    {"depthwise cl f64 dilated", K_PLAN, F64, CL, DW, 2, 0, 0, 1, 8, 8, 8, 11, 3, 1, 2, 2, 0, 0, 0, 0, 1},
    {"depthwise cl x2 multiplier", K_PLAN, F32, CL, DW, 2, 0, 0, 1, 8, 16, 8, 9, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"depthwise reflect", K_PLAN, F32, 0, DW, 2, 0, CCONV_PAD_REFLECT, 1, 4, 4, 4, 9, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"depthwise 1d", K_PLAN, F32, 0, DW, 1, 0, 0, 2, 4, 4, 4, 30, 7, 1, 1, 3, 0, 0, 0, 0, 0},
    {"depthwise 3d cl", K_PLAN, F32, CL, DW, 3, 0, 0, 1, 4, 4, 4, 6, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"grouped cf f32", K_PLAN, F32, 0, GRP, 2, 0, 0, 2, 16, 16, 4, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"grouped cl f64", K_PLAN, F64, CL, GRP, 2, 0, 0, 1, 16, 16, 4, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"grouped auto cf", K_PLAN, F32, 0, AUTO, 2, 0, 0, 1, 16, 32, 8, 9, 3, 2, 1, 1, 0, 0, 0, 0, 0},
    /* Winograd */
    {"winograd f32 cf", K_PLAN, F32, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 12, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"winograd f64 cl dilated", K_PLAN, F64, CL, WINO, 2, 0, 0, 1, 16, 20, 1, 12, 3, 1, 2, 2, 0, 0, 0, 0, 1},
    {"winograd 3d", K_PLAN, F32, 0, WINO, 3, 0, 0, 1, 16, 16, 1, 6, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"winograd reflect", K_PLAN, F32, 0, WINO, 2, 0, CCONV_PAD_REFLECT, 1, 16, 16, 1, 8, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    {"winograd NaN input (GEMM fallback)", K_PLAN, F32, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 8, 3, 1, 1, 1, 0, 0, 1, 0, 1},
    {"winograd NaN weight (always fallback)", K_PLAN, F64, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 8, 3, 1, 1, 1, 0, 0, 0, 1, 1},
    {"auto winograd", K_PLAN, F32, 0, AUTO, 2, 0, 0, 4, 32, 32, 1, 28, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    /* reference */
    {"reference 2d", K_PLAN, F32, 0, REF, 2, 0, 0, 1, 4, 6, 2, 6, 3, 1, 1, 1, 0, 0, 0, 0, 1},
    {"reference 3d transposed f64 cl", K_PLAN, F64, CL, REF, 3, 1, 0, 1, 4, 6, 2, 4, 3, 2, 1, 1, 1, 0, 0, 0, 1},
    {"reference 1d circular", K_CONV, F32, 0, REF, 1, 0, CCONV_PAD_CIRCULAR, 1, 3, 3, 1, 10, 3, 1, 1, 1, 0, 0, 0, 0, 0},
    /* weight gradient */
    {"grad 2d f32 cf", K_GRAD, F32, 0, AUTO, 2, 0, 0, 2, 8, 16, 1, 9, 3, 1, 1, 1},
    {"grad 2d f64 cl s2", K_GRAD, F64, CL, AUTO, 2, 0, 0, 2, 8, 16, 1, 9, 3, 2, 1, 1},
    {"grad cl 1x1 exchanged roles", K_GRAD, F32, CL, AUTO, 2, 0, 0, 1, 144, 24, 1, 6, 1, 1, 1, 0},
    {"grad depthwise cl", K_GRAD, F32, CL, AUTO, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1},
    {"grad depthwise cf", K_GRAD, F64, 0, AUTO, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1},
    {"grad grouped", K_GRAD, F32, 0, AUTO, 2, 0, 0, 1, 16, 16, 4, 9, 3, 1, 1, 1},
    {"grad reflect", K_GRAD, F32, 0, AUTO, 2, 0, CCONV_PAD_REFLECT, 1, 4, 8, 1, 7, 3, 1, 1, 1},
    {"grad 1d", K_GRAD, F32, 0, AUTO, 1, 0, 0, 2, 3, 5, 1, 20, 5, 2, 1, 2},
    {"grad 3d cl", K_GRAD, F64, CL, AUTO, 3, 0, 0, 1, 4, 6, 1, 5, 3, 1, 1, 1},
    {"grad batch 0", K_GRAD, F32, 0, AUTO, 2, 0, 0, 0, 4, 8, 1, 7, 3, 1, 1, 1},
    {"grad of transposed: unsupported", K_GRAD, F32, 0, AUTO, 2, 1, 0, 1, 4, 8, 1, 7, 3, 2, 1, 1, 0, 0, 0, 0, 0, UNSUP},
    /* input gradient: transposed GEMM, Winograd, depthwise (zero-inserted, per multiplier),
     * folded padding, a non-finite filter (transposed route), a transposed convolution's */
    {"igrad 2d f32 cf", K_IGRAD, F32, 0, AUTO, 2, 0, 0, 2, 8, 16, 1, 9, 3, 2, 1, 1},
    {"igrad winograd f64 cl", K_IGRAD, F64, CL, AUTO, 2, 0, 0, 1, 16, 16, 1, 12, 3, 1, 1, 1},
    {"igrad depthwise x2 s2 reflect", K_IGRAD, F32, 0, AUTO, 2, 0, CCONV_PAD_REFLECT, 1, 4, 8, 4, 9, 3, 2, 1, 2},
    {"igrad depthwise cl NaN weight", K_IGRAD, F32, CL, AUTO, 2, 0, 0, 1, 4, 4, 4, 9, 3, 1, 1, 1, 0, 0, 0, 1},
    {"igrad replicate 3d cl", K_IGRAD, F64, CL, AUTO, 3, 0, CCONV_PAD_REPLICATE, 1, 3, 4, 1, 5, 3, 1, 1, 2},
    {"igrad circular 1d exact", K_IGRAD, F32, 0, CCONV_ALGO_EXACT, 1, 0, CCONV_PAD_CIRCULAR, 2, 3, 5, 1, 20, 5, 2, 1, 2},
    {"igrad of transposed (crop)", K_IGRAD, F32, 0, AUTO, 2, 1, 0, 1, 4, 8, 2, 7, 3, 2, 3, 1, 2},
    {"igrad batch 0", K_IGRAD, F32, 0, AUTO, 2, 0, 0, 0, 4, 8, 1, 7, 3, 1, 1, 1},
    /* fused entry points */
    {"separable f32", K_SEP, F32, 0, DW, 2, 0, 0, 2, 8, 8, 8, 10, 3, 1, 1, 1, 0, 12, 0, 0, 1},
    {"separable f64 s2", K_SEP, F64, 0, DW, 2, 0, 0, 1, 8, 8, 8, 10, 3, 2, 1, 1, 0, 5, 0, 0, 0},
    {"flattened f32", K_FLAT, F32, 0, DW, 2, 0, 0, 2, 8, 8, 8, 12, 3, 1, 1, 1, 0, 6, 0, 0, 1},
    {"flattened f64 s2", K_FLAT, F64, 0, DW, 2, 0, 0, 3, 8, 8, 8, 40, 5, 2, 1, 2, 0, 4, 0, 0, 0},
    {"shuffled depthwise", K_SHUF, F32, 0, DW, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1, 0, 2, 0, 0, 1},
    {"shuffled grouped", K_SHUF, F32, 0, GRP, 2, 0, 0, 1, 16, 16, 4, 9, 3, 1, 1, 1, 0, 4, 0, 0, 0},
    {"shuffled gemm f64", K_SHUF, F64, 0, GEMM, 2, 0, 0, 1, 16, 16, 2, 9, 3, 1, 1, 1, 0, 2, 0, 0, 1},
    {"channel shuffle cf", K_CSHUF, F32, 0, 0, 0, 0, 0, 2, 12, 0, 0, 25, 0, 0, 0, 0, 0, 3},
    {"channel shuffle cl f64", K_CSHUF, F64, CL, 0, 0, 0, 0, 2, 16, 0, 0, 25, 0, 0, 0, 0, 0, 4},
    /* strides past the input: one output per dimension (plans clamp the stride) */
    {"depthwise stride 2^40", K_PLAN, F32, 0, DW, 2, 0, 0, 1, 4, 4, 4, 9, 3, (int64_t)1 << 40, 1, 1, 0, 0, 0, 0, 1},
    {"depthwise cl stride 2^62", K_PLAN, F64, CL, DW, 2, 0, 0, 1, 4, 8, 4, 9, 3, (int64_t)1 << 62, 1, 1},
    {"gemm stride 2^40", K_PLAN, F32, 0, GEMM, 3, 0, 0, 1, 4, 8, 1, 5, 3, (int64_t)1 << 40, 1, 1},
    {"grouped stride 2^40", K_PLAN, F32, 0, GRP, 2, 0, 0, 1, 8, 8, 4, 9, 3, (int64_t)1 << 40, 1, 1},
    {"grad stride 2^40", K_GRAD, F32, 0, AUTO, 2, 0, 0, 1, 4, 4, 4, 9, 3, (int64_t)1 << 40, 1, 1},
    {"flattened stride 2^40", K_FLAT, F32, 0, DW, 2, 0, 0, 1, 4, 4, 4, 9, 3, (int64_t)1 << 40, 1, 1, 0, 3},
    /* rejected after the plan was allocated */
    {"depthwise asked for cig 2", K_PLAN, F32, 0, DW, 2, 0, 0, 1, 8, 8, 4, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1, UNSUP},
    {"grouped asked for transposed", K_PLAN, F32, 0, GRP, 2, 1, 0, 1, 8, 8, 4, 9, 3, 2, 1, 1, 0, 0, 0, 0, 1, UNSUP},
    {"winograd asked for stride 2", K_PLAN, F32, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 9, 3, 2, 1, 1, 0, 0, 0, 0, 1, UNSUP},
    {"winograd asked for 5x5", K_PLAN, F32, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 9, 5, 1, 1, 1, 0, 0, 0, 0, 0, UNSUP},
    {"separable on a gemm plan", K_SEP, F32, 0, GEMM, 2, 0, 0, 1, 8, 8, 1, 9, 3, 1, 1, 1, 0, 4, 0, 0, 1, UNSUP},
    {"separable on channels-last", K_SEP, F32, CL, DW, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1, 0, 4, 0, 0, 0, UNSUP},
    {"shuffled on channels-last", K_SHUF, F32, CL, DW, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1, 0, 2, 0, 0, 0, UNSUP},
    {"shuffled on winograd", K_SHUF, F32, 0, WINO, 2, 0, 0, 1, 16, 16, 1, 9, 3, 1, 1, 1, 0, 2, 0, 0, 0, UNSUP},
    {"shuffled groups not dividing", K_SHUF, F32, 0, DW, 2, 0, 0, 1, 8, 8, 8, 9, 3, 1, 1, 1, 0, 3, 0, 0, 0, CCONV_ERR_INVALID},
    {"flattened with groups != C", K_FLAT, F32, 0, DW, 2, 0, 0, 1, 8, 8, 4, 9, 3, 1, 1, 1, 0, 4, 0, 0, 0, UNSUP},
    {"flattened reflect", K_FLAT, F32, 0, DW, 2, 0, CCONV_PAD_REFLECT, 1, 8, 8, 8, 9, 3, 1, 1, 1, 0, 4, 0, 0, 0, UNSUP},
};
#define NSPECS (sizeof SPECS / sizeof SPECS[0])

static int failures;
static void check(int ok, const char *what, const char *name, cconv_status st)
{
    if (ok) return;
    fprintf(stderr, "FAIL %s: %s (status %d: %s)\n", name, what, (int)st, cconv_status_string(st));
    failures++;
}

/* Allocations too large to succeed, made after others: each must fail cleanly. A dummy one-value
 * buffer stands in for the huge tensors: every one of these returns before reading them. */
static void huge_allocations(void)
{
    static double dummy[64];
    cconv_conv_desc d;
    spec s = {"huge", K_PLAN, F32, 0, GEMM, 2, 0, 0, 1, (int64_t)1 << 21, (int64_t)1 << 21, 1, 1, 1};
    cconv_plan *p = NULL;
    /* 1x1 pointwise: the weight copy is 2^42 floats (16 TiB) */
    d = desc_of(&s);
    cconv_status st = cconv_plan_create(&d, dummy, NULL, &p);
    check(st == CCONV_ERR_NOMEM && !p, "16 TiB pointwise weight copy must give NOMEM", "huge pw", st);
    /* 3x3 padded: the packed weights are 9 x 16 TiB, after the bias copy and the passes */
    s.k = 3; s.p = 1;
    d = desc_of(&s);
    static float bias[1 << 21];
    st = cconv_plan_create(&d, dummy, bias, &p);
    check(st == CCONV_ERR_NOMEM && !p, "144 TiB packed weights must give NOMEM", "huge gemm", st);
    /* transposed stride 2: per-phase passes allocated, then the packing fails */
    s.tr = 1; s.s = 2; s.op = 1; s.in = 2;
    d = desc_of(&s);
    st = cconv_plan_create(&d, dummy, NULL, &p);
    check(st == CCONV_ERR_NOMEM && !p, "huge transposed packing must give NOMEM", "huge transposed", st);
    /* Winograd explicitly: U and the weight copy */
    spec w = {"huge wino", K_PLAN, F32, 0, WINO, 2, 0, 0, 1, (int64_t)1 << 20, (int64_t)1 << 20, 1, 4, 3, 1, 1, 1};
    d = desc_of(&w);
    st = cconv_plan_create(&d, dummy, NULL, &p);
    check(st == CCONV_ERR_NOMEM && !p, "huge Winograd weights must give NOMEM", "huge wino", st);
    /* reference: the weight copy */
    w.algo = REF;
    d = desc_of(&w);
    st = cconv_plan_create(&d, dummy, NULL, &p);
    check(st == CCONV_ERR_NOMEM && !p, "huge reference weight copy must give NOMEM", "huge ref", st);
    /* separable: the pointwise pack of Co2 = 2^40 rows */
    spec sp = {"huge sep", K_PLAN, F32, 0, DW, 2, 0, 0, 1, 8, 8, 8, 4, 3, 1, 1, 1};
    d = desc_of(&sp);
    st = cconv_plan_create(&d, dummy, NULL, &p);
    check(st == CCONV_OK, "small depthwise plan", "huge sep", st);
    if (st == CCONV_OK) {
        st = cconv_plan_execute_separable(p, dummy, NULL, (int64_t)1 << 40, dummy, dummy);
        check(st == CCONV_ERR_NOMEM || st == CCONV_ERR_OVERFLOW, "2^40 pointwise rows must fail cleanly",
              "huge sep", st);
        st = cconv_plan_execute_separable(p, dummy, NULL, INT64_MAX, dummy, dummy);
        check(st == CCONV_ERR_OVERFLOW, "INT64_MAX pointwise rows must give OVERFLOW", "huge sep", st);
        cconv_plan_destroy(p);
    }
    /* flattened: a 1x1 of INT64_MAX input channels */
    sp.algo = AUTO;
    d = desc_of(&sp);
    st = cconv_flattened_conv2d(&d, dummy, NULL, INT64_MAX, dummy, dummy, dummy);
    check(st == CCONV_ERR_OVERFLOW, "INT64_MAX 1x1 input channels must give OVERFLOW", "huge flat", st);
}

/* Descriptors whose size products overflow int64: rejected before any allocation. */
static void overflow_descriptors(void)
{
    static double dummy[64];
    const int64_t big = INT64_MAX / 2;
    spec s = {"ovf", K_PLAN, F32, 0, AUTO, 2, 0, 0, 1, 1, 1, 1, 4, 1, 1, 1, 0};
    cconv_conv_desc d;
    cconv_plan *p = NULL;
    cconv_status st;
#define EXPECT_REJECT(what, mutate)                                                                \
    do {                                                                                           \
        d = desc_of(&s);                                                                           \
        mutate;                                                                                    \
        st = cconv_conv_output_size(&d);                                                           \
        check(st == CCONV_ERR_OVERFLOW || st == CCONV_ERR_INVALID, what, "overflow", st);          \
        st = cconv_plan_create(&d, dummy, NULL, &p);                                               \
        check((st == CCONV_ERR_OVERFLOW || st == CCONV_ERR_INVALID) && !p, what, "overflow create", st); \
        st = cconv_conv_weight_grad(&d, dummy, dummy, dummy);                                      \
        check(st == CCONV_ERR_OVERFLOW || st == CCONV_ERR_INVALID, what, "overflow grad", st);     \
        st = cconv_conv_input_grad(&d, dummy, dummy, dummy);                                       \
        check(st == CCONV_ERR_OVERFLOW || st == CCONV_ERR_INVALID, what, "overflow igrad", st);    \
    } while (0)
    EXPECT_REJECT("batch x channels", (d.batch = big, d.in_channels = 4));
    EXPECT_REJECT("input size product", (d.in_size[0] = d.in_size[1] = d.in_size[2] = (int64_t)1 << 22));
    EXPECT_REJECT("kernel x dilation", (d.kernel[2] = big, d.dilation[2] = 4));
    EXPECT_REJECT("input + padding", (d.pad_before[2] = INT64_MAX, d.pad_after[2] = 1));
    EXPECT_REJECT("weights", (d.in_channels = d.out_channels = (int64_t)1 << 40, d.in_size[2] = 1));
    EXPECT_REJECT("transposed output", (d.transposed = 1, d.in_size[2] = big, d.stride[2] = 4));
    EXPECT_REJECT("taps past 2^24", (d.kernel[0] = d.kernel[1] = d.kernel[2] = 300, d.in_size[0] = d.in_size[1] = d.in_size[2] = 300));
    EXPECT_REJECT("stride INT64_MAX padding INT64_MAX", (d.stride[2] = INT64_MAX, d.pad_before[2] = INT64_MAX));
    EXPECT_REJECT("negative padding", (d.pad_before[1] = -1));
    EXPECT_REJECT("zero stride", (d.stride[1] = 0));
#undef EXPECT_REJECT
    st = cconv_channel_shuffle(CCONV_FLOAT32, 0, big, 4, 4, 2, dummy, dummy);
    check(st == CCONV_ERR_OVERFLOW, "channel shuffle size product", "overflow", st);
    st = cconv_set_isa("no-such-isa");
    check(st == CCONV_ERR_UNSUPPORTED, "unknown ISA", "set_isa", st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--isas") == 0) { /* the ISAs this CPU runs, for run.sh */
        const char *all[] = {"avx512", "avx2", "generic"};
        for (int i = 0; i < 3; i++)
            if (cconv_isa_available(all[i])) printf("%s ", all[i]);
        printf("\n");
        return 0;
    }
    const int reps = argc > 1 ? atoi(argv[1]) : 3;
    const int inject = argc > 2 ? atoi(argv[2]) : 1;
    long injected = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("cconv %s, ISA %s, %d threads\n", CCONV_VERSION, cconv_get_isa(), cconv_get_num_threads());
    for (size_t i = 0; i < NSPECS; i++) {
        const spec *s = &SPECS[i];
        bufs b;
        if (!make_bufs(s, &b)) { check(0, "descriptor rejected", s->name, CCONV_ERR_INVALID); continue; }
        unsigned char *want = NULL;
        cconv_status st = CCONV_OK;
        for (int r = 0; r < reps; r++) {
            arm(0);
            st = run_once(s, &b);
            check(st == s->expect, "unexpected status", s->name, st);
        }
        if (st == CCONV_OK) {
            want = xalloc(b.ybytes);
            memcpy(want, b.y, b.ybytes);
        }
        long n = 1;
        for (; inject && n < 100000; n++) {
            arm(n);
            st = run_once(s, &b);
            const int hit = fired;
            arm(0);
            if (!hit) break;
            injected++;
            if (st == CCONV_OK && want) {
                check(memcmp(want, b.y, b.ybytes) == 0, "succeeded after a failed allocation, wrong output",
                      s->name, st);
            } else {
                check(st == CCONV_ERR_NOMEM || st == s->expect, "failed allocation not reported as NOMEM",
                      s->name, st);
            }
        }
        printf("%-40s %-14s %ld allocations\n", s->name, cconv_status_string(s->expect), n - 1);
        free(want);
        free_bufs(&b);
    }
    arm(0);
    huge_allocations();
    overflow_descriptors();
    printf("%zu scenarios, %ld injected allocation failures, %d check failures\n", NSPECS, injected, failures);
    return failures ? 1 : 0;
}
