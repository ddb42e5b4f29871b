"""Where a memory-bound call's arrays lie, and what that does to its time.

Offsets (the default): cconv's memory-bound kernels timed with the output placed at chosen
offsets modulo 4096 bytes from the input (for the GEMM band fill, the input against the
workspace), against np.copyto over the same two arrays. A load whose address equals, in its low
12 bits, that of an earlier store still in flight can be taken as dependent on it (4K aliasing):
on CPUs where that costs, a forward copy whose output lies a little above its input modulo 4096
runs slower than with the arrays far apart, and which placement a user gets is the allocator's
choice. Each cell is the best of --rounds rounds (kernel and copy alternate, so other processes'
load hits both alike); "x copy" is the kernel's time over the copy's at the same offset, "x best"
over the kernel's fastest offset.

--fresh: one-shot calls (a new output array each call) against calls into a preallocated out=
and plans, for cconv and torch; --mmap makes every large allocation a new mapping, so that each
one-shot call writes into fresh pages (what a process gets when its allocator has no freed block
of that size).

    python -m cconv.bench.alignment --threads 1 --rounds 30       # every kernel, the best ISA
    python -m cconv.bench.alignment --isa avx2 --kernels shuffle_nchw --offsets 0,16,2048
    python -m cconv.bench.alignment --fresh --mmap --threads 1 --cpu-time

docs/benchmarks.md has the numbers measured with it.
"""
import argparse
import time

import numpy as np

import cconv

PAGE = 4096
OFFSETS = (0, 16, 64, 256, 1024, 2048, 3072, 4032)


def page_buffer(nbytes):
    """Uninitialised bytes with room for a view of `nbytes` at any offset from a page."""
    return np.empty(nbytes + 2 * PAGE, np.uint8)


