/* The microkernels' contracts: one function type per family (cconv_X_ukr: every instance is
 * declared with it, so a signature that drifts does not compile), the pointer types the drivers
 * call through (cconv_X_fn), and cconv_isa_table, one ISA's microkernels (config/table.c.in). */
#ifndef CCONV_UKERNELS_H
#define CCONV_UKERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Register tile of the GEMM family: acc[MR][NR] (+)= sum over taps t, channels k < kc of
 * x[pix[i] + taps[t] + k] * w[t][k][NR]. x: the first channel (of the group and kc block) of the
 * padded channels-last input; pix[i]: pixel i's window origin, one by one so a tile may span
 * output rows and an edge tile repeat its last pixel. accumulate=0 starts from zero. */
typedef void cconv_tile_ukr(const void *x, const ptrdiff_t *pix, const ptrdiff_t *taps, int ntaps,
                            int64_t kc, const void *w, void *acc, int accumulate);
typedef cconv_tile_ukr *cconv_tile_fn;

/* Stores a finished tile channels-first: y[j*ys + i] = acc[i*NR + j] + bias[j] for i < m, j < ncol
 * (compiled per tile shape: the whole tile has fixed trip counts). */
typedef void cconv_tile_store_ukr(const void *acc, const void *bias, int64_t m, int64_t ncol, void *y,
                                  ptrdiff_t ys);
typedef cconv_tile_store_ukr *cconv_tile_store_fn;

/* Stores a finished tile channels-last: y[rows[i] + j] = acc[i*NR + j] + bias[j]. */
typedef void cconv_tile_store_cl_ukr(const void *acc, const void *bias, int64_t m, int64_t ncol, void *y,
                                     const int64_t *rows);
typedef cconv_tile_store_cl_ukr *cconv_tile_store_cl_fn;

typedef struct {
    int mr, nr;
    cconv_tile_fn fn;
    cconv_tile_store_fn store_cf;
    cconv_tile_store_cl_fn store_cl;
} cconv_tile_kernel;

/* Depthwise, channels-first, nout output rows of one channel: y[o*y_step + j] = bias + sum_t w[t] *
 * taps[t][o*in_step + j] for j < n; taps point into padded, stride-phase-split input rows;
 * bias may be NULL. Reads up to one vector past each run. */
typedef void cconv_dw_cf_ukr(const void *const *taps, int ntaps, const void *w, const void *bias,
                             int64_t n, int64_t nout, ptrdiff_t in_step, ptrdiff_t y_step, void *y);
typedef cconv_dw_cf_ukr *cconv_dw_cf_fn;
/* Channels-first, K x K (K = 3, 5, 7) stride S (1, 2) with zero padding, read straight from the
 * H x W input plane x (no band copy; masked loads at the borders): output rows oh0 .. oh0 + nout - 1
 * (OW columns; y at row oh0, pitch y_step), padding pt rows above and pl columns left; zrow: W
 * zeros. NULL where the ISA has no masked loads. */
typedef void cconv_dw_direct_ukr(const void *x, int64_t H, int64_t W, int64_t pt, int64_t pl, int K, int S,
                                 const void *w, const void *bias, int64_t oh0, int64_t nout, int64_t OW,
                                 void *y, ptrdiff_t y_step, const void *zrow);
typedef cconv_dw_direct_ukr *cconv_dw_direct_fn;
/* Where channels-last taps are read: input rows rows[r], r < nrows (a zero row in padding), each
 * tap (r, c, ci) of pixel p at rows[r] + col0 + p*pstep + c*cstep + ci*C for pixels in [lo, hi)
 * (whole taps inside the row), else at rows[r] + cols[p*kw + c] + ci*C (cols < 0: padding, read at
 * zero, cig*C zeros). */
