"""Build of cconv's extension: one Cython module (cconv._core) plus the C core.

Portable by construction: no -march=native. The ISA kernels (tools/cbuild.py lists every C file) are
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
sys.path.insert(0, os.path.join(HERE, "tools"))
import cbuild  # noqa: E402  (the C core's file list, flags and templates)


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


def target_isas():
    """The ISAs whose kernels this build's target compiles (tools/cbuild.py has the list)."""
    return cbuild.target_isas(target_machine() in ("x86_64", "amd64"))

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

# CCONV_ALLOC_GUARD=1 builds the C core's allocator (src/cconv/_c/core/alloc.c) in its guard mode: every
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
        isas = target_isas()
        print(f"cconv: OpenMP {'on' if omp else 'off'}; ISA kernels: {', '.join(isas)}")
        files = cbuild.sources(os.path.join(self.build_temp, "gen"), isas)
        for ext in self.extensions:
            ext.extra_compile_args = COMMON_FLAGS + omp
            ext.extra_link_args = LINK_FLAGS + omp

            def compile_c(item, ext=ext):
                src, flags = item
                return self.compiler.compile(
                    [src], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                    extra_postargs=COMMON_FLAGS + omp + flags)

            # The C files compile one process each, side by side (the ISA kernels are long).
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                ext.extra_objects = [o for objs in pool.map(compile_c, files) for o in objs]
        super().build_extensions()


ext = Extension(
    "cconv._core",
    sources=[os.path.join("src", "cconv", "_core.pyx")],
    include_dirs=cbuild.INCLUDE_DIRS + [np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    depends=cbuild.inputs(),
)

setup(
    ext_modules=cythonize([ext], language_level=3),
    cmdclass={"build_ext": BuildExt},
)
