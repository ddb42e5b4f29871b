"""Shared pytest configuration for the cconv tests.

* Puts this directory on ``sys.path`` so ``import reference`` / ``import helpers``
  work whatever import mode pytest runs with.
* Hypothesis profiles: ``ci`` (default; small and fast), ``dev`` (quicker still)
  and ``thorough`` (many examples).  Pick one with ``CCONV_HYPOTHESIS_PROFILE``
  or ``pytest --hypothesis-profile=NAME``.
* ``slow`` marker: tests that take minutes or ~10 GB of RAM are skipped unless
  ``pytest --run-slow`` or ``CCONV_RUN_SLOW=1`` is given (CI does not run them).
* ``long`` marker: tests that CI runs but an everyday run need not, as they take
  minutes (the C fuzz corpus replayed through an ASan build): skipped unless
  ``pytest --run-long`` or ``CCONV_RUN_LONG=1`` (set by ``.ci/run``) is given.
* ``CCONV_TEST_NO_TORCH=1`` hides PyTorch for the session (``import torch``
  raises ImportError), to run the suite as on a machine without it: every
  gradient is then checked against the float64 oracle in ``reference.py``
  alone, and only the tests that compare with PyTorch itself skip, saying so.
* ``isa`` fixture: parametrised over every instruction-set path the machine
  supports (``cconv.available_isas()``); tests run their calls inside
  ``helpers.use_isa(isa)``.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

if os.environ.get("CCONV_TEST_NO_TORCH") == "1":
    sys.modules["torch"] = None  # makes every later `import torch` raise ImportError

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the isa fixture is a plain string
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)
# Under CI (CI=true) the examples are derandomized so a run is reproducible; local runs explore.
settings.register_profile("ci", max_examples=40, derandomize=bool(os.environ.get("CI")), **_common)
settings.register_profile("dev", max_examples=8, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.load_profile(os.environ.get("CCONV_HYPOTHESIS_PROFILE", "ci"))


def _isas():
    try:
        import cconv
    except ImportError:
        return ["<cconv not importable>"]
    try:
        names = list(cconv.available_isas())
    except Exception:  # pragma: no cover - older builds
        names = []
    return names or ["default"]


ISAS = _isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Name of one available ISA path; use with ``helpers.use_isa(isa)``."""
    return request.param


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (minutes, ~10 GB of RAM); or set CCONV_RUN_SLOW=1")
    parser.addoption("--run-long", action="store_true", default=False,
                     help="also run tests marked long (minutes; CI runs them); or set CCONV_RUN_LONG=1")


def pytest_collection_modifyitems(config, items):
    for marker in ("slow", "long"):
        if config.getoption(f"--run-{marker}") or os.environ.get(f"CCONV_RUN_{marker.upper()}") == "1":
            continue
        skip = pytest.mark.skip(
            reason=f"{marker} test: run with pytest --run-{marker} or CCONV_RUN_{marker.upper()}=1")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
