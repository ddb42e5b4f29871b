"""Instructions two builds of cconv execute for the same calls, counted by valgrind's callgrind:
a speed comparison that a shared, noisy host cannot blur (compare_builds.py times them).

    python tools/compare_instructions.py OLD NEW [--isa avx2] [--cases a,b,...]

OLD and NEW are checkouts with a built extension. Each case plans and runs its call twice on one
thread, in its own process per build, under callgrind with counting switched on only inside
cconv's C entry points (plan creation, execution, weight gradient). valgrind cannot execute
AVX-512, so the AVX2 kernels (or generic) are what is counted. Prints one Markdown row per case:
old and new instruction counts and the change.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# name: (call, arrays); each call reads x, w (and g) from the arrays made below.
CASES = {
    "dense3x3": ("cconv.conv2d(x, w, padding=1)", [(4, 64, 28, 28), (64, 64, 3, 3)]),
    "dense3x3_gemm": ("cconv.conv2d(x, w, padding=1, algorithm='gemm')", [(4, 64, 28, 28), (64, 64, 3, 3)]),
    "dense3x3_s2_f64": ("cconv.conv2d(x.astype('f8'), w.astype('f8'), stride=2, padding=1)",
                        [(4, 128, 28, 28), (256, 128, 3, 3)]),
    "dilated_d4": ("cconv.conv2d(x, w, padding=4, dilation=4)", [(2, 128, 32, 32), (128, 128, 3, 3)]),
    "depthwise3x3": ("cconv.conv2d(x, w, padding=1, groups=144)", [(4, 144, 28, 28), (144, 1, 3, 3)]),
    "depthwise3x3_s2": ("cconv.conv2d(x, w, stride=2, padding=1, groups=144)", [(4, 144, 28, 28), (144, 1, 3, 3)]),
    "pointwise": ("cconv.conv2d(x, w)", [(4, 256, 28, 28), (64, 256, 1, 1)]),
    "pointwise_nhwc": ("cconv.conv2d(x, w, layout='NHWC')", [(4, 28, 28, 256), (64, 256, 1, 1)]),
    "pointwise_g3_nhwc": ("cconv.conv2d(x, w, groups=3, layout='NHWC')", [(4, 28, 28, 240), (240, 80, 1, 1)]),
    "stem7x7": ("cconv.conv2d(x, w, stride=2, padding=3)", [(1, 3, 112, 112), (64, 3, 7, 7)]),
    "grouped_g32": ("cconv.conv2d(x, w, padding=1, groups=32)", [(4, 128, 28, 28), (128, 4, 3, 3)]),
    "transposed4x4_s2": ("cconv.conv_transpose2d(x, w, stride=2, padding=1)", [(4, 128, 16, 16), (128, 64, 4, 4)]),
    "weight_grad_g32": ("cconv.grad.conv2d_weight(x, w.shape, g, padding=1, groups=32)",
                        [(4, 128, 28, 28), (128, 4, 3, 3), (4, 128, 28, 28)]),
    "weight_grad_dense": ("cconv.grad.conv2d_weight(x, w.shape, g, padding=1)",
                          [(4, 64, 28, 28), (64, 64, 3, 3), (4, 64, 28, 28)]),
}
ENTRY_POINTS = ["cconv_plan_create", "cconv_plan_execute", "cconv_conv_weight_grad"]

SCRIPT = """
import numpy as np
import cconv, cconv.grad
cconv.set_num_threads(1)
rng = np.random.default_rng(0)
x, w, g = [rng.standard_normal(s).astype(np.float32) for s in {shapes}] + [None] * (3 - len({shapes}))
for _ in range(2):
    {call}
"""


def count(checkout, case, isa, tmp):
    call, shapes = CASES[case]
    script = os.path.join(tmp, f"{case}.py")
    with open(script, "w") as f:
        f.write(SCRIPT.format(shapes=shapes, call=call))
    out = os.path.join(tmp, "callgrind.out")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.abspath(checkout), "src"), CCONV_ISA=isa,
               OMP_NUM_THREADS="1")
    # Superblocks of at most 30 instructions, as tests/leaks/run.sh: at the default 60, valgrind
    # cannot translate the AVX2 direct depthwise kernel's unrolled 5x5 stride-2 loop. The counts
    # are per guest instruction, the same either way.
    cmd = ["valgrind", "--tool=callgrind", "--vex-guest-max-insns=30", f"--callgrind-out-file={out}",
           "--collect-atstart=no"]
    cmd += [f"--toggle-collect={e}" for e in ENTRY_POINTS] + [sys.executable, script]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return int(re.search(r"^totals: (\d+)", f.read(), re.M).group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--isa", default="avx2", choices=["avx2", "generic"])
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of: " + ", ".join(CASES))
    args = ap.parse_args(argv)
    print(f"| case | old instructions | new instructions | change |  (ISA {args.isa}, 1 thread)")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            old, new = count(args.old, case, args.isa, tmp), count(args.new, case, args.isa, tmp)
            print(f"| {case} | {old:,} | {new:,} | {100 * (new / old - 1):+.2f}% |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
