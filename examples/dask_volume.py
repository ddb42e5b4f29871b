"""Convolving a 3-D volume larger than the memory a worker may use, with cconv.dask.

    python examples/dask_volume.py                       # 1 GiB volume, 2 workers x 300 MiB
    python examples/dask_volume.py --size 768 --memory-limit 400MiB --workers 2
    python examples/dask_volume.py --overhead            # cconv.dask vs in-memory, a case that fits

The volume is generated lazily on the workers (dask.array.random), smoothed with a 5x5x5
Gaussian (reflect padding, "same" size), then a 3-channel gradient (Sobel-like) is taken; only
reductions come back: the mean, the fraction of strong-edge voxels, and each worker's peak memory.
Needs `pip install cconv[dask]`.
"""
import argparse
import logging
import time

import numpy as np


def gaussian_kernel(size=5, sigma=1.0):
    r = np.arange(size) - size // 2
    g = np.exp(-r**2 / (2 * sigma**2))
    g /= g.sum()
    k = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return k[None, None].astype(np.float32)  # (C_out=1, C_in=1, 5, 5, 5)


def sobel_kernels():
    d, s = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    kz = d[:, None, None] * s[None, :, None] * s[None, None, :]
    ky = s[:, None, None] * d[None, :, None] * s[None, None, :]
    kx = s[:, None, None] * s[None, :, None] * d[None, None, :]
    return np.stack([kz, ky, kx])[:, None].astype(np.float32) / 16  # (3, 1, 3, 3, 3)


def larger_than_memory(args):
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    import cconv.dask as cd

    side = int(round((args.size * 2**20 / 4 / 2) ** (1 / 3)))  # float32, depth = 2 * side
    shape = (1, 1, 2 * side, side, side)
    chunk = args.chunk
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      memory_limit=args.memory_limit, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
        x = da.random.default_rng(0).random(shape, dtype=np.float32,
                                            chunks=(1, 1, chunk, chunk, chunk))
        print(f"volume {shape} float32: {x.nbytes / 2**20:.0f} MiB in {x.npartitions} chunks; "
              f"{args.workers} workers x {limit / 2**20:.0f} MiB memory limit")
        smooth = cd.conv3d(x, gaussian_kernel(), padding="same", padding_mode="reflect")
        grad = cd.conv3d(smooth, sobel_kernels(), padding="same", padding_mode="replicate")
        magnitude = da.sqrt((grad ** 2).sum(axis=1))
        t = time.perf_counter()
        mean, edges = dask.compute(smooth.mean(), (magnitude > 0.05).mean())
        wall = time.perf_counter() - t
        peaks = client.run(lambda dask_worker: max(
            dask_worker.monitor.range_query(start=0)["memory"]))
        print(f"smoothed mean {float(mean):.5f}, strong-edge fraction {float(edges):.5f}, "
              f"{wall:.1f} s")
        print("peak worker memory: " + ", ".join(f"{v / 2**20:.0f} MiB" for v in peaks.values()))


def _best(fn, repeat, clock=time.perf_counter):
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def overhead(args):
    """Time the in-memory call and cconv.dask (threaded scheduler) on arrays that fit; the
    compute includes assembling the result into one NumPy array."""
    import os

    import dask
    import dask.array as da

    import cconv
    import cconv.dask as cd

    rng = np.random.default_rng(0)
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cases = [
        ("conv2d 3x3 same", cconv.conv2d, cd.conv2d,
         rng.random((8, 32, 256, 256), dtype=np.float32),
         [rng.random((64, 32, 3, 3), dtype=np.float32)], dict(padding="same"),
         [(1, 32, 256, 256), (1, 32, 128, 128)]),
        ("conv3d 3x3x3 same reflect", cconv.conv3d, cd.conv3d,
         rng.random((1, 8, 128, 128, 128), dtype=np.float32),
         [rng.random((16, 8, 3, 3, 3), dtype=np.float32)], dict(padding="same",
                                                               padding_mode="reflect"),
         [(1, 8, 64, 128, 128), (1, 8, 64, 64, 64)]),
        ("depthwise 5x5 stride 2", cconv.depthwise_conv2d, cd.depthwise_conv2d,
         rng.random((4, 64, 256, 256), dtype=np.float32),
         [rng.random((64, 1, 5, 5), dtype=np.float32)], dict(padding="same", stride=2),
         [(1, 64, 256, 256), (1, 64, 128, 128)]),
    ]
    print(f"{ncpu} CPUs, best of {args.repeat}. parallel (wall time): in-memory with {ncpu} cconv "
          f"threads vs the threaded scheduler ({ncpu} workers x 1 cconv thread); serial (CPU time "
          f"of the process, robust to other load): in-memory with 1 thread vs the synchronous "
          f"scheduler")
    for title, mem_fn, dask_fn, x, ws, kw, chunkings in cases:
        for mode, threads, scheduler, clock in (("parallel", ncpu, "threads", time.perf_counter),
                                                ("serial", 1, "sync", time.process_time)):
            cconv.set_num_threads(threads)
            mem = _best(lambda: mem_fn(x, *ws, **kw), args.repeat, clock)
            line = f"{title} x {x.shape} {mode:8s}: in-memory {mem * 1e3:6.0f} ms"
            for chunks in chunkings:
                y = dask_fn(da.from_array(x, chunks=chunks), *ws, **kw)
                with dask.config.set(scheduler=scheduler, num_workers=ncpu):
                    t = _best(lambda: y.compute(), args.repeat, clock)
                line += f" | chunks {chunks[2:]}: {t * 1e3:6.0f} ms ({(t / mem - 1) * 100:+.0f}%)"
            print(line)
    cconv.set_num_threads(0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=float, default=1024, help="volume size in MiB (default 1024)")
    p.add_argument("--chunk", type=int, default=128, help="chunk side in voxels (default 128)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="300MiB", help="per worker (default 300MiB)")
    p.add_argument("--overhead", action="store_true", help="measure cconv.dask vs in-memory")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if args.overhead:
        overhead(args)
    else:
        larger_than_memory(args)


if __name__ == "__main__":
    main()
