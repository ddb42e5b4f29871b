/* Channel shuffle (ShuffleNet): a pure permutation of channels, so a memory copy. */
#include <string.h>
#include "internal.h"

cconv_status cconv_channel_shuffle(cconv_dtype dtype, int channels_last, int64_t batch,
                                   int64_t channels, int64_t spatial, int64_t groups,
                                   const void *xv, void *yv)
{
    int64_t total;
    if ((dtype != CCONV_FLOAT32 && dtype != CCONV_FLOAT64) || batch < 0 || channels < 0 || spatial < 0 ||
        groups <= 0 || channels % groups != 0)
        return CCONV_ERR_INVALID;
    if (!cconv_mul(batch, channels, &total) || !cconv_mul(total, spatial, &total))
        return CCONV_ERR_OVERFLOW;
    if (total == 0) return CCONV_OK;
    if (!xv || !yv) return CCONV_ERR_INVALID;
    const size_t es = cconv_dtype_size(dtype);
    const char *x = (const char *)xv;
    char *y = (char *)yv;
    const int64_t cpg = channels / groups;
    /* Small copies stay on the calling thread (team start-up would dominate). */
    const int nt = (int64_t)(total * (int64_t)es) < (1 << 20) ? 1 : cconv_threads();
    (void)nt;
    if (!channels_last) {
        /* Whole planes move: input channel g*cpg + j -> output j*groups + g. */
        const size_t plane = (size_t)spatial * es;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t job = 0; job < batch * channels; job++) {
            const int64_t n = job / channels, ci = job % channels;
            const int64_t co = (ci % cpg) * groups + ci / cpg;
            memcpy(y + (size_t)(n * channels + co) * plane, x + (size_t)(n * channels + ci) * plane,
                   plane);
        }
    } else {
        /* Each pixel's channel vector is transposed as a (groups, cpg) matrix through registers
         * (the ISA's shuffle_cl; an element loop was well behind torch, docs/perf-notes.md), a
         * contiguous range of pixels a thread. */
        const cconv_shuffle_cl_fn shuffle = cconv_active_isa()->shuffle_cl[es == 8];
        const int64_t npix = batch * spatial, row = channels * (int64_t)es;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int i = 0; i < nt; i++) {
            const int64_t p0 = npix * i / nt, p1 = npix * (i + 1) / nt;
            shuffle(x + p0 * row, y + p0 * row, p1 - p0, channels, groups);
        }
    }
    return CCONV_OK;
}
