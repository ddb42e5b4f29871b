/* Private declarations shared by the C core: the per-ISA kernel table and helpers. */
#ifndef CCONV_INTERNAL_H
#define CCONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cconv.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define CCONV_MR_MAX 16       /* max pixels of one register tile */
#define CCONV_TILE_MAX 1024    /* max MR*NR elements of one register tile */

/* Register-tile kernel of the GEMM family: MR output pixels x NR output channels.
 * acc[MR][NR] (+)= sum over taps t, channels k of x[pix[i] + taps[t] + k] * w[t][k][NR].
 * x points at the first channel (of the group and kc block) of the padded channels-last input;
 * pix[i] is the element offset of pixel i's window origin. Pixels are given one by one (an
 * indirection list) so a tile may span output rows and an edge tile can repeat its last pixel
 * instead of reading past the buffer. w holds ntaps*kc*NR packed weights. accumulate=0 starts
 * from zero. */
typedef void (*cconv_tile_fn)(const void *x, const ptrdiff_t *pix, const ptrdiff_t *taps, int ntaps,
                              int64_t kc, const void *w, void *acc, int accumulate);

/* Stores a finished tile channels-first: y[j*ys + i] = acc[i*NR + j] + bias[j] for i < m, j < ncol
 * (a transpose; compiled per tile shape so the whole-tile case has fixed trip counts). */
typedef void (*cconv_tile_store_fn)(const void *acc, const void *bias, int64_t m, int64_t ncol, void *y,
                                    ptrdiff_t ys);

/* Stores a finished tile channels-last: y[rows[i] + j] = acc[i*NR + j] + bias[j]. */
typedef void (*cconv_tile_store_cl_fn)(const void *acc, const void *bias, int64_t m, int64_t ncol, void *y,
                                       const int64_t *rows);

typedef struct {
    int mr, nr;
    cconv_tile_fn fn;
    cconv_tile_store_fn store_cf;
    cconv_tile_store_cl_fn store_cl;
} cconv_tile_kernel;

/* Depthwise kernels (kernels/depthwise.inc; drivers in depthwise.inc).
 * Channels-first, nout output rows of one channel: y[o*y_step + j] = bias + sum_t w[t] *
 * taps[t][o*in_step + j] for j < n; taps point into padded, stride-phase-split input rows;
 * bias may be NULL. Reads up to one vector past each run. */
typedef void (*cconv_dw_cf_fn)(const void *const *taps, int ntaps, const void *w, const void *bias,
                               int64_t n, int64_t nout, ptrdiff_t in_step, ptrdiff_t y_step, void *y);
/* Channels-first, K x K (K = 3, 5, 7) stride S (1, 2) with zero padding, read straight from the
 * H x W input plane x (no band copy; masked loads at the borders): output rows oh0 .. oh0 + nout - 1
 * (OW columns; y at row oh0, pitch y_step), padding pt rows above and pl columns left; zrow: W
 * zeros. NULL where the ISA has no masked loads. */
typedef void (*cconv_dw_direct_fn)(const void *x, int64_t H, int64_t W, int64_t pt, int64_t pl, int K, int S,
                                   const void *w, const void *bias, int64_t oh0, int64_t nout, int64_t OW,
                                   void *y, ptrdiff_t y_step, const void *zrow);
/* Channels-last, n output pixels of a row: y[p*C + c] = bias[c] + sum_t w[t*C + c] *
 * src[p*ntaps + t][c]; src entries point at input pixels (or a zero pixel). pf_rows > 0: the
 * next output row reads pf_rows new input rows, at pf_step, 2*pf_step, ... elements past this
 * row's last tap row, and writes y + n*C on: prefetched along the way. */
typedef void (*cconv_dw_cl_fn)(const void *const *src, int ntaps, int64_t n, int64_t C,
                               const void *w, const void *bias, void *y, int pf_rows, ptrdiff_t pf_step);
/* dst[q*pix + e] = src[q*C + lane[e]] for q < npix, e < pix: a channels-last row expanded so that
 * grouped channels-last convolutions become depthwise ones (see run_dw_cl_). */
typedef void (*cconv_dw_expand_fn)(void *dst, const void *src, int64_t npix, int64_t C,
                                   const int32_t *lane, int64_t pix);

/* Pointwise block of the fused separable convolution: y[i*ys + p] = bias[i] + sum_k w[k*6 + i] *
 * x[k*xs + p] for i < mr <= 6, p < np; bias may be NULL; x rows readable one vector past np. */
typedef void (*cconv_pw_band_fn)(const void *x, ptrdiff_t xs, int64_t K, const void *w, int mr,
                                 const void *bias, int64_t np, void *y, ptrdiff_t ys);
#define CCONV_PW_MR 6

