/* Plans and what every convolution algorithm (an implementation, in conv/) provides; the list of
 * implementations is core/plan.c. */
#ifndef CCONV_PLAN_H
#define CCONV_PLAN_H
#include "internal.h"

/* The padded input an algorithm reads, per dimension: lo[a] padding elements before the input,
 * size[a] in all (padding materialised: kernels never test borders). */
typedef struct {
    int64_t lo[3], size[3];
} cconv_padding;

/* One execution's arrays and how they lie beyond the descriptor. */
typedef struct {
    const void *x;
    void *y;
    /* > 1: channel_shuffle(y, shuffle_groups) fused into the stores (channels-first) */
    int64_t shuffle_groups;
    /* Channels-first channel strides of x and y; 0: the plane size (a flattened band runs its
     * sub-plans in place on rows of larger tensors). */
    int64_t x_cstride, y_cstride;
} cconv_exec;

typedef struct cconv_impl cconv_impl;

struct cconv_plan {
    cconv_conv_desc d; /* validated, strides clamped */
    const cconv_impl *impl;
    const cconv_isa_table *isa;
    void *bias;  /* a copy of the bias, or NULL */
    void *state; /* the implementation's own */
    int64_t weight_bytes, workspace_bytes;
};

/* One algorithm. cannot: 0 when it can run d (NULL: every d), else nonzero with why not written
 * to why (n bytes, a sentence for the user; none when n is 0); prefer: auto's rule beyond the
 * list's order (NULL: always), it may read the filters; create: fills p->state, p->weight_bytes
 * and p->workspace_bytes (p->d, p->isa and p->bias are set; on failure the plan's destroy frees
 * what it made); execute: one call (never with batch 0); destroy: frees the state (NULL: nothing). */
struct cconv_impl {
    const char *name;
    cconv_algorithm algorithm;
    int lossy; /* rounds other than a direct sum: never taken for CCONV_ALGO_EXACT */
    int (*cannot)(const cconv_conv_desc *d, char *why, size_t n);
    int (*prefer)(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight);
    cconv_status (*create)(cconv_plan *p, const void *weight);
    cconv_status (*execute)(const cconv_plan *p, const cconv_exec *e);
    void (*destroy)(void *state);
    int shuffles; /* runs shuffle_groups > 1 */
};

/* create's answer when the filters call for the reference algorithm (see conv/gemm.c). */
#define CCONV_USE_REFERENCE ((cconv_status)100)

extern const cconv_impl cconv_impl_winograd_transposed, cconv_impl_depthwise, cconv_impl_grouped,
    cconv_impl_winograd, cconv_impl_pointwise_cf, cconv_impl_direct_cf, cconv_impl_gemm, cconv_impl_reference;

/* A plan of implementation impl (or, impl NULL, of the list's choice for d->algorithm) for the
 * validated descriptor d: what fallbacks and composites make without validating again. */
cconv_status cconv_plan_make(const cconv_conv_desc *d, const cconv_impl *impl, const void *weight,
                             const void *bias, cconv_plan **out);
/* Runs e on a plan of impl made for this call only (what a call's input calls for). */
cconv_status cconv_plan_run_once(const cconv_conv_desc *d, const cconv_impl *impl, const void *weight,
                                 const void *bias, const cconv_exec *e);
/* Runs p on e, serially when the work is small (a team costs more than it saves). */
cconv_status cconv_plan_run(const cconv_plan *p, const cconv_exec *e);

void cconv_desc_clamp_strides(cconv_conv_desc *d);
/* The descriptor's own padding (forward, one pass). */
void cconv_padding_plain(const cconv_conv_desc *d, cconv_padding *pad);

/* Source index of every padded coordinate (cconv_pad_source; zeros for a transposed convolution),
 * in one allocation the caller frees as map[0]; 0: no memory. */
int cconv_pad_maps(const cconv_conv_desc *d, const cconv_padding *pad, int64_t *map[3]);

/* Whether all n values are finite (no Inf, no NaN). */
int cconv_all_finite(const void *v, int64_t n, cconv_dtype dt);
/* Whether the work is small enough to run on the calling thread: d's, or macs multiply-adds. */
int cconv_small_work(const cconv_conv_desc *d);
int cconv_small_macs(double macs);

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t floor_div(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
/* dst[0] = src[0] for one element of es (4 or 8) bytes: a plain move, not a call to memcpy. */
static inline void cconv_copy1(void *dst, const void *src, size_t es)
{
    if (es == 8) memcpy(dst, src, 8);
    else memcpy(dst, src, 4);
}

/* rows x K filters (row r's at src[r*K .. r*K + K)) as the pw_band and pw_cf tiles broadcast them:
 * [rows / CCONV_PW_MR blocks][K][CCONV_PW_MR], zeros past the last row. */
void cconv_pack_pw_rows(void *dst, const void *src, int64_t rows, int64_t K, size_t es);

static inline int64_t cconv_filter_count(const cconv_conv_desc *d)
{
    const int64_t per = d->transposed ? d->in_channels * (d->out_channels / d->groups)
                                      : d->out_channels * (d->in_channels / d->groups);
    return per * d->kernel[0] * d->kernel[1] * d->kernel[2];
}

/* Whether d is 2-D in fact, its one output plane reading the one input plane (the fused paths). */
static inline int cconv_one_plane(const cconv_conv_desc *d)
{
    return d->in_size[0] == 1 && d->kernel[0] == 1 && d->out_size[0] == 1 && d->pad_before[0] == 0;
}

#endif
