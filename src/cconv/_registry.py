"""The registry of public operations: one record per public function, the one place that lists them.

Every list of public functions derives from `OPERATIONS`: ``cconv.__all__``, the ``plan_*``
functions, ``cconv.dask`` (its wrappers are built from the records), ``cconv.analysis.FUNCTIONS``
and `describe` (the stages a call runs, from shapes only). The explicit ``def`` wrappers in
``cconv._functions`` keep their own signatures for help() and type checkers; tests/test_registry.py
checks each against its record's `signature`.

Adding a variant: its kernels, its stage builder (shapes -> Geometry/ShuffleStage list) and its
wrapper in ``_functions``, and one record here.

Costs (``cconv.analysis.cost``) have no per-function rule: they are computed from the stages, so a
new record gets them for free.
"""
from __future__ import annotations

from dataclasses import dataclass
import functools
import inspect
from typing import Any, Callable, Dict, Optional, Tuple

from ._geometry import LAYOUTS, _is_int, channels_last

#: Default value of every optional parameter of the public functions, by name: a parameter means
#: the same thing, with the same default, wherever it appears.
DEFAULTS: Dict[str, Any] = dict(
    bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1, shuffle_groups=None,
    padding_mode="zeros", layout=None, out=None, algorithm="auto", fused=True,
    dtype=None, threads="auto", activation=None, depthwise_bias=None, depthwise_activation=None)

#: Parameters that do not change the stages a call runs (describe() ignores them).
RUN_ONLY = ("bias", "out", "algorithm", "fused", "activation", "depthwise_bias", "depthwise_activation")

_WINDOW = "bias=, stride=, padding=, dilation="
_KEYWORDS = "*, padding_mode=, layout=, out=, algorithm="


def _parse(spec: str) -> inspect.Signature:
    """'x, weight, bias=, *, layout=' -> Signature: `name=` takes DEFAULTS[name], `*` starts the
    keyword-only parameters."""
    params = []
    kind: Any = inspect.Parameter.POSITIONAL_OR_KEYWORD
    for item in (s.strip() for s in spec.split(",")):
        if item == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
        elif item.endswith("="):
            params.append(inspect.Parameter(item[:-1], kind, default=DEFAULTS[item[:-1]]))
        else:
            params.append(inspect.Parameter(item, kind))
    return inspect.Signature(params)


@dataclass(frozen=True)
class Operation:
    """One public function.

    name: its name in cconv (and cconv.dask); spec: its parameters (see _parse); nd: its spatial
    dimensions (None: any, channel_shuffle); stages: its stage builder in cconv._functions, with
    leading arguments stage_args; grad: its functions in cconv.grad; dask: whether cconv.dask has
    it; plan: whether cconv has plan_<name>."""
    name: str
    spec: str
    nd: Optional[int]
    stages_name: str
    stage_args: Tuple[Any, ...] = ()
    grad: Tuple[str, ...] = ()
    dask: bool = True
    plan: bool = False

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        return _parse(self.spec)

    @property
    def required(self) -> Tuple[str, ...]:
        """The required parameters after x: the weight arrays (and groups where it is required)."""
        return tuple(p.name for p in list(self.signature.parameters.values())[1:]
                     if p.default is p.empty)

    @property
    def weights(self) -> Tuple[str, ...]:
        """The names of the weight arrays, in order."""
        return tuple(n for n in self.required if n != "groups")

    @property
    def transposed(self) -> bool:
        return "output_padding" in self.signature.parameters

    @property
    def function(self) -> Callable[..., Any]:
        from . import _functions
        return getattr(_functions, self.name)

    @property
    def stages(self) -> Callable[..., Any]:
        """The stage builder: (x_shape, *required, **stage keywords) -> list of stages."""
        from . import _functions
        return functools.partial(getattr(_functions, self.stages_name), *self.stage_args)

    @property
    def plan_name(self) -> Optional[str]:
        return f"plan_{self.name}" if self.plan else None

    @functools.cached_property
    def plan_signature(self) -> inspect.Signature:
        """plan_<name>: x_shape for x, no out=, dtype= before algorithm=."""
        params = [p.replace(name="x_shape") if p.name == "x" else p
                  for p in self.signature.parameters.values() if p.name not in ("out", "algorithm")]
        params.append(inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=DEFAULTS["dtype"]))
        params.append(self.signature.parameters["algorithm"])
        return inspect.Signature(params)

    def batched_ndim(self, shape: Tuple[int, ...], layout: Any) -> int:
        """x's dimensions when batched (x.ndim or x.ndim + 1) for a call on an x of this shape;
        ValueError for any other. Unbatched x is (C, *spatial) (channels-last: (*spatial,
        C)), like torch >= 1.11. channel_shuffle (nd None) takes its spatial dimensions from layout;
        without one, x is batched, at least 3-D, as torch.channel_shuffle reads it."""
        name, nd, ndim = self.name, self.nd, len(shape)
        if nd is None:
            if layout is None:
                if ndim < 3:
                    raise ValueError(f"{name}: x must be (N, C, *spatial), at least 3-D as in "
                                     f"torch.channel_shuffle, got shape {tuple(shape)}; for an "
                                     f"unbatched x (C, *spatial) pass layout= (e.g. 'NCW' for (C, L))")
                return ndim
            nd = next((k for k, names in LAYOUTS.items()
                       if isinstance(layout, str) and layout.upper() in names), None)
            if nd is None:
                raise ValueError(f"layout must be one of {sorted(sum(LAYOUTS.values(), ()))} or "
                                 f"None, got {layout!r}")
        if ndim in (nd + 1, nd + 2):
            return nd + 2
        last = channels_last(layout, nd)
        names = LAYOUTS[nd][last]
        unbatched = names.replace("N", "")
        hint = ""
        if ndim == nd:
            one = "x[..., None]" if last else "x[None]"
            batch = "x[None, ..., None]" if last else "x[None, None]"
            hint = (f"; for one channel pass {one} (unbatched, result {unbatched}) or {batch} "
                    f"(a batch of one)")
        given = "" if layout is None else f" with layout={layout!r}"
        raise ValueError(f"{name}: x must be {nd + 2}-D ({names}) or {nd + 1}-D unbatched ({unbatched})"
                         f"{given}, got shape {tuple(shape)}{hint}")

    @functools.cached_property
    def dask_signature(self) -> inspect.Signature:
        """cconv.dask.<name>: no out= (the result is lazy), threads= last."""
        params = [p for p in self.signature.parameters.values() if p.name != "out"]
        params.append(inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY,
                                        default=DEFAULTS["threads"]))
        return inspect.Signature(params)


