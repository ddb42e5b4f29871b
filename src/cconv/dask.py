"""cconv on chunked Dask arrays: the forward API, lazily, for inputs larger than memory.

    import dask.array as da, cconv.dask as cd
    x = da.random.random((1, 1, 2048, 2048, 2048), chunks=(1, 1, 256, 256, 256))
    y = cd.conv3d(x, w, padding="same", padding_mode="reflect")   # lazy dask array
    y.mean().compute()                                              # streams block by block

Every function takes the arguments of its in-memory counterpart in `cconv` (x a
`dask.array.Array`, or anything `dask.array.asarray` accepts) and returns a lazy dask array equal
to the in-memory result for any chunking of x. How it is split:

* batch chunks map block by block; the channel axis is rechunked to one chunk;
* each spatial output block gets exactly the input range its taps read (the halo follows kernel,
  dilation and stride), gathered from however many input chunks that range touches, so chunks
  smaller than the halo are fine. Output chunks follow the input chunks divided by the stride;
* zero padding (every form: ints, per-side pairs, "same", "valid") is passed to each block as the
  per-side padding it needs at the array's true borders; reflect / replicate / circular padding
  gathers the mirrored, clamped or wrapped input indices, so the result is exactly the padded
  convolution of the whole array;
* transposed convolutions compute, per output block, the contribution of the input range that
  reaches it and crop;
* multi-stage functions (depthwise, separable, spatially separable, flattened) run as one call
  per block with the combined halo;
* weights and bias are graph nodes of their own, shipped once (per worker on `distributed`) and
  shared by every task; dask arrays are accepted as weights too.

Threads: each task runs its cconv calls with `threads` threads (cconv.use_num_threads: the task's
own calls only, so tasks running at once and other threads are unaffected). The default "auto"
uses 1 thread per task when the task runs in a worker thread (threaded scheduler,
`distributed`) - dask already runs one task per core - and leaves cconv's setting alone when the
task runs in the main thread (the synchronous scheduler). Pass an int to choose, or None to never
touch it.

ISA: a graph's tasks use the instruction set of the cconv.use_isa block the graph was built in
(dask's worker threads do not inherit the block, so it is recorded in the graph), or, built
outside any block, each process's own setting (cconv.set_isa, CCONV_ISA) when the task runs.

Importing `cconv` never imports dask; importing `cconv.dask` does.

Example (a small array in four chunks; the result equals the in-memory one)::

    >>> import numpy as np
    >>> import dask.array as da
    >>> import cconv
    >>> import cconv.dask
    >>> x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    >>> w = np.ones((4, 3, 3, 3))
    >>> y = cconv.dask.conv2d(da.from_array(x, chunks=(1, 3, 8, 8)), w, padding=1)
    >>> y.shape, y.numblocks
    ((2, 4, 16, 16), (2, 1, 2, 2))
    >>> np.allclose(y.compute(), cconv.conv2d(x, w, padding=1))
    True
"""
import contextlib
import threading

import numpy as np

import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import _geometry, _core, _functions, _registry


# ------------------------------------------------------------------ settings inside tasks

@contextlib.contextmanager
def _task_settings(isa, threads, lossy=None):
    """The graph's ISA and lossy-algorithm setting (None: the process's) and the task's thread
    count, for this task's calls."""
    if threads == "auto":
        threads = None if threading.current_thread() is threading.main_thread() else 1
    isa_token = _core.isa_override.set(isa)
    lossy_token = _geometry.lossy_override.set(lossy)
    threads_token = None if threads is None else _core.threads_override.set(threads)
    try:
        yield
    finally:
        if threads_token is not None:
            _core.threads_override.reset(threads_token)
        _geometry.lossy_override.reset(lossy_token)
        _core.isa_override.reset(isa_token)


def _check_threads(threads):
    if threads is None or threads == "auto":
        return threads
    if not _geometry._is_int(threads) or threads < 1:
        raise ValueError(f"threads must be 'auto', None or a positive int, got {threads!r}")
    return int(threads)


# ------------------------------------------------------------------ arguments

def _as_dask(x):
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be a real numeric array (float32 or float64 computed natively), "
                        f"got dtype {x.dtype}")
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError("x has unknown chunk sizes; call x.compute_chunk_sizes() first")
    return x


