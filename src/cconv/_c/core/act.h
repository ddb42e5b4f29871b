/* The fused activation (cconv_conv_desc.activation), applied to outputs just stored, still in
 * registers' reach in L1: the one helper every driver calls after its stores. Written as compares,
 * not max/min intrinsics, so that NaN and -0.0 come out as PyTorch's relu, hardtanh and clamp give
 * them (x < lo is false for NaN, and for -0.0 against 0: x stays); the compiler vectorises it. */
#ifndef CCONV_CORE_ACT_H
#define CCONV_CORE_ACT_H
#include "cconv.h"

#define CCONV_ACT_LOOP(T)                                                                          \
    do {                                                                                           \
        const T lo = (T)d->act_min, hi = (T)d->act_max;                                            \
        T *v = y;                                                                                  \
        for (int64_t r = 0; r < rows; r++, v += ystride)                                           \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const T t = v[i] < lo ? lo : v[i];                                                 \
                v[i] = t > hi ? hi : t;                                                            \
            }                                                                                      \
    } while (0)

/* Clamps rows x n elements of y (d's dtype; rows ystride elements apart) to d's bounds; nothing
 * without an activation (one compare on the paths that have none). */
static inline void cconv_act_rows(const cconv_conv_desc *d, void *y, int64_t rows, int64_t n, int64_t ystride)
{
    if (d->activation == CCONV_ACT_NONE) return;
    if (d->dtype == CCONV_FLOAT64) CCONV_ACT_LOOP(double);
    else CCONV_ACT_LOOP(float);
}
#undef CCONV_ACT_LOOP

#endif