typedef struct {
    int nrows, kw, cig;
    int64_t lo, hi;
    ptrdiff_t col0, pstep, cstep;
    const int64_t *cols;
    const void *zero;
    /* Optional (0 / NULL: none), K x K (3, 5, 7) stride-1 rows with cig 1 and C a multiple of the
     * vector length: interior pixels may run as the flat range of elements from `shift` channels
     * into a pixel (0 < shift < C), each vector spanning two pixels, so that loads fall on whole
     * vectors; wrot[t*C + j] = w[t*C + (j + shift) % C] and brot (NULL without
     * bias) likewise. */
    int64_t shift;
    const void *wrot, *brot;
    /* nout 2 (else one row): two output rows, the second at y + ystep reading rows[1 ..
     * nrows] (vertical stride 1, one tap row a row pointer) */
    int nout;
    ptrdiff_t ystep;
} cconv_dw_cl_geom;
/* Channels-last, n output pixels of a row: y[p*C + e] = bias[e] + sum_t w[t*C + e] * (tap t of
 * pixel p)[e], t = (r*kw + c)*cig + ci in g's order. */
typedef void cconv_dw_cl_ukr(const void *const *rows, const cconv_dw_cl_geom *g, int64_t n, int64_t C,
                             const void *w, const void *bias, void *y);
typedef cconv_dw_cl_ukr *cconv_dw_cl_fn;
/* dst[q*pix + e] = src[q*C + lane[e]] for q < npix, e < pix: a channels-last row expanded so that
 * grouped channels-last convolutions become depthwise ones. */
typedef void cconv_dw_expand_ukr(void *dst, const void *src, int64_t npix, int64_t C,
                                 const int32_t *lane, int64_t pix);
typedef cconv_dw_expand_ukr *cconv_dw_expand_fn;

/* Pointwise block of the fused separable convolution: y[i*ys + p] = bias[i] + sum_k w[k*6 + i] *
 * x[k*xs + p] for i < mr <= 6, p < np; bias may be NULL; x rows readable one vector past np. */
typedef void cconv_pw_band_ukr(const void *x, ptrdiff_t xs, int64_t K, const void *w, int mr,
                               const void *bias, int64_t np, void *y, ptrdiff_t ys);
typedef cconv_pw_band_ukr *cconv_pw_band_fn;
#define CCONV_PW_MR 6
/* Channels-first 1x1 rows: y[i][p] = sum_k w[k*6 + i] * xp[k][p] + (bias ? bias[i] : +0.0) for
 * i < mr <= 6, p < np + nt, summed from +0.0 in k order, where xp[k][p] is x[k*xs + p] for p < np
 * (np a multiple of the vector length; read in place), else xt[k*xts + p - np] (zero padded to whole
 * vectors). pf > 0: x's lines pf elements ahead fetched into L2. */
typedef void cconv_pw_cf_ukr(const void *x, ptrdiff_t xs, int64_t np, const void *xt, ptrdiff_t xts, int64_t nt,
                             int64_t K, const void *w, int mr, const void *bias, void *const *y, ptrdiff_t pf);
typedef cconv_pw_cf_ukr *cconv_pw_cf_fn;

/* Winograd F(4x4, 3x3) transforms, vectorised across channels. Input: the 6x6 patch
 * d[r][s][c] = src[r*rs + s*cs + c] (channels-last, c < C) becomes V[xi][c] = (B^T d B)[xi] at
 * dst[xi*ds + c], xi = 6*i + j < 36. Output: m[xi*ms + j] (xi < 36, j < n, n a multiple of the vector length) becomes the 4x4
 * outputs (A^T m A)[o] at out[o*n + j], o = 4*i + j < 16; returns nonzero if any is Inf or NaN. */
typedef void cconv_wino_in_ukr(const void *src, ptrdiff_t rs, ptrdiff_t cs, int64_t C, void *dst,
                               ptrdiff_t ds);
typedef cconv_wino_in_ukr *cconv_wino_in_fn;
typedef int cconv_wino_out_ukr(const void *m, ptrdiff_t ms, int64_t n, void *out);
typedef cconv_wino_out_ukr *cconv_wino_out_fn;
/* Filters: U[xi*us + j] = (G g_j G^T)[xi] for j < nr, xi < 36, where filter j < n is the 3x3
 * g[j*gs + 3*r + s] and columns n <= j < nr are zero; computed in double. */
