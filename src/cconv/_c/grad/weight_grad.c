/* The weight gradient (grad/weight_grad.h): its blocking, tile choice and the exchange of x and
 * grad_output. */
#include <string.h>
#include "grad/weight_grad.h"

/* Channels-last with several groups: a pixel's channels share cache lines, so splitting work
 * items by groups would have every item read all of x and grad_output (see gw_geom.multi). */
static int gw_multi_hint(const cconv_conv_desc *d)
{
    return d->channels_last && d->groups > 1;
}

static int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

/* Blocking of a weight gradient, by the descriptor and the tile shape alone; 0 on overflow. Blocks
 * are (group, channel block, cout block) for the GEMM, (group, channel block) for pairs; a band
 * holds one channel block's input rows. */
static int gw_geometry(const cconv_conv_desc *d, const cconv_gw_tile_kernel *tile, int64_t lanes,
                       gw_geom *q)
{
    const int64_t *O = d->out_size, *K = d->kernel, *S = d->stride, *Dl = d->dilation;
    const int64_t G = d->groups, cig = d->in_channels / G, cog = d->out_channels / G;
    const int64_t ksz = K[0] * K[1] * K[2], es = (int64_t)cconv_dtype_size(d->dtype);
    const int64_t span_h = (K[1] - 1) * Dl[1] + 1, span_w = (K[2] - 1) * Dl[2] + 1;
    const int64_t cog_pad = round_up(cog, tile->nr);
    memset(q, 0, sizeof *q);
    q->pairs = cog * cig <= 16 || cog <= 2;
    /* Channels-last 1x1, stride 1: GEMM row ci is x[pixel][ci] at stride C_in, reduction rows of
     * one column for the tile; the band would transpose all of x, slower for every measured
     * number of cout blocks (docs/perf-notes.md). */
    q->inplace = d->channels_last ? ksz == 1 && !gw_multi_hint(d) && S[0] == 1 && S[1] == 1 && S[2] == 1
                                  : S[2] == 1;
    for (int a = 0; a < 3; a++)
        if (d->pad_before[a] || d->pad_after[a]) q->inplace = 0;
    if (q->pairs) q->inplace = 0; /* the pair kernel reads a vector past each row: the band has slack */
    /* Byte counts are doubles: products of sizes may overflow int64 (buffer sizes are checked with
     * cconv_mul). Columns: the whole row unless span_h rows of one channel overflow the budget. */
    const double chan_col = (double)K[0] * (double)es * (double)span_h; /* bytes per band column */
    q->WS = O[2];
    if (chan_col * (double)((O[2] - 1) * S[2] + span_w) > CCONV_GW_BAND_BYTES) {
        const int64_t cols = (int64_t)(CCONV_GW_BAND_BYTES / chan_col);
        q->WS = min64(max64(16, (cols - span_w) / S[2] + 1), O[2]);
    }
    /* Short images (1-D: a single row): split the rows into column bands for enough units. */
    const int64_t row_units = d->batch * O[0] * O[1];
    if (row_units < CCONV_GW_MIN_UNITS) {
        const int64_t want = ceil_div(CCONV_GW_MIN_UNITS, row_units);
        q->WS = min64(q->WS, max64(64, ceil_div(O[2], want)));
        q->WS = min64(q->WS, O[2]);
    }
    const int64_t WB = (q->WS - 1) * S[2] + span_w;
    q->PL = ceil_div(WB, S[2]);
    q->RL = S[2] * q->PL;
    q->nbw = ceil_div(O[2], q->WS);
    /* Rows: enough work items (>= CCONV_GW_MIN_UNITS when the batch is small), and tall enough
     * that the halo rows (span - stride, filled by two units) add at most about half a fill more.
     * Groups are split across work items too: with many, whole planes per unit read x in long
     * runs (a 14x14 plane in bands of a few rows would be a string of latency-bound reads). */
    const int64_t planes = d->batch * O[0] * q->nbw;
    const int64_t split_g = gw_multi_hint(d) ? 1 : G;
    /* A GEMM whose (channel, tap) rows make many L2-sized channel blocks (late layers) has work
     * items enough across them: more units would only shorten each tile's reduction (7 pixels a
     * call for C3D's 512->512 3x3x3 on 2x7x7) and multiply the partials' traffic. */
    const double row_blocks =
        q->pairs ? 1 : (double)G * (double)cig * (double)ksz * (double)cog_pad * (double)es / CCONV_GW_BLOCK_BYTES;
    const int64_t min_units = row_blocks >= CCONV_GW_MIN_UNITS ? 1
                            : (int64_t)(CCONV_GW_MIN_UNITS / (row_blocks > 1 ? row_blocks : 1));
    const int64_t bands_wanted = ceil_div(min_units, planes * split_g);
    const int64_t cap = max64(1, ceil_div(O[1], bands_wanted));
    const int64_t tall = max64(1, 2 * (span_h - S[1]) / S[1]);
    const double row_bytes = (double)K[0] * (double)es * (double)q->RL; /* one input row, one channel */
    /* Channels per band: all of the group if `tall` rows fit, else fewer. */
    const int64_t rows_tall = (min64(tall, cap) - 1) * S[1] + span_h;
    q->CB = max64(1, min64(cig, (int64_t)(CCONV_GW_BAND_BYTES / ((double)rows_tall * row_bytes))));
    if (!q->pairs)
        q->CB = max64(1, min64(q->CB, (int64_t)(CCONV_GW_BLOCK_BYTES / ((double)ksz * (double)cog_pad * (double)es))));
    q->ncib = ceil_div(cig, q->CB);
    q->CB = ceil_div(cig, q->ncib); /* even blocks */
    q->multi = gw_multi_hint(d) && q->CB == cig &&
               (double)d->in_channels * row_bytes * (double)span_h <= 8.0 * CCONV_GW_BAND_BYTES;
    const double band_row = (double)(q->multi ? d->in_channels : q->CB) * row_bytes;
    /* x read in place (channels-first) is not copied: a unit's rows are bounded by its
     * grad_output panel, which every row tile re-reads from L2, not by a band. Tall units give
     * each channel one long run to stream (bands of 4 rows of 56 pixels were 1.2-1.35x slower
     * for a 1x1: docs/perf-notes.md). */
    const int64_t fit = q->inplace && !d->channels_last
                            ? (int64_t)(2.0 * CCONV_GW_BAND_BYTES / ((double)q->WS * (double)tile->nr * (double)es))
                            : ((int64_t)(CCONV_GW_BAND_BYTES / band_row) - span_h) / S[1] + 1;
    q->B = max64(1, min64(max64(fit, min64(tall, cap)), min64(cap, O[1])));
    if (d->channels_last) {
        /* Each channel block's fill (and each cout block's pack) walks whole rows of x (and of
         * grad_output) holding every channel: keep a unit's rows of both within the budget too,
         * or every block re-reads them from memory. */
        const double xrow = (double)d->in_size[2] * (double)d->in_channels * (double)(es * K[0]);
        const double grow = (double)O[2] * (double)d->out_channels * (double)es;
        const int64_t fit_cl = ((int64_t)(2.0 * CCONV_GW_BAND_BYTES / xrow) - span_h) / S[1] + 1;
        q->B = max64(1, min64(q->B, min64(fit_cl, (int64_t)(2.0 * CCONV_GW_BAND_BYTES / grow))));
    }
    q->nbh = ceil_div(O[1], q->B);
    q->A = ceil_div((q->B - 1) * S[1] + span_h, S[1]);
    int64_t t;
    if (!cconv_mul(K[0] * S[1], q->A, &t) || !cconv_mul(t, q->RL, &q->chan)) return 0;
    if (!cconv_mul(q->chan, q->multi ? d->in_channels : q->CB, &t)) return 0; /* the band */
    q->nunits = planes * q->nbh;
    if (q->pairs) {
        q->nblocks = G * q->ncib;
        q->lanes = lanes;
        if (!cconv_mul(d->out_channels, cig * ksz, &t) || !cconv_mul(t, lanes, &q->part)) return 0;
    } else {
        q->MR = tile->mr;
        q->NR = tile->nr;
        q->nblk = ceil_div(cog, q->NR);
        q->jpad = round_up(q->CB * ksz, q->MR);
        q->nblocks = G * q->ncib * q->nblk;
        if (!cconv_mul(q->nblocks, q->jpad, &t) || !cconv_mul(t, q->NR, &q->part)) return 0;
        /* With several channel blocks, each block and item would pack grad_output again (11 times
         * for conv_transpose2d's 256->128 4x4; docs/perf-notes.md): pack it once per call within
         * the partials' budget, else once per unit and item for all cout blocks if that fits L2. */
        q->prepack = q->ncib > 1 &&
                     (double)q->nunits * (double)(G * q->nblk) * (double)(q->B * q->WS * q->NR * es)
                         <= CCONV_GW_PARTIAL_BYTES;
        q->panall = !q->prepack && q->ncib > 1 && q->nblk > 1 &&
                    (double)(q->B * q->WS) * (double)(q->nblk * q->NR * es) <= CCONV_GW_BAND_BYTES;
    }
    /* Work items: (chunk, range of blocks). The GEMM splits at (group, channel block) boundaries,
     * so a band is filled once per unit and item; chunks make up the rest of the items. */
    const int64_t unit = q->pairs ? 1 : q->nblk, nbig = q->nblocks / unit;
    /* ... unless the partials are too big for enough chunks to keep a few threads busy. */
    if (q->multi && CCONV_GW_PARTIAL_BYTES / ((double)q->part * (double)es) < CCONV_GW_CHUNKS / 2) q->multi = 0;
    const int64_t ns = q->multi ? 1 : min64(nbig, CCONV_GW_CHUNKS);
    q->rs = ceil_div(nbig, ns) * unit;
    q->nsplit = ceil_div(q->nblocks, q->rs);
    int64_t nch = (int64_t)(CCONV_GW_PARTIAL_BYTES / ((double)q->part * (double)es));
    nch = min64(nch, ceil_div(CCONV_GW_CHUNKS, q->nsplit));
    q->nchunks = max64(1, min64(nch, q->nunits));
    /* Units outermost, an item's partial is read and written back once per unit: from memory when
     * it outgrows L2 (C3D's 512->512 3x3x3 on 2x7x7: 1.9 MB an item). Per (group, channel block)
     * instead, its partial stays in L2 and each unit's grad_output panel is read again, once per
     * block: taken where that panel is the smaller (panall packs per unit: not with it). With one
     * chunk, that partial is then the sum: transposed into dw from L2, the whole partial (28 MB
     * for C3D) is never written to memory and read back. */
    if (!q->pairs && !q->multi && !q->panall) {
        const double part_gc = (double)(q->nblk * q->jpad * q->NR * es);
        const double panel = (double)(q->B * q->WS) * (double)(q->nblk * q->NR * es);
        q->gcouter = panel < 2.0 * part_gc &&
                     (q->nchunks == 1 ||
                      (q->nunits > q->nchunks && part_gc * (double)(q->rs / q->nblk) > 2.0 * CCONV_GW_BAND_BYTES));
        q->direct = q->gcouter && q->nchunks == 1;
    }
    return 1;
}


