"""The bitwise corpus (tools/check_corpus.py): every case gives the bits saved in
tests/data/corpus_main.json.

Bitwise equality is expected only on the kind of machine and build the corpus was saved with (its
ISA set, compiler, sanitizers, NumPy feature release): elsewhere these tests skip and say why.
By default one ISA (the best recorded one available) with one thread; the slow test checks every
ISA and thread count.
"""
import importlib.util
import io
import json
import os

import pytest

import cconv
import cconv.grad
from cconv import _functions

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "data", "corpus_main.json")
_spec = importlib.util.spec_from_file_location(
    "check_corpus", os.path.join(os.path.dirname(HERE), "tools", "check_corpus.py"))
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="module")
def doc():
    d = corpus.load(CORPUS)
    differences = corpus.machine_differences(d)
    if differences:
        pytest.skip("the corpus was saved on another kind of machine or build, where other bits "
                    "are expected: " + "; ".join(differences))
    return d


def _check(**filters):
    out = io.StringIO()
    differ, checked, skipped = corpus.check(CORPUS, out=out, **filters)
    assert not differ, f"{len(differ)} of {checked} runs differ from the corpus:\n{out.getvalue()}"
    return checked, skipped


def test_corpus_best_isa_one_thread(doc):
    best = next(isa for isa in cconv.available_isas()
                if any(isa in rec["sha256"] for rec in doc["cases"].values()))
    checked, _ = _check(isas=[best], threads=[1])
    assert checked == sum(best in rec["sha256"] for rec in doc["cases"].values())


@pytest.mark.slow
def test_corpus_every_isa_and_thread_count(doc):
    checked, skipped = _check()
    assert checked > 0 and skipped == 0  # the same ISA set (the fixture checks it)


def test_corpus_covers_every_public_function():
    public = {name for name in cconv.__all__
              if getattr(getattr(cconv, name), "__module__", None) == _functions.__name__
              and callable(getattr(cconv, name)) and name != "ConvPlan"}  # ConvPlan: via plan_*
    public |= set(cconv.grad.__all__)
    missing = public - corpus.covered_functions()
    assert not missing, f"public functions no corpus case calls: {sorted(missing)}"


def test_check_reports_a_changed_case(doc, tmp_path):
    name = "conv2d/dense3x3-p1-winograd/f32/NCHW"
    isa = cconv.available_isas()[0]
    changed = json.loads(json.dumps(doc))
    sha = changed["cases"][name]["sha256"][isa]
    changed["cases"][name]["sha256"][isa] = ("0" if sha[0] != "0" else "1") + sha[1:]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    out = io.StringIO()
    differ, checked, _ = corpus.check(str(path), names_filter=[name], isas=[isa], out=out)
    assert differ == [f"{name}[{isa},t{t}]" for t in doc["threads"]], out.getvalue()
    assert "same shapes and dtypes, other bits" in out.getvalue()
    assert corpus.main(["check", str(path), "-k", name, "--isa", isa]) == 1
