"""cconv.decompose: separable and flattened factorisations, their optimality against the SVD,
and that they plug into spatially_separable_conv2d / flattened_conv2d."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

cconv = pytest.importorskip("cconv", reason="cconv is not built/installed")
import cconv.decompose as D  # noqa: E402

# (tiny calls run on the calling thread by themselves: no thread fixture needed)

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])

seeds = st.integers(0, 2**32 - 1)


def _unfolding_bounds(w):
    """Per filter, the smallest relative error any rank-1 (channel x vertical x horizontal)
    tensor can reach, from the SVD of each unfolding (a rank-1 tensor has rank-1 unfoldings)."""
    o = w.shape[0]
    total = np.sum(w.reshape(o, -1) ** 2, axis=1)
    best = np.zeros(o)
    for axis in (1, 2, 3):
        m = np.moveaxis(w, axis, 1).reshape(o, w.shape[axis], -1)
        s1 = np.linalg.svd(m, compute_uv=False)[:, 0]
        best = np.maximum(best, total - s1 ** 2)
    return best, total


# =========================================================================== spatially separable

def test_sobel_is_exactly_separable():
    col, row, err = D.spatially_separable(SOBEL_X)
    assert err < 1e-15
    np.testing.assert_allclose(np.outer(col, row), SOBEL_X, atol=1e-14)
    # the article's factors [1, 2, 1]^T x [-1, 0, 1], up to the scale split
    np.testing.assert_allclose(col / col[0], [1, 2, 1], atol=1e-14)
    np.testing.assert_allclose(row * col[0], [-1, 0, 1], atol=1e-14)
    assert np.linalg.norm(col) == pytest.approx(np.linalg.norm(row))   # balanced scale
    assert col[np.argmax(np.abs(col))] > 0                             # sign convention
    assert not np.signbit(row[1])                                      # no -0.0
    # 6 numbers instead of 9; and the vertical Sobel is the transpose
    assert col.size + row.size == 6
    c2, r2, e2 = D.spatially_separable(SOBEL_X.T)
    assert e2 < 1e-15
    np.testing.assert_allclose(np.outer(c2, r2), SOBEL_X.T, atol=1e-14)


def test_sobel_runs_as_spatially_separable_conv2d():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 9, 11))
    col, row, _ = D.spatially_separable(SOBEL_X)
    y = cconv.spatially_separable_conv2d(x, col.reshape(1, 1, 3, 1), row.reshape(1, 1, 1, 3), padding=1)
    np.testing.assert_allclose(y, cconv.conv2d(x, SOBEL_X[None, None].astype(float), padding=1),
                               atol=1e-12)


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_spatially_separable_is_the_svd_optimum(seed, kh, kw):
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((kh, kw))
    col, row, err = D.spatially_separable(k)
    assert col.shape == (kh,) and row.shape == (kw,) and isinstance(err, float)
    s = np.linalg.svd(k, compute_uv=False)
    # Eckart-Young: the best rank-1 error is the tail of the singular values
    assert err == pytest.approx(np.sqrt(np.sum(s[1:] ** 2) / np.sum(s ** 2)), abs=1e-12)
    assert err == pytest.approx(np.linalg.norm(k - np.outer(col, row)) / np.linalg.norm(k), abs=1e-12)
    # no other rank-1 candidate does better
    for _ in range(5):
        u, v = rng.standard_normal(kh), rng.standard_normal(kw)
        t = (u @ k @ v) / ((u @ u) * (v @ v))   # best scale for this direction pair
        assert np.linalg.norm(k - t * np.outer(u, v)) >= np.linalg.norm(k - np.outer(col, row)) - 1e-12
    assert col[np.argmax(np.abs(col))] > 0


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_spatially_separable_exact_on_rank1(seed, kh, kw):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal(kh), rng.standard_normal(kw)
    col, row, err = D.spatially_separable(np.outer(u, v))
    assert err < 1e-12
    np.testing.assert_allclose(np.outer(col, row), np.outer(u, v), atol=1e-12)


def test_spatially_separable_stacks_dtypes_and_edge_cases():
    rng = np.random.default_rng(2)
    bank = rng.standard_normal((4, 1, 3, 5))
    col, row, err = D.spatially_separable(bank)
    assert col.shape == (4, 1, 3) and row.shape == (4, 1, 5) and err.shape == (4, 1)
    for o in range(4):
        c1, r1, e1 = D.spatially_separable(bank[o, 0])
        np.testing.assert_allclose(col[o, 0], c1, atol=1e-12)
        np.testing.assert_allclose(row[o, 0], r1, atol=1e-12)
        assert err[o, 0] == pytest.approx(e1)
    # a depthwise bank as a grouped spatially separable conv
    x = rng.standard_normal((1, 4, 8, 8))
    y = cconv.spatially_separable_conv2d(x, col.reshape(4, 1, 3, 1), row.reshape(4, 1, 1, 5), groups=4)
    approx = col[:, :, :, None] * row[:, :, None, :]
    np.testing.assert_allclose(y, cconv.conv2d(x, approx, groups=4), atol=1e-12)

    c32, r32, _ = D.spatially_separable(SOBEL_X.astype(np.float32))
    assert c32.dtype == r32.dtype == np.float32
    assert D.spatially_separable(SOBEL_X)[0].dtype == np.float64       # ints -> float64
    c0, r0, e0 = D.spatially_separable(np.zeros((3, 3)))
    assert e0 == 0.0 and not np.any(np.outer(c0, r0))
    for bad, exc in [(np.ones(3), ValueError), (np.ones((0, 3)), ValueError),
                     (np.array([[1, np.nan]]), ValueError), (np.ones((2, 2), complex), TypeError)]:
        with pytest.raises(exc):
            D.spatially_separable(bad)


# =========================================================================== flatten

@st.composite
def banks(draw, max_c=4, max_k=4):
    return (draw(seeds), draw(st.integers(1, 4)), draw(st.integers(1, max_c)),
            draw(st.integers(1, max_k)), draw(st.integers(1, max_k)))


@given(banks())
def test_flatten_is_exact_on_rank1_filters(case):
    seed, co, ci, kh, kw = case
    rng = np.random.default_rng(seed)
    ch, v, h = rng.standard_normal((co, ci)), rng.standard_normal((co, kh)), rng.standard_normal((co, kw))
    w = D.flattened_weight(ch, v, h)
    c2, v2, h2, err = D.flatten(w)
    assert (c2.shape, v2.shape, h2.shape) == ((co, ci), (co, kh), (co, kw))
    assert isinstance(err, float) and err < 1e-10
    np.testing.assert_allclose(D.flattened_weight(c2, v2, h2), w, atol=1e-10)
    # the factors are the originals up to scale and sign, per filter
    for o in range(co):
        assert abs(abs(v2[o] @ v[o]) - np.linalg.norm(v2[o]) * np.linalg.norm(v[o])) < 1e-8
    # conventions: vertical and horizontal largest entries positive, scale balanced
    idx = np.arange(co)
    assert np.all(v2[idx, np.argmax(np.abs(v2), 1)] > 0)
    assert np.all(h2[idx, np.argmax(np.abs(h2), 1)] > 0)
    np.testing.assert_allclose(np.linalg.norm(c2, axis=1), np.linalg.norm(v2, axis=1), rtol=1e-8)


@given(banks())
def test_flatten_respects_the_svd_bounds_and_is_stationary(case):
    seed, co, ci, kh, kw = case
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((co, ci, kh, kw))
    ch, v, h, err = D.flatten(w)
    resid = np.sum((w - D.flattened_weight(ch, v, h)) ** 2, axis=(1, 2, 3))
    bound, total = _unfolding_bounds(w)
    assert np.all(resid >= bound - 1e-9 * total)      # never better than the SVD allows
    assert err == pytest.approx(np.sqrt(resid.sum() / total.sum()), abs=1e-12)
    # stationarity (local optimum): each factor is the least-squares best given the others
    ch_best = np.einsum("ocij,oi,oj->oc", w, v, h) / (np.sum(v * v, 1) * np.sum(h * h, 1))[:, None]
    np.testing.assert_allclose(ch_best, ch, atol=1e-5 * np.abs(ch).max())
    v_best = np.einsum("ocij,oc,oj->oi", w, ch, h) / (np.sum(ch * ch, 1) * np.sum(h * h, 1))[:, None]
    np.testing.assert_allclose(v_best, v, atol=1e-5 * np.abs(v).max())


@given(banks(max_c=1))
def test_flatten_with_one_channel_is_the_svd_optimum(case):
    """C_in = 1: the tensor is a matrix, so the best rank-1 approximation is known exactly."""
    seed, co, _, kh, kw = case
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((co, 1, kh, kw))
    ch, v, h, err = D.flatten(w)
    resid = np.sum((w - D.flattened_weight(ch, v, h)) ** 2, axis=(1, 2, 3))
    bound, total = _unfolding_bounds(w)
    np.testing.assert_allclose(resid, bound, atol=1e-10 * total.max())
    _, _, sep_err = D.spatially_separable(w[:, 0])
    np.testing.assert_allclose(np.sqrt(resid / total), sep_err, atol=1e-7)


def test_flatten_global_optimum_on_orthogonal_tensor():
    """An orthogonally decomposable tensor sum_r l_r a_r o b_r o c_r (orthonormal factors): the
    best rank-1 approximation is the largest term, error sqrt(sum_{r>1} l_r^2 / sum l_r^2)."""
    rng = np.random.default_rng(3)
    qa, _ = np.linalg.qr(rng.standard_normal((5, 3)))
    qb, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    qc, _ = np.linalg.qr(rng.standard_normal((4, 3)))
    lam = np.array([3.0, 2.0, 1.0])
    t = np.einsum("r,ir,jr,kr->ijk", lam, qa, qb, qc)[None]
    ch, v, h, err = D.flatten(t)
    assert err == pytest.approx(np.sqrt((4 + 1) / (9 + 4 + 1)), abs=1e-9)
    np.testing.assert_allclose(D.flattened_weight(ch, v, h)[0],
                               3 * np.einsum("i,j,k->ijk", qa[:, 0], qb[:, 0], qc[:, 0]), atol=1e-7)


@given(banks())
def test_flatten_beats_the_planted_filter_under_noise(case):
    seed, co, ci, kh, kw = case
    rng = np.random.default_rng(seed)
    clean = D.flattened_weight(rng.standard_normal((co, ci)), rng.standard_normal((co, kh)),
                               rng.standard_normal((co, kw)))
    noise = 1e-3 * rng.standard_normal(clean.shape)
    ch, v, h, err = D.flatten(clean + noise)
    approx = D.flattened_weight(ch, v, h)
    assert np.linalg.norm(clean + noise - approx) <= np.linalg.norm(noise) * (1 + 1e-9)


def test_flatten_feeds_flattened_conv2d():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    x = rng.standard_normal((2, 3, 9, 9))
    ch, v, h, err = D.flatten(w)
    y = cconv.flattened_conv2d(x, ch, v, h, b, stride=2, padding=1, dilation=(1, 2))
    ref = cconv.conv2d(x, D.flattened_weight(ch, v, h), b, stride=2, padding=1, dilation=(1, 2))
    np.testing.assert_allclose(y, ref, atol=1e-11)
    # and it approximates the original conv to the stated relative error (weights-wise)
    assert 0 < err < 1
    assert np.linalg.norm(w - D.flattened_weight(ch, v, h)) / np.linalg.norm(w) == pytest.approx(err)


def test_flatten_rank_r_and_summed_calls():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    x = rng.standard_normal((1, 3, 7, 7))
    errors = []
    for r in (1, 2, 3, 4):
        ch, v, h, err = D.flatten(w, rank=r)
        if r > 1:
            assert (ch.shape, v.shape, h.shape) == ((r, 4, 3), (r, 4, 3), (r, 4, 2))
            y = sum(cconv.flattened_conv2d(x, ch[t], v[t], h[t], b if t == 0 else None, padding=1)
                    for t in range(r))
            np.testing.assert_allclose(y, cconv.conv2d(x, D.flattened_weight(ch, v, h), b, padding=1),
                                       atol=1e-11)
            # terms sorted by decreasing weight per filter
            lam = (np.linalg.norm(ch, axis=2) * np.linalg.norm(v, axis=2) * np.linalg.norm(h, axis=2))
            assert np.all(np.diff(lam, axis=0) <= 1e-12)
        errors.append(err)
    assert all(b_ <= a_ + 1e-12 for a_, b_ in zip(errors, errors[1:]))   # never worse with rank
    assert errors[-1] < errors[0]
    # a sum of 2 planted rank-1 filters is fitted (to the accuracy of ALS) with rank 2
    planted = sum(D.flattened_weight(rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
                                     rng.standard_normal((4, 2))) for _ in range(2))
    assert D.flatten(planted, rank=2)[3] < 1e-4


def test_flatten_dtypes_zero_and_errors():
    w32 = np.random.default_rng(6).standard_normal((2, 3, 3, 3)).astype(np.float32)
    out = D.flatten(w32)
    assert all(f.dtype == np.float32 for f in out[:3]) and isinstance(out[3], float)
    ch, v, h, err = D.flatten(np.zeros((2, 2, 3, 3)))
    assert err == 0.0 and not np.any(D.flattened_weight(ch, v, h))
    ch, v, h, err = D.flatten(np.ones((1, 1, 1, 1), dtype=int))
    assert err < 1e-15 and ch.dtype == np.float64
    for bad, kw, exc in [(np.ones((2, 3, 3)), {}, ValueError),
                         (np.ones((1, 1, 2, 2)), {"rank": 0}, ValueError),
                         (np.ones((1, 1, 2, 2)), {"rank": 1.5}, ValueError),
                         (np.full((1, 1, 2, 2), np.inf), {}, ValueError),
                         (np.ones((1, 1, 2, 2), complex), {}, TypeError)]:
        with pytest.raises(exc):
            D.flatten(bad, **kw)
    with pytest.raises(ValueError):
        D.flattened_weight(np.ones((2, 3)), np.ones((3, 3)), np.ones((2, 3)))