/* The weight gradient's tile for cog output channels a group: the narrow one when it holds them,
 * else whichever of the wide and mid ones computes fewer padded columns for its speed (6x4 ran
 * faster than 14x2, docs/perf-notes.md: the mid tile's columns count 7% more, so C_out 64 takes
 * one 64-wide block, 32 one 32-wide one). */
static const cconv_gw_tile_kernel *gw_tile(const cconv_isa_table *isa, int dt, int64_t cog)
{
    const cconv_gw_tile_kernel *w = &isa->gw_wide[dt], *m = &isa->gw_mid[dt];
    if (cog <= isa->gw_narrow[dt].nr) return &isa->gw_narrow[dt];
    const double cw = (double)round_up(cog, w->nr);
    const double cm = (double)round_up(cog, m->nr) * (w->nr > m->nr ? 1.07 : 1.0);
    return cm < cw ? m : w;
}

/* Register-tile slots (rows padded to MR, columns to NR) of a weight gradient with `rows` (input
 * channel, tap) rows and `cols` output channels. */
static double gw_slots(const cconv_isa_table *isa, int dt, int64_t rows, int64_t cols)
{
    const cconv_gw_tile_kernel *t = gw_tile(isa, dt, cols);
    return (double)round_up(rows, t->mr) * (double)round_up(cols, t->nr);
}

