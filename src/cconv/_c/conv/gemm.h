/* The GEMM family: direct convolution on register tiles, forward and transposed (stride phases:
 * conv/passes.h), any groups, layout and padding mode. */
#ifndef CCONV_GEMM_H
#define CCONV_GEMM_H
#include "conv/band.h"
#include "conv/passes.h"

typedef struct {
    cconv_padding pad;
    cconv_tile_kernel tile;
    int64_t cig, cog, nblk, kc;
    /* Blocking (config/<isa>.h): bytes of the accumulators of the chunk of tiles the driver runs
     * one kc block at a time, and of a band buffer. */
    int64_t mc_bytes, band_bytes;
    /* cog < NR: a block packs gpb whole groups side by side, block-diagonal weights over their
     * gpb*cig input channels (one gpb times longer reduction, not gpb mostly empty tiles).
     * kmax: reduction length of a block; nblocks: blocks in all. */
    int64_t gpb, kmax, nblocks;
    /* gpb > 1 multiplies each group's input by the other groups' zero weights (0 * Inf = NaN):
     * calls whose input holds Inf or NaN run a one_group_blocks plan made from weight_copy. */
    int one_group_blocks;
    void *weight_copy;
    /* Few input channels (a stem: 3): a kernel row's KW taps read one contiguous run of KW*C_in
     * values, folded into the reduction (k = kw*C_in + c) rather than KW loops of C_in steps.
     * wmerge: KW folded this way, else 1. */
    int64_t wmerge;
    /* Each group's last block runs on the narrowest tile holding cog % NR (packed that wide):
     * C_out 128 on AVX-512 is blocks 48, 48 and 32 on the mid tile. */
    int has_tail;
    cconv_tile_kernel tail;
    int npasses;
    pass_t *passes; /* wpack: [g][cout block][kc block][tap][k][NR] (gpb > 1: [block][kc block]...) */
    /* Every packed weight is finite: a tap reading only zero padding adds exactly nothing, and
     * the driver skips it (tile_taps). */
    int wfinite;
} gemm_state;

/* A GEMM job computes a band of B output rows x WS columns (one image, one output depth, a range
 * of channel blocks). Unless x can be read in place (channels-last, no padding), it first copies
 * the padded channels-last input its band reads (DS x R x WB x C_in) into a per-thread buffer
 * that stays in L2: a copy into cache, not a padded copy (for NCHW a transpose) of the whole batch
 * through memory. Bands are sized so the buffer fits the ISA's gemm_band_bytes (band_bytes). */
#define GEMM_MIN_BAND_PIX 128

typedef struct {
    int64_t B, WS;        /* output rows and columns of a band */
    int64_t DS, R, WB;    /* planes, rows and columns of the band's input buffer */
    int64_t nbh, nbw;     /* bands along H and along W */
    int64_t blocks, rs, nr; /* (group, cout block) pairs, pairs per job, ranges */
    int direct;           /* read x in place: DS, R, WB are the whole input's sizes */
    int shared;           /* read one padded copy of the whole input made per call (nr > 1
                           * would copy each band nr times); DS, R, WB as for direct */
} gemm_band;

/* Elements of a thread's accumulators: a chunk of tiles (mc_bytes) where the reduction splits
 * into kc blocks (the driver runs a chunk per kc block), else one tile. */
static inline int64_t cconv_gemm_acc_elems(const gemm_state *s, int64_t es)
{
    const int64_t chunk = s->kmax > s->kc ? s->mc_bytes / es : 0;
    return chunk > CCONV_TILE_MAX ? chunk : CCONV_TILE_MAX;
}

void cconv_gemm_band_geometry(const cconv_conv_desc *d, const gemm_state *s, const pass_t *ps, gemm_band *b);
/* Whether all passes (stride phases) share band geometry, output grid and input steps: the
 * driver then runs them together on one band fill per job. */
#define GEMM_FUSE_MAX_PASSES 64
/* Tile t's speed relative to the ISA's wide tile (the tile choices' cost models). */
double cconv_gemm_tile_speed(const cconv_isa_table *isa, int dt, const cconv_tile_kernel *t);

int cconv_gemm_passes_share_bands(const cconv_conv_desc *d, const gemm_state *s);

/* Packs every pass's filters (s's blocking, into the passes' wpack); returns whether every
 * packed value is finite, and for transposed filters whether every filter value is. */
int cconv_gemm_pack_f32(const cconv_conv_desc *d, const gemm_state *s, const void *weight);
int cconv_gemm_pack_f64(const cconv_conv_desc *d, const gemm_state *s, const void *weight);
cconv_status cconv_gemm_run_f32(const cconv_plan *p, const gemm_state *s, const float *x, float *y,
                                int64_t *const map[3], int64_t sg);
cconv_status cconv_gemm_run_f64(const cconv_plan *p, const gemm_state *s, const double *x, double *y,
                                int64_t *const map[3], int64_t sg);

#endif
