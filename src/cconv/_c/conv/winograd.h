/* Winograd F(4x4, 3x3) (conv/winograd.c; driver conv/winograd_run.c.in). */
#ifndef CCONV_WINOGRAD_H
#define CCONV_WINOGRAD_H
#include "conv/band.h"

typedef struct {
    cconv_padding pad;
    cconv_tile_kernel tile; /* the mid tile: 36 GEMMs per block, a third block of 16 wastes more */
    int64_t nblk;
    void *u;      /* transformed filters U [36][cout block][C_in][NR] */
    /* The filters as given, for the GEMM plan of calls whose input holds Inf or NaN, or of every
     * call when the filters do (fallback_always). */
    void *weight;
    int fallback_always;
} wino_state;

/* Jobs: (image, band of tile rows, band of tile columns, chunk of cout blocks). A job transforms
 * its tiles' inputs (V: 36 x tiles x C_in), runs 36 GEMMs with U into M (36 x cout blocks x tiles
 * x NR) and transforms M back; V and M fit WINO_BYTES, in L2/L3 while U streams past.
 * Dilation dh x dw: a phase's outputs (rows py + dh*i, columns px + dw*j) are an undilated 3x3
 * convolution over every dh-th padded row and dw-th column; a tile is 4x4 outputs of one phase.
 * A job's dense output rows [4*dh*tr0, 4*dh*(tr0 + TRB)) read padded rows [4*dh*tr0, +R): one
 * band that all phases share, as strided views. */
typedef struct {
    int64_t dh, dw;     /* dilation: phases per tile row and column */
    int64_t th, tw;     /* 4x4 output tiles of a phase along H and W */
    int64_t TRB, TCB;   /* tile rows and columns of a job (per phase) */
    int64_t nbr, nbc;   /* bands along H and W */
    int64_t tiles;      /* tiles of a full job: TRB*TCB*dh*dw */
    int64_t TBp;        /* those rounded up to whole register tiles */
    int64_t R, WB;      /* input rows and columns of a job's band buffer: dh*(4*TRB + 2), dw*(4*TCB + 2) */
    int64_t bpc, nch;   /* cout blocks per chunk, chunks */
    int64_t fit;        /* tiles whose V and M fit WINO_BYTES (a job has at least MR, and every phase) */
} wino_geom;

void cconv_wino_geometry(const cconv_conv_desc *d, const cconv_tile_kernel *tile, int64_t nblk, wino_geom *g);

/* Tile t of a job with ntc tile columns (dense tile row ti*dh + py, column tj*dw + px): its first
 * output, and its patch's first entry in the band, at r0 = 4*dh*ti + py, c0 = 4*dw*tj + px. */
static inline void wino_tile_origin(const wino_geom *g, int64_t ntc, int64_t t, int64_t *r0, int64_t *c0)
{
    const int64_t u = t / (ntc * g->dw), v = t % (ntc * g->dw);
    *r0 = u / g->dh * 4 * g->dh + u % g->dh;
    *c0 = v / g->dw * 4 * g->dw + v % g->dw;
}

/* Whether Winograd runs d: 3x3 along H and W with stride 1 there, any dilation and depth kernel,
 * one group. A transposed d is always refused, the reason naming what keeps it from running as
 * its forward equivalent (conv/winograd_transposed.c). */
int cconv_wino_cannot(const cconv_conv_desc *d, char *why, size_t n);
/* auto's rule for a forward d: enough work for the transforms to pay (reads the filters). */
int cconv_wino_prefer(const cconv_conv_desc *d, const cconv_isa_table *isa, const void *weight);

cconv_status cconv_wino_run_f32(const cconv_plan *p, const wino_state *s, const float *x, float *y,
                                int64_t *const map[3], int *nonfinite);
cconv_status cconv_wino_run_f64(const cconv_plan *p, const wino_state *s, const double *x, double *y,
                                int64_t *const map[3], int *nonfinite);

#endif