/* A channels-last 1x1 (stride 1, unpadded, one group) weight gradient dw[co][ci] = sum_p gy[p][co]
 * x[p][ci] is symmetric in x and grad_output: with them exchanged, the output channels become the
 * tile's rows and C_in its columns. Taken where that pads clearly less (C_out 24 on 14x2 tiles uses
 * 24 of 32 columns; as rows, 24 of 24): also the band transposes the smaller of the two tensors.
 * Not taken where the slots are within 8%: there the exchange did not win consistently
 * (docs/perf-notes.md). */
static int gw_swap_roles(const cconv_conv_desc *d, const cconv_isa_table *isa)
{
    if (!d->channels_last || d->groups != 1) return 0;
    for (int a = 0; a < 3; a++)
        if (d->kernel[a] != 1 || d->stride[a] != 1 || d->pad_before[a] || d->pad_after[a]) return 0;
    const int64_t Ci = d->in_channels, Co = d->out_channels;
    if (Ci <= 16 || Co <= 16) return 0; /* narrow tiles and the pair kernel: left as they are */
    const int dt = d->dtype == CCONV_FLOAT64;
    return gw_slots(isa, dt, Co, Ci) < 0.92 * gw_slots(isa, dt, Ci, Co);
}

/* may_swap: whether gw_swap_roles may exchange x and grad_output (not again inside the exchanged
 * call). */
