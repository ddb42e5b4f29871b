"""A bitwise corpus of cconv's outputs: proof that a restructuring changes no answer.

    python tools/check_corpus.py save FILE     # run every case, write one SHA-256 per case
    python tools/check_corpus.py check FILE    # run them again, report each case that differs

Every public function (the forward functions and plans of cconv, every gradient of cconv.grad)
runs on small inputs from a seeded generator, over every algorithm= value it accepts, both
dtypes, both layouts, every padding form and padding mode, strides, dilations, groups,
output_padding, fused on and off, under every ISA of cconv.available_isas() and with 1 and 2
threads. FILE keeps, per case, the ISA it ran on and the SHA-256 of its outputs' bytes with
their shapes and dtypes (no arrays), and the machine it was saved on.

Bitwise equality holds for one build on one kind of machine: another ISA (AVX-512 against AVX2,
FMA contraction or not), another compiler or flags (a sanitizer build's -O1), or another NumPy
(which computes the bias gradients, some weight products and the casts) may give other bits.
`check` therefore runs only the cases whose ISA is available here, and says when the machine
differs from the one the corpus was saved on. Compare against a corpus saved on this machine,
with this build, before the change.

Options: -k SUBSTRING (cases whose name contains it; repeatable), --isa NAME and --threads N
(only those; repeatable), --list (names only).
"""
import argparse
import hashlib
import json
import platform
import re
import sys
import time
import zlib

import numpy as np

import cconv
import cconv.grad as G
from cconv._geometry import LAYOUTS

FORMAT = 1


# ------------------------------------------------------------------ inputs


def _arr(rng, shape, dtype):
    """Values in [-1, 1) from rng.random (a stable stream: 53 bits of PCG64 per value)."""
    return (rng.random(shape) * 2 - 1).astype(dtype)


def _layout_shape(shape, last):
    """(N, C, *S) -> (N, *S, C) for channels-last."""
    return (shape[0], *shape[2:], shape[1]) if last else tuple(shape)


DTYPES = {"f32": np.float32, "f64": np.float64}


class Case:
    """One call: name (unique), fns (the public functions it calls, for coverage), run(rng)."""

    def __init__(self, name, fns, run):
        self.name, self.run = name, run
        self.fns = (fns,) if isinstance(fns, str) else tuple(fns)


