/* Microkernel tester: every entry of an ISA's kernel table (cconv_isa_table, src/cconv/_c/internal.h)
 * called directly over its edges and checked against a plain loop.
 *
 * Built at test time into a shared library (tests/test_ukernels.py) whose table symbols resolve
 * against the loaded extension. One entry point, cconv_ukernel_test(isa, family, ...), runs one
 * family of kernels on both dtypes and returns the number of failed checks, the first few of them
 * described in the report.
 *
 * Checks:
 * - Values: the reference sums in long double; a kernel result passes when it is within
 *   (n + 2) * u * sum|terms| of it (n terms, u the dtype's unit roundoff): the bound of any
 *   summation order, with or without FMA, plus the final rounding. Inputs are +-[0.5, 1], so every
 *   product is at least 1/4 and a missing or repeated term exceeds the bound at the sizes used
 *   here (at most a few hundred terms). Copies (stream_copy, transpose, dw_expand) must be exact.
 * - Writes: outputs sit between PAD sentinel elements (a NaN with a payload no kernel computes),
 *   and every element a kernel must not write, inside or around the output, must keep it.
 * - Reads: every buffer is sized exactly as the contract says plus the slack it documents and
 *   mapped against a PROT_NONE page, after its end in one pass over the cases and before its
 *   start in a second; an access past either end faults, and the fault is caught (sigsetjmp) and
 *   reported as a failure.
 * - Input elements a kernel must not use hold NaN: the slack it may read but must ignore ("reads
 *   up to one vector past each run") and the gaps between the runs it reads, so that using one
 *   makes the result NaN.
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"

/* ------------------------------------------------------------------ the kernel table
 * The only place that names the tables; the family tests below read the fields they call. */

static const cconv_isa_table *isa_table(const char *name)
{
    if (!name || !cconv_isa_available(name)) return NULL;
    if (strcmp(name, "generic") == 0) return &cconv_isa_generic;
#ifdef CCONV_X86
    if (strcmp(name, "avx2") == 0) return &cconv_isa_avx2;
    if (strcmp(name, "avx512") == 0) return &cconv_isa_avx512;
#endif
    return NULL;
}

/* ------------------------------------------------------------------ context, report */

typedef struct {
    const cconv_isa_table *t;
    const char *isa;
    int dt;        /* 0 float32, 1 float64 */
    int es;        /* element size */
    int vl;        /* elements per vector of this ISA and dtype (the narrow tile's NR) */
    double u;      /* unit roundoff */
    char where[320];
    long checks, fails, bad_cases, ncases;
    int case_failed, case_msgs, nrep, faulted;
    char *rep;
    size_t replen, reppos;
} ctx;

enum { MAX_REPORTED = 8, MAX_PER_CASE = 2, PAD = 32 };

static void append(ctx *c, const char *fmt, ...)
{
    if (!c->rep || c->reppos + 1 >= c->replen) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(c->rep + c->reppos, c->replen - c->reppos, fmt, ap);
    va_end(ap);
    if (k > 0) c->reppos = c->reppos + (size_t)k < c->replen ? c->reppos + (size_t)k : c->replen - 1;
}

static void failf(ctx *c, const char *fmt, ...)
{
    c->fails++;
    if (!c->case_failed) {
        c->case_failed = 1;
        c->bad_cases++;
    }
    if (c->nrep >= MAX_REPORTED || c->case_msgs >= MAX_PER_CASE) return;
    c->nrep++;
    c->case_msgs++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    append(c, "[%s %s] %s: %s\n", c->isa, c->dt ? "float64" : "float32", c->where, msg);
}

/* ------------------------------------------------------------------ guarded buffers */

enum { MAX_BUFS = 96 };
static struct { void *base; size_t len; } maps[MAX_BUFS];
static int nmaps;
static void *heap[MAX_BUFS];
static int nheap;
static int guard_front; /* buffers start right after a guard page (else end right before one) */

static void release_all(void)
{
    for (int i = 0; i < nmaps; i++) munmap(maps[i].base, maps[i].len);
    for (int i = 0; i < nheap; i++) free(heap[i]);
    nmaps = nheap = 0;
}

/* bytes of memory against a PROT_NONE page; NULL (reported) if out of slots or memory. */
static void *galloc(ctx *c, size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
    if (nmaps == MAX_BUFS) {
        failf(c, "tester: more than %d buffers in one case", MAX_BUFS);
        return NULL;
    }
    char *base = mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        failf(c, "tester: mmap failed");
        return NULL;
    }
    maps[nmaps].base = base;
    maps[nmaps++].len = body + page;
    if (guard_front) {
        mprotect(base, page, PROT_NONE);
        return base + page;
    }
    mprotect(base + body, page, PROT_NONE);
    return base + body - bytes;
}

static void *scratch(ctx *c, size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || nheap == MAX_BUFS) {
        free(p);
        failf(c, "tester: out of memory");
        return NULL;
    }
    return heap[nheap++] = p;
}

/* ------------------------------------------------------------------ elements, random values */

static double ld(const ctx *c, const void *p, ptrdiff_t i)
{
    return c->dt ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void st(const ctx *c, void *p, ptrdiff_t i, double v)
{
    if (c->dt) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

static const uint32_t SENT32 = 0x7fcafe5au;
static const uint64_t SENT64 = 0x7ff8cafe5a5a5a5aull;

static void put_sentinel(const ctx *c, void *p, ptrdiff_t i)
{
    if (c->dt) memcpy((char *)p + i * 8, &SENT64, 8);
    else memcpy((char *)p + i * 4, &SENT32, 4);
}

static int is_sentinel(const ctx *c, const void *p, ptrdiff_t i)
{
    return c->dt ? memcmp((const char *)p + i * 8, &SENT64, 8) == 0 : memcmp((const char *)p + i * 4, &SENT32, 4) == 0;
}

static uint64_t rng_state;
static uint64_t rnd_u64(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}
static int64_t rnd_int(int64_t n) { return n > 0 ? (int64_t)(rnd_u64() % (uint64_t)n) : 0; }
/* +-[0.5, 1]: every product of two at least 1/4 */
static double rnd_val(void)
{
    const double m = 0.5 + 0.5 * (double)(rnd_u64() >> 11) / 9007199254740992.0;
    return rnd_u64() & 1 ? -m : m;
}

/* n elements of random values, guarded. */
static void *in_rand(ctx *c, ptrdiff_t n)
{
    void *p = galloc(c, (size_t)n * c->es);
    if (p)
        for (ptrdiff_t i = 0; i < n; i++) st(c, p, i, rnd_val());
    return p;
}

/* n elements, every one NaN (slack a kernel may read but must ignore), guarded. */
static void *in_nan(ctx *c, ptrdiff_t n)
{
    void *p = galloc(c, (size_t)n * c->es);
    if (p)
        for (ptrdiff_t i = 0; i < n; i++) st(c, p, i, NAN);
    return p;
}

/* ------------------------------------------------------------------ outputs and their check */

typedef struct {
    char *p;   /* element 0; PAD sentinels before and after */
    ptrdiff_t n;
    double *want, *tol;
    unsigned char *wr; /* 1: the kernel writes this element */
    ptrdiff_t pitch;   /* for messages: element i is (i / pitch, i % pitch) */
    const char *name;
} out_t;

static int out_init(ctx *c, out_t *o, const char *name, ptrdiff_t n, ptrdiff_t pitch)
{
    char *b = galloc(c, (size_t)(n + 2 * PAD) * c->es);
    o->want = scratch(c, (size_t)(n ? n : 1) * sizeof(double));
    o->tol = scratch(c, (size_t)(n ? n : 1) * sizeof(double));
    o->wr = scratch(c, (size_t)(n ? n : 1));
    if (!b || !o->want || !o->tol || !o->wr) return 0;
    for (ptrdiff_t i = 0; i < n + 2 * PAD; i++) put_sentinel(c, b, i);
    o->p = b + PAD * c->es;
    o->n = n;
    o->pitch = pitch;
    o->name = name;
    return 1;
}

/* A long-double sum with the sum of its terms' magnitudes. */
typedef struct {
    long double s, a;
    int n;
} rsum;
static void radd(rsum *r, long double x)
{
    r->s += x;
    r->a += fabsl(x);
    r->n++;
}

static void expect_sum(const ctx *c, out_t *o, ptrdiff_t i, const rsum *r)
{
    o->wr[i] = 1;
    o->want[i] = (double)r->s;
    o->tol[i] = (r->n + 2) * c->u * (double)r->a;
}

static void expect_exact(out_t *o, ptrdiff_t i, double v)
{
    o->wr[i] = 1;
    o->want[i] = v;
    o->tol[i] = 0;
}

/* v exactly, bit for bit in the dtype (NaN's sign and payload, -0.0), where expect_exact's
 * |diff| <= 0 cannot see them. */
static void expect_bits(out_t *o, ptrdiff_t i, double v)
{
    o->wr[i] = 1;
    o->want[i] = v;
    o->tol[i] = -1;
}

static int same_bits(const ctx *c, const void *p, ptrdiff_t i, double want)
{
    char w[8];
    st(c, w, 0, want);
    return memcmp((const char *)p + i * c->es, w, (size_t)c->es) == 0;
}

static void check_out(ctx *c, const out_t *o)
{
    for (ptrdiff_t i = -PAD; i < o->n + PAD; i++) {
        char at[64] = "";
        if (o->pitch > 0 && i >= 0) snprintf(at, sizeof at, " (%td, %td)", i / o->pitch, i % o->pitch);
        c->checks++;
        if (i >= 0 && i < o->n && o->wr[i]) {
            const double got = ld(c, o->p, i);
            if (o->tol[i] < 0) {
                if (!same_bits(c, o->p, i, o->want[i]))
                    failf(c, "%s[%td]%s: got %.9g, want %.9g bit for bit", o->name, i, at, got, o->want[i]);
            } else if (!(fabs(got - o->want[i]) <= o->tol[i]))
                failf(c, "%s[%td]%s: got %.9g, want %.9g (|diff| %.3g > tol %.3g)", o->name, i, at, got,
                      o->want[i], fabs(got - o->want[i]), o->tol[i]);
        } else if (!is_sentinel(c, o->p, i)) {
            failf(c, "%s[%td]%s: written (%.9g), but %s", o->name, i, at, ld(c, o->p, i),
                  i < 0 || i >= o->n ? "outside the output" : "not an element the kernel should write");
        }
    }
}

/* ------------------------------------------------------------------ cases, faults */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t in_call, fault_sig;
static struct sigaction old_segv, old_bus; /* the handlers before ours (Python's faulthandler) */

static void on_fault(int sig)
{
    fault_sig = sig;
    if (in_call) siglongjmp(fault_jmp, 1);
    /* a fault in the tester itself: put the previous handler back; the access faults again */
    sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
}

/* Runs one kernel call; a fault (a guard page touched) is a failure and ends the case's checks. */
#define CALL(c, stmt)                                                                              \
    do {                                                                                           \
        in_call = 1;                                                                               \
        if (sigsetjmp(fault_jmp, 1) == 0) {                                                        \
            stmt;                                                                                  \
            in_call = 0;                                                                           \
        } else {                                                                                   \
            in_call = 0;                                                                           \
            (c)->faulted = 1;                                                                      \
            failf((c), "signal %d in the kernel: it touched memory %s the buffers' documented extent", \
                  (int)fault_sig, guard_front ? "before" : "past");                                          \
        }                                                                                          \
    } while (0)

/* Starts a case: frees the last one's buffers, names this one for the messages. */
static void begin(ctx *c, const char *fmt, ...)
{
    release_all();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->where, sizeof c->where, fmt, ap);
    va_end(ap);
    c->case_failed = c->case_msgs = c->faulted = 0;
    c->ncases++;
}

/* The distinct values of v[0 .. n) that are >= lo, in order (sizes around vector boundaries). */
static int sizes(int64_t *v, int n, int64_t lo)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dup = v[i] < lo;
        for (int j = 0; j < k && !dup; j++) dup = v[j] == v[i];
        if (!dup) v[k++] = v[i];
    }
    return k;
}

