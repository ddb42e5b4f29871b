"""cconv: fast CPU convolutions for NumPy.

Every convolution variant used in deep learning (1-D/2-D/3-D, pointwise, transposed, dilated,
grouped, depthwise, separable, flattened, channel shuffle) as cache-blocked C kernels with runtime
SIMD dispatch and OpenMP threads. Semantics follow torch.nn.functional.

Functions
---------
conv1d, conv2d, conv3d
    Convolution (cross-correlation), any stride, padding, dilation and groups.
conv_transpose1d, conv_transpose2d, conv_transpose3d
    Transposed convolution (the adjoint of conv*d).
depthwise_conv2d, separable_conv2d, spatially_separable_conv2d, flattened_conv2d
    Factorised 2-D convolutions.
channel_shuffle, shuffled_grouped_conv2d
    ShuffleNet's channel shuffle, alone and after a grouped convolution.
plan_conv1d ... plan_conv_transpose3d, ConvPlan
    A convolution planned once for one input shape and run many times.
set_num_threads, get_num_threads, use_num_threads
    Threads of the kernels (results are bitwise identical for any count).
set_isa, get_isa, use_isa, available_isas
    The SIMD instruction set (``"avx512"``, ``"avx2"``, ``"generic"``).
get_include, show_config
    Build information.

Submodules (loaded on first use)
--------------------------------
cconv.grad
    Gradients (backward passes) of every convolution.
cconv.analysis
    Output shapes, operation counts and receptive fields, from shapes alone.
cconv.decompose
    Separable and flattened approximations of full filters.
cconv.dask
    The same functions on chunked dask arrays, for inputs larger than memory.

Arrays are NumPy arrays (anything ``numpy.asarray`` accepts), channels-first by default
(``layout="NHWC"`` etc. for channels-last). float32 and float64 are computed natively, other
real dtypes are converted (integers to float64). For 3x3 stride-1 layers ``algorithm="auto"``
may use Winograd, which is faster but less accurate in float32; ``algorithm="exact"`` or
``cconv.set_allow_lossy(False)`` forbids it.

Examples
--------
>>> import numpy as np
>>> import cconv
>>> x = np.ones((1, 3, 32, 32), dtype=np.float32)
>>> w = np.ones((8, 3, 3, 3), dtype=np.float32)
>>> y = cconv.conv2d(x, w, padding=1)
>>> y.shape, float(y[0, 0, 5, 5])
((1, 8, 32, 32), 27.0)
"""
import contextlib
import numbers
import os
import warnings

