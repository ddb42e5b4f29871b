"""Depthwise-family comparison: cconv vs torch (same process, 2 threads, interleaved medians), with
the bandwidth of a plain copy of the same bytes measured in the same run.

    PYTHONPATH=src python asv_bench/compare_depthwise_family.py [all|dw|nhwc|other]   (REPS=15)

GB/s counts one read of the input and one write of the output; "% copy" compares it with a
copy of the same number of bytes (read + write): the faster of np.copyto and torch's 2-thread
Tensor.copy_ (medians)."""
import sys, time, numpy as np, torch, torch.nn.functional as F, cconv
torch.set_num_threads(2); cconv.set_num_threads(2)
rng = np.random.default_rng(0)
def med(fns, reps=int(__import__('os').environ.get('REPS', 15))):
    ts = [[] for _ in fns]
    for _ in range(reps):
        for i, f in enumerate(fns):
            t0 = time.perf_counter(); f(); ts[i].append(time.perf_counter() - t0)
    return [np.median(t) for t in ts]
rows = []
def case(name, cc, tt, nbytes):
    buf_a = np.empty(nbytes // 4, np.float32); buf_b = np.ones_like(buf_a)
    ta, tb = torch.from_numpy(buf_a), torch.from_numpy(buf_b)
    cc(); tt()
    # the copy: the faster median of np.copyto (1 thread) and torch's parallel copy_
    c, t, cp, cp2 = med([cc, tt, lambda: np.copyto(buf_a, buf_b), lambda: ta.copy_(tb)])
    cp = min(cp, cp2)
    gbs = nbytes * 2 / c / 1e9 if nbytes else 0
    cbw = nbytes * 2 / cp / 1e9
    print(f"| {name} | {c*1e3:.3f} | {t*1e3:.3f} | {t/c:.2f} | {gbs:.1f} | {100*gbs/cbw:.0f}% |", flush=True)
    rows.append(t / c)
def dw(N, C, H, k=3, s=1, m=1, dt=np.float32, nhwc=False, d=1, out=False):
    """out=True: both write into preallocated outputs (like the copy), so that a fresh output's
    first-touch page faults (~9 ms for 58 MB here, the same for both) are not timed."""
    x = rng.standard_normal((N, C, H, H)).astype(dt); w = rng.standard_normal((C*m, 1, k, k)).astype(dt)
    p = d * (k // 2)
    tx, tw = torch.tensor(x), torch.tensor(w)
    tt = lambda: F.conv2d(tx, tw, stride=s, padding=p, dilation=d, groups=C)
    if out:
        y = cconv.depthwise_conv2d(x, w, stride=s, padding=p, dilation=d); ty = torch.empty(y.shape, dtype=tx.dtype)
        cc = lambda: cconv.depthwise_conv2d(x, w, stride=s, padding=p, dilation=d, out=y)
        tt = lambda: torch.ops.aten.convolution.out(tx, tw, None, [s, s], [p, p], [d, d], False, [0, 0], C, out=ty)
    elif nhwc:
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)); tx = tx.contiguous(memory_format=torch.channels_last)
        cc = lambda: cconv.depthwise_conv2d(xl, w, stride=s, padding=p, dilation=d, layout="NHWC")
    else:
        cc = lambda: cconv.depthwise_conv2d(x, w, stride=s, padding=p, dilation=d)
    Ho = (H + 2*p - d*(k-1) - 1)//s + 1
    nb = x.nbytes + N*C*m*Ho*Ho*x.itemsize
    case(f"depthwise {k}x{k} s{s} d{d} m{m} N{N} C{C} {H} {'NHWC' if nhwc else 'NCHW'} {np.dtype(dt).name}{' out=' if out else ''}", cc, tt, nb // 2)
def sep(N, C, Co, H, s=1, nhwc=False):
    x = rng.standard_normal((N, C, H, H)).astype(np.float32); w = rng.standard_normal((C, 1, 3, 3)).astype(np.float32)
    pw = rng.standard_normal((Co, C, 1, 1)).astype(np.float32)
    tx, tw, tp = torch.tensor(x), torch.tensor(w), torch.tensor(pw)
    cc = lambda: cconv.separable_conv2d(x, w, pw, stride=s, padding=1)
    tt = lambda: F.conv2d(F.conv2d(tx, tw, stride=s, padding=1, groups=C), tp)
    Ho = (H - 1)//s + 1
    case(f"separable 3x3 s{s} N{N} {C}->{Co} {H}", cc, tt, (x.nbytes + N*Co*Ho*Ho*4)//2)
def grouped(N, C, Co, H, k, g):
    x = rng.standard_normal((N, C, H, H)).astype(np.float32); w = rng.standard_normal((Co, C//g, k, k)).astype(np.float32)
    tx, tw = torch.tensor(x), torch.tensor(w)
    case(f"grouped {k}x{k} g{g} N{N} {C}->{Co} {H}", lambda: cconv.conv2d(x, w, padding=k//2, groups=g),
         lambda: F.conv2d(tx, tw, padding=k//2, groups=g), (x.nbytes + N*Co*H*H*4)//2)
def shuffled(N, C, Co, H, k, g):
    x = rng.standard_normal((N, C, H, H)).astype(np.float32); w = rng.standard_normal((Co, C//g, k, k)).astype(np.float32)
    tx, tw = torch.tensor(x), torch.tensor(w)
    case(f"shuffled grouped {k}x{k} g{g} N{N} {C}->{Co} {H}", lambda: cconv.shuffled_grouped_conv2d(x, w, g, padding=k//2),
         lambda: F.channel_shuffle(F.conv2d(tx, tw, padding=k//2, groups=g), g), (x.nbytes + N*Co*H*H*4)//2)
def shuffle(N, C, H, g):
    x = rng.standard_normal((N, C, H, H)).astype(np.float32); tx = torch.tensor(x)
    case(f"channel shuffle g{g} N{N} {C}x{H}x{H}", lambda: cconv.channel_shuffle(x, g), lambda: F.channel_shuffle(tx, g), x.nbytes)
which = sys.argv[1] if len(sys.argv) > 1 else "all"
print("| case | cconv ms | torch ms | ratio | GB/s | % copy |\n|---|---|---|---|---|---|")
if which in ("all", "dw"):
    dw(8, 144, 56); dw(8, 144, 56, s=2); dw(1, 144, 56); dw(1, 144, 56, s=2)
    dw(8, 96, 112); dw(8, 144, 56, k=5); dw(8, 144, 56, k=7); dw(8, 64, 56, m=2); dw(8, 144, 56, d=2)
    dw(8, 144, 56, dt=np.float64)
    # out of cache (115 MB and 72 MB; a 32 MiB L3 here): one-shot, then into preallocated outputs
    dw(32, 144, 56); dw(32, 144, 56, s=2); dw(32, 144, 56, out=True); dw(32, 144, 56, s=2, out=True)
if which in ("all", "nhwc"):
    dw(8, 144, 56, nhwc=True); dw(8, 144, 56, s=2, nhwc=True); dw(1, 144, 56, nhwc=True); dw(8, 64, 56, m=2, nhwc=True); dw(8, 144, 56, nhwc=True, dt=np.float64)
if which in ("all", "other"):
    grouped(8, 240, 240, 28, 1, 3); grouped(8, 128, 128, 56, 3, 32); grouped(1, 128, 128, 56, 3, 32); shuffled(8, 128, 128, 56, 3, 32); shuffle(8, 64, 56, 4); shuffle(8, 240, 28, 3)
    sep(8, 144, 144, 56); sep(1, 144, 144, 56); sep(8, 256, 256, 28)
print("geomean ratio", np.exp(np.mean(np.log(rows))))