/* nx elements, NaN except the runs a kernel reads, [off[t] + o*step, + n) for t < nrun, o < nrow
 * (random there): a result computed from anything else comes out NaN. */
static void *runs_input(ctx *c, ptrdiff_t nx, const ptrdiff_t *off, int nrun, int64_t nrow, ptrdiff_t step,
                        int64_t n)
{
    char *x = in_nan(c, nx);
    if (x)
        for (int t = 0; t < nrun; t++)
            for (int64_t o = 0; o < nrow; o++)
                for (int64_t j = 0; j < n; j++) st(c, x, off[t] + o * step + j, rnd_val());
    return x;
}

/* ------------------------------------------------------------------ GEMM register tiles */

static const cconv_tile_kernel *gemm_tile(const ctx *c, int which, const char **name)
{
    static const char *names[4] = {"wide", "mid", "narrow", "cl"};
    *name = names[which];
    return which == 0 ? &c->t->wide[c->dt] : which == 1 ? &c->t->mid[c->dt] : which == 2 ? &c->t->narrow[c->dt]
                                                                                         : &c->t->cl[c->dt];
}

static int tile_shape_ok(ctx *c, const char *name, int mr, int nr, int mr_max)
{
    if (mr >= 1 && mr <= mr_max && nr >= c->vl && nr % c->vl == 0 && (int64_t)mr * nr <= CCONV_TILE_MAX) return 1;
    begin(c, "%s tile", name);
    failf(c, "shape %dx%d: MR must be 1..%d, NR a multiple of the vector (%d), MR*NR <= %d", mr, nr, mr_max,
          c->vl, CCONV_TILE_MAX);
    return 0;
}

static void gemm_case(ctx *c, const cconv_tile_kernel *k, const char *name, int64_t kc, int ntaps, int accumulate,
                      int repeat)
{
    const int MR = k->mr, NR = k->nr;
    begin(c, "%s.fn (%dx%d): kc=%lld ntaps=%d accumulate=%d%s", name, MR, NR, (long long)kc, ntaps, accumulate,
          repeat == 1 ? " last pixels repeated" : repeat == 2 ? " pixels evenly spaced" : "");
    ptrdiff_t *pix = galloc(c, MR * sizeof *pix), *taps = galloc(c, ntaps * sizeof *taps);
    if (!pix || !taps) return;
    ptrdiff_t maxpix = 0, maxtap = 0;
    for (int t = 0; t < ntaps; t++) maxtap = taps[t] = t ? taps[t - 1] + 1 + rnd_int(kc + 5) : rnd_int(3);
    const ptrdiff_t spacing = kc + rnd_int(kc + 7); /* repeat 2: the strided-rows path */
    for (int i = 0; i < MR; i++) {
        pix[i] = repeat == 1 && i >= MR / 2 && i > 0 ? pix[i - 1]
               : repeat == 2                         ? 2 + i * spacing
                                                     : (i ? pix[i - 1] : 0) + 1 + rnd_int(2 * kc + 7);
        if (pix[i] > maxpix) maxpix = pix[i];
    }
    ptrdiff_t *off = scratch(c, MR * ntaps * sizeof *off);
    if (!off) return;
    for (int i = 0; i < MR; i++)
        for (int t = 0; t < ntaps; t++) off[i * ntaps + t] = pix[i] + taps[t];
    /* NaN between the runs the tile reads */
    void *x = runs_input(c, maxpix + maxtap + kc, off, MR * ntaps, 1, 0, kc), *w = in_rand(c, ntaps * kc * NR);
    out_t acc;
    if (!x || !w || !out_init(c, &acc, "acc", MR * NR, NR)) return;
    for (int i = 0; i < MR * NR; i++) st(c, acc.p, i, accumulate ? rnd_val() : NAN); /* NaN: must be ignored */
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            rsum r = {0};
            if (accumulate) radd(&r, ld(c, acc.p, i * NR + j));
            for (int t = 0; t < ntaps; t++)
                for (int64_t q = 0; q < kc; q++)
                    radd(&r, (long double)ld(c, x, pix[i] + taps[t] + q) * ld(c, w, (t * kc + q) * NR + j));
            expect_sum(c, &acc, i * NR + j, &r);
        }
    CALL(c, k->fn(x, pix, taps, ntaps, kc, w, acc.p, accumulate));
    if (!c->faulted) check_out(c, &acc);
}

static void test_gemm(ctx *c)
{
    const int64_t line = 64 / c->es, vl = c->vl;
    int64_t kcs[] = {1, 2, vl - 1, vl, vl + 1, line - 1, line, line + 1, 2 * line + 3};
    const int nk = sizes(kcs, 9, 1);
    static const int ntapss[] = {1, 2, 3, 9};
    for (int which = 0; which < 4; which++) {
        const char *name;
        const cconv_tile_kernel *k = gemm_tile(c, which, &name);
        if (!tile_shape_ok(c, name, k->mr, k->nr, CCONV_MR_MAX)) continue;
        for (int a = 0; a < nk; a++)
            for (int b = 0; b < 4; b++)
                for (int acc = 0; acc < 2; acc++) gemm_case(c, k, name, kcs[a], ntapss[b], acc, (a + b + acc) % 3);
    }
}

/* store_cf and store_cl for every m <= MR and ncol <= NR. */
static void store_case(ctx *c, const cconv_tile_kernel *k, const char *name, int64_t m, int64_t ncol, int cl,
                       int64_t gap)
{
    const int MR = k->mr, NR = k->nr;
    begin(c, "%s.store_%s (%dx%d): m=%lld ncol=%lld gap=%lld", name, cl ? "cl" : "cf", MR, NR, (long long)m,
          (long long)ncol, (long long)gap);
    void *acc = in_rand(c, MR * NR), *bias = in_rand(c, ncol);
    if (!acc || !bias) return;
    out_t y;
    if (!cl) {
        const ptrdiff_t ys = m + gap;
        if (!out_init(c, &y, "y", (ncol - 1) * ys + m, ys)) return;
        for (int64_t j = 0; j < ncol; j++)
            for (int64_t i = 0; i < m; i++) {
                rsum r = {0};
                radd(&r, ld(c, acc, i * NR + j));
                radd(&r, ld(c, bias, j));
                expect_sum(c, &y, j * ys + i, &r);
            }
        CALL(c, k->store_cf(acc, bias, m, ncol, y.p, ys));
    } else {
        /* rows in a shuffled order, gap elements apart */
        int64_t *rows = galloc(c, m * sizeof *rows);
        if (!rows) return;
        for (int64_t i = 0; i < m; i++) rows[i] = i;
        for (int64_t i = m - 1; i > 0; i--) {
            const int64_t j = rnd_int(i + 1), s = rows[i];
            rows[i] = rows[j];
            rows[j] = s;
        }
        for (int64_t i = 0; i < m; i++) rows[i] *= ncol + gap;
        if (!out_init(c, &y, "y", m * (ncol + gap) - gap, ncol + gap)) return;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < ncol; j++) {
                rsum r = {0};
                radd(&r, ld(c, acc, i * NR + j));
                radd(&r, ld(c, bias, j));
                expect_sum(c, &y, rows[i] + j, &r);
            }
        CALL(c, k->store_cl(acc, bias, m, ncol, y.p, rows));
    }
    if (!c->faulted) check_out(c, &y);
}

