/* Fused separable convolution: a depthwise plan, then a 1x1 convolution over its output, band by
 * band so that the intermediate tensor never goes to memory (conv/depthwise_run.c.in). */
#include "conv/depthwise.h"

cconv_status cconv_plan_execute_separable(const cconv_plan *p, const void *pw, const void *bias,
                                          int64_t Co2, const void *x, void *y)
{
    return cconv_plan_execute_separable_act(p, pw, bias, Co2, CCONV_ACT_NONE, 0, 0, x, y);
}

cconv_status cconv_plan_execute_separable_act(const cconv_plan *p, const void *pw, const void *bias,
                                              int64_t Co2, int act, double act_min, double act_max,
                                              const void *x, void *y)
{
    if (!p || !pw || !x || !y || Co2 < 1) return CCONV_ERR_INVALID;
    const cconv_conv_desc *d = &p->d;
    /* the 1x1 stage's activation, in the form the store helper reads */
    const cconv_conv_desc pw_act = {.dtype = d->dtype, .activation = (cconv_activation)act,
                                    .act_min = act_min, .act_max = act_max};
    if (act != CCONV_ACT_NONE && (act != CCONV_ACT_CLAMP || act_min != act_min || act_max != act_max))
        return CCONV_ERR_INVALID;
    if (p->impl != &cconv_impl_depthwise || d->channels_last || !cconv_one_plane(d)) return CCONV_ERR_UNSUPPORTED;
    const dw_state *s = p->state;
    const int64_t Cm = d->out_channels, nblk = Co2 / CCONV_PW_MR + (Co2 % CCONV_PW_MR != 0);
    const size_t es = cconv_dtype_size(d->dtype);
    int64_t t; /* the packed pointwise weights and y must be addressable */
    if (!cconv_mul(nblk * CCONV_PW_MR, Cm, &t) || !cconv_mul(t, (int64_t)es, &t) ||
        !cconv_mul(d->batch, Co2, &t) || !cconv_mul(t, d->out_size[1] * d->out_size[2], &t) ||
        !cconv_mul(t, (int64_t)es, &t))
        return CCONV_ERR_OVERFLOW;
    if (d->batch == 0) return CCONV_OK;
    char *pack = cconv_alloc((size_t)(nblk * Cm * CCONV_PW_MR) * es);
    int64_t *map[3];
    if (!pack || !cconv_pad_maps(d, &s->pad, map)) { cconv_free(pack); return CCONV_ERR_NOMEM; }
    cconv_pack_pw_rows(pack, pw, Co2, Cm, es);
    const int serial = cconv_set_serial(cconv_small_work(d));
    const cconv_status st = d->dtype == CCONV_FLOAT64
        ? cconv_dw_run_separable_f64(p, s, (const double *)pack, Co2, bias, &pw_act, x, y, map)
        : cconv_dw_run_separable_f32(p, s, (const float *)pack, Co2, bias, &pw_act, x, y, map);
    cconv_set_serial(serial);
    cconv_free(pack);
    cconv_free(map[0]);
    return st;
}