def _conv(nd: int) -> Operation:
    return Operation(f"conv{nd}d", f"x, weight, {_WINDOW}, groups=, {_KEYWORDS}, activation=", nd, "conv_stages",
                     (nd, False), (f"conv{nd}d_input", f"conv{nd}d_weight"), plan=True)


def _conv_transpose(nd: int) -> Operation:
    name = f"conv_transpose{nd}d"
    return Operation(name, "x, weight, bias=, stride=, padding=, output_padding=, groups=, dilation=, "
                     "*, layout=, out=, algorithm=, activation=", nd, "conv_stages", (nd, True),
                     (f"{name}_input", f"{name}_weight"), plan=True)


_RECORDS = (
    _conv(1), _conv(2), _conv(3), _conv_transpose(1), _conv_transpose(2), _conv_transpose(3),
    Operation("depthwise_conv2d", f"x, weight, {_WINDOW}, {_KEYWORDS}, activation=", 2, "depthwise_stages",
              grad=("depthwise_conv2d_input", "depthwise_conv2d_weight", "depthwise_conv2d_grads")),
    Operation("separable_conv2d", f"x, depthwise_weight, pointwise_weight, {_WINDOW}, {_KEYWORDS}, fused=, "
              "activation=, depthwise_bias=, depthwise_activation=",
              2, "separable_stages", grad=("separable_conv2d_grads",)),
    Operation("spatially_separable_conv2d",
              f"x, vertical_weight, horizontal_weight, {_WINDOW}, groups=, {_KEYWORDS}, fused=, activation=", 2,
              "spatially_separable_stages", grad=("spatially_separable_conv2d_grads",)),
    Operation("flattened_conv2d",
              f"x, channel_weight, vertical_weight, horizontal_weight, {_WINDOW}, {_KEYWORDS}, fused=, activation=",
              2, "flattened_stages", grad=("flattened_conv2d_grads",)),
    Operation("channel_shuffle", "x, groups, *, layout=, out=", None, "shuffle_stages",
              grad=("channel_shuffle_input",)),
    Operation("shuffled_grouped_conv2d", f"x, weight, groups, {_WINDOW}, *, shuffle_groups=, "
              "padding_mode=, layout=, out=, algorithm=, activation=", 2, "shuffled_grouped_stages",
              grad=("shuffled_grouped_conv2d_grads",), dask=False),
)

#: name -> Operation, in the order of the public API.
OPERATIONS: Dict[str, Operation] = {op.name: op for op in _RECORDS}

#: The public function names.
NAMES: Tuple[str, ...] = tuple(OPERATIONS)


def get(fn: Any) -> Operation:
    """The record of a public function, given it or its name."""
    name = getattr(fn, "__name__", fn)
    op = OPERATIONS.get(name) if isinstance(name, str) else None
    if op is None:
        raise ValueError(f"unknown function {fn!r}; expected one of {', '.join(NAMES)}")
    return op


def describe(fn_name: Any, x_shape: Any, *weight_shapes: Any, **kwargs: Any) -> list:
    """The list of stages (Geometry or ShuffleStage) that `fn_name` runs for these shapes, with
    every argument validated exactly as the function itself does. Used by cconv.analysis and
    cconv.dask."""
    op = get(fn_name)
    # Accept exactly the arguments the function itself accepts.
    args = dict(op.signature.bind(x_shape, *weight_shapes, **kwargs).arguments)
    args.pop("x")
    required = [args.pop(n) for n in op.required]
    for n in RUN_ONLY:
        args.pop(n, None)
    return op.stages(tuple(x_shape), *[w if _is_int(w) else tuple(w) for w in required], **args)