static void test_gemm_store(ctx *c)
{
    for (int which = 0; which < 4; which++) {
        const char *name;
        const cconv_tile_kernel *k = gemm_tile(c, which, &name);
        if (!tile_shape_ok(c, name, k->mr, k->nr, CCONV_MR_MAX)) continue;
        for (int64_t m = 1; m <= k->mr; m++)
            for (int64_t ncol = 1; ncol <= k->nr; ncol++)
                for (int cl = 0; cl < 2; cl++) store_case(c, k, name, m, ncol, cl, (m + ncol + cl) % 3);
    }
}

/* ------------------------------------------------------------------ depthwise, channels-first */

/* kw 0: taps at random offsets; else a kw x kw filter (ntaps = kw*kw) over rows in_step apart. */
static void dw_cf_case(ctx *c, cconv_dw_cf_fn fn, int ntaps, int kw, int64_t n, int64_t nout, int contiguous,
                       int with_bias)
{
    const ptrdiff_t in_step = kw ? n + kw - 1 + rnd_int(3) : n + rnd_int(c->vl + 3);
    const ptrdiff_t y_step = contiguous ? n : n + 1 + rnd_int(3);
    begin(c, "dw_cf: ntaps=%d %s n=%lld nout=%lld in_step=%td y_step=%td bias=%s", ntaps,
          kw ? "square filter, stride 1" : "scattered taps", (long long)n,
          (long long)nout, in_step, y_step, with_bias ? "yes" : "NULL");
    ptrdiff_t *off = scratch(c, ntaps * sizeof *off), maxoff = 0;
    const void **taps = galloc(c, ntaps * sizeof *taps);
    if (!off || !taps) return;
    for (int t = 0; t < ntaps; t++) {
        off[t] = kw ? (t / kw) * in_step + t % kw : rnd_int(3 * n + 9);
        if (off[t] > maxoff) maxoff = off[t];
    }
    /* the documented slack: one vector past each run */
    char *x = runs_input(c, maxoff + (nout - 1) * in_step + n + c->vl, off, ntaps, nout, in_step, n);
    void *w = in_rand(c, ntaps), *bias = with_bias ? in_rand(c, 1) : NULL;
    out_t y;
    if (!x || !w || (with_bias && !bias) || !out_init(c, &y, "y", (nout - 1) * y_step + n, y_step)) return;
    for (int t = 0; t < ntaps; t++) taps[t] = x + off[t] * c->es;
    for (int64_t o = 0; o < nout; o++)
        for (int64_t j = 0; j < n; j++) {
            rsum r = {0};
            if (bias) radd(&r, ld(c, bias, 0));
            for (int t = 0; t < ntaps; t++) radd(&r, (long double)ld(c, w, t) * ld(c, x, off[t] + o * in_step + j));
            expect_sum(c, &y, o * y_step + j, &r);
        }
    CALL(c, fn((const void *const *)taps, ntaps, w, bias, n, nout, in_step, y_step, y.p));
    if (!c->faulted) check_out(c, &y);
}

static void dw_cf_sizes(const ctx *c, int64_t *ns, int *nn)
{
    const int64_t vl = c->vl, v[] = {1, 3, vl / 2 - 1, vl - 1, vl, vl + 1, 2 * vl, 2 * vl + 1, 4 * vl + 1, 5 * vl + 3};
    memcpy(ns, v, sizeof v);
    *nn = sizes(ns, 10, 1);
}

static void test_dw_cf(ctx *c)
{
    const cconv_dw_cf_fn fn = c->t->dw_cf[c->dt];
    int64_t ns[10];
    int nn, i = 0;
    dw_cf_sizes(c, ns, &nn);
    static const int64_t nouts[] = {1, 2, 5};
    for (int ntaps = 1; ntaps <= 49; ntaps++) /* every filter size up to 7x7 (kd*kh*kw taps) */
        for (int a = 0; a < nn; a++)
            for (int b = 0; b < 3; b++, i++) dw_cf_case(c, fn, ntaps, 0, ns[a], nouts[b], i & 1, i % 3 != 0);
    for (int k = 5; k <= 7; k += 2) /* square filters, stride 1 (3x3: dw_cf_3x3) */
        for (int a = 0; a < nn; a++)
            for (int64_t nout = 1; nout <= 9; nout++)
                for (int contiguous = 0; contiguous < 2; contiguous++, i++)
                    dw_cf_case(c, fn, k * k, k, ns[a], nout, contiguous, i % 3 != 0);
}

/* 3x3 stride 1: the taps dw_cf runs through its own 3x3 kernel (4 rows at a time, nout >= 4). */
static void test_dw_cf_3x3(ctx *c)
{
    const cconv_dw_cf_fn fn = c->t->dw_cf[c->dt];
    int64_t ns[10];
    int nn, i = 0;
    dw_cf_sizes(c, ns, &nn);
    for (int a = 0; a < nn; a++)
        for (int64_t nout = 1; nout <= 13; nout++)
            for (int contiguous = 0; contiguous < 2; contiguous++, i++)
                dw_cf_case(c, fn, 9, 3, ns[a], nout, contiguous, i % 3 != 0);
}

/* K x K stride S over an H x W plane, zero padding pt/pb rows, pl/pr columns; rows oh0 .. + nout. */
static void dw_direct_case(ctx *c, cconv_dw_direct_fn fn, int K, int S, int64_t H, int64_t W, int64_t pt,
                           int64_t pb, int64_t pl, int64_t pr, int band, int wide_pitch, int with_bias)
{
    const int64_t OH = (H + pt + pb - K) / S + 1, OW = (W + pl + pr - K) / S + 1;
    if (H + pt + pb < K || W + pl + pr < K) return;
    const int64_t oh0 = band && OH > 2 ? 1 : 0, nout = band && OH > 2 ? OH - 2 : OH;
    const ptrdiff_t y_step = OW + (wide_pitch ? 3 : 0);
    begin(c, "dw_direct: K=%d S=%d H=%lld W=%lld pad t/b/l/r=%lld/%lld/%lld/%lld rows %lld..%lld of %lld OW=%lld "
          "y_step=%td bias=%s", K, S, (long long)H, (long long)W, (long long)pt, (long long)pb, (long long)pl,
          (long long)pr, (long long)oh0, (long long)(oh0 + nout - 1), (long long)OH, (long long)OW, y_step,
          with_bias ? "yes" : "NULL");
    void *x = in_rand(c, H * W), *w = in_rand(c, K * K), *bias = with_bias ? in_rand(c, 1) : NULL;
    void *zrow = galloc(c, W * c->es);
    out_t y;
    if (!x || !w || !zrow || (with_bias && !bias) || !out_init(c, &y, "y", (nout - 1) * y_step + OW, y_step))
        return;
    for (int64_t i = 0; i < W; i++) st(c, zrow, i, 0);
    for (int64_t o = 0; o < nout; o++)
        for (int64_t ow = 0; ow < OW; ow++) {
            rsum r = {0};
            if (bias) radd(&r, ld(c, bias, 0));
            for (int a = 0; a < K; a++)
                for (int b = 0; b < K; b++) {
                    const int64_t ih = (oh0 + o) * S + a - pt, iw = ow * S + b - pl;
                    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                        radd(&r, (long double)ld(c, w, a * K + b) * ld(c, x, ih * W + iw));
                }
            expect_sum(c, &y, o * y_step + ow, &r);
        }
    CALL(c, fn(x, H, W, pt, pl, K, S, w, bias, oh0, nout, OW, y.p, y_step, zrow));
    if (!c->faulted) check_out(c, &y);
}

static void test_dw_direct(ctx *c)
{
    const cconv_dw_direct_fn fn = c->t->dw_direct[c->dt];
    if (!fn) return; /* NULL: the ISA has no masked loads; the caller reports the skip */
    const int64_t vl = c->vl;
    int64_t Ws[] = {1, 2, vl - 1, vl + 1, 2 * vl + 1, 3 * vl + 2, 5 * vl + 3};
    const int nw = sizes(Ws, 7, 1);
    static const int64_t Hs[] = {1, 4, 6, 11};
    int i = 0;
    for (int K = 3; K <= 7; K += 2)
        for (int S = 1; S <= 2; S++)
            for (int a = 0; a < nw; a++)
                for (int b = 0; b < 4; b++)
                    for (int pad = 0; pad < 4; pad++, i++) {
                        /* none, "same", all before, uneven */
                        const int64_t lo[4] = {0, K / 2, K - 1, 1}, hi[4] = {0, K / 2, 0, K - 1};
                        dw_direct_case(c, fn, K, S, Hs[b], Ws[a], lo[pad], hi[pad], lo[(pad + b) % 4],
                                       hi[(pad + b) % 4], i & 1, (i >> 1) & 1, i % 3 != 0);
                    }
}

/* ------------------------------------------------------------------ depthwise, channels-last */

/* Channels-last row kernel: nrows input rows (row zrow, if >= 0, is the zero row), kw tap columns at
 * dilation dl, stride s, cig channel vectors a pixel; pl columns of padding on the left, its
 * columns zero (edges 1) or reflected (edges 2), none (edges 0). Each row is its own buffer. */
