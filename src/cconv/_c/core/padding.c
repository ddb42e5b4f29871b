/* The padded input: where each padded coordinate reads from, and checks of values. */
#include "core/plan.h"
#include "core/padmap.h"

int cconv_pad_maps(const cconv_conv_desc *d, const cconv_padding *pad, int64_t *map[3])
{
    map[0] = cconv_alloc((size_t)(pad->size[0] + pad->size[1] + pad->size[2]) * sizeof(int64_t));
    if (!map[0]) return 0;
    map[1] = map[0] + pad->size[0];
    map[2] = map[1] + pad->size[1];
    for (int a = 0; a < 3; a++)
        for (int64_t z = 0; z < pad->size[a]; z++)
            map[a][z] = cconv_pad_source(z - pad->lo[a], d->in_size[a],
                                         d->transposed ? CCONV_PAD_ZEROS : d->padding_mode);
    return 1;
}

int cconv_all_finite(const void *w, int64_t n, cconv_dtype dt)
{
    int bad = 0;
    if (dt == CCONV_FLOAT64) for (int64_t i = 0; i < n; i++) bad |= ((const double *)w)[i] * 0 != 0;
    else for (int64_t i = 0; i < n; i++) bad |= ((const float *)w)[i] * 0 != 0;
    return !bad;
}
