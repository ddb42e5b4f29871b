/* The accumulators of a register tile, shared by ukernels/gemm_tile.c.in and gw_tile.c.in:
 * c[MR][NV] vectors (MR, NV, NR = NV * VL: the instance's compile-time shape), so the unrolled
 * loops below see constants. Included after vec.h and the instance's enum of its shape. */
#ifndef CCONV_UKERNELS_TILE_H
#define CCONV_UKERNELS_TILE_H

/* c = acc (accumulate) or zero. */
static inline __attribute__((always_inline)) void tile_load(VT c[MR][NV], const T *acc, int accumulate)
{
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) c[i][v] = accumulate ? vload(acc + i * NR + v * VL) : (VT){0};
}

/* One step of the reduction: c[i] += xr[i][k] * w[0..NR), each x value broadcast from memory. */
static inline __attribute__((always_inline)) void tile_step(VT c[MR][NV], const T *const xr[MR], int64_t k, const T *w)
{
    VT wk[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) wk[v] = vload(w + v * VL);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
        const T b = xr[i][k];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) c[i][v] += b * wk[v];
    }
}

static inline __attribute__((always_inline)) void tile_store(T *acc, VT c[MR][NV])
{
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) vstore(acc + i * NR + v * VL, c[i][v]);
}

#endif
