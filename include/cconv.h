/* cconv: fast CPU convolutions. Public C API.
 *
 * Plain C, no Python or NumPy types, so other compiled packages can embed it.
 * Every convolution is described by one cconv_conv_desc; spatial sizes are always 3-D
 * (D, H, W): a 2-D convolution sets D-sized fields to 1 (size 1, kernel 1, stride 1, dilation 1,
 * padding 0), a 1-D one also the H fields.
 *
 * Memory layouts (all C-contiguous):
 *   x: (N, C_in, D, H, W) or, with channels_last, (N, D, H, W, C_in)
 *   y: (N, C_out, OD, OH, OW) or (N, OD, OH, OW, C_out)
 *   weight, forward:    (C_out, C_in/groups, KD, KH, KW)   (PyTorch's layout)
 *   weight, transposed: (C_in, C_out/groups, KD, KH, KW)
 *   bias: (C_out) or NULL
 * "Convolution" is cross-correlation (no kernel flip), as in deep-learning frameworks.
 * Results are bitwise identical for any number of threads. */
#ifndef CCONV_H
#define CCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CCONV_VERSION "0.1.0"

typedef enum { CCONV_FLOAT32 = 0, CCONV_FLOAT64 = 1 } cconv_dtype;

typedef enum {
    CCONV_PAD_ZEROS = 0,
    CCONV_PAD_REFLECT = 1,
    CCONV_PAD_REPLICATE = 2,
    CCONV_PAD_CIRCULAR = 3,
    CCONV_PAD_SYMMETRIC = 4 /* mirror repeating the edge: -1 reads 0, n reads n - 1; pad <= size */
} cconv_padding_mode;

typedef enum {
    CCONV_ALGO_AUTO = 0,      /* let the plan choose */
    CCONV_ALGO_GEMM = 1,      /* register-blocked direct convolution (GEMM family) */
    CCONV_ALGO_DEPTHWISE = 2, /* one input channel per group */
    CCONV_ALGO_REFERENCE = 3, /* plain loops: slow, obviously correct */
    CCONV_ALGO_GROUPED = 4,   /* direct grouped conv, 2-8 input channels per group, channels-first:
                               * the depthwise row kernels with taps over the group's channels */
    CCONV_ALGO_WINOGRAD = 5,  /* Winograd F(4x4, 3x3): 2-D 3x3, stride 1, dilation 1, groups 1;
                               * 4x fewer multiplications, error ~1e-6 of sum |x*w| in float32 */
    CCONV_ALGO_EXACT = 6      /* like auto, among the algorithms that round as a direct
                               * convolution does (never Winograd) */
} cconv_algorithm;

/* An activation fused into the stores: applied to each output after the bias, while the output tile
 * is still in registers or cache. Zero (a zero-initialised descriptor) is none. */
typedef enum {
    CCONV_ACT_NONE = 0,
    CCONV_ACT_CLAMP = 1 /* y = min(max(y, act_min), act_max): ReLU is [0, INFINITY], ReLU6 [0, 6];
                         * unbounded sides are -INFINITY / INFINITY; NaN stays NaN, -0.0 stays -0.0
                         * (as PyTorch's relu, hardtanh and clamp) */
} cconv_activation;

typedef enum {
    CCONV_OK = 0,
    CCONV_ERR_INVALID = 1,     /* a descriptor field is out of range or inconsistent */
    CCONV_ERR_NOMEM = 2,       /* an allocation failed */
    CCONV_ERR_OVERFLOW = 3,    /* a size product does not fit in int64 */
    CCONV_ERR_UNSUPPORTED = 4  /* the requested algorithm cannot run this descriptor */
} cconv_status;

/* Zero-initialise a descriptor (= {0} or memset) before setting its fields: a field this header
 * adds later then reads as its default (zero: no activation). */