static void dw_cl_case(ctx *c, cconv_dw_cl_fn fn, int nrows, int kw, int cig, int s, int dl, int edges,
                       int zrow, int64_t n, int64_t C, int with_bias, int64_t shift, int nout)
{
    begin(c, "dw_cl: nrows=%d kw=%d cig=%d stride=%d dilation=%d edges=%d zero row=%d n=%lld C=%lld bias=%s "
          "shift=%lld nout=%d", nrows, kw, cig, s, dl, edges, zrow, (long long)n, (long long)C,
          with_bias ? "yes" : "NULL", (long long)shift, nout);
    const int64_t span = (int64_t)(kw - 1) * dl + 1, pl = edges ? span / 2 : 0;
    int64_t W = (n - 1) * s + span - 2 * pl;
    if (W < 1) W = 1;
    const int64_t pix = cig * C, ntaps = (int64_t)nrows * kw * cig;
    const void *rows[9];
    char *zero = galloc(c, W * pix * c->es);
    int64_t *cols = galloc(c, n * kw * sizeof *cols);
    void *w = in_rand(c, ntaps * C), *bias = with_bias ? in_rand(c, C) : NULL;
    out_t y;
    if (!zero || !cols || !w || (with_bias && !bias) || !out_init(c, &y, "y", nout * n * C, C)) return;
    for (int64_t e = 0; e < W * pix; e++) st(c, zero, e, 0);
    for (int r = 0; r < nrows + nout - 1; r++)
        if (!(rows[r] = r == zrow ? zero : in_rand(c, W * pix))) return;
    for (int64_t p = 0; p < n; p++)
        for (int k = 0; k < kw; k++) {
            int64_t q = p * s + (int64_t)k * dl - pl;
            if (edges == 2) q = q < 0 ? -q : q >= W ? 2 * (W - 1) - q : q;
            cols[p * kw + k] = q >= 0 && q < W ? q * pix : -1;
        }
    int64_t hi = W - span + pl < 0 ? 0 : (W - span + pl) / s + 1;
    const int64_t lo = (pl + s - 1) / s;
    if (hi < lo) hi = lo;
    /* shift: the weights and bias rotated by shift channels (ukernels.h) */
    void *wrot = shift ? galloc(c, ntaps * C * c->es) : NULL, *brot = shift && bias ? galloc(c, C * c->es) : NULL;
    if (shift && (!wrot || (bias && !brot))) return;
    for (int64_t t = 0; shift && t < ntaps; t++)
        for (int64_t e = 0; e < C; e++) st(c, wrot, t * C + e, ld(c, w, t * C + (e + shift) % C));
    for (int64_t e = 0; brot && e < C; e++) st(c, brot, e, ld(c, bias, (e + shift) % C));
    const cconv_dw_cl_geom g = {.nrows = nrows, .kw = kw, .cig = cig, .lo = lo, .hi = hi, .col0 = -pl * pix,
                                .pstep = s * pix, .cstep = dl * pix, .cols = cols, .zero = zero,
                                .shift = shift, .wrot = wrot, .brot = brot, .nout = nout, .ystep = n * C};
    for (int q = 0; q < nout; q++) /* output row q reads rows[q ..] */
        for (int64_t p = 0; p < n; p++)
            for (int64_t e = 0; e < C; e++) {
                rsum r = {0};
                if (bias) radd(&r, ld(c, bias, e));
                for (int64_t t = 0; t < ntaps; t++) {
                    const int64_t a = t / (kw * cig), k = t / cig % kw, ci = t % cig, o = cols[p * kw + k];
                    radd(&r, (long double)ld(c, w, t * C + e) * (o < 0 ? 0.0 : ld(c, rows[a + q], o + ci * C + e)));
                }
                expect_sum(c, &y, q * n * C + p * C + e, &r);
            }
    CALL(c, fn(rows, &g, n, C, w, bias, y.p));
    if (!c->faulted) check_out(c, &y);
}

static void test_dw_cl(ctx *c)
{
    const cconv_dw_cl_fn fn = c->t->dw_cl[c->dt];
    const int64_t vl = c->vl;
    int64_t Cs[] = {1, vl - 1, vl, vl + 1, 2 * vl, 2 * vl + 1, 3 * vl + 3};
    const int nc = sizes(Cs, 7, 1);
    static const int64_t ns[] = {1, 3, 4, 5, 8, 9, 13};
    /* nrows, kw, cig, stride, dilation: the 3x3 kernels at strides 1 and 2, others generic */
    static const int geo[][5] = {{3, 3, 1, 1, 1}, {3, 3, 1, 2, 1}, {1, 1, 1, 1, 1}, {5, 5, 1, 1, 1},
                                 {3, 3, 2, 1, 1}, {3, 3, 1, 1, 2}, {7, 7, 1, 2, 1}, {2, 3, 3, 2, 1}};
    int i = 0;
    for (int a = 0; a < nc; a++)
        for (int b = 0; b < 7; b++)
            for (int k = 0; k < 8; k++)
                for (int edges = 0; edges < 3; edges++, i++)
                    dw_cl_case(c, fn, geo[k][0], geo[k][1], geo[k][2], geo[k][3], geo[k][4], edges,
                               i % 4 == 3 ? geo[k][0] / 2 : -1, ns[b], Cs[a], i & 1, 0, 1 + (i % 5 == 2));
    /* stride-1 K x K rows run shifted (C a multiple of the vector length; shifts past a vector too) */
    static const int64_t sn[] = {5, 6, 9, 13, 20};
    static const int sgeo[][2] = {{3, 3}, {5, 5}, {7, 7}, {1, 3}, {2, 3}}; /* nrows, kw */
    for (int64_t m = 1; m <= 3; m++)
        for (int b = 0; b < 5; b++)
            for (int k = 0; k < 5; k++)
                for (int edges = 0; edges < 3; edges++, i++) {
                    const int64_t C = m * vl, sh[3] = {1, C - 1, 12 % C ? 12 % C : 1};
                    dw_cl_case(c, fn, sgeo[k][0], sgeo[k][1], 1, 1, 1, edges, i % 4 == 3 ? sgeo[k][0] / 2 : -1,
                               sn[b], C, i & 1, sh[i % 3], 1 + (i % 2));
                }
}

static void dw_expand_case(ctx *c, cconv_dw_expand_fn fn, int64_t npix, int64_t C, int64_t pix, int pattern)
{
    static const char *pat[3] = {"random lanes", "lanes within one vector's span", "lanes spanning more than a vector"};
    begin(c, "dw_expand: npix=%lld C=%lld pix=%lld %s", (long long)npix, (long long)C, (long long)pix, pat[pattern]);
    void *src = in_rand(c, npix * C);
    int32_t *lane = galloc(c, pix * sizeof *lane);
    out_t dst;
    if (!src || !lane || !out_init(c, &dst, "dst", npix * pix, pix)) return;
    for (int64_t e = 0; e < pix; e++) {
        if (pattern == 1) { /* each vector's lanes inside [base, base + VL) of the pixel */
            const int64_t v = e / c->vl, base = C > c->vl ? (v * 7) % (C - c->vl + 1) : 0;
            lane[e] = (int32_t)(base + rnd_int(C < c->vl ? C : c->vl));
        } else if (pattern == 2) {
            lane[e] = (int32_t)(e % c->vl == 0 ? C - 1 : rnd_int(C));
        } else {
            lane[e] = (int32_t)rnd_int(C);
        }
    }
    for (int64_t q = 0; q < npix; q++)
        for (int64_t e = 0; e < pix; e++) expect_exact(&dst, q * pix + e, ld(c, src, q * C + lane[e]));
    CALL(c, fn(dst.p, src, npix, C, lane, pix));
    if (!c->faulted) check_out(c, &dst);
}

static void test_dw_expand(ctx *c)
{
    const cconv_dw_expand_fn fn = c->t->dw_expand[c->dt];
    const int64_t vl = c->vl;
    int64_t Cs[] = {1, 3, vl - 1, vl, vl + 1, 2 * vl, 3 * vl + 1};
    int64_t pixs[] = {1, vl - 1, vl, vl + 1, 2 * vl, 3 * vl + 2};
    const int nc = sizes(Cs, 7, 1), np = sizes(pixs, 6, 1);
    static const int64_t npixs[] = {1, 2, 5};
    for (int a = 0; a < nc; a++)
        for (int b = 0; b < np; b++)
            for (int q = 0; q < 3; q++)
                for (int pattern = 0; pattern < 3; pattern++) dw_expand_case(c, fn, npixs[q], Cs[a], pixs[b], pattern);
}

/* ------------------------------------------------------------------ channels-first direct tile */

