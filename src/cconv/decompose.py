"""Filter decompositions: turn full filters into the separable forms cconv runs fast.

* :func:`spatially_separable`: a k_h x k_w kernel -> column (k_h) x row (k_w), the best rank-1
  approximation (truncated SVD, Eckart-Young), ready for ``spatially_separable_conv2d``.
* :func:`flatten`: a ``(C_out, C_in, k_h, k_w)`` filter bank -> per output filter a channel x
  vertical x horizontal rank-1 (CP) approximation (arXiv 1412.5474), ready for
  ``flattened_conv2d``; ``rank=r`` sums r such terms.
* :func:`flattened_weight`: the full filters a flattened factorisation stands for.

Example (Sobel is exactly separable)::

    >>> import numpy as np
    >>> from cconv import decompose
    >>> col, row, err = decompose.spatially_separable([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    >>> np.round(col / col[0], 12), np.round(row * col[0], 12), err < 1e-12
    (array([1., 2., 1.]), array([-1.,  0.,  1.]), True)
"""
import numpy as np

__all__ = ["spatially_separable", "flatten", "flattened_weight"]


def _real_array(name, a, ndim=None, min_ndim=None):
    try:
        arr = np.asarray(a)
    except Exception as e:
        raise TypeError(f"{name} could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must be at least {min_ndim}-D, got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr, dtype


def _flip_by_largest(v, axis=-1):
    """+1/-1 per vector so that its largest-magnitude entry (first one on ties) is positive."""
    idx = np.argmax(np.abs(v), axis=axis)
    s = np.sign(np.take_along_axis(v, np.expand_dims(idx, axis), axis))
    return np.where(s == 0, 1.0, s)


def _rel(residual_sq, total_sq):
    """sqrt(residual / total) with 0 for an all-zero tensor, clipped at 0 for rounding."""
    residual_sq = np.maximum(residual_sq, 0.0)
    return np.sqrt(np.divide(residual_sq, total_sq, out=np.zeros_like(residual_sq),
                             where=total_sq > 0))


def spatially_separable(kernel2d, *, as_weights=False):
    """Best separable approximation ``kernel2d ~= np.outer(column, row)`` (rank-1 truncated SVD,
    optimal in the Frobenius norm by Eckart-Young).

    Turns a ``k_h x k_w`` kernel into the two 1-D passes of
    :func:`cconv.spatially_separable_conv2d` (``k_h + k_w`` taps instead of ``k_h * k_w``).

    Parameters
    ----------
    kernel2d : array_like, shape ``(..., k_h, k_w)``
        A real kernel, or a stack of kernels decomposed one by one (e.g. a depthwise bank
        ``(C, 1, k_h, k_w)``). Must be finite and non-empty.
    as_weights : bool, default False
        Return the factors in the shapes `cconv.spatially_separable_conv2d` takes instead:
        a 2-D kernel gives ``(1, 1, k_h, 1)`` and ``(1, 1, 1, k_w)``, a depthwise bank
        ``(C, 1, k_h, k_w)`` gives ``(C, 1, k_h, 1)`` and ``(C, 1, 1, k_w)`` (run with
        ``groups=C``).

    Returns
    -------
    column : ndarray, shape ``(..., k_h)``
    row : ndarray, shape ``(..., k_w)``
        The factors: the scale is split evenly (both have norm ``sqrt(sigma_1)``) and the sign is
        fixed so that the column's largest-magnitude entry is positive. float32 input gives
        float32 factors, anything else float64.
    rel_error : float or ndarray of shape ``(...)``
        ``||kernel2d - outer(column, row)||_F / ||kernel2d||_F``: 0 for an exactly separable
        kernel such as Sobel, and for an all-zero kernel.

    Raises
    ------
    ValueError
        If `kernel2d` has fewer than 2 dimensions, is empty, or holds NaN or infinity.
    TypeError
        If `kernel2d` is not a real numeric array.

    See Also
    --------
    flatten, cconv.spatially_separable_conv2d

    Notes
    -----
    With one channel, ``spatially_separable_conv2d(x, column.reshape(1, 1, -1, 1),
    row.reshape(1, 1, 1, -1))`` equals ``conv2d`` with the kernel up to ``rel_error``. A
    depthwise bank ``(C, 1, k_h, k_w)`` becomes ``spatially_separable_conv2d(x,
    col.reshape(C, 1, -1, 1), row.reshape(C, 1, 1, -1), groups=C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cconv import decompose
    >>> col, row, err = decompose.spatially_separable([[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    >>> np.round(col, 12), np.round(row, 12), err < 1e-12
    (array([1., 2., 1.]), array([1., 2., 1.]), True)
    >>> col, row, err = decompose.spatially_separable(np.eye(3))   # not separable
    >>> round(err, 6)
    0.816497
    """
    k, dtype = _real_array("kernel2d", kernel2d, min_ndim=2)
    if as_weights and not (k.ndim == 2 or (k.ndim == 4 and k.shape[1] == 1)):
        raise ValueError(f"as_weights=True takes a 2-D kernel (k_h, k_w) or a depthwise bank "
                         f"(C, 1, k_h, k_w), got shape {k.shape}")
    u, s, vt = np.linalg.svd(k, full_matrices=False)
    scale = np.sqrt(s[..., 0])
    col = u[..., :, 0] * scale[..., None]
    row = vt[..., 0, :] * scale[..., None]
    sign = _flip_by_largest(col)
    col, row = col * sign + 0.0, row * sign + 0.0  # + 0.0: no negative zeros
    total = np.sum(k * k, axis=(-2, -1))
    resid = np.sum((k - col[..., :, None] * row[..., None, :]) ** 2, axis=(-2, -1))
    err = _rel(resid, total)
    err = float(err) if err.ndim == 0 else err
    col, row = col.astype(dtype), row.astype(dtype)
    if as_weights:
        c = k.shape[0] if k.ndim == 4 else 1
        return col.reshape(c, 1, -1, 1), row.reshape(c, 1, 1, -1), err
    return col, row, err


# ----------------------------------------------------------------------------- CP / flatten

def _reconstruct(a, b, c):
    """Sum of rank-1 terms: a (O, I, R), b (O, J, R), c (O, K, R) -> (O, I, J, K)."""
    o, i, r = a.shape
    kr = _khatri_rao(b, c)  # (O, J*K, R)
    return (a @ kr.transpose(0, 2, 1)).reshape(o, i, b.shape[1], c.shape[1])


def _khatri_rao(b, c):
    """Column-wise Kronecker product per filter: (O, J, R), (O, K, R) -> (O, J*K, R)."""
    o, j, r = b.shape
    return (b[:, :, None, :] * c[:, None, :, :]).reshape(o, j * c.shape[1], r)


def _unfoldings(t):
    """The three unfoldings of every filter, (O, I, J*K), (O, J, I*K), (O, K, I*J), matching
    the Khatri-Rao orders used in _als."""
    o, i, j, k = t.shape
    return (t.reshape(o, i, j * k),
            np.ascontiguousarray(t.transpose(0, 2, 1, 3)).reshape(o, j, i * k),
            np.ascontiguousarray(t.transpose(0, 3, 1, 2)).reshape(o, k, i * j))


def _leading_vectors(unfolding):
    """Leading left singular vector of each filter's unfolding: (O, dim)."""
    u, _, _ = np.linalg.svd(unfolding, full_matrices=False)
    return u[:, :, 0]


def _solve(m, gram):
    """Least-squares factor update m @ pinv(gram), batched (O, dim, R) x (O, R, R)."""
    if gram.shape[-1] == 1:
        g = gram[..., 0, 0]
        inv = np.divide(1.0, g, out=np.zeros_like(g), where=g > 0)
        return m * inv[:, None, None]
    try:  # gram is symmetric: m @ inv(gram) = solve(gram, m^T)^T
        with np.errstate(all="raise"):
            out = np.linalg.solve(gram, m.transpose(0, 2, 1)).transpose(0, 2, 1)
        if np.all(np.isfinite(out)):
            return out
    except (np.linalg.LinAlgError, FloatingPointError):
        pass
    return m @ np.linalg.pinv(gram, hermitian=True)  # a vanished or repeated term


def _gram(f):
    return f.transpose(0, 2, 1) @ f


def _als(t, a, b, c, max_iter, tol):
    """Alternating least squares for the CP model t ~= sum_r a_r o b_r o c_r, per filter.
    Each update solves its factor exactly, so the residual never increases. A filter stops
    when a sweep lowers its squared residual by less than tol * ||t_o||^2; the sweeps go on
    with the filters still moving only."""
    a, b, c = a.copy(), b.copy(), c.copy()
    units = _unfoldings(t)
    total = np.sum(t * t, axis=(1, 2, 3))
    work = np.arange(t.shape[0])  # filters in the working arrays
    wa, wb, wc, (t1, t2, t3), wtot = a, b, c, units, total
    prev = np.full(len(work), np.inf)
    for _ in range(max_iter):
        wa = _solve(t1 @ _khatri_rao(wb, wc), _gram(wb) * _gram(wc))
        wb = _solve(t2 @ _khatri_rao(wa, wc), _gram(wa) * _gram(wc))
        mc = t3 @ _khatri_rao(wa, wb)
        gab = _gram(wa) * _gram(wb)
        wc = _solve(mc, gab)
        # ||t - sum a o b o c||^2 = ||t||^2 - 2 <t, approx> + ||approx||^2
        resid = wtot - 2 * np.sum(mc * wc, axis=(1, 2)) + np.sum(gab * _gram(wc), axis=(1, 2))
        moving = prev - resid > tol * wtot
        prev = resid
        if not moving.all():
            a[work], b[work], c[work] = wa, wb, wc
            if not moving.any():
                return a, b, c
            if moving.sum() <= 0.75 * len(work):  # compact the working set
                keep = np.nonzero(moving)[0]
                work = work[keep]
                wa, wb, wc, prev, wtot = wa[keep], wb[keep], wc[keep], prev[keep], wtot[keep]
                t1, t2, t3 = (u[work] for u in units)
    a[work], b[work], c[work] = wa, wb, wc
    return a, b, c


_WARM_SWEEPS = 25


def _rank1(t, max_iter, tol):
    """Rank-1 CP per filter: higher-order power iteration (ALS with R=1) started from the
    leading singular vectors of the vertical and horizontal unfoldings (HOSVD)."""
    t1, t2, t3 = _unfoldings(t)
    b = _leading_vectors(t2)[:, :, None]
    c = _leading_vectors(t3)[:, :, None]
    a = t1 @ _khatri_rao(b, c)
    return _als(t, a, b, c, max_iter, tol)


def _normalise(a, b, c):
    """Balanced scale (each factor of a term has norm lambda^(1/3)), signs moved into the channel
    factor (vertical and horizontal largest-magnitude entries positive), terms sorted by
    decreasing lambda per filter."""
    na, nb, nc = (np.linalg.norm(f, axis=1) for f in (a, b, c))  # (O, R)
    lam = na * nb * nc
    root = np.cbrt(lam)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(lam[:, None] > 0, a * (root / na)[:, None], 0.0)
        b = np.where(lam[:, None] > 0, b * (root / nb)[:, None], 0.0)
        c = np.where(lam[:, None] > 0, c * (root / nc)[:, None], 0.0)
    sb, sc = _flip_by_largest(b, axis=1), _flip_by_largest(c, axis=1)
    a, b, c = a * sb * sc, b * sb, c * sc
    order = np.argsort(-lam, axis=1, kind="stable")[:, None, :]
    return tuple(np.take_along_axis(f, order, axis=2) for f in (a, b, c))


def flatten(weight, rank=1, *, max_iter=500, tol=1e-14):
    """Flattened (rank-1 per output filter) approximation of a ``(C_out, C_in, k_h, k_w)`` filter
    bank, as in "Flattened convolutional neural networks" (arXiv 1412.5474):
    ``W[o, c, i, j] ~= channel[o, c] * vertical[o, i] * horizontal[o, j]``.

    The factors are ready for :func:`cconv.flattened_conv2d`, which then equals ``conv2d`` with
    the reconstructed weight (:func:`flattened_weight`).

    Parameters
    ----------
    weight : array_like, shape ``(C_out, C_in, k_h, k_w)``
        The filter bank; real, finite, non-empty.
    rank : int, optional
        Number of rank-1 terms per filter (a CP decomposition). Default 1.
    max_iter : int, optional
        Maximum alternating-least-squares sweeps. Default 500.
    tol : float, optional
        A filter stops when a sweep lowers its squared residual by less than ``tol * ||W_o||^2``.
        Default 1e-14.

    Returns
    -------
    channel : ndarray, shape ``(C_out, C_in)``, or ``(rank, C_out, C_in)`` for ``rank > 1``
    vertical : ndarray, shape ``(C_out, k_h)``, or ``(rank, C_out, k_h)``
    horizontal : ndarray, shape ``(C_out, k_w)``, or ``(rank, C_out, k_w)``
        The factors (float32 for float32 weights, else float64). Scale is balanced (each factor
        of a term has norm ``lambda^(1/3)``); the vertical and horizontal factors have their
        largest-magnitude entry positive, the sign goes into the channel factor; terms sorted by
        decreasing weight per filter.
    rel_error : float
        ``||W - W_approx||_F / ||W||_F`` over the whole bank (0 for ``W = 0``).

    Raises
    ------
    ValueError
        If `weight` is not 4-D, is empty or not finite, or `rank` or `max_iter` is not a
        positive int.
    TypeError
        If `weight` is not a real numeric array.

    See Also
    --------
    flattened_weight, spatially_separable, cconv.flattened_conv2d

    Notes
    -----
    Per filter, alternating least squares (the higher-order power method for rank 1) started
    from the leading singular vectors of the tensor's three unfoldings (HOSVD), run until the
    residual stops decreasing (relative change below `tol`) or `max_iter` sweeps. Each sweep
    solves one factor exactly, so the residual never increases. Exact (``rel_error`` ~ 1e-16)
    for filters that are rank 1. For general tensors the best rank-1 approximation is a
    non-convex problem and ALS returns a stationary point: a local optimum, in practice usually
    the global one from this start, but not guaranteed. Each filter's error is at least
    ``sqrt(||W_o||^2 - sigma_1^2)`` for the leading singular value of any unfolding; when one
    mode has size 1 (C_in = 1, a 1x1 or a k x 1 kernel) the problem is a matrix one and the
    result is the SVD optimum.

    ``rank=r > 1`` is built greedily: each rank starts from the previous one plus the rank-1 fit
    of its residual (a few ALS sweeps per intermediate rank, full ALS for rank r). The result is
    never worse than that greedy start, so in practice the error falls with r, but like every
    CP-ALS it is a local optimum (planted rank-r filters are recovered to about 1e-5, not to
    rounding). The flattened convolution is linear in its factors, so the approximation of
    ``conv2d(x, W, bias, ...)`` is r summed calls::

        y = sum(cconv.flattened_conv2d(x, channel[t], vertical[t], horizontal[t],
                                       bias if t == 0 else None, stride, padding, dilation)
                for t in range(r))

    Examples
    --------
    A bank of rank-1 filters is recovered to rounding:

    >>> import numpy as np
    >>> import cconv
    >>> from cconv import decompose
    >>> rng = np.random.default_rng(0)
    >>> w = np.einsum("oc,oi,oj->ocij", rng.standard_normal((4, 3)),
    ...               rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    >>> ch, v, h, err = decompose.flatten(w)
    >>> ch.shape, v.shape, h.shape, err < 1e-10
    ((4, 3), (4, 3), (4, 3), True)
    >>> x = rng.standard_normal((1, 3, 8, 8))
    >>> np.allclose(cconv.flattened_conv2d(x, ch, v, h, padding=1), cconv.conv2d(x, w, padding=1))
    True
    """
    w, dtype = _real_array("weight", weight, ndim=4)
    if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    rank = int(rank)
    a, b, c = _rank1(w, max_iter, tol)
    total_o = np.sum(w * w, axis=(1, 2, 3))
    for k in range(2, rank + 1):
        resid = w - _reconstruct(a, b, c)
        err_o = np.sum(resid * resid, axis=(1, 2, 3))
        r1 = _rank1(resid, max_iter, tol)
        # filters already fitted to rounding level get a zero term, not a fit of rounding noise
        done = (err_o <= 1e-24 * total_o)[:, None, None]
        r1 = tuple(np.where(done, 0.0, f) for f in r1)
        init = tuple(np.concatenate([f, g], axis=2) for f, g in zip((a, b, c), r1))
        # intermediate ranks only initialise the next one: a few sweeps; the last runs to the end
        a, b, c = _als(w, *init, max_iter if k == rank else min(max_iter, _WARM_SWEEPS), tol)
        # ALS never increases the error in exact arithmetic; guard against rounding anyway
        init_err = np.sum((w - _reconstruct(*init)) ** 2, axis=(1, 2, 3))
        new_err = np.sum((w - _reconstruct(a, b, c)) ** 2, axis=(1, 2, 3))
        worse = (new_err > init_err)[:, None, None]
        a, b, c = (np.where(worse, f0, f) for f0, f in zip(init, (a, b, c)))
    a, b, c = _normalise(a, b, c)
    total = float(np.sum(w * w))
    err = float(_rel(np.array(np.sum((w - _reconstruct(a, b, c)) ** 2)), np.array(total)))
    if rank == 1:
        factors = (a[:, :, 0], b[:, :, 0], c[:, :, 0])
    else:
        factors = tuple(np.moveaxis(f, 2, 0) for f in (a, b, c))
    return tuple(np.ascontiguousarray(f + 0.0, dtype=dtype) for f in factors) + (err,)


def flattened_weight(channel, vertical, horizontal):
    """The ``(C_out, C_in, k_h, k_w)`` filters a flattened factorisation stands for:
    ``W[o, c, i, j] = sum_t channel[t, o, c] * vertical[t, o, i] * horizontal[t, o, j]``
    (without the leading ``t`` axis for rank 1, as :func:`flatten` returns them).

    Parameters
    ----------
    channel : array_like, shape ``(C_out, C_in)`` or ``(r, C_out, C_in)``
        The channel factor.
    vertical : array_like, shape ``(C_out, k_h)`` or ``(r, C_out, k_h)``
        The vertical factor.
    horizontal : array_like, shape ``(C_out, k_w)`` or ``(r, C_out, k_w)``
        The factors, all 2-D (rank 1) or all 3-D (rank r).

    Returns
    -------
    ndarray, shape ``(C_out, C_in, k_h, k_w)``
        The filters, float64.

    Raises
    ------
    ValueError
        If the factors' dimensions or their ``C_out`` (and ``r``) disagree.

    See Also
    --------
    flatten, cconv.flattened_conv2d

    Examples
    --------
    >>> import numpy as np
    >>> from cconv import decompose
    >>> w = decompose.flattened_weight([[1.0, 2.0]], [[1.0, -1.0]], [[1.0, 2.0, 3.0]])
    >>> w.shape
    (1, 2, 2, 3)
    >>> w[0, 1]                     # 2 * outer([1, -1], [1, 2, 3])
    array([[ 2.,  4.,  6.],
           [-2., -4., -6.]])
    """
    ch = np.asarray(channel, dtype=np.float64)
    v = np.asarray(vertical, dtype=np.float64)
    h = np.asarray(horizontal, dtype=np.float64)
    if ch.ndim == v.ndim == h.ndim == 2:
        ch, v, h = ch[None], v[None], h[None]
    if not (ch.ndim == v.ndim == h.ndim == 3 and ch.shape[:2] == v.shape[:2] == h.shape[:2]):
        raise ValueError(f"channel (C_out, C_in), vertical (C_out, k_h) and horizontal "
                         f"(C_out, k_w), optionally stacked as (r, C_out, ...), must agree: got "
                         f"{ch.shape}, {v.shape}, {h.shape}")
    return np.einsum("toc,toi,toj->ocij", ch, v, h)
