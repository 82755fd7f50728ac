"""NumPy reference implementations of the smooth family: the executable specification.

Clear rather than fast: every function works on the N-d array directly with NumPy reductions,
computes in float64 (whatever the input dtype) and casts the result back to the result dtype.
Special values follow ../shared/semantics.md ("smooth"); the Numba and CuPy kernels are tested
against these functions. Validation is shared with the public API (``fastops.smooth``), so the
reference raises exactly the same errors.

Conventions used below: ``keep`` is the boolean array of elements taking part in a row (the
``where`` mask, and for ``logsumexp`` also ``b != 0``); a row with no kept element, or whose
kept elements are all -inf, is "empty".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _checks

_F64 = np.float64


def _prepare(func: str, x: Any, axis: Any, where: Any, temperature: float = 1.0,
             name: str = "x"):
    """Validate; return (x as float64, axes, keep mask, result dtype, temperature)."""
    x = np.asarray(x)
    out_dtype = _checks.result_dtype(func, name, x.dtype)
    tau = _checks.positive_temperature(func, temperature)
    x = x.reshape(1) if x.ndim == 0 else x  # one row of one element (SciPy's atleast_1d)
    axes = _checks.normalize_axes(func, axis, x.ndim)
    keep = np.ones(x.shape, bool) if where is None else \
        np.array(_checks.boolean_mask(func, where, np, x.shape))
    return x.astype(_F64), axes, keep, out_dtype, tau


def _row_stats(xs: np.ndarray, keep: np.ndarray, axes: tuple[int, ...]):
    """Per row: max ``m`` of the kept values (NaN ignored), NaN flag, and the weights.

    Returns ``(m, has_nan, e, s_lt, c_eq)`` with keepdims shapes, where ``e = exp(xs - m)`` at
    kept elements (0 elsewhere, 1 where xs == m), ``s_lt`` the sum of ``e`` over the elements
    strictly below ``m`` and ``c_eq`` the count of kept elements equal to ``m``. Keeping the
    dominant term out of ``s_lt`` is what gives SciPy's gh-18295 accuracy:
    ``log(sum e) = log1p(s_lt + c_eq - 1)``.
    """
    has_nan = np.any(keep & np.isnan(xs), axis=axes, keepdims=True)
    vals = np.where(keep & ~np.isnan(xs), xs, -np.inf)
    m = np.max(vals, axis=axes, keepdims=True, initial=-np.inf)
    finite_m = np.where(np.isfinite(m), m, 0.0)
    at_max = keep & (vals == m) & (m > -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.where(at_max, 1.0, np.where(keep & (vals < m), np.exp(vals - finite_m), 0.0))
    s_lt = np.sum(np.where(at_max, 0.0, e), axis=axes, keepdims=True)
    c_eq = np.sum(at_max, axis=axes, keepdims=True).astype(_F64)
    return m, has_nan, e, s_lt, c_eq


def _lse_rows(xs: np.ndarray, keep: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """logsumexp over ``axes`` of the kept elements of ``xs`` (keepdims shape), float64."""
    m, has_nan, _, s_lt, c_eq = _row_stats(xs, keep, axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.where(np.isfinite(m), m + np.log1p(s_lt + (c_eq - 1.0)), m)
    return np.where(has_nan, np.nan, lse)


def _softmax_parts(xs, keep, axes):
    """(p, lse, bad) with p = softmax of the kept elements (0 elsewhere), keepdims lse, and
    ``bad`` = rows that are NaN (a kept NaN or +inf)."""
    m, has_nan, e, s_lt, c_eq = _row_stats(xs, keep, axes)
    bad = has_nan | (m == np.inf)
    total = s_lt + c_eq
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, e / np.where(total > 0, total, 1.0), 0.0)
        lse = np.where(np.isfinite(m), m + np.log1p(s_lt + (c_eq - 1.0)), m)
    return p, lse, bad


def _finish(values: np.ndarray, axes, keepdims: bool, dtype: np.dtype) -> np.ndarray:
    if not keepdims:
        values = np.squeeze(values, axis=axes)
    return values.astype(dtype, copy=False)[()]  # a NumPy scalar for 0-d results, as SciPy


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, *, where: Any = None) -> Any:
    """Reference ``log(sum(b * exp(a)))`` over ``axis`` (see fastops.logsumexp)."""
    func = "logsumexp"
    out_dtype = _checks.promoted_dtype(func, [("a", a)] + ([] if b is None else [("b", b)]),
                                       allow_complex=True)
    a = _checks.real_array(func, "a", a, np, allow_complex=True)
    if b is not None:  # a and b broadcast against each other, as SciPy's
        bw = _checks.real_array(func, "b", b, np, allow_complex=True)
        a = _checks.broadcast_against(func, "a", a, "b", bw, np)
    if out_dtype.kind == "c":
        a = a.reshape(1) if a.ndim == 0 else a
        axes = _checks.normalize_axes(func, axis, a.ndim)
        w = None if b is None else np.broadcast_to(bw, a.shape)
        if where is not None:
            keep = _checks.boolean_mask(func, where, np, a.shape)
            w = np.where(keep, 1.0 if w is None else w, 0.0)
        return complex_lse(np, a.astype(np.complex128), w, axes, keepdims, return_sign,
                           out_dtype)
    xs, axes, keep, _, _ = _prepare(func, a.astype(out_dtype), axis, where, name="a")
    if b is None:
        result = _lse_rows(xs, keep, axes)
        sign = np.where(np.isnan(result), np.nan, np.where(result == -np.inf, 0.0, 1.0))
    else:
        bw = np.broadcast_to(bw.astype(_F64), xs.shape)
        result, sign = _weighted_lse(xs, bw, keep & (bw != 0), axes)
    if not return_sign:
        with np.errstate(invalid="ignore"):
            result = np.where(sign < 0, np.nan, result)
        return _finish(result, axes, keepdims, out_dtype)
    return _finish(result, axes, keepdims, out_dtype), _finish(sign, axes, keepdims, out_dtype)


def complex_lse(xp: Any, a: Any, w: Any, axes: tuple[int, ...], keepdims: bool,
                return_sign: bool, dtype: np.dtype) -> Any:
    """Complex logsumexp as SciPy 1.17 computes it, for NumPy or CuPy arrays (``xp``): also the
    CuPy backend's complex path, and the CPU kernel's fallback for rows whose result is not
    finite.

    ``a`` complex128 (at least 1-d), ``w`` None or real/complex weights of a's shape (0 where
    masked out: such elements are ignored even where ``a`` is inf or NaN), reduced over
    ``axes``. The element with the largest real part (the last of equal ones) is kept out of
    the sum: ``log1p(s / w_max) + log(w_max) + a_max`` with ``s = sum w exp(a - a_max)`` over
    the others. A result that is not finite comes from ``log(sum w exp(a))`` instead (C99
    complex exp/log handle the infinities). The imaginary part is wrapped to (-pi, pi];
    with ``return_sign`` the result is ``(log|sum|, sum / |sum|)`` (the sign complex).
    """
    if w is not None:
        a = xp.where(w == 0, -xp.inf, a)
    if a.size == 0:
        shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
        out = xp.full(shape, -xp.inf, dtype=np.complex128)
        sgn = xp.sign(out)
    else:
        errstate = np.errstate(all="ignore") if xp is np else _no_errstate()
        with errstate:
            direct = xp.sum(xp.exp(a) if w is None else w * xp.exp(a), axis=axes, keepdims=True)
            sgn_direct = xp.sign(direct) if return_sign else None
            out_direct = xp.log(xp.abs(direct) if return_sign else direct)
            out, sgn = _complex_lse_parts(xp, a, w, axes, return_sign)
        finite = xp.isfinite(out)
        out = xp.where(finite, out, out_direct)
        sgn = xp.where(finite, sgn, sgn_direct) if return_sign else sgn
    if return_sign:
        sgn = xp.real(sgn) + wrap_radians(xp, xp.imag(sgn)) * 1j
    else:
        out = xp.real(out) + wrap_radians(xp, xp.imag(out)) * 1j
    if not keepdims:
        out = xp.squeeze(out, axis=axes)
        sgn = xp.squeeze(sgn, axis=axes)
    result_dtype = np.dtype(dtype) if not return_sign else \
        np.dtype(np.float32 if np.dtype(dtype) == np.complex64 else np.float64)
    out = (xp.real(out) if return_sign else out).astype(result_dtype)
    if not return_sign:
        return out[()] if (out.ndim == 0 and xp is np) else out
    sgn = sgn.astype(dtype)
    if xp is np and out.ndim == 0:
        return out[()], sgn[()]
    return out, sgn


def _complex_lse_parts(xp: Any, a: Any, w: Any, axes: tuple[int, ...], return_sign: bool):
    """SciPy's _logsumexp for complex ``a``: (out, sign) with keepdims shapes."""
    real = xp.real(a)
    at_max = real == xp.max(real, axis=axes, keepdims=True)
    index = xp.where(at_max, xp.arange(a.size).reshape(a.shape), -1)
    is_max = index == xp.max(index, axis=axes, keepdims=True)  # the last of equal real parts
    a_max = xp.sum(xp.where(is_max, a, 0.0), axis=axes, keepdims=True)
    rest = xp.where(is_max, -xp.inf, a)
    w_max = xp.sum(is_max.astype(a.dtype) if w is None else w * is_max, axis=axes,
                   keepdims=True).astype(a.dtype)
    terms = xp.exp(rest - a_max) if w is None else w * xp.exp(rest - a_max)
    s = xp.sum(terms, axis=axes, keepdims=True)
    s = xp.where(s == 0, s, s / w_max)
    sgn = xp.sign(s + 1) * xp.sign(w_max) * xp.exp(xp.imag(a_max) * 1j)
    out = xp.log1p(s) + xp.log(w_max) + a_max
    return (xp.real(out) if return_sign else out), sgn