/* A tile at grid position q0 of rows `pitch` apart, columns < n stored, positions < qend. */
static void cfd_case(ctx *c, const cconv_cfd_kernel *tk, int nv, int64_t m, int64_t q0, int64_t qend,
                     int64_t pitch, int64_t n, int64_t K, int ntaps, int64_t dil, int reversed)
{
    const int64_t MR = tk->mr, NR = nv * c->vl;
    const ptrdiff_t xs = NR + (ntaps - 1) * dil + 3, ys = n + 5, rows = (q0 + NR - 1) / pitch + 1;
    begin(c, "cfd: mr=%lld nr=%lld m=%lld q0=%lld qend=%lld pitch=%lld n=%lld K=%lld taps=%d dil=%lld rows=%s",
          (long long)MR, (long long)NR, (long long)m, (long long)q0, (long long)qend, (long long)pitch, (long long)n,
          (long long)K, ntaps, (long long)dil, reversed ? "reversed" : "in order");
    ptrdiff_t *taps = scratch(c, (size_t)ntaps * sizeof *taps);
    int64_t *yrows = scratch(c, (size_t)MR * sizeof *yrows);
    char *x = in_nan(c, (K - 1) * xs + (ntaps - 1) * dil + NR);
    void *w = in_rand(c, ntaps * K * MR), *bias = in_rand(c, MR);
    out_t y;
    if (!taps || !yrows || !x || !w || !bias || !out_init(c, &y, "y", m * rows * ys, ys)) return;
    for (int t = 0; t < ntaps; t++) taps[t] = t * dil;
    for (int64_t i = 0; i < MR; i++) yrows[i] = (reversed ? m - 1 - i : i) * rows * ys;
    /* random where a stored output reads, NaN elsewhere: a stored output computed from anything
     * else comes out NaN */
    for (int64_t j = 0; j < NR; j++)
        if ((q0 + j) % pitch < n && q0 + j < qend)
            for (int t = 0; t < ntaps; t++)
                for (int64_t k = 0; k < K; k++) st(c, x, k * xs + taps[t] + j, rnd_val());
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < NR; j++) {
            const int64_t q = q0 + j;
            if (q % pitch >= n || q >= qend) continue;
            rsum r = {0};
            radd(&r, ld(c, bias, i));
            for (int t = 0; t < ntaps; t++)
                for (int64_t k = 0; k < K; k++)
                    radd(&r, (long double)ld(c, w, (t * K + k) * MR + i) * ld(c, x, k * xs + taps[t] + j));
            expect_sum(c, &y, yrows[i] + q / pitch * ys + q % pitch, &r);
        }
    const cconv_cfd_out o = {q0, qend, pitch, n, ys, nv};
    CALL(c, tk->fn(x, xs, taps, ntaps, K, w, bias, m, y.p, yrows, &o));
    if (!c->faulted) check_out(c, &y);
}

/* Tiles of nv vectors at the grid's start, across a row's end and cut short by qend, on one long
 * row (1-D), rows wider and narrower than the tile, and one column. */
static void cfd_cases(ctx *c, const cconv_cfd_kernel *tk, int nv)
{
    const int64_t MR = tk->mr, vl = c->vl, NR = nv * vl;
    int64_t ms[] = {1, MR - 1, MR};
    const int nm = sizes(ms, 3, 1);
    const int64_t geo[][2] = {{4 * NR, 0}, {NR, 2}, {NR + vl + 1, 4}, {vl - 1, 2}, {vl + 1, 6}, {3, 2}, {1, 1}};
    static const int64_t Ks[] = {1, 3, 17};
    static const int taps[][2] = {{1, 1}, {3, 1}, {2, 5}, {9, 1}};
    int i = 0;
    for (int a = 0; a < nm; a++)
        for (int g = 0; g < 7; g++) {
            const int64_t n = geo[g][0], pitch = n + geo[g][1]; /* (n, pitch - n) */
            const int64_t q0s[] = {0, pitch - 1, pitch + 3};
            for (int q = 0; q < 3; q++, i++) {
                const int64_t qend = i % 3 == 2 ? q0s[q] + NR / 2 + 1 : q0s[q] + 4 * NR;
                cfd_case(c, tk, nv, ms[a], q0s[q], qend, pitch, n, Ks[i % 3], taps[i % 4][0], taps[i % 4][1], i & 1);
            }
        }
}

static void test_cfd(ctx *c)
{
    const cconv_cfd_kernel *tk = &c->t->cfd[c->dt];
    for (int nv = 1; nv <= tk->nv; nv++) cfd_cases(c, tk, nv);
}

/* ------------------------------------------------------------------ pointwise band */

static void pw_case(ctx *c, cconv_pw_band_fn fn, int mr, int64_t K, int64_t np, int tight, int with_bias)
{
    const ptrdiff_t xs = tight ? np : np + c->vl + 1, ys = tight ? np : np + 2;
    begin(c, "pw_band: mr=%d K=%lld np=%lld xs=%td ys=%td bias=%s", mr, (long long)K, (long long)np, xs, ys,
          with_bias ? "yes" : "NULL");
    ptrdiff_t *off = scratch(c, K * sizeof *off);
    if (!off) return;
    for (int64_t k = 0; k < K; k++) off[k] = k * xs;
    /* rows readable one vector past np: NaN there */
    char *x = runs_input(c, (K - 1) * xs + np + c->vl, off, (int)K, 1, 0, np);
    void *w = in_rand(c, (K - 1) * CCONV_PW_MR + mr), *bias = with_bias ? in_rand(c, mr) : NULL;
    out_t y;
    if (!x || !w || (with_bias && !bias) || !out_init(c, &y, "y", (mr - 1) * ys + np, ys)) return;
    for (int i = 0; i < mr; i++)
        for (int64_t p = 0; p < np; p++) {
            rsum r = {0};
            if (bias) radd(&r, ld(c, bias, i));
            for (int64_t k = 0; k < K; k++) radd(&r, (long double)ld(c, w, k * CCONV_PW_MR + i) * ld(c, x, k * xs + p));
            expect_sum(c, &y, i * ys + p, &r);
        }
    CALL(c, fn(x, xs, K, w, mr, bias, np, y.p, ys));
    if (!c->faulted) check_out(c, &y);
}

static void test_pw_band(ctx *c)
{
    const cconv_pw_band_fn fn = c->t->pw_band[c->dt];
    const int64_t vl = c->vl;
    int64_t nps[] = {1, vl - 1, vl, vl + 1, 2 * vl, 2 * vl + 1, 4 * vl - 1, 4 * vl, 4 * vl + 1, 9 * vl + 3};
    const int nn = sizes(nps, 10, 1);
    static const int64_t Ks[] = {1, 2, 5, 33};
    int i = 0;
    for (int mr = 1; mr <= CCONV_PW_MR; mr++)
        for (int a = 0; a < nn; a++)
            for (int b = 0; b < 4; b++, i++) pw_case(c, fn, mr, Ks[b], nps[a], i & 1, i % 3 != 0);
}

/* Channels-first 1x1 rows (pw_cf): np pixels read in place (the buffer ends at the last row's np-th
 * pixel, so a read past it faults), nt more from a second buffer whose padding to whole vectors
 * holds NaN (it must not reach y); rows stored through pointers (reversed order, gaps between). */
static void pw_cf_case(ctx *c, cconv_pw_cf_fn fn, int mr, int64_t K, int64_t np, int64_t nt, int with_bias,
                       ptrdiff_t pf)
{
    const ptrdiff_t xs = np + 3, xts = (nt + c->vl - 1) / c->vl * c->vl + c->vl, ys = np + nt + 5;
    begin(c, "pw_cf: mr=%d K=%lld np=%lld nt=%lld bias=%s pf=%td", mr, (long long)K, (long long)np, (long long)nt,
          with_bias ? "yes" : "NULL", pf);
    ptrdiff_t *off = scratch(c, K * sizeof *off), *offt = scratch(c, K * sizeof *offt);
    if (!off || !offt) return;
    for (int64_t k = 0; k < K; k++) off[k] = k * xs, offt[k] = k * xts;
    char *x = runs_input(c, (K - 1) * xs + (np ? np : 1), off, (int)K, 1, 0, np);
    char *xt = runs_input(c, (K - 1) * xts + (nt + c->vl - 1) / c->vl * c->vl + 1, offt, (int)K, 1, 0, nt);
    void *w = in_rand(c, (K - 1) * CCONV_PW_MR + mr), *bias = with_bias ? in_rand(c, mr) : NULL;
    void **yr = scratch(c, CCONV_PW_MR * sizeof *yr);
    out_t y;
    if (!x || !xt || !w || !yr || (with_bias && !bias) || !out_init(c, &y, "y", mr * ys, ys)) return;
    for (int i = 0; i < mr; i++) {
        const int row = mr - 1 - i;
        yr[i] = (char *)y.p + (size_t)(row * ys) * c->es;
        for (int64_t p = 0; p < np + nt; p++) {
            rsum r = {0};
            if (bias) radd(&r, ld(c, bias, i));
            for (int64_t k = 0; k < K; k++)
                radd(&r, (long double)ld(c, w, k * CCONV_PW_MR + i) * (p < np ? ld(c, x, k * xs + p) : ld(c, xt, k * xts + p - np)));
            expect_sum(c, &y, row * ys + p, &r);
        }
    }
    CALL(c, fn(x, xs, np, xt, xts, nt, K, w, mr, bias, yr, pf));
    if (!c->faulted) check_out(c, &y);
}

static void test_pw_cf(ctx *c)
{
    const cconv_pw_cf_fn fn = c->t->pw_cf[c->dt];
    const int64_t vl = c->vl;
    const int64_t nps[] = {0, vl, 2 * vl, 4 * vl, 5 * vl, 9 * vl}, nts[] = {0, 1, vl - 1, vl + 1, 3 * vl, 4 * vl - 1};
    static const int64_t Ks[] = {1, 2, 7, 33};
    int i = 0;
    for (int mr = 1; mr <= CCONV_PW_MR; mr++)
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++, i++)
                if (nps[a] + nts[b] > 0) pw_cf_case(c, fn, mr, Ks[i % 4], nps[a], nts[b], i % 3 != 0, i % 5 ? 0 : 4 * vl);
}

/* ------------------------------------------------------------------ copies */

static void copy_case(ctx *c, cconv_stream_copy_fn fn, int64_t n, int64_t sh)
{
    begin(c, "stream_copy: n=%lld dst offset %lld elements", (long long)n, (long long)sh);
    void *src = in_rand(c, n);
    out_t dst;
    if (!src || !out_init(c, &dst, "dst", n + c->vl, 0)) return;
    for (int64_t i = 0; i < n; i++) expect_exact(&dst, sh + i, ld(c, src, i));
    CALL(c, fn(dst.p + sh * c->es, src, n));
    if (!c->faulted) check_out(c, &dst);
}

