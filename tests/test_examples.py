"""Smoke tests of examples/: a few training steps of train_digits.py, and its hand-written
backward pass checked against central finite differences (float64)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("cconv", reason="cconv is not built/installed")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "train_digits.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_digits_runs_a_few_steps():
    r = subprocess.run([sys.executable, SCRIPT, "--steps", "5", "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("step    5") for line in lines), r.stdout
    assert "test accuracy" in lines[-1], r.stdout
    losses = [float(line.split()[-1]) for line in lines if line.startswith("step")]
    assert all(np.isfinite(losses))


def _loss(mod, params, x, y):
    logits, _ = mod.forward(params, x)
    z = logits - logits.max(axis=1, keepdims=True)
    return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())


def test_train_digits_backward_matches_finite_differences():
    import cconv
    old_threads = cconv.get_num_threads()
    cconv.set_num_threads(1)
    try:
        _check_backward()
    finally:
        cconv.set_num_threads(old_threads)


def _check_backward():
    mod = _load_example()
    mod.DT = np.float64
    rng = np.random.default_rng(0)
    params = mod.init_params(rng)
    for k in params:     # non-zero biases so every bias gradient path is exercised
        if k.endswith("_b"):
            params[k] = rng.standard_normal(params[k].shape) * 0.1
    x = rng.random((3, 1, 8, 8))
    y = np.array([1, 7, 3])
    loss, grads = mod.loss_and_grads(params, x, y)
    assert abs(loss - _loss(mod, params, x, y)) < 1e-12
    h = 1e-5
    for name, p in params.items():
        assert grads[name].shape == p.shape, name
        for flat in rng.choice(p.size, size=min(p.size, 4), replace=False):
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + h
            lp = _loss(mod, params, x, y)
            p[idx] = old - h
            lm = _loss(mod, params, x, y)
            p[idx] = old
            fd = (lp - lm) / (2 * h)
            assert abs(fd - grads[name][idx]) <= 1e-5 * (1 + abs(fd)), (name, idx, fd,
                                                                         grads[name][idx])
