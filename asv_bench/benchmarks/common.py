"""Shared pieces of cconv's asv suite: the frozen shape tables and one parametrised base class.

The tables (the suite of docs/benchmarks.md and named layers of ResNet-50, MobileNetV2,
ShuffleNet, DeepLab, DCGAN, C3D/3-D U-Net, a 1-D audio/text stack, factorised filters) live in
src/cconv/bench/cases.py, which `python -m cconv.bench` uses too, and the machine's measured
limits behind "% of peak" in src/cconv/bench/machine.py. Both are loaded here *by path from this
working tree*, not from the installed cconv: asv runs today's benchmark files against the build
of each commit it benchmarks. Keys are frozen: add a case rather than change one, or its history
stops being comparable.

Every benchmark class is parametrised by (case, dtype, layout, threads). `setup` raises
NotImplementedError, which asv reports as a skip, when the machine has fewer cores than asked or
when torch is missing for track_torch_ratio, or onnxruntime (or the case in ONNX Runtime) for
track_ort_ratio.
"""
import importlib.util
import os
import statistics
import sys
import time

import numpy as np


def _load(module):
    """src/cconv/bench/<module>.py of this working tree, as module cconv_bench_<module>."""
    name = f"cconv_bench_{module}"
    if name in sys.modules:
        return sys.modules[name]
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.normpath(os.path.join(here, "..", "..", "src", "cconv", "bench", f"{module}.py"))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod   # dataclasses look their module up while the class is created
    spec.loader.exec_module(mod)
    return mod


cases = _load("cases")
machine = _load("machine")

DTYPES = ["float32", "float64"]
LAYOUTS = ["NCHW", "NHWC"]
THREADS = [1, 2]


def set_threads(cconv, threads):
    cores = os.cpu_count() or 1
    if threads > cores:
        raise NotImplementedError(f"{threads} threads asked, this machine has {cores} cores")
    cconv.set_num_threads(threads)
    try:   # the NumPy baseline (peakmem_reference) gets the same number of BLAS threads
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads, user_api="blas")
    except ImportError:
        pass


