"""Every kernel of every ISA table this CPU runs, called directly and checked against a plain loop.

The checks are C (tests/ukernels/tester.c, compiled here into a shared library whose references to
the kernel tables resolve against the loaded extension); each test runs one family of kernels of
one ISA on both dtypes, and a failure shows the tester's report: kernel, dtype, parameters, index,
got and want.
"""

import ctypes
import os
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

import cconv
from cconv import _core

ROOT = Path(__file__).resolve().parents[1]
TESTER = ROOT / "tests" / "ukernels" / "tester.c"
INCLUDES = [ROOT / "include", ROOT / "src" / "cconv" / "_c"]

# The tester's families (cconv_ukernel_family lists them; test_families checks the two agree).
FAMILIES = [
    "gemm", "gemm_store", "dw_cf", "dw_cf_3x3", "dw_direct", "dw_cl", "dw_expand", "pw_band", "pw_cf",
    "copy", "winograd", "gw_tile", "gw_dw", "fma_loop", "act", "cfd",
]

def _compiler():
    for cand in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(shlex.split(cand)[0]):
            return shlex.split(cand)
    return None


@pytest.fixture(scope="module")
def tester(tmp_path_factory):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler found ($CC, Python's CC, cc, gcc, clang): the microkernel tester "
                    "is compiled at test time")
    missing = [p for p in [TESTER, *INCLUDES] if not p.exists()]
    if missing:
        pytest.skip(f"the microkernel tester needs the source tree: {missing[0]} not found")
    lib = tmp_path_factory.mktemp("ukernels") / "cconv_ukernel_test.so"
    cmd = [*cc, "-O2", "-shared", "-fPIC", *(f"-I{p}" for p in INCLUDES), str(TESTER), "-o", str(lib)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{shlex.join(cmd)} failed:\n{res.stderr}"
    # The tester references the tables (cconv_isa_avx512, ...) of the extension Python already
    # loaded; promote that to global symbol scope so they resolve to the same objects.
    ctypes.CDLL(_core.__file__, mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD)
    try:
        t = ctypes.CDLL(str(lib))
    except OSError as e:
        pytest.fail(f"the tester does not link against {_core.__file__} (are the cconv_isa_* tables "
                    f"still exported?): {e}")
    t.cconv_ukernel_test.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_long),
                                     ctypes.c_char_p, ctypes.c_size_t]
    t.cconv_ukernel_test.restype = ctypes.c_int
    t.cconv_ukernel_family.argtypes = [ctypes.c_int]
    t.cconv_ukernel_family.restype = ctypes.c_char_p
    return t


def _run(tester, isa, family):
    report = ctypes.create_string_buffer(8192)
    checks = ctypes.c_long()
    fails = tester.cconv_ukernel_test(isa.encode(), family.encode(), ctypes.byref(checks), report,
                                      len(report))
    return fails, checks.value, report.value.decode()


def test_families(tester):
    names = []
    while (name := tester.cconv_ukernel_family(len(names))) is not None:
        names.append(name.decode())
    assert names == FAMILIES


def test_bad_arguments(tester):
    assert _run(tester, "no-such-isa", "gemm")[0] == -1
    assert _run(tester, "generic", "no-such-family")[0] == -2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("isa", cconv.available_isas())
def test_ukernels(tester, isa, family):
    fails, checks, report = _run(tester, isa, family)
    assert fails >= 0, report
    if checks == 0 and fails == 0:
        pytest.skip(report.strip())
    assert fails == 0, "\n" + report
