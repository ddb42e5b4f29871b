"""`python -m cconv.bench`: cconv against PyTorch, ONNX Runtime and NumPy, case by case, in one
process.

For every case (the suite of docs/benchmarks.md, the batch-1 rows, every other public function and,
when cconv.grad exists, the gradients) it runs cconv and its anchors, torch.nn.functional and
ONNX Runtime's CPU engine (one session per case), on the same arrays with the same thread count,
interleaved (cconv, torch, ORT, cconv, ...), after a warm-up, and reports medians: the ratios
torch/cconv and ORT/cconv (> 1: cconv is faster), GFLOP/s, GB/s of minimum traffic,
% of this machine's FMA peak (or of a plain copy for bandwidth-bound cases), the time of the
NumPy im2col baseline (sliding_window_view + tensordot/einsum: what a NumPy user writes) and of
SciPy where it has a direct equivalent, and the largest error relative to each anchor.

    python -m cconv.bench                          # everything, float32, NCHW, current threads
    python -m cconv.bench --threads 2 --markdown bench.md --png bench.png
    python -m cconv.bench --variants suite,depthwise --dtype float64 --layout NHWC
    python -m cconv.bench --variants tiny --quick   # a few seconds: one small case per function
    python -m cconv.bench --list                    # the cases and the names --variants matches
    python -m cconv.bench --machine --remeasure     # measure this machine's peak and bandwidth

The peak (cconv's FMA loop for the ISA and dtype in use, at the thread count in use) and the
memory bandwidth (STREAM-like triad) are measured on first use, in a few seconds, and cached per
machine (see cconv.bench.machine); --remeasure measures them again.

torch, onnx + onnxruntime, matplotlib, scipy and threadpoolctl are optional (pip install
"cconv[bench]"): without torch (or onnxruntime) the table has no torch (or ORT) columns, without
matplotlib no PNG is written.
"""
import argparse
import datetime
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

import cconv
from . import cases as bc
from . import machine


# --------------------------------------------------------------------------- optional imports

def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _import_onnxruntime():
    """(onnx, onnxruntime), or None when either is missing."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return None
    return onnx, onnxruntime


def _import_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _blas_limits(threads):
    """Caps NumPy's BLAS threads (for the NumPy baseline) when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


# --------------------------------------------------------------------------- SciPy side

def scipy_callable(case, x, weights, channels_last=False):
    """SciPy's direct equivalent where there is one (depthwise with one filter per channel:
    scipy.signal.oaconvolve broadcast over batch and channels), else None."""
    if case.fn != "depthwise_conv2d" or channels_last:
        return None
    (st,) = bc.stages(case)
    w = weights[0]
    if w.shape[0] != case.x[1] or st.dilation != (1, 1):
        return None
    try:
        from scipy import signal
    except ImportError:
        return None
    kernel = w[:, 0, ::-1, ::-1][None]          # convolution flips; correlate = flipped kernel
    ph, pw = st.padding
    sh, sw = st.stride

    def run():
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        return signal.oaconvolve(xp, kernel, mode="valid", axes=(2, 3))[:, :, ::sh, ::sw]
    return run


# --------------------------------------------------------------------------- plain copy