from . import _geometry, _core, _registry
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
    """Directory holding cconv.h, for extensions that embed cconv (see README).

    The C API in cconv.h is the one the Python functions use; add this directory to the
    include path of a C or Cython extension (like ``numpy.get_include()``).

    Returns
    -------
    str
        Absolute path of the directory.

    See Also
    --------
    show_config

    Examples
    --------
    >>> import os
    >>> import cconv
    >>> os.path.basename(cconv.get_include())
    'include'
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def available_isas():
    """Instruction-set paths this CPU and build can run, best first.

    Returns
    -------
    list of str
        A sublist of ``["avx512", "avx2", "generic"]``; ``"generic"`` (portable C) is always
        there.

    See Also
    --------
    get_isa, set_isa, use_isa

    Examples
    --------
    >>> import cconv
    >>> cconv.available_isas()[-1]
    'generic'
    """
    return [name for name in ISAS if _core.isa_available(name)]


def get_isa():
    """The instruction set a call made here uses: that of the innermost use_isa block of this
    context (thread or asyncio task), else the process-wide one (set_isa, CCONV_ISA).

    Returns
    -------
    str
        ``"avx512"``, ``"avx2"`` or ``"generic"``.

    See Also
    --------
    set_isa, use_isa, available_isas

    Examples
    --------
    >>> import cconv
    >>> cconv.get_isa() in cconv.available_isas()
    True
    >>> with cconv.use_isa("generic"):
    ...     cconv.get_isa()
    'generic'
    """
    return _core.get_isa()


def set_isa(name=None):
    """Process-wide instruction set ("avx512", "avx2", "generic"); None or "auto" picks the best.

    Applies to calls, in every thread, that start afterwards and are not inside a use_isa block;
    plans keep the ISA they were created with. The environment variable CCONV_ISA sets the
    initial value. Every ISA computes the same convolution; results may differ in the last
    bits (different FMA contraction and vector widths).

    Parameters
    ----------
    name : {None, "auto", "avx512", "avx2", "generic"}, optional
        The instruction set; None or "auto" (default) picks the best available.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If `name` is not an instruction set this CPU and build can run.

    See Also
    --------
    use_isa : The same for a block of code in one thread or task.
    get_isa, available_isas

    Examples
    --------
    >>> import cconv
    >>> previous = cconv.get_isa()
    >>> cconv.set_isa("generic")
    >>> cconv.get_isa()
    'generic'
    >>> cconv.set_isa(previous)
    """
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
    the block keeps its ISA afterwards.

    Parameters
    ----------
    name : {None, "auto", "avx512", "avx2", "generic"}
        The instruction set inside the block.

    Yields
    ------
    None

    Raises
    ------
    ValueError
        If `name` is not an instruction set this CPU and build can run (raised on entering the
        block).

    See Also
    --------
    set_isa, get_isa, available_isas

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    >>> with cconv.use_isa("generic"):
    ...     y = cconv.conv2d(x, w)
    >>> np.allclose(y, cconv.conv2d(x, w))
    True
    """
    token = _core.isa_override.set(_check_isa(name))
    try:
        yield
    finally:
        _core.isa_override.reset(token)


def set_num_threads(n):
    """Process-wide threads for cconv's kernels; 0 or None follows OpenMP (OMP_NUM_THREADS,
    threadpoolctl).

    Applies to calls, in every thread, that start afterwards and are not inside a
    use_num_threads block. Results are bitwise identical for any thread count.

    Parameters
    ----------
    n : int or None
        Number of threads; 0 or None follow OpenMP's setting.

    Returns
    -------
    None

    See Also
    --------
    use_num_threads : The same for a block of code in one thread or task.
    get_num_threads

    Examples
    --------
    >>> import cconv
    >>> cconv.set_num_threads(1)
    >>> cconv.get_num_threads()
    1
    >>> cconv.set_num_threads(None)     # back to the default: follow OpenMP
    """
    _core.set_num_threads(int(n or 0))


def get_num_threads():
    """The thread count a call made here uses (use_num_threads, else set_num_threads, else
    OpenMP's).

    Returns
    -------
    int
        The number of threads, at least 1.

    See Also
    --------
    set_num_threads, use_num_threads

    Examples
    --------
    >>> import cconv
    >>> cconv.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


@contextlib.contextmanager
def use_num_threads(n):
    """Context manager: calls made inside the block use n threads (None or 0: the process-wide
    setting); like use_isa, for the current thread or asyncio task only.

    Parameters
    ----------
    n : int or None
        Number of threads inside the block; None or 0 use the process-wide setting.

    Yields
    ------
    None

    Raises
    ------
    ValueError
        If `n` is not a non-negative int or None (raised on entering the block).

    See Also
    --------
    set_num_threads, get_num_threads, use_isa

    Examples
    --------
    >>> import cconv
    >>> with cconv.use_num_threads(1):
    ...     cconv.get_num_threads()
    1
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0):
        raise ValueError(f"num_threads must be a non-negative int or None, got {n!r}")
    token = _core.threads_override.set(int(n) if n else None)
    try:
        yield
    finally:
        _core.threads_override.reset(token)


