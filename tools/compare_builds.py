"""Compare the speed of two builds of cconv, before against after, case by case.

    python tools/compare_builds.py OLD NEW [--rounds 4] [--quick] [--check] [--output FILE]

OLD and NEW are checkouts with a built extension (src/cconv/_core*.so). Each run is a fresh
`python -m cconv.bench` process with PYTHONPATH=<checkout>/src (cconv only: every
`--no-<library>` option that side's bench knows; the same thread count), its Markdown table read back. The runs alternate OLD, NEW,
OLD, NEW ... group by group, for --rounds rounds, so that both sides see the same machine.
Groups: the suite in float32 NCHW, in NHWC, in float64, and the gradients.

Per case, each side's time is its best (the minimum over the rounds of the bench's median):
a shared host moves single cases by +-10% between processes running identical code, the best
of several processes is what the code can do. ratio = old best / new best (> 1: NEW faster).
--same-process loads both builds into one Python process (each checkout's package copied under
its own name, cconv_old and cconv_new) and alternates their calls case by case (old, new, new,
old, ...), each side's best over the rounds. Both then share the machine's moment, the heap's
state and the OpenMP runtime, which separate processes do not: on a shared host the process
mode moves single cases by 10-20% while this mode agrees with instruction counts.

The acceptance rule (--check makes the exit status 1 when it fails): the geometric mean of the
ratios >= 1.0 and no case below 0.95.
"""
import argparse
import datetime
import glob
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

GROUPS = [   # (label, arguments of python -m cconv.bench)
    ("float32 NCHW", ["--variants", "suite"]),
    ("NHWC", ["--variants", "suite", "--layout", "NHWC"]),
    ("float64", ["--variants", "suite", "--dtype", "float64"]),
    ("grad", ["--variants", "grad"]),
]
MIN_GEOMEAN, MIN_RATIO = 1.0, 0.95


def checkout(path):
    path = os.path.abspath(path)
    if not glob.glob(os.path.join(path, "src", "cconv", "_core*.so")):
        sys.exit(f"{path}: no built extension (src/cconv/_core*.so); build it first with "
                 "`python setup.py build_ext --inplace`")
    return path


def python_in(path, code, cwd):
    """Runs Python code with cconv imported from the checkout `path`."""
    env = dict(os.environ, PYTHONPATH=os.path.join(path, "src"))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def describe(path, cwd):
    """Git revision, the cconv that is imported (it must be the checkout's) and its ISA."""
    rev = subprocess.run(["git", "-C", path, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "not a git checkout"
    out = python_in(path, "import cconv; print(cconv.__file__); print(cconv.get_isa())", cwd)
    module, isa = out.splitlines()
    if not module.startswith(os.path.join(path, "src")):
        sys.exit(f"{path}: cconv is imported from {module}, not from the checkout")
    return rev, isa


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown CPU"
    found = re.search(r"^Model name:\s*(.+)$", out, re.M)
    return found.group(1).strip() if found else "unknown CPU"


def without_anchors(path, cwd):
    """The bench options of this checkout that switch every other library off. Both sides time
    cconv alone: an anchor timed in the same process slows the cconv calls interleaved with it
    (ONNX Runtime, though its pool does not spin between runs: why is not known), on one side
    only when only the newer bench knows that anchor."""
    env = dict(os.environ, PYTHONPATH=os.path.join(path, "src"))
    usage = subprocess.run([sys.executable, "-m", "cconv.bench", "--help"], env=env, cwd=cwd,
                           capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"--no-[a-z]+", usage)))