class _Operand:
    """A weight or bias: a graph key (the array is put in the graph once) plus its shape/dtype."""

    def __init__(self, name, a):
        if isinstance(a, da.Array):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
            if any(np.isnan(c) for cs in a.chunks for c in cs):
                raise ValueError(f"{name} has unknown chunk sizes")
            if a.npartitions != 1:
                a = a.rechunk(-1)
            self.graph = None
            self.collection = a
            self.key = (a.name,) + (0,) * a.ndim
        else:
            # a copy: the graph is lazy, and a caller may reuse its weight buffer meanwhile
            a = np.array(_geometry.as_array(name, a))
            self.collection = None
            self.key = f"cconv-{name}-{tokenize(a)}"
            self.graph = {self.key: a}
        self.shape, self.dtype = tuple(a.shape), a.dtype

    def proxy(self):
        """A zero-strided stand-in for dtype/shape checks."""
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)


def _operands(named):
    return [None if a is None else _Operand(n, a) for n, a in named]


def _layout_axes(ndim, last):
    """(channel axis, spatial axes) of an array with ndim dimensions."""
    if last:
        return ndim - 1, tuple(range(1, ndim - 1))
    return 1, tuple(range(2, ndim))


def _bounds(chunks):
    return np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)


def _out_chunks(n_out, in_chunks, to_out):
    """Output chunks: every inner input chunk boundary b mapped through to_out, clipped."""
    cuts = {0, n_out}
    for b in _bounds(in_chunks)[1:-1]:
        cuts.add(min(max(int(to_out(int(b))), 0), n_out))
    cuts = sorted(cuts)
    return tuple(b - a for a, b in zip(cuts[:-1], cuts[1:]))


def _gather(bounds, idx):
    """Input pieces holding the source indices idx: ((chunk, lo, hi), ...) with lo/hi local to
    the chunk, and the positions of idx in the pieces' concatenation (None when it is all of it,
    in order)."""
    cid = np.searchsorted(bounds, idx, side="right") - 1
    pieces, offs, total = [], {}, 0
    for c in np.unique(cid):
        sel = idx[cid == c]
        lo, hi = int(sel.min() - bounds[c]), int(sel.max() + 1 - bounds[c])
        offs[int(c)] = total - lo - int(bounds[c])
        pieces.append((int(c), lo, hi))
        total += hi - lo
    local = idx + np.array([offs[int(c)] for c in cid], dtype=np.int64)
    take = None if (len(local) == total and np.array_equal(local, np.arange(total))) else local
    return tuple(pieces), take


_SOURCE = {
    "reflect": lambda j, n: np.where(j < 0, -j, np.where(j >= n, 2 * (n - 1) - j, j)),
    "symmetric": lambda j, n: np.where(j < 0, -1 - j, np.where(j >= n, 2 * n - 1 - j, j)),
    "replicate": lambda j, n: np.clip(j, 0, n - 1),
    "circular": lambda j, n: np.mod(j, n),
}


class _AxisBlock:
    """How one output block reads its input along one spatial axis."""
    __slots__ = ("pieces", "take", "pad", "crop", "empty")

    def __init__(self, pieces=(), take=None, pad=(0, 0), crop=None, empty=False):
        self.pieces, self.take, self.pad, self.crop, self.empty = pieces, take, pad, crop, empty