/* Winograd F(4x4, 3x3) transforms (kernels/winograd.inc), vectorised across channels.
 * Input: the 6x6 patch d[r][s][c] = src[r*rs + s*cs + c] (channels-last, c < C) becomes
 * V[xi][c] = (B^T d B)[xi] at dst[xi*ds + c], xi = 6*i + j < 36.
 * Output: m[xi*ms + j] (xi < 36, j < n, n a multiple of the vector length) becomes the 4x4
 * outputs (A^T m A)[o] at out[o*n + j], o = 4*i + j < 16; returns nonzero if any is Inf or NaN. */
typedef void (*cconv_wino_in_fn)(const void *src, ptrdiff_t rs, ptrdiff_t cs, int64_t C, void *dst,
                                 ptrdiff_t ds);
typedef int (*cconv_wino_out_fn)(const void *m, ptrdiff_t ms, int64_t n, void *out);
/* Filters: U[xi*us + j] = (G g_j G^T)[xi] for j < nr, xi < 36, where filter j < n is the 3x3
 * g[j*gs + 3*r + s] and columns n <= j < nr are zero; computed in double. */
typedef void (*cconv_wino_filter_fn)(const void *g, ptrdiff_t gs, int64_t n, int64_t nr, void *u,
                                     ptrdiff_t us);

/* dst[i] = src[i] for i < n with non-temporal (streaming) stores where the ISA has them. */
typedef void (*cconv_stream_copy_fn)(void *dst, const void *src, int64_t n);
/* dst[j*ds + i] = src[i*ss + j] for i < rows, j < cols (channels-first rows to channels-last). */
typedef void (*cconv_transpose_fn)(const void *src, ptrdiff_t ss, int64_t rows, int64_t cols, void *dst,
                                   ptrdiff_t ds);

/* Weight-gradient register tile (kernels/gwtile.inc): MR rows of (input channel, tap) x NR output
 * channels, acc[i][NR] (+)= sum_{r < nrows, c < ncols} x[rows[i] + r*xrs + c] * g[(r*ncols + c)*NR + j]:
 * x is a channels-first band, g grad_output packed [pixel][NR]; accumulate=0 starts from zero. */
typedef void (*cconv_gw_tile_fn)(const void *x, const ptrdiff_t *rows, int64_t nrows, int64_t ncols,
                                 ptrdiff_t xrs, const void *g, void *acc, int accumulate);
typedef struct {
    int mr, nr;
    cconv_gw_tile_fn fn;
} cconv_gw_tile_kernel;

/* The FMA peak's yardstick (kernels/dtype.inc): iters rounds of independent vector multiply-adds
 * on registers only; adds the FLOPs done to *flops and returns a checksum. */
typedef double (*cconv_fma_loop_fn)(int64_t iters, double *flops);
/* Weight gradient of one (output channel, input channel) pair (depthwise, narrow groups):
 * acc[t][l] += sum_{r < nrows, c < ncols, c = l mod VL} g[r*grs + c] * x[taps[t] + r*xrs + c] for
 * t < ntaps, l < VL (the narrow tile's nr): per-lane sums, added up by the caller once at the end.
 * Reads (and ignores) up to one vector past each run of x. */
typedef void (*cconv_gw_dw_fn)(const void *x, const ptrdiff_t *taps, int ntaps, int64_t nrows,
                               int64_t ncols, ptrdiff_t xrs, const void *g, ptrdiff_t grs, void *acc);
/* Channels-last depthwise (multiplier 1) weight gradient of nrows output rows, all taps: acc[(r*KW
 * + b)*C + c] += sum_{i < nrows, w < OW, cols[w*KW + b] >= 0} g[(i*OW + w)*C + c] *
 * xrows[i*KR + r][cols[w*KW + b] + c] for tap rows r < KR (a NULL row: padding, skipped), tap
 * columns b < KW, channels c < C (cols: element offsets in a row, -1 where the tap reads padding). */
typedef void (*cconv_gw_dw_cl_fn)(const void *const *xrows, int64_t nrows, int KR, const ptrdiff_t *cols,
                                  int KW, int64_t OW, const void *g, int64_t C, void *acc);

typedef struct {
    const char *name;
    cconv_tile_kernel wide[2];   /* [dtype]: NR = WIDE_NV vectors (2 or 3), the GEMM's main tile */
    cconv_tile_kernel mid[2];    /* [dtype]: NR = 2 vectors (the wide tile itself where it has 2) */
    cconv_tile_kernel narrow[2]; /* [dtype]: NR = 1 vector, more pixels */
    cconv_dw_cf_fn dw_cf[2];     /* [dtype] */
    cconv_dw_direct_fn dw_direct[2];
    cconv_dw_cl_fn dw_cl[2];
    cconv_dw_expand_fn dw_expand[2];
    cconv_pw_band_fn pw_band[2];
    cconv_stream_copy_fn stream_copy[2];
    cconv_transpose_fn transpose[2];
    cconv_wino_in_fn wino_in[2];
    cconv_wino_out_fn wino_out[2];
    cconv_wino_filter_fn wino_filter[2];
    cconv_gw_tile_kernel gw_wide[2];   /* [dtype]: the weight gradient's main tile (2 or 4 vectors) */
    cconv_gw_tile_kernel gw_mid[2];    /* [dtype]: NR = 2 vectors (gw_wide itself where it has 2) */
    cconv_gw_tile_kernel gw_narrow[2]; /* [dtype]: NR = 1 vector */
    cconv_gw_dw_fn gw_dw[2];
    cconv_gw_dw_cl_fn gw_dw_cl[2];
    cconv_fma_loop_fn fma_loop[2];
} cconv_isa_table;