def at_offset(buf, shape, offset, dtype=np.float32):
    """A C-contiguous view of `buf` (from page_buffer) starting `offset` bytes past a page
    boundary. Views of one buffer at different offsets share their pages, so that only the
    offset changes (not the pages the allocator or the kernel's page tables happen to give)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    start = (-buf.ctypes.data) % PAGE + offset
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def _random(buf, shape, offset, seed=0):
    a = at_offset(buf, shape, offset)
    a[...] = np.random.default_rng(seed).standard_normal(shape, np.float32)
    return a


def _shuffle(layout, shape, base):
    """The output at each offset from the input (`base` bytes past a page)."""
    n = int(np.prod(shape)) * 4
    xbuf, ybuf = page_buffer(n), page_buffer(n)
    x = _random(xbuf, shape, base)

    def make(offset):
        y = at_offset(ybuf, shape, (base + offset) % PAGE)
        return (lambda: cconv.channel_shuffle(x, 4, layout=layout, out=y)), x, y
    return make


def _depthwise(shape, base):
    """A 3x3 stride-1 depthwise plan, the output at each offset from the input."""
    n = int(np.prod(shape)) * 4
    xbuf, ybuf = page_buffer(n), page_buffer(n)
    x = _random(xbuf, shape, base)
    w = np.random.default_rng(1).standard_normal((shape[1], 1, 3, 3)).astype(np.float32)
    plan = cconv.plan_conv2d(shape, w, padding=1, groups=shape[1], dtype=np.float32)

    def make(offset):
        y = at_offset(ybuf, shape, (base + offset) % PAGE)
        return (lambda: plan(x, out=y)), x, y
    return make


def _band_fill(shape, cout, base):
    """A channels-first 3x3 convolution on the GEMM path, the input at each offset from a page:
    its band fill transposes the input into the workspace (64-byte aligned, its offset in a
    page the allocator's), so the input's offset moves it relative to the workspace. The copy
    column copies the input into a buffer at a fixed offset."""
    n = int(np.prod(shape)) * 4
    xbuf, rbuf = page_buffer(n), page_buffer(n)
    w = np.random.default_rng(1).standard_normal((cout, shape[1], 3, 3)).astype(np.float32)
    plan = cconv.plan_conv2d(shape, w, padding=1, dtype=np.float32, algorithm="gemm")
    y = np.empty(plan.out_shape, np.float32)
    ref = at_offset(rbuf, shape, base)

    def make(offset):
        x = _random(xbuf, shape, (base + offset) % PAGE)
        return (lambda: plan(x, out=y)), x, ref
    return make


KERNELS = {
    "shuffle_nchw": lambda base: _shuffle("NCHW", (4, 96, 48, 48), base),
    "shuffle_nhwc": lambda base: _shuffle("NHWC", (4, 48, 48, 96), base),
    "depthwise": lambda base: _depthwise((1, 192, 112, 112), base),
    "band_fill": lambda base: _band_fill((1, 64, 56, 56), 16, base),
}


# Wall-clock time; --cpu-time switches to the process's CPU time, which a 1-thread measurement
# on a busy machine needs (time spent preempted is not counted; page faults are).
CLOCK = [time.perf_counter]


def best(fn, calls):
    clock = CLOCK[0]
    t = clock()
    for _ in range(calls):
        fn()
    return (clock() - t) / calls


def measure(name, offsets, rounds, base=0, target=0.002):
    """{offset: (kernel seconds, copy seconds)}, best of `rounds` alternating rounds."""
    make = KERNELS[name](base)
    cases = {}
    for off in offsets:
        run, x, y = make(off)
        xs, ys = x.reshape(-1), y.reshape(-1)
        copy = lambda xs=xs, ys=ys: np.copyto(ys, xs)  # noqa: E731
        run(), copy()
        calls = max(1, int(target / max(best(run, 3), 1e-7)))
        cases[off] = (run, copy, calls)
    times = {off: [float("inf"), float("inf")] for off in offsets}
    for _ in range(rounds):
        for off, (run, copy, calls) in cases.items():
            t = times[off]
            t[0] = min(t[0], best(run, calls))
            t[1] = min(t[1], best(copy, calls))
    return times


def _fresh_cases(torch):
    """{function: {way: zero-argument callable}}: one-shot calls (a new output array each call),
    calls into a preallocated out=, and plans, for cconv and (when installed) torch."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 96, 48, 48), np.float32)
    ys = np.empty_like(xs)
    xd = rng.standard_normal((1, 192, 112, 112), np.float32)
    wd = rng.standard_normal((192, 1, 3, 3)).astype(np.float32)
    yd = np.empty_like(xd)
    plan = cconv.plan_conv2d(xd.shape, wd, padding=1, groups=192, dtype=np.float32)
    cases = {
        "channel_shuffle (4,96,48,48) g4": {
            "cconv one-shot": lambda: cconv.channel_shuffle(xs, 4),
            "cconv out=": lambda: cconv.channel_shuffle(xs, 4, out=ys),
        },
        "depthwise 3x3 (1,192,112,112)": {
            "cconv one-shot": lambda: cconv.depthwise_conv2d(xd, wd, padding=1),
            "cconv out=": lambda: cconv.depthwise_conv2d(xd, wd, padding=1, out=yd),
            "cconv plan": lambda: plan(xd),
            "cconv plan out=": lambda: plan(xd, out=yd),
        },
    }
    if torch is not None:
        aten = torch.ops.aten
        xst, yst = torch.from_numpy(xs), torch.from_numpy(ys)
        xdt, wdt, ydt = torch.from_numpy(xd), torch.from_numpy(wd), torch.from_numpy(yd)
        conv = (None, [1, 1], [1, 1], [1, 1], False, [0, 0], 192)
        cases["channel_shuffle (4,96,48,48) g4"].update({
            "torch one-shot": lambda: torch.nn.functional.channel_shuffle(xst, 4),
            "torch out=": lambda: aten.channel_shuffle.out(xst, 4, out=yst),
        })
        cases["depthwise 3x3 (1,192,112,112)"].update({
            "torch one-shot": lambda: torch.nn.functional.conv2d(xdt, wdt, None, 1, 1, 1, 192),
            "torch out=": lambda: aten.convolution.out(xdt, wdt, *conv, out=ydt),
        })
    return cases


def fresh(rounds, mmap_every_call, target=0.002):
    """Prints one-shot vs out= vs plan times (the `--fresh` table)."""
    if mmap_every_call:
        # glibc: every block of 128 KiB or more its own mmap, unmapped on free, so that each
        # one-shot call writes into pages the kernel has to fault in (what a process gets when
        # the allocator has no freed block of the size at hand); for the rest of the process
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    try:
        import torch
    except ImportError:
        torch = None
    print("malloc:", "a new mmap per large block (fresh pages)" if mmap_every_call
          else "glibc default (freed blocks reused after the first calls)")
    if torch is None:
        _fresh_table(rounds, target, None)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(cconv.get_num_threads())
    try:
        with torch.no_grad():
            _fresh_table(rounds, target, torch)
    finally:
        torch.set_num_threads(threads)


def _fresh_table(rounds, target, torch):
    for name, ways in _fresh_cases(torch).items():
        for f in ways.values():
            f()
        calls = {w: max(1, int(target / max(best(f, 3), 1e-7))) for w, f in ways.items()}
        t = {w: float("inf") for w in ways}
        for _ in range(rounds):
            for w, f in ways.items():
                t[w] = min(t[w], best(f, calls[w]))
        ref = t["cconv out="]
        for w in ways:
            print(f"{name:32s} {w:18s} {t[w] * 1e3:8.3f} ms {t[w] / ref:6.2f} x cconv out=")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated: " + ", ".join(KERNELS))
    ap.add_argument("--offsets", default=",".join(map(str, OFFSETS)))
    ap.add_argument("--isa", default=None, help="avx512, avx2 or generic (default: the best)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base", type=int, default=0, help="the input's offset from a page (bytes)")
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--target", type=float, default=0.002,
                    help="seconds per sample (short calls are looped); shorter samples with "
                         "more rounds find the quiet moments of a busy machine")
    ap.add_argument("--fresh", action="store_true",
                    help="instead: one-shot calls (new output) vs out= vs plans, cconv and torch")
    ap.add_argument("--mmap", action="store_true",
                    help="with --fresh: every large block a new mmap (fresh pages each call)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time, not the wall clock (1 thread only: "
                         "for a busy machine, where calls are preempted)")
    args = ap.parse_args(argv)
    if args.cpu_time:
        if args.threads != 1:
            ap.error("--cpu-time needs --threads 1 (CPU time adds up the threads)")
        CLOCK[0] = time.process_time
    offsets = [int(o) for o in args.offsets.split(",")]
    if args.isa:
        cconv.set_isa(args.isa)
    cconv.set_num_threads(args.threads)
    print(f"isa {cconv.get_isa()}, {args.threads} threads, best of {args.rounds} rounds, "
          + ("CPU time" if args.cpu_time else "wall clock"))
    if args.fresh:
        fresh(args.rounds, args.mmap, args.target)
        return
    print(f"{'kernel':14s} {'offset':>6s} {'ms':>8s} {'copy ms':>8s} {'x copy':>7s} {'x best':>7s}")
    for name in args.kernels.split(","):
        times = measure(name, offsets, args.rounds, args.base, args.target)
        fastest = min(t for t, _ in times.values())
        for off in offsets:
            t, c = times[off]
            print(f"{name:14s} {off:6d} {t * 1e3:8.3f} {c * 1e3:8.3f} {t / c:7.2f} {t / fastest:7.2f}")


if __name__ == "__main__":
    main()