static void transpose_case(ctx *c, cconv_transpose_fn fn, int64_t rows, int64_t cols, ptrdiff_t ss, ptrdiff_t ds)
{
    begin(c, "transpose: rows=%lld cols=%lld ss=%td ds=%td", (long long)rows, (long long)cols, ss, ds);
    void *src = in_rand(c, (rows - 1) * ss + cols);
    out_t dst;
    if (!src || !out_init(c, &dst, "dst", (cols - 1) * ds + rows, ds)) return;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) expect_exact(&dst, j * ds + i, ld(c, src, i * ss + j));
    CALL(c, fn(src, ss, rows, cols, dst.p, ds));
    if (!c->faulted) check_out(c, &dst);
}

/* rows of n at source pitch n + ss_extra to destination pitch n + ds_extra, destination shifted by sh */
static void copy_rows_case(ctx *c, cconv_copy_rows_fn fn, int64_t rows, int64_t n, int64_t ss_extra, int64_t ds_extra,
                           int64_t sh)
{
    begin(c, "copy_rows: rows=%lld n=%lld src pitch +%lld dst pitch +%lld shift=%lld", (long long)rows, (long long)n,
          (long long)ss_extra, (long long)ds_extra, (long long)sh);
    const ptrdiff_t ss = n + ss_extra, ds = n + ds_extra;
    /* the source ends at its last row's n-th element (guarded): nothing past it may be read */
    void *src = in_rand(c, rows ? (rows - 1) * ss + n : 0);
    out_t y;
    if (!src || !out_init(c, &y, "dst", sh + (rows ? (rows - 1) * ds + n : 0), ds)) return;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) expect_exact(&y, sh + r * ds + j, ld(c, src, r * ss + j));
    CALL(c, fn((char *)y.p + sh * c->es, ds, src, ss, rows, n));
    if (!c->faulted) check_out(c, &y);
}

static void test_copy(ctx *c)
{
    const cconv_stream_copy_fn copy = c->t->stream_copy[c->dt];
    const cconv_transpose_fn transpose = c->t->transpose[c->dt];
    const int64_t vl = c->vl;
    for (int64_t n = 1; n <= 2 * vl + 1; n++)
        for (int64_t rows = 1; rows <= 3; rows += 2)
            copy_rows_case(c, c->t->copy_rows[c->dt], rows, n, n % 3, 2 + n % 2, n % vl);
    for (int64_t n = 0; n <= 3 * vl + 1; n++)
        for (int64_t sh = 0; sh < vl; sh++) copy_case(c, copy, n, sh); /* dst misaligned by sh elements */
    for (int64_t n = 1000; n <= 4099; n += n == 1000 ? 1 : 3098)
        for (int64_t sh = 0; sh < vl; sh += vl >= 4 ? vl / 4 : 1) copy_case(c, copy, n, sh);
    static const int64_t dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 23};
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++)
            for (int s = 0; s < 2; s++)
                transpose_case(c, transpose, dims[a], dims[b], dims[b] + (s ? 3 : 0), dims[a] + (s ? 2 : 0));
}

/* ------------------------------------------------------------------ Winograd F(4x4, 3x3) */

static const double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
static const double AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/* The matrices above against the definition: A^T [(G g G^T) .* (B^T d B)] A is the 4x4 valid
 * correlation of a 6x6 d with a 3x3 g (so a typo here cannot pass for a kernel bug). */
static void wino_self_check(ctx *c)
{
    begin(c, "tester's own Winograd matrices");
    long double d[6][6], g[3][3], m[6][6];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) d[i][j] = rnd_val();
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = rnd_val();
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            long double su = 0, sv = 0;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) su += (long double)G[i][a] * g[a][b] * G[j][b];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) sv += (long double)BT[i][a] * d[a][b] * BT[j][b];
            m[i][j] = su * sv;
        }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            long double y = 0, want = 0;
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) y += (long double)AT[i][a] * m[a][b] * AT[j][b];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) want += g[a][b] * d[i + a][j + b];
            c->checks++;
            if (!(fabsl(y - want) <= 1e-12L)) failf(c, "y[%d][%d] = %.12Lg, the correlation %.12Lg", i, j, y, want);
        }
}

static void wino_in_case(ctx *c, cconv_wino_in_fn fn, int64_t C, ptrdiff_t cs, ptrdiff_t rs, ptrdiff_t ds)
{
    begin(c, "wino_in: C=%lld rs=%td cs=%td ds=%td", (long long)C, rs, cs, ds);
    void *src = in_rand(c, 5 * rs + 5 * cs + C);
    out_t dst;
    if (!src || !out_init(c, &dst, "dst", 35 * ds + C, ds)) return;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            for (int64_t e = 0; e < C; e++) {
                rsum r = {0};
                for (int a = 0; a < 6; a++)
                    for (int b = 0; b < 6; b++)
                        if (BT[i][a] * BT[j][b] != 0)
                            radd(&r, (long double)BT[i][a] * BT[j][b] * ld(c, src, a * rs + b * cs + e));
                expect_sum(c, &dst, (6 * i + j) * ds + e, &r);
            }
    CALL(c, fn(src, rs, cs, C, dst.p, ds));
    if (!c->faulted) check_out(c, &dst);
}

/* bad: 0 finite data, 1 one Inf, 2 one NaN (then only the flag is checked) */
static void wino_out_case(ctx *c, cconv_wino_out_fn fn, int64_t n, ptrdiff_t ms, int bad)
{
    static const char *what[3] = {"finite", "one Inf", "one NaN"};
    begin(c, "wino_out: n=%lld ms=%td %s input", (long long)n, ms, what[bad]);
    char *m = in_rand(c, 35 * ms + n);
    out_t out;
    if (!m || !out_init(c, &out, "out", 16 * n, n)) return;
    if (bad) st(c, m, rnd_int(36) * ms + (rnd_int(2) ? n - 1 : rnd_int(n)), bad == 1 ? (rnd_int(2) ? INFINITY : -INFINITY) : NAN);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int64_t e = 0; e < n; e++) {
                rsum r = {0};
                for (int a = 0; a < 6; a++)
                    for (int b = 0; b < 6; b++)
                        if (AT[i][a] * AT[j][b] != 0)
                            radd(&r, (long double)AT[i][a] * AT[j][b] * ld(c, m, (6 * a + b) * ms + e));
                expect_sum(c, &out, (4 * i + j) * n + e, &r);
            }
    volatile int flag = 0;
    CALL(c, flag = fn(m, ms, n, out.p));
    if (c->faulted) return;
    c->checks++;
    if ((flag != 0) != (bad != 0))
        failf(c, "returned %d: %s", flag, bad ? "an Inf or NaN output not flagged" : "finite outputs flagged");
    if (!bad) check_out(c, &out);
}

static void wino_filter_case(ctx *c, cconv_wino_filter_fn fn, int64_t n, int64_t nr, ptrdiff_t gs, ptrdiff_t us)
{
    begin(c, "wino_filter: n=%lld nr=%lld gs=%td us=%td", (long long)n, (long long)nr, gs, us);
    void *g = in_rand(c, (n - 1) * gs + 9);
    out_t u;
    if (!g || !out_init(c, &u, "u", 35 * us + nr, us)) return;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            for (int64_t f = 0; f < nr; f++) {
                rsum r = {0};
                if (f < n)
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++)
                            if (G[i][a] * G[j][b] != 0)
                                radd(&r, (long double)G[i][a] * G[j][b] * ld(c, g, f * gs + 3 * a + b));
                const ptrdiff_t at = (6 * i + j) * us + f;
                expect_sum(c, &u, at, &r);
                /* computed in double: only the final rounding to the dtype */
                u.tol[at] = c->u * fabs(u.want[at]) + 40 * 0x1p-53 * (double)r.a;
            }
    CALL(c, fn(g, gs, n, nr, u.p, us));
    if (!c->faulted) check_out(c, &u);
}

static void test_winograd(ctx *c)
{
    const cconv_wino_in_fn in = c->t->wino_in[c->dt];
    const cconv_wino_out_fn out = c->t->wino_out[c->dt];
    const cconv_wino_filter_fn filter = c->t->wino_filter[c->dt];
    const int64_t vl = c->vl, vd = c->t->narrow[1].nr; /* the filter transform's double vector */
    wino_self_check(c);
    int64_t Cs[] = {1, vl - 1, vl, vl + 1, 2 * vl + 3};
    const int nc = sizes(Cs, 5, 1);
    for (int a = 0; a < nc; a++)
        for (int s = 0; s < 4; s++) {
            const ptrdiff_t cs = Cs[a] + (s & 1 ? 2 : 0);
            wino_in_case(c, in, Cs[a], cs, 6 * cs + (s & 2 ? 5 : 0), Cs[a] + (s == 3));
        }
    for (int64_t nv = 1; nv <= 3; nv++)
        for (int s = 0; s < 2; s++)
            for (int bad = 0; bad < 3; bad++)
                for (int rep = 0; rep < (bad ? 4 : 1); rep++) wino_out_case(c, out, nv * vl, nv * vl + 3 * s, bad);
    for (int64_t nr = vd; nr <= 3 * vl; nr += vd) /* the tiles' NR: multiples of the double vector */
        for (int64_t n = 1; n <= nr; n += (nr > 8 ? 3 : 1))
            wino_filter_case(c, filter, n, nr, 9 + 2 * (n & 1), nr + 2 * ((n >> 1) & 1));
}

/* ------------------------------------------------------------------ weight-gradient tiles */

static const cconv_gw_tile_kernel *gw_tile(const ctx *c, int which, const char **name)
{
    static const char *names[3] = {"gw_wide", "gw_mid", "gw_narrow"};
    *name = names[which];
    return which == 0 ? &c->t->gw_wide[c->dt] : which == 1 ? &c->t->gw_mid[c->dt] : &c->t->gw_narrow[c->dt];
}