def _conv_cases():
    """conv1d/2d/3d, conv_transpose1d/2d/3d and their plans."""
    cases = []

    def add(nd, transposed, x_nc, w_shape, tag, dt, last, plan=False, bias=True, **kw):
        prefix = "conv_transpose" if transposed else "conv"
        fn_name = f"{'plan_' if plan else ''}{prefix}{nd}d"
        layout = LAYOUTS[nd][last]
        name = f"{fn_name}/{tag}/{dt}/{layout}"
        dtype = DTYPES[dt]
        cout = (w_shape[1] * kw.get("groups", 1)) if transposed else w_shape[0]

        def run(rng):
            x = _arr(rng, _layout_shape(x_nc, last), dtype)
            w = _arr(rng, w_shape, dtype)
            b = _arr(rng, (cout,), dtype) if bias else None
            if plan:
                p = getattr(cconv, fn_name)(x.shape, w, b, layout=layout, **kw)
                return p(x)
            return getattr(cconv, fn_name)(x, w, b, layout=layout, **kw)

        cases.append(Case(name, fn_name, run))

    for dt in DTYPES:
        for last in (0, 1):
            # conv2d: every algorithm on the geometries that accept it
            for algo in ("auto", "gemm", "winograd", "reference"):
                add(2, False, (2, 3, 7, 9), (5, 3, 3, 3), f"dense3x3-p1-{algo}", dt, last,
                    padding=1, algorithm=algo)
            for algo in ("auto", "depthwise", "grouped", "gemm", "reference"):
                add(2, False, (2, 4, 8, 7), (8, 1, 3, 3), f"depthwise-m2-{algo}", dt, last,
                    padding=1, groups=4, algorithm=algo)
            for algo in ("auto", "grouped", "gemm", "reference"):
                add(2, False, (1, 8, 6, 7), (6, 4, 3, 2), f"groups2-{algo}", dt, last,
                    groups=2, stride=(2, 1), algorithm=algo)
            # padding forms
            for tag, pad in (("int2", 2), ("tuple", (1, 2)), ("pairs", ((0, 2), (1, 0))),
                             ("same", "same"), ("valid", "valid")):
                add(2, False, (1, 3, 9, 8), (4, 3, 3, 4), f"pad-{tag}", dt, last, padding=pad)
            add(2, False, (1, 3, 9, 8), (4, 3, 3, 4), "pad-same-stride2", dt, last,
                padding="same", stride=2)
            # padding modes
            for mode in ("reflect", "replicate", "circular"):
                add(2, False, (2, 2, 6, 7), (3, 2, 3, 3), f"mode-{mode}", dt, last,
                    padding=((1, 2), (2, 1)), padding_mode=mode)
            add(2, False, (1, 6, 10, 9), (6, 3, 3, 3), "stride2-dil2-groups2", dt, last,
                stride=2, dilation=(2, 1), padding=2, groups=2)
            add(2, False, (2, 16, 5, 5), (24, 16, 1, 1), "pointwise-nobias", dt, last, bias=False)
            add(2, False, (1, 2, 12, 11), (4, 2, 3, 3), "winograd-dil2", dt, last,
                dilation=2, padding=1, algorithm="winograd")
            # conv1d
            for algo in ("auto", "gemm", "reference"):
                add(1, False, (2, 3, 17), (4, 3, 5), f"k5-{algo}", dt, last, padding=2, algorithm=algo)
            for algo in ("depthwise", "grouped"):
                add(1, False, (2, 4, 13), (4, 1, 3), f"depthwise-{algo}", dt, last, groups=4,
                    algorithm=algo)
            for mode in ("zeros", "reflect", "replicate", "circular"):
                add(1, False, (1, 3, 11), (2, 3, 3), f"mode-{mode}", dt, last,
                    padding=((2, 1),), padding_mode=mode, stride=2, dilation=2)
            add(1, False, (1, 3, 11), (2, 3, 4), "same", dt, last, padding="same")
            # conv3d
            for algo in ("auto", "gemm", "winograd", "reference"):
                add(3, False, (1, 2, 4, 6, 5), (3, 2, 2, 3, 3), f"k233-{algo}", dt, last,
                    padding=(0, 1, 1), algorithm=algo)
            add(3, False, (1, 4, 5, 5, 6), (4, 2, 3, 3, 3), "stride-dil-groups", dt, last,
                stride=(1, 2, 1), dilation=(2, 1, 1), padding=(2, 1, 0), groups=2)
            for mode in ("reflect", "replicate", "circular"):
                add(3, False, (1, 2, 4, 5, 4), (2, 2, 3, 3, 2), f"mode-{mode}", dt, last,
                    padding=1, padding_mode=mode)
            add(3, False, (1, 3, 4, 4, 4), (3, 1, 3, 3, 3), "depthwise", dt, last, padding=1,
                groups=3, algorithm="depthwise")
            # transposed
            for nd, x_nc, w_shape in ((1, (2, 3, 9), (3, 4, 3)), (2, (1, 3, 5, 6), (3, 2, 3, 3)),
                                      (3, (1, 2, 3, 4, 3), (2, 3, 2, 3, 3))):
                for algo in ("auto", "gemm", "reference"):
                    add(nd, True, x_nc, w_shape, f"s2-op1-{algo}", dt, last, stride=2,
                        padding=1, output_padding=1, algorithm=algo)
            add(2, True, (1, 4, 5, 4), (4, 3, 3, 2), "groups2-dil2-op", dt, last, stride=(3, 1),
                padding=(2, 0), output_padding=(1, 0), dilation=2, groups=2)
            # plans
            add(1, False, (2, 3, 17), (4, 3, 5), "plan", dt, last, plan=True, padding=2)
            add(2, False, (2, 3, 7, 9), (5, 3, 3, 3), "plan", dt, last, plan=True, padding=1)
            add(2, False, (2, 4, 8, 7), (4, 1, 3, 3), "plan-depthwise", dt, last, plan=True,
                groups=4, algorithm="depthwise")
            add(3, False, (1, 2, 4, 6, 5), (3, 2, 2, 3, 3), "plan", dt, last, plan=True,
                padding_mode="replicate", padding=1)
            add(1, True, (2, 3, 9), (3, 4, 3), "plan", dt, last, plan=True, stride=2,
                output_padding=1)
            add(2, True, (1, 3, 5, 6), (3, 2, 3, 3), "plan", dt, last, plan=True, stride=2,
                padding=1)
            add(3, True, (1, 2, 3, 4, 3), (2, 3, 2, 3, 3), "plan", dt, last, plan=True,
                algorithm="gemm")
    return cases


