# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython bridge: NumPy arrays -> the C API, kernels run without the GIL.

Python callers go through cconv._geometry (which validates and normalises everything); this module only
checks what protects memory (dtypes, contiguity, element counts) before handing pointers to C.
"""
import contextvars

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t
from cconv.ccore cimport *

cnp.import_array()

# ---- nogil entry points for other Cython extensions (declared in _core.pxd) ----
cdef cconv_status conv(const cconv_conv_desc *d, const void *x, const void *weight,
                       const void *bias, void *y) noexcept nogil:
    return cconv_conv(d, x, weight, bias, y)

cdef cconv_status conv_output_size(cconv_conv_desc *d) noexcept nogil:
    return cconv_conv_output_size(d)

cdef cconv_status plan_create(const cconv_conv_desc *d, const void *weight, const void *bias,
                              cconv_plan **plan) noexcept nogil:
    return cconv_plan_create(d, weight, bias, plan)

cdef cconv_status plan_execute(const cconv_plan *plan, const void *x, void *y) noexcept nogil:
    return cconv_plan_execute(plan, x, y)

cdef void plan_destroy(cconv_plan *plan) noexcept nogil:
    cconv_plan_destroy(plan)

cdef cconv_status input_grad(const cconv_conv_desc *d, const void *grad_output, const void *weight,
                             void *grad_input) noexcept nogil:
    return cconv_conv_input_grad(d, grad_output, weight, grad_input)

cdef cconv_status channel_shuffle(cconv_dtype dtype, int channels_last, int64_t batch,
                                  int64_t channels, int64_t spatial, int64_t groups,
                                  const void *x, void *y) noexcept nogil:
    return cconv_channel_shuffle(dtype, channels_last, batch, channels, spatial, groups, x, y)

cdef const char *c_status_string(cconv_status s) noexcept nogil:
    return cconv_status_string(s)

cdef void c_set_num_threads(int n) noexcept nogil:
    cconv_set_num_threads(n)

cdef int c_get_num_threads() noexcept nogil:
    return cconv_get_num_threads()

cdef cconv_status c_set_isa(const char *name) noexcept nogil:
    return cconv_set_isa(name)

cdef const char *c_get_isa() noexcept nogil:
    return cconv_get_isa()

cdef cconv_status c_set_thread_isa(const char *name) noexcept nogil:
    return cconv_set_thread_isa(name)

cdef const char *c_get_thread_isa() noexcept nogil:
    return cconv_get_thread_isa()

cdef void c_set_thread_num_threads(int n) noexcept nogil:
    cconv_set_thread_num_threads(n)

cdef int c_get_thread_num_threads() noexcept nogil:
    return cconv_get_thread_num_threads()


# ---- Python-facing helpers ----
ALGORITHMS = {"auto": CCONV_ALGO_AUTO, "gemm": CCONV_ALGO_GEMM,
              "depthwise": CCONV_ALGO_DEPTHWISE, "reference": CCONV_ALGO_REFERENCE,
              "grouped": CCONV_ALGO_GROUPED, "winograd": CCONV_ALGO_WINOGRAD,
              "exact": CCONV_ALGO_EXACT}
PADDING_MODES = {"zeros": CCONV_PAD_ZEROS, "reflect": CCONV_PAD_REFLECT,
                 "replicate": CCONV_PAD_REPLICATE, "circular": CCONV_PAD_CIRCULAR,
                 "symmetric": CCONV_PAD_SYMMETRIC}
VERSION = CCONV_VERSION.decode()


# ---- settings of the current context (thread or asyncio task) ----
# cconv.use_isa / cconv.use_num_threads set these (None: follow the process-wide settings). The C
# side keeps per-thread overrides; every call below applies this context's values to its own
# thread just before the C call and restores the thread's previous ones right after, so calls
# on other threads, and other asyncio tasks on this thread, never see them.
isa_override = contextvars.ContextVar("cconv_isa", default=None)
threads_override = contextvars.ContextVar("cconv_num_threads", default=None)

cdef struct Saved:
    const char *isa
    int threads


cdef int enter(Saved *saved) except -1:
    """Applies this context's settings to the calling thread; saved <- the thread's own."""
    isa, threads = isa_override.get(), threads_override.get()
    saved.isa = cconv_get_thread_isa()
    saved.threads = cconv_get_thread_num_threads()
    if isa is not None and cconv_set_thread_isa(isa.encode()) != CCONV_OK:
        raise ValueError(f"isa {isa!r} is not available on this CPU or build")
    if threads is not None:
        cconv_set_thread_num_threads(threads)
    return 0


cdef void leave(const Saved *saved) noexcept nogil:
    cconv_set_thread_isa(saved.isa)
    cconv_set_thread_num_threads(saved.threads)


cdef raise_status(cconv_status st, what):
    msg = cconv_status_string(st).decode()
    if st == CCONV_ERR_NOMEM:
        raise MemoryError(f"{what}: {msg}")
    if st == CCONV_ERR_OVERFLOW:
        raise ValueError(f"{what}: {msg}")
    raise ValueError(f"{what}: {msg}")


# The checks below read the array struct through NumPy's C API, not through Python attributes
# (a.dtype == np.float32, a.flags, a.size): a small call makes a dozen of them.
cdef cconv_dtype dtype_code(cnp.ndarray a) except *:
    if cnp.PyArray_ISNOTSWAPPED(a):  # native byte order, as np.float32 and np.float64 are
        if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32:
            return CCONV_FLOAT32
        if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64:
            return CCONV_FLOAT64
    raise TypeError(f"internal: unsupported dtype {a.dtype}")


cdef void *data_of(cnp.ndarray a, cconv_dtype dt, int64_t count, name) except NULL:
    if dtype_code(a) != dt:
        raise TypeError(f"internal: {name} has dtype {a.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"internal: {name} must be C-contiguous")
    cdef int64_t size = cnp.PyArray_SIZE(a)
    if size != count:
        raise ValueError(f"internal: {name} has {size} elements, expected {count}")
    if size == 0:
        return <void *> 1  # never dereferenced: nothing to read or write
    return cnp.PyArray_DATA(a)


cdef class Descriptor:
    """One convolution's C descriptor (cconv_conv_desc: sizes padded to 3 spatial dimensions, the
    padding mode and algorithm), typed once: cconv._geometry.Geometry.desc makes one per geometry and
    algorithm, and each call copies its struct, sets the dtype of that call's arrays and validates
    it in C. Immutable; replace() gives a changed copy."""
    cdef cconv_conv_desc d
    cdef readonly str padding_mode
    cdef readonly str algorithm

    def __init__(self, *, bint transposed, bint channels_last, str padding_mode, str algorithm,
                 int64_t batch, int64_t in_channels, int64_t out_channels, int64_t groups,
                 in_size, kernel, stride, dilation, pad_before, pad_after, output_padding,
                 activation=None):
        cdef int a
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {tuple(PADDING_MODES)}, got {padding_mode!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {tuple(ALGORITHMS)}, got {algorithm!r}")
        sizes = (in_size, kernel, stride, dilation, pad_before, pad_after, output_padding)
        if any(len(t) != 3 for t in sizes):
            raise ValueError(f"sizes must have 3 entries (padded to 3 spatial dimensions), got {sizes}")
        self.padding_mode, self.algorithm = padding_mode, algorithm
        self.d.dtype = CCONV_FLOAT32  # each call sets its own
        self.d.transposed = transposed
        self.d.channels_last = channels_last
        self.d.padding_mode = PADDING_MODES[padding_mode]
        self.d.algorithm = ALGORITHMS[algorithm]
        self.d.batch = batch
        self.d.in_channels = in_channels
        self.d.out_channels = out_channels
        self.d.groups = groups
        for a in range(3):
            self.d.in_size[a] = in_size[a]
            self.d.kernel[a] = kernel[a]
            self.d.stride[a] = stride[a]
            self.d.dilation[a] = dilation[a]
            self.d.pad_before[a] = pad_before[a]
            self.d.pad_after[a] = pad_after[a]
            self.d.output_padding[a] = output_padding[a]
            self.d.out_size[a] = 0
        # activation: None or the (min, max) bounds the Python API checked (cconv._registry)
        self.d.activation = CCONV_ACT_NONE if activation is None else CCONV_ACT_CLAMP
        self.d.act_min, self.d.act_max = (0.0, 0.0) if activation is None else activation

    def fields(self):
        """The constructor's keyword arguments, as a dict."""
        cdef cconv_conv_desc *d = &self.d
        return dict(transposed=bool(d.transposed), channels_last=bool(d.channels_last),
                    padding_mode=self.padding_mode, algorithm=self.algorithm, batch=d.batch,
                    in_channels=d.in_channels, out_channels=d.out_channels, groups=d.groups,
                    in_size=tuple(d.in_size), kernel=tuple(d.kernel), stride=tuple(d.stride),
                    dilation=tuple(d.dilation), pad_before=tuple(d.pad_before),
                    pad_after=tuple(d.pad_after), output_padding=tuple(d.output_padding),
                    activation=None if d.activation == CCONV_ACT_NONE else (d.act_min, d.act_max))

    def replace(self, **changes):
        """A new Descriptor with some fields changed."""
        return Descriptor(**{**self.fields(), **changes})

    def __reduce__(self):
        return _descriptor, (self.fields(),)

    def __repr__(self):
        return "Descriptor(" + ", ".join(f"{k}={v!r}" for k, v in self.fields().items()) + ")"


