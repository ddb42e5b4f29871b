/* The weight gradient (cconv_conv_weight_grad): plan in grad/weight_grad.c, drivers in
 * grad/weight_grad_run.c.in.
 *
 * dw[co, ci, tap] = sum over images n and output pixels o of gy[n, co, o] * x_pad[n, ci, o*s + tap*d]
 * is a GEMM (rows: (ci, tap); columns: co) with a huge reduction over batch x pixels, cut into
 * "units" (image, output plane, band of output rows, band of columns) and consecutive units into
 * "chunks", by the shape alone. One thread accumulates a chunk's partial dw, units in order; the
 * partials are summed in chunk order. Work items are (chunk, range of column blocks): results are
 * bitwise identical for any number of threads and any scheduling.
 *
 * Per unit, the padded input rows it reads (any padding mode, through the padding maps) go into a
 * per-thread channels-first band split into stride phases, so that every (ci, tap) reads one
 * contiguous run per output row, for NCHW and NHWC alike. Then
 * - "gemm": per block of NR output channels, the unit's grad_output packed [pixel][NR] is swept by
 *   the register tile, MR (ci, tap) rows at a time, into the partial laid out [block][j][NR];
 * - "pairs" (depthwise, narrow groups): one vectorised sweep per (co, ci) pair, all taps of the
 *   pair accumulated in registers: bandwidth-bound, no lanes wasted on channels.
 * Channels-last depthwise with multiplier 1 skips the bands (cconv_gw_run_dw_cl). */
#ifndef CCONV_WEIGHT_GRAD_H
#define CCONV_WEIGHT_GRAD_H
#include "core/plan.h"

/* Per-thread band budget: stays in L2 with the packed grad_output. */
#define CCONV_GW_BAND_BYTES (256 * 1024)
/* Units and chunks to aim for: enough work items to balance a few threads, for any batch. */
#define CCONV_GW_MIN_UNITS 16
#define CCONV_GW_CHUNKS 16
/* Memory all chunk partials may take together (at least one chunk always runs). */
#define CCONV_GW_PARTIAL_BYTES (64.0 * 1024 * 1024)
/* GEMM: the partial one (group, channel block) accumulates into, for all its cout blocks, is read
 * and written back once per unit: keep it in L2. */
#define CCONV_GW_BLOCK_BYTES (192 * 1024)
/* Elements after the band: the pair kernel reads up to one vector (16 elements) past a row. */
#define CCONV_GW_SLACK 64

typedef struct {
    int pairs;                    /* 1: pair kernel, 0: GEMM tile */
    int inplace;                  /* read x in place: channels-first, s_w = 1, no padding; or
                                   * channels-last 1x1, stride 1, no padding */
    int panall;                   /* GEMM: pack a unit's grad_output for all cout blocks at once */
    int prepack;                  /* GEMM: pack all of grad_output once per call, before the items */
    int gcouter;                  /* GEMM: an item runs its units per (group, channel block), not
                                   * its blocks per unit: that block's partial stays in L2 */
    int direct;                   /* gcouter with one chunk: a (group, channel block)'s partial in a
                                   * per-thread buffer, transposed into dw when its units are done */
    int64_t B, WS, nbh, nbw;      /* output rows / columns per unit, units along H and W */
    int64_t CB, ncib;             /* input channels per band, channel blocks per group */
    int64_t A, PL, RL, chan;      /* band: rows per row phase, phase length, row length, channel size */
    int64_t nunits, nchunks, nblocks, rs, nsplit;
    int64_t MR, NR, nblk, jpad;   /* GEMM only: tile, cout blocks per group, rows per channel block */
    int64_t lanes;                /* pairs only: partials are kept per vector lane */
    int multi;                    /* channels-last, several groups: one band (and for pairs one
                                   * pack) of every channel per unit; items split by units only */
    int64_t part;                 /* elements of one chunk's partial */
} gw_geom;

/* Bit ph set: some tap reads stride phase ph along a dimension (kernel k, dilation dl, stride s).
 * A 1x1 kernel with stride 2 reads only phase 0: the other rows and columns are never filled. */
static inline uint64_t gw_phases_read(int64_t k, int64_t dl, int64_t s)
{
    if (s > 64) return ~(uint64_t)0;
    uint64_t m = 0;
    for (int64_t t = 0; t < k; t++) m |= (uint64_t)1 << ((t * dl) % s);
    return m;
}

typedef cconv_status cconv_gw_run_fn(const cconv_conv_desc *d, const cconv_isa_table *isa,
                                     const cconv_gw_tile_kernel *tile, const gw_geom *q,
                                     const int64_t padded[3], int64_t *const map[3], const void *x,
                                     const void *gy, void *dw);
cconv_gw_run_fn cconv_gw_run_f32, cconv_gw_run_f64;
typedef cconv_status cconv_gw_run_dw_cl_fn(const cconv_conv_desc *d, const cconv_isa_table *isa,
                                           int64_t *const map[3], const void *x, const void *gy, void *dw);
cconv_gw_run_dw_cl_fn cconv_gw_run_dw_cl_f32, cconv_gw_run_dw_cl_f64;

#endif
