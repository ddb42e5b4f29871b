/* The reference algorithm: plain loops over the definition, gather form (each output sums its own
 * terms in a fixed order), any layout, padding mode and transposition (conv/reference_run.c.in). */
#include <string.h>
#include "core/plan.h"

void cconv_reference_run_f32(const cconv_conv_desc *d, const void *x, const void *w, const void *b, void *y);
void cconv_reference_run_f64(const cconv_conv_desc *d, const void *x, const void *w, const void *b, void *y);

static cconv_status ref_create(cconv_plan *p, const void *weight)
{
    const size_t wb = (size_t)cconv_filter_count(&p->d) * cconv_dtype_size(p->d.dtype);
    p->state = cconv_alloc(wb);
    if (!p->state) return CCONV_ERR_NOMEM;
    memcpy(p->state, weight, wb);
    p->weight_bytes = (int64_t)wb;
    return CCONV_OK;
}

static cconv_status ref_execute(const cconv_plan *p, const cconv_exec *e)
{
    (p->d.dtype == CCONV_FLOAT64 ? cconv_reference_run_f64 : cconv_reference_run_f32)(&p->d, e->x, p->state,
                                                                                     p->bias, e->y);
    return CCONV_OK;
}

const cconv_impl cconv_impl_reference = {
    .name = "reference", .algorithm = CCONV_ALGO_REFERENCE, .create = ref_create,
    .execute = ref_execute, .destroy = cconv_free,
};
