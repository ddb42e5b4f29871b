"""The machine's limits behind "% of peak": measured here, cached per machine.

- FMA peak: GFLOP/s of cconv's register-only multiply-add loop (`cconv._core.fma_peak`, compiled
  once per ISA like the convolution kernels) on a team of OpenMP threads, for one ISA and dtype:
  what that ISA's vector FMAs can do on this CPU at this thread count, turbo and all.
- Memory bandwidth: a STREAM-like copy (c = a) and triad (c = a + s*b) in NumPy, float64 arrays
  well beyond the last-level cache, split across Python threads (NumPy releases the GIL): GB/s
  counting each array read or written once. The triad is the roofline's bandwidth.

Each measurement takes a fraction of a second and is stored in
<cache dir>/cconv/machine-<hash of the CPU model>.json (cache dir: $XDG_CACHE_HOME or ~/.cache,
%LOCALAPPDATA% on Windows), so later runs reuse it; `remeasure=True` (`python -m cconv.bench
--remeasure`) measures again. CCONV_PEAK_GFLOPS (float32 GFLOP/s per core; float64 is half) and
CCONV_BANDWIDTH_GBS (GB/s at any thread count) replace the measured values.

Imports only NumPy at module level (cconv when it measures a peak), so that the asv suite can
load this file by path while it benchmarks another build of cconv.
"""
from dataclasses import dataclass
import datetime
import hashlib
import json
import math
import os
import platform
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

ENV_PEAK = "CCONV_PEAK_GFLOPS"
ENV_BANDWIDTH = "CCONV_BANDWIDTH_GBS"
CACHE_VERSION = 1


# --------------------------------------------------------------------------- the machine

