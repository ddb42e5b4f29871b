/* Private declarations shared by the C core: helpers, and (ukernels/ukernels.h) the per-ISA
 * microkernel table. */
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

/* The microkernels' signatures and the per-ISA table of them. */
#include "ukernels/ukernels.h"

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