def bench(path, args, cwd):
    """{case name: seconds} from one `python -m cconv.bench` process (None: the case failed)."""
    md = os.path.join(cwd, "bench.md")
    cmd = [sys.executable, "-m", "cconv.bench", "--markdown", md] + args
    env = dict(os.environ, PYTHONPATH=os.path.join(path, "src"))
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if not os.path.exists(md):
        sys.exit(f"{shlex.join(cmd)} in {path} failed:\n{r.stderr[-2000:]}")
    times = {}
    with open(md) as f:
        rows = [line.split("|")[1:3] for line in f if line.startswith("| ")]
    os.remove(md)
    for name, ms in rows[1:]:   # rows[0] is the head: case, cconv ms
        name, ms = name.strip(), ms.strip()
        times[name] = None if ms.startswith("FAILED") else float(ms) * 1e-3
    return times


SAME_PROCESS = r"""
import json, sys, time, numpy as np, cconv_old, cconv_new
from cconv.bench import cases as C
groups, rounds, threads, target = json.loads(sys.argv[1])
mods = (cconv_old, cconv_new)
for m in mods:
    m.set_num_threads(threads)
best = {}
for group, tokens, dtype, channels_last in groups:
    for case in C.select(tokens):
        x, ws, dy = C.make_inputs(case, dtype, channels_last)
        calls = [C.cconv_callable(m, case, x, ws, dy, channels_last) for m in mods]
        t0 = time.perf_counter(); calls[0](); calls[1]()
        loops = max(1, int(target / max(1e-6, (time.perf_counter() - t0) / 2)))
        times = [[], []]
        for r in range(2 * rounds):
            k = (r + r // 2) % 2                     # old, new, new, old, old, new, ...
            t0 = time.perf_counter()
            for _ in range(loops):
                calls[k]()
            times[k].append((time.perf_counter() - t0) / loops)
        best[group + "|" + case.name] = [min(times[0]), min(times[1])]
        print(case.name, file=sys.stderr, flush=True)
print(json.dumps(best))
"""