def median_seconds(fn, min_time=0.1, min_runs=3, max_runs=50):
    """Median time of one call, after a warm-up, over at least min_runs calls and min_time."""
    fn()
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < min_runs or (time.perf_counter() < t_end and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def by_key(table):
    return {c.key: c for c in table}


class _ConvCases:
    """Base of the benchmark classes: a subclass sets `table` (a list of cases) and `params`.

    time_cconv:            one call of the public function (validation, planning, packing, run)
    peakmem_cconv:         peak resident memory of the process around that call
    peakmem_reference:     the same for the NumPy im2col baseline (what a NumPy user writes)
    track_gflops:          GFLOP/s of cconv (2 x multiply-adds over the median time)
    track_percent_of_peak: % of this machine's FMA peak for the ISA, dtype and threads (cconv's
                           FMA loop) or, for bandwidth-bound cases, of its triad bandwidth; both
                           measured once and cached per machine (machine.py;
                           CCONV_PEAK_GFLOPS / CCONV_BANDWIDTH_GBS override)
    """
    table = []
    param_names = ["case", "dtype", "layout", "threads"]
    params = [[], DTYPES, LAYOUTS, THREADS]
    # One process per benchmark, a few samples: enough to see 10% changes, short enough for CI.
    rounds = 1
    repeat = (1, 5, 4.0)
    warmup_time = 0.05
    sample_time = 0.02
    timeout = 300
    min_track_seconds = 0.1     # seconds of calls behind each track_* value
    torch_samples = 5        # interleaved samples per side for track_torch_ratio and _ort_ratio

    def setup(self, key, dtype, layout, threads):
        cases.steady_allocator()   # fresh pages or not: the same whatever torch or ORT did
        import cconv
        self.case = case = by_key(self.table)[key]
        set_threads(cconv, threads)
        self.dtype = np.dtype(dtype)
        self.threads = threads
        self.channels_last = cases.is_channels_last(layout)
        self.x, self.weights, self.dy = cases.make_inputs(case, self.dtype, self.channels_last)
        self.fn = cases.cconv_callable(cconv, case, self.x, self.weights, self.dy,
                                       self.channels_last)
        self.fn()   # warm-up
        self.cconv = cconv

    def time_cconv(self, *params):
        self.fn()

    def peakmem_cconv(self, *params):
        self.fn()

    def peakmem_reference(self, *params):
        cases.numpy_callable(self.case, self.x, self.weights, self.dy, self.channels_last)()

    def _gflops(self):
        t = median_seconds(self.fn, self.min_track_seconds)
        return cases.flops(self.case) / t / 1e9, t

    def track_gflops(self, *params):
        return self._gflops()[0]
    track_gflops.unit = "GFLOP/s"

    def track_percent_of_peak(self, *params):
        gflops, t = self._gflops()
        limits = machine.limits(self.cconv.get_isa(), self.dtype, self.threads)
        peak, bandwidth = limits.peak_gflops, limits.bandwidth_gbs
        nbytes = cases.bytes_moved(self.case, self.dtype.itemsize)
        if cases.flops(self.case) / nbytes * bandwidth < peak:   # below the roofline ridge
            return 100.0 * nbytes / t / 1e9 / bandwidth
        return 100.0 * gflops / peak
    track_percent_of_peak.unit = "% of measured peak"


class _PlannedCases(_ConvCases):
    """time_planned: one call of a prepared plan (plan_conv*: weights packed once)."""

    def setup(self, *params):
        _ConvCases.setup(self, *params)
        self.planned = cases.cconv_planned(self.cconv, self.case, self.x, self.weights,
                                           self.channels_last)
        self.planned()

    def time_planned(self, *params):
        self.planned()


class _AnchorCases(_ConvCases):
    """track_<anchor>_ratio: the anchor's time / cconv's time (> 1: cconv faster), both in this
    process on the same arrays with the same threads, interleaved; more stable across machines
    than seconds. A subclass names its anchor and builds its callable in `anchor_fn`."""

    def _ratio(self):
        t_cconv, t_anchor = cases.time_interleaved([self.fn, self.anchor_fn], self.torch_samples,
                                                   self.min_track_seconds / 5)
        return t_anchor / t_cconv


class _TorchCases(_AnchorCases):
    """track_torch_ratio: torch.nn.functional (channels-last input as torch's channels_last
    memory format)."""

    def setup(self, *params):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        _ConvCases.setup(self, *params)
        torch.set_num_threads(self.threads)
        self.anchor_fn, _ = cases.torch_callable(torch, self.case, self.x, self.weights, self.dy,
                                                 self.channels_last)

    def track_torch_ratio(self, *params):
        return self._ratio()
    track_torch_ratio.unit = "torch time / cconv time"


class _OrtCases(_AnchorCases):
    """track_ort_ratio: ONNX Runtime, the case as an ONNX model in one InferenceSession created in
    setup (intra-op threads = threads; channels-last: Transpose nodes around the Conv nodes, see
    cases.onnx_model), session.run against cconv's one-shot call. Skipped where ORT cannot run
    the case (float64, channel shuffle, gradients: cases.ort_unsupported)."""

    def setup(self, key, dtype, layout, threads):
        try:
            import onnx
            import onnxruntime
        except ImportError:
            raise NotImplementedError("onnxruntime: onnx or onnxruntime is not installed") from None
        case = by_key(self.table)[key]
        why = cases.ort_unsupported(case, dtype)
        if why:
            raise NotImplementedError(f"onnxruntime: cannot run this case ({why})")
        _ConvCases.setup(self, key, dtype, layout, threads)
        self.anchor_fn = cases.ort_callable(onnx, onnxruntime, case, self.x, self.weights, threads,
                                            self.channels_last)

    def track_ort_ratio(self, *params):
        return self._ratio()
    track_ort_ratio.unit = "ORT time / cconv time"


def _hide_all_but(names):
    """Class attributes that hide every benchmark method of _ConvCases except `names` from asv
    (discovery only collects functions; None is not one)."""
    return {n: None for n in dir(_ConvCases)
            if n.startswith(("time_", "peakmem_", "track_")) and callable(getattr(_ConvCases, n))
            and n not in names}


def benchmark_classes(prefix, table, dtypes=DTYPES, layouts=LAYOUTS, threads=THREADS):
    """The asv classes for one table: <prefix> (time, peak memory, GFLOP/s, % of peak),
    <prefix>Planned (plan reuse, only cases with a plan_ form), <prefix>Torch (the torch ratio)
    and <prefix>Ort (the ONNX Runtime ratio, only when some case is a forward convolution)."""
    params = [[c.key for c in table], list(dtypes), list(layouts), list(threads)]
    planned = [c for c in table if c.fn in cases.PLANNED_FUNCTIONS]
    out = {prefix: type(prefix, (_ConvCases,), dict(table=table, params=params))}
    if planned:
        out[prefix + "Planned"] = type(prefix + "Planned", (_PlannedCases,), dict(
            table=planned, params=[[c.key for c in planned]] + params[1:],
            **_hide_all_but(("time_planned",))))
    out[prefix + "Torch"] = type(prefix + "Torch", (_TorchCases,), dict(
        table=table, params=params, **_hide_all_but(("track_torch_ratio",))))
    onnx_able = [c for c in table if cases.ort_unsupported(c, "float32") is None]
    if onnx_able:
        out[prefix + "Ort"] = type(prefix + "Ort", (_OrtCases,), dict(
            table=onnx_able, params=[[c.key for c in onnx_able]] + params[1:],
            **_hide_all_but(("track_ort_ratio",))))
    return out
