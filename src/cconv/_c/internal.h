/* Private declarations shared by the whole C core. */
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

#include "ukernels/ukernels.h"

const cconv_isa_table *cconv_active_isa(void);
/* The name of the implementation a plan runs (tests check which one the list chose). */
const char *cconv_plan_implementation(const cconv_plan *p);
int cconv_threads(void);
/* FLOP/s of `iters` rounds of the named ISA's fma_loop on a team of `threads`: the sum of each
 * thread's FLOPs over its own time (threads of a busy machine count at their own speed).
 * *seconds: the call's wall time, *team: the team's size. -1 for an unavailable ISA or bad argument. */
double cconv_fma_peak(const char *isa, cconv_dtype dtype, int64_t iters, int threads, double *seconds,
                      int *team);
/* The L3 cache size in bytes as the OS reports it; 0 when unknown. */
double cconv_l3_bytes(void);
/* Makes cconv_threads() return 1 on this thread while on; returns the previous state. */
int cconv_set_serial(int on);
/* Called by every thread of a parallel region (it holds a barrier): records in *failed that this
 * thread's buffers were not allocated (ok == 0); returns whether every thread's were. */
static inline int cconv_team_allocated(int ok, int *failed)
{
    if (!ok) {
#pragma omp atomic write
        *failed = 1;
    }
#pragma omp barrier
    return !*failed;
}

/* 64-bit size arithmetic with overflow detection: returns 0 on overflow. */
static inline int cconv_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int cconv_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }

static inline size_t cconv_dtype_size(cconv_dtype t) { return t == CCONV_FLOAT64 ? 8 : 4; }
/* Where channel_shuffle(y, sg) puts channel c of C: c = i*(C/sg) + k goes to k*sg + i. */
static inline int64_t cconv_shuffled_channel(int64_t c, int64_t C, int64_t sg)
{
    return sg == 1 ? c : c % (C / sg) * sg + c / (C / sg);
}

/* The one heap allocator (core/alloc.c): 64-byte aligned; NULL when out of memory;
 * cconv_free(NULL) does nothing. */
void *cconv_alloc(size_t bytes);
void *cconv_alloc_zeroed(size_t bytes);
void cconv_free(void *p);

#endif
