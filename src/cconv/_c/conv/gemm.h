/* The GEMM family (conv/gemm.c): direct convolution on register tiles, forward and transposed
 * (stride phases: conv/passes.h), any groups, layout and padding mode. */
#ifndef CCONV_GEMM_H
#define CCONV_GEMM_H
#include "conv/band.h"
#include "conv/passes.h"

typedef struct {
    cconv_padding pad;
    cconv_tile_kernel tile;
    int64_t cig, cog, nblk, kc;
    /* GEMM channel blocks. With few output channels per group (cog < NR), one block packs gpb
     * whole groups side by side in the NR columns, with block-diagonal weights over their gpb*cig
     * input channels: the tile then runs a gpb times longer reduction per call instead of one
     * mostly-empty tile per group. kmax: reduction length of a block; nblocks: blocks in all. */
    int64_t gpb, kmax, nblocks;
    /* A packed block multiplies every input channel it holds by the other groups' zero weights,
     * so an Inf or NaN in one group's input would reach the other groups' outputs (0 * Inf =
     * NaN). Calls whose input holds one run a plan made then from weight_copy with one group per
     * block (one_group_blocks), which reads each group's input for that group only. */
    int one_group_blocks;
    void *weight_copy;
    /* With few input channels (a stem: 3), the KW taps of one kernel row read one contiguous run
     * of KW*C_in values of the channels-last input, so they are folded into the reduction
     * (k = kw*C_in + c) instead of running KW tile loops of C_in steps each. wmerge: KW folded
     * this way, else 1. */
    int64_t wmerge;
    /* When cog % NR fits a narrower tile (mid or narrow), each group's last block runs on it
     * (its weights packed that wide) instead of a partly empty wide tile (C_out 128 on AVX-512:
     * blocks 48, 48 and a 32 on the mid tile; C_out 64: 48 and a 16 on the narrow one). */
    int has_tail;
    cconv_tile_kernel tail;
    int npasses;
    pass_t *passes; /* wpack: [g][cout block][kc block][tap][k][NR] (gpb > 1: [block][kc block]...) */
    /* Every packed weight is finite, so a tap whose rows all lie in the zero padding adds
     * exactly nothing (0 * w, never 0 * Inf) and run_gemm skips it (see tile_taps). */
    int wfinite;
} gemm_state;


/* A GEMM job computes a band of B output rows x WS output columns (one image, one output depth,
 * a range of output-channel blocks). Unless the input can be read in place (channels-last, no
 * padding), the job first builds a padded channels-last copy of just the input its band reads
 * (DS planes x R rows x WB columns x C_in) in a per-thread buffer that stays in L2. That replaces
 * a padded copy of the whole batch (one more pass over memory, and for NCHW a transpose through
 * memory) by a copy into cache, and bounds the workspace to one buffer per thread. Halo rows are
 * copied once per band; bands are sized so the buffer fits GEMM_BAND_BYTES. */
#define GEMM_BAND_BYTES (512 * 1024)
#define GEMM_MIN_BAND_PIX 128

typedef struct {
    int64_t B, WS;        /* output rows and columns of a band */
    int64_t DS, R, WB;    /* planes, rows and columns of the band's input buffer */
    int64_t nbh, nbw;     /* bands along H and along W */
    int64_t blocks, rs, nr; /* (group, cout block) pairs, pairs per job, ranges */
    int direct;           /* read x in place: DS, R, WB are the whole input's sizes */
    int shared;           /* read one padded channels-last copy of the whole input, made once
                           * per call: when jobs split the channel blocks (nr > 1) each band
                           * would otherwise be copied nr times. DS, R, WB as for direct. */
} gemm_band;

void cconv_gemm_band_geometry(const cconv_conv_desc *d, const gemm_state *s, const pass_t *ps, gemm_band *b);
/* Whether all passes (stride phases) of a GEMM plan have the same band geometry, output grid and
 * input steps, so that run_gemm runs them together, job by job, on one band fill each. */
#define GEMM_FUSE_MAX_PASSES 64
int cconv_gemm_passes_share_bands(const cconv_conv_desc *d, const gemm_state *s);

/* conv/gemm_pack.c.in: packs pass ps's filters (s's blocking); returns whether every packed
 * value is finite. */
int cconv_gemm_pack_f32(const cconv_conv_desc *d, const gemm_state *s, pass_t *ps, const void *weight);
int cconv_gemm_pack_f64(const cconv_conv_desc *d, const gemm_state *s, pass_t *ps, const void *weight);
/* conv/gemm_run.c.in: one call of the GEMM driver. */
cconv_status cconv_gemm_run_f32(const cconv_plan *p, const gemm_state *s, const float *x, float *y,
                                int64_t *const map[3], int64_t sg);
cconv_status cconv_gemm_run_f64(const cconv_plan *p, const gemm_state *s, const double *x, double *y,
                                int64_t *const map[3], int64_t sg);

#endif