def set_allow_lossy(flag):
    """Process-wide: whether algorithms with more rounding error than a direct convolution may run.

    Winograd (which ``algorithm="auto"`` picks for many 3x3 stride-1 layers) trades multiplications
    for additions and has several times a direct convolution's float32 error. With False,
    ``"auto"`` behaves as ``"exact"`` and an explicit ``algorithm="winograd"`` raises ValueError.
    Applies to calls and plans made afterwards, in every thread, outside `allow_lossy` blocks;
    a plan keeps the setting it was created with.

    Parameters
    ----------
    flag : bool
        True (the default at import) allows lossy algorithms, False forbids them.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If `flag` is not a bool.

    See Also
    --------
    allow_lossy : the same for one block of code, in the current thread or task only.
    get_allow_lossy

    Examples
    --------
    >>> import cconv
    >>> cconv.set_allow_lossy(False)
    >>> cconv.get_allow_lossy()
    False
    >>> cconv.set_allow_lossy(True)
    """
    _geometry.set_allow_lossy(flag)


def get_allow_lossy():
    """Whether a call made here may use a lossy algorithm (Winograd).

    That of the innermost `allow_lossy` block of this context (thread or asyncio task), else the
    process-wide setting (`set_allow_lossy`).

    Returns
    -------
    bool

    See Also
    --------
    set_allow_lossy, allow_lossy

    Examples
    --------
    >>> import cconv
    >>> with cconv.allow_lossy(False):
    ...     cconv.get_allow_lossy()
    False
    """
    return _geometry.get_allow_lossy()


@contextlib.contextmanager
def allow_lossy(flag):
    """Context manager: inside the block, lossy algorithms are allowed (True) or not (False).

    Context-local like `use_isa`: other threads and asyncio tasks are unaffected, and the previous
    setting is back after the block. cconv.dask applies the block around a graph's construction to
    the graph's tasks; a plan created inside the block keeps its choice afterwards.

    Parameters
    ----------
    flag : bool
        False makes ``algorithm="auto"`` behave as ``"exact"`` (never Winograd) and makes an
        explicit ``algorithm="winograd"`` raise ValueError.

    Yields
    ------
    None

    Raises
    ------
    TypeError
        If `flag` is not a bool.

    See Also
    --------
    set_allow_lossy, get_allow_lossy

    Examples
    --------
    >>> import numpy as np
    >>> import cconv
    >>> x, w = np.ones((1, 16, 8, 8), np.float32), np.ones((16, 16, 3, 3), np.float32)
    >>> with cconv.allow_lossy(False):
    ...     y = cconv.conv2d(x, w, padding=1)
    >>> np.array_equal(y, cconv.conv2d(x, w, padding=1, algorithm="gemm"))
    True
    """
    token = _geometry.lossy_override.set(_geometry.check_lossy_flag(flag))
    try:
        yield
    finally:
        _geometry.lossy_override.reset(token)


def _warn_about_environment():
    """The C side ignores a CCONV_ISA that names no ISA this CPU and build can run: say so."""
    value = os.environ.get("CCONV_ISA", "")
    if value and value != "auto" and not _core.isa_available(value):
        warnings.warn(f"CCONV_ISA={value!r} is not an instruction set this CPU and build can run "
                      f"(available: {', '.join(available_isas())}, or auto); using "
                      f"{_core.get_isa()!r}", RuntimeWarning, stacklevel=2)


_warn_about_environment()


def show_config(file=None):
    """Prints version, ISA chosen, ISAs available, OpenMP and threads.

    Parameters
    ----------
    file : file-like, optional
        Where to print. Default None (``sys.stdout``).

    Returns
    -------
    None

    See Also
    --------
    get_isa, get_num_threads, get_include

    Examples
    --------
    >>> import io
    >>> import cconv
    >>> buf = io.StringIO()
    >>> cconv.show_config(file=buf)
    >>> buf.getvalue().startswith("cconv " + cconv.__version__)
    True
    """
    lines = [
        f"cconv {__version__}",
        f"  isa: {get_isa()} (available: {', '.join(available_isas())}; override with CCONV_ISA)",
        f"  openmp: {'on' if _core.has_openmp() else 'off'}",
        f"  threads: {get_num_threads()}",
        f"  include: {get_include()}",
    ]
    print("\n".join(lines), file=file)
