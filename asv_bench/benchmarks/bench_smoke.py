"""A few tiny cases (a grouped strided dilated conv2d, a transposed conv, a composite, the
shuffle, two gradients), both layouts, one thread: the subset CI runs
(`asv run -E existing --quick --bench Smoke`) so the suite never rots. The numbers mean little
(call overhead); the point is that every kind of benchmark still runs."""
from . import common

_KEYS = ("t_conv2d_g", "t_convT2d", "t_separable", "t_shuffle", "t_grad_conv2d", "t_grad_flattened")

globals().update(common.benchmark_classes(
    "Smoke", [c for c in common.cases.TINY if c.key in _KEYS], dtypes=["float32"], threads=[1]))
