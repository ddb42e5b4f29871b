# cython: language_level=3
# Declarations of the public C header include/cconv.h (shipped as cconv/include/cconv.h).
# Types only are useful to other packages: the functions are compiled into cconv._core, so call
# them through `from cconv._core cimport ...` (see _core.pxd), which needs no linking.
from libc.stdint cimport int64_t

cdef extern from "cconv.h" nogil:
    const char *CCONV_VERSION

    ctypedef enum cconv_dtype:
        CCONV_FLOAT32
        CCONV_FLOAT64

    ctypedef enum cconv_padding_mode:
        CCONV_PAD_ZEROS
        CCONV_PAD_REFLECT
        CCONV_PAD_REPLICATE
        CCONV_PAD_CIRCULAR
        CCONV_PAD_SYMMETRIC

    ctypedef enum cconv_algorithm:
        CCONV_ALGO_AUTO
        CCONV_ALGO_GEMM
        CCONV_ALGO_DEPTHWISE
        CCONV_ALGO_REFERENCE
        CCONV_ALGO_GROUPED
        CCONV_ALGO_WINOGRAD
        CCONV_ALGO_EXACT

    ctypedef enum cconv_activation:
        CCONV_ACT_NONE
        CCONV_ACT_CLAMP

    ctypedef enum cconv_status:
        CCONV_OK
        CCONV_ERR_INVALID
        CCONV_ERR_NOMEM
        CCONV_ERR_OVERFLOW
        CCONV_ERR_UNSUPPORTED

    ctypedef struct cconv_conv_desc:
        cconv_dtype dtype
        int transposed
        int channels_last
        cconv_padding_mode padding_mode
        cconv_algorithm algorithm
        int64_t batch, in_channels, out_channels, groups
        int64_t in_size[3]
        int64_t kernel[3]
        int64_t stride[3]
        int64_t dilation[3]
        int64_t pad_before[3]
        int64_t pad_after[3]
        int64_t output_padding[3]
        int64_t out_size[3]
        cconv_activation activation
        double act_min, act_max

    ctypedef struct cconv_plan:
        pass

    cconv_status cconv_conv_output_size(cconv_conv_desc *d)
    cconv_status cconv_plan_create(const cconv_conv_desc *d, const void *weight, const void *bias,
                                   cconv_plan **plan)
    cconv_status cconv_plan_execute(const cconv_plan *plan, const void *x, void *y)
    cconv_status cconv_plan_execute_shuffled(const cconv_plan *plan, int64_t shuffle_groups,
                                             const void *x, void *y)
    cconv_status cconv_plan_execute_separable(const cconv_plan *dw_plan, const void *pw,
                                              const void *bias, int64_t Co2, const void *x, void *y)
    cconv_status cconv_plan_execute_separable_act(const cconv_plan *dw_plan, const void *pw,
                                                  const void *bias, int64_t Co2, int act,
                                                  double act_min, double act_max, const void *x,
                                                  void *y)
    cconv_status cconv_flattened_conv2d(const cconv_conv_desc *desc, const void *dw_weight,
                                        const void *bias, int64_t Ci, const void *cw,
                                        const void *x, void *y)
    void cconv_plan_destroy(cconv_plan *plan)
    cconv_status cconv_plan_unsupported(const cconv_conv_desc *d, char *why, size_t n)
    const cconv_conv_desc *cconv_plan_desc(const cconv_plan *plan)
    cconv_algorithm cconv_plan_algorithm(const cconv_plan *plan)
    int64_t cconv_plan_weight_bytes(const cconv_plan *plan)
    int64_t cconv_plan_workspace_bytes(const cconv_plan *plan)
    cconv_status cconv_conv(const cconv_conv_desc *d, const void *x, const void *weight,
                            const void *bias, void *y)
    cconv_status cconv_conv_weight_grad(const cconv_conv_desc *d, const void *x,
                                        const void *grad_output, void *grad_weight)
    cconv_status cconv_conv_input_grad(const cconv_conv_desc *d, const void *grad_output,
                                       const void *weight, void *grad_input)
    cconv_status cconv_channel_shuffle(cconv_dtype dtype, int channels_last, int64_t batch,
                                       int64_t channels, int64_t spatial, int64_t groups,
                                       const void *x, void *y)
    const char *cconv_status_string(cconv_status s)
    const char *cconv_algorithm_name(cconv_algorithm a)
    const char *cconv_get_isa()
    int cconv_isa_available(const char *name)
    cconv_status cconv_set_isa(const char *name)
    cconv_status cconv_set_thread_isa(const char *name)
    const char *cconv_get_thread_isa()
    void cconv_set_num_threads(int n)
    int cconv_get_num_threads()
    void cconv_set_thread_num_threads(int n)
    int cconv_get_thread_num_threads()
    int cconv_has_openmp()
