"""The C core's build inputs in one place: which files are compiled, with which flags, and how the
templates are expanded. setup.py imports it; the scripts that compile the core themselves (leak
check, fuzzing, portability, microkernel tests) ask it for the same list:

    python tools/cbuild.py sources GEN_DIR [--isa NAME ...] [--only core|isa]

expands the templates into GEN_DIR and prints one line per file to compile: `path<TAB>flags`.

One templating scheme: a `NAME.c.in` file is C in which `${KEY}` stands for a value of its
instantiation (element type, ISA, tile role). Each instantiation becomes an ordinary C file in the
generated directory, starting with a `#line` directive that points back at the template, so
compiler messages, debuggers and profilers show the template's real lines. Nothing else in the
core is generated, and no C file is included twice.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDIR = os.path.join("src", "cconv", "_c")

# Element types: the `${T}` (C type) and `${SFX}` (name suffix) of a template.
DTYPES = [{"T": "float", "SFX": "f32"}, {"T": "double", "SFX": "f64"}]

# Instruction sets and the flags their kernel files alone are compiled with. All but generic are
# for x86-64 targets only (internal.h's CCONV_X86 names them in the dispatch table there alone).
ISA_FLAGS = {
    "generic": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx2", "-mfma"],
}
X86_ONLY = ("avx2", "avx512")

# The ISA-independent core: plain C files, and templates expanded once per element type.
CORE_SOURCES = [
    "core/alloc.c",
    "core/cpu.c",
    "core/desc.c",
    "core/padding.c",
    "core/plan.c",
    "conv/channel_shuffle.c",
    "conv/depthwise.c",
    "conv/direct_cf.c",
    "conv/flattened.c",
    "conv/gemm.c",
    "conv/passes.c",
    "conv/pointwise_cf.c",
    "conv/reference.c",
    "conv/separable.c",
    "conv/winograd.c",
    "conv/winograd_transposed.c",
    "grad/input_grad.c",
    "grad/weight_grad.c",
]
CORE_TEMPLATES = [
    "conv/band_fill.c.in",
    "conv/depthwise_run.c.in",
    "conv/direct_cf_run.c.in",
    "conv/gemm_pack.c.in",
    "conv/gemm_run.c.in",
    "conv/pointwise_cf_run.c.in",
    "conv/reference_run.c.in",
    "conv/winograd_run.c.in",
    "grad/input_grad_run.c.in",
    "grad/weight_grad_run.c.in",
]

# Per ISA, compiled with that ISA's flags: C files (`${ISA}` in the name) or templates expanded
# once per ISA (the table of its microkernels, config/), and the microkernel templates, expanded
# per ISA and element type and, where roles are given, per tile role (`${ROLE}`: config/<isa>.h
# gives each role's shape).
ISA_SOURCES = ["config/table.c.in"]
_ROLES = ["wide", "mid", "narrow"]
ISA_TEMPLATES = [
    ("ukernels/gemm_tile.c.in", _ROLES + ["cl"]),
    ("ukernels/gw_tile.c.in", _ROLES),
    ("ukernels/dw.c.in", None),
    ("ukernels/pw_band.c.in", None),
    ("ukernels/cfd_tile.c.in", None),
    ("ukernels/wino.c.in", None),
    ("ukernels/gw_dw.c.in", None),
    ("ukernels/copy.c.in", None),
    ("ukernels/fma_loop.c.in", None),
    ("ukernels/act.c.in", None),
]

# Header directories of the core (for every file, generated ones included).
INCLUDE_DIRS = ["include", CDIR]

_KEY = re.compile(r"\$\{(\w+)\}")


def substitute(text, values, where="<text>"):
    """text with every ${KEY} replaced by values[KEY]; an unknown key is an error."""
    def one(m):
        if m.group(1) not in values:
            raise KeyError(f"{where}: ${{{m.group(1)}}} has no value (have {sorted(values)})")
        return str(values[m.group(1)])
    return _KEY.sub(one, text)


def expand(template, values, out_dir):
    """Writes the instantiation of template (a path relative to CDIR) for values into out_dir and
    returns its path. The file is rewritten only when its text changes, so that make-like
    tools and compiler caches see unchanged files as unchanged."""
    src = os.path.join(ROOT, CDIR, template)
    with open(src) as f:
        body = substitute(f.read(), values, template)
    stem = template[: -len(".c.in")]
    suffix = "_".join(str(values[k]) for k in ("ISA", "SFX", "ROLE") if k in values)
    out = os.path.join(out_dir, f"{stem}_{suffix}.c")
    rel = os.path.join(CDIR, template).replace(os.sep, "/")
    text = (f"/* Generated from {rel} by tools/cbuild.py: edit the template, not this file. */\n"
            f'#line 1 "{rel}"\n' + body)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    try:
        with open(out) as f:
            if f.read() == text:
                return out
    except OSError:
        pass
    with open(out, "w") as f:
        f.write(text)
    return out


def target_isas(x86):
    """The ISAs whose kernels a build for an x86-64 target (x86=True) or another one compiles."""
    return [i for i in ISA_FLAGS if x86 or i not in X86_ONLY]


def sources(gen_dir, isas):
    """[(path, extra flags)] of every C file of the core for the given ISAs, templates expanded
    into gen_dir. Paths are absolute."""
    out = [(os.path.join(ROOT, CDIR, f), []) for f in CORE_SOURCES]
    for t in CORE_TEMPLATES:
        out += [(expand(t, dt, gen_dir), []) for dt in DTYPES]
    for isa in isas:
        flags = ISA_FLAGS[isa]
        for f in ISA_SOURCES:
            if f.endswith(".c.in"):
                out.append((expand(f, {"ISA": isa}, gen_dir), flags))
            else:
                out.append((os.path.join(ROOT, CDIR, substitute(f, {"ISA": isa})), flags))
        for t, roles in ISA_TEMPLATES:
            for dt in DTYPES:
                for role in roles or [None]:
                    values = dict(dt, ISA=isa, **({"ROLE": role} if role else {}))
                    out.append((expand(t, values, gen_dir), flags))
    return out


def inputs():
    """Every file the core's objects depend on (sources, templates, headers): a change to any of
    them rebuilds the extension."""
    out = [os.path.join(ROOT, "include", "cconv.h"), os.path.abspath(__file__)]
    for dirpath, _, names in os.walk(os.path.join(ROOT, CDIR)):
        out += [os.path.join(dirpath, n) for n in sorted(names)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sources", help="expand the templates, list every file to compile")
    s.add_argument("gen_dir")
    s.add_argument("--isa", action="append", choices=list(ISA_FLAGS),
                   help="only these ISAs (repeatable; default: every one this machine's target has)")
    s.add_argument("--only", choices=["core", "isa"],
                   help="only the ISA-independent files, or only the ISAs' (scripts that build "
                        "the kernels differently or reuse their objects)")
    args = ap.parse_args(argv)
    import platform
    isas = args.isa or target_isas(platform.machine().lower() in ("x86_64", "amd64"))
    gen_dir = os.path.abspath(args.gen_dir)
    core = sources(gen_dir, [])
    for path, flags in (core if args.only == "core" else sources(gen_dir, isas)):
        if args.only != "isa" or (path, flags) not in core:
            print(f"{path}\t{' '.join(flags)}")


if __name__ == "__main__":
    sys.exit(main())