typedef void cconv_wino_filter_ukr(const void *g, ptrdiff_t gs, int64_t n, int64_t nr, void *u,
                                   ptrdiff_t us);
typedef cconv_wino_filter_ukr *cconv_wino_filter_fn;

/* dst[i] = src[i] for i < n with non-temporal (streaming) stores where the ISA has them. */
typedef void cconv_stream_copy_ukr(void *dst, const void *src, int64_t n);
typedef cconv_stream_copy_ukr *cconv_stream_copy_fn;
/* dst[r*ds + j] = src[r*ss + j] for r < rows, j < n: nothing else read or written. */
typedef void cconv_copy_rows_ukr(void *dst, ptrdiff_t ds, const void *src, ptrdiff_t ss, int64_t rows, int64_t n);
typedef cconv_copy_rows_ukr *cconv_copy_rows_fn;
/* dst[j*ds + i] = src[i*ss + j] for i < rows, j < cols (channels-first rows to channels-last). */
typedef void cconv_transpose_ukr(const void *src, ptrdiff_t ss, int64_t rows, int64_t cols, void *dst,
                                 ptrdiff_t ds);
typedef cconv_transpose_ukr *cconv_transpose_fn;
/* Channel shuffle, channels-last: each of npix pixels' channel vectors (x, y: npix x channels)
 * transposed as a (groups, channels / groups) matrix. */
typedef void cconv_shuffle_cl_ukr(const void *x, void *y, int64_t npix, int64_t channels, int64_t groups);
typedef cconv_shuffle_cl_ukr *cconv_shuffle_cl_fn;

/* Weight-gradient register tile: MR rows of (input channel, tap) x NR output channels,
 * acc[i][NR] (+)= sum_{r < nrows, c < ncols} x[rows[i] + r*xrs + c] * g[(r*ncols + c)*NR + j]:
 * x a channels-first band, g grad_output packed [pixel][NR]; accumulate=0 starts from zero. */
typedef void cconv_gw_tile_ukr(const void *x, const ptrdiff_t *rows, int64_t nrows, int64_t ncols,
                               ptrdiff_t xrs, const void *g, void *acc, int accumulate);
typedef cconv_gw_tile_ukr *cconv_gw_tile_fn;
typedef struct {
    int mr, nr;
    cconv_gw_tile_fn fn;
} cconv_gw_tile_kernel;

/* The FMA peak's yardstick: iters rounds of independent vector multiply-adds on registers only;
 * adds the FLOPs done to *flops and returns a checksum. */
typedef double cconv_fma_loop_ukr(int64_t iters, double *flops);
typedef cconv_fma_loop_ukr *cconv_fma_loop_fn;
/* Weight gradient of one (output channel, input channel) pair (depthwise, narrow groups):
 * acc[t][l] += sum_{r < nrows, c < ncols, c = l mod VL} g[r*grs + c] * x[taps[t] + r*xrs + c] for
 * t < ntaps, l < VL (the narrow tile's nr): per-lane sums, added up by the caller once at the end.
 * Reads (and ignores) up to one vector past each run of x. */
typedef void cconv_gw_dw_ukr(const void *x, const ptrdiff_t *taps, int ntaps, int64_t nrows,
                             int64_t ncols, ptrdiff_t xrs, const void *g, ptrdiff_t grs, void *acc);
typedef cconv_gw_dw_ukr *cconv_gw_dw_fn;
/* Channels-last depthwise (multiplier 1) weight gradient of nrows output rows, all taps: acc[(r*KW
 * + b)*C + c] += sum_{i < nrows, w < OW, cols[w*KW + b] >= 0} g[(i*OW + w)*C + c] *
 * xrows[i*KR + r][cols[w*KW + b] + c] for tap rows r < KR (a NULL row: padding, skipped), tap
 * columns b < KW, channels c < C (cols: element offsets in a row, -1 where the tap reads padding). */
