"""Build of cconv's extension: one Cython module (cconv._core) plus the C core.

Portable by construction: no -march=native. The ISA kernels (src/cconv/_c/kernels/isa_*.c) are
compiled each with its own target flags and chosen at run time from the CPU's features; the x86
ones only when the target is x86-64. OpenMP: CCONV_OPENMP=auto (default: used when the compiler
builds and links an OpenMP program, else the build is single-threaded), 1 (required: the build
fails without it; release wheels for Linux) or 0 (serial). docs/packaging.md has the details.
"""
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CDIR = os.path.join("src", "cconv", "_c")


def target_machine():
    """The CPU the extension is compiled for. Usually the host's, but a cross-compile names its
    target: on macOS ARCHFLAGS ("-arch arm64", which cibuildwheel sets), elsewhere
    _PYTHON_HOST_PLATFORM, which sysconfig.get_platform() reports."""
    words = os.environ.get("ARCHFLAGS", "").split()
    archs = {b for a, b in zip(words, words[1:]) if a == "-arch"}
    plat = sysconfig.get_platform()
    if not archs and plat.endswith("universal2"):
        archs = {"arm64", "x86_64"}
    if len(archs) > 1:
        # One compile for several targets cannot give the x86 kernel files their -mavx flags.
        sys.exit(f"cconv builds for one architecture at a time, not {' + '.join(sorted(archs))}: "
                 f"set ARCHFLAGS='-arch {platform.machine()}' (or another single -arch)")
    return (archs.pop() if archs else plat.rsplit("-", 1)[-1]).lower()


# Per-ISA kernel files and the flags only they are compiled with. All but the generic one are for
# x86-64 targets only: internal.h's CCONV_X86 names them in the dispatch table there alone.
GENERIC_KERNEL = os.path.join(CDIR, "kernels", "isa_generic.c")
ISA_KERNELS = {
    GENERIC_KERNEL: [],
    os.path.join(CDIR, "kernels", "isa_avx2.c"): ["-mavx2", "-mfma"],
    os.path.join(CDIR, "kernels", "isa_avx512.c"): ["-mavx512f", "-mavx2", "-mfma"],
}


def target_kernels():
    """The ISA kernel files (with their flags) that this build's target compiles."""
    if target_machine() in ("x86_64", "amd64"):
        return ISA_KERNELS
    return {GENERIC_KERNEL: ISA_KERNELS[GENERIC_KERNEL]}

COMMON_FLAGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unknown-pragmas",
                "-Wno-unused-function"]
LINK_FLAGS = []

# CCONV_SANITIZE=address,undefined builds every C file (ISA kernels and the Cython module
# included) with those sanitizers; no recovery, so the first report aborts the process and fails
# a test run. docs/checks.md says how to run the tests against such a build. -O1 and -g1 (line
# tables, enough for the reports' stack traces): with -g, GCC's variable tracking alone takes
# the instrumented AVX-512 kernel file from under a minute to about eight.
SANITIZE = os.environ.get("CCONV_SANITIZE", "").strip()
if SANITIZE:
    COMMON_FLAGS = (["-O1", "-g1", f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer",
                     "-fno-sanitize-recover=all"] + COMMON_FLAGS[1:])
    LINK_FLAGS = [f"-fsanitize={SANITIZE}"]

# CCONV_ALLOC_GUARD=1 builds the C core's allocator (src/cconv/_c/alloc.c) in its guard mode: every
# block poisoned with NaN and ending at a PROT_NONE page, for tests (docs/checks.md).
if os.environ.get("CCONV_ALLOC_GUARD", "").strip() not in ("", "0"):
    COMMON_FLAGS = COMMON_FLAGS + ["-DCCONV_ALLOC_GUARD"]


def openmp_flags(compiler):
    """-fopenmp if this compiler builds and links OpenMP code, else [] (serial build); CCONV_OPENMP
    (auto, 1 or 0) may require it or turn it off. The probe is compiled and linked as the extension
    is, with the compiler's and linker's full commands, so CFLAGS, CPPFLAGS, LDFLAGS and macOS's
    -arch flags count (e.g. where to find a separately installed libomp)."""
    mode = os.environ.get("CCONV_OPENMP", "auto").strip().lower() or "auto"
    if mode not in ("auto", "1", "0"):
        sys.exit(f"CCONV_OPENMP must be auto, 1 or 0, got {mode!r}")
    if mode == "0":
        return []
    cc = list(getattr(compiler, "compiler_so", ["cc"]))
    ld = list(getattr(compiler, "linker_so", cc + ["-shared"]))
    why = ""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, lib = (os.path.join(tmp, n) for n in ("probe.c", "probe.o", "probe.so"))
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint probe(void) { return omp_get_max_threads(); }\n")
        for cmd in (cc + ["-fopenmp", "-c", src, "-o", obj], ld + ["-fopenmp", obj, "-o", lib]):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as e:
                why = f"{cmd[0]}: {e}"
                break
            if r.returncode != 0:
                why = r.stderr.strip() or f"{cmd[0]} exited with status {r.returncode}"
                break
    if why and mode == "1":
        sys.exit(f"CCONV_OPENMP=1 but {cc[0]} cannot build OpenMP code:\n{why}")
    return [] if why else ["-fopenmp"]


class BuildExt(build_ext):
    def build_extensions(self):
        # Ship the public header inside the package (cconv.get_include()).
        inc = os.path.join(HERE, "src", "cconv", "include")
        os.makedirs(inc, exist_ok=True)
        shutil.copy(os.path.join(HERE, "include", "cconv.h"), inc)
        if self.build_lib and not self.inplace:
            dst = os.path.join(self.build_lib, "cconv", "include")
            os.makedirs(dst, exist_ok=True)
            shutil.copy(os.path.join(HERE, "include", "cconv.h"), dst)
        omp = openmp_flags(self.compiler)
        kernels = target_kernels()
        print(f"cconv: OpenMP {'on' if omp else 'off'}; ISA kernels: "
              + ", ".join(os.path.basename(k) for k in kernels))
        for ext in self.extensions:
            ext.extra_compile_args = COMMON_FLAGS + omp
            ext.extra_link_args = LINK_FLAGS + omp

            def compile_isa(item, ext=ext):
                src, flags = item
                return self.compiler.compile(
                    [src], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                    extra_postargs=COMMON_FLAGS + omp + flags)

            # The ISA kernel files are the long compiles: one process each, side by side.
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                ext.extra_objects = [o for objs in pool.map(compile_isa, kernels.items())
                                     for o in objs]
        super().build_extensions()


C_SOURCES = [os.path.join(CDIR, f) for f in ("alloc.c", "cpu.c", "input_grad.c", "plan.c", "reference.c",
                                                 "shuffle.c")]

ext = Extension(
    "cconv._core",
    sources=[os.path.join("src", "cconv", "_core.pyx")] + C_SOURCES,
    include_dirs=["include", CDIR, np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    depends=[os.path.join(CDIR, f) for f in ("internal.h", "padmap.h", "execute.inc", "depthwise.inc",
                                                "winograd.inc", "gradw.inc")]
    + [os.path.join(CDIR, "kernels", f) for f in ("kernels.inc", "dtype.inc", "tile.inc", "depthwise.inc",
                                                           "winograd.inc", "gradw.inc", "gwtile.inc")]
    + list(ISA_KERNELS) + ["include/cconv.h"],
)

setup(
    ext_modules=cythonize([ext], language_level=3),
    cmdclass={"build_ext": BuildExt},
)