def copy_seconds(nbytes, threads, repeat, target, torch=None):
    """Time of the best plain copy moving `nbytes` (half read, half written) on this machine,
    now: np.copyto on one thread, np.copyto split across `threads` Python threads (NumPy
    releases the GIL while copying) and torch's OpenMP-parallel Tensor.copy_ when torch is
    there. The yardstick for bandwidth-bound cases (docs/benchmarks.md: >= 80% of a plain copy's
    bandwidth on the same data, measured in the same run)."""
    n = max(1, int(nbytes) // 8)               # float32 elements read, as many written
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    fns = [lambda: np.copyto(dst, src)]
    pool = None
    if threads > 1 and n >= 4096:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(threads)
        bounds = np.linspace(0, n, threads + 1).astype(int)
        parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        fns.append(lambda: list(pool.map(lambda p: np.copyto(*p), parts)))
    if torch is not None:
        src_t, dst_t = torch.from_numpy(src), torch.from_numpy(dst)
        fns.append(lambda: dst_t.copy_(src_t))
    try:
        return min(bc.time_interleaved(fns, repeat, target))
    finally:
        if pool is not None:
            pool.shutdown()


# --------------------------------------------------------------------------- errors

def _rel_err(a, b):
    """max |a - b| / max |b| (0 when both are all zeros)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    return diff / scale if scale else diff


def _max_rel_err(a, b):
    if isinstance(a, tuple):
        return max(_rel_err(u, v) for u, v in zip(a, b))
    return _rel_err(a, b)


# --------------------------------------------------------------------------- one case

# The libraries cconv is timed against, in the report's column order. Each gives, per case,
# (run, to_numpy) or a reason why it cannot run the case (anchor_callable).
ANCHORS = ("torch", "ORT")


class Row:
    """One line of the report (times in seconds, None where not measured)."""

    def __init__(self, case):
        self.case = case
        self.cconv = self.numpy = self.scipy = None
        self.anchor = {}          # anchor name -> median seconds, for the anchors timed
        self.note = {}            # anchor name -> why it was not timed ("float64", "mismatch 3e-02")
        self.err = {}             # "torch", "ORT" or "numpy" -> max rel error of cconv against it
        self.flops = self.bytes = 0.0
        self.algorithm = "-"
        self.copy = None          # a plain copy of the same bytes (bandwidth-bound cases)
        self.failed = None

    @property
    def mismatch(self):
        return any(n.startswith("mismatch") for n in self.note.values())


def below_ridge(flops, nbytes, peak, bandwidth):
    """True when even a perfect kernel is limited by memory, not FMAs (roofline)."""
    return nbytes > 0 and flops / nbytes * bandwidth < peak


# The largest relative error (max |cconv - anchor| / max |anchor|) accepted before an anchor is
# timed: the libraries sum in different orders (and cconv may use Winograd). Measured errors
# against torch and ORT stay below 2e-5 in float32.
TOLERANCE = 1e-4


def anchor_callable(name, lib, case, args, x, weights, dy, channels_last):
    """(run, to_numpy) of one anchor for the case, or a string saying why it cannot run it."""
    if name == "torch":
        return bc.torch_callable(lib, case, x, weights, dy, channels_last)
    why = bc.ort_unsupported(case, x.dtype)
    if why:
        return why
    return bc.ort_callable(*lib, case, x, weights, args.threads, channels_last), np.asarray


def run_case(case, args, libs, limits):
    """One row; libs maps each anchor name to its module(s), or None when it is not used."""
    row = Row(case)
    channels_last = bc.is_channels_last(args.layout)
    dtype = np.dtype(args.dtype)
    counted = bc.analysis_flops(case, cconv.analysis)
    row.flops = counted if counted is not None else float(bc.flops(case))
    row.bytes = float(bc.bytes_moved(case, dtype.itemsize))
    x, weights, dy = bc.make_inputs(case, dtype, channels_last, seed=args.seed)
    run_c = bc.cconv_callable(cconv, case, x, weights, dy, channels_last)
    row.algorithm = _plan_algorithm(case, x, weights, channels_last)
    fns, timed = [run_c], []
    try:
        y = run_c()
        for name in ANCHORS:
            if libs.get(name) is None:
                continue
            got = anchor_callable(name, libs[name], case, args, x, weights, dy, channels_last)
            if isinstance(got, str):
                row.note[name] = got
                continue
            run, to_numpy = got
            # checked once, before timing: a mismatch is a bug to report, not a time
            err = row.err[name] = _max_rel_err(y, to_numpy(run()))
            if not err <= TOLERANCE:
                row.note[name] = f"mismatch {err:.1e}"
                continue
            fns.append(run)
            timed.append(name)
        times = bc.time_interleaved(fns, args.repeat, args.target)
    except Exception as e:  # report and go on: one broken case must not hide the others
        row.failed = f"{type(e).__name__}: {e}"
        return row
    row.cconv = times[0]
    row.anchor = dict(zip(timed, times[1:]))
    if below_ridge(row.flops, row.bytes, limits.peak_gflops, limits.bandwidth_gbs):
        row.copy = copy_seconds(row.bytes, args.threads, args.repeat, args.target, libs.get("torch"))
    want_numpy = not args.quick and not args.no_numpy
    mem = bc.reference_memory_bytes(case, dtype.itemsize)
    if want_numpy and mem <= args.numpy_max_mb * 2**20:
        run_n = bc.numpy_callable(case, x, weights, dy, channels_last)
        if not row.err:
            row.err["numpy"] = _max_rel_err(y, run_n())
        row.numpy = bc.time_interleaved([run_n], min(args.repeat, 3), 0.0)[0]
        run_s = scipy_callable(case, x, weights, channels_last)
        if run_s is not None:
            row.scipy = bc.time_interleaved([run_s], min(args.repeat, 3), 0.0)[0]
    elif not row.err and case.group == "tiny":
        row.err["numpy"] = _max_rel_err(y, bc.numpy_callable(case, x, weights, dy, channels_last)())
    return row


def _plan_algorithm(case, x, weights, channels_last):
    """The algorithm cconv's planner picks (functions with a plan_ form), else "-"."""
    plan = bc.make_plan(cconv, case, x, weights, channels_last)
    return "-" if plan is None else str(plan.algorithm)


# --------------------------------------------------------------------------- report

def _ms(t):
    return "-" if t is None else (f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.1f}")


def _pct_of_limit(row, peak):
    """% of the FMA peak or, for cases below the roofline's ridge (there even a perfect kernel
    cannot reach the FMA peak), "% copy": a plain copy's time for the same bytes over cconv's."""
    if row.cconv is None:
        return "-"
    if row.copy is not None:
        return f"{100 * row.copy / row.cconv:.0f}% copy"
    return f"{100 * row.flops / row.cconv / 1e9 / peak:.0f}%"


def _ratio(t, t_cconv):
    return f"{t / t_cconv:.2f}x" if t else "-"


def table(rows, limits, anchors=ANCHORS):
    """The Markdown table; `anchors`: the anchors that were used (a column pair each)."""
    has_numpy = any(r.numpy is not None for r in rows)
    has_scipy = any(r.scipy is not None for r in rows)
    head = ["case", "cconv ms"]
    for a in anchors:
        head += [f"{a} ms", f"{a}/cconv"]
    head += ["GFLOP/s", "GB/s", f"% of peak ({limits.isa} {limits.peak_gflops:.0f} GFLOP/s)"]
    if has_numpy:
        head += ["NumPy ms"]
    if has_scipy:
        head += ["SciPy ms"]
    head += ["max rel err", "algorithm"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.failed:
            cells = [r.case.name, f"FAILED: {r.failed}"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        cells = [r.case.name, _ms(r.cconv)]
        for a in anchors:
            t = r.anchor.get(a)
            cells += [_ms(t) if t else f"- ({r.note.get(a, 'not run')})", _ratio(t, r.cconv)]
        gflops = r.flops / r.cconv / 1e9
        cells += [f"{gflops:.1f}" if r.flops else "-", f"{r.bytes / r.cconv / 1e9:.1f}",
                  _pct_of_limit(r, limits.peak_gflops)]
        if has_numpy:
            cells.append(_ms(r.numpy))
        if has_scipy:
            cells.append(_ms(r.scipy))
        err = ", ".join(f"{e:.1e} ({ref})" for ref, e in r.err.items()) or "-"
        cells += [err, r.algorithm]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def geomean_summary(rows):
    """Per anchor, the geometric mean of anchor time / cconv time over the cases where both were
    timed (> 1: cconv faster on average), per group of cases and, with several groups, over all."""
    lines = []
    groups = list(dict.fromkeys(r.case.group for r in rows))
    for a in ANCHORS:
        q = {g: [r.anchor[a] / r.cconv for r in rows if r.case.group == g and a in r.anchor]
             for g in groups}
        parts = [(g, v) for g, v in q.items() if v]
        if len(parts) > 1:
            parts.append(("all", [v for _, vs in parts for v in vs]))
        for g, v in parts:
            lines.append(f"geometric mean of {a}/cconv: {_geomean(v):.2f}x over {len(v)} "
                         f"case(s) ({g})")
    return "\n".join(lines)


def machine_description():
    isas = "/".join(cconv.available_isas())
    return f"{os.cpu_count()}-core {machine.cpu_model()} ({isas}), {platform.system()}"


def header(args, torch, limits, ort=None, steady=False):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    try:   # other work on the machine shows up in every number: say how busy it was
        load = f", load average {os.getloadavg()[0]:.1f} at start"
    except (AttributeError, OSError):
        load = ""
    lines = [
        f"cconv {cconv.__version__} (ISA {cconv.get_isa()}), NumPy {np.__version__}"
        + (f", PyTorch {torch.__version__}" if torch is not None else ", PyTorch not installed")
        + (f", ONNX Runtime {ort[1].__version__}" if ort is not None else ""),
        f"{now}, {machine_description()}{load}",
        f"{args.dtype}, {args.layout}, {args.threads} thread(s); medians of {args.repeat} "
        f"interleaved samples; FLOPs from cconv.analysis.cost (gradients: 2 x the forward's)",
        OUTPUTS + ("; malloc: " + STEADY if steady else ""),
        limits.label(),
    ]
    return lines


# Every side is timed the same way: one-shot calls that return a new output array (cconv without
# out=, torch's functional call, ORT's session.run), which glibc serves from freed blocks after the
# first calls; docs/benchmarks.md has what out= and fresh pages change.
OUTPUTS = "outputs: a new array per call on every side (no out=, no preallocated buffers)"

STEADY = "every block from the heap, freed memory kept (glibc: no mmap, no trimming)"

NOTES = """\
- torch/cconv > 1 means cconv is faster; both ran in this process on the same arrays with the
  same thread count, interleaved, each returning a new output array per call (cconv without
  out=). Absolute times drift on shared machines, ratios hold better.
- ORT/cconv: the same for ONNX Runtime's CPU engine: the case's convolutions as one ONNX model
  (Conv/ConvTranspose nodes, weights as initializers; channels-last arrays through a Transpose
  node on each side, which ORT fuses into its own reorders) in one InferenceSession per case,
  created before timing (intra-op threads = the run's threads, one inter-op thread, sequential,
  all graph optimisations, no spinning between runs); timed is session.run against cconv's
  one-shot call. "-" says why an anchor was not timed: float64 (ORT's CPU Conv has float32
  kernels only), shuffle (no ONNX operator), gradient (no backward pass), mismatch (max
  relative error above 1e-4 in the check before timing: a bug, not a time).
- torch on channels-last arrays: a permuted view, i.e. torch's channels_last memory format.
- GFLOP/s counts 2 x multiply-adds of the convolution(s) (gradients: input + weight). GB/s is the
  minimum traffic (inputs read once, output written once) over cconv's time.
- % of peak: of the FMA peak measured on this machine for the ISA, dtype and threads of the run
  (cconv's register-only multiply-add loop; the header names it). Cases whose arithmetic
  intensity lies below the roofline's ridge (peak / triad bandwidth, both measured) are
  bandwidth-bound and marked "copy": the time of a plain copy of the same number of bytes (the
  best of np.copyto on 1 and N threads and torch's parallel copy_, measured in the same run)
  over cconv's time. Data that fits in cache copies faster than DRAM allows.
  Winograd (algorithm "winograd") does 4x fewer multiplications than the direct count used
  here, so its GFLOP/s and % of peak are "effective" and may pass 100%.
- NumPy ms: im2col through sliding_window_view + tensordot/einsum (what a NumPy user writes);
  SciPy ms: scipy.signal.oaconvolve where it computes the same thing (depthwise).
- max rel err: max |cconv - anchor| / max |anchor| for each anchor (or vs the NumPy baseline).
- algorithm: what cconv's plan chose (single-convolution cases)."""


ANCHOR_COLORS = {"torch": "tab:orange", "ORT": "tab:purple"}


def plot(rows, path, limits, title):
    plt = _import_pyplot()
    if plt is None:
        return False
    done = [r for r in rows if r.cconv is not None]
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, max(5.5, 0.3 * len(done) + 2.0)),
                                   layout="constrained", width_ratios=[1.1, 1])
    # ratio per case, a bar per anchor
    timed = [a for a in ANCHORS if any(a in r.anchor for r in done)]
    shown = [r for r in done if any(a in r.anchor for a in timed)]
    if shown:
        names = [r.case.name if len(r.case.name) <= 52 else r.case.name[:50] + "..."
                 for r in shown]
        y = np.arange(len(names))
        height = 0.8 / len(timed)
        every = []
        for i, a in enumerate(timed):
            ratios = [r.anchor[a] / r.cconv if a in r.anchor else np.nan for r in shown]
            every += [q for q in ratios if q == q]
            yy = y - 0.4 + (i + 0.5) * height
            ax1.barh(yy, ratios, height, color=ANCHOR_COLORS[a], label=f"{a} time / cconv time")
            for q, yq in zip(ratios, yy):
                if q == q:
                    ax1.text(q, yq, f" {q:.2f}", va="center", fontsize=6)
        ax1.set_yticks(y)
        ax1.set_yticklabels(names, fontsize=7)
        ax1.invert_yaxis()
        ax1.set_xscale("log")
        lo, hi = min(every + [1.0]) / 1.3, max(every + [1.0]) * 1.3
        ax1.set_xlim(lo, hi)
        ticks = [t for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50, 100)
                 if lo <= t <= hi]
        ax1.xaxis.set_major_locator(FixedLocator(ticks))
        ax1.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax1.xaxis.set_minor_formatter(NullFormatter())
        ax1.axvline(1.0, color="k", lw=1)
        ax1.set_xlabel("anchor time / cconv time  (> 1: cconv faster)")
        ax1.set_title("speed-up over " + " and ".join(timed))
        ax1.legend(fontsize=7, loc="lower right")
    else:
        ax1.text(0.5, 0.5, "no anchor (PyTorch, ONNX Runtime) measured", ha="center", va="center")
        ax1.set_axis_off()
    # roofline
    pts = [r for r in done if r.flops and r.bytes]
    if pts:
        ai = np.array([r.flops / r.bytes for r in pts])
        lo, hi = max(ai.min() / 2, 0.05), ai.max() * 2
        peak, bandwidth = limits.peak_gflops, limits.bandwidth_gbs
        xs = np.geomspace(lo, max(hi, 2 * peak / bandwidth), 200)
        ax2.plot(xs, np.minimum(peak, xs * bandwidth), "k-", lw=1.5,
                 label=f"roofline: {limits.isa} FMA peak {peak:.0f} GFLOP/s, triad {bandwidth:.0f} GB/s")
        ax2.scatter(ai, [r.flops / r.cconv / 1e9 for r in pts], c="tab:blue", label="cconv", zorder=3)
        for a in ANCHORS:
            tp = [r for r in pts if a in r.anchor]
            if tp:
                ax2.scatter([r.flops / r.bytes for r in tp], [r.flops / r.anchor[a] / 1e9 for r in tp],
                            facecolors="none", edgecolors=ANCHOR_COLORS[a], label=a, zorder=3)
        for r, a in zip(pts, ai):
            ax2.annotate(r.case.key, (a, r.flops / r.cconv / 1e9), fontsize=6,
                         xytext=(3, 3), textcoords="offset points")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("arithmetic intensity (FLOP / byte of minimum traffic)")
        ax2.set_ylabel("GFLOP/s")
        ax2.set_title("roofline")
        ax2.legend(fontsize=8, loc="lower right")
        ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m cconv.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=None,
                   help="comma list: groups (suite, batch1, functions, grad, tiny, or a network: "
                        + ", ".join(bc.NETWORKS) + "), function names, case keys or substrings "
                        "of case names (default: suite,batch1,functions,grad)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--layout", default="NCHW", type=str.upper,
                   choices=["NCHW", "NHWC", "NCW", "NWC", "NCDHW", "NDHWC"],
                   help="channels-first (NCHW) or channels-last (NHWC); 1-D/3-D cases use the "
                        "matching NWC/NDHWC")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for cconv, torch and NumPy's BLAS (default: cconv's current)")
    p.add_argument("--repeat", type=int, default=None, help="interleaved samples per side (7; quick 3)")
    p.add_argument("--target", type=float, default=None,
                   help="seconds per sample; short calls are looped (0.05; quick 0.005)")
    p.add_argument("--quick", action="store_true", help="few short samples, no NumPy/SciPy baseline")
    p.add_argument("--no-torch", action="store_true", help="do not import or time PyTorch")
    p.add_argument("--no-onnxruntime", action="store_true",
                   help="do not import or time ONNX Runtime")
    p.add_argument("--no-numpy", action="store_true", help="skip the NumPy/SciPy baselines")
    p.add_argument("--numpy-max-mb", type=float, default=1024,
                   help="skip the NumPy baseline when its im2col matrix exceeds this (MiB)")
    p.add_argument("--peak", type=float, default=None,
                   help="float32 FMA peak per core in GFLOP/s (float64: half) instead of the "
                        f"measured one (also {machine.ENV_PEAK})")
    p.add_argument("--bandwidth", type=float, default=None,
                   help="memory bandwidth in GB/s instead of the measured triad (also "
                        f"{machine.ENV_BANDWIDTH})")
    p.add_argument("--remeasure", action="store_true",
                   help="measure the machine's peak and bandwidth again (else: cached per machine)")
    p.add_argument("--machine", action="store_true",
                   help="print the machine's limits (every ISA, float32 and float64, 1 and "
                        "--threads threads) and exit")
    p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    p.add_argument("--png", metavar="FILE", help="write the charts (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 7
    if args.target is None:
        args.target = 0.005 if args.quick else 0.05
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def machine_limits(args, isa, dtype, threads):
    """machine.limits for this run, saying on stderr when it measures (a few seconds)."""
    cached = machine.load_cache()
    with warnings.catch_warnings():   # machine.limits warns about bad values, once
        warnings.simplefilter("ignore")
        overridden = (args.peak or machine.env_number(machine.ENV_PEAK),
                      args.bandwidth or machine.env_number(machine.ENV_BANDWIDTH))
    keys = (machine.peak_key(isa, dtype, threads), machine.bandwidth_key("triad", threads))
    what = [w for w, o, k in zip((f"the FMA peak ({isa})", "the memory bandwidth"), overridden, keys)
            if not o and (args.remeasure or k not in cached)]
    if what:
        print(f"measuring {' and '.join(what)} of this machine on {threads} thread(s) (cached in "
              f"{machine.cache_path()})", file=sys.stderr, flush=True)
    return machine.limits(isa, dtype, threads, peak_per_core=args.peak, bandwidth=args.bandwidth,
                          remeasure=args.remeasure)


def print_machine(args):
    threads = sorted({1, args.threads or cconv.get_num_threads()})
    if args.remeasure:   # then each limit below is measured once
        machine.clear_cache()
        args.remeasure = False
    print(f"{machine_description()}; cache {machine.cache_path()}")
    for isa in cconv.available_isas():
        for n in threads:
            for dtype in ("float32", "float64"):
                print(machine_limits(args, isa, dtype, n).label(), flush=True)
    return 0


def main(argv=None, steady_malloc=False):
    """The command line; steady_malloc (set by `python -m cconv.bench`, a process of its own)
    first fixes glibc malloc's state for the rest of the process (cases.steady_allocator)."""
    args = parse_args(argv)
    tokens = args.variants.split(",") if args.variants else None
    cases = bc.select(tokens)
    if args.list:
        for c in bc.select(tokens) if tokens else bc.all_cases():
            print(f"{c.group:12s} {c.key:24s} {c.fn:28s} {c.name}")
        return 0
    if not cases:
        print(f"no case matches --variants {args.variants!r} (see --list)", file=sys.stderr)
        return 2
    if args.machine:
        return print_machine(args)
    steady = steady_malloc and bc.steady_allocator()   # before torch and ORT allocate anything

    torch = None
    if not args.no_torch:
        torch = _import_torch()
        if torch is None:
            print("note: PyTorch is not installed (pip install torch, or pip install "
                  "'cconv[bench]'): timing cconv and NumPy only", file=sys.stderr)
    ort = None
    if not args.no_onnxruntime:
        ort = _import_onnxruntime()
        if ort is None:
            print("note: ONNX Runtime is not installed (pip install onnx onnxruntime, or pip "
                  "install 'cconv[onnx]'): no ORT column", file=sys.stderr)
    old_threads = cconv.get_num_threads(), torch.get_num_threads() if torch is not None else None
    if args.threads is None:
        args.threads = old_threads[0]
    cconv.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    blas = _blas_limits(args.threads)
    limits = machine_limits(args, cconv.get_isa(), args.dtype, args.threads)
    libs = {"torch": torch, "ORT": ort}
    anchors = [a for a in ANCHORS if libs[a] is not None]
    head = header(args, torch, limits, ort, steady)
    for line in head:
        print(line, file=sys.stderr)
    rows = []
    t_start = time.perf_counter()
    try:
        for i, case in enumerate(cases, 1):
            print(f"[{i}/{len(cases)}] {case.name} ...", end="", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            row = run_case(case, args, libs, limits)
            rows.append(row)
            if row.failed:
                msg = f" FAILED ({row.failed})"
            else:
                msg = f" cconv {_ms(row.cconv)} ms"
                for a in anchors:
                    t = row.anchor.get(a)
                    if t:
                        msg += f", {a} {_ms(t)} ms ({t / row.cconv:.2f}x)"
                    elif row.note.get(a, "").startswith("mismatch"):
                        msg += f", {a} {row.note[a]}"
                if row.numpy:
                    msg += f", numpy {_ms(row.numpy)} ms"
            print(f"{msg}  [{time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    finally:   # main() may run inside a bigger program: leave its thread settings as found
        if blas is not None:
            blas.restore_original_limits()
        cconv.set_num_threads(old_threads[0])
        if torch is not None:
            torch.set_num_threads(old_threads[1])
    print(f"done in {time.perf_counter() - t_start:.0f} s", file=sys.stderr)
    try:
        head[1] += f", {os.getloadavg()[0]:.1f} at the end"
    except (AttributeError, OSError):
        pass

    text = table(rows, limits, anchors)
    summary = geomean_summary(rows)
    print(text)
    if summary:
        print("\n" + summary)
    status = 1 if any(r.failed or r.mismatch for r in rows) else 0
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("# cconv benchmark\n\n")
            f.write("\n".join(f"{line}  " for line in head) + "\n\n")
            f.write(text + "\n\n" + (summary + "\n\n" if summary else "") + NOTES + "\n")
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.png:
        if plot(rows, args.png, limits, "\n".join(head[:4])):
            print(f"wrote {args.png}", file=sys.stderr)
        else:
            print("matplotlib is not installed (pip install matplotlib, or pip install "
                  "'cconv[bench]'): no PNG written", file=sys.stderr)
            status = status or 2
    return status