static cconv_status weight_grad(const cconv_conv_desc *desc, const void *x, const void *grad_output,
                                void *grad_weight, const cconv_isa_table *isa, int may_swap)
{
    cconv_conv_desc dd = *desc;
    cconv_conv_desc *d = &dd;
    cconv_status st = cconv_conv_output_size(d);
    if (st != CCONV_OK) return st;
    if (d->transposed) return CCONV_ERR_UNSUPPORTED; /* pass the forward convolution it adjoins */
    cconv_desc_clamp_strides(d);
    const int64_t G = d->groups, cig = d->in_channels / G, cog = d->out_channels / G;
    const int64_t ksz = d->kernel[0] * d->kernel[1] * d->kernel[2];
    const size_t es = cconv_dtype_size(d->dtype);
    if (d->batch == 0) {
        memset(grad_weight, 0, (size_t)(d->out_channels * cig * ksz) * es);
        return CCONV_OK;
    }
    const int dt = d->dtype == CCONV_FLOAT64;
    if (may_swap && gw_swap_roles(d, isa)) {
        /* dw^T = the weight gradient with x and grad_output exchanged, then one transpose. */
        cconv_conv_desc sd = *d;
        sd.in_channels = d->out_channels;
        sd.out_channels = d->in_channels;
        void *t = cconv_alloc((size_t)(d->in_channels * d->out_channels) * es);
        if (!t) return CCONV_ERR_NOMEM;
        st = weight_grad(&sd, grad_output, x, t, isa, 0);
        if (st == CCONV_OK)
            isa->transpose[dt](t, (ptrdiff_t)d->out_channels, d->in_channels, d->out_channels, grad_weight,
                               (ptrdiff_t)d->in_channels);
        cconv_free(t);
        return st;
    }
    cconv_padding pad;
    cconv_padding_plain(d, &pad);
    int64_t *map[3];
    if (!cconv_pad_maps(d, &pad, map)) return CCONV_ERR_NOMEM;
    const double macs = (double)d->batch * (double)(d->out_size[0] * d->out_size[1] * d->out_size[2]) *
                        (double)d->out_channels * (double)(cig * ksz);
    const int serial = cconv_set_serial(macs < (double)(1 << 20));
    if (d->channels_last && G == d->in_channels && G == d->out_channels) {
        st = (dt ? cconv_gw_run_dw_cl_f64 : cconv_gw_run_dw_cl_f32)(d, isa, map, x, grad_output, grad_weight);
    } else {
        const cconv_gw_tile_kernel *tile = gw_tile(isa, dt, cog);
        gw_geom q;
        if (!gw_geometry(d, tile, isa->gw_narrow[dt].nr, &q)) st = CCONV_ERR_OVERFLOW;
        else st = (dt ? cconv_gw_run_f64 : cconv_gw_run_f32)(d, isa, tile, &q, pad.size, map, x, grad_output,
                                                             grad_weight);
    }
    cconv_set_serial(serial);
    cconv_free(map[0]);
    return st;
}

cconv_status cconv_conv_weight_grad(const cconv_conv_desc *desc, const void *x, const void *grad_output,
                                    void *grad_weight)
{
    if (!desc || !x || !grad_output || !grad_weight) return CCONV_ERR_INVALID;
    return weight_grad(desc, x, grad_output, grad_weight, cconv_active_isa(), 1);
}
