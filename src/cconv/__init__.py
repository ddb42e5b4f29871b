"""cconv: fast CPU convolutions for NumPy.

Every convolution variant used in deep learning (1-D/2-D/3-D, pointwise, transposed, dilated,
grouped, depthwise, separable, flattened, channel shuffle) as cache-blocked C kernels with runtime
SIMD dispatch and OpenMP threads. Semantics follow torch.nn.functional.
"""
import contextlib
import numbers
import os
import warnings

from . import _api, _core, _registry
from ._functions import (
    ConvPlan, channel_shuffle, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
    conv_transpose3d, depthwise_conv2d, flattened_conv2d, plan_conv1d, plan_conv2d, plan_conv3d,
    plan_conv_transpose1d, plan_conv_transpose2d, plan_conv_transpose3d, separable_conv2d,
    shuffled_grouped_conv2d, spatially_separable_conv2d,
)

__version__ = _core.VERSION

ISAS = ("avx512", "avx2", "generic")

__all__ = [
    *_registry.NAMES, "ConvPlan",
    *(op.plan_name for op in _registry.OPERATIONS.values() if op.plan_name),
    "get_include", "show_config", "set_num_threads", "get_num_threads", "get_isa", "set_isa",
    "available_isas", "use_isa", "use_num_threads", "set_allow_lossy", "get_allow_lossy",
    "allow_lossy",
]


_SUBMODULES = ("analysis", "decompose", "grad", "dask", "bench")


def __dir__():
    # The public names: not the modules imported for internal use (os, contextlib, numbers, ...).
    return sorted({*__all__, *_SUBMODULES, "ISAS", "__version__"})


def __getattr__(name):
    # Submodules load on first use: `cconv.grad.conv2d_input(...)` works after `import cconv`,
    # and importing cconv never imports dask or matplotlib.
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_include():
    """Directory holding cconv.h, for extensions that embed cconv (see README)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def available_isas():
    """Instruction-set paths this CPU and build can run, best first."""
    return [name for name in ISAS if _core.isa_available(name)]


def get_isa():
    """The instruction set a call made here uses: that of the innermost use_isa block of this
    context (thread or asyncio task), else the process-wide one (set_isa, CCONV_ISA)."""
    return _core.get_isa()


def set_isa(name=None):
    """Process-wide instruction set ("avx512", "avx2", "generic"); None or "auto" picks the best.
    Applies to calls, in every thread, that start afterwards and are not inside a use_isa block;
    plans keep the ISA they were created with. The environment variable CCONV_ISA sets the
    initial value."""
    _core.set_isa(name)


def _check_isa(name):
    """The ISA name (None or "auto": the best available), checked available."""
    if name is None or name == "auto":
        return available_isas()[0]
    if not isinstance(name, str) or not _core.isa_available(name):
        raise ValueError(f"isa must be one of {available_isas()} (or None or 'auto'), got {name!r}")
    return name


@contextlib.contextmanager
def use_isa(name):
    """Context manager: calls made inside the block use instruction set `name` (None or "auto":
    the best available), then the previous setting is back.

    The setting belongs to the current context, like decimal.localcontext: other threads and
    other asyncio tasks are unaffected. A thread started inside the block does not inherit it
    (run it with contextvars.copy_context().run, or enter use_isa in the thread); cconv.dask
    applies the block around a graph's construction to the graph's tasks. A plan created inside
    the block keeps its ISA afterwards."""
    token = _core.isa_override.set(_check_isa(name))
    try:
        yield
    finally:
        _core.isa_override.reset(token)


def set_num_threads(n):
    """Process-wide threads for cconv's kernels; 0 or None follows OpenMP (OMP_NUM_THREADS,
    threadpoolctl). Applies to calls, in every thread, that start afterwards and are not inside
    a use_num_threads block. Results are bitwise identical for any thread count."""
    _core.set_num_threads(int(n or 0))


def get_num_threads():
    """The thread count a call made here uses (use_num_threads, else set_num_threads, else
    OpenMP's)."""
    return _core.get_num_threads()


@contextlib.contextmanager
def use_num_threads(n):
    """Context manager: calls made inside the block use n threads (None or 0: the process-wide
    setting); like use_isa, for the current thread or asyncio task only."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0):
        raise ValueError(f"num_threads must be a non-negative int or None, got {n!r}")
    token = _core.threads_override.set(int(n) if n else None)
    try:
        yield
    finally:
        _core.threads_override.reset(token)


def set_allow_lossy(flag):
    """Process-wide: whether algorithm="auto" may pick a lossy algorithm (Winograd, whose float32
    error is several times a direct convolution's) and whether algorithm="winograd" is accepted.
    True by default. With False, "auto" behaves as "exact" and "winograd" raises ValueError.
    Applies to plans created afterwards, in every thread, outside allow_lossy blocks; plans keep
    the setting they were created with."""
    _api.set_allow_lossy(flag)


def get_allow_lossy():
    """Whether a call made here may use a lossy algorithm (allow_lossy, else set_allow_lossy)."""
    return _api.get_allow_lossy()


@contextlib.contextmanager
def allow_lossy(flag):
    """Context manager: inside the block, lossy algorithms are allowed (True) or not (False),
    then the previous setting is back. Context-local like use_isa (other threads and asyncio tasks
    are unaffected); cconv.dask applies the block around a graph's construction to the graph's
    tasks, and a plan created inside the block keeps its choice afterwards."""
    token = _api.lossy_override.set(_api.check_lossy_flag(flag))
    try:
        yield
    finally:
        _api.lossy_override.reset(token)


def _warn_about_environment():
    """The C side ignores a CCONV_ISA that names no ISA this CPU and build can run: say so."""
    value = os.environ.get("CCONV_ISA", "")
    if value and value != "auto" and not _core.isa_available(value):
        warnings.warn(f"CCONV_ISA={value!r} is not an instruction set this CPU and build can run "
                      f"(available: {', '.join(available_isas())}, or auto); using "
                      f"{_core.get_isa()!r}", RuntimeWarning, stacklevel=2)


_warn_about_environment()


def show_config(file=None):
    """Prints version, ISA chosen, ISAs available, OpenMP and threads."""
    lines = [
        f"cconv {__version__}",
        f"  isa: {get_isa()} (available: {', '.join(available_isas())}; override with CCONV_ISA)",
        f"  openmp: {'on' if _core.has_openmp() else 'off'}",
        f"  threads: {get_num_threads()}",
        f"  include: {get_include()}",
    ]
    print("\n".join(lines), file=file)