static void gw_case(ctx *c, const cconv_gw_tile_kernel *k, const char *name, int64_t nrows, int64_t ncols,
                    int accumulate)
{
    const int MR = k->mr, NR = k->nr;
    const ptrdiff_t xrs = ncols + rnd_int(4);
    begin(c, "%s.fn (%dx%d): nrows=%lld ncols=%lld xrs=%td accumulate=%d", name, MR, NR, (long long)nrows,
          (long long)ncols, xrs, accumulate);
    ptrdiff_t *rows = galloc(c, MR * sizeof *rows), maxrow = 0;
    if (!rows) return;
    for (int i = 0; i < MR; i++) {
        rows[i] = i ? rows[i - 1] + 1 + rnd_int(nrows * xrs + 3) : rnd_int(3);
        if (i == MR - 1 && MR > 2) rows[i] = rows[1]; /* an edge tile's repeated row */
        if (rows[i] > maxrow) maxrow = rows[i];
    }
    void *x = runs_input(c, maxrow + (nrows - 1) * xrs + ncols, rows, MR, nrows, xrs, ncols),
         *g = in_rand(c, nrows * ncols * NR);
    out_t acc;
    if (!x || !g || !out_init(c, &acc, "acc", MR * NR, NR)) return;
    for (int i = 0; i < MR * NR; i++) st(c, acc.p, i, accumulate ? rnd_val() : NAN);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            rsum r = {0};
            if (accumulate) radd(&r, ld(c, acc.p, i * NR + j));
            for (int64_t rr = 0; rr < nrows; rr++)
                for (int64_t q = 0; q < ncols; q++)
                    radd(&r, (long double)ld(c, x, rows[i] + rr * xrs + q) * ld(c, g, (rr * ncols + q) * NR + j));
            expect_sum(c, &acc, i * NR + j, &r);
        }
    CALL(c, k->fn(x, rows, nrows, ncols, xrs, g, acc.p, accumulate));
    if (!c->faulted) check_out(c, &acc);
}

static void test_gw_tile(ctx *c)
{
    const int64_t vl = c->vl;
    int64_t ncs[] = {1, 2, vl - 1, vl, vl + 1, 2 * vl + 3};
    const int nc = sizes(ncs, 6, 1);
    for (int which = 0; which < 3; which++) {
        const char *name;
        const cconv_gw_tile_kernel *k = gw_tile(c, which, &name);
        if (!tile_shape_ok(c, name, k->mr, k->nr, CCONV_MR_MAX)) continue;
        for (int64_t nrows = 1; nrows <= 3; nrows++)
            for (int a = 0; a < nc; a++)
                for (int accumulate = 0; accumulate < 2; accumulate++) gw_case(c, k, name, nrows, ncs[a], accumulate);
    }
}

/* ------------------------------------------------------------------ depthwise weight gradients */

static void gw_dw_case(ctx *c, cconv_gw_dw_fn fn, int ntaps, int64_t nrows, int64_t ncols)
{
    const int VL = c->vl;
    const ptrdiff_t xrs = ncols + rnd_int(VL + 3), grs = ncols + 2 * (ntaps & 1);
    begin(c, "gw_dw: ntaps=%d nrows=%lld ncols=%lld xrs=%td grs=%td", ntaps, (long long)nrows, (long long)ncols, xrs,
          grs);
    ptrdiff_t *taps = galloc(c, ntaps * sizeof *taps), maxtap = 0;
    if (!taps) return;
    for (int t = 0; t < ntaps; t++) {
        taps[t] = rnd_int(2 * ncols + 5);
        if (taps[t] > maxtap) maxtap = taps[t];
    }
    /* x read up to one vector past each run (NaN there, ignored); g not past its rows (NaN between) */
    char *x = runs_input(c, maxtap + (nrows - 1) * xrs + ncols + VL, taps, ntaps, nrows, xrs, ncols);
    ptrdiff_t zero = 0;
    char *g = runs_input(c, (nrows - 1) * grs + ncols, &zero, 1, nrows, grs, ncols);
    out_t acc;
    if (!x || !g || !out_init(c, &acc, "acc", ntaps * VL, VL)) return;
    for (int i = 0; i < ntaps * VL; i++) st(c, acc.p, i, rnd_val());
    for (int t = 0; t < ntaps; t++)
        for (int l = 0; l < VL; l++) {
            rsum r = {0};
            radd(&r, ld(c, acc.p, t * VL + l));
            for (int64_t rr = 0; rr < nrows; rr++)
                for (int64_t q = l; q < ncols; q += VL)
                    radd(&r, (long double)ld(c, g, rr * grs + q) * ld(c, x, taps[t] + rr * xrs + q));
            expect_sum(c, &acc, t * VL + l, &r);
        }
    CALL(c, fn(x, taps, ntaps, nrows, ncols, xrs, g, grs, acc.p));
    if (!c->faulted) check_out(c, &acc);
}

/* layout 0: a stride-1 "same" window (padding columns -1, first output row's top tap row NULL);
 * 1: random columns and rows. */
static void gw_dw_cl_case(ctx *c, cconv_gw_dw_cl_fn fn, int64_t nrows, int KR, int KW, int64_t OW, int64_t C,
                          int layout)
{
    begin(c, "gw_dw_cl: nrows=%lld KR=%d KW=%d OW=%lld C=%lld %s", (long long)nrows, KR, KW, (long long)OW,
          (long long)C, layout ? "random taps" : "stride-1 window with padding");
    const int64_t Wi = OW + (layout ? 3 : 0); /* input row width in pixels */
    const int64_t nx = nrows * KR;
    const void **xrows = galloc(c, nx * sizeof *xrows);
    ptrdiff_t *cols = galloc(c, OW * KW * sizeof *cols);
    void *g = in_rand(c, nrows * OW * C);
    out_t acc;
    if (!xrows || !cols || !g || !out_init(c, &acc, "acc", KR * KW * C, C)) return;
    for (int64_t i = 0; i < nx; i++) {
        const int pad = layout ? rnd_int(4) == 0 : i < KR / 2; /* the first output row's top tap rows */
        xrows[i] = pad ? NULL : in_rand(c, Wi * C);
        if (!pad && !xrows[i]) return;
    }
    for (int64_t w = 0; w < OW; w++)
        for (int b = 0; b < KW; b++) {
            const int64_t iw = w + b - KW / 2;
            cols[w * KW + b] = layout ? (rnd_int(5) == 0 ? -1 : rnd_int(Wi) * C) : (iw >= 0 && iw < Wi ? iw * C : -1);
        }
    for (int64_t i = 0; i < KR * KW * C; i++) st(c, acc.p, i, rnd_val());
    for (int r = 0; r < KR; r++)
        for (int b = 0; b < KW; b++)
            for (int64_t e = 0; e < C; e++) {
                rsum s = {0};
                radd(&s, ld(c, acc.p, (r * KW + b) * C + e));
                for (int64_t i = 0; i < nrows; i++)
                    for (int64_t w = 0; w < OW; w++)
                        if (xrows[i * KR + r] && cols[w * KW + b] >= 0)
                            radd(&s, (long double)ld(c, g, (i * OW + w) * C + e) *
                                         ld(c, xrows[i * KR + r], cols[w * KW + b] + e));
                expect_sum(c, &acc, (r * KW + b) * C + e, &s);
            }
    CALL(c, fn((const void *const *)xrows, nrows, KR, cols, KW, OW, g, C, acc.p));
    if (!c->faulted) check_out(c, &acc);
}

static void test_gw_dw(ctx *c)
{
    const cconv_gw_dw_fn fn = c->t->gw_dw[c->dt];
    const cconv_gw_dw_cl_fn fn_cl = c->t->gw_dw_cl[c->dt];
    const int64_t vl = c->vl;
    int64_t ncs[] = {1, vl - 1, vl, vl + 1, 3 * vl + 2};
    const int nc = sizes(ncs, 5, 1);
    for (int ntaps = 1; ntaps <= 49; ntaps += ntaps < 27 ? 1 : 22) /* 1..27: every sweep split; 49: 7x7 */
        for (int a = 0; a < nc; a++)
            for (int64_t nrows = 1; nrows <= 3; nrows += 2) gw_dw_case(c, fn, ntaps, nrows, ncs[a]);
    int64_t Cs[] = {1, vl - 1, vl, vl + 1, 2 * vl, 2 * vl + 3};
    const int ncc = sizes(Cs, 6, 1);
    static const int KRs[] = {1, 3, 5}, KWs[] = {1, 2, 3, 4, 5, 7, 8, 9};
    int i = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 8; b++)
            for (int e = 0; e < ncc; e++, i++)
                gw_dw_cl_case(c, fn_cl, 1 + (i & 1), KRs[a], KWs[b], 1 + 3 * ((i >> 1) & 1), Cs[e], (i >> 2) & 1);
}

/* ------------------------------------------------------------------ FMA yardstick */