typedef struct {
    cconv_dtype dtype;
    int transposed;                  /* 0: convolution, 1: transposed convolution (its adjoint) */
    int channels_last;               /* 0: channels-first x and y, 1: channels-last */
    cconv_padding_mode padding_mode; /* transposed convolutions take zeros only */
    cconv_algorithm algorithm;
    int64_t batch, in_channels, out_channels, groups;
    int64_t in_size[3];              /* D, H, W of x */
    int64_t kernel[3];
    int64_t stride[3];
    int64_t dilation[3];
    int64_t pad_before[3];
    int64_t pad_after[3];
    int64_t output_padding[3];       /* transposed only; must be < max(stride, dilation) */
    int64_t out_size[3];             /* filled by cconv_conv_output_size / plan creation */
    cconv_activation activation;     /* fused into the stores; the gradients ignore it */
    double act_min, act_max;         /* CCONV_ACT_CLAMP's bounds (not NaN); unread otherwise */
} cconv_conv_desc;

typedef struct cconv_plan cconv_plan;

/* Validates the descriptor and fills d->out_size. */
cconv_status cconv_conv_output_size(cconv_conv_desc *d);

/* Packs the weights once; the plan owns copies of weight and bias (the caller may free them). */
cconv_status cconv_plan_create(const cconv_conv_desc *d, const void *weight, const void *bias,
                               cconv_plan **plan);
/* Runs the plan; safe to call from several threads at once on one plan. */
cconv_status cconv_plan_execute(const cconv_plan *plan, const void *x, void *y);
void cconv_plan_destroy(cconv_plan *plan);
/* Whether d->algorithm can run d: CCONV_OK when it can (auto and exact always can), the
 * descriptor's own error when it is invalid, or CCONV_ERR_UNSUPPORTED with the reason written to
 * why (at most n bytes, NUL-terminated) -- the error cconv_plan_create then returns. */
cconv_status cconv_plan_unsupported(const cconv_conv_desc *d, char *why, size_t n);
/* The plan's descriptor (out_size filled) and the algorithm it chose. A forward stride longer than
 * the padded input (one output along that dimension) is reported as the smallest stride giving
 * that output. */
const cconv_conv_desc *cconv_plan_desc(const cconv_plan *plan);
cconv_algorithm cconv_plan_algorithm(const cconv_plan *plan);
/* Bytes of packed weights the plan holds, and scratch bytes one execute allocates. */
int64_t cconv_plan_weight_bytes(const cconv_plan *plan);
int64_t cconv_plan_workspace_bytes(const cconv_plan *plan);

/* Fused depthwise-separable convolution: runs the depthwise plan (algorithm depthwise,
 * channels-first, 2-D; its own bias and activation apply to the intermediate), then a 1x1
 * convolution with pw (Co2, Cmid) and bias (Co2, or NULL), band by band in cache so the
 * (N, Cmid, OH, OW) intermediate never exists; y is (N, Co2, OH, OW). CCONV_ERR_UNSUPPORTED for
 * other plans. */
cconv_status cconv_plan_execute_separable(const cconv_plan *dw_plan, const void *pw,
                                          const void *bias, int64_t Co2, const void *x, void *y);
/* The same with an activation fused into the 1x1 stage's stores (act: a cconv_activation, with
 * its bounds as in the descriptor; CCONV_ERR_INVALID for an unknown act or NaN bounds). */
cconv_status cconv_plan_execute_separable_act(const cconv_plan *dw_plan, const void *pw,
                                              const void *bias, int64_t Co2, int act, double act_min,
                                              double act_max, const void *x, void *y);

/* Fused flattened convolution, channels-first: y = depthwise(desc, dw_weight, bias) of the 1x1
 * convolution of x (N, Ci, H, W) with cw (C, Ci), band by band of output rows in cache, so the
 * (N, C, H, W) intermediate never exists. desc is the depthwise step (2-D, C channels in and out,
 * groups C, zero padding; dw_weight (C, 1, kh, kw): a flattened filter's vertical x horizontal
 * outer product); y is (N, C, OH, OW). CCONV_ERR_UNSUPPORTED for other descriptors. */
cconv_status cconv_flattened_conv2d(const cconv_conv_desc *desc, const void *dw_weight, const void *bias,
                                    int64_t Ci, const void *cw, const void *x, void *y);

/* Runs a channels-first depthwise, grouped or GEMM plan, writing output channel c*(C/g) + j at
 * j*g + c (channel_shuffle with g = shuffle_groups) directly; CCONV_ERR_UNSUPPORTED for other
 * plans (Winograd, channels-last). */