def cpu_model():
    """The CPU's model name ("AMD EPYC 9R14", ...), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cache_dir():
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = os.environ["LOCALAPPDATA"]
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cconv")


def cache_path():
    """The cache file of this machine: one per CPU model and logical CPU count."""
    ident = f"{cpu_model()}|{os.cpu_count()}|{platform.machine()}"
    return os.path.join(cache_dir(), f"machine-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json")


def _last_level_cache_bytes():
    """Size of the largest cache level Linux reports for CPU 0 (0 when unknown)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = 0
    try:
        for index in [d for d in os.listdir(base) if d.startswith("index")]:
            with open(os.path.join(base, index, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * scale)
    except (OSError, ValueError):
        pass
    return best


# --------------------------------------------------------------------------- measurements

def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def measure_peak(isa, dtype, threads, seconds=0.2, run_seconds=0.002):
    """(GFLOP/s, threads that ran) of cconv's FMA loop for `isa` and `dtype` on `threads` OpenMP
    threads (at most one per CPU this process may use): the best of many short runs (about
    `run_seconds` each, `seconds` in all) after a warm-up (wide vector units may start at a lower
    clock). A peak is what the loop reaches when nothing interrupts it: on a busy machine some
    short runs still are not interrupted, and each thread counts at its own speed."""
    import cconv._core as core
    if not hasattr(core, "fma_peak"):
        raise RuntimeError(
            f"this build of cconv has no FMA loop (cconv._core.fma_peak) to measure the peak: "
            f"set {ENV_PEAK} or measure once with a current build (python -m cconv.bench "
            f"--machine); the result is cached for this machine")
    threads = max(1, min(int(threads), usable_cpus()))
    iters = 1 << 8
    while True:   # calibrate on one thread: a team's wall time includes waking its threads
        rate, t, team = core.fma_peak(isa, dtype, iters, 1)
        if t >= run_seconds or iters >= 1 << 40:
            break
        iters *= 2
    core.fma_peak(isa, dtype, iters * 10, threads)   # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        rate, t, team = core.fma_peak(isa, dtype, iters, threads)
        best = max(best, rate / 1e9)
    return best, team


def stream_array_bytes():
    """Size of each STREAM array: the last-level cache's (64 MiB at least, 512 MiB at most, and at
    most an eighth of the memory available now). A walk through two or three such arrays leaves
    nothing in the cache for the next one."""
    size = max(64 << 20, _last_level_cache_bytes())
    try:
        size = min(size, os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8)
    except (AttributeError, ValueError, OSError):
        pass
    return int(min(size, 512 << 20))


def measure_bandwidth(threads, nbytes=None, passes=2, segments=16):
    """{"copy": GB/s, "triad": GB/s} on `threads` threads over float64 arrays of `nbytes` each
    (default: stream_array_bytes()), counting each array read or written once (as STREAM).

    Each pass walks the arrays in `segments` consecutive pieces, timed one by one (all threads
    on each piece): the arrays are larger than the caches, so every piece comes from memory,
    and the best piece of `passes` passes (after a warm-up pass) is what memory gives when
    nothing interrupts the threads. The triad goes through a small per-thread buffer (s*b, then
    + a), so that memory sees one read of a and b and one write of c."""
    n = max(1 << 16, int(nbytes or stream_array_bytes()) // 8)
    threads = max(1, int(threads))
    a = np.full(n, 1.0)
    b = np.full(n, 2.0)
    c = np.full(n, 0.0)
    block = 1 << 15   # 256 KiB of float64: stays in L2
    tmp = [np.empty(block) for _ in range(threads)]

    def copy(i, lo, hi):   # i: the thread's index (its buffer, for the triad)
        np.copyto(c[lo:hi], a[lo:hi])

    def triad(i, lo, hi):
        t = tmp[i]
        for j in range(lo, hi, block):
            k = min(j + block, hi)
            u = t[:k - j]
            np.multiply(b[j:k], 3.0, out=u)
            np.add(a[j:k], u, out=c[j:k])

    edges = np.linspace(0, n, segments + 1).astype(np.int64)
    out = {}
    with ThreadPoolExecutor(threads) as pool:
        for name, fn, arrays in (("copy", copy, 2), ("triad", triad, 3)):
            best = 0.0
            for p in range(passes + 1):
                for lo, hi in zip(edges[:-1], edges[1:]):
                    cut = np.linspace(lo, hi, threads + 1).astype(np.int64)
                    t0 = time.perf_counter()
                    if threads == 1:
                        fn(0, lo, hi)
                    else:
                        list(pool.map(fn, range(threads), cut[:-1], cut[1:]))
                    t = time.perf_counter() - t0
                    if p:   # pass 0 is the warm-up
                        best = max(best, arrays * (hi - lo) * 8 / t / 1e9)
            out[name] = float(best)
    if not (c[0] == 7.0 and c[-1] == 7.0):   # the triad ran last: 1 + 3 * 2
        raise RuntimeError("the bandwidth measurement computed a wrong triad")
    return out


# --------------------------------------------------------------------------- cache

def _now():
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M")


def load_cache(path=None):
    """The cached measurements of this machine ({} when there are none or they are unreadable)."""
    path = path or cache_path()
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring the unreadable machine cache {path}: {e}", RuntimeWarning,
                      stacklevel=2)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION \
            or not isinstance(data.get("measured"), dict):
        return {}
    return data["measured"]


def clear_cache(path=None):
    """Forgets this machine's measurements."""
    try:
        os.remove(path or cache_path())
    except FileNotFoundError:
        pass


def save_cache(measured, path=None):
    """Writes the measurements atomically; a cache that cannot be written only warns."""
    path = path or cache_path()
    data = {"version": CACHE_VERSION, "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "machine": platform.machine(), "measured": measured}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the machine cache {path}: {e}", RuntimeWarning, stacklevel=2)


# --------------------------------------------------------------------------- overrides

def env_number(name):
    """The positive number environment variable `name` holds; None when unset or empty, and, with
    a warning naming the value, when it holds anything else."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        warnings.warn(f"{name}={value!r} is not a positive number; measuring instead",
                      RuntimeWarning, stacklevel=3)
        return None
    return number


# --------------------------------------------------------------------------- limits

@dataclass(frozen=True)
class Limits:
    """What "% of peak" divides by, and where each number came from."""
    isa: str
    dtype: str
    threads: int
    peak_gflops: float
    peak_source: str       # "measured <when>", "CCONV_PEAK_GFLOPS", "--peak"
    bandwidth_gbs: float   # the triad's
    bandwidth_source: str
    copy_gbs: Optional[float] = None  # measured copy, when measured

    def label(self):
        """One line naming both limits, what they are and where they came from."""
        copy = f", copy {self.copy_gbs:.1f} GB/s" if self.copy_gbs else ""
        return (f"peak {self.peak_gflops:.0f} GFLOP/s ({self.isa} FMA loop, {self.dtype}, "
                f"{self.threads} thread(s), {self.peak_source}); bandwidth {self.bandwidth_gbs:.1f} "
                f"GB/s (triad{copy}, {self.threads} thread(s), {self.bandwidth_source})")

    def short_label(self):
        return (f"{self.isa} {self.dtype} {self.threads}T: {self.peak_gflops:.0f} GFLOP/s, "
                f"{self.bandwidth_gbs:.0f} GB/s")


def peak_key(isa, dtype, threads):
    return f"peak/{isa}/{np.dtype(dtype).name}/{int(threads)}"


def bandwidth_key(kind, threads):
    return f"{kind}/{int(threads)}"


def limits(isa, dtype, threads, *, peak_per_core=None, bandwidth=None, remeasure=False, path=None):
    """The Limits for running `isa` on `dtype` with `threads` threads.

    peak_per_core (float32 GFLOP/s per core, float64 half) and bandwidth (GB/s) replace the
    measurements, as do the environment variables CCONV_PEAK_GFLOPS and CCONV_BANDWIDTH_GBS when
    these arguments are None. Everything else comes from the cache, measured (and cached) when
    missing or when remeasure is true."""
    dtype = np.dtype(dtype).name
    threads = max(1, int(threads))
    measured = load_cache(path)
    new = {}   # measured now

    peak_source = "--peak" if peak_per_core is not None else ENV_PEAK
    if peak_per_core is None:
        peak_per_core = env_number(ENV_PEAK)
    if peak_per_core is not None:
        peak = peak_per_core * threads / (2.0 if dtype == "float64" else 1.0)
    else:
        key = peak_key(isa, dtype, threads)
        if remeasure or key not in measured:
            for dt in ("float32", "float64"):   # both at once: the second costs little
                gflops, team = measure_peak(isa, dt, threads)
                new[peak_key(isa, dt, threads)] = {"gflops": round(gflops, 2), "team": team,
                                                   "when": _now()}
            measured.update(new)
        peak = measured[key]["gflops"]
        peak_source = f"measured {measured[key]['when']}"

    bw_source = "--bandwidth" if bandwidth is not None else ENV_BANDWIDTH
    if bandwidth is None:
        bandwidth = env_number(ENV_BANDWIDTH)
    copy = None
    if bandwidth is None:
        key = bandwidth_key("triad", threads)
        if remeasure or key not in measured:
            when, mib = _now(), stream_array_bytes() >> 20
            for kind, gbs in measure_bandwidth(threads).items():
                new[bandwidth_key(kind, threads)] = {"gbs": round(gbs, 2), "array_mib": mib,
                                                     "when": when}
            measured.update(new)
        bandwidth = measured[key]["gbs"]
        copy = measured.get(bandwidth_key("copy", threads), {}).get("gbs")
        bw_source = f"measured {measured[key]['when']}"
    if new:   # on top of what another process may have cached meanwhile
        save_cache({**load_cache(path), **new}, path)
    return Limits(isa, dtype, threads, float(peak), peak_source, float(bandwidth), bw_source, copy)