def _descriptor(fields):
    return Descriptor(**fields)


cdef int fill_desc(Descriptor desc, cconv_dtype dt, cconv_conv_desc *d) except -1:
    """d <- desc for arrays of dtype dt, validated by the C core (out_size filled)."""
    d[0] = desc.d
    d.dtype = dt
    cdef cconv_status st = cconv_conv_output_size(d)
    if st != CCONV_OK:
        raise_status(st, "convolution descriptor")
    return 0


cdef str unsupported_reason(const cconv_conv_desc *d):
    """Why d.algorithm cannot run d, as the C core's implementation list says."""
    cdef char why[512]
    why[0] = 0
    cconv_plan_unsupported(d, why, sizeof(why))
    return why.decode()


cdef int64_t in_count(const cconv_conv_desc *d):
    return d.batch * d.in_channels * d.in_size[0] * d.in_size[1] * d.in_size[2]


cdef int64_t out_count(const cconv_conv_desc *d):
    return d.batch * d.out_channels * d.out_size[0] * d.out_size[1] * d.out_size[2]


cdef int64_t weight_count(const cconv_conv_desc *d):
    cdef int64_t wcount = (d.out_channels * (d.in_channels // d.groups) if not d.transposed
                           else d.in_channels * (d.out_channels // d.groups))
    return wcount * d.kernel[0] * d.kernel[1] * d.kernel[2]


ctypedef cconv_status (*grad_fn)(const cconv_conv_desc *, const void *, const void *, void *) noexcept nogil


cdef object run_grad(grad_fn fn, const cconv_conv_desc *d, void *a, void *b, cnp.ndarray out, void *op,
                     str name, str what):
    """out <- fn(d, a, b) without the GIL (a gradient of the C API), out writeable."""
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError(f"{name} must be writeable")
    cdef cconv_status st
    cdef Saved saved
    enter(&saved)
    with nogil:
        st = fn(d, a, b, op)
        leave(&saved)
    if st != CCONV_OK:
        raise_status(st, what)
    return out


def weight_grad_into(Descriptor desc not None, cnp.ndarray x, cnp.ndarray grad_output, cnp.ndarray grad_weight):
    """grad_weight <- dL/dw of the forward convolution desc (C_out, C_in/groups, *kernel), from x
    and grad_output in desc's layout; all three C-contiguous, of one dtype."""
    cdef cconv_conv_desc d
    fill_desc(desc, dtype_code(grad_weight), &d)
    cdef void *xp = data_of(x, d.dtype, in_count(&d), "input")
    cdef void *gp = data_of(grad_output, d.dtype, out_count(&d), "grad_output")
    cdef void *wp = data_of(grad_weight, d.dtype, weight_count(&d), "grad_weight")
    return run_grad(cconv_conv_weight_grad, &d, xp, gp, grad_weight, wp, "grad_weight", "weight gradient")


def input_grad_into(Descriptor desc not None, cnp.ndarray grad_output, cnp.ndarray weight,
                    cnp.ndarray grad_input):
    """grad_input <- dL/dx of the convolution desc (forward or transposed), of x's shape, from
    grad_output and the weight in desc's layouts; all three C-contiguous, of one dtype."""
    cdef cconv_conv_desc d
    fill_desc(desc, dtype_code(grad_input), &d)
    cdef void *gp = data_of(grad_output, d.dtype, out_count(&d), "grad_output")
    cdef void *wp = data_of(weight, d.dtype, weight_count(&d), "weight")
    cdef void *xp = data_of(grad_input, d.dtype, in_count(&d), "grad_input")
    return run_grad(cconv_conv_input_grad, &d, gp, wp, grad_input, xp, "grad_input", "input gradient")


cdef extern from "internal.h" nogil:
    const char *cconv_plan_implementation(const cconv_plan *p)


cdef class Plan:
    """A convolution plan: validated descriptor + packed weights; call execute(x, y) repeatedly."""
    cdef cconv_plan *plan
    cdef cconv_conv_desc desc
    cdef public object weight_shape

    def __cinit__(self, Descriptor desc not None, cnp.ndarray weight, bias):
        cdef cconv_conv_desc d
        cdef cconv_status st
        fill_desc(desc, dtype_code(weight), &d)
        cdef int64_t wcount = weight_count(&d)
        cdef void *wp = data_of(weight, d.dtype, wcount, "weight")
        cdef void *bp = NULL
        if bias is not None:
            bp = data_of(bias, d.dtype, d.out_channels, "bias")
        cdef Saved saved
        enter(&saved)
        with nogil:
            st = cconv_plan_create(&d, wp, bp, &self.plan)
            leave(&saved)
        if st == CCONV_ERR_UNSUPPORTED:
            raise ValueError(f"algorithm {desc.algorithm!r} cannot run this convolution: "
                             f"{unsupported_reason(&d)}")
        if st != CCONV_OK:
            raise_status(st, "plan")
        self.desc = cconv_plan_desc(self.plan)[0]
        self.weight_shape = tuple((<object> weight).shape)

    def __dealloc__(self):
        if self.plan is not NULL:
            cconv_plan_destroy(self.plan)
            self.plan = NULL

    @property
    def algorithm(self):
        return cconv_algorithm_name(cconv_plan_algorithm(self.plan)).decode()

    @property
    def implementation(self):
        """The name of the implementation the plan runs (a detail: tests check the list's choice)."""
        return cconv_plan_implementation(self.plan).decode()

    @property
    def out_size(self):
        return tuple(self.desc.out_size[a] for a in range(3))

    @property
    def weight_bytes(self):
        return cconv_plan_weight_bytes(self.plan)

    @property
    def workspace_bytes(self):
        return cconv_plan_workspace_bytes(self.plan)

    cdef bint _buffers(self, cnp.ndarray x, cnp.ndarray y, void **xp, void **yp) except -1:
        """Checks x and y against the plan; False when there is nothing to compute."""
        cdef const cconv_conv_desc *d = &self.desc
        cdef int64_t nx = in_count(d), ny = out_count(d)
        xp[0] = data_of(x, d.dtype, nx, "x")
        yp[0] = data_of(y, d.dtype, ny, "out")
        if not cnp.PyArray_ISWRITEABLE(y):
            raise ValueError("out must be writeable")
        return nx != 0 and ny != 0

    def execute(self, cnp.ndarray x, cnp.ndarray y):
        cdef void *xp
        cdef void *yp
        cdef cconv_status st
        if not self._buffers(x, y, &xp, &yp):
            return y
        cdef Saved saved
        enter(&saved)
        with nogil:
            st = cconv_plan_execute(self.plan, xp, yp)
            leave(&saved)
        if st != CCONV_OK:
            raise_status(st, "execute")
        return y

    def execute_shuffled(self, cnp.ndarray x, cnp.ndarray y, int64_t shuffle_groups):
        """Like execute, with the output channels written in channel_shuffle order (depthwise and
        grouped channels-first plans only)."""
        cdef void *xp
        cdef void *yp
        cdef cconv_status st
        if not self._buffers(x, y, &xp, &yp):
            return y
        cdef Saved saved
        enter(&saved)
        with nogil:
            st = cconv_plan_execute_shuffled(self.plan, shuffle_groups, xp, yp)
            leave(&saved)
        if st != CCONV_OK:
            raise_status(st, "execute_shuffled")
        return y

    def execute_separable(self, cnp.ndarray x, cnp.ndarray pw, bias, cnp.ndarray y, activation=None):
        """y <- 1x1(pw, bias) of this depthwise plan's output, then activation (None or (min, max)),
        fused band by band (channels-first 2-D depthwise plans only); pw C-contiguous (Co2, C_mid),
        y (N, Co2, OH, OW)."""
        cdef const cconv_conv_desc *d = &self.desc
        cdef int64_t co2 = pw.shape[0]
        cdef int64_t nx = in_count(d)
        cdef int64_t ny = d.batch * co2 * d.out_size[0] * d.out_size[1] * d.out_size[2]
        cdef void *xp = data_of(x, d.dtype, nx, "x")
        cdef void *wp = data_of(pw, d.dtype, co2 * d.out_channels, "pointwise_weight")
        cdef void *bp = NULL
        cdef void *yp = data_of(y, d.dtype, ny, "out")
        cdef cconv_status st
        cdef int act = CCONV_ACT_NONE if activation is None else CCONV_ACT_CLAMP
        cdef double lo = 0, hi = 0
        if activation is not None:
            lo, hi = activation
        if bias is not None:
            bp = data_of(bias, d.dtype, co2, "bias")
        if nx == 0 or ny == 0:
            return y
        cdef Saved saved
        enter(&saved)
        with nogil:
            st = cconv_plan_execute_separable_act(self.plan, wp, bp, co2, act, lo, hi, xp, yp)
            leave(&saved)
        if st != CCONV_OK:
            raise_status(st, "execute_separable")
        return y


def channel_shuffle_into(cnp.ndarray x, cnp.ndarray y, int64_t groups, bint channels_last):
    """y <- channel_shuffle(x); x, y C-contiguous (N, C, ...) or (N, ..., C) of one dtype."""
    cdef cconv_dtype dt = dtype_code(x)
    cdef int64_t n = x.shape[0]
    cdef int64_t c = x.shape[x.ndim - 1] if channels_last else x.shape[1]
    cdef int64_t s = (x.size // (n * c)) if n * c > 0 else 0
    cdef void *xp = data_of(x, dt, x.size, "x")
    cdef void *yp = data_of(y, dt, x.size, "out")
    cdef cconv_status st
    if x.size == 0:
        return y
    cdef Saved saved
    enter(&saved)
    with nogil:
        st = cconv_channel_shuffle(dt, channels_last, n, c, s, groups, xp, yp)
        leave(&saved)
    if st != CCONV_OK:
        raise_status(st, "channel_shuffle")
    return y


def flattened_into(Descriptor desc not None, cnp.ndarray dw, bias, cnp.ndarray cw, cnp.ndarray x, cnp.ndarray y):
    """y <- the depthwise step `desc` (weights dw, bias) of the 1x1 convolution of x with cw
    (C, C_in), fused band by band (cconv_flattened_conv2d); all C-contiguous, of one dtype."""
    cdef cconv_conv_desc d
    cdef cconv_dtype dt = dtype_code(x)
    fill_desc(desc, dt, &d)
    cdef int64_t ci = cw.shape[1]
    cdef void *xp = data_of(x, dt, d.batch * ci * d.in_size[1] * d.in_size[2], "x")
    cdef void *wp = data_of(dw, dt, weight_count(&d), "weight")
    cdef void *cp = data_of(cw, dt, d.in_channels * ci, "channel_weight")
    cdef void *yp = data_of(y, dt, d.batch * d.out_channels * d.out_size[1] * d.out_size[2], "out")
    cdef void *bp = NULL
    cdef cconv_status st
    if bias is not None:
        bp = data_of(bias, dt, d.out_channels, "bias")
    if y.size == 0:
        return y
    cdef Saved saved
    enter(&saved)
    with nogil:
        st = cconv_flattened_conv2d(&d, wp, bp, ci, cp, xp, yp)
        leave(&saved)
    if st != CCONV_OK:
        raise_status(st, "flattened_conv2d")
    return y


def get_isa():
    """The ISA a call in this context uses."""
    isa = isa_override.get()
    return isa if isa is not None else cconv_get_isa().decode()


def isa_available(name):
    return bool(cconv_isa_available(name.encode()))


def set_isa(name):
    cdef bytes b = (name or "auto").encode()
    if cconv_set_isa(b) != CCONV_OK:
        raise ValueError(f"isa {name!r} is not available on this CPU or build")


def set_num_threads(int n):
    cconv_set_num_threads(n)


def get_num_threads():
    """The thread count a call in this context uses."""
    n = threads_override.get()
    return n if n is not None else cconv_get_num_threads()


def has_openmp():
    return bool(cconv_has_openmp())


cdef extern from "internal.h" nogil:
    double cconv_fma_peak(const char *isa, cconv_dtype dtype, int64_t iters, int threads,
                          double *seconds, int *team)


def fma_peak(isa, dtype, int64_t iters, int threads):
    """(FLOP/s, seconds, threads) of `iters` rounds of the ISA's register-only multiply-add loop
    on each thread of an OpenMP team (FLOP/s: the sum of each thread's own rate; seconds: the
    call's wall time): the machine's FMA peak, the yardstick of cconv.bench."""
    cdef bytes name = isa.encode()
    cdef const char *c_name = name
    cdef cconv_dtype dt = CCONV_FLOAT64 if np.dtype(dtype) == np.float64 else CCONV_FLOAT32
    cdef double rate, seconds = 0
    cdef int team = 0
    with nogil:
        rate = cconv_fma_peak(c_name, dt, iters, threads, &seconds, &team)
    if rate < 0:
        raise ValueError(f"isa {isa!r} is not available on this CPU or build, or iters={iters} / "
                         f"threads={threads} is not positive")
    return rate, seconds, team