def wrap_radians(xp: Any, x: Any) -> Any:
    """x wrapped to (-pi, pi], unchanged (bit for bit) where |x| < pi."""
    wrapped = -((-x + np.pi) % (2 * np.pi) - np.pi)
    return xp.where(xp.abs(x) < np.pi, x, wrapped)


class _no_errstate:  # CuPy has no floating-point error state to silence
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def exact_cancellations(a_rows: np.ndarray, b_rows: np.ndarray, keep_rows: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(log|total|, sign) of rows whose weighted total came out exactly 0: the weights of equal
    ``a`` are summed exactly first (math.fsum) and the groups that cancel are dropped, then the
    surviving groups are summed as usual. Scaling by the largest ``a`` loses every term more
    than ~745 below it, so ``a = [700, 700, 50, 50, -50]`` with ``b = [1, -1, 1, -1, 1]`` (two
    levels of exact cancellation, leaving e^-50) gave a zero total (-inf); regrouped it is
    -50. Only cancellation between equal ``a`` is exact; terms that cancel across different
    ``a`` (``2e^700 - e^(700 + log 2)``) are not representable and stay as computed.
    ``a_rows``, ``b_rows``, ``keep_rows``: (k, n) float64, float64, bool."""
    values = np.full(a_rows.shape[0], -np.inf)
    signs = np.zeros(a_rows.shape[0])
    for r in range(a_rows.shape[0]):
        kept = keep_rows[r] & (b_rows[r] != 0)
        a, b = a_rows[r][kept], b_rows[r][kept]
        if a.size == 0 or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
            continue  # nothing kept, or an infinity / NaN: its rule decided, not cancellation
        order = np.argsort(a, kind="stable")
        groups, starts = np.unique(a[order], return_index=True)
        ends = np.append(starts[1:], a.size)
        weights = np.array([math.fsum(b[order][i:j]) for i, j in zip(starts, ends, strict=True)])
        alive = weights != 0
        if not alive.any():
            continue  # an exact zero: (-inf, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value, sign = _weighted_lse(groups[alive][None], weights[alive][None],
                                        np.ones((1, int(alive.sum())), bool), (1,))
        values[r], signs[r] = value[0, 0], sign[0, 0]
    return values, signs


def _weighted_lse(xs, bw, keep, axes):
    """SciPy's signed weighted logsumexp (return_sign semantics), keepdims shapes."""
    nan_row = np.any(keep & (np.isnan(xs) | np.isnan(bw)), axis=axes, keepdims=True)
    vals = np.where(keep & ~np.isnan(xs), xs, -np.inf)
    m = np.max(vals, axis=axes, keepdims=True, initial=-np.inf)
    at_max = keep & (vals == m)
    b_eq = np.sum(np.where(at_max, bw, 0.0), axis=axes, keepdims=True)
    finite_m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(keep & (vals < m), bw * np.exp(vals - finite_m), 0.0)
    s_lt = np.sum(terms, axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b_eq != 0, s_lt / np.where(b_eq != 0, b_eq, 1.0), -np.inf)
        dominant = ratio > -0.5  # log1p form is accurate; otherwise form the total directly
        total = b_eq + s_lt
        log_abs = np.where(dominant, np.log(np.abs(b_eq)) + np.log1p(np.where(dominant, ratio,
                                                                                0.0)),
                           np.log(np.abs(total)))
        result = m + log_abs
        sign = np.where(dominant, np.sign(b_eq), np.sign(total))
    # All kept elements at +inf: the sign is that of their weights if they agree, else NaN.
    inf_row = m == np.inf
    pos = np.any(at_max & (bw > 0), axis=axes, keepdims=True)
    neg = np.any(at_max & (bw < 0), axis=axes, keepdims=True)
    result = np.where(inf_row, np.where(pos & neg, np.nan, np.inf), result)
    sign = np.where(inf_row, np.where(pos & neg, np.nan, np.where(pos, 1.0, -1.0)), sign)
    empty = m == -np.inf
    result = np.where(empty, -np.inf, result)
    sign = np.where(empty, 0.0, sign)
    result = np.where(nan_row, np.nan, result)
    sign = np.where(nan_row, np.nan, sign)
    cancelled = (sign == 0) & ~empty  # a zero total from kept terms: exact cancellations
    if cancelled.any() and xs.ndim >= 1:
        moved = [np.moveaxis(arr, axes, tuple(range(-len(axes), 0))) for arr in
                 (np.broadcast_to(xs, keep.shape), np.broadcast_to(bw, keep.shape), keep)]
        flat = [arr.reshape(-1, math.prod(arr.shape[arr.ndim - len(axes):])) for arr in moved]
        rows = np.flatnonzero(np.moveaxis(cancelled, axes, tuple(range(-len(axes), 0)))
                              .reshape(-1))
        value, sgn = exact_cancellations(flat[0][rows], flat[1][rows], flat[2][rows])
        result_rows = np.moveaxis(result, axes, tuple(range(-len(axes), 0))).reshape(-1).copy()
        sign_rows = np.moveaxis(sign, axes, tuple(range(-len(axes), 0))).reshape(-1).copy()
        result_rows[rows], sign_rows[rows] = value, sgn
        shape = np.moveaxis(result, axes, tuple(range(-len(axes), 0))).shape
        result = np.moveaxis(result_rows.reshape(shape), tuple(range(-len(axes), 0)), axes)
        sign = np.moveaxis(sign_rows.reshape(shape), tuple(range(-len(axes), 0)), axes)
    return result, sign


def smooth_max(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
               keepdims: bool = False) -> Any:
    """Reference ``temperature * logsumexp(x / temperature)`` over ``axis``."""
    xs, axes, keep, out_dtype, tau = _prepare("smooth_max", x, axis, where, temperature)
    return _finish(tau * _lse_rows(xs / tau, keep, axes), axes, keepdims, out_dtype)


def soft_argmax(x: Any, axis: Any = -1, *, temperature: float = 1.0, where: Any = None,
                keepdims: bool = False) -> Any:
    """Reference ``sum_i i * softmax(x / temperature)_i`` (0-based flat index over ``axis``)."""
    xs, axes, keep, out_dtype, tau = _prepare("soft_argmax", x, axis, where, temperature)
    p, lse, bad = _softmax_parts(xs / tau, keep, axes)
    index = _flat_index(xs.shape, axes)
    y = np.sum(p * index, axis=axes, keepdims=True)
    y = np.where(bad | (lse == -np.inf), np.nan, y)
    return _finish(y, axes, keepdims, out_dtype)


def _flat_index(shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """The 0-based C-order position of each element within its row (over ``axes``)."""
    sub = [shape[a] for a in axes]
    idx = np.arange(int(np.prod(sub, dtype=np.int64)), dtype=_F64).reshape(sub)
    full = [1] * len(shape)
    for a, s in zip(axes, sub, strict=True):
        full[a] = s
    return np.broadcast_to(idx.reshape(full), shape)


def softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0) -> Any:
    """Reference ``exp(x/τ - logsumexp(x/τ))``; masked entries 0, empty rows all 0."""
    xs, axes, keep, out_dtype, tau = _prepare("softmax", x, axis, where, temperature)
    p, _, bad = _softmax_parts(xs / tau, keep, axes)
    p = np.where(bad & keep, np.nan, p)
    return p.astype(out_dtype).reshape(np.shape(x))[()]  # 0-d x: a scalar


def log_softmax(x: Any, axis: Any = -1, *, where: Any = None, temperature: float = 1.0) -> Any:
    """Reference ``x/τ - logsumexp(x/τ)``; masked entries -inf, empty rows all -inf."""
    xs, axes, keep, out_dtype, tau = _prepare("log_softmax", x, axis, where, temperature)
    xs = xs / tau
    _, lse, bad = _softmax_parts(xs, keep, axes)
    with np.errstate(invalid="ignore"):
        y = np.where(keep & (lse > -np.inf), xs - lse, -np.inf)
    # A kept NaN makes the row NaN; a kept +inf (lse = +inf) gives SciPy's x - lse: NaN at the
    # +inf elements, -inf at the others (softmax makes such a row NaN).
    has_nan = np.any(keep & np.isnan(xs), axis=axes, keepdims=True)
    y = np.where(has_nan & keep, np.nan, y)
    return y.astype(out_dtype).reshape(np.shape(x))[()]


def _reduced_arg(func: str, name: str, value: Any, x_shape, axes, keepdims: bool) -> np.ndarray:
    """A per-row argument (out, dout) broadcast to the keepdims reduced shape, as float64."""
    arr = _checks.real_array(func, name, value, np)
    reduced = tuple(1 if i in axes else s for i, s in enumerate(x_shape))
    target = reduced if keepdims else tuple(s for i, s in enumerate(x_shape) if i not in axes)
    _checks.broadcastable(func, name, arr.shape, target)
    arr = np.broadcast_to(arr, target).astype(_F64)
    return arr.reshape(reduced)


def logsumexp_backward(a: Any, out: Any, dout: Any, axis: Any = None, b: Any = None,
                       keepdims: bool = False, *, where: Any = None) -> Any:
    """Reference gradient of ``logsumexp`` w.r.t. ``a``: ``dout * b * exp(a - out)``."""
    func = "logsumexp_backward"
    if _any_complex((a, out, dout, b)):
        return complex_lse_backward(np, a, out, dout, axis, b, keepdims, where)
    xs, axes, keep, out_dtype, _ = _prepare(func, a, axis, where, name="a")
    out_r = _reduced_arg(func, "out", out, xs.shape, axes, keepdims)
    dout_r = _reduced_arg(func, "dout", dout, xs.shape, axes, keepdims)
    if b is None:
        bw = np.ones_like(xs)
    else:
        bw = _checks.real_array(func, "b", b, np)
        _checks.broadcastable(func, "b", bw.shape, xs.shape)
        bw = np.broadcast_to(bw.astype(_F64), xs.shape)
    live = keep & (bw != 0) & (xs != -np.inf) & (out_r != -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.where(live, dout_r * bw * np.exp(np.where(live, xs - out_r, 0.0)), 0.0)
    return g.astype(out_dtype).reshape(np.shape(a))


def _any_complex(values: tuple[Any, ...]) -> bool:
    return any(v is not None and np.iscomplexobj(v) for v in values)


def complex_lse_backward(xp: Any, a: Any, out: Any, dout: Any, axis: Any, b: Any,
                         keepdims: bool, where: Any) -> Any:
    """Gradient of complex logsumexp: ``dout * b * exp(a - out)``, the holomorphic derivative
    d out / d a_i = b_i exp(a_i - out) times ``dout`` (JAX's convention for holomorphic
    functions; PyTorch's autograd passes the conjugate: call it with ``conj(grad)`` and
    conjugate the result). 0 where masked out, ``b == 0``, ``real(a) == -inf`` or
    ``real(out) == -inf``. For NumPy or CuPy arrays (every backend's complex path)."""
    func = "logsumexp_backward"
    named = [(n, v) for n, v in (("a", a), ("out", out), ("dout", dout), ("b", b))
             if v is not None]
    dtype = np.result_type(_checks.promoted_dtype(func, named, allow_complex=True),
                           np.complex64)  # the complex dtype of that precision
    arr = _checks.real_array(func, "a", a, xp, allow_complex=True)
    shape = tuple(arr.shape)
    if b is not None:
        weights = _checks.real_array(func, "b", b, xp, allow_complex=True)
        _checks.broadcastable(func, "b", weights.shape, shape)
    x = arr.reshape(1) if arr.ndim == 0 else arr
    axes = _checks.normalize_axes(func, axis, x.ndim)
    reduced = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    target = reduced if keepdims else tuple(n for i, n in enumerate(x.shape) if i not in axes)
    per_row = []
    for name, value in (("out", out), ("dout", dout)):
        value = _checks.real_array(func, name, value, xp, allow_complex=True)
        _checks.broadcastable(func, name, value.shape, target)
        per_row.append(xp.broadcast_to(value, target).reshape(reduced))
    out_r, dout_r = per_row
    live = xp.real(x) != -np.inf
    live = live & (xp.real(out_r) != -np.inf)
    w = 1.0 if b is None else xp.broadcast_to(weights, x.shape)
    if b is not None:
        live = live & (w != 0)
    if where is not None:
        live = live & _checks.boolean_mask(func, where, xp, x.shape)
    errstate = np.errstate(all="ignore") if xp is np else _no_errstate()
    with errstate:
        g = dout_r * w * xp.exp(xp.where(live, x - out_r, 0.0))
    return xp.where(live, g, 0.0).astype(dtype).reshape(shape)


def softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                     temperature: float = 1.0) -> Any:
    """Reference gradient of ``softmax`` given its output ``y``: ``(y/τ)(dy - <dy, y>)``."""
    func = "softmax_backward"
    ys, axes, keep, out_dtype, tau = _prepare(func, y, axis, where, temperature, name="y")
    dys = _same_shape(func, dy, ys.shape)
    with np.errstate(invalid="ignore"):
        dot = np.sum(np.where(keep, ys * dys, 0.0), axis=axes, keepdims=True)
        g = np.where(keep, ys * (dys - dot) / tau, 0.0)
    return g.astype(out_dtype).reshape(np.shape(y))


def log_softmax_backward(y: Any, dy: Any, axis: Any = -1, *, where: Any = None,
                         temperature: float = 1.0) -> Any:
    """Reference gradient of ``log_softmax`` given its output ``y``: ``(dy - exp(y) sum dy)/τ``.

    Elements equal to -inf (masked or -inf inputs) neither receive nor pass gradient.
    """
    func = "log_softmax_backward"
    ys, axes, keep, out_dtype, tau = _prepare(func, y, axis, where, temperature, name="y")
    dys = _same_shape(func, dy, ys.shape)
    live = keep & (ys != -np.inf)
    with np.errstate(invalid="ignore"):
        total = np.sum(np.where(live, dys, 0.0), axis=axes, keepdims=True)
        g = np.where(live, (dys - np.exp(ys) * total) / tau, 0.0)
    return g.astype(out_dtype).reshape(np.shape(y))


def _same_shape(func: str, value: Any, shape) -> np.ndarray:
    arr = _checks.real_array(func, "dy", value, np)
    if arr.ndim == 0 and tuple(shape) == (1,):
        arr = arr.reshape(1)  # the dy of a 0-d y (see _prepare)
    if arr.shape != tuple(shape):
        raise ValueError(f"{func}: dy must have the shape of y, {tuple(shape)}; got {arr.shape}")
    return arr.astype(_F64)


def smooth_max_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                        where: Any = None, keepdims: bool = False) -> Any:
    """Reference gradient of ``smooth_max``: ``dout * softmax(x/τ)``."""
    func = "smooth_max_backward"
    xs, axes, keep, out_dtype, tau = _prepare(func, x, axis, where, temperature)
    dout_r = _reduced_arg(func, "dout", dout, xs.shape, axes, keepdims)
    p, _, bad = _softmax_parts(xs / tau, keep, axes)
    g = np.where(bad & keep, np.nan, dout_r * p)
    return np.where(keep, g, 0.0).astype(out_dtype).reshape(np.shape(x))


def soft_argmax_backward(x: Any, dout: Any, axis: Any = -1, *, temperature: float = 1.0,
                         where: Any = None, keepdims: bool = False) -> Any:
    """Reference gradient of ``soft_argmax``: ``dout * p * (i - y) / τ``."""
    func = "soft_argmax_backward"
    xs, axes, keep, out_dtype, tau = _prepare(func, x, axis, where, temperature)
    dout_r = _reduced_arg(func, "dout", dout, xs.shape, axes, keepdims)
    p, _, bad = _softmax_parts(xs / tau, keep, axes)
    index = _flat_index(xs.shape, axes)
    y = np.sum(p * index, axis=axes, keepdims=True)
    g = np.where(bad & keep, np.nan, dout_r * p * (index - y) / tau)
    return np.where(keep, g, 0.0).astype(out_dtype).reshape(np.shape(x))