def _conv_axis(in_chunks, n_in, span, s, pb, n_out, mode):
    """Output chunks and per-block reads along one axis of a (non-transposed) convolution whose
    output o reads padded positions o*s .. o*s + span - 1 (input index = padded - pb)."""
    bounds = _bounds(in_chunks)
    out_chunks = _out_chunks(n_out, in_chunks, lambda b: -(-(b + pb - (span - 1) // 2) // s))
    blocks, o0 = [], 0
    for size in out_chunks:
        o1 = o0 + size
        j0, j1 = o0 * s - pb, (o1 - 1) * s + span - pb
        if mode == "zeros":
            v0, v1 = max(j0, 0), min(j1, n_in)
            if v0 >= v1:
                blocks.append(_AxisBlock(empty=True))
            else:
                pieces, take = _gather(bounds, np.arange(v0, v1, dtype=np.int64))
                blocks.append(_AxisBlock(pieces, take, (v0 - j0, j1 - v1)))
        else:
            idx = _SOURCE[mode](np.arange(j0, j1, dtype=np.int64), n_in)
            pieces, take = _gather(bounds, idx)
            blocks.append(_AxisBlock(pieces, take))
        o0 = o1
    return out_chunks, blocks


def _transposed_axis(in_chunks, n_in, k, s, d, p, n_out):
    """Output chunks and per-block reads of a transposed convolution: input i reaches the
    uncropped outputs i*s + t*d, t < k; output o is uncropped position o + p."""
    bounds = _bounds(in_chunks)
    reach = d * (k - 1)
    out_chunks = _out_chunks(n_out, in_chunks, lambda b: b * s - p + reach // 2)
    blocks, o0 = [], 0
    for size in out_chunks:
        u0, u1 = o0 + p, o0 + size + p
        i0, i1 = max(0, -(-(u0 - reach) // s)), min(n_in - 1, (u1 - 1) // s)
        if i0 > i1:
            blocks.append(_AxisBlock(empty=True))
        else:
            pieces, take = _gather(bounds, np.arange(i0, i1 + 1, dtype=np.int64))
            full = s * (i1 - i0) + reach + 1
            blocks.append(_AxisBlock(pieces, take, crop=(u0 - i0 * s, size, full)))
        o0 += size
    return out_chunks, blocks


# ------------------------------------------------------------------ per-block work

class _BlockSpec:
    """Everything one task needs besides the arrays (module level, so it pickles)."""
    __slots__ = ("fn", "kwargs", "axes", "grid", "spatial_axes", "channel_axis", "out_shape",
                 "out_dtype", "isa", "lossy", "threads", "transposed", "bias_inside", "slices")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _halo(chunk, index):
    """Graph task: a copy of the part of an input chunk that a neighbouring block needs, so only
    that part travels between workers and the chunk itself can be released."""
    return np.array(chunk[index])


def _assemble(spec, blocks):
    """The input block: the needed pieces of the input chunks, concatenated and reindexed."""
    parts = [b if sl is None else b[sl] for b, sl in zip(blocks, spec.slices)]
    if len(parts) == 1:
        xb = parts[0]
    else:
        shape = list(parts[0].shape)
        for ax, ab in zip(spec.spatial_axes, spec.axes):
            shape[ax] = sum(hi - lo for _, lo, hi in ab.pieces)
        xb = np.empty(shape, np.result_type(*parts))
        starts = [np.concatenate([[0], np.cumsum([hi - lo for _, lo, hi in ab.pieces])])
                  for ab in spec.axes]
        for flat, part in zip(np.ndindex(*spec.grid), parts):
            dst = [slice(None)] * xb.ndim
            for ax, st, i in zip(spec.spatial_axes, starts, flat):
                dst[ax] = slice(int(st[i]), int(st[i + 1]))
            xb[tuple(dst)] = part
    for ax, ab in zip(spec.spatial_axes, spec.axes):
        if ab.take is not None:
            xb = np.take(xb, ab.take, axis=ax)
    return xb


def _bias_block(spec, bias):
    y = np.zeros(spec.out_shape, spec.out_dtype)
    if bias is not None:
        shape = [1] * y.ndim
        shape[spec.channel_axis] = -1
        y += np.asarray(bias, spec.out_dtype).reshape(shape)
    return y


def _conv_block(spec, blocks, weights, bias):
    with _task_settings(spec.isa, spec.threads, spec.lossy):
        if any(ab.empty for ab in spec.axes):
            return _bias_block(spec, bias)
        xb = _assemble(spec, blocks)
        if not spec.transposed:
            pad = tuple(ab.pad for ab in spec.axes)
            y = spec.fn(xb, *weights, bias, padding=pad, **spec.kwargs)
        else:
            y = spec.fn(xb, *weights, bias if spec.bias_inside else None, **spec.kwargs)
            y = _crop(spec, y, None if spec.bias_inside else bias)
        if y.shape != spec.out_shape:  # pragma: no cover - a bug here, never the caller's
            raise AssertionError(f"cconv.dask block has shape {y.shape}, expected {spec.out_shape}")
        return y


def _crop(spec, y, bias):
    """The output block from the full contribution y of a transposed block (bias: still to add)."""
    src, dst = [slice(None)] * y.ndim, [slice(None)] * y.ndim
    inside = True
    for ax, ab in zip(spec.spatial_axes, spec.axes):
        c, n, full = ab.crop
        a, b = max(c, 0), min(c + n, full)
        inside &= a == c and b == c + n
        src[ax], dst[ax] = slice(a, b), slice(a - c, max(b - c, a - c))
    if inside and bias is None:
        return y[tuple(src)]
    out = _bias_block(spec, bias)
    out[tuple(dst)] += y[tuple(src)]
    return out


def _call_block(spec, blocks, *ops):
    """Graph task: ops are the weights then the bias (None when absent)."""
    return _conv_block(spec, blocks, ops[:-1], ops[-1])


# ------------------------------------------------------------------ graph construction

def _build(fn_name, block_fn, x, weights, bias, last, axis_params, call_kwargs, out_channels,
           out_dtype, transposed, isa, lossy, threads, token_args):
    """The lazy output: one task per (batch chunk, spatial output block)."""
    caxis, saxes = _layout_axes(x.ndim, last)
    if x.numblocks[caxis] != 1:
        x = x.rechunk({caxis: -1})
    per_axis = []
    for ax, prm in zip(saxes, axis_params):
        if transposed:
            per_axis.append(_transposed_axis(x.chunks[ax], x.shape[ax], *prm))
        else:
            per_axis.append(_conv_axis(x.chunks[ax], x.shape[ax], *prm))
    chunks = [None] * x.ndim
    chunks[0] = x.chunks[0]
    chunks[caxis] = (out_channels,)
    for ax, (oc, _) in zip(saxes, per_axis):
        chunks[ax] = oc
    name = f"cconv-{fn_name.replace('_', '-')}-" + tokenize(
        x.name, [w.key for w in weights], None if bias is None else bias.key, token_args, isa, lossy, threads)

    halo_name = "halo-" + name
    dsk, deps = {}, [x]
    for op in weights + ([bias] if bias is not None else []):
        if op.graph:
            dsk.update(op.graph)
        else:
            deps.append(op.collection)
    op_keys = [w.key for w in weights] + [None if bias is None else bias.key]
    for b, nb in enumerate(x.chunks[0]):
        for oidx in np.ndindex(*[len(oc) for oc, _ in per_axis]):
            axes = [blocks[i] for (_, blocks), i in zip(per_axis, oidx)]
            out_shape = [nb] * x.ndim
            out_shape[caxis] = out_channels
            for ax, (oc, _), i in zip(saxes, per_axis, oidx):
                out_shape[ax] = oc[i]
            grid = tuple(len(ab.pieces) for ab in axes)
            in_keys, slices = [], []
            if not any(ab.empty for ab in axes):
                single = len(list(np.ndindex(*grid))) == 1
                for flat in np.ndindex(*grid):
                    key = [x.name] + [0] * x.ndim
                    key[1] = b
                    index = [slice(None)] * x.ndim
                    full, where = True, []
                    for ax, ab, i in zip(saxes, axes, flat):
                        c, lo, hi = ab.pieces[i]
                        key[ax + 1] = c
                        index[ax] = slice(lo, hi)
                        full &= lo == 0 and hi == x.chunks[ax][c]
                        where += [c, lo, hi]
                    key, index = tuple(key), tuple(index)
                    if full:
                        in_keys.append(key)
                        slices.append(None)
                    elif single:
                        in_keys.append(key)
                        slices.append(index)
                    else:
                        hkey = (halo_name, b, *where)
                        if hkey not in dsk:
                            dsk[hkey] = (_halo, key, index)
                        in_keys.append(hkey)
                        slices.append(None)
            if transposed:
                inside = all(ab.empty or (ab.crop[0] >= 0 and ab.crop[0] + ab.crop[1] <= ab.crop[2])
                             for ab in axes)
            else:
                inside = True
            spec = _BlockSpec(fn=block_fn, kwargs=call_kwargs, axes=axes, grid=grid,
                              spatial_axes=saxes, channel_axis=caxis, out_shape=tuple(out_shape),
                              out_dtype=out_dtype, isa=isa, lossy=lossy, threads=threads, transposed=transposed,
                              bias_inside=inside, slices=slices)
            okey = [name] + [0] * x.ndim
            okey[1] = b
            for ax, i in zip(saxes, oidx):
                okey[ax + 1] = i
            dsk[tuple(okey)] = (_call_block, spec, in_keys, *op_keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, chunks=tuple(chunks), dtype=out_dtype,
                    meta=np.empty((0,) * x.ndim, out_dtype))


def _axis_params(stages, nd):
    """Per spatial axis, the one window (span, stride, pad_before, output size, mode) of a chain
    of stages; in every multi-stage function at most one stage acts on each axis, so zero padding
    of the input at the true borders equals the stages' own zero padding."""
    params = []
    for a in range(nd):
        active = [g for g in stages if g.kernel[a] > 1 or g.stride[a] > 1 or g.pad_before[a]
                  or g.pad_after[a]]
        if len(active) > 1:  # pragma: no cover - no cconv function does this
            raise NotImplementedError("cconv.dask: two stages with a window on the same axis")
        if active:
            g = active[0]
            span = g.dilation[a] * (g.kernel[a] - 1) + 1
            s, pb, pa, mode = g.stride[a], g.pad_before[a], g.pad_after[a], g.padding_mode
        else:
            span, s, pb, pa, mode = 1, 1, 0, 0, "zeros"
        n_in, n_out = stages[0].in_size[a], stages[-1].out_size[a]
        if _geometry.output_size(n_in, span, s, (pb, pa)) != n_out:  # pragma: no cover
            raise AssertionError("cconv.dask: inconsistent stage sizes")
        params.append((span, s, pb, n_out, mode))
    return params


def _forward(op, x, args, threads):
    """The lazy result of op (a registry record) for the bound arguments args (x excluded)."""
    threads = _check_threads(threads)
    if "algorithm" in args:
        _functions._check_algorithm(args["algorithm"])
    x = _as_dask(x)
    # Unbatched x (C, *spatial): a batch of one, then the batch axis dropped, as in cconv.
    if op.batched_ndim(x.shape, args.get("layout")) != x.ndim:
        return _forward(op, x[None], args, threads)[0]
    if op.name == "channel_shuffle":
        return _channel_shuffle(x, args["groups"], args["layout"], threads)
    weights = _operands([(n, args[n]) for n in op.weights])
    bias = None if args["bias"] is None else _Operand("bias", args["bias"])
    # describe() sees every argument; each block call gets the others: its padding is given per
    # block (the input range is gathered for the padding mode, zeros at the true borders), and a
    # transposed block computes its full contribution, cropped afterwards.
    describe_kwargs = {k: v for k, v in args.items() if k not in op.weights and k != "bias"}
    call_kwargs = {k: v for k, v in describe_kwargs.items()
                   if k not in ("padding", "padding_mode", "output_padding")}
    if op.transposed:
        call_kwargs.update(padding=0, output_padding=0)
    stages = _registry.describe(op.name, x.shape, *[w.shape for w in weights], **describe_kwargs)
    _geometry.check_bias(None if bias is None else bias.proxy(), stages[-1].out_channels)
    out_dtype = _geometry.result_dtype(x, *[w.proxy() for w in weights],
                                  None if bias is None else bias.proxy())
    first = stages[0]
    if first.transposed:
        params = [(k, s, d, p, n) for k, s, d, p, n in zip(first.kernel, first.stride,
                                                           first.dilation, first.pad_before,
                                                           first.out_size)]
    else:
        params = _axis_params(stages, first.nd)
    if "algorithm" in call_kwargs:  # a disallowed algorithm fails here, not in every task
        _geometry.effective_algorithm(call_kwargs["algorithm"])
    token = (op.name, sorted(describe_kwargs.items(), key=lambda kv: kv[0]),
             sorted(call_kwargs.items(), key=lambda kv: kv[0]))
    return _build(op.name, op.function, x, weights, bias, first.channels_last,
                  params, call_kwargs, stages[-1].out_channels, out_dtype, first.transposed,
                  _core.isa_override.get(), _geometry.lossy_override.get(), threads, repr(token))


def _shuffle_block(block, groups, layout, threads):
    with _task_settings(None, threads):  # a shuffle moves values: no ISA
        return _functions.channel_shuffle(block, groups, layout=layout)


def _channel_shuffle(x, groups, layout, threads):
    """Channels rechunked to one chunk, every block shuffled independently; dtype kept."""
    (st,) = _registry.describe("channel_shuffle", x.shape, groups, layout=layout)
    caxis = x.ndim - 1 if st.channels_last else 1
    if x.numblocks[caxis] != 1:
        x = x.rechunk({caxis: -1})
    return x.map_blocks(_shuffle_block, st.groups, layout, threads, dtype=x.dtype,
                        name="cconv-channel-shuffle-" + tokenize(x.name, st.groups, layout, threads))


# ------------------------------------------------------------------ the public wrappers

def _wrapper(op):
    """cconv.dask.<name>: the signature of cconv.<name> without out=, plus threads=."""
    sig = op.dask_signature

    def fn(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = dict(bound.arguments)
        return _forward(op, a.pop("x"), a, a.pop("threads"))

    fn.__name__ = fn.__qualname__ = op.name
    fn.__module__ = __name__
    fn.__signature__ = sig
    fn.__doc__ = (f"cconv.{op.name} over a dask array x (or anything dask.array.asarray takes), "
                  f"as a lazy dask array.\n\nThe arguments of cconv.{op.name} (out= aside), and "
                  f"threads: cconv threads per task (\"auto\": 1 in worker threads, None: leave "
                  f"cconv's setting; see the module docstring).")
    return fn


__all__ = [op.name for op in _registry.OPERATIONS.values() if op.dask]
globals().update({name: _wrapper(_registry.OPERATIONS[name]) for name in __all__})
