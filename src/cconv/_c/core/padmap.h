/* Where a padded coordinate reads from: index in [0, n) or -1 for a zero. */
#ifndef CCONV_PADMAP_H
#define CCONV_PADMAP_H
#include "cconv.h"

static inline int64_t cconv_pad_source(int64_t i, int64_t n, cconv_padding_mode mode)
{
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case CCONV_PAD_REFLECT: /* mirror without repeating the edge; validation keeps pad < n */
        if (n == 1) return 0;
        {
            int64_t period = 2 * (n - 1), r = i % period;
            if (r < 0) r += period;
            return r < n ? r : period - r;
        }
    case CCONV_PAD_SYMMETRIC: { /* mirror repeating the edge: -1 reads 0, n reads n - 1 */
        int64_t period = 2 * n, r = i % period;
        if (r < 0) r += period;
        return r < n ? r : period - 1 - r;
    }
    case CCONV_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case CCONV_PAD_CIRCULAR: {
        int64_t r = i % n;
        return r < 0 ? r + n : r;
    }
    default: return -1;
    }
}
#endif
