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
    out_dtype = _checks.promoted_dtype(func, [("a", a)] + ([] if b is None else [("b", b)]))
    a = _checks.real_array(func, "a", a, np)
    if b is not None:  # a and b broadcast against each other, as SciPy's
        bw = _checks.real_array(func, "b", b, np)
        try:
            a = np.broadcast_to(a, np.broadcast_shapes(a.shape, bw.shape))
        except ValueError:
            raise ValueError(f"{func}: a of shape {a.shape} and b of shape {bw.shape} do not "
                             "broadcast together") from None
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