def _variant_cases():
    """depthwise, separable, spatially separable, flattened, channel shuffle, shuffled grouped."""
    cases = []

    def add(name, fn_name, run):
        cases.append(Case(name, fn_name, run))

    for dt, dtype in DTYPES.items():
        for last in (0, 1):
            layout = LAYOUTS[2][last]
            sfx = f"{dt}/{layout}"

            def shp(*nc, last=last):
                return _layout_shape(nc, last)

            for m, kw in ((1, dict(padding=1)), (2, dict(stride=2, padding="same", dilation=2))):
                def run(rng, m=m, kw=kw, layout=layout, dtype=dtype, shp=shp):
                    x = _arr(rng, shp(2, 4, 9, 8), dtype)
                    w, b = _arr(rng, (4 * m, 1, 3, 3), dtype), _arr(rng, (4 * m,), dtype)
                    return cconv.depthwise_conv2d(x, w, b, layout=layout, **kw)
                add(f"depthwise_conv2d/m{m}/{sfx}", "depthwise_conv2d", run)

            for fused in (True, False):
                def run(rng, fused=fused, layout=layout, dtype=dtype, shp=shp):
                    x = _arr(rng, shp(2, 3, 8, 9), dtype)
                    dw, pw = _arr(rng, (6, 1, 3, 3), dtype), _arr(rng, (5, 6, 1, 1), dtype)
                    return cconv.separable_conv2d(x, dw, pw, _arr(rng, (5,), dtype), stride=(1, 2),
                                                  padding=1, layout=layout, fused=fused)
                add(f"separable_conv2d/fused={fused}/{sfx}", "separable_conv2d", run)

                def run(rng, fused=fused, layout=layout, dtype=dtype, shp=shp):
                    x = _arr(rng, shp(2, 4, 9, 8), dtype)
                    v, h = _arr(rng, (6, 2, 3, 1), dtype), _arr(rng, (4, 3, 1, 5), dtype)
                    return cconv.spatially_separable_conv2d(
                        x, v, h, _arr(rng, (4,), dtype), stride=(2, 1), padding=(1, 2),
                        dilation=(1, 2), groups=2, layout=layout, fused=fused)
                add(f"spatially_separable_conv2d/fused={fused}/{sfx}", "spatially_separable_conv2d", run)

                def run(rng, fused=fused, layout=layout, dtype=dtype, shp=shp):
                    x = _arr(rng, shp(2, 3, 8, 9), dtype)
                    ch, v, h = (_arr(rng, (5, 3), dtype), _arr(rng, (5, 3), dtype),
                                _arr(rng, (5, 4), dtype))
                    return cconv.flattened_conv2d(x, ch, v, h, _arr(rng, (5,), dtype),
                                                  padding=((1, 1), (2, 1)), stride=(1, 2),
                                                  layout=layout, fused=fused)
                add(f"flattened_conv2d/fused={fused}/{sfx}", "flattened_conv2d", run)

            for tag, kw in (("g2", dict(groups=2)),
                            ("g4-sg2-reflect", dict(groups=4, shuffle_groups=2, padding=1,
                                                    padding_mode="reflect")),
                            ("g8-depthwise", dict(groups=8, stride=2, padding=1))):
                def run(rng, kw=kw, layout=layout, dtype=dtype, shp=shp):
                    x = _arr(rng, shp(1, 8, 7, 6), dtype)
                    w = _arr(rng, (8, 8 // kw["groups"], 3, 3), dtype)
                    return cconv.shuffled_grouped_conv2d(x, w, bias=_arr(rng, (8,), dtype),
                                                         layout=layout, **kw)
                add(f"shuffled_grouped_conv2d/{tag}/{sfx}", "shuffled_grouped_conv2d", run)

            for nd in (1, 2, 3):
                def run(rng, nd=nd, last=last, dtype=dtype):
                    x = _arr(rng, _layout_shape((2, 6) + (3,) * nd, last), dtype)
                    return cconv.channel_shuffle(x, 3, layout=LAYOUTS[nd][last])
                add(f"channel_shuffle/{nd}d/{dt}/{LAYOUTS[nd][last]}", "channel_shuffle", run)

    def run(rng):  # integer input: the NumPy permutation
        return cconv.channel_shuffle(rng.integers(0, 100, (2, 6, 4, 4)), 2)
    add("channel_shuffle/int64", "channel_shuffle", run)

    def run(rng):  # a non-contiguous out= and mixed dtypes
        x = _arr(rng, (1, 3, 7, 6), np.float32)
        w = _arr(rng, (4, 3, 3, 3), np.float64)
        out = np.zeros((1, 4, 5, 8), np.float64)[..., ::2]
        cconv.conv2d(x, w, out=out)
        return out
    add("conv2d/out-strided/mixed-dtypes", "conv2d", run)
    return cases


def _grad_cases():
    """Every function of cconv.grad."""
    cases = []

    def add(name, fn_name, run):
        cases.append(Case(name, fn_name, run))

    for dt, dtype in DTYPES.items():
        for last in (0, 1):
            # plain convolutions: input and weight gradients
            for nd, x_nc, w_shape, tag, kw in (
                    (1, (2, 3, 11), (4, 3, 3), "s2-d2", dict(stride=2, dilation=2, padding=2)),
                    (1, (2, 3, 11), (4, 3, 3), "reflect", dict(padding=((2, 1),), padding_mode="reflect")),
                    (2, (2, 4, 7, 8), (6, 2, 3, 3), "p1-g2", dict(padding=1, groups=2)),
                    (2, (2, 4, 7, 8), (6, 4, 3, 3), "s2-same", dict(stride=2, padding="same")),
                    (2, (2, 4, 7, 8), (6, 4, 3, 3), "circular", dict(padding=(1, 2), padding_mode="circular")),
                    (2, (2, 4, 7, 8), (6, 4, 2, 3), "replicate-s2",
                     dict(stride=(2, 1), padding=((1, 0), (2, 1)), padding_mode="replicate")),
                    (2, (2, 4, 7, 8), (4, 1, 3, 3), "depthwise-s2", dict(stride=2, padding=1, groups=4)),
                    (2, (1, 3, 8, 8), (5, 3, 3, 3), "winograd-p1", dict(padding=1)),
                    (3, (1, 2, 4, 5, 4), (3, 2, 2, 3, 3), "p1", dict(padding=1)),
                    (3, (1, 2, 4, 5, 4), (3, 2, 2, 3, 3), "s2-reflect",
                     dict(stride=2, padding=1, padding_mode="reflect"))):
                layout = LAYOUTS[nd][last]

                def run(rng, nd=nd, x_nc=x_nc, w_shape=w_shape, kw=kw, layout=layout,
                        last=last, dtype=dtype):
                    x = _arr(rng, _layout_shape(x_nc, last), dtype)
                    w = _arr(rng, w_shape, dtype)
                    y = getattr(cconv, f"conv{nd}d")(x, w, layout=layout, **kw)
                    g = _arr(rng, y.shape, dtype)
                    return (getattr(G, f"conv{nd}d_input")(x.shape, w, g, layout=layout, **kw),
                            getattr(G, f"conv{nd}d_weight")(x, w.shape, g, layout=layout, **kw),
                            G.bias(g, layout=layout))
                add(f"grad.conv{nd}d/{tag}/{dt}/{layout}",
                    (f"conv{nd}d_input", f"conv{nd}d_weight", "bias"), run)
            # transposed
            for nd, x_nc, w_shape, kw in (
                    (1, (2, 3, 6), (3, 2, 3), dict(stride=2, padding=1, output_padding=1)),
                    (2, (1, 4, 4, 5), (4, 3, 3, 3), dict(stride=(2, 3), padding=1, output_padding=(1, 2),
                                                         groups=2)),
                    (2, (1, 2, 5, 5), (2, 3, 3, 3), dict(stride=1, padding=0, dilation=2, output_padding=1)),
                    (3, (1, 2, 3, 3, 4), (2, 2, 3, 2, 3), dict(stride=2, padding=(1, 0, 1)))):
                layout = LAYOUTS[nd][last]

                def run(rng, nd=nd, x_nc=x_nc, w_shape=w_shape, kw=kw, layout=layout, last=last,
                        dtype=dtype):
                    x = _arr(rng, _layout_shape(x_nc, last), dtype)
                    w = _arr(rng, w_shape, dtype)
                    y = getattr(cconv, f"conv_transpose{nd}d")(x, w, layout=layout, **kw)
                    g = _arr(rng, y.shape, dtype)
                    return (getattr(G, f"conv_transpose{nd}d_input")(x.shape, w, g, layout=layout, **kw),
                            getattr(G, f"conv_transpose{nd}d_weight")(x, w.shape, g, layout=layout, **kw))
                tag = "-".join(f"{k}{v}" for k, v in kw.items()).replace(" ", "")
                add(f"grad.conv_transpose{nd}d/{tag}/{dt}/{layout}",
                    (f"conv_transpose{nd}d_input", f"conv_transpose{nd}d_weight"), run)

            layout = LAYOUTS[2][last]
            sfx = f"{dt}/{layout}"

            def shp(*nc, last=last):
                return _layout_shape(nc, last)

            def run(rng, layout=layout, dtype=dtype, shp=shp):
                x = _arr(rng, shp(2, 3, 8, 7), dtype)
                w = _arr(rng, (6, 1, 3, 3), dtype)
                kw = dict(stride=2, padding=1, dilation=(1, 2), layout=layout)
                g = _arr(rng, cconv.depthwise_conv2d(x, w, **kw).shape, dtype)
                return (G.depthwise_conv2d_input(x.shape, w, g, **kw),
                        G.depthwise_conv2d_weight(x, w.shape, g, **kw),
                        *G.depthwise_conv2d_grads(x, w, g, **kw))
            add(f"grad.depthwise_conv2d/m2/{sfx}", ("depthwise_conv2d_input", "depthwise_conv2d_weight",
                                                     "depthwise_conv2d_grads"), run)

            for input_grad in (True, False):
                def run(rng, layout=layout, dtype=dtype, shp=shp, input_grad=input_grad):
                    x = _arr(rng, shp(2, 3, 8, 7), dtype)
                    dw, pw = _arr(rng, (6, 1, 3, 3), dtype), _arr(rng, (4, 6, 1, 1), dtype)
                    g = _arr(rng, cconv.separable_conv2d(x, dw, pw, padding=1, layout=layout).shape, dtype)
                    return G.separable_conv2d_grads(x, dw, pw, g, padding=1, layout=layout,
                                                    input_grad=input_grad)
                add(f"grad.separable_conv2d_grads/input_grad={input_grad}/{sfx}",
                    "separable_conv2d_grads", run)

                def run(rng, layout=layout, dtype=dtype, shp=shp, input_grad=input_grad):
                    x = _arr(rng, shp(2, 4, 8, 7), dtype)
                    v, h = _arr(rng, (4, 2, 3, 1), dtype), _arr(rng, (6, 2, 1, 3), dtype)
                    kw = dict(stride=(1, 2), padding=(1, 1), groups=2, layout=layout)
                    g = _arr(rng, cconv.spatially_separable_conv2d(x, v, h, **kw).shape, dtype)
                    return G.spatially_separable_conv2d_grads(x, v, h, g, input_grad=input_grad, **kw)
                add(f"grad.spatially_separable_conv2d_grads/input_grad={input_grad}/{sfx}",
                    "spatially_separable_conv2d_grads", run)

                def run(rng, layout=layout, dtype=dtype, shp=shp, input_grad=input_grad):
                    x = _arr(rng, shp(2, 3, 8, 7), dtype)
                    ch, v, h = (_arr(rng, (4, 3), dtype), _arr(rng, (4, 3), dtype),
                                _arr(rng, (4, 2), dtype))
                    kw = dict(padding=((1, 1), (0, 1)), dilation=(2, 1), layout=layout)
                    g = _arr(rng, cconv.flattened_conv2d(x, ch, v, h, **kw).shape, dtype)
                    return G.flattened_conv2d_grads(x, ch, v, h, g, input_grad=input_grad, **kw)
                add(f"grad.flattened_conv2d_grads/input_grad={input_grad}/{sfx}",
                    "flattened_conv2d_grads", run)

                def run(rng, layout=layout, dtype=dtype, shp=shp, input_grad=input_grad):
                    x = _arr(rng, shp(2, 8, 6, 7), dtype)
                    w = _arr(rng, (8, 2, 3, 3), dtype)
                    kw = dict(stride=2, padding=1, shuffle_groups=2, padding_mode="replicate",
                              layout=layout)
                    g = _arr(rng, cconv.shuffled_grouped_conv2d(x, w, 4, **kw).shape, dtype)
                    return (*G.shuffled_grouped_conv2d_grads(x, w, g, 4, input_grad=input_grad, **kw),
                            G.channel_shuffle_input(g, 2, layout=layout))
                add(f"grad.shuffled_grouped_conv2d_grads/input_grad={input_grad}/{sfx}",
                    ("shuffled_grouped_conv2d_grads", "channel_shuffle_input"), run)
    return cases


def base_cases():
    """The calls, without ISA and thread count; names are unique."""
    cases = _conv_cases() + _variant_cases() + _grad_cases()
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    return cases


def covered_functions():
    """Names of the public functions (of cconv and cconv.grad) the cases call."""
    return {fn for case in base_cases() for fn in case.fns}


# ------------------------------------------------------------------ running


def _seed(name):
    return zlib.crc32(name.encode())


def digest(result):
    """(sha256 hex, shapes, dtypes) of an array or a tuple of arrays and Nones."""
    outs = result if isinstance(result, tuple) else (result,)
    h = hashlib.sha256()
    shapes, dtypes = [], []
    for a in outs:
        if a is None:
            h.update(b"None;")
            shapes.append(None)
            dtypes.append(None)
            continue
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(np.ascontiguousarray(a).tobytes())
        shapes.append(list(a.shape))
        dtypes.append(str(a.dtype))
    return h.hexdigest(), shapes, dtypes


def build():
    """The compilers that built cconv's extension (its .comment strings) and the sanitizers
    compiled in: another compiler contracts floating-point expressions (FMA) differently."""
    with open(cconv._core.__file__, "rb") as f:
        data = f.read()
    compilers = sorted({m.decode(errors="replace") for m in
                        re.findall(rb"GCC: \([^)\n]*\) [\w.]+|clang version [\w.]+", data)})
    sanitizers = [n for n, sym in (("address", b"__asan_init"), ("undefined", b"__ubsan_handle"))
                  if sym in data]
    return {"compilers": compilers, "sanitizers": sanitizers}


def machine():
    """What the bits may depend on besides the code: ISA set, build, NumPy, platform."""
    return {"isas": cconv.available_isas(), "build": build(), "numpy": np.__version__,
            "platform": f"{platform.system()} {platform.machine()}", "cconv": cconv.__version__}


THREADS = (1, 2)


def select(names_filter=None):
    """The base cases whose name contains one of names_filter (None: all)."""
    return [c for c in base_cases() if not names_filter or any(k in c.name for k in names_filter)]


def run_one(case, isa, threads):
    """{"shapes", "dtypes", "sha256"} of one case run with this ISA and thread count."""
    with cconv.use_isa(isa), cconv.use_num_threads(threads):
        result = case.run(np.random.default_rng(_seed(case.name)))
    sha, shapes, dtypes = digest(result)
    return {"shapes": shapes, "dtypes": dtypes, "sha256": sha}


def save(path, cases):
    """Runs every case under every available ISA and thread count; writes FILE. Results are
    bitwise identical for any thread count (a documented guarantee): one hash per ISA."""
    entries = {}
    for case in cases:
        entry = None
        for isa in cconv.available_isas():
            runs = [run_one(case, isa, t) for t in THREADS]
            if any(r != runs[0] for r in runs):
                raise AssertionError(f"{case.name}[{isa}]: results differ between thread counts {THREADS}")
            if entry is None:
                entry = {"shapes": runs[0]["shapes"], "dtypes": runs[0]["dtypes"], "sha256": {}}
            elif (runs[0]["shapes"], runs[0]["dtypes"]) != (entry["shapes"], entry["dtypes"]):
                raise AssertionError(f"{case.name}[{isa}]: shapes or dtypes depend on the ISA")
            entry["sha256"][isa] = runs[0]["sha256"]
        entries[case.name] = entry
    with open(path, "w") as f:  # one case per line: small diffs, easy to read
        f.write('{"format": %d,\n "machine": %s,\n "threads": %s,\n "cases": {\n'
                % (FORMAT, json.dumps(machine()), json.dumps(list(THREADS))))
        f.write(",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items()))
        f.write("\n }\n}\n")
    return entries


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: corpus format {doc.get('format')!r}, expected {FORMAT}")
    return doc


def machine_differences(doc):
    """What differs between the corpus's machine and this one (empty: nothing that matters)."""
    here, there = machine(), dict(doc["machine"])
    for m in (here, there):  # NumPy's arithmetic changes, if ever, in feature releases
        m["numpy"] = ".".join(str(m.get("numpy")).split(".")[:2])
    return [f"{k}: corpus {there.get(k)!r}, here {here[k]!r}"
            for k in ("isas", "build", "numpy", "platform") if there.get(k) != here[k]]


def check(path, names_filter=None, isas=None, threads=None, out=sys.stdout):
    """Recomputes the corpus's cases that match the filters (None: all), under each recorded ISA
    available here and each thread count; prints each difference. Returns (differing runs as
    "name[isa,tN]", runs checked, runs skipped because their ISA is not available here)."""
    doc = load(path)
    saved = doc["cases"]
    available = set(cconv.available_isas())
    cases = {c.name: c for c in select(names_filter)}
    differ, checked, skipped = [], 0, 0
    if not names_filter:
        for name in saved.keys() - cases.keys():
            differ.append(name)
            print(f"DIFF {name}: in the corpus, no longer a case of this tool", file=out)
    for name, case in cases.items():
        rec = saved.get(name)
        if rec is None:
            print(f"note: {name} is not in the corpus (a newer case list): not checked", file=out)
            continue
        for isa, sha in rec["sha256"].items():
            if isas and isa not in isas:
                continue
            for t in doc["threads"]:
                if threads and t not in threads:
                    continue
                if isa not in available:
                    skipped += 1
                    continue
                full = f"{name}[{isa},t{t}]"
                try:
                    got = run_one(case, isa, t)
                except Exception as e:  # a case that now raises is a difference, not a crash
                    got = {"error": f"{type(e).__name__}: {e}"}
                checked += 1
                want = {"shapes": rec["shapes"], "dtypes": rec["dtypes"], "sha256": sha}
                if got != want:
                    differ.append(full)
                    what = ("raised " + got["error"] if "error" in got else
                            "; ".join(f"{k} {want[k]!r} -> {got[k]!r}" for k in ("shapes", "dtypes")
                                      if got[k] != want[k]) or "same shapes and dtypes, other bits")
                    print(f"DIFF {full}: {what}", file=out)
    return differ, checked, skipped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("save", "check"))
    p.add_argument("file")
    p.add_argument("-k", action="append", dest="names", help="only cases whose name contains this")
    p.add_argument("--isa", action="append", help="check: only this ISA")
    p.add_argument("--threads", action="append", type=int, help="check: only this thread count")
    p.add_argument("--list", action="store_true", help="print the selected case names and exit")
    a = p.parse_args(argv)
    if a.list:
        print("\n".join(c.name for c in select(a.names)))
        return 0
    t0 = time.perf_counter()
    if a.command == "save":
        if a.isa or a.threads:
            p.error("save runs every available ISA and thread count")
        entries = save(a.file, select(a.names))
        print(f"saved {len(entries)} cases x ISAs {', '.join(cconv.available_isas())} x threads "
              f"{THREADS} to {a.file} in {time.perf_counter() - t0:.1f} s")
        return 0
    doc = load(a.file)
    for d in machine_differences(doc):
        print(f"note: this machine differs from the corpus's ({d}): bits may differ for that "
              f"reason alone; compare against a corpus saved here")
    differ, checked, skipped = check(a.file, a.names, a.isa, a.threads)
    print(f"{checked} runs checked, {len(differ)} differ, {skipped} skipped (ISA not available "
          f"here), {time.perf_counter() - t0:.1f} s")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
