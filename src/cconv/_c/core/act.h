/* The fused activation (cconv_conv_desc.activation), applied to outputs just stored, still in
 * L1: the one helper every driver calls after its stores. It runs the ISA's clamp
 * (ukernels/act.c.in): NaN and -0.0 come out as PyTorch's relu, hardtanh and clamp give them. */
#ifndef CCONV_CORE_ACT_H
#define CCONV_CORE_ACT_H
#include "internal.h"

/* Adds the bias (bcol[i] to column i, else brow[r] to row r, else none) to rows x n elements of y
 * (d's dtype; rows ystride elements apart) and clamps them to d's bounds with isa's clamp; nothing
 * without an activation (one compare on the paths that have none). */
static inline void cconv_act_bias_rows(const cconv_conv_desc *d, const cconv_isa_table *isa, void *y,
                                       int64_t rows, int64_t n, int64_t ystride, const void *bcol,
                                       const void *brow)
{
    if (d->activation == CCONV_ACT_NONE) return;
    isa->act[d->dtype == CCONV_FLOAT64](y, rows, n, ystride, d->act_min, d->act_max, bcol, brow);
}
/* The same on outputs that have their bias. */
static inline void cconv_act_rows(const cconv_conv_desc *d, const cconv_isa_table *isa, void *y, int64_t rows,
                                  int64_t n, int64_t ystride)
{
    cconv_act_bias_rows(d, isa, y, rows, n, ystride, NULL, NULL);
}

#endif