def same_process(sides, args, tmp):
    """{(group, case name): [old best, new best]} measured by SAME_PROCESS in one process."""
    pkgs = os.path.join(tmp, "packages")
    for side, path in sides.items():
        shutil.copytree(os.path.join(path, "src", "cconv"), os.path.join(pkgs, "cconv_" + side),
                        ignore=shutil.ignore_patterns("_c", "_core.c", "include", "__pycache__"))
    groups = []
    for label, bench_args in args.groups:
        opts = dict(zip(bench_args[::2], bench_args[1::2]))
        groups.append((label, opts["--variants"].split(","), opts.get("--dtype", "float32"),
                       opts.get("--layout", "NCHW") == "NHWC"))
    env = dict(os.environ, PYTHONPATH=pkgs + os.pathsep + os.path.join(sides["new"], "src"))
    r = subprocess.run([sys.executable, "-c", SAME_PROCESS,
                        json.dumps([groups, args.rounds, args.threads, 0.02 if not args.quick else 0.002])],
                       env=env, cwd=tmp, stdout=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit("the same-process comparison failed (its error is above)")
    return {tuple(k.split("|", 1)): v for k, v in json.loads(r.stdout).items()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="checkout of the old build")
    p.add_argument("new", help="checkout of the new build")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (4; quick 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true",
                   help="a smoke test of a few minutes: the bench's --quick, 2 rounds")
    p.add_argument("--groups", default=",".join(g for g, _ in GROUPS),
                   help="comma list of: " + ", ".join(g for g, _ in GROUPS))
    p.add_argument("--same-process", action="store_true",
                   help="both builds in one process, calls alternated case by case")
    p.add_argument("--check", action="store_true",
                   help=f"exit status 1 when geomean < {MIN_GEOMEAN} or a case < {MIN_RATIO}")
    p.add_argument("--output", metavar="FILE", help="write the report (Markdown) here too")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 4
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    known = dict(GROUPS)
    args.groups = [g.strip() for g in args.groups.split(",")]
    for g in args.groups:
        if g not in known:
            p.error(f"--groups: unknown group {g!r}")
    args.groups = [(g, known[g]) for g in args.groups]
    return args


def report(best, failed, args, info, command, started, load):
    """The Markdown report and whether the rule holds."""
    lines = [
        "# cconv: old build against new build",
        "",
        f"- command: `{command}`",
        f"- started {started:%Y-%m-%d %H:%M} UTC, finished "
        f"{datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; load average {load:.1f} at the "
        f"start, {os.getloadavg()[0]:.1f} at the end (other work on the machine is noise)",
        f"- old: {info['old'][0]} ({args.old}), ISA {info['old'][1]}",
        f"- new: {info['new'][0]} ({args.new}), ISA {info['new'][1]}",
        f"- {args.threads} threads, {args.rounds} alternating rounds, each side's best per case"
        + (", both builds in one process" if args.same_process else "")
        + (", bench --quick" if args.quick else ""),
        "",
        "| group | case | old ms | new ms | old/new |",
        "|---|---|---|---|---|",
    ]
    ratios = {}
    for (group, name), (old, new) in best.items():
        if old is None or new is None:
            lines.append(f"| {group} | {name} | {_ms(old)} | {_ms(new)} | FAILED |")
            continue
        ratios[group, name] = old / new
        lines.append(f"| {group} | {name} | {_ms(old)} | {_ms(new)} | {old / new:.3f} |")
    if not ratios:
        return "\n".join(lines + ["", "no case was measured on both sides"]), False
    groups = {}
    for (group, _), q in ratios.items():
        groups.setdefault(group, []).append(q)
    overall = geomean(ratios.values())
    worst = min(ratios, key=ratios.get)
    slow = [f"{n} [{g}] {q:.3f}" for (g, n), q in sorted(ratios.items(), key=lambda kv: kv[1])
            if q < MIN_RATIO]
    ok = overall >= MIN_GEOMEAN and not slow and not failed
    lines += [
        "",
        f"- geometric mean of old/new: **{overall:.3f}** over {len(ratios)} cases "
        f"(rule: >= {MIN_GEOMEAN}); by group: "
        + ", ".join(f"{g} {geomean(v):.3f}" for g, v in groups.items()),
        f"- minimum: **{ratios[worst]:.3f}** ({worst[1]} [{worst[0]}]) (rule: >= {MIN_RATIO})",
        f"- below {MIN_RATIO}: " + ("; ".join(slow) if slow else "none"),
        "- failed cases: " + ("; ".join(failed) if failed else "none"),
        f"- rule: **{'PASS' if ok else 'FAIL'}**",
    ]
    return "\n".join(lines), ok


def geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _ms(t):
    return "-" if t is None else f"{t * 1e3:.3f}"


def main(argv=None):
    command = shlex.join(["python", "tools/compare_builds.py"] + (argv or sys.argv[1:]))
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()[0]
    sides = {"old": checkout(args.old), "new": checkout(args.new)}
    common = ["--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    best, failed = {}, set()
    with tempfile.TemporaryDirectory() as tmp:   # cwd: no stray cconv next to `python -m`
        info = {side: describe(path, tmp) for side, path in sides.items()}
        alone = {side: without_anchors(path, tmp) for side, path in sides.items()}
        if args.same_process:
            best = same_process(sides, args, tmp)
        for r in range(0 if args.same_process else args.rounds):
            for group, group_args in args.groups:
                for k, side in enumerate(("old", "new")):
                    print(f"round {r + 1}/{args.rounds}, {group}, {side} ...", end="",
                          file=sys.stderr, flush=True)
                    times = bench(sides[side], alone[side] + common + group_args, tmp)
                    print(f" {len(times)} cases", file=sys.stderr, flush=True)
                    for name, t in times.items():
                        pair = best.setdefault((group, name), [None, None])
                        if t is None:
                            failed.add(f"{name} [{group}] ({side})")
                        elif pair[k] is None or t < pair[k]:
                            pair[k] = t
    text, ok = report(best, sorted(failed), args, info, command, started, load)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
