"""cconv: fast CPU convolutions for NumPy.

Every convolution variant used in deep learning (1-D/2-D/3-D, pointwise, transposed, dilated,
grouped, depthwise, separable, flattened, channel shuffle) as cache-blocked C kernels with runtime
SIMD dispatch and OpenMP threads. Semantics follow torch.nn.functional.
"""
import contextlib
import os

from . import _core
from ._functions import (
    ConvPlan, channel_shuffle, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
    conv_transpose3d, depthwise_conv2d, flattened_conv2d, plan_conv1d, plan_conv2d, plan_conv3d,
    plan_conv_transpose1d, plan_conv_transpose2d, plan_conv_transpose3d, separable_conv2d,
    shuffled_grouped_conv2d, spatially_separable_conv2d,
)

__version__ = _core.VERSION

ISAS = ("avx512", "avx2", "generic")

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "depthwise_conv2d", "separable_conv2d", "spatially_separable_conv2d", "flattened_conv2d",
    "channel_shuffle", "shuffled_grouped_conv2d", "ConvPlan", "plan_conv1d", "plan_conv2d", "plan_conv3d",
    "plan_conv_transpose1d", "plan_conv_transpose2d", "plan_conv_transpose3d",
    "get_include", "show_config", "set_num_threads", "get_num_threads", "get_isa", "set_isa",
    "available_isas", "use_isa",
]


_SUBMODULES = ("analysis", "decompose", "grad", "dask", "bench")


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
    """The instruction set new plans use."""
    return _core.get_isa()


def set_isa(name=None):
    """Force an instruction set ("avx512", "avx2", "generic"); None or "auto" picks the best.
    The environment variable CCONV_ISA does the same at import."""
    _core.set_isa(name)


@contextlib.contextmanager
def use_isa(name):
    """Context manager: run the block with one instruction set, then restore the previous one."""
    old = get_isa()
    set_isa(name)
    try:
        yield
    finally:
        set_isa(old)


def set_num_threads(n):
    """Threads for cconv's kernels; 0 or None follows OpenMP (OMP_NUM_THREADS, threadpoolctl)."""
    _core.set_num_threads(int(n or 0))


def get_num_threads():
    return _core.get_num_threads()


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