cconv_status cconv_plan_execute_shuffled(const cconv_plan *plan, int64_t shuffle_groups,
                                         const void *x, void *y);

/* Weight gradient of the forward (not transposed) convolution d: grad_weight (C_out, C_in/groups,
 * KD, KH, KW) = dL/dw given x and grad_output = dL/dy (both in d's layout), every padding mode
 * (the gradient of a padded copy reaches the weights through the values copied).
 * CCONV_ERR_UNSUPPORTED for a transposed d: the weight gradient of a
 * transposed convolution is that of the forward convolution of grad_output with x as its output
 * gradient. */
cconv_status cconv_conv_weight_grad(const cconv_conv_desc *d, const void *x, const void *grad_output,
                                    void *grad_weight);

/* Input gradient of the convolution d (forward or transposed, every layout, dtype and padding
 * mode): grad_input = dL/dx, of x's shape in d's layout, given grad_output = dL/dy (y's shape) and
 * the weight of the call (d's weight layout). A forward d runs the transposed convolution of
 * grad_output, or for one input channel per group and finite filters the depthwise convolution
 * of grad_output (zero-inserted by the stride) with the flipped filters; for reflect, replicate,
 * circular and symmetric padding the gradient of the padded input, its border then added onto
 * the positions it was copied from. A transposed d runs the forward convolution of grad_output.
 * These convolutions choose their algorithms as CCONV_ALGO_AUTO does (a stride-1 one-group 3x3
 * layer may run on Winograd); d->algorithm CCONV_ALGO_EXACT or CCONV_ALGO_REFERENCE makes them
 * all use that one, any other value is taken as auto. Plans are made and destroyed inside the
 * call, with the calling thread's ISA. */
cconv_status cconv_conv_input_grad(const cconv_conv_desc *d, const void *grad_output, const void *weight,
                                   void *grad_input);

/* One-shot: create, execute, destroy. */
cconv_status cconv_conv(const cconv_conv_desc *d, const void *x, const void *weight,
                        const void *bias, void *y);

/* ShuffleNet channel shuffle: channel g*(C/groups)+j goes to j*groups+g.
 * x, y: (N, C, S) or channels-last (N, S, C), S = product of spatial sizes. */
cconv_status cconv_channel_shuffle(cconv_dtype dtype, int channels_last, int64_t batch,
                                   int64_t channels, int64_t spatial, int64_t groups,
                                   const void *x, void *y);

const char *cconv_status_string(cconv_status s);
const char *cconv_algorithm_name(cconv_algorithm a);

/* Instruction sets: "avx512", "avx2", "generic". Plans keep the ISA they were created with;
 * cconv_conv_weight_grad and cconv_conv_input_grad use the ISA of their call. The ISA a call
 * uses is the calling thread's override when it has one (cconv_set_thread_isa), else the
 * process-wide setting: the best available, or the one the environment variable CCONV_ISA names
 * (read at first use; an unavailable name is ignored), or the one cconv_set_isa chose. Settings
 * take effect for calls that start after them; a thread's override never reaches calls made on
 * other threads (a call's OpenMP workers follow the thread that made it). */
const char *cconv_get_isa(void); /* the ISA a call on this thread uses */
int cconv_isa_available(const char *name);
/* Process-wide; NULL or "auto": the best available. CCONV_ERR_UNSUPPORTED when unavailable. */
cconv_status cconv_set_isa(const char *name);
/* This thread's override ("auto": the best available); NULL removes it. */
cconv_status cconv_set_thread_isa(const char *name);
const char *cconv_get_thread_isa(void); /* the override, or NULL when the thread has none */

/* Threads used by kernels. Process-wide: 0 (the
 * default) follows OpenMP (OMP_NUM_THREADS, threadpoolctl). A thread's own override n > 0 wins
 * for its calls; 0 removes it. cconv_get_num_threads: the count a call on this thread uses. */
void cconv_set_num_threads(int n);
int cconv_get_num_threads(void);
void cconv_set_thread_num_threads(int n);
int cconv_get_thread_num_threads(void); /* the override, or 0 when the thread has none */
int cconv_has_openmp(void);

#ifdef __cplusplus
}
#endif
#endif /* CCONV_H */
