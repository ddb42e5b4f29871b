"""Build of cconv's extension: one Cython module (cconv._core) plus the C core.

Portable by construction: no -march=native. The ISA kernels (src/cconv/_c/kernels/isa_*.c) are
compiled each with its own target flags and chosen at run time from the CPU's features. OpenMP is
used when the compiler supports it; otherwise the build is single-threaded.
"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CDIR = os.path.join("src", "cconv", "_c")
X86 = platform.machine().lower() in ("x86_64", "amd64")

# Per-ISA kernel files and the flags only they are compiled with.
ISA_KERNELS = {os.path.join(CDIR, "kernels", "isa_generic.c"): []}
if X86:
    ISA_KERNELS[os.path.join(CDIR, "kernels", "isa_avx2.c")] = ["-mavx2", "-mfma"]
    ISA_KERNELS[os.path.join(CDIR, "kernels", "isa_avx512.c")] = ["-mavx512f", "-mavx2", "-mfma"]

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
    """-fopenmp if this compiler builds and links an OpenMP program, else [] (serial build)."""
    if os.environ.get("CCONV_NO_OPENMP"):
        return []
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
    cc = compiler.compiler_so[0] if hasattr(compiler, "compiler_so") else "cc"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        try:
            r = subprocess.run([cc, "-fopenmp", path, "-o", os.path.join(tmp, "t")],
                               capture_output=True)
        except OSError:
            return []
        return ["-fopenmp"] if r.returncode == 0 else []


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
        print(f"cconv: OpenMP {'on' if omp else 'off'}; ISA kernels: "
              + ", ".join(os.path.basename(k) for k in ISA_KERNELS))
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
                ext.extra_objects = [o for objs in pool.map(compile_isa, ISA_KERNELS.items())
                                     for o in objs]
        super().build_extensions()


C_SOURCES = [os.path.join(CDIR, f) for f in ("alloc.c", "cpu.c", "plan.c", "reference.c", "shuffle.c")]

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