typedef void cconv_gw_dw_cl_ukr(const void *const *xrows, int64_t nrows, int KR, const ptrdiff_t *cols,
                                int KW, int64_t OW, const void *g, int64_t C, void *acc);
typedef cconv_gw_dw_cl_ukr *cconv_gw_dw_cl_fn;
/* The fused activation (ukernels/act.c.in): y[r*ystride + i] = min(max(y + b, lo), hi) for r < rows,
 * i < n, NaN and -0.0 kept; b is bcol[i] (bcol not NULL), else brow[r] (brow not NULL), else none. */
typedef void cconv_act_ukr(void *y, int64_t rows, int64_t n, int64_t ystride, double lo, double hi,
                           const void *bcol, const void *brow);
typedef cconv_act_ukr *cconv_act_fn;

/* Channels-first direct register tile (conv/direct_cf.c) over a flat grid of rows `pitch` apart:
 * the NR = nv vectors (nv <= the kernel's nr / the vector length) of outputs of a tile are grid
 * positions q0 + j, j < NR, each the sum over taps t < ntaps, channels k < K of
 * w[(t*K + k)*MR + i] * x[k*xs + taps[t] + j] (x at position q0), summed taps outer, channels inner
 * from +0.0 (the GEMM tile's order), for output channels i < MR (rows i >= m: zero weights, not
 * stored). Position q0 + j = r*pitch + col with col < n and q0 + j < qend is stored at
 * y[yrows[i] + r*ys + col] (+ bias[i]); the rest of the grid (padding columns) is computed, not
 * stored. Reads NR values at each tap of each channel. */
typedef struct {
    int64_t q0, qend, pitch, n;
    ptrdiff_t ys;
    int nv;
} cconv_cfd_out;
typedef void cconv_cfd_ukr(const void *x, ptrdiff_t xs, const ptrdiff_t *taps, int ntaps, int64_t K,
                           const void *w, const void *bias, int64_t m, void *y, const int64_t *yrows,
                           const cconv_cfd_out *o);
typedef cconv_cfd_ukr *cconv_cfd_fn;
typedef struct {
    int mr, nr, nv; /* nr: the widest tile's outputs, nv vectors */
    cconv_cfd_fn fn;
} cconv_cfd_kernel;

typedef struct {
    const char *name;
    cconv_tile_kernel wide[2];   /* [dtype]: NR = GEMM_NV_wide vectors (2 or 3), the GEMM's main tile */
    cconv_tile_kernel mid[2];    /* [dtype]: NR = 2 vectors (the wide tile itself where it has 2) */
    cconv_tile_kernel narrow[2]; /* [dtype]: NR = 1 vector, more pixels */
    cconv_dw_cf_fn dw_cf[2];     /* [dtype], as every entry */
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
    cconv_act_fn act[2];
    cconv_shuffle_cl_fn shuffle_cl[2];
    cconv_tile_kernel cl[2]; /* [dtype]: the GEMM's tile for channels-last outputs (or the wide one) */
    /* GEMM blocking in bytes (config/<isa>.h): a kc block's weights (taps x kc x NR), the
     * accumulators of the chunk of tiles that reuses them, a band buffer (conv/gemm.h). */
    int gemm_kc_bytes, gemm_mc_bytes, gemm_band_bytes;
    cconv_pw_cf_fn pw_cf[2];
    cconv_cfd_kernel cfd[2]; /* [dtype]: the channels-first direct tile */
    cconv_copy_rows_fn copy_rows[2];
} cconv_isa_table;

extern const cconv_isa_table cconv_isa_generic;
#if defined(__x86_64__) || defined(_M_X64)
#define CCONV_X86 1
extern const cconv_isa_table cconv_isa_avx2;
extern const cconv_isa_table cconv_isa_avx512;
#endif

#endif
