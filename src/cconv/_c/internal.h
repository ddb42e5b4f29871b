/* Private declarations shared by the C core: the per-ISA kernel table and helpers. */
#ifndef CCONV_INTERNAL_H
#define CCONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
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

typedef struct {
    int mr, nr;
    cconv_tile_fn fn;
} cconv_tile_kernel;

/* Depthwise row kernel: y[j] (+)= sum_t w[t] * x[tap_off[t] + j*xs] for j < n (one channel). */
typedef void (*cconv_dw_row_fn)(const void *x, ptrdiff_t xs, const ptrdiff_t *taps,
                                const void *w, int ntaps, int64_t n, void *y);
/* Depthwise channels-last pixel kernel: y[c] = sum_t w[t][c] * x[taps[t] + c] for c < C. */
typedef void (*cconv_dw_pix_fn)(const void *x, const ptrdiff_t *taps, const void *w, int ntaps,
                                int64_t channels, void *y);

typedef struct {
    const char *name;
    cconv_tile_kernel wide[2];   /* [dtype]: NR = 2 vectors */
    cconv_tile_kernel narrow[2]; /* [dtype]: NR = 1 vector, more pixels */
    cconv_dw_row_fn dw_row[2];
    cconv_dw_pix_fn dw_pix[2];
} cconv_isa_table;

extern const cconv_isa_table cconv_isa_generic;
#if defined(__x86_64__) || defined(_M_X64)
#define CCONV_X86 1
extern const cconv_isa_table cconv_isa_avx2;
extern const cconv_isa_table cconv_isa_avx512;
#endif

const cconv_isa_table *cconv_active_isa(void);
int cconv_threads(void);

/* 64-bit size arithmetic with overflow detection: returns 0 on overflow. */
static inline int cconv_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int cconv_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }

static inline size_t cconv_dtype_size(cconv_dtype t) { return t == CCONV_FLOAT64 ? 8 : 4; }

void *cconv_aligned_alloc(size_t bytes);
void cconv_aligned_free(void *p);

cconv_status cconv_reference_conv(const cconv_conv_desc *d, const void *x, const void *w,
                                  const void *b, void *y);

#endif
