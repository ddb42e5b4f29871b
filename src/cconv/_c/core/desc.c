/* The descriptor: validation (the public cconv_conv_output_size) and the form plans take. */
#include "core/plan.h"

/* A forward stride longer than the padded input leaves one output along that dimension, whatever
 * the stride: plans take the smallest stride giving it, since the kernels lay buffers out by stride
 * phase (a stride of 2**40 failed to allocate, two overflowed their size). d: validated. */
void cconv_desc_clamp_strides(cconv_conv_desc *d)
{
    if (d->transposed) return; /* there the stride sets the output size */
    for (int a = 0; a < 3; a++) {
        const int64_t room = d->in_size[a] + d->pad_before[a] + d->pad_after[a] -
                             (d->dilation[a] * (d->kernel[a] - 1) + 1); /* >= 0, no overflow: validated */
        if (d->out_size[a] == 1 && d->stride[a] > room + 1) d->stride[a] = room + 1;
    }
}

/* *r = a * b * c; 0 on overflow. */
static int mul3(int64_t a, int64_t b, int64_t c, int64_t *r) { return cconv_mul(a, b, r) && cconv_mul(*r, c, r); }

cconv_status cconv_conv_output_size(cconv_conv_desc *d)
{
    if (!d || (d->dtype != CCONV_FLOAT32 && d->dtype != CCONV_FLOAT64)) return CCONV_ERR_INVALID;
    if (d->padding_mode < CCONV_PAD_ZEROS || d->padding_mode > CCONV_PAD_SYMMETRIC) return CCONV_ERR_INVALID;
    if (d->algorithm < CCONV_ALGO_AUTO || d->algorithm > CCONV_ALGO_EXACT) return CCONV_ERR_INVALID;
    if (d->activation != CCONV_ACT_NONE &&
        (d->activation != CCONV_ACT_CLAMP || d->act_min != d->act_min || d->act_max != d->act_max))
        return CCONV_ERR_INVALID;
    if (d->batch < 0 || d->in_channels < 1 || d->out_channels < 1 || d->groups < 1) return CCONV_ERR_INVALID;
    if (d->in_channels % d->groups || d->out_channels % d->groups) return CCONV_ERR_INVALID;
    if (d->transposed && d->padding_mode != CCONV_PAD_ZEROS) return CCONV_ERR_INVALID;
    for (int a = 0; a < 3; a++) {
        const int64_t i = d->in_size[a], k = d->kernel[a], s = d->stride[a], dl = d->dilation[a];
        const int64_t pb = d->pad_before[a], pa = d->pad_after[a], op = d->output_padding[a];
        int64_t span, t;
        if (i < 1 || k < 1 || s < 1 || dl < 1 || pb < 0 || pa < 0 || op < 0) return CCONV_ERR_INVALID;
        if (!cconv_mul(dl, k - 1, &span) || !cconv_add(span, 1, &span)) return CCONV_ERR_OVERFLOW;
        if (!d->transposed) {
            if (op != 0) return CCONV_ERR_INVALID;
            if (d->padding_mode == CCONV_PAD_REFLECT && (pb >= i || pa >= i)) return CCONV_ERR_INVALID;
            if ((d->padding_mode == CCONV_PAD_CIRCULAR || d->padding_mode == CCONV_PAD_SYMMETRIC) &&
                (pb > i || pa > i))
                return CCONV_ERR_INVALID;
            if (!cconv_add(i, pb, &t) || !cconv_add(t, pa, &t)) return CCONV_ERR_OVERFLOW;
            if (t < span) return CCONV_ERR_INVALID;
            d->out_size[a] = (t - span) / s + 1;
        } else {
            if (op >= (s > dl ? s : dl)) return CCONV_ERR_INVALID;
            if (!cconv_mul(i - 1, s, &t) || !cconv_add(t, span, &t) || !cconv_add(t, op, &t))
                return CCONV_ERR_OVERFLOW;
            if (pb >= t || pa >= t - pb) return CCONV_ERR_INVALID; /* (pb + pa may overflow) */
            t -= pb + pa;
            d->out_size[a] = t;
        }
    }
    /* Every tensor's element count must fit in int64 (and its byte count, 8 a value, in size_t). */
    int64_t n, ksz, isp, osp;
    const int64_t *I = d->in_size, *O = d->out_size, *K = d->kernel;
    if (!mul3(I[0], I[1], I[2], &isp) || !mul3(O[0], O[1], O[2], &osp) || !mul3(K[0], K[1], K[2], &ksz) ||
        !mul3(d->batch, d->in_channels, isp, &n) || !cconv_mul(n, 8, &n) ||
        !mul3(d->batch, d->out_channels, osp, &n) || !cconv_mul(n, 8, &n) ||
        !mul3(d->out_channels, d->in_channels / d->groups, ksz, &n) || !cconv_mul(n, 8, &n))
        return CCONV_ERR_OVERFLOW;
    if (ksz > (1 << 24)) return CCONV_ERR_INVALID; /* taps are counted in int */
    return CCONV_OK;
}

void cconv_padding_plain(const cconv_conv_desc *d, cconv_padding *pad)
{
    for (int a = 0; a < 3; a++) {
        pad->lo[a] = d->pad_before[a];
        pad->size[a] = d->in_size[a] + d->pad_before[a] + d->pad_after[a];
    }
}
