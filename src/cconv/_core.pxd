# cython: language_level=3
# nogil entry points other Cython extensions can cimport without linking (as scipy.linalg.cython_blas);
# the c_* helpers give status messages, ISA and thread control to embedders:
#     from cconv.ccore cimport cconv_conv_desc, cconv_status, CCONV_OK
#     from cconv._core cimport conv
# Compile with include_dirs=[cconv.get_include()]. They run the C API of include/cconv.h, with
# the calling thread's C settings (c_set_thread_isa / c_set_thread_num_threads, else the
# process-wide ones): a cconv.use_isa / cconv.use_num_threads block is a Python context that
# nogil code cannot read, so it does not reach these.
from cconv.ccore cimport cconv_conv_desc, cconv_status, cconv_plan, cconv_dtype
from libc.stdint cimport int64_t

cdef cconv_status conv(const cconv_conv_desc *d, const void *x, const void *weight,
                       const void *bias, void *y) noexcept nogil
cdef cconv_status conv_output_size(cconv_conv_desc *d) noexcept nogil
cdef cconv_status plan_create(const cconv_conv_desc *d, const void *weight, const void *bias,
                              cconv_plan **plan) noexcept nogil
cdef cconv_status plan_execute(const cconv_plan *plan, const void *x, void *y) noexcept nogil
cdef void plan_destroy(cconv_plan *plan) noexcept nogil
cdef cconv_status input_grad(const cconv_conv_desc *d, const void *grad_output, const void *weight,
                             void *grad_input) noexcept nogil
cdef cconv_status channel_shuffle(cconv_dtype dtype, int channels_last, int64_t batch,
                                  int64_t channels, int64_t spatial, int64_t groups,
                                  const void *x, void *y) noexcept nogil
cdef const char *c_status_string(cconv_status s) noexcept nogil
cdef void c_set_num_threads(int n) noexcept nogil
cdef int c_get_num_threads() noexcept nogil
cdef cconv_status c_set_isa(const char *name) noexcept nogil
cdef const char *c_get_isa() noexcept nogil
cdef cconv_status c_set_thread_isa(const char *name) noexcept nogil
cdef const char *c_get_thread_isa() noexcept nogil
cdef void c_set_thread_num_threads(int n) noexcept nogil
cdef int c_get_thread_num_threads() noexcept nogil