/* *chains: the chain count the first call's FLOPs imply (0: not known yet) */
static void fma_case(ctx *c, cconv_fma_loop_fn fn, int64_t iters, int64_t *chains)
{
    begin(c, "fma_loop: iters=%lld", (long long)iters);
    const double flops0 = 12345;
    volatile double flops = flops0, sum = 0;
    CALL(c, { double f = flops0; sum = fn(iters, &f); flops = f; });
    if (c->faulted) return;
    /* flops: 2 per lane per chain per iteration, added to *flops */
    const double d = flops - flops0, per = 2.0 * c->vl * (double)iters;
    c->checks += 2;
    if (iters) {
        if (!(d > 0 && fmod(d, per) == 0)) {
            failf(c, "added %.17g FLOPs, not a positive multiple of 2 * VL * iters = %.17g", d, per);
            return;
        }
        if (*chains && (int64_t)(d / per) != *chains)
            failf(c, "added %.17g FLOPs: %lld chains, %lld before", d, (long long)(d / per), (long long)*chains);
        *chains = (int64_t)(d / per);
    } else if (d != 0) {
        failf(c, "added %.17g FLOPs for no iterations", d);
    }
    /* checksum: per chain j and lane, acc = j, then acc = acc * m + a (m, a rounded to the dtype) */
    const long double m = c->dt ? (long double)0.999999 : (long double)(float)0.999999,
                      inc = c->dt ? (long double)1e-6 : (long double)(float)1e-6;
    long double want = 0, mag = 0;
    for (int64_t j = 0; j < *chains; j++) {
        long double v = (long double)j;
        for (int64_t i = 0; i < iters; i++) v = v * m + inc;
        want += c->vl * v;
        mag += c->vl * (long double)(j + 1);
    }
    /* each step's roundings, then the sum over chains and lanes */
    const double tol = (2.0 * (double)iters + 4 + (double)(*chains * c->vl)) * c->u * (double)mag;
    if (!(isfinite(sum) && fabs(sum - (double)want) <= tol))
        failf(c, "checksum %.17g, want %.17g (%lld chains of %d lanes; tol %.3g)", (double)sum, (double)want,
              (long long)*chains, c->vl, tol);
}

static void test_fma_loop(ctx *c)
{
    const cconv_fma_loop_fn fn = c->t->fma_loop[c->dt];
    int64_t chains = 0;
    fma_case(c, fn, 1, &chains);
    fma_case(c, fn, 1000, &chains);
    fma_case(c, fn, 0, &chains);
}

/* ------------------------------------------------------------------ fused activation */

/* The contract's clamp of one element in the dtype: min(max(v + b, lo), hi) with NaN and -0.0
 * kept (a NaN is no bound's side; -0.0 is not below 0), and hi where lo > hi (torch.clamp). */
static double act_want(const ctx *c, double v, const double *b, double lo, double hi)
{
    if (c->dt) {
        const double s = b ? v + *b : v;
        if (isnan(s)) return s;
        const double t = s < lo ? lo : s;
        return t > hi ? hi : t;
    }
    const float s = b ? (float)v + (float)*b : (float)v, l = (float)lo, h = (float)hi;
    if (isnan(s)) return s;
    const float t = s < l ? l : s;
    return t > h ? h : t;
}

/* A value for the clamp: one of the edges (NaN, +-Inf, +-0.0, the bounds and their neighbours
 * outside) one time in three, else uniform in [-8, 8] (across ReLU6's and the finite bounds). */
static double act_val(const ctx *c, double lo, double hi)
{
    const double lo_out = c->dt ? nextafter(lo, -INFINITY) : nextafterf((float)lo, -INFINITY),
                 hi_out = c->dt ? nextafter(hi, INFINITY) : nextafterf((float)hi, INFINITY);
    const double edges[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, lo, hi, lo_out, hi_out};
    if (rnd_int(3) == 0) return edges[rnd_int(9)];
    return 16.0 * (double)(rnd_u64() >> 11) / 9007199254740992.0 - 8.0;
}

/* bias: 0 none, 1 bcol (one a column), 2 brow (one a row); rows ys >= n elements apart, the
 * columns past n (ys > n) must keep their sentinels. */
static void act_case(ctx *c, cconv_act_fn fn, int64_t m, int64_t n, ptrdiff_t ys, int bias, double lo, double hi)
{
    static const char *bname[3] = {"none", "bcol", "brow"};
    begin(c, "act: m=%lld n=%lld ys=%td bias=%s lo=%g hi=%g", (long long)m, (long long)n, ys, bname[bias], lo, hi);
    const int64_t nb = bias == 1 ? n : bias == 2 ? m : 0;
    void *b = nb ? galloc(c, (size_t)nb * c->es) : NULL;
    out_t y;
    if ((nb && !b) || !out_init(c, &y, "y", (m - 1) * ys + n, ys)) return;
    for (int64_t k = 0; k < nb; k++) /* bias edges too: NaN, +-Inf, +-0.0 */
        st(c, b, k, rnd_int(3) ? 4.0 * (double)(rnd_u64() >> 11) / 9007199254740992.0 - 2.0
                               : (const double[]){NAN, INFINITY, -INFINITY, -0.0, 0.0}[rnd_int(5)]);
    for (int64_t r = 0; r < m; r++)
        for (int64_t i = 0; i < n; i++) {
            const ptrdiff_t e = r * ys + i;
            st(c, y.p, e, act_val(c, lo, hi));
            double bv = 0;
            if (bias) bv = ld(c, b, bias == 1 ? i : r);
            expect_bits(&y, e, act_want(c, ld(c, y.p, e), bias ? &bv : NULL, lo, hi));
        }
    CALL(c, fn(y.p, m, n, ys, lo, hi, bias == 1 ? b : NULL, bias == 2 ? b : NULL));
    if (!c->faulted) check_out(c, &y);
}

static void test_act(ctx *c)
{
    const cconv_act_fn fn = c->t->act[c->dt];
    const int64_t vl = c->vl;
    int64_t ms[] = {1, 2, vl - 1, vl, vl + 1}, ns[] = {1, vl - 1, vl, vl + 1, 2 * vl - 1, 2 * vl + 1, 3 * vl + 3};
    const int nm = sizes(ms, 5, 1), nn = sizes(ns, 7, 1);
    /* ReLU, ReLU6, finite bounds, min > max (every element comes out max) */
    static const double bounds[][2] = {{0, INFINITY}, {0, 6}, {-1.5, 2.25}, {1, -1}};
    int i = 0;
    for (int a = 0; a < nm; a++)
        for (int k = 0; k < nn; k++)
            for (int bias = 0; bias < 3; bias++)
                for (int q = 0; q < 4; q++, i++)
                    act_case(c, fn, ms[a], ns[k], ns[k] + (i & 1 ? 0 : 1 + rnd_int(vl + 1)), bias, bounds[q][0],
                             bounds[q][1]);
}

/* ------------------------------------------------------------------ entry points */

typedef void (*family_fn)(ctx *);
static const struct {
    const char *name;
    family_fn fn;
} families[] = {
    {"gemm", test_gemm},           {"gemm_store", test_gemm_store}, {"dw_cf", test_dw_cf}, {"dw_cf_3x3", test_dw_cf_3x3},
    {"dw_direct", test_dw_direct}, {"dw_cl", test_dw_cl},           {"dw_expand", test_dw_expand},
    {"pw_band", test_pw_band},     {"pw_cf", test_pw_cf},     {"copy", test_copy},             {"winograd", test_winograd},
    {"gw_tile", test_gw_tile},     {"gw_dw", test_gw_dw},           {"fma_loop", test_fma_loop},
    {"act", test_act},             {"cfd", test_cfd},
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

/* The i-th family's name; NULL past the last. */
const char *cconv_ukernel_family(int i) { return i >= 0 && i < N_FAMILIES ? families[i].name : NULL; }

/* Runs one family (by name) of the named ISA's kernels, both dtypes. Returns the number of failed
 * checks (-1: unknown or unavailable ISA, -2: unknown family); *checks: the checks made (0: nothing
 * to test, the report says why); report: the first failures, one a line, and a summary. Not
 * reentrant (one call at a time: the buffers and the fault handler are process-wide). */
int cconv_ukernel_test(const char *isa, const char *family, long *checks, char *report, size_t report_len)
{
    ctx c = {0};
    c.rep = report;
    c.replen = report_len;
    if (report && report_len) report[0] = '\0';
    if (checks) *checks = 0;
    c.isa = isa;
    c.t = isa_table(isa);
    if (!c.t) {
        append(&c, "ISA %s: unknown or not available on this CPU\n", isa ? isa : "(null)");
        return -1;
    }
    int f = 0;
    while (f < N_FAMILIES && strcmp(families[f].name, family ? family : "") != 0) f++;
    if (f == N_FAMILIES) {
        append(&c, "unknown kernel family %s\n", family ? family : "(null)");
        return -2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    for (int pass = 0; pass < 4; pass++) {
        c.dt = pass & 1;
        guard_front = pass >> 1; /* the same cases again, guarded in front */
        c.es = c.dt ? 8 : 4;
        c.u = c.dt ? 0x1p-53 : 0x1p-24;
        c.vl = c.t->narrow[c.dt].nr;
        rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)(f * 2 + c.dt + 1) * 0xbf58476d1ce4e5b9ull;
        if (c.vl < 1 || (c.vl * c.es) % 16 || c.vl * c.es > 64) {
            begin(&c, "narrow tile");
            failf(&c, "NR = %d is not one vector of 16, 32 or 64 bytes", c.vl);
            continue;
        }
        families[f].fn(&c);
    }
    release_all();
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    if (c.checks == 0 && c.fails == 0)
        append(&c, "%s %s: nothing to test (%s)\n", isa, family,
               strcmp(family, "dw_direct") == 0 ? "dw_direct is NULL in this ISA's table" : "no cases");
    else
        append(&c, "%s %s: %ld failed checks in %ld of %ld cases, %ld checks\n", isa, family, c.fails, c.bad_cases,
               c.ncases, c.checks);
    if (checks) *checks = c.checks;
    return c.fails > (long)0x7fffffff ? 0x7fffffff : (int)c.fails;
}