extern const cconv_isa_table cconv_isa_generic;
#if defined(__x86_64__) || defined(_M_X64)
#define CCONV_X86 1
extern const cconv_isa_table cconv_isa_avx2;
extern const cconv_isa_table cconv_isa_avx512;
#endif

const cconv_isa_table *cconv_active_isa(void);
int cconv_threads(void);
/* FLOP/s of `iters` rounds of the named ISA's fma_loop on each thread of a team of `threads`: the
 * sum over the threads of each one's FLOPs over its own time (on a busy machine threads that do
 * not run at the same moment still count at their own speed). *seconds: the call's wall time,
 * *team: the team's size. -1 when the ISA is unavailable or an argument is out of range. */
double cconv_fma_peak(const char *isa, cconv_dtype dtype, int64_t iters, int threads, double *seconds,
                      int *team);
/* The last-level (L3) cache size in bytes as the OS reports it; 0 when unknown. */
double cconv_l3_bytes(void);
/* Makes cconv_threads() return 1 on this thread while on; returns the previous state. */
int cconv_set_serial(int on);

/* 64-bit size arithmetic with overflow detection: returns 0 on overflow. */
static inline int cconv_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int cconv_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }

static inline size_t cconv_dtype_size(cconv_dtype t) { return t == CCONV_FLOAT64 ? 8 : 4; }
/* Where channel_shuffle(y, sg) puts channel c of C: c = i*(C/sg) + k goes to k*sg + i. */
static inline int64_t cconv_shuffled_channel(int64_t c, int64_t C, int64_t sg)
{
    return sg == 1 ? c : c % (C / sg) * sg + c / (C / sg);
}

/* dst[j*ds + i] = src[i*ss + j] for i, j < 4: one 4x4 block through registers (vector
 * shuffles: unpack pairs, then halves), for the GEMM band fill and weight packing and the channels-last shuffle. */
#define TRANSPOSE4_DEFINE(T, SFX)                                                                  \
typedef T v4_##SFX __attribute__((vector_size(4 * sizeof(T))));                                    \
static inline void cconv_transpose4_##SFX(const T *src, int64_t ss, T *dst, int64_t ds)                  \
{                                                                                                  \
    v4_##SFX r[4], t[4];                                                                           \
    for (int i = 0; i < 4; i++) memcpy(&r[i], src + i * ss, sizeof r[i]);                          \
    t[0] = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);                                        \
    t[1] = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);                                        \
    t[2] = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);                                        \
    t[3] = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);                                        \
    r[0] = __builtin_shufflevector(t[0], t[2], 0, 1, 4, 5);                                        \
    r[1] = __builtin_shufflevector(t[0], t[2], 2, 3, 6, 7);                                        \
    r[2] = __builtin_shufflevector(t[1], t[3], 0, 1, 4, 5);                                        \
    r[3] = __builtin_shufflevector(t[1], t[3], 2, 3, 6, 7);                                        \
    for (int j = 0; j < 4; j++) memcpy(dst + j * ds, &r[j], sizeof r[j]);                          \
}                                                                                                  \
/* dst[2i] = a[i], dst[2i + 1] = b[i] for i < 4 (a 2 x 4 transpose). */                             \
static inline void cconv_interleave2_##SFX(const T *a, const T *b, T *dst)                          \
{                                                                                                  \
    v4_##SFX u, v, lo, hi;                                                                         \
    memcpy(&u, a, sizeof u);                                                                       \
    memcpy(&v, b, sizeof v);                                                                       \
    lo = __builtin_shufflevector(u, v, 0, 4, 1, 5);                                                \
    hi = __builtin_shufflevector(u, v, 2, 6, 3, 7);                                                \
    memcpy(dst, &lo, sizeof lo);                                                                   \
    memcpy(dst + 4, &hi, sizeof hi);                                                               \
}
TRANSPOSE4_DEFINE(float, f32)
TRANSPOSE4_DEFINE(double, f64)

/* The C core's one heap allocator (core/alloc.c): 64-byte aligned; NULL when out of memory;
 * cconv_free(NULL) does nothing. */
void *cconv_alloc(size_t bytes);
void *cconv_alloc_zeroed(size_t bytes);
void cconv_free(void *p);

#endif
