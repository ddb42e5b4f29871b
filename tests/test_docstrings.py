"""Every public name has a numpydoc docstring (Parameters, Returns or Yields, Examples), and the
Examples run: the doctests of the public modules pass, so `pytest` checks the documentation."""
import doctest
import importlib
import inspect
import re

import pytest

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")

SUBMODULES = ("cconv.grad", "cconv.decompose", "cconv.analysis")
DOCTEST_MODULES = ("cconv", "cconv._functions") + SUBMODULES


def _public(module_name):
    """(qualified name, object) for each callable in the module's __all__."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj):
            yield f"{module_name}.{name}", obj


PUBLIC = [item for m in ("cconv",) + SUBMODULES for item in _public(m)]
PUBLIC += [(f"cconv.ConvPlan.{m}", getattr(cconv.ConvPlan, m)) for m in ("__call__",)]


def _sections(obj):
    doc = inspect.getdoc(obj) or ""
    return set(re.findall(r"^(\w[\w ]*)\n-{3,}$", doc, re.M))


def _has_parameters(func):
    params = list(inspect.signature(func).parameters)
    return bool(params[1:] if params[:1] == ["self"] else params)


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_numpydoc_sections(name, obj):
    sections = _sections(obj)
    missing = []
    if inspect.isclass(obj):
        if not sections & {"Parameters", "Attributes"}:
            missing.append("Parameters or Attributes")
    else:
        if _has_parameters(obj) and "Parameters" not in sections:
            missing.append("Parameters")
        if not sections & {"Returns", "Yields"}:
            missing.append("Returns or Yields")
    if "Examples" not in sections:
        missing.append("Examples")
    assert not missing, f"{name}: docstring lacks {', '.join(missing)} (has {sorted(sections)})"


def test_sections_are_found():
    # the check above must be able to fail: a docstring without sections has none
    def undocumented(x):
        """Summary only."""
    assert _sections(undocumented) == set()
    assert {"Parameters", "Returns", "Examples"} <= _sections(cconv.conv2d)


@pytest.mark.parametrize("module_name", DOCTEST_MODULES + ("cconv.dask",))
def test_doctests(module_name):
    if module_name == "cconv.dask":
        pytest.importorskip("dask.array", reason="cconv.dask needs dask")
    module = importlib.import_module(module_name)
    isa, threads = cconv.get_isa(), cconv.get_num_threads()
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted > 0, f"{module_name} has no doctests"
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {module_name}"
    # the examples of set_isa / set_num_threads put the process-wide settings back
    assert cconv.get_isa() == isa
    assert cconv.get_num_threads() == threads
